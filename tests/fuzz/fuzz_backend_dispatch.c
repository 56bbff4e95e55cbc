/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the back-end's dispatcher (vh_backend_dispatch) fed arbitrary bytes and fds
 * through a socketpair, with permissive device callbacks (the protocol suite's recording device:
 * it accepts everything, hands out memfds for inflight, shared objects and postcopy).
 *
 * Input: u32 protocol-feature mask (little-endian), u8 virtio-feature mask, then a record stream
 * (fuzz_common.h). A prelude of SET_PROTOCOL_FEATURES + SET_FEATURES built from the two masks is
 * sent first so gated requests are reachable; then every record goes out as one sendmsg(); then
 * the write side is shut and the back-end dispatches until it has torn the connection down.
 * After each input the process's fd and mapping counts must be back to the baseline.
 */
#include "harness.h"
#include "fuzz_common.h"

static struct harness H; /* callback record; no thread, no connection of its own */

/* FZ_STATS=1 in the environment: which device callbacks the inputs reached, at exit. */
static void print_stats(void)
{
	for (int op = BE_CONNECTED; op < BE_OP_COUNT; op++)
		fprintf(stderr, "callback %2d: %u\n", op, H.rec.calls[op]);
}

static void init_once(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	if (getenv("FZ_STATS"))
		atexit(print_stats);
	memset(&H, 0, sizeof(H));
	pthread_mutex_init(&H.rec.lock, NULL);
	for (unsigned i = 0; i < sizeof(H.beh.config); i++)
		H.beh.config[i] = (uint8_t)i;
	H.beh.shmem_nregions = 2;
	H.beh.shmem_sizes[0] = 1 << 20;
	H.beh.shmem_sizes[1] = 1 << 16;
	H.ferec.lookup_fd = -1;
}

static void send_prelude(int sock, uint32_t proto, uint8_t fmask)
{
	struct {
		struct vh_msg_hdr h;
		uint64_t v;
	} __attribute__((packed)) m[2];
	uint64_t features = H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES);

	/* bit i of fmask drops the i-th lowest offered feature bit */
	for (unsigned i = 0, k = 0; i < 64 && k < 8; i++) {
		if (!(features & VH_BIT(i)))
			continue;
		if (fmask & (1u << k))
			features &= ~VH_BIT(i);
		k++;
	}
	m[0].h = (struct vh_msg_hdr){ VH_USER_SET_PROTOCOL_FEATURES, VH_USER_VERSION, 8 };
	m[0].v = proto & H_PROTOCOL_ALL;
	m[1].h = (struct vh_msg_hdr){ VH_USER_SET_FEATURES, VH_USER_VERSION, 8 };
	m[1].v = features;
	if (send(sock, m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vh_backend_config cfg;
	struct vh_backend *be = NULL;
	struct fz_reader rd;
	uint8_t fdspec;
	const uint8_t *buf;
	size_t len;
	int sv[2];

	init_once();
	if (size < 5)
		return 0;
	h_default_config(&cfg);
	cfg.timeout_ms = 5; /* a message cut short ends the connection quickly */
	cfg.max_mem_slots = 8;
	if (vh_backend_new(&be, &cfg, &test_be_ops, &H))
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (vh_backend_set_connection(be, sv[0])) {
		close(sv[1]);
		vh_backend_free(be);
		return 0;
	}
	send_prelude(sv[1], (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
				    (uint32_t)data[3] << 24, data[4]);
	rd.p = data + 5;
	rd.left = size - 5;
	while (fz_next(&rd, &fdspec, &buf, &len)) {
		if (fz_send_record(sv[1], buf, len, fdspec) < 0 && errno != EINVAL)
			break; /* socket full (or a bad fd kind): stop feeding */
		/* Serve what is complete so far; replies are read and thrown away. */
		for (unsigned i = 0; i < 64 && vh_backend_is_connected(be); i++) {
			int r = vh_backend_dispatch(be);

			fz_drain(sv[1]);
			if (r == -EAGAIN)
				break;
		}
		if (!vh_backend_is_connected(be))
			break;
	}
	/* End of input: the back-end sees EOF (inside a message or between two) and tears down. */
	shutdown(sv[1], SHUT_WR);
	for (unsigned i = 0; i < 4096 && vh_backend_is_connected(be); i++) {
		vh_backend_dispatch(be);
		fz_drain(sv[1]);
	}
	if (vh_backend_is_connected(be)) {
		fprintf(stderr, "back-end still connected after EOF\n");
		abort();
	}
	close(sv[1]);
	vh_backend_free(be);
	fz_check_leaks("fuzz_backend_dispatch");
	return 0;
}
