/* SPDX-License-Identifier: MIT */
/*
 * Shared command-line and daemon helpers for the device servers (vhost-user-blk, -rng, -net).
 *
 * What every device server gets from here:
 *  - the options of the vhost-user spec's "Backend program conventions": --socket-path=PATH
 *    (listen, serve one front-end after another), --fd=FD (an inherited socket: a connected
 *    one is served once, a listening one like --socket-path), --print-capabilities (the JSON
 *    of the vhost-user.json schema on stdout, everything else ignored); plus --connect=PATH
 *    (client mode, reconnecting), --threads, --poll-us, -v/--verbose, -q/--quiet, -h/--help
 *    and the device's own options from a table;
 *  - number parsing with range checks and K/M/G suffixes, and clear errors: a bad command line
 *    prints one line and exits with 2, a failure to start prints one line and exits with 1;
 *  - a logger for the library (struct vh_logger) and for the tool, on stderr;
 *  - vhd_serve(): signals (SIGINT/SIGTERM stop cleanly, SIGUSR1 prints a statistics line, one
 *    more is printed at exit), the connection set-up and vh_server_run().
 *
 * Tool code, not library code: the parsed options and the log level are process globals.
 */
#ifndef LIBVHOST_TOOLS_DEVSERVER_H
#define LIBVHOST_TOOLS_DEVSERVER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <libvhost/log.h>
#include <libvhost/server.h>

/* Exit codes shared by the device servers. */
#define VHD_EXIT_OK 0
#define VHD_EXIT_FAIL 1   /* could not start, or a fatal error while serving */
#define VHD_EXIT_USAGE 2  /* bad command line */

/* One device-specific option. */
struct vhd_option {
	const char *name;     /* long name without the dashes; NULL ends the table */
	int has_arg;          /* 0: a flag; 1: needs a value (--name=VALUE or --name VALUE) */
	const char *argname;  /* shown in --help ("PATH", "N") */
	const char *help;     /* one line */
	int id;               /* passed to vhd_program.parse; 0..999 */
};

struct vhd_program {
	const char *name;          /* "vhost-user-blk"; prefixes every message */
	const char *summary;       /* one line for --help */
	const char *usage_extra;   /* more --help text after the options, or NULL */
	/* --print-capabilities: the schema's VHostUserBackendType ("block", "rng", "net") and the
	 * feature names it defines for that type (NULL-terminated; NULL = no "features" member). */
	const char *cap_type;
	const char *const *cap_features;
	const struct vhd_option *options;
	/* Called for each device option; arg is NULL for flags. Returns 0, or -1 after printing
	 * the problem with vhd_usage_error(). */
	int (*parse)(void *dev, int id, const char *arg);
	void *dev;
};

/* How the front-end reaches us. */
enum vhd_mode {
	VHD_MODE_NONE = 0,
	VHD_MODE_LISTEN,   /* --socket-path */
	VHD_MODE_FD,       /* --fd */
	VHD_MODE_CONNECT,  /* --connect */
};

struct vhd_common {
	enum vhd_mode mode;
	const char *path;   /* --socket-path / --connect */
	int fd;             /* --fd, else -1 */
	unsigned threads;   /* --threads; 0 = the device's default */
	int poll_us;        /* --poll-us */
};

/*
 * Parses argv. Returns 0 to go on serving, 1 if the program should exit with VHD_EXIT_OK at
 * once (--help or --print-capabilities were handled), or -1 for a bad command line (already
 * reported; exit with VHD_EXIT_USAGE). A connection mode is required unless exiting.
 */
int vhd_parse_args(const struct vhd_program *prog, int argc, char **argv, struct vhd_common *c);

/* Reports a command-line problem: "PROG: MESSAGE (see --help)". Returns -1. */
int vhd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number options: decimal or 0x hex, optionally with a K/M/G/T suffix (binary multiples) when
 * `suffix` is set; checked against [min, max]. Return 0, or -1 after vhd_usage_error(). */
int vhd_parse_u64(const char *opt, const char *arg, uint64_t min, uint64_t max, int suffix,
		  uint64_t *out);
int vhd_parse_uint(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *out);

/* ---- Logging ----------------------------------------------------------------------------- */

/* Level printed (default VH_LOG_INFO; -v raises, -q lowers to VH_LOG_ERR). */
enum vh_log_level vhd_log_level(void);
void vhd_log(enum vh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vhd_vlog(enum vh_log_level level, const char *fmt, va_list ap);
/* A vh_logger that prints through vhd_log (for vh_server_config.log). */
struct vh_logger vhd_logger(void);

/* ---- Serving ----------------------------------------------------------------------------- */

/*
 * Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 (and ignores SIGPIPE) in the calling thread, so
 * every thread created afterwards inherits the mask and only vhd_serve()'s signal thread
 * takes them. Call first thing in main(), before any thread exists.
 */
void vhd_block_signals(void);

/* Appends device counters to a statistics line (buf is NUL-terminated, len bytes). */
typedef void (*vhd_stats_fn)(void *dev, char *buf, size_t len);

/*
 * Sets up the connection of c (listen / fd / connect), then runs vh_server_run() with
 * `threads` workers and queue_thread (NULL = round robin) until SIGINT/SIGTERM, a fatal error
 * or, with --fd on a connected socket, the end of that connection. SIGUSR1 prints a statistics
 * line (per queue counters, then `stats`); one more is printed when serving ends. Returns the
 * exit code.
 */
int vhd_serve(struct vh_server *s, const struct vhd_common *c, unsigned threads,
	      const unsigned *queue_thread, vhd_stats_fn stats, void *dev);

/* The statistics line as vhd_serve() prints it (for tests and callers with their own loop). */
void vhd_print_stats(struct vh_server *s, vhd_stats_fn stats, void *dev);

/* Online CPUs (at least 1). */
unsigned vhd_ncpus(void);

#endif
