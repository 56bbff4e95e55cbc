/* SPDX-License-Identifier: MIT */
/* State of a vhost-user front-end, shared by frontend.c, frontend_channel.c and device_user.c. */
#ifndef LIBVHOST_FRONTEND_INTERNAL_H
#define LIBVHOST_FRONTEND_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include <libvhost/device.h>
#include <libvhost/endpoint.h>
#include <libvhost/frontend.h>

/* SHMEM_MAP ranges kept per front-end (over all shared memory regions). A back-end asking for
 * more is refused rather than growing our memory without bound. */
#define VHP_FE_MAX_SHMEM_MAPS 1024u
/* Connection attempts for vh_frontend_connect(): about a second in total. */
#define VHP_FE_CONNECT_ATTEMPTS 10u
#define VHP_FE_CONNECT_DELAY_MS 100u
#define VHP_FE_DEFAULT_TIMEOUT_MS 5000

struct vhp_shmem_range {
	uint8_t shmid;
	uint64_t offset;
	uint64_t len;
};

/* One region the device adapter has sent with ADD_MEM_REG (the back-end's current table). */
struct vhp_shadow_region {
	struct vh_mem_region r;
	dev_t fd_dev;  /* identity of the backing file, so a different file at the same */
	ino_t fd_ino;  /* addresses counts as a different region */
};

struct vhp_user_device {
	struct vh_device dev;  /* first: the public handle */
	struct vh_frontend *fe;
	int owns_fe;           /* vh_device_close() frees the front-end too */
	struct vhp_shadow_region *shadow;
	unsigned nshadow;
	unsigned max_slots;    /* from GET_MAX_MEM_SLOTS, capped; 0 = not asked yet */
};

struct vh_frontend {
	struct vh_endpoint ep;    /* main socket */
	struct vh_endpoint chan;  /* back-end channel; chan.fd < 0 when there is none */
	struct vh_logger log;
	unsigned flags;           /* VH_FRONTEND_F_* */
	int timeout_ms;
	int error;                /* sticky */
	int busy;                 /* a main-socket request is in progress */
	int dispatching;          /* a back-end channel callback is running */

	uint64_t features_offered;
	int have_features;
	uint64_t features_acked;
	uint64_t protocol_offered;
	int have_protocol_offered;
	uint64_t protocol;

	unsigned queue_count;     /* set by the caller, 0 = unknown */
	unsigned queues_seen;     /* 1 + highest queue index we configured */

	int postcopy_listening;
	unsigned postcopy_n;
	struct vh_mem_region postcopy_table[VH_USER_MAX_TABLE_REGIONS];

	int have_shmem_config;
	struct vh_shmem_config shmem;
	struct vhp_shmem_range *shmem_maps;
	unsigned nshmem_maps;

	struct vh_frontend_backend_ops ops;
	void *ops_opaque;
	int have_ops;

	struct vhp_user_device udev;
};

/* frontend_channel.c */
void vhp_fe_channel_close(struct vh_frontend *fe);
/* Serves one waiting back-end request; used while waiting for a main-socket reply. */
int vhp_fe_channel_serve(struct vh_frontend *fe);

/* device_user.c */
void vhp_user_device_init(struct vh_frontend *fe);
void vhp_user_device_fini(struct vh_frontend *fe);

/* frontend.c: checks a region list (sizes, wrap-around, overlaps). */
int vhp_fe_check_regions(const struct vh_mem_region *regions, unsigned n);

#endif
