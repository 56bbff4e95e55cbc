/* SPDX-License-Identifier: MIT */
/*
 * What the kernel answers is checked too: this program plays a hostile (or buggy) vhost and
 * vhost-vdpa driver by interposing ioctl() for one fd (/dev/null, a character device like the
 * real nodes) and answers every query with values out of range: another ring index than asked,
 * a split ring position above 16 bits, unknown status or backend feature bits, an empty or
 * inverted IOVA range, zero or huge counts and sizes. Each wrapper must refuse the answer with
 * -EPROTO and leave its output untouched, pass a good answer through exactly, and an open that
 * meets a bad answer must close its fd. Other fds go to the real ioctl.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include <libvhost/uapi_compat.h>
#include "testutil.h"
#include "vhost_fd.h"

/* ---- The fake driver ------------------------------------------------------------------------ */

/* What the fake answers; reset by fake_reset() to a well-behaved vdpa device. */
static struct {
	int fd;                 /* the fd it answers for; -1: none */
	int index_delta;        /* added to the ring index of vring answers */
	uint32_t vring_num;     /* GET_VRING_BASE, GET_VRING_ENDIAN, busyloop, group answers */
	uint64_t backend_features;
	int fork_mode;
	int scsi_abi;
	uint32_t events_missed;
	uint32_t device_id;
	uint8_t status;
	uint32_t config_size;
	uint16_t max_vring_num;
	uint32_t count;         /* AS_NUM, GROUP_NUM, VQS_COUNT */
	uint64_t iova_first, iova_last;
	unsigned calls;
} fk;

static void fake_reset(int fd)
{
	memset(&fk, 0, sizeof(fk));
	fk.fd = fd;
	fk.vring_num = 1;
	fk.backend_features = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) |
			      (1ULL << VHOST_BACKEND_F_IOTLB_BATCH);
	fk.fork_mode = VHOST_FORK_OWNER_TASK;
	fk.scsi_abi = VHOST_SCSI_ABI_VERSION;
	fk.events_missed = 1;
	fk.device_id = 1; /* net */
	fk.status = VH_STATUS_ACKNOWLEDGE;
	fk.config_size = 12;
	fk.max_vring_num = 256;
	fk.count = 2;
	fk.iova_first = 0;
	fk.iova_last = UINT64_MAX;
}

static int fake_ioctl(unsigned long req, void *arg)
{
	struct vhost_vring_state *s = arg;

	fk.calls++;
	switch (req) {
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = 1ULL << 32;
		return 0;
	case VHOST_GET_VRING_BASE:
	case VHOST_GET_VRING_ENDIAN:
	case VHOST_GET_VRING_BUSYLOOP_TIMEOUT:
	case VHOST_VDPA_GET_VRING_GROUP:
	case VHOST_VDPA_GET_VRING_DESC_GROUP:
	case VHOST_VDPA_GET_VRING_SIZE:
		s->index = (unsigned)((int)s->index + fk.index_delta);
		s->num = fk.vring_num;
		return 0;
	case VHOST_GET_VRING_WORKER: {
		struct vhost_vring_worker *w = arg;

		w->index = (unsigned)((int)w->index + fk.index_delta);
		w->worker_id = 7;
		return 0;
	}
	case VHOST_GET_BACKEND_FEATURES:
		*(uint64_t *)arg = fk.backend_features;
		return 0;
	case VHOST_GET_FORK_FROM_OWNER:
		*(uint8_t *)arg = (uint8_t)fk.fork_mode;
		return 0;
	case VHOST_SCSI_GET_ABI_VERSION:
		*(int *)arg = fk.scsi_abi;
		return 0;
	case VHOST_SCSI_GET_EVENTS_MISSED:
		*(uint32_t *)arg = fk.events_missed;
		return 0;
	case VHOST_VDPA_GET_DEVICE_ID:
		*(uint32_t *)arg = fk.device_id;
		return 0;
	case VHOST_VDPA_GET_STATUS:
		*(uint8_t *)arg = fk.status;
		return 0;
	case VHOST_VDPA_GET_CONFIG_SIZE:
		*(uint32_t *)arg = fk.config_size;
		return 0;
	case VHOST_VDPA_GET_VRING_NUM:
		*(uint16_t *)arg = fk.max_vring_num;
		return 0;
	case VHOST_VDPA_GET_AS_NUM:
	case VHOST_VDPA_GET_GROUP_NUM:
	case VHOST_VDPA_GET_VQS_COUNT:
		*(uint32_t *)arg = fk.count;
		return 0;
	case VHOST_VDPA_GET_IOVA_RANGE: {
		struct vhost_vdpa_iova_range *r = arg;

		r->first = fk.iova_first;
		r->last = fk.iova_last;
		return 0;
	}
	default: /* every SET: accepted */
		return 0;
	}
}

/* The library's ioctl() calls land here (the test is linked with the static library). */
int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	long r;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd >= 0 && fd == fk.fd)
		return fake_ioctl(req, arg);
	r = syscall(SYS_ioctl, fd, req, arg);
	return (int)r;
}

/* ---- Helpers -------------------------------------------------------------------------------- */

#define POISON32 0xdeadbeefu

static struct vh_device *wrap_kernel(enum vh_kernel_kind kind)
{
	struct vh_device *dev = NULL;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	fake_reset(fd);
	if (vhp_kernel_wrap(&dev, fd, kind, NULL))
		T_FAIL("wrap");
	return dev;
}

static struct vh_device *wrap_vdpa(void)
{
	struct vh_device *dev = NULL;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	fake_reset(fd);
	if (vhp_vdpa_wrap(&dev, fd, NULL))
		T_FAIL("wrap");
	return dev;
}

/* ---- Ring answers ---------------------------------------------------------------------------- */

/* GET-style ring ioctls: an answer about another ring than asked is refused, on both transports
 * and through the device-control interface. */
static void test_ring_index_answers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *k = wrap_kernel(VH_KERNEL_NET), *v = NULL;
	uint32_t u32;
	unsigned un;

	for (int pass = 0; pass < 2; pass++) {
		struct vh_device *d = pass ? (v = wrap_vdpa()) : k;
		const char *t = pass ? "vdpa" : "kernel";

		fk.vring_num = 0x1234;
		u32 = POISON32;
		CHECK_EQ_M(vh_kernel_get_vring_base(d, 3, &u32), 0, "%s base", t);
		CHECK_EQ_M(u32, 0x1234, "%s base value", t);
		fk.index_delta = 1;
		u32 = POISON32;
		CHECK_EQ_M(vh_kernel_get_vring_base(d, 3, &u32), -EPROTO, "%s base other ring", t);
		CHECK_EQ_M(u32, POISON32, "%s base untouched", t);
		CHECK_EQ_M(vh_device_get_vring_base(d, 3, &u32), -EPROTO, "%s dev base", t);
		CHECK_EQ_M(vh_kernel_get_vring_busyloop_timeout(d, 0, &u32), -EPROTO, "%s busy", t);
		fk.index_delta = -1;
		CHECK_EQ_M(vh_kernel_get_vring_base(d, 0, &u32), -EPROTO, "%s base ring -1", t);
		fk.vring_num = 1;
		CHECK_EQ_M(vh_kernel_get_vring_endian(d, 0, &un), -EPROTO, "%s endian", t);
		CHECK_EQ_M(vh_kernel_get_vring_worker(d, 2, &u32), -EPROTO, "%s worker", t);
		fk.index_delta = 0;
		CHECK_EQ_M(vh_kernel_get_vring_worker(d, 2, &u32), 0, "%s worker", t);
		CHECK_EQ_M(u32, 7, "%s worker id", t);
		if (pass) {
			fk.index_delta = 1;
			CHECK_EQ(vh_vdpa_get_vring_group(d, 0, &u32), -EPROTO);
			CHECK_EQ(vh_vdpa_get_vring_desc_group(d, 0, &u32), -EPROTO);
			CHECK_EQ(vh_vdpa_get_vring_size(d, 0, &u32), -EPROTO);
			fk.index_delta = 0;
			CHECK_EQ(vh_vdpa_get_vring_size(d, 0, &u32), 0);
			CHECK_EQ(u32, 1);
		}
	}
	vh_device_close(k);
	vh_device_close(v);
	CHECK_BASELINE(b);
}

/* A split ring's position is 16 bits; packed rings carry wrap counters above. */
static void test_ring_values(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *d = wrap_kernel(VH_KERNEL_VSOCK);
	uint32_t u32 = POISON32;
	unsigned un = 5;

	fk.vring_num = 0x10000;
	CHECK_EQ(vh_kernel_get_vring_base(d, 0, &u32), -EPROTO);
	CHECK_EQ(u32, POISON32);
	CHECK_EQ(vh_kernel_set_features(d, 1ULL << 34), 0); /* RING_PACKED */
	fk.vring_num = 0x80018001u;
	CHECK_EQ(vh_kernel_get_vring_base(d, 0, &u32), 0);
	CHECK_EQ(u32, 0x80018001u);
	fk.vring_num = 2; /* neither little (0) nor big (1) endian */
	CHECK_EQ(vh_kernel_get_vring_endian(d, 0, &un), -EPROTO);
	CHECK_EQ(un, 5);
	fk.vring_num = 1;
	CHECK_EQ(vh_kernel_get_vring_endian(d, 0, &un), 0);
	CHECK_EQ(un, 1);
	vh_device_close(d);
	CHECK_BASELINE(b);
}

/* ---- Device answers -------------------------------------------------------------------------- */

static void test_device_answers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *d = wrap_kernel(VH_KERNEL_SCSI);
	uint64_t u64 = 0x5a5a;
	uint32_t u32 = POISON32;
	uint8_t u8 = 0x5a;
	int i = 42;

	fk.backend_features |= 1; /* bit 0 was never assigned */
	CHECK_EQ(vh_kernel_get_backend_features(d, &u64), -EPROTO);
	CHECK_EQ(u64, 0x5a5a);
	fk.fork_mode = 2;
	CHECK_EQ(vh_kernel_get_fork_from_owner(d, &u8), -EPROTO);
	CHECK_EQ(u8, 0x5a);
	fk.scsi_abi = -1;
	CHECK_EQ(vh_kernel_scsi_get_abi_version(d, &i), -EPROTO);
	CHECK_EQ(i, 42);
	fk.events_missed = 2;
	CHECK_EQ(vh_kernel_scsi_get_events_missed(d, &u32), -EPROTO);
	CHECK_EQ(u32, POISON32);
	fake_reset(fk.fd);
	CHECK_EQ(vh_kernel_get_backend_features(d, &u64), 0);
	CHECK_EQ(u64, fk.backend_features);
	CHECK_EQ(vh_kernel_get_fork_from_owner(d, &u8), 0);
	CHECK_EQ(u8, VHOST_FORK_OWNER_TASK);
	CHECK_EQ(vh_kernel_scsi_get_abi_version(d, &i), 0);
	CHECK_EQ(i, VHOST_SCSI_ABI_VERSION);
	vh_device_close(d);
	CHECK_BASELINE(b);
}

static void test_vdpa_answers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *d = wrap_vdpa();
	uint64_t first = 1, last = 2;
	uint32_t u32 = POISON32;
	uint16_t u16 = 0x5a5a;
	uint8_t u8 = 0x5a;
	unsigned un = 9;
	static const uint32_t bad_ids[] = { 0, 0x10000 };
	static const uint8_t bad_status[] = { 0x10, 0x20 };
	static const uint32_t bad_counts[] = { 0, 0x10001 };
	static const uint16_t bad_nums[] = { 0, 32769 };

	for (size_t k = 0; k < 2; k++) {
		fk.device_id = bad_ids[k];
		CHECK_EQ_M(vh_vdpa_get_device_id(d, &u32), -EPROTO, "id %u", bad_ids[k]);
		fk.status = bad_status[k];
		CHECK_EQ_M(vh_vdpa_get_status(d, &u8), -EPROTO, "status 0x%x", bad_status[k]);
		CHECK_EQ_M(vh_device_get_status(d, &u8), -EPROTO, "dev status 0x%x", bad_status[k]);
		fk.count = bad_counts[k];
		CHECK_EQ_M(vh_vdpa_get_vqs_count(d, &u32), -EPROTO, "vqs %u", bad_counts[k]);
		CHECK_EQ_M(vh_vdpa_get_as_num(d, &u32), -EPROTO, "as %u", bad_counts[k]);
		CHECK_EQ_M(vh_vdpa_get_group_num(d, &u32), -EPROTO, "groups %u", bad_counts[k]);
		CHECK_EQ_M(vh_device_get_queue_num(d, &un), -EPROTO, "dev queues %u", bad_counts[k]);
		fk.max_vring_num = bad_nums[k];
		CHECK_EQ_M(vh_vdpa_get_vring_num(d, &u16), -EPROTO, "vring num %u", bad_nums[k]);
		fk.vring_num = bad_nums[k];
		CHECK_EQ_M(vh_vdpa_get_vring_size(d, 0, &u32), -EPROTO, "vring size %u",
			   bad_nums[k]);
	}
	fk.config_size = 0x10001;
	CHECK_EQ(vh_vdpa_get_config_size(d, &u32), -EPROTO);
	fk.iova_first = 0x2000;
	fk.iova_last = 0x1fff;
	CHECK_EQ(vh_vdpa_get_iova_range(d, &first, &last), -EPROTO);
	/* nothing was written through on any refusal */
	CHECK_EQ(u32, POISON32);
	CHECK_EQ(u16, 0x5a5a);
	CHECK_EQ(u8, 0x5a);
	CHECK_EQ(un, 9);
	CHECK(first == 1 && last == 2);

	fake_reset(fk.fd);
	fk.vring_num = 3;
	CHECK_EQ(vh_vdpa_get_device_id(d, &u32), 0);
	CHECK_EQ(u32, 1);
	CHECK_EQ(vh_vdpa_get_vring_num(d, &u16), 0);
	CHECK_EQ(u16, 256);
	CHECK_EQ(vh_device_get_queue_num(d, &un), 0);
	CHECK_EQ(un, 2);
	CHECK_EQ(vh_device_get_vring_max(d, 0, &un), 0);
	CHECK_EQ(un, 3);
	vh_device_close(d);
	CHECK_BASELINE(b);
}

/* vh_vdpa_from_fd() queries the device while opening: a bad answer fails the open and the fd
 * it was given is closed; good answers give a device. */
static void test_vdpa_open_answers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *d = NULL;
	int fd;

	for (int k = 0; k < 4; k++) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		fake_reset(fd);
		if (k == 0)
			fk.device_id = 0;
		else if (k == 1)
			fk.backend_features |= 1;
		else if (k == 2)
			fk.iova_first = 1, fk.iova_last = 0;
		else
			fk.count = 0;
		CHECK_EQ_M(vh_vdpa_from_fd(&d, fd, NULL), -EPROTO, "open answer kind %d", k);
		CHECK(d == NULL);
		CHECK_EQ_M(fcntl(fd, F_GETFD) < 0 && errno == EBADF, 1, "fd closed, kind %d", k);
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	fake_reset(fd);
	CHECK_EQ(vh_vdpa_from_fd(&d, fd, NULL), 0);
	CHECK(d != NULL);
	CHECK_EQ(vh_kernel_fd(d), fd);
	CHECK_EQ(vh_kernel_acked_backend_features(d), fk.backend_features);
	vh_device_close(d);
	CHECK_BASELINE(b);
}

static void warm_up(void)
{
	struct vh_device *d = wrap_vdpa();
	uint32_t u32;

	vh_vdpa_get_device_id(d, &u32);
	vh_device_close(d);
	fk.fd = -1;
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_ring_index_answers), T_TEST(test_ring_values),
		T_TEST(test_device_answers),     T_TEST(test_vdpa_answers),
		T_TEST(test_vdpa_open_answers),
	};

	fk.fd = -1;
	warm_up();
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
