/* SPDX-License-Identifier: MIT */
/*
 * Every vhost-user request in both directions between the libvhost front-end and back-end:
 * all 44 front-end requests and all 10 back-end channel requests, over a socketpair, with the
 * back-end listening and with the front-end listening. Each request's payload is compared on the
 * back-end side (the callbacks record what they got), each reply on the front-end side, and
 * every fd by identity (st_dev/st_ino).
 */
#include <signal.h>

#include "harness.h"

static const uint8_t test_uuid[16] = { 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
				       0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

#define PF(b) VH_BIT(VH_USER_PROTOCOL_F_##b)
/* Everything except what excludes something else: PAGEFAULT (not with CONFIGURE_MEM_SLOTS) and
 * XEN_MMAP (changes the region layout); those get their own phases. */
#define PROTO_MAIN (H_PROTOCOL_ALL & ~PF(PAGEFAULT) & ~PF(XEN_MMAP))
#define PROTO_POSTCOPY ((PROTO_MAIN & ~PF(CONFIGURE_MEM_SLOTS)) | PF(PAGEFAULT))
#define PROTO_XEN (PROTO_MAIN | PF(XEN_MMAP))

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* ---- Back-end -> front-end requests, sent from a helper thread -------------------------------
 * The send calls wait for the front-end's answer, which the main thread produces by serving
 * the channel, so the two run on different threads. */

enum be_send_op {
	SEND_IOTLB, SEND_CONFIG_CHANGE, SEND_HOST_NOTIFIER, SEND_HOST_NOTIFIER_NOFD, SEND_VRING_CALL,
	SEND_VRING_ERR, SEND_SO_ADD, SEND_SO_REMOVE, SEND_SO_LOOKUP, SEND_SHMEM_MAP, SEND_SHMEM_UNMAP,
};

struct be_send {
	struct harness *h;
	enum be_send_op op;
	unsigned idx;
	int fd;
	struct vh_shmem_mmap map;
	struct vh_iotlb_msg iotlb;
	int result;
	int fd_out;
	int done;
};

static void *be_send_thread(void *arg)
{
	struct be_send *s = arg;
	struct vh_backend *be = s->h->be;
	long ps = page_size();

	s->fd_out = -1;
	switch (s->op) {
	case SEND_IOTLB:
		s->result = vh_backend_send_iotlb_msg(be, &s->iotlb);
		break;
	case SEND_CONFIG_CHANGE:
		s->result = vh_backend_send_config_change(be);
		break;
	case SEND_HOST_NOTIFIER:
		s->result = vh_backend_send_vring_host_notifier(be, s->idx, s->fd, (uint64_t)ps,
								(uint64_t)ps);
		break;
	case SEND_HOST_NOTIFIER_NOFD:
		s->result = vh_backend_send_vring_host_notifier(be, s->idx, -1, 0, 0);
		break;
	case SEND_VRING_CALL:
		s->result = vh_backend_send_vring_call(be, s->idx);
		break;
	case SEND_VRING_ERR:
		s->result = vh_backend_send_vring_err(be, s->idx);
		break;
	case SEND_SO_ADD:
		s->result = vh_backend_send_shared_object_add(be, test_uuid);
		break;
	case SEND_SO_REMOVE:
		s->result = vh_backend_send_shared_object_remove(be, test_uuid);
		break;
	case SEND_SO_LOOKUP:
		s->result = vh_backend_send_shared_object_lookup(be, test_uuid, &s->fd_out);
		break;
	case SEND_SHMEM_MAP:
		s->result = vh_backend_send_shmem_map(be, &s->map, s->fd);
		break;
	case SEND_SHMEM_UNMAP:
		s->result = vh_backend_send_shmem_unmap(be, &s->map);
		break;
	}
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Runs one back-end request while the main thread serves the front-end's channel. */
static int be_send_served(struct be_send *s)
{
	pthread_t th;
	int64_t end = t_now_ms() + 5000;
	unsigned served = 0;

	s->done = 0;
	pthread_create(&th, NULL, be_send_thread, s);
	while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) && t_now_ms() < end) {
		struct pollfd p = { .fd = vh_frontend_backend_channel_fd(s->h->fe), .events = POLLIN };

		if (p.fd < 0)
			break;
		if (poll(&p, 1, 10) > 0) {
			int r = vh_frontend_backend_channel_dispatch(s->h->fe);

			if (r < 0)
				T_FAIL("channel dispatch: %d", r);
			served += r == 1;
		}
	}
	pthread_join(th, NULL);
	if (!served)
		T_FAIL("send op %d: the front-end served no request", s->op);
	return s->result;
}

/* ---- One full pass over every request ------------------------------------------------------- */

struct mem {
	int fd[3];
	struct vh_mem_region r[3];
};

static void mem_open(struct mem *m)
{
	for (unsigned i = 0; i < 3; i++) {
		m->fd[i] = t_memfd("guest-ram", 0x40000);
		m->r[i].guest_phys_addr = 0x100000ull * (i + 1);
		m->r[i].memory_size = 0x40000;
		m->r[i].userspace_addr = 0x7f0000000000ull + 0x1000000ull * i;
		m->r[i].mmap_offset = 0;
	}
}

static void mem_close(struct mem *m)
{
	vh_close_fds(m->fd, 3);
}

static void check_region(const struct vh_backend_mem_region *got, const struct vh_mem_region *want,
			 const char *what)
{
	if (memcmp(&got->r, want, sizeof(*want)))
		T_FAIL("%s: region gpa 0x%llx size 0x%llx uaddr 0x%llx off 0x%llx, sent gpa 0x%llx "
		       "size 0x%llx uaddr 0x%llx off 0x%llx", what,
		       (unsigned long long)got->r.guest_phys_addr,
		       (unsigned long long)got->r.memory_size,
		       (unsigned long long)got->r.userspace_addr,
		       (unsigned long long)got->r.mmap_offset,
		       (unsigned long long)want->guest_phys_addr,
		       (unsigned long long)want->memory_size,
		       (unsigned long long)want->userspace_addr,
		       (unsigned long long)want->mmap_offset);
}

#define LAST_IS(h, op) CHECK_EQ_M(h_rec(h).last, op, "last back-end callback")

/* Negotiation and the requests without memory: 1, 2, 3, 15, 16, 17, 21, 36. */
static void pass_negotiate(struct harness *h, uint64_t proto)
{
	struct vh_frontend *fe = h->fe;
	uint64_t v = 0, offered = 0, got_proto = 0;
	struct be_state s;

	CHECK_EQ(vh_frontend_get_features(fe, &v), 0);                         /* 1 */
	CHECK_EQ(v, H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
	CHECK_EQ(vh_frontend_get_protocol_features(fe, &offered), 0);          /* 15 */
	CHECK_EQ(offered, H_PROTOCOL_ALL);
	CHECK_EQ(vh_frontend_set_protocol_features(fe, proto), 0);             /* 16 */
	CHECK_EQ(vh_frontend_protocol_features(fe), proto);
	CHECK_EQ(vh_frontend_set_features(fe, v), 0);                          /* 2 */
	CHECK_EQ(h_rec(h).u64, v);
	LAST_IS(h, BE_SET_FEATURES);
	CHECK_EQ(h_rec(h).calls[BE_SET_PROTOCOL_FEATURES] > 0, 1);
	CHECK_EQ(vh_frontend_set_owner(fe), 0);                                /* 3 */
	LAST_IS(h, BE_SET_OWNER);
	CHECK_EQ(vh_frontend_get_queue_num(fe, &v), 0);                        /* 17 */
	CHECK_EQ(v, H_NQ);
	CHECK_EQ(vh_frontend_set_queue_count(fe, H_NQ), 0);
	CHECK_EQ(vh_frontend_set_backend_req_fd(fe, &test_fe_ops, &h->ferec), 0); /* 21 */
	CHECK(vh_frontend_backend_channel_fd(fe) >= 0);
	s = h_state(h);
	CHECK_EQ(s.protocol_features, proto);
	CHECK_EQ(s.features, H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
	CHECK_EQ(s.owner, 1);
	CHECK_EQ(s.has_channel, 1);
	(void)got_proto;
}

/* Memory: 5, 6, 7, 36, 37, 38. */
static void pass_memory(struct harness *h, struct mem *m)
{
	struct vh_frontend *fe = h->fe;
	struct be_rec rec;
	struct be_state s;
	uint64_t slots = 0;
	int logfd = t_memfd("log", 8192), logev = t_memfd("log-event", 0);

	CHECK_EQ(vh_frontend_set_mem_table(fe, m->r, m->fd, 2), 0);            /* 5 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_MEM_TABLE);
	CHECK_EQ(rec.nregions, 2);
	for (unsigned i = 0; i < 2; i++) {
		check_region(&rec.regions[i], &m->r[i], "SET_MEM_TABLE");
		CHECK(fid_is(rec.fids[i], m->fd[i]));
	}
	CHECK_EQ(vh_frontend_get_max_mem_slots(fe, &slots), 0);                /* 36 */
	CHECK_EQ(slots, 32);
	CHECK_EQ(vh_frontend_add_mem_reg(fe, &m->r[2], m->fd[2]), 0);          /* 37 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_ADD_MEM_REG);
	check_region(&rec.regions[0], &m->r[2], "ADD_MEM_REG");
	CHECK(fid_is(rec.fids[0], m->fd[2]));
	s = h_state(h);
	CHECK_EQ(s.nregions, 3);
	CHECK_EQ(vh_frontend_rem_mem_reg(fe, &m->r[0]), 0);                    /* 38 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_REM_MEM_REG);
	CHECK_EQ(rec.regions[0].r.guest_phys_addr, m->r[0].guest_phys_addr);
	s = h_state(h);
	CHECK_EQ(s.nregions, 2);
	if (s.nregions == 2) {
		check_region(&s.regions[0], &m->r[1], "table after REM");
		check_region(&s.regions[1], &m->r[2], "table after REM");
	}
	/* an unknown region is refused, the table stays */
	CHECK_EQ(vh_frontend_rem_mem_reg(fe, &m->r[0]), -EIO);
	CHECK_EQ(vh_frontend_set_log_base(fe, 4096, 4096, logfd), 0);          /* 6 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_LOG_BASE);
	CHECK_EQ(rec.log.mmap_size, 4096);
	CHECK_EQ(rec.log.mmap_offset, 4096);
	CHECK(fid_is(rec.fids[0], logfd));
	CHECK_EQ(vh_frontend_set_log_fd(fe, logev), 0);                        /* 7 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_LOG_FD);
	CHECK(fid_is(rec.fids[0], logev));
	s = h_state(h);
	CHECK(fid_is(s.log_fid, logev));
	close(logfd);
	close(logev);
}

/* Vrings: 8-14, 18, 23, 35. */
static void pass_vrings(struct harness *h)
{
	struct vh_frontend *fe = h->fe;
	struct vh_vring_addr a = { 1, VH_BIT(VH_VRING_F_LOG), 0x10000, 0x12000, 0x11000, 0x200000 };
	int kick = t_memfd("kick", 0), call = t_memfd("call", 0), err = t_memfd("err", 0);
	struct be_rec rec;
	struct be_state s;
	uint32_t base = 0;

	CHECK_EQ(vh_frontend_set_vring_num(fe, 1, 256), 0);                    /* 8 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_NUM);
	CHECK_EQ(rec.idx, 1);
	CHECK_EQ(rec.u64, 256);
	CHECK_EQ(vh_frontend_set_vring_addr(fe, &a), 0);                       /* 9 */
	rec = h_rec(h);
	CHECK_EQ(rec.calls[BE_SET_VRING_ADDR] > 0, 1);
	CHECK(!memcmp(&rec.addr, &a, sizeof(a)));
	CHECK_EQ(vh_frontend_set_vring_base(fe, 1, 0x1234), 0);                /* 10 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_BASE);
	CHECK_EQ(rec.base.last_avail_idx, 0x1234);
	CHECK_EQ(vh_frontend_set_vring_endian(fe, 1, 1), 0);                   /* 23 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_ENDIAN);
	CHECK_EQ(rec.u64, 1);
	CHECK_EQ(vh_frontend_set_vring_call(fe, 1, call), 0);                  /* 13 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_CALL);
	CHECK(fid_is(rec.fids[0], call));
	CHECK_EQ(vh_frontend_set_vring_err(fe, 1, err), 0);                    /* 14 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_ERR);
	CHECK(fid_is(rec.fids[0], err));
	CHECK_EQ(vh_frontend_set_vring_kick(fe, 1, kick), 0);                  /* 12 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_KICK);
	CHECK_EQ(rec.idx, 1);
	CHECK(fid_is(rec.fids[0], kick));
	CHECK_EQ(vh_frontend_set_vring_enable(fe, 1, 1), 0);                   /* 18 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_VRING_ENABLE);
	CHECK_EQ(rec.u64, 1);
	s = h_state(h);
	CHECK_EQ(s.vr[1].num, 256);
	CHECK_EQ(s.vr[1].started, 1);
	CHECK_EQ(s.vr[1].enabled, 1);
	CHECK_EQ(s.vr[1].big_endian, 1);
	CHECK_EQ(s.vr[1].log, 1);
	CHECK(fid_is(s.kick[1], kick));
	CHECK(fid_is(s.call[1], call));
	CHECK(fid_is(s.err[1], err));
	/* a running ring refuses a new size */
	CHECK_EQ(vh_frontend_set_vring_num(fe, 1, 128), -EIO);
	CHECK_EQ(vh_frontend_vring_kick(fe, 2), 0);                            /* 35 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_VRING_KICK_INBAND);
	CHECK_EQ(rec.idx, 2);
	/* NOFD forms */
	CHECK_EQ(vh_frontend_set_vring_call(fe, 3, -1), 0);
	rec = h_rec(h);
	CHECK_EQ(rec.idx, 3);
	CHECK_EQ(rec.fd_was_nofd, 1);
	h->beh.get_base_avail = 0x4321;
	CHECK_EQ(vh_frontend_get_vring_base(fe, 1, &base), 0);                 /* 11 */
	CHECK_EQ(base, 0x4321);
	CHECK_EQ(h_rec(h).last, BE_GET_VRING_BASE);
	CHECK_EQ(h_rec(h).base.last_avail_idx, 0x1234); /* prefilled with the recorded base */
	CHECK_EQ(vh_frontend_get_vring_base(fe, 2, &base), 0);
	h->beh.get_base_avail = 0;
	s = h_state(h);
	CHECK_EQ(s.vr[1].started, 0);
	CHECK_EQ(s.vr[2].started, 0);
	CHECK_EQ(s.kick[1].valid, 0); /* the kick fd went with the stop */
	CHECK_EQ(s.vr[3].call_nofd, 1);
	close(kick);
	close(call);
	close(err);
}

/* Device requests: 19, 20, 22, 24, 25, 26, 27, 31, 32, 33, 39, 40, 41, 42, 43, 44. */
static void pass_device(struct harness *h)
{
	struct vh_frontend *fe = h->fe;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct vh_iotlb_msg io = { 0x40000000, 0x2000, 0x7f0000001000ull, VH_ACCESS_RW,
				   VH_IOTLB_UPDATE, { 0 } };
	uint8_t buf[256], desc[72], reply[72];
	struct vh_inflight inf = { 0 };
	struct vh_shmem_config shm;
	struct be_rec rec;
	uint8_t status = 0;
	int fd = -1, sv[2], statefd, rfd = -1;

	CHECK_EQ(vh_frontend_send_rarp(fe, mac), 0);                           /* 19 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SEND_RARP);
	CHECK(!memcmp(rec.mac, mac, 6));
	CHECK_EQ(vh_frontend_net_set_mtu(fe, 9000), 0);                        /* 20 */
	CHECK_EQ(h_rec(h).u64, 9000);
	h->beh.fail[BE_NET_SET_MTU] = -EINVAL;
	CHECK_EQ(vh_frontend_net_set_mtu(fe, 1500), -EIO);
	h->beh.fail[BE_NET_SET_MTU] = 0;
	CHECK_EQ(vh_frontend_iotlb_msg(fe, &io), 0);                           /* 22 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_IOTLB_MSG);
	CHECK_EQ(rec.iotlb.iova, io.iova);
	CHECK_EQ(rec.iotlb.size, io.size);
	CHECK_EQ(rec.iotlb.uaddr, io.uaddr);
	CHECK_EQ(rec.iotlb.perm, io.perm);
	CHECK_EQ(rec.iotlb.type, io.type);

	/* 24: the back-end sends a channel request from inside its callback; the front-end has to
	 * serve it while it waits for our reply, or both would wait for ever. */
	h->ferec.calls[FE_CONFIG_CHANGE] = 0;
	h->beh.channel_request_in_get_config = 1;
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vh_frontend_get_config(fe, 16, buf, 40, 0), 0);               /* 24 */
	h->beh.channel_request_in_get_config = 0;
	CHECK(!memcmp(buf, h->beh.config + 16, 40));
	CHECK_EQ(h_rec(h).cfg_offset, 16);
	CHECK_EQ(h_rec(h).cfg_size, 40);
	CHECK_EQ(h->beh.channel_request_result, 0);
	CHECK_EQ(h->ferec.calls[FE_CONFIG_CHANGE], 1);
	for (unsigned i = 0; i < 20; i++)
		buf[i] = (uint8_t)(0xa0 + i);
	CHECK_EQ(vh_frontend_set_config(fe, 100, buf, 20, 0), 0);              /* 25 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_CONFIG);
	CHECK_EQ(rec.cfg_offset, 100);
	CHECK_EQ(rec.cfg_size, 20);
	CHECK(!memcmp(rec.data, buf, 20));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vh_frontend_get_config(fe, 100, buf, 20, 0), 0);
	CHECK_EQ(buf[0], 0xa0);
	CHECK_EQ(buf[19], 0xa0 + 19);
	/* the device fails: the size-0 error reply */
	h->beh.fail[BE_GET_CONFIG] = -EIO;
	CHECK_EQ(vh_frontend_get_config(fe, 0, buf, 16, 0), -EIO);
	h->beh.fail[BE_GET_CONFIG] = 0;
	CHECK_EQ(vh_frontend_error(fe), 0);

	for (unsigned i = 0; i < sizeof(desc); i++)
		desc[i] = (uint8_t)(i ^ 0x5a);
	CHECK_EQ(vh_frontend_create_crypto_session(fe, desc, sizeof(desc), reply), 0); /* 26 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_CREATE_CRYPTO_SESSION);
	CHECK_EQ(rec.len, sizeof(desc));
	CHECK(!memcmp(rec.data, desc, sizeof(desc)));
	{
		uint64_t id;

		memcpy(&id, reply, 8);
		CHECK_EQ(id, TEST_SESSION_ID);
		CHECK(!memcmp(reply + 8, desc + 8, sizeof(desc) - 8));
	}
	CHECK_EQ(vh_frontend_close_crypto_session(fe, TEST_SESSION_ID), 0);    /* 27 */
	CHECK_EQ(h_rec(h).u64, TEST_SESSION_ID);

	CHECK_EQ(vh_frontend_get_inflight_fd(fe, 2, 64, &inf, &fd), 0);        /* 31 */
	rec = h_rec(h);
	CHECK_EQ(rec.inflight.num_queues, 2);
	CHECK_EQ(rec.inflight.queue_size, 64);
	CHECK_EQ(inf.mmap_size, 4096);
	CHECK(fid_is(h->beh.inflight_fid, fd));
	{
		uint32_t magic = 0;

		CHECK_EQ(pread(fd, &magic, 4, 0), 4);
		CHECK_EQ(magic, INFLIGHT_MAGIC);
	}
	CHECK_EQ(vh_frontend_set_inflight_fd(fe, &inf, fd), 0);                /* 32 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_INFLIGHT_FD);
	CHECK_EQ(rec.inflight.mmap_size, 4096);
	CHECK_EQ(rec.inflight.num_queues, 2);
	CHECK(fid_is(rec.fids[0], fd));
	if (fd >= 0)
		close(fd);

	CHECK_EQ(vh_socketpair(sv), 0);
	CHECK_EQ(vh_frontend_gpu_set_socket(fe, sv[0]), 0);                    /* 33 */
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_GPU_SET_SOCKET);
	CHECK(fid_is(rec.fids[0], sv[0]));
	close(sv[0]);
	close(sv[1]);

	CHECK_EQ(vh_frontend_set_status(fe, 0x0f), 0);                         /* 39 */
	CHECK_EQ(h_rec(h).u64, 0x0f);
	CHECK_EQ(vh_frontend_get_status(fe, &status), 0);                      /* 40 */
	CHECK_EQ(status, 0x0f);
	CHECK_EQ(h_rec(h).last, BE_GET_STATUS);

	CHECK_EQ(vh_frontend_get_shared_object(fe, test_uuid, &fd), 0);        /* 41 */
	CHECK(!memcmp(h_rec(h).uuid, test_uuid, 16));
	CHECK(fid_is(h->beh.shared_object_fid, fd));
	if (fd >= 0)
		close(fd);
	h->beh.fail[BE_GET_SHARED_OBJECT] = -ENOENT;
	CHECK_EQ(vh_frontend_get_shared_object(fe, test_uuid, &fd), -ENOENT);
	CHECK_EQ(fd, -1);
	h->beh.fail[BE_GET_SHARED_OBJECT] = 0;

	statefd = t_memfd("state", 0);
	CHECK_EQ(vh_frontend_set_device_state_fd(fe, VH_DEVICE_STATE_SAVE,       /* 42 */
						 VH_DEVICE_STATE_PHASE_STOPPED, statefd, &rfd), 0);
	rec = h_rec(h);
	CHECK_EQ(rec.last, BE_SET_DEVICE_STATE_FD);
	CHECK_EQ(rec.direction, VH_DEVICE_STATE_SAVE);
	CHECK(fid_is(rec.fids[0], statefd));
	CHECK_EQ(rfd, -1);
	h->beh.device_state_reply_fd = 1;
	CHECK_EQ(vh_frontend_set_device_state_fd(fe, VH_DEVICE_STATE_LOAD,
						 VH_DEVICE_STATE_PHASE_STOPPED, statefd, &rfd), 0);
	CHECK_EQ(h_rec(h).direction, VH_DEVICE_STATE_LOAD);
	CHECK(rfd >= 0);
	CHECK(fid_is(h->beh.device_state_reply_fid, rfd));
	if (rfd >= 0)
		close(rfd);
	h->beh.device_state_reply_fd = 0;
	close(statefd);
	CHECK_EQ(vh_frontend_check_device_state(fe), 0);                       /* 43 */
	LAST_IS(h, BE_CHECK_DEVICE_STATE);
	h->beh.fail[BE_CHECK_DEVICE_STATE] = -EIO;
	CHECK_EQ(vh_frontend_check_device_state(fe), -EIO);
	h->beh.fail[BE_CHECK_DEVICE_STATE] = 0;

	h->beh.shmem_nregions = 2;
	h->beh.shmem_sizes[0] = 1ull << 20;
	h->beh.shmem_sizes[1] = 1ull << 21;
	memset(&shm, 0xff, sizeof(shm));
	CHECK_EQ(vh_frontend_get_shmem_config(fe, &shm), 0);                   /* 44 */
	CHECK_EQ(shm.nregions, 2);
	CHECK_EQ(shm.memory_sizes[0], 1ull << 20);
	CHECK_EQ(shm.memory_sizes[1], 1ull << 21);
	CHECK_EQ(shm.memory_sizes[2], 0);
	CHECK_EQ(vh_frontend_error(fe), 0);
}

/* The back-end channel, back-end -> front-end: ids 1-10. */
static void pass_channel(struct harness *h)
{
	struct be_send s = { .h = h };
	long ps = page_size();
	int notifier = t_memfd("notify", (size_t)ps * 2), shm = t_memfd("shm", 1 << 20);
	struct fe_rec *fr = &h->ferec;

	s.iotlb = (struct vh_iotlb_msg){ 0x40001000, 0x1000, 0, VH_ACCESS_RO, VH_IOTLB_MISS, { 0 } };
	s.op = SEND_IOTLB;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 1 */
	CHECK_EQ(fr->last, FE_IOTLB);
	CHECK_EQ(fr->iotlb.iova, 0x40001000);
	CHECK_EQ(fr->iotlb.type, VH_IOTLB_MISS);
	CHECK_EQ(fr->iotlb.perm, VH_ACCESS_RO);
	s.op = SEND_CONFIG_CHANGE;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 2 */
	CHECK_EQ(fr->last, FE_CONFIG_CHANGE);
	s.op = SEND_HOST_NOTIFIER;
	s.idx = 1;
	s.fd = notifier;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 3 */
	CHECK_EQ(fr->last, FE_HOST_NOTIFIER);
	CHECK_EQ(fr->idx, 1);
	CHECK_EQ(fr->size, (uint64_t)ps);
	CHECK_EQ(fr->offset, (uint64_t)ps);
	CHECK(fid_is(fr->fid, notifier));
	s.op = SEND_HOST_NOTIFIER_NOFD;
	CHECK_EQ(be_send_served(&s), 0);
	CHECK_EQ(fr->fd_was_none, 1);
	s.op = SEND_VRING_CALL;
	s.idx = 2;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 4 */
	CHECK_EQ(fr->last, FE_VRING_CALL);
	CHECK_EQ(fr->idx, 2);
	s.op = SEND_VRING_ERR;
	s.idx = 3;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 5 */
	CHECK_EQ(fr->last, FE_VRING_ERR);
	CHECK_EQ(fr->idx, 3);
	s.op = SEND_SO_ADD;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 6 */
	CHECK_EQ(fr->last, FE_SO_ADD);
	CHECK(!memcmp(fr->uuid, test_uuid, 16));
	s.op = SEND_SO_REMOVE;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 7 */
	CHECK_EQ(fr->last, FE_SO_REMOVE);
	fr->lookup_fd = t_memfd("dmabuf", 4096);
	s.op = SEND_SO_LOOKUP;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 8 */
	CHECK_EQ(fr->last, FE_SO_LOOKUP);
	CHECK(t_same_file(s.fd_out, fr->lookup_fd));
	if (s.fd_out >= 0)
		close(s.fd_out);
	close(fr->lookup_fd);
	fr->lookup_fd = -1;
	s.map = (struct vh_shmem_mmap){ 1, { 0 }, 0, (uint64_t)ps * 4, (uint64_t)ps * 2,
					VH_SHMEM_MAP_F_WRITABLE };
	s.op = SEND_SHMEM_MAP;
	s.fd = shm;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 9 */
	CHECK_EQ(fr->last, FE_SHMEM_MAP);
	CHECK_EQ(fr->map.shmid, 1);
	CHECK_EQ(fr->map.shm_offset, (uint64_t)ps * 4);
	CHECK_EQ(fr->map.len, (uint64_t)ps * 2);
	CHECK_EQ(fr->map.flags, VH_SHMEM_MAP_F_WRITABLE);
	CHECK(fid_is(fr->fid, shm));
	s.op = SEND_SHMEM_UNMAP;
	CHECK_EQ(be_send_served(&s), 0);                                       /* 10 */
	CHECK_EQ(fr->last, FE_SHMEM_UNMAP);
	CHECK_EQ(fr->map.shm_offset, (uint64_t)ps * 4);
	/* a refusal by the front-end comes back as -EIO and the channel stays */
	fr->fail = -EINVAL;
	s.op = SEND_CONFIG_CHANGE;
	CHECK_EQ(be_send_served(&s), -EIO);
	fr->fail = 0;
	s.op = SEND_CONFIG_CHANGE;
	CHECK_EQ(be_send_served(&s), 0);
	close(notifier);
	close(shm);
}

/* Resets: 34, 4. */
static void pass_reset(struct harness *h)
{
	struct vh_frontend *fe = h->fe;
	struct be_state s;
	int call = t_memfd("call", 0);

	CHECK_EQ(vh_frontend_set_vring_call(fe, 0, call), 0);
	CHECK_EQ(vh_frontend_reset_device(fe), 0);                             /* 34 */
	LAST_IS(h, BE_RESET_DEVICE);
	s = h_state(h);
	CHECK_EQ(s.call[0].valid, 0);
	CHECK_EQ(s.vr[1].num, 0);
	CHECK_EQ(s.status, 0);
	CHECK_EQ(s.owner, 1);
	CHECK_EQ(vh_frontend_reset_owner(fe), 0);                              /* 4 */
	LAST_IS(h, BE_RESET_OWNER);
	s = h_state(h);
	CHECK_EQ(s.owner, 0);
	close(call);
}

/* Postcopy: 28, 29, 5 (table reply), 30 — with PAGEFAULT and without CONFIGURE_MEM_SLOTS. */
static void pass_postcopy(struct harness *h, struct mem *m)
{
	struct vh_frontend *fe = h->fe;
	struct vh_mem_region back[VH_USER_MAX_TABLE_REGIONS];
	int ufd = -1;

	CHECK_EQ(vh_frontend_set_protocol_features(fe, PROTO_POSTCOPY), 0);
	CHECK_EQ(vh_frontend_postcopy_advise(fe, &ufd), 0);                    /* 28 */
	CHECK(fid_is(h->beh.postcopy_fid, ufd));
	if (ufd >= 0)
		close(ufd);
	CHECK_EQ(vh_frontend_postcopy_listen(fe), 0);                          /* 29 */
	LAST_IS(h, BE_POSTCOPY_LISTEN);
	h->beh.postcopy_host_base = 0x7e0000000000ull;
	CHECK_EQ(vh_frontend_set_mem_table(fe, m->r, m->fd, 2), 0);            /* 5, postcopy */
	CHECK_EQ(vh_frontend_postcopy_backend_table(fe, back, 8), 2);
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ(back[i].guest_phys_addr, m->r[i].guest_phys_addr);
		CHECK_EQ(back[i].userspace_addr, 0x7e0000000000ull + m->r[i].guest_phys_addr);
	}
	CHECK_EQ(vh_frontend_postcopy_end(fe), 0);                             /* 30 */
	LAST_IS(h, BE_POSTCOPY_END);
	/* the exchange left both sides in step */
	CHECK_EQ(vh_frontend_set_mem_table(fe, m->r, m->fd, 1), 0);
	CHECK_EQ(h_rec(h).nregions, 1);
	CHECK_EQ(vh_frontend_error(fe), 0);
}

/* XEN_MMAP: SET_MEM_TABLE with 40-byte regions. */
static void pass_xen(struct harness *h, struct mem *m)
{
	struct vh_frontend *fe = h->fe;
	struct vh_mem_region_xen x[2];
	struct be_rec rec;

	CHECK_EQ(vh_frontend_set_protocol_features(fe, PROTO_XEN), 0);
	for (unsigned i = 0; i < 2; i++) {
		x[i].r = m->r[i];
		x[i].xen_mmap_flags = 0x1 + i;
		x[i].domid = 7 + i;
	}
	CHECK_EQ(vh_frontend_set_mem_table_xen(fe, x, m->fd, 2), 0);           /* 5, XEN */
	rec = h_rec(h);
	CHECK_EQ(rec.nregions, 2);
	for (unsigned i = 0; i < 2; i++) {
		check_region(&rec.regions[i], &m->r[i], "XEN SET_MEM_TABLE");
		CHECK_EQ(rec.regions[i].xen_mmap_flags, 0x1 + i);
		CHECK_EQ(rec.regions[i].xen_domid, 7 + i);
		CHECK(fid_is(rec.fids[i], m->fd[i]));
	}
	CHECK_EQ(vh_frontend_set_protocol_features(fe, PROTO_MAIN), 0);
}

/* Requests without REPLY_ACK: sent and not waited for; GET_FEATURES orders them. */
static void pass_no_reply_ack(struct harness *h)
{
	struct vh_frontend *fe = h->fe;
	uint64_t v;

	/* INBAND_NOTIFICATIONS needs REPLY_ACK: both go */
	CHECK_EQ(vh_frontend_set_protocol_features(fe, PROTO_MAIN & ~PF(REPLY_ACK) &
						   ~PF(INBAND_NOTIFICATIONS)), 0);
	CHECK_EQ(vh_frontend_set_vring_num(fe, 0, 64), 0);
	CHECK_EQ(vh_frontend_set_vring_num(fe, 0, 63), 0); /* refused, but nobody is told */
	CHECK_EQ(vh_frontend_get_features(fe, &v), 0);
	CHECK_EQ(h_state(h).vr[0].num, 64);
	CHECK_EQ(h_rec(h).u64, 64); /* the refused size never reached the device */
	CHECK_EQ(vh_frontend_set_protocol_features(fe, PROTO_MAIN), 0);
	CHECK_EQ(vh_frontend_error(fe), 0);
}

static void full_pass(struct harness *h)
{
	unsigned errors = h->errors;
	struct mem m;

	mem_open(&m);
	pass_negotiate(h, PROTO_MAIN);
	pass_memory(h, &m);
	pass_vrings(h);
	pass_device(h);
	pass_channel(h);
	pass_no_reply_ack(h);
	pass_reset(h);
	pass_postcopy(h, &m);
	pass_xen(h, &m);
	CHECK_EQ(vh_frontend_error(h->fe), 0);
	CHECK_EQ(h->errors, errors);
	mem_close(&m);
}

/* Every callback the passes must reach at least once. */
static void check_coverage(struct harness *h)
{
	struct be_rec rec = h_rec(h);

	for (int op = BE_SET_FEATURES; op < BE_OP_COUNT; op++)
		if (!rec.calls[op])
			T_FAIL("back-end callback %d never ran", op);
	for (int op = FE_IOTLB; op < FE_OP_COUNT; op++)
		if (!h->ferec.calls[op])
			T_FAIL("front-end channel callback %d never ran", op);
}

static const struct vh_frontend_config fe_cfg = {
	.timeout_ms = 2000,
	.flags = VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS,
};

static void run_topology(enum topology topo)
{
	struct harness h;

	if (h_init(&h, NULL))
		return;
	CHECK_EQ_M(h_connect(&h, topo, &fe_cfg), 0, "%s connect", topo_names[topo]);
	if (h.fe) {
		full_pass(&h);
		check_coverage(&h);
	}
	h_fini(&h);
}

/* Thread stacks and allocator arenas stay mapped after the first thread: warm them up. */
static void warm_up(void)
{
	run_topology(TOPO_SOCKETPAIR);
}

static void test_all_requests_socketpair(void)
{
	struct t_baseline base = t_baseline();

	run_topology(TOPO_SOCKETPAIR);
	CHECK_BASELINE(base);
}

static void test_all_requests_backend_listens(void)
{
	struct t_baseline base = t_baseline();

	run_topology(TOPO_BACKEND_LISTENS);
	CHECK_BASELINE(base);
}

static void test_all_requests_frontend_listens(void)
{
	struct t_baseline base = t_baseline();

	run_topology(TOPO_FRONTEND_LISTENS);
	CHECK_BASELINE(base);
}

/* A listening back-end: the front-end goes away (cleanly, and in the middle of a message), the
 * back-end tears the connection down and serves the next one normally. */
static void test_reconnect(void)
{
	struct t_baseline base = t_baseline();
	struct harness h;
	struct be_state s;

	if (h_init(&h, NULL))
		return;
	CHECK_EQ(h_connect(&h, TOPO_BACKEND_LISTENS, &fe_cfg), 0);
	if (!h.fe)
		goto out;
	{
		struct mem m;

		mem_open(&m);
		pass_negotiate(&h, PROTO_MAIN);
		pass_memory(&h, &m);
		pass_vrings(&h);
		mem_close(&m);
	}
	h_disconnect(&h);
	CHECK(h_wait_errors(&h, 1, 3000));
	CHECK_EQ(h.last_error, -ECONNRESET);
	s = h_state(&h);
	CHECK_EQ(s.connected, 0);
	CHECK_EQ(s.owner, 0);
	CHECK_EQ(s.nregions, 0);
	CHECK_EQ(s.has_channel, 0);
	CHECK_EQ(s.log_fid.valid, 0);
	for (unsigned i = 0; i < H_NQ; i++)
		CHECK(!s.call[i].valid && !s.err[i].valid && !s.kick[i].valid);
	CHECK_EQ(h_rec(&h).calls[BE_DISCONNECTED], 1);

	/* second connection: a complete pass */
	CHECK_EQ(h_connect(&h, TOPO_BACKEND_LISTENS, &fe_cfg), 0);
	if (h.fe)
		full_pass(&h);
	h_disconnect(&h);
	CHECK(h_wait_errors(&h, 2, 3000));

	/* third: the front-end dies half-way through a message */
	{
		int c = vh_socket_connect(h.path, 10, 20);
		uint8_t partial[12 + 4] = { VH_USER_SET_VRING_NUM, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0 };

		CHECK(c >= 0);
		CHECK_EQ(write(c, partial, sizeof(partial)), (ssize_t)sizeof(partial));
		close(c);
		CHECK(h_wait_errors(&h, 3, 3000));
		CHECK_EQ(h.last_error, -ECONNRESET);
	}
	/* and a fourth serves normally */
	CHECK_EQ(h_connect(&h, TOPO_BACKEND_LISTENS, &fe_cfg), 0);
	if (h.fe) {
		uint64_t v = 0;

		CHECK_EQ(vh_frontend_negotiate(h.fe, VH_FRONTEND_PROTOCOL_FEATURES, &v, NULL), 0);
		CHECK_EQ(v, H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
		CHECK_EQ(vh_frontend_get_queue_num(h.fe, &v), 0);
		CHECK_EQ(v, H_NQ);
	}
	CHECK_EQ(h_rec(&h).calls[BE_CONNECTED], 4);
out:
	h_fini(&h);
	CHECK_BASELINE(base);
}

/* vh_frontend_negotiate() against our back-end: the documented mask, with and without the
 * trust flag for bits 21-22. */
static void test_negotiate(void)
{
	struct harness h;
	uint64_t f = 0, p = 0;
	struct vh_frontend_config cfg = { .timeout_ms = 2000 };

	if (h_init(&h, NULL))
		return;
	CHECK_EQ(h_connect(&h, TOPO_SOCKETPAIR, &cfg), 0);
	if (h.fe) {
		CHECK_EQ(vh_frontend_negotiate(h.fe, ~0ull, &f, &p), 0);
		CHECK_EQ(f, H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
		CHECK_EQ(p & (PF(GPA_ADDRESSES) | PF(SHMEM)), 0);
		CHECK_EQ(p, (H_PROTOCOL_ALL & ~(PF(GPA_ADDRESSES) | PF(SHMEM))));
		/* SET_PROTOCOL_FEATURES has no reply: a GET orders it before the state is read */
		CHECK_EQ(vh_frontend_get_features(h.fe, &f), 0);
		CHECK_EQ(h_state(&h).protocol_features, p);
	}
	h_fini(&h);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_all_requests_socketpair),
		T_TEST(test_all_requests_backend_listens),
		T_TEST(test_all_requests_frontend_listens),
		T_TEST(test_reconnect),
		T_TEST(test_negotiate),
	};

	signal(SIGPIPE, SIG_IGN);
	t_failures = 0;
	warm_up();
	if (t_failures)
		fprintf(stderr, "(failures above came from the warm-up pass)\n");
	return t_run(tests, NELEM(tests), argc, argv) || t_failures;
}
