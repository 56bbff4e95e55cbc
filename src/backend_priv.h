/* SPDX-License-Identifier: MIT */
/* State of the vhost-user back-end server, shared by backend.c and backend_send.c. */
#ifndef LIBVHOST_BACKEND_PRIV_H
#define LIBVHOST_BACKEND_PRIV_H

#include <pthread.h>
#include <sys/types.h>

#include <libvhost/backend.h>
#include <libvhost/endpoint.h>

/* Postcopy phases: POSTCOPY_ADVISE -> ADVISED, POSTCOPY_LISTEN -> LISTENING, POSTCOPY_END. */
enum vhp_postcopy {
	VHP_POSTCOPY_NONE = 0,
	VHP_POSTCOPY_ADVISED,
	VHP_POSTCOPY_LISTENING,
};

struct vh_backend {
	struct vh_backend_config cfg;
	struct vh_backend_ops ops;
	void *opaque;
	uint64_t features_offered;

	/* Server mode: the listener lives across connections. listen_path is set only when we
	 * created the socket file, so that free() removes exactly that file. */
	int listen_fd;
	char *listen_path;
	dev_t listen_dev;
	ino_t listen_ino;

	/* The connection; conn.fd < 0 when there is none. */
	struct vh_endpoint conn;
	int connected;

	/* Per-connection protocol state. features and protocol_features are written by the
	 * dispatch thread under chan_lock (the send functions read them from other threads). */
	uint64_t features;
	uint64_t protocol_features;
	int owner;
	uint8_t status;
	int log_fd;
	enum vhp_postcopy postcopy;
	struct vh_backend_vring *vrings;        /* cfg.num_queues entries */
	struct vh_backend_mem_region *regions;  /* cfg.max_mem_slots entries, sorted by gpa */
	/* How many ADD_MEM_REG requests hold each region: QEMU 7.2 drives each net queue pair as
	 * its own vhost device on one socket, and every pair adds (and later removes) the same
	 * regions. Parallel to regions[]. */
	uint32_t *region_refs;
	unsigned nregions;

	/* Back-end channel (SET_BACKEND_REQ_FD). chan_lock serialises requests on it and guards
	 * chan, features and protocol_features against concurrent senders. */
	pthread_mutex_t chan_lock;
	struct vh_endpoint chan;
	struct vh_msg chan_msg;

	/* Receive and reply buffers: no allocation per message. */
	struct vh_msg msg;
	struct vh_msg reply;
};

/* Closes the back-end channel (takes chan_lock). */
void vhp_backend_close_channel(struct vh_backend *be);
/* Replaces the back-end channel with fd (owned from now on; takes chan_lock). */
void vhp_backend_set_channel(struct vh_backend *be, int fd);

#endif
