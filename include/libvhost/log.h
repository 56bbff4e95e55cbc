/* SPDX-License-Identifier: MIT */
/*
 * Logging and error classification shared by every libvhost object.
 *
 * The library prints nothing by itself. An object that can report details takes a vh_logger;
 * a NULL function (the zero value) discards everything.
 */
#ifndef LIBVHOST_LOG_H
#define LIBVHOST_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum vh_log_level {
	VH_LOG_ERR = 0,
	VH_LOG_WARN = 1,
	VH_LOG_INFO = 2,
	VH_LOG_DEBUG = 3,
};

/* msg is a complete line without the trailing newline; valid only during the call. */
typedef void (*vh_log_fn)(void *opaque, enum vh_log_level level, const char *msg);

struct vh_logger {
	vh_log_fn fn;
	void *opaque;
	enum vh_log_level max_level; /* messages above this level are not formatted */
};

/* What a caller should do after a failed call that returned -err. */
enum vh_error_class {
	VH_ERR_NONE = 0,     /* not an error */
	VH_ERR_RETRY,        /* transient (EINTR, EAGAIN): the same call may succeed */
	VH_ERR_RECONNECT,    /* the connection is gone (EOF, ECONNRESET, EPIPE, ETIMEDOUT) */
	VH_ERR_FATAL,        /* protocol violation or misuse: do not retry on this object */
};

/* Classifies a negative errno returned by any libvhost function. */
enum vh_error_class vh_error_classify(int err);

#ifdef __cplusplus
}
#endif
#endif
