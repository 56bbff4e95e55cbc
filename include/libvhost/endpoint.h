/* SPDX-License-Identifier: MIT */
/*
 * One endpoint for every vhost-user channel (main socket, back-end channel, GPU socket):
 * framing, SCM_RIGHTS fd passing, timeouts, and Unix socket set-up.
 *
 * Ownership: an endpoint owns its socket fd from vh_endpoint_init() until vh_endpoint_close().
 * Fds passed to vh_endpoint_send() are borrowed (sent, never closed). Fds returned by
 * vh_endpoint_recv() belong to the caller; on any error the endpoint has already closed them.
 */
#ifndef LIBVHOST_ENDPOINT_H
#define LIBVHOST_ENDPOINT_H

#include <libvhost/log.h>
#include <libvhost/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_endpoint {
	int fd;             /* owned; -1 once closed */
	int error;          /* sticky negative errno once the stream is unusable, else 0 */
	int timeout_ms;     /* bound on finishing a message once it has started, and on waiting for a
			     * reply; -1 waits for ever. Default 5000. */
	const char *name;   /* for log lines, e.g. "main" or "backend-channel" */
	struct vh_logger log;
};

/* Takes ownership of fd (a connected AF_UNIX stream socket). Never fails. */
void vh_endpoint_init(struct vh_endpoint *ep, int fd, const char *name);
/* Closes the socket (if still open). Safe to call twice. */
void vh_endpoint_close(struct vh_endpoint *ep);
/* The socket to poll for input, or -1. */
int vh_endpoint_fd(const struct vh_endpoint *ep);

/*
 * Sends one message: header (hdr->size gives the payload length, at most VH_USER_MAX_PAYLOAD)
 * and payload, with nfds (<= VH_USER_MAX_FDS) fds attached to the first byte. Handles EINTR and
 * partial writes; never raises SIGPIPE. Returns 0 or a negative errno (sticky on stream errors).
 */
int vh_endpoint_send(struct vh_endpoint *ep, const struct vh_msg_hdr *hdr, const void *payload,
		     const int *fds, unsigned nfds);

/*
 * Receives one whole message. wait_ms bounds the wait for its first byte (0 = only if data is
 * already there, -1 = for ever); once a message has started, ep->timeout_ms bounds the rest.
 * On success returns 0, fills msg (hdr + hdr.size payload bytes) and fds[0..*nfds) (the caller owns
 * them; fds must have room for VH_USER_MAX_FDS).
 * Errors: -EAGAIN nothing arrived within wait_ms (not sticky); -ECONNRESET the peer closed
 * (EOF, also inside a message); -EMSGSIZE size above VH_USER_MAX_PAYLOAD; -EBADMSG more than
 * VH_USER_MAX_FDS fds (MSG_CTRUNC) or fds after the first byte; -ETIMEDOUT a message stalled
 * half-way. All errors except -EAGAIN are sticky and close every fd received so far.
 */
int vh_endpoint_recv(struct vh_endpoint *ep, struct vh_msg *msg, int *fds, unsigned *nfds,
		     int wait_ms);

/* Closes n fds (skipping negatives) and sets each slot to -1. */
void vh_close_fds(int *fds, unsigned n);

/* ---- Unix sockets ----------------------------------------------------------------------- */

/*
 * Creates a listening socket at path (close-on-exec). If path exists and is a socket nobody
 * listens on (a stale one left by a crashed server), it is replaced; if a server answers there,
 * returns -EADDRINUSE; if path is not a socket, -EEXIST. Returns the fd (caller owns) or -errno.
 */
int vh_socket_listen(const char *path);
/* Accepts one connection (close-on-exec). Returns the fd (caller owns) or -errno. */
int vh_socket_accept(int listen_fd);
/* Connects to path, retrying ECONNREFUSED/ENOENT up to `attempts` times with delay_ms between.
 * An attempt waits at most delay_ms (1 s when 0) for room in a full listen backlog, then counts
 * as failed with -EAGAIN (also retried). */
int vh_socket_connect(const char *path, unsigned attempts, unsigned delay_ms);
/* Returns 0 if fd is a listening AF_UNIX stream socket (an inherited or activated one). */
int vh_socket_is_listening(int fd);
/* Socket activation: the first fd handed over by LISTEN_PID/LISTEN_FDS for this process
 * (normally 3), after checking it is a listening Unix socket; -ENOENT if none. */
int vh_socket_activation_fd(void);
/* A connected socketpair (close-on-exec) for in-process channels and tests. */
int vh_socketpair(int sv[2]);

#ifdef __cplusplus
}
#endif
#endif
