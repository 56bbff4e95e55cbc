/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

void vhp_log(const struct vh_logger *log, enum vh_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!log || !log->fn || level > log->max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log->fn(log->opaque, level, line);
}

void vhp_close(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

enum vh_error_class vh_error_classify(int err)
{
	if (err >= 0)
		return VH_ERR_NONE;
	switch (-err) {
	case EINTR:
	case EAGAIN:
		return VH_ERR_RETRY;
	case ECONNRESET:
	case ECONNREFUSED:
	case ENOTCONN:
	case EPIPE:
	case ETIMEDOUT:
	case ESHUTDOWN:
	case ENOENT: /* socket path gone: the server may come back */
		return VH_ERR_RECONNECT;
	default:
		return VH_ERR_FATAL;
	}
}
