/* SPDX-License-Identifier: MIT */
/*
 * vhbench-sring: W0 on the back-end framework (server.h). The device's `process` pops every
 * available chain in batches of 32 and pushes each batch back untouched (used length 0), so the
 * difference from vhbench-ring is what the framework adds: worker loop, queue locks, memory
 * table references, statistics, notifications.
 *
 * The daemon runs one worker thread; --poll-us keeps it busy-polling (as DPDK's PMD does)
 * instead of sleeping on the kick eventfds. SIGINT/SIGTERM stop it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvhost/server.h>

#define BATCH 32u
/* At most this many batches per call, so one busy queue cannot starve the others. */
#define BUDGET 8u

static struct vh_server *srv;

static void on_signal(int sig)
{
	(void)sig;
	vh_server_stop(srv);
}

static void process(void *opaque, struct vh_server_queue *q)
{
	struct vh_vq_elem el[BATCH];
	struct vh_vq_used u[BATCH];

	(void)opaque;
	for (unsigned b = 0; b < BUDGET; b++) {
		int n;

		/* iov left NULL: the server lends per-queue storage */
		memset(el, 0, sizeof(el));
		n = vh_server_queue_pop(q, el, BATCH);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++)
			u[i] = (struct vh_vq_used){ el[i].id, 0 };
		if (vh_server_queue_push_locked(q, u, (unsigned)n))
			return;
		vh_server_queue_notify(q);
		if ((unsigned)n < BATCH)
			return;
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", 1, 0, 's' }, { "queues", 1, 0, 'q' }, { "poll-us", 1, 0, 'p' },
		{ 0, 0, 0, 0 },
	};
	const char *path = NULL;
	unsigned nq = 8;
	int poll_us = 0, c, ret;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'q': nq = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': poll_us = atoi(optarg); break;
		default:
			path = NULL;
			optind = argc;
			break;
		}
	}
	if (!path || !nq || nq > VH_BACKEND_MAX_QUEUES || poll_us < 0) {
		fprintf(stderr, "usage: vhbench-sring --socket PATH [--queues N] [--poll-us US]\n");
		return 1;
	}
	struct vh_server_config cfg = {
		/* the same offer as vhbench-ring: no IN_ORDER, no dirty log */
		.features_mask = VH_BIT(VH_F_IN_ORDER) | VH_BIT(VH_F_LOG_ALL),
		.num_queues = nq,
	};
	struct vh_server_ops ops = { .process = process };

	ret = vh_server_new(&srv, &cfg, &ops, NULL);
	if (ret || (ret = vh_server_listen(srv, path))) {
		fprintf(stderr, "vhbench-sring: %s: %s\n", path, strerror(-ret));
		vh_server_free(srv);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	struct vh_server_run_opts ro = { .nthreads = 1, .poll_us = poll_us };

	ret = vh_server_run(srv, &ro);
	vh_server_free(srv);
	if (ret) {
		fprintf(stderr, "vhbench-sring: %s\n", strerror(-ret));
		return 2;
	}
	return 0;
}
