/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the front-end's parsing of what a back-end sends.
 *
 * Input byte 0 chooses the mode:
 *  - even: a reply. Byte 1 picks a front-end request (below), byte 2 is the fdspec of the
 *    reply's fds (fuzz_common.h), the rest is the raw reply stream a responder thread writes
 *    after it has read the request. The front-end validates it (vh_frontend_check_reply and the
 *    request's own checks) through the real socket path, with a short timeout.
 *  - odd: back-end channel requests. Byte 1 is the protocol-feature selector, byte 2 the queue
 *    count, then a record stream; each record is one message handed to the socket-free
 *    vh_frontend_backend_request_handle() (header from the record, fds per its fdspec), so
 *    state such as shared-memory mappings carries from one record to the next. The front-end
 *    has asked GET_SHMEM_CONFIG first (two regions) so SHMEM_MAP/UNMAP reach their checks.
 * Every fd handed out is closed, and fd and mapping counts must return to the baseline.
 */
#include "harness.h"
#include "fuzz_common.h"

#define FZ_TIMEOUT_MS 30
#define OFFERED (H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES))
#define PF(b) VH_BIT(VH_USER_PROTOCOL_F_##b)

/* ---- Responder thread: reads one request, writes the scripted reply ----------------------- */

struct job {
	int sock;
	const uint8_t *reply;
	size_t len;
	uint8_t fdspec;
	int pending;
};

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;
static struct job job;

static void *responder(void *arg)
{
	(void)arg;
	for (;;) {
		struct vh_endpoint ep;
		static struct vh_msg req;
		int fds[VH_USER_MAX_FDS];
		unsigned nfds = 0;

		pthread_mutex_lock(&job_lock);
		while (job.pending != 1 && job.pending != 3)
			pthread_cond_wait(&job_cond, &job_lock);
		if (job.pending == 3) {
			pthread_mutex_unlock(&job_lock);
			return NULL;
		}
		pthread_mutex_unlock(&job_lock);
		/* A borrowed endpoint: the main thread owns the socket. */
		vh_endpoint_init(&ep, job.sock, "responder");
		ep.timeout_ms = 50;
		if (!vh_endpoint_recv(&ep, &req, fds, &nfds, 50)) {
			vh_close_fds(fds, nfds);
			fz_send_record(job.sock, job.reply, job.len, job.fdspec);
		}
		pthread_mutex_lock(&job_lock);
		job.pending = 2;
		pthread_cond_broadcast(&job_cond);
		pthread_mutex_unlock(&job_lock);
	}
	return NULL;
}

static void job_start(int sock, const uint8_t *reply, size_t len, uint8_t fdspec)
{
	pthread_mutex_lock(&job_lock);
	job = (struct job){ sock, reply, len, fdspec, 1 };
	pthread_cond_broadcast(&job_cond);
	pthread_mutex_unlock(&job_lock);
}

static void job_wait(void)
{
	pthread_mutex_lock(&job_lock);
	while (job.pending == 1)
		pthread_cond_wait(&job_cond, &job_lock);
	job.pending = 0;
	pthread_mutex_unlock(&job_lock);
}

static struct fe_rec chan_rec;
static pthread_t responder_th;

/* At exit: the responder leaves its loop and is joined, so nothing of it is left behind for
 * leak checkers (pending 3 = quit). */
static void responder_quit(void)
{
	pthread_mutex_lock(&job_lock);
	job.pending = 3;
	pthread_cond_broadcast(&job_cond);
	pthread_mutex_unlock(&job_lock);
	pthread_join(responder_th, NULL);
}

static void init_once(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	memset(&chan_rec, 0, sizeof(chan_rec));
	chan_rec.lookup_fd = t_memfd("fuzz-dmabuf", 4096);
	if (pthread_create(&responder_th, NULL, responder, NULL))
		abort();
	atexit(responder_quit);
}

static struct vh_frontend *new_frontend(int *peer, uint64_t proto)
{
	static const struct vh_frontend_config cfg = {
		.timeout_ms = FZ_TIMEOUT_MS,
		.flags = VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS,
	};
	struct vh_frontend *fe = NULL;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (vh_frontend_new(&fe, sv[1], &cfg))
		abort();
	/* ACCESS_PLATFORM must be acked for IOTLB messages: SET_FEATURES goes out while no ack
	 * is due (and without LOG_ALL, which would add a GET_FEATURES barrier). */
	if (vh_frontend_assume_negotiated(fe, OFFERED, proto & ~PF(REPLY_ACK) &
						       ~PF(INBAND_NOTIFICATIONS)))
		abort();
	vh_frontend_set_features(fe, OFFERED & ~VH_BIT(VH_F_LOG_ALL));
	fz_drain(sv[0]);
	if (vh_frontend_assume_negotiated(fe, OFFERED, proto))
		abort();
	*peer = sv[0];
	return fe;
}

/* One front-end request per selector; every fd it hands back is closed here. */
#define N_CALLS 20

static void call(struct vh_frontend *fe, unsigned sel)
{
	static const uint8_t uuid[16] = { 7 };
	uint8_t buf[64] = { 0 }, out[64];
	struct vh_inflight inf;
	struct vh_shmem_config shm;
	struct vh_vring_addr addr = { 0, 0, 0x1000, 0x3000, 0x2000, 0 };
	struct vh_iotlb_msg io = { 0x1000, 0x1000, 0x7f0000000000ull, VH_ACCESS_RW,
				   VH_IOTLB_UPDATE, { 0 } };
	uint64_t v;
	uint32_t base;
	uint8_t status;
	int fd = -1, arg = -1;

	switch (sel % N_CALLS) {
	case 0: vh_frontend_get_features(fe, &v); break;
	case 1: vh_frontend_get_protocol_features(fe, &v); break;
	case 2: vh_frontend_get_queue_num(fe, &v); break;
	case 3: vh_frontend_get_vring_base(fe, 1, &base); break;
	case 4: vh_frontend_get_config(fe, 16, buf, 32, 0); break;
	case 5: vh_frontend_create_crypto_session(fe, buf, sizeof(buf), out); break;
	case 6: vh_frontend_postcopy_advise(fe, &fd); break;
	case 7: vh_frontend_get_inflight_fd(fe, 2, 128, &inf, &fd); break;
	case 8: vh_frontend_get_shared_object(fe, uuid, &fd); break;
	case 9:
		arg = t_memfd("state", 0);
		vh_frontend_set_device_state_fd(fe, VH_DEVICE_STATE_SAVE, 0, arg, &fd);
		break;
	case 10: vh_frontend_check_device_state(fe); break;
	case 11: vh_frontend_get_shmem_config(fe, &shm); break;
	case 12:
		arg = t_memfd("log", 8192);
		vh_frontend_set_log_base(fe, 4096, 0, arg);
		break;
	case 13: vh_frontend_get_status(fe, &status); break;
	case 14: vh_frontend_get_max_mem_slots(fe, &v); break;
	case 15: vh_frontend_set_vring_num(fe, 1, 256); break;
	case 16: vh_frontend_iotlb_msg(fe, &io); break;
	case 17: vh_frontend_set_vring_addr(fe, &addr); break;
	case 18: vh_frontend_postcopy_end(fe); break;
	case 19: vh_frontend_set_owner(fe); break;
	}
	if (fd >= 0)
		close(fd);
	if (arg >= 0)
		close(arg);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
	uint64_t proto = H_PROTOCOL_ALL & ~PF(XEN_MMAP) & ~PF(CONFIGURE_MEM_SLOTS);
	unsigned sel = data[1];
	int peer;
	struct vh_frontend *fe;

	fe = new_frontend(&peer, proto);
	job_start(peer, data + 3, size - 3, data[2]);
	call(fe, sel);
	job_wait();
	vh_frontend_free(fe);
	close(peer);
}

/* A good GET_SHMEM_CONFIG answer: two regions of 16 pages. */
static void shmem_config(struct vh_frontend *fe, int peer)
{
	static uint8_t rep[12 + sizeof(struct vh_shmem_config)];
	struct vh_msg_hdr h = { VH_USER_GET_SHMEM_CONFIG, VH_USER_VERSION | VH_USER_FLAG_REPLY,
				sizeof(struct vh_shmem_config) };
	struct vh_shmem_config cfg;
	long ps = sysconf(_SC_PAGESIZE);

	memset(&cfg, 0, sizeof(cfg));
	cfg.nregions = 2;
	cfg.memory_sizes[0] = 16 * (uint64_t)ps;
	cfg.memory_sizes[1] = 16 * (uint64_t)ps;
	memcpy(rep, &h, 12);
	memcpy(rep + 12, &cfg, sizeof(cfg));
	job_start(peer, rep, sizeof(rep), 0);
	vh_frontend_get_shmem_config(fe, &cfg);
	job_wait();
}

static void fuzz_channel(const uint8_t *data, size_t size)
{
	uint64_t proto = H_PROTOCOL_ALL & ~PF(XEN_MMAP);
	struct vh_frontend *fe;
	struct fz_reader rd = { data + 3, size - 3 };
	uint8_t fdspec;
	const uint8_t *buf;
	size_t len;
	int peer;

	/* selector bits drop features: each of the first 8 gates of the channel */
	static const unsigned drop[8] = { VH_USER_PROTOCOL_F_REPLY_ACK, VH_USER_PROTOCOL_F_CONFIG,
					  VH_USER_PROTOCOL_F_HOST_NOTIFIER,
					  VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS,
					  VH_USER_PROTOCOL_F_SHARED_OBJECT, VH_USER_PROTOCOL_F_SHMEM,
					  VH_USER_PROTOCOL_F_BACKEND_SEND_FD,
					  VH_USER_PROTOCOL_F_BACKEND_REQ };
	for (unsigned i = 0; i < 8; i++)
		if (data[1] & (1u << i))
			proto &= ~VH_BIT(drop[i]);
	/* keep the set consistent, as vh_frontend_assume_negotiated() demands */
	if (!(proto & PF(REPLY_ACK)) || !(proto & PF(BACKEND_REQ)))
		proto &= ~PF(INBAND_NOTIFICATIONS);
	if (!(proto & PF(BACKEND_REQ)) || !(proto & PF(BACKEND_SEND_FD)))
		proto &= ~PF(HOST_NOTIFIER);
	fe = new_frontend(&peer, proto);
	vh_frontend_set_queue_count(fe, data[2] % 5);
	vh_frontend_set_backend_ops(fe, &test_fe_ops, &chan_rec);
	if (proto & PF(SHMEM))
		shmem_config(fe, peer);
	while (fz_next(&rd, &fdspec, &buf, &len)) {
		static struct vh_msg msg, reply;
		int fds[FZ_MAX_RECORD_FDS], reply_fd = -1;
		unsigned n = fdspec & 15u;

		memset(&msg, 0, sizeof(msg));
		memcpy(&msg.hdr, buf, len < 12 ? len : 12);
		if (len > 12)
			memcpy(&msg.payload, buf + 12, len - 12 < sizeof(msg.payload) ?
						  len - 12 : sizeof(msg.payload));
		for (unsigned i = 0; i < n; i++)
			fds[i] = fz_make_fd(fdspec >> 4);
		vh_frontend_backend_request_handle(fe, &msg, fds, n, &reply, &reply_fd);
		if (reply_fd >= 0)
			close(reply_fd);
	}
	vh_frontend_free(fe);
	close(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (size < 3)
		return 0;
	if (data[0] & 1)
		fuzz_channel(data, size);
	else
		fuzz_reply(data, size);
	fz_check_leaks("fuzz_frontend");
	return 0;
}
