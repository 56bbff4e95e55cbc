/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net device behind vhost-user-net, on the back-end framework (server.h). Kept apart
 * from the command line so tests can run it in-process.
 *
 * Queue pair k is ring 2k (RX, device -> driver) and ring 2k+1 (TX). Two ways to move frames:
 *  - tap:  TX frames are written to a Linux tap (IFF_VNET_HDR, one fd per pair with
 *          IFF_MULTI_QUEUE), frames read from the tap go into RX buffers (zero copy both ways
 *          apart from the virtio-net header, which is gather-copied and checked).
 *  - echo: every TX frame comes back on RX of the same pair, in order: copied by the TX worker
 *          straight into an RX buffer when it can own the RX ring's state (always when both
 *          rings run on one worker, unless RX buffers run short or a frame needs spreading),
 *          else through a per-pair 1 MiB hand-over ring to the RX worker (one copy in, one out).
 *
 * Ownership: a net_dev owns its vh_server, the tap fds and two eventfds per pair. Nothing is
 * printed; messages go to the logger in the options.
 */
#ifndef VHOST_USER_NET_DEVICE_H
#define VHOST_USER_NET_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <libvhost/log.h>
#include <libvhost/server.h>

/* virtio-net feature bits the device may offer. */
#define NETF_CSUM 0
#define NETF_GUEST_CSUM 1
#define NETF_MTU 3
#define NETF_MAC 5
#define NETF_GUEST_TSO4 7
#define NETF_GUEST_TSO6 8
#define NETF_GUEST_ECN 9
#define NETF_HOST_TSO4 11
#define NETF_HOST_TSO6 12
#define NETF_HOST_ECN 13
#define NETF_MRG_RXBUF 15
#define NETF_STATUS 16
#define NETF_MQ 22

/* Most queue pairs (QEMU's limit for vhost-user-net is 1024 rings; ours is the framework's). */
#define NET_MAX_PAIRS (VH_BACKEND_MAX_QUEUES / 2)
/* Largest frame after the virtio-net header: a 64 KiB GSO packet plus Ethernet and VLAN. */
#define NET_MAX_FRAME (65535u + 18u)
/* Smallest frame accepted from a driver: an Ethernet header. */
#define NET_MIN_FRAME 14u

enum net_mode {
	NET_MODE_ECHO = 0,
	NET_MODE_TAP = 1,
};

struct net_dev_opts {
	enum net_mode mode;
	const char *tap_name;     /* tap mode: interface to create or attach to */
	unsigned queue_pairs;     /* 1..NET_MAX_PAIRS; MQ is offered when > 1 */
	uint8_t mac[6];
	int have_mac;             /* offer MAC with `mac` in the config space */
	unsigned mtu;             /* 68..65535 offers MTU with this value; 0 = not offered */
	int no_offload;           /* tap: do not offer checksum / TSO offloads */
	int no_mrg_rxbuf;         /* do not offer MRG_RXBUF */
	uint64_t features_mask;   /* framework features not to offer (e.g. RING_PACKED) */
	struct vh_logger log;
};

/* Counters of one queue pair (relaxed atomics; a snapshot is not exact across fields). */
struct net_pair_stats {
	uint64_t rx_frames, rx_bytes;   /* delivered into RX buffers */
	uint64_t tx_frames, tx_bytes;   /* taken from TX and passed on (tap write / echo) */
	uint64_t tx_malformed;          /* header short, unknown flags, offload not negotiated,
					 * runt or oversized frame, writable TX descriptors */
	uint64_t tx_disabled;           /* consumed and dropped: TX ring disabled */
	uint64_t tx_no_rx;              /* echo: dropped, RX ring of the pair not enabled */
	uint64_t tx_errors;             /* tap refused the write */
	uint64_t rx_too_big;            /* frame larger than the RX buffers offered */
	uint64_t rx_bad_buf;            /* RX buffer smaller than the header, returned empty */
	uint64_t rx_errors;             /* tap read error or a frame with a header we cannot pass */
	uint64_t rx_flushed;            /* echo frames or RX buffers given back when a ring stopped */
	uint64_t tx_gso, rx_gso;        /* tap: segmentation-offloaded frames passed each way */
};

struct net_dev;

/* Opens the tap (tap mode), creates the server. The caller then listens / connects through
 * net_dev_server() and runs it. A failure has been logged (one line saying why). */
int net_dev_new(struct net_dev **out, const struct net_dev_opts *o);
/* Frees the server first (stopping the rings), then closes the taps and eventfds. */
void net_dev_free(struct net_dev *d);
struct vh_server *net_dev_server(struct net_dev *d);
unsigned net_dev_pairs(const struct net_dev *d);
/* Device features offered. */
uint64_t net_dev_features(const struct net_dev *d);
/* Virtio-net offloads offered because the tap accepts them (subset of net_dev_features). */
uint64_t net_dev_offloads(const struct net_dev *d);
void net_dev_pair_stats(const struct net_dev *d, unsigned pair, struct net_pair_stats *st);
/* The device's counters as "key=value ..." (no newline): pair < 0 for the totals over all
 * pairs, else that pair only. Returns the length as snprintf. */
int net_dev_format_stats(const struct net_dev *d, int pair, char *buf, size_t len);

#endif
