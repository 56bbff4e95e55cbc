/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-probe: connect to a vhost-user back-end, run the front-end handshake the way QEMU
 * does at device init, and print what the back-end offers: virtio features and protocol features
 * by name, queue count, memory slots and the device config space (decoded for blk and net).
 *
 * It only asks questions (GET_* and SET_PROTOCOL_FEATURES); it never sets up memory or rings,
 * so it is safe to point at a back-end that is in use by nothing else. The exception is --io
 * (blk only): a second connection with the library's blk client (driver.h) that writes a
 * pattern to a scratch area, reads it back and restores what was there.
 *
 * Exit status: 0 ok, 1 cannot connect, 2 usage, 3 the peer broke the protocol or hung up,
 * 4 the peer did not answer in time, 5 --io read back other data than it wrote.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhost/driver.h>
#include <libvhost/endpoint.h>
#include <libvhost/frontend.h>
#include <libvhost/log.h>
#include <libvhost/wire.h>

#define PROG "vhost-user-probe"

enum exit_code {
	EXIT_OK = 0,
	EXIT_CONNECT = 1,
	EXIT_USAGE = 2,
	EXIT_PROTOCOL = 3,
	EXIT_TIMEOUT = 4,
	EXIT_IO_DATA = 5,
};

enum dev_type { TYPE_AUTO, TYPE_UNKNOWN, TYPE_BLK, TYPE_NET };

static const char *type_name(enum dev_type t)
{
	switch (t) {
	case TYPE_BLK: return "blk";
	case TYPE_NET: return "net";
	case TYPE_AUTO: return "auto";
	default: return "unknown";
	}
}

/* ---- Feature names: transport bits from wire.h, device bits from driver.h ---- */

/* Name of a virtio feature bit for the device type; NULL when unnamed. */
static const char *feature_name(enum dev_type t, unsigned bit)
{
	const char *n = vh_transport_feature_name(bit);

	if (n)
		return n;
	if (t == TYPE_BLK)
		return vh_blk_feature_name(bit);
	if (t == TYPE_NET)
		return vh_net_feature_name(bit);
	return NULL;
}

/*
 * vhost-user does not say which device a socket serves. Guess from the device feature bits:
 * these net bits have no meaning for blk, and these blk bits none for net (bit 15 and below
 * overlap too much to be used alone).
 */
static enum dev_type guess_type(uint64_t features)
{
	const uint64_t net_only = VH_BIT(0) | VH_BIT(3) | VH_BIT(8) | VH_BIT(16) | VH_BIT(19) |
				  VH_BIT(20) | VH_BIT(21) | VH_BIT(22) | VH_BIT(23);
	const uint64_t blk_only = VH_BIT(4);
	const uint64_t blk_set = VH_BIT(1) | VH_BIT(2) | VH_BIT(6) | VH_BIT(9) | VH_BIT(10) |
				 VH_BIT(13) | VH_BIT(14);

	if (features & net_only)
		return TYPE_NET;
	if ((features & blk_only) || __builtin_popcountll(features & blk_set) >= 3)
		return TYPE_BLK;
	return TYPE_UNKNOWN;
}

/* ---- Options and results ---------------------------------------------------------------- */

struct options {
	const char *socket;
	enum dev_type type;
	long config_size;      /* -1 = by type */
	int json;
	int timeout_ms;
	int verbose;
	int have_want;
	uint64_t want_protocol;
	int io;                /* --io: read/write check with the blk client */
	int have_io_sector;
	uint64_t io_sector;
};

/* What --io did. */
struct io_result {
	int ran;
	int err;               /* 0, or the negative errno that stopped the check */
	const char *step;      /* where it stopped */
	uint64_t sector;
	uint32_t bytes;
	int pattern_ok;        /* the pattern read back equal */
	int restored_ok;       /* the original data was written back and read back equal */
	uint64_t features;     /* negotiated by the client */
	unsigned ring_size;
};

struct result {
	enum dev_type type;
	int type_guessed;
	uint64_t features;
	int has_protocol;
	uint64_t protocol_offered;
	uint64_t protocol_acked;
	int has_queue_num;
	uint64_t queue_num;
	int has_mem_slots;
	uint64_t mem_slots;
	int has_config;
	int config_refused;    /* GET_CONFIG answered with the "failed" empty reply */
	uint32_t config_size;
	uint8_t config[VH_USER_MAX_CONFIG_SIZE];
	struct io_result io;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " [OPTIONS] SOCKET\n"
"\n"
"Connects to the vhost-user back-end listening at SOCKET, negotiates like QEMU does at device\n"
"init (GET_FEATURES, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, GET_CONFIG)\n"
"and prints what it offers. Nothing is set up on the device.\n"
"\n"
"Options:\n"
"  -t, --type TYPE         blk, net or auto (default): how to name device feature bits and\n"
"                          decode the config space; auto guesses from the feature bits\n"
"  -c, --config-size N     bytes of config space to read, 0-%u (default: 60 for blk,\n"
"                          12 for net, 0 when the type is unknown)\n"
"  -p, --protocol MASK     protocol features to accept if offered (default: all the library\n"
"                          implements, 0x%" PRIx64 ")\n"
"  -j, --json              print one JSON object instead of text\n"
"  -T, --timeout SECONDS   wait at most this long for each reply (default 5)\n"
"  -v, --verbose           print the library's log (twice: debug messages)\n"
"      --io                blk only: set the device up (memory, rings) with the library's\n"
"                          blk client, write a pattern to 4 KiB at the end of the disk (or\n"
"                          at --io-sector), read it back, restore the original data\n"
"      --io-sector N       sector of the --io check (default: capacity - 8)\n"
"  -h, --help              print this help\n"
"\n"
"Exit status: 0 ok, 1 cannot connect, 2 usage error, 3 the back-end broke the protocol or\n"
"hung up, 4 the back-end did not answer in time, 5 --io read back other data.\n",
		VH_USER_MAX_CONFIG_SIZE, (uint64_t)VH_FRONTEND_PROTOCOL_FEATURES);
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	exit(EXIT_USAGE);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "config-size", required_argument, NULL, 'c' },
		{ "protocol", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "io", no_argument, NULL, 'I' },
		{ "io-sector", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->type = TYPE_AUTO;
	o->config_size = -1;
	o->timeout_ms = 5000;

	while ((c = getopt_long(argc, argv, "t:c:p:jT:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!strcmp(optarg, "blk"))
				o->type = TYPE_BLK;
			else if (!strcmp(optarg, "net"))
				o->type = TYPE_NET;
			else if (!strcmp(optarg, "auto"))
				o->type = TYPE_AUTO;
			else
				die_usage("unknown device type '%s' (blk, net or auto)", optarg);
			break;
		case 'c': {
			uint64_t v;
			if (parse_u64(optarg, &v) || v > VH_USER_MAX_CONFIG_SIZE)
				die_usage("config size must be 0-%u, not '%s'",
					  VH_USER_MAX_CONFIG_SIZE, optarg);
			o->config_size = (long)v;
			break;
		}
		case 'p':
			if (parse_u64(optarg, &o->want_protocol))
				die_usage("bad protocol feature mask '%s'", optarg);
			o->have_want = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'T': {
			char *end;
			errno = 0;
			double s = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(s > 0) || s > 3600)
				die_usage("timeout must be a number of seconds in (0, 3600], not '%s'",
					  optarg);
			o->timeout_ms = (int)(s * 1000);
			if (o->timeout_ms < 1)
				o->timeout_ms = 1;
			break;
		}
		case 'v':
			o->verbose++;
			break;
		case 'I':
			o->io = 1;
			break;
		case 'S':
			if (parse_u64(optarg, &o->io_sector))
				die_usage("bad --io-sector '%s'", optarg);
			o->have_io_sector = 1;
			o->io = 1;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			exit(EXIT_USAGE);
		}
	}
	if (optind >= argc)
		die_usage("missing SOCKET");
	if (optind + 1 < argc)
		die_usage("unexpected argument '%s'", argv[optind + 1]);
	o->socket = argv[optind];
	if (!*o->socket)
		die_usage("empty SOCKET path");
	if (o->io && o->type == TYPE_NET)
		die_usage("--io needs a blk device");
}

/* ---- Talking to the back-end ------------------------------------------------------------- */

static void log_to_stderr(void *opaque, enum vh_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)opaque;
	fprintf(stderr, PROG ": libvhost %s: %s\n", level <= VH_LOG_DEBUG ? names[level] : "?", msg);
}

static void watchdog(int sig)
{
	static const char msg[] = PROG ": no progress, giving up\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(EXIT_TIMEOUT);
}

/* Maps a failed request to a message and an exit code. */
static int request_failed(const char *what, int err)
{
	switch (err) {
	case -ETIMEDOUT:
		fprintf(stderr, PROG ": %s: the back-end did not answer in time\n", what);
		return EXIT_TIMEOUT;
	case -ECONNRESET:
	case -EPIPE:
		fprintf(stderr, PROG ": %s: the back-end closed the connection\n", what);
		return EXIT_PROTOCOL;
	case -EPROTO:
	case -EBADMSG:
	case -EMSGSIZE:
		fprintf(stderr, PROG ": %s: the back-end violated the vhost-user protocol (%s)\n",
			what, strerror(-err));
		return EXIT_PROTOCOL;
	case -EIO:
		fprintf(stderr, PROG ": %s: the back-end refused the request\n", what);
		return EXIT_PROTOCOL;
	default:
		fprintf(stderr, PROG ": %s: %s\n", what, strerror(-err));
		return EXIT_PROTOCOL;
	}
}

static int connect_socket(const char *path)
{
	struct stat st;
	int fd;

	if (strlen(path) >= 108) {
		fprintf(stderr, PROG ": %s: socket path too long (at most 107 bytes)\n", path);
		return -1;
	}
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			fprintf(stderr, PROG ": %s: no such socket (is the back-end running?)\n", path);
		else
			fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, PROG ": %s: not a Unix socket\n", path);
		return -1;
	}
	fd = vh_socket_connect(path, 1, 0);
	if (fd < 0) {
		if (fd == -ECONNREFUSED)
			fprintf(stderr, PROG ": %s: connection refused (stale socket: no back-end "
				"is listening)\n", path);
		else
			fprintf(stderr, PROG ": %s: cannot connect: %s\n", path, strerror(-fd));
		return -1;
	}
	return fd;
}

static int probe(const struct options *o, struct result *r)
{
	struct vh_frontend_config cfg;
	struct vh_frontend *fe = NULL;
	uint64_t want = o->have_want ? o->want_protocol : VH_FRONTEND_PROTOCOL_FEATURES;
	int fd, ret, code = EXIT_OK;

	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = o->timeout_ms;
	if (o->verbose) {
		cfg.log.fn = log_to_stderr;
		cfg.log.max_level = o->verbose > 1 ? VH_LOG_DEBUG : VH_LOG_INFO;
	}

	fd = connect_socket(o->socket);
	if (fd < 0)
		return EXIT_CONNECT;
	ret = vh_frontend_new(&fe, fd, &cfg); /* owns fd from here, also on error */
	if (ret < 0) {
		fprintf(stderr, PROG ": cannot set up the front-end: %s\n", strerror(-ret));
		return EXIT_CONNECT;
	}

	/* QEMU device init, steps 1-2: GET_FEATURES, GET/SET_PROTOCOL_FEATURES. */
	want &= VH_FRONTEND_PROTOCOL_FEATURES;
	ret = vh_frontend_negotiate(fe, want, &r->features, &r->protocol_acked);
	if (ret < 0) {
		code = request_failed("feature negotiation", ret);
		goto out;
	}
	r->has_protocol = !!(r->features & VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
	r->protocol_offered = vh_frontend_protocol_features_offered(fe);

	if (o->type == TYPE_AUTO) {
		r->type = guess_type(r->features);
		r->type_guessed = 1;
	} else {
		r->type = o->type;
	}

	/* Step 3: queue count, only with MQ. */
	if (r->protocol_acked & VH_BIT(VH_USER_PROTOCOL_F_MQ)) {
		ret = vh_frontend_get_queue_num(fe, &r->queue_num);
		if (ret < 0) {
			code = request_failed("GET_QUEUE_NUM", ret);
			goto out;
		}
		r->has_queue_num = 1;
	}
	/* Step 4: memory slots, only with CONFIGURE_MEM_SLOTS. */
	if (r->protocol_acked & VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		ret = vh_frontend_get_max_mem_slots(fe, &r->mem_slots);
		if (ret < 0) {
			code = request_failed("GET_MAX_MEM_SLOTS", ret);
			goto out;
		}
		r->has_mem_slots = 1;
	}
	/* Config space, only with CONFIG (QEMU reads it at realize for blk). */
	long size = o->config_size;
	if (size < 0)
		size = r->type == TYPE_BLK ? 60 : r->type == TYPE_NET ? 12 : 0;
	if (size > 0 && (r->protocol_acked & VH_BIT(VH_USER_PROTOCOL_F_CONFIG))) {
		ret = vh_frontend_get_config(fe, 0, r->config, (uint32_t)size, 0);
		r->config_size = (uint32_t)size;
		if (ret == -EIO) {
			/* A refusal is an answer, not a broken peer: report it with the rest.
			 * libvhost-user based back-ends refuse sizes beyond their config. */
			fprintf(stderr, PROG ": warning: the back-end refused GET_CONFIG of %ld "
				"bytes (try a smaller --config-size)\n", size);
			r->config_refused = 1;
		} else if (ret < 0) {
			code = request_failed("GET_CONFIG", ret);
			goto out;
		} else {
			r->has_config = 1;
		}
	}
out:
	vh_frontend_free(fe);
	return code;
}

/* ---- --io: a read/write check through the library's blk client ------------------------- */

#define IO_SECTORS 8u

static void json_string(const char *s);

static int io_check(const struct options *o, struct io_result *io)
{
	struct vh_frontend_config cfg;
	struct vh_blk_opts bo;
	struct vh_device *dev = NULL;
	struct vh_blk *blk = NULL;
	const struct vh_blk_config *c;
	uint8_t orig[IO_SECTORS * 512], pat[IO_SECTORS * 512], back[IO_SECTORS * 512];
	uint64_t n = IO_SECTORS;
	int r, code;

	memset(io, 0, sizeof(*io));
	io->ran = 1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = o->timeout_ms;
	if (o->verbose) {
		cfg.log.fn = log_to_stderr;
		cfg.log.max_level = o->verbose > 1 ? VH_LOG_DEBUG : VH_LOG_INFO;
	}
	memset(&bo, 0, sizeof(bo));
	bo.timeout_ms = o->timeout_ms;
	bo.log = cfg.log;
	bo.buf_mem = 65536;
	io->step = "connect";
	r = vh_frontend_device_open(&dev, o->socket, &cfg, VH_DRIVER_USER_PROTOCOL_FEATURES);
	if (r < 0)
		goto out;
	io->step = "device set-up";
	r = vh_blk_open(&blk, dev, &bo);
	if (r < 0)
		goto out;
	io->features = vh_driver_features(vh_blk_driver(blk));
	io->ring_size = vh_driver_queue_size(vh_blk_driver(blk), 0);
	c = vh_blk_config(blk);
	io->step = "choosing the sector";
	if (o->have_io_sector) {
		io->sector = o->io_sector;
		if (c->have_config && io->sector < c->capacity && c->capacity - io->sector < n)
			n = c->capacity - io->sector;
	} else if (!c->have_config || c->capacity == 0) {
		r = -ENODATA; /* no capacity to find the end by */
		goto out;
	} else {
		if (c->capacity < n)
			n = c->capacity;
		io->sector = c->capacity - n;
	}
	io->bytes = (uint32_t)n * 512;
	io->step = "read";
	r = vh_blk_read(blk, 0, io->sector, orig, io->bytes);
	if (r < 0)
		goto out;
	for (uint32_t i = 0; i < io->bytes; i++)
		pat[i] = (uint8_t)~orig[i]; /* every byte differs from what was there */
	io->step = "write";
	r = vh_blk_write(blk, 0, io->sector, pat, io->bytes);
	if (r < 0)
		goto out;
	io->step = "read back";
	r = vh_blk_read(blk, 0, io->sector, back, io->bytes);
	if (r < 0)
		goto out;
	io->pattern_ok = !memcmp(pat, back, io->bytes);
	io->step = "restore";
	r = vh_blk_write(blk, 0, io->sector, orig, io->bytes);
	if (r == 0)
		r = vh_blk_read(blk, 0, io->sector, back, io->bytes);
	if (r < 0)
		goto out;
	io->restored_ok = !memcmp(orig, back, io->bytes);
	if (io->features & VH_BIT(VH_BLK_F_FLUSH)) {
		io->step = "flush";
		r = vh_blk_flush(blk, 0);
		if (r < 0)
			goto out;
	}
	io->step = NULL;
out:
	io->err = r;
	vh_blk_close(blk);
	vh_device_close(dev);
	if (r == 0)
		return io->pattern_ok && io->restored_ok ? EXIT_OK : EXIT_IO_DATA;
	if (r == -ENODATA) {
		fprintf(stderr, PROG ": --io: the disk's capacity is unknown (no CONFIG); give "
			"--io-sector\n");
		return EXIT_USAGE;
	}
	if (r == -ERANGE) {
		fprintf(stderr, PROG ": --io: sector %" PRIu64 " is beyond the disk\n", io->sector);
		return EXIT_USAGE;
	}
	if (r == -ECONNREFUSED || r == -ENOENT) {
		fprintf(stderr, PROG ": --io: %s: cannot connect: %s\n", o->socket, strerror(-r));
		return EXIT_CONNECT;
	}
	code = request_failed(io->step, r);
	return code;
}

static const char *io_error(const struct io_result *io)
{
	return io->err ? strerror(-io->err) : NULL;
}

static void print_io_text(const struct io_result *io)
{
	if (!io->ran)
		return;
	if (io->err && !io->bytes) {
		printf("io check:           failed at %s: %s\n", io->step, io_error(io));
		return;
	}
	printf("io check:           %" PRIu32 " bytes at sector %" PRIu64 "\n", io->bytes,
	       io->sector);
	if (io->err)
		printf("  failed at %s: %s\n", io->step, io_error(io));
	if (io->err && !io->step)
		return;
	printf("  pattern written, read back:  %s\n", io->pattern_ok ? "equal" : "DIFFERENT");
	printf("  original data restored:      %s\n", io->restored_ok ? "equal" : "DIFFERENT");
	printf("  client rings:                %s, %u entries (features 0x%" PRIx64 ")\n",
	       io->features & VH_VQ_F_RING_PACKED ? "packed" : "split", io->ring_size,
	       io->features);
}

static void print_io_json(const struct io_result *io)
{
	if (!io->ran)
		return;
	printf(",\n  \"io\": {\n    \"sector\": %" PRIu64 ",\n    \"bytes\": %" PRIu32 ",\n",
	       io->sector, io->bytes);
	printf("    \"pattern_ok\": %s,\n    \"restored_ok\": %s,\n",
	       io->pattern_ok ? "true" : "false", io->restored_ok ? "true" : "false");
	printf("    \"ring\": \"%s\",\n    \"ring_size\": %u,\n",
	       io->features & VH_VQ_F_RING_PACKED ? "packed" : "split", io->ring_size);
	printf("    \"features\": %" PRIu64 ",\n    \"features_hex\": \"0x%" PRIx64 "\",\n",
	       io->features, io->features);
	if (io->err) {
		printf("    \"failed_step\": ");
		json_string(io->step ? io->step : "");
		printf(",\n    \"error\": ");
		json_string(io_error(io));
		printf("\n  }");
	} else {
		printf("    \"failed_step\": null,\n    \"error\": null\n  }");
	}
}

/* ---- Output ------------------------------------------------------------------------------- */

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

struct field {
	const char *name;
	unsigned off;
	unsigned size;
};

/* struct virtio_blk_config, in order; decoded as far as the config read reaches. */
static const struct field blk_fields[] = {
	{ "capacity", 0, 8 },
	{ "size_max", 8, 4 },
	{ "seg_max", 12, 4 },
	{ "cylinders", 16, 2 },
	{ "heads", 18, 1 },
	{ "sectors", 19, 1 },
	{ "blk_size", 20, 4 },
	{ "physical_block_exp", 24, 1 },
	{ "alignment_offset", 25, 1 },
	{ "min_io_size", 26, 2 },
	{ "opt_io_size", 28, 4 },
	{ "writeback", 32, 1 },
	{ "num_queues", 34, 2 },
	{ "max_discard_sectors", 36, 4 },
	{ "max_discard_seg", 40, 4 },
	{ "discard_sector_alignment", 44, 4 },
	{ "max_write_zeroes_sectors", 48, 4 },
	{ "max_write_zeroes_seg", 52, 4 },
	{ "write_zeroes_may_unmap", 56, 1 },
};

/* struct virtio_net_config after the MAC. */
static const struct field net_fields[] = {
	{ "status", 6, 2 },
	{ "max_virtqueue_pairs", 8, 2 },
	{ "mtu", 10, 2 },
	{ "speed", 12, 4 },
	{ "duplex", 16, 1 },
};

static void fields_for(enum dev_type t, const struct field **f, size_t *n)
{
	if (t == TYPE_BLK) {
		*f = blk_fields;
		*n = sizeof(blk_fields) / sizeof(blk_fields[0]);
	} else if (t == TYPE_NET) {
		*f = net_fields;
		*n = sizeof(net_fields) / sizeof(net_fields[0]);
	} else {
		*f = NULL;
		*n = 0;
	}
}

static void print_feature_lines(const struct result *r, uint64_t bits, int protocol)
{
	for (unsigned b = 0; b < 64; b++) {
		if (!(bits & VH_BIT(b)))
			continue;
		const char *n = protocol ? vh_protocol_feature_name(b) : feature_name(r->type, b);
		printf("  %2u  %s\n", b, n ? n : "(unknown)");
	}
}

static void print_text_probe(const struct options *o, const struct result *r);

static void print_text(const struct options *o, const struct result *r)
{
	print_text_probe(o, r);
	print_io_text(&r->io);
}

static void print_text_probe(const struct options *o, const struct result *r)
{
	printf("socket:             %s\n", o->socket);
	printf("device type:        %s%s\n", type_name(r->type),
	       r->type_guessed ? " (guessed from the feature bits)" : "");
	printf("features:           0x%" PRIx64 "\n", r->features);
	print_feature_lines(r, r->features, 0);
	if (r->has_protocol) {
		printf("protocol features:  0x%" PRIx64 " offered, 0x%" PRIx64 " accepted\n",
		       r->protocol_offered, r->protocol_acked);
		print_feature_lines(r, r->protocol_offered, 1);
	} else {
		printf("protocol features:  not offered (no PROTOCOL_FEATURES bit)\n");
	}
	if (r->has_queue_num)
		printf("queues:             %" PRIu64 "\n", r->queue_num);
	else
		printf("queues:             not reported (no MQ)\n");
	if (r->has_mem_slots)
		printf("max memory slots:   %" PRIu64 "\n", r->mem_slots);
	else
		printf("max memory slots:   not reported (no CONFIGURE_MEM_SLOTS)\n");
	if (!r->has_config) {
		if (!(r->protocol_acked & VH_BIT(VH_USER_PROTOCOL_F_CONFIG)))
			printf("config space:       not offered (no CONFIG)\n");
		else if (r->config_refused)
			printf("config space:       refused by the back-end (GET_CONFIG of %" PRIu32
			       " bytes)\n", r->config_size);
		else if (o->config_size == 0)
			printf("config space:       not read (--config-size 0)\n");
		else
			printf("config space:       not read (unknown device type; use --type or "
			       "--config-size)\n");
		return;
	}
	printf("config space:       %" PRIu32 " bytes\n", r->config_size);
	for (uint32_t i = 0; i < r->config_size; i += 16) {
		printf("  %04" PRIx32 ":", i);
		for (uint32_t j = i; j < i + 16 && j < r->config_size; j++)
			printf(" %02x", r->config[j]);
		printf("\n");
	}
	if (r->type == TYPE_NET && r->config_size >= 6)
		printf("  mac: %02x:%02x:%02x:%02x:%02x:%02x\n", r->config[0], r->config[1],
		       r->config[2], r->config[3], r->config[4], r->config[5]);
	const struct field *f;
	size_t n;
	fields_for(r->type, &f, &n);
	for (size_t i = 0; i < n; i++) {
		if (f[i].off + f[i].size > r->config_size)
			break;
		uint64_t v = le(r->config + f[i].off, f[i].size);
		printf("  %s: %" PRIu64, f[i].name, v);
		if (r->type == TYPE_BLK && !strcmp(f[i].name, "capacity"))
			printf(" sectors (%" PRIu64 " bytes)", v * 512);
		printf("\n");
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p); /* bytes outside ASCII as code points: lossless enough */
		else
			putchar(*p);
	}
	putchar('"');
}

static void json_names(const struct result *r, uint64_t bits, int protocol)
{
	int first = 1;

	putchar('[');
	for (unsigned b = 0; b < 64; b++) {
		if (!(bits & VH_BIT(b)))
			continue;
		const char *n = protocol ? vh_protocol_feature_name(b) : feature_name(r->type, b);
		char buf[16];
		if (!n) {
			snprintf(buf, sizeof(buf), "bit%u", b);
			n = buf;
		}
		printf("%s", first ? "" : ", ");
		json_string(n);
		first = 0;
	}
	putchar(']');
}

static void print_json(const struct options *o, const struct result *r)
{
	printf("{\n  \"socket\": ");
	json_string(o->socket);
	printf(",\n  \"type\": \"%s\",\n  \"type_guessed\": %s,\n", type_name(r->type),
	       r->type_guessed ? "true" : "false");
	printf("  \"features\": %" PRIu64 ",\n  \"features_hex\": \"0x%" PRIx64 "\",\n",
	       r->features, r->features);
	printf("  \"feature_names\": ");
	json_names(r, r->features, 0);
	printf(",\n  \"protocol_features_offered\": %" PRIu64 ",\n", r->protocol_offered);
	printf("  \"protocol_features_offered_hex\": \"0x%" PRIx64 "\",\n", r->protocol_offered);
	printf("  \"protocol_feature_names\": ");
	json_names(r, r->protocol_offered, 1);
	printf(",\n  \"protocol_features_accepted\": %" PRIu64 ",\n", r->protocol_acked);
	printf("  \"protocol_features_accepted_hex\": \"0x%" PRIx64 "\",\n", r->protocol_acked);
	if (r->has_queue_num)
		printf("  \"queue_num\": %" PRIu64 ",\n", r->queue_num);
	else
		printf("  \"queue_num\": null,\n");
	if (r->has_mem_slots)
		printf("  \"max_mem_slots\": %" PRIu64 ",\n", r->mem_slots);
	else
		printf("  \"max_mem_slots\": null,\n");
	printf("  \"config_refused\": %s,\n", r->config_refused ? "true" : "false");
	if (!r->has_config) {
		printf("  \"config_size\": 0,\n  \"config\": null");
		print_io_json(&r->io);
		printf("\n}\n");
		return;
	}
	printf("  \"config_size\": %" PRIu32 ",\n  \"config\": \"", r->config_size);
	for (uint32_t i = 0; i < r->config_size; i++)
		printf("%02x", r->config[i]);
	printf("\"");
	const struct field *f;
	size_t n;
	fields_for(r->type, &f, &n);
	if (n) {
		printf(",\n  \"%s\": {", type_name(r->type));
		int first = 1;
		if (r->type == TYPE_NET && r->config_size >= 6) {
			printf("\n    \"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\"", r->config[0],
			       r->config[1], r->config[2], r->config[3], r->config[4], r->config[5]);
			first = 0;
		}
		for (size_t i = 0; i < n; i++) {
			if (f[i].off + f[i].size > r->config_size)
				break;
			printf("%s\n    \"%s\": %" PRIu64, first ? "" : ",", f[i].name,
			       le(r->config + f[i].off, f[i].size));
			first = 0;
		}
		printf("\n  }");
	}
	print_io_json(&r->io);
	printf("\n}\n");
}

int main(int argc, char **argv)
{
	struct options o;
	struct result r;
	int code;

	parse_options(argc, argv, &o);
	memset(&r, 0, sizeof(r));

	/* The library bounds every wait; this catches anything else (e.g. a blocking connect on a
	 * full listen backlog) so the tool can never hang a script. */
	signal(SIGALRM, watchdog);
	long budget = ((long)o.timeout_ms * (o.io ? 24 : 8) + 999) / 1000 + 1;
	alarm(budget > UINT_MAX ? UINT_MAX : (unsigned)budget);

	code = probe(&o, &r);
	if (code == EXIT_OK && o.io) {
		if (r.type != TYPE_BLK) {
			alarm(0);
			fprintf(stderr, PROG ": --io needs a blk device (this one is %s; use "
				"--type blk if it is one)\n", type_name(r.type));
			return EXIT_USAGE;
		}
		code = io_check(&o, &r.io);
	}
	alarm(0);
	/* The probe's answers are printed even when the --io check failed after it. */
	if (code != EXIT_OK && !r.io.ran)
		return code;
	if (o.json)
		print_json(&o, &r);
	else
		print_text(&o, &r);
	if (fflush(stdout) != 0)
		return EXIT_CONNECT;
	return code;
}
