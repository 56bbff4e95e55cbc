/* SPDX-License-Identifier: MIT */
/* Internal helpers shared between library files. Not installed. */
#ifndef LIBVHOST_INTERNAL_H
#define LIBVHOST_INTERNAL_H

#include <errno.h>
#include <stdint.h>
#include <libvhost/log.h>

#define VHP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define VHP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define vhp_likely(x) __builtin_expect(!!(x), 1)
#define vhp_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define VHP_PRINTF(f, a)
#define vhp_likely(x) (x)
#define vhp_unlikely(x) (x)
#endif

/* Formats and forwards one line to the logger; does nothing (and formats nothing) if there is
 * no logger or the level is above its max_level. */
void vhp_log(const struct vh_logger *log, enum vh_log_level level, const char *fmt, ...)
	VHP_PRINTF(3, 4);

#define vhp_err(l, ...) vhp_log((l), VH_LOG_ERR, __VA_ARGS__)
#define vhp_warn(l, ...) vhp_log((l), VH_LOG_WARN, __VA_ARGS__)
#define vhp_info(l, ...) vhp_log((l), VH_LOG_INFO, __VA_ARGS__)
#define vhp_dbg(l, ...) vhp_log((l), VH_LOG_DEBUG, __VA_ARGS__)

/* Closes fd if >= 0 and preserves errno. */
void vhp_close(int fd);

#endif
