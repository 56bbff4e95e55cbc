/* SPDX-License-Identifier: MIT */
/* Command line, logging, signals and the serving loop shared by the device servers. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "devserver.h"

static const char *prog_name = "vhost-user-device";
static enum vh_log_level log_level = VH_LOG_INFO;
/* The library's own messages start one level quieter: its INFO lines restate ours. */
static enum vh_log_level lib_level = VH_LOG_WARN;

/* Ids of the common options; device ids are below 1000. */
enum {
	OPT_SOCKET_PATH = 1000,
	OPT_FD,
	OPT_CONNECT,
	OPT_THREADS,
	OPT_POLL_US,
	OPT_PRINT_CAPS,
	OPT_HELP,
	OPT_VERBOSE,
	OPT_QUIET,
};

static const struct vhd_option common_options[] = {
	{ "socket-path", 1, "PATH", "listen here; serve one front-end after another",
	  OPT_SOCKET_PATH },
	{ "fd", 1, "FD", "inherited socket: connected (served once) or listening", OPT_FD },
	{ "connect", 1, "PATH", "client mode: connect to PATH, reconnect when dropped",
	  OPT_CONNECT },
	{ "print-capabilities", 0, NULL, "print the capabilities as JSON and exit", OPT_PRINT_CAPS },
	{ "threads", 1, "N", "worker threads (queues are spread over them)", OPT_THREADS },
	{ "poll-us", 1, "US", "busy-poll queues this long before sleeping (default 0)", OPT_POLL_US },
	{ "verbose", 0, NULL, "more messages (repeat for protocol details)", OPT_VERBOSE },
	{ "quiet", 0, NULL, "errors only", OPT_QUIET },
	{ "help", 0, NULL, "this text", OPT_HELP },
	{ NULL, 0, NULL, NULL, 0 },
};

/* ---- Logging ----------------------------------------------------------------------------- */

enum vh_log_level vhd_log_level(void)
{
	return log_level;
}

void vhd_vlog(enum vh_log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char line[1024];
	int n;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s: %s", prog_name,
		     prefix[(unsigned)level < 4 ? level : 3]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One call per line keeps lines whole when several threads log. */
	fprintf(stderr, "%s\n", line);
}

void vhd_log(enum vh_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vhd_vlog(level, fmt, ap);
	va_end(ap);
}

static void logger_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= lib_level)
		vhd_log(level, "%s", msg);
}

struct vh_logger vhd_logger(void)
{
	struct vh_logger l = { .fn = logger_fn, .opaque = NULL, .max_level = lib_level };

	return l;
}

/* ---- Command line ------------------------------------------------------------------------ */

int vhd_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s (see --help)\n", prog_name, msg);
	return -1;
}

int vhd_parse_u64(const char *opt, const char *arg, uint64_t min, uint64_t max, int suffix,
		  uint64_t *out)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end;

	if (!arg || !*arg || *arg == '-' || *arg == '+' || *arg == ' ')
		return vhd_usage_error("--%s needs a number, not '%s'", opt, arg ? arg : "");
	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg)
		return vhd_usage_error("--%s: '%s' is not a number", opt, arg);
	if (*end && suffix && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mult = 1ull << 10; end++; break;
		case 'm': case 'M': mult = 1ull << 20; end++; break;
		case 'g': case 'G': mult = 1ull << 30; end++; break;
		case 't': case 'T': mult = 1ull << 40; end++; break;
		default: break;
		}
	}
	if (*end)
		return vhd_usage_error("--%s: '%s' is not a number", opt, arg);
	if (__builtin_mul_overflow((uint64_t)v, mult, out) || *out < min || *out > max)
		return vhd_usage_error("--%s=%s is out of range [%" PRIu64 ", %" PRIu64 "]", opt, arg,
				       min, max);
	return 0;
}

int vhd_parse_uint(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;

	if (vhd_parse_u64(opt, arg, min, max, 0, &v))
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void print_capabilities(const struct vhd_program *prog)
{
	printf("{\n  \"type\": \"%s\"", prog->cap_type);
	if (prog->cap_features) {
		printf(",\n  \"features\": [");
		for (unsigned i = 0; prog->cap_features[i]; i++)
			printf("%s\n    \"%s\"", i ? "," : "", prog->cap_features[i]);
		printf("%s]", prog->cap_features[0] ? "\n  " : "");
	}
	printf("\n}\n");
	fflush(stdout);
}

static void print_option(const struct vhd_option *o)
{
	char left[64];

	const char *shortopt = o->id == OPT_HELP ? "-h, " : o->id == OPT_VERBOSE ? "-v, " :
			       o->id == OPT_QUIET ? "-q, " : "";

	if (o->has_arg)
		snprintf(left, sizeof(left), "%s--%s=%s", shortopt, o->name,
			 o->argname ? o->argname : "VALUE");
	else
		snprintf(left, sizeof(left), "%s--%s", shortopt, o->name);
	if (strlen(left) > 26)
		printf("  %s\n  %-26s %s\n", left, "", o->help);
	else
		printf("  %-26s %s\n", left, o->help);
}

static void print_help(const struct vhd_program *prog)
{
	printf("%s - %s\n\n", prog->name, prog->summary);
	printf("usage: %s (--socket-path=PATH | --fd=FD | --connect=PATH) [options]\n"
	       "       %s --print-capabilities\n\n", prog->name, prog->name);
	printf("Connection (exactly one):\n");
	for (const struct vhd_option *o = common_options; o->name; o++)
		if (o->id == OPT_SOCKET_PATH || o->id == OPT_FD || o->id == OPT_CONNECT)
			print_option(o);
	if (prog->options && prog->options[0].name) {
		printf("\nDevice:\n");
		for (const struct vhd_option *o = prog->options; o->name; o++)
			print_option(o);
	}
	printf("\nGeneral:\n");
	for (const struct vhd_option *o = common_options; o->name; o++)
		if (o->id != OPT_SOCKET_PATH && o->id != OPT_FD && o->id != OPT_CONNECT)
			print_option(o);
	printf("\nSignals: SIGINT/SIGTERM stop cleanly; SIGUSR1 prints a statistics line (also "
	       "printed at exit).\nExit status: 0 ok, 1 failure, 2 bad command line.\n");
	if (prog->usage_extra)
		printf("\n%s", prog->usage_extra);
	fflush(stdout);
}

static int check_fd(const char *arg, int *out)
{
	unsigned v;
	struct stat st;

	if (vhd_parse_uint("fd", arg, 0, INT_MAX, &v))
		return -1;
	if (fcntl((int)v, F_GETFD) < 0)
		return vhd_usage_error("--fd=%u: not an open file descriptor", v);
	if (fstat((int)v, &st) < 0 || !S_ISSOCK(st.st_mode))
		return vhd_usage_error("--fd=%u: not a socket", v);
	*out = (int)v;
	return 0;
}

static int set_mode(struct vhd_common *c, enum vhd_mode m, const char *opt)
{
	static const char *const names[] = { "", "--socket-path", "--fd", "--connect" };

	if (c->mode != VHD_MODE_NONE && c->mode != m)
		return vhd_usage_error("%s and %s cannot be combined", names[c->mode], opt);
	if (c->mode == m)
		return vhd_usage_error("%s given twice", opt);
	c->mode = m;
	return 0;
}

static int common_option(struct vhd_common *c, int id, const char *arg)
{
	switch (id) {
	case OPT_SOCKET_PATH:
	case OPT_CONNECT:
		if (set_mode(c, id == OPT_CONNECT ? VHD_MODE_CONNECT : VHD_MODE_LISTEN,
			     id == OPT_CONNECT ? "--connect" : "--socket-path"))
			return -1;
		if (!*arg)
			return vhd_usage_error("%s needs a path",
					       id == OPT_CONNECT ? "--connect" : "--socket-path");
		c->path = arg;
		return 0;
	case OPT_FD:
		if (set_mode(c, VHD_MODE_FD, "--fd"))
			return -1;
		return check_fd(arg, &c->fd);
	case OPT_THREADS:
		return vhd_parse_uint("threads", arg, 1, VH_BACKEND_MAX_QUEUES, &c->threads);
	case OPT_POLL_US: {
		unsigned v;

		if (vhd_parse_uint("poll-us", arg, 0, 1000000, &v))
			return -1;
		c->poll_us = (int)v;
		return 0;
	}
	case OPT_VERBOSE:
		if (log_level < VH_LOG_DEBUG)
			log_level++;
		if (lib_level < VH_LOG_DEBUG)
			lib_level++;
		return 0;
	case OPT_QUIET:
		log_level = VH_LOG_ERR;
		lib_level = VH_LOG_ERR;
		return 0;
	default:
		return 0;
	}
}

int vhd_parse_args(const struct vhd_program *prog, int argc, char **argv, struct vhd_common *c)
{
	struct option lopts[128];
	const struct vhd_option *byindex[128];
	unsigned n = 0;
	int help = 0;

	prog_name = prog->name;
	memset(c, 0, sizeof(*c));
	c->fd = -1;

	/* The spec: with --print-capabilities every other option and argument is ignored. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--print-capabilities")) {
			print_capabilities(prog);
			return 1;
		}
	}

	for (int pass = 0; pass < 2; pass++) {
		const struct vhd_option *t = pass ? prog->options : common_options;

		for (; t && t->name; t++) {
			if (n + 1 >= sizeof(lopts) / sizeof(lopts[0]))
				return vhd_usage_error("internal: too many options");
			lopts[n] = (struct option){ t->name, t->has_arg ? required_argument : no_argument,
						    NULL, (int)n + 256 };
			byindex[n] = t;
			n++;
		}
	}
	lopts[n] = (struct option){ NULL, 0, NULL, 0 };

	opterr = 0;
	optind = 1;
	for (;;) {
		int idx = -1;
		int ch = getopt_long(argc, argv, ":hvq", lopts, &idx);
		const struct vhd_option *o;

		if (ch == -1)
			break;
		switch (ch) {
		case 'h':
			help = 1;
			continue;
		case 'v':
			common_option(c, OPT_VERBOSE, NULL);
			continue;
		case 'q':
			common_option(c, OPT_QUIET, NULL);
			continue;
		case ':':
			return vhd_usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
			if (optopt)
				return vhd_usage_error("unknown option '-%c'", optopt);
			return vhd_usage_error("unknown option '%s'", argv[optind - 1]);
		default:
			break;
		}
		if (ch < 256 || (unsigned)(ch - 256) >= n)
			return vhd_usage_error("unknown option '%s'", argv[optind - 1]);
		o = byindex[ch - 256];
		if (o->id == OPT_HELP) {
			help = 1;
		} else if (o->id >= OPT_SOCKET_PATH) {
			if (common_option(c, o->id, optarg))
				return -1;
		} else if (prog->parse(prog->dev, o->id, o->has_arg ? optarg : NULL)) {
			return -1;
		}
	}
	if (help) {
		print_help(prog);
		return 1;
	}
	if (optind < argc)
		return vhd_usage_error("unexpected argument '%s'", argv[optind]);
	if (c->mode == VHD_MODE_NONE)
		return vhd_usage_error("one of --socket-path, --fd or --connect is required");
	return 0;
}

/* ---- Serving ----------------------------------------------------------------------------- */

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);  /* internal: ends the signal thread */
}

void vhd_block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

unsigned vhd_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 && n < 4096 ? (unsigned)n : 1;
}

void vhd_print_stats(struct vh_server *s, vhd_stats_fn stats, void *dev)
{
	struct vh_server_queue_stats tot = { 0 };
	char line[2048];
	size_t len;
	unsigned active = 0;

	line[0] = 0;
	len = 0;
	for (unsigned i = 0; i < VH_BACKEND_MAX_QUEUES; i++) {
		struct vh_server_queue *q = vh_server_get_queue(s, i);
		struct vh_server_queue_stats st;

		if (!q)
			break;
		vh_server_queue_get_stats(q, &st);
		tot.popped += st.popped;
		tot.pushed += st.pushed;
		tot.notifies += st.notifies;
		tot.kicks += st.kicks;
		tot.faults += st.faults;
		if (st.popped && len < sizeof(line)) {
			int k = snprintf(line + len, sizeof(line) - len, " q%u=%" PRIu64, i, st.popped);

			if (k > 0)
				len += (size_t)k;
			active++;
		}
	}
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	if (stats && len < sizeof(line) - 1) {
		line[len++] = ' ';
		line[len] = 0;
		stats(dev, line + len, sizeof(line) - len);
	}
	/* Always printed, whatever the log level: asking for statistics is explicit. */
	fprintf(stderr, "%s: stats: requests=%" PRIu64 " completed=%" PRIu64 " kicks=%" PRIu64
		" notifies=%" PRIu64 " faults=%" PRIu64 "%s%s\n", prog_name, tot.popped, tot.pushed,
		tot.kicks, tot.notifies, tot.faults, active ? " per-queue:" : "", line);
}

struct sigctx {
	struct vh_server *s;
	vhd_stats_fn stats;
	void *dev;
	int stopping;
};

static void *signal_thread(void *arg)
{
	struct sigctx *x = arg;
	sigset_t set;

	signal_set(&set);
	for (;;) {
		int sig;

		if (sigwait(&set, &sig))
			continue;
		switch (sig) {
		case SIGUSR1:
			vhd_print_stats(x->s, x->stats, x->dev);
			break;
		case SIGUSR2:
			return NULL;
		default:
			if (x->stopping) {
				/* A second request while stopping: the user means it. */
				vhd_log(VH_LOG_ERR, "%s again: exiting at once", strsignal(sig));
				_exit(VHD_EXIT_FAIL);
			}
			x->stopping = 1;
			vhd_log(VH_LOG_INFO, "%s: stopping", strsignal(sig));
			vh_server_stop(x->s);
			break;
		}
	}
}

static int setup_connection(struct vh_server *s, const struct vhd_common *c, int *fd_connected)
{
	int ret = 0;

	*fd_connected = 0;
	switch (c->mode) {
	case VHD_MODE_LISTEN:
		ret = vh_server_listen(s, c->path);
		if (ret < 0)
			vhd_log(VH_LOG_ERR, "cannot listen on %s: %s", c->path, strerror(-ret));
		else
			vhd_log(VH_LOG_INFO, "listening on %s", c->path);
		break;
	case VHD_MODE_FD: {
		int listening = 0;
		socklen_t sl = sizeof(listening);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) < 0)
			listening = 0;
		if (listening) {
			ret = vh_server_set_listen_fd(s, c->fd);
		} else {
			ret = vh_server_set_connection(s, c->fd);
			*fd_connected = 1;
		}
		if (ret < 0)
			vhd_log(VH_LOG_ERR, "cannot use --fd=%d: %s", c->fd, strerror(-ret));
		else
			vhd_log(VH_LOG_INFO, "serving %s socket fd %d",
				listening ? "listening" : "connected", c->fd);
		break;
	}
	case VHD_MODE_CONNECT:
		ret = vh_server_connect(s, c->path);
		if (ret < 0)
			vhd_log(VH_LOG_ERR, "cannot connect to %s: %s", c->path, strerror(-ret));
		else
			vhd_log(VH_LOG_INFO, "connected to %s", c->path);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	return ret;
}

int vhd_serve(struct vh_server *s, const struct vhd_common *c, unsigned threads,
	      const unsigned *queue_thread, vhd_stats_fn stats, void *dev)
{
	struct vh_server_run_opts ro = {
		.nthreads = threads ? threads : 1,
		.queue_thread = queue_thread,
		.reconnect = c->mode == VHD_MODE_CONNECT,
		.poll_us = c->poll_us,
	};
	struct sigctx x = { .s = s, .stats = stats, .dev = dev };
	pthread_t th;
	int fd_connected, ret, code;

	if (setup_connection(s, c, &fd_connected) < 0)
		return VHD_EXIT_FAIL;
	ret = pthread_create(&th, NULL, signal_thread, &x);
	if (ret) {
		vhd_log(VH_LOG_ERR, "cannot start the signal thread: %s", strerror(ret));
		return VHD_EXIT_FAIL;
	}
	ret = vh_server_run(s, &ro);
	if (ret == 0) {
		code = VHD_EXIT_OK;
	} else if (fd_connected && (ret == -ECONNRESET || ret == -ENOTCONN)) {
		/* An inherited connection ends with its front-end: the normal way to finish. */
		vhd_log(VH_LOG_INFO, "the front-end closed the connection");
		code = VHD_EXIT_OK;
	} else {
		vhd_log(VH_LOG_ERR, "serving failed: %s", strerror(-ret));
		code = VHD_EXIT_FAIL;
	}
	pthread_kill(th, SIGUSR2);
	pthread_join(th, NULL);
	vhd_print_stats(s, stats, dev);
	return code;
}
