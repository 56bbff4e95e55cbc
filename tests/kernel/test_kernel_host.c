/* SPDX-License-Identifier: MIT */
/*
 * Kernel vhost and vhost-vdpa transports on a host without /dev/vhost-*: opening what is not a
 * vhost device, every wrapper against fds that are not vhost devices (/dev/null, a pipe, a
 * closed fd), argument checks made before any ioctl, IOTLB messages read from a pipe that
 * plays the kernel (valid and malformed), vdpa address translation, and fd/mapping counts.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include <libvhost/uapi_compat.h>
#include "testutil.h"
#include "vhost_fd.h"

#define ALL_ENOTTY_OR(r, alt) ((r) == -ENOTTY || (r) == (alt))

/* ---- open ---------------------------------------------------------------------------------- */

static void test_open_missing(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = (struct vh_device *)1;

	CHECK_EQ(vh_kernel_open(&dev, "/nonexistent/vhost-net", NULL), -ENOENT);
	CHECK(dev == NULL);
	dev = (struct vh_device *)1;
	CHECK_EQ(vh_vdpa_open(&dev, "/nonexistent/vhost-vdpa-0", NULL), -ENOENT);
	CHECK(dev == NULL);
	CHECK_EQ(vh_kernel_open(NULL, "/dev/null", NULL), -EINVAL);
	CHECK_EQ(vh_kernel_open(&dev, NULL, NULL), -EINVAL);
	CHECK_BASELINE(b);
}

static int log_lines;
static void count_log(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	CHECK(msg && msg[0]);
	log_lines++;
}

static void test_open_not_vhost(void)
{
	struct t_baseline b = t_baseline();
	struct vh_logger log = { count_log, NULL, VH_LOG_DEBUG };
	struct vh_device *dev = NULL;
	char path[] = "/tmp/vh-kernel-test-XXXXXX";
	int p[2], fd;

	log_lines = 0;
	CHECK_EQ(vh_kernel_open(&dev, "/dev/null", &log), -ENOTTY);
	CHECK(dev == NULL);
	CHECK(log_lines > 0);
	CHECK_EQ(vh_vdpa_open(&dev, "/dev/null", NULL), -ENOTTY);
	CHECK(dev == NULL);

	/* A regular file and a pipe: ownership is taken even on failure. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ(vh_kernel_from_fd(&dev, fd, NULL), -ENOTTY);
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(vh_kernel_from_fd(&dev, p[0], NULL), -ENOTTY);
	CHECK_EQ(vh_vdpa_from_fd(&dev, p[1], NULL), -ENOTTY);
	CHECK(fcntl(p[0], F_GETFD) < 0 && fcntl(p[1], F_GETFD) < 0);

	/* An eventfd is not a char device either. */
	fd = eventfd(0, EFD_CLOEXEC);
	CHECK_EQ(vh_vdpa_from_fd(&dev, fd, NULL), -ENOTTY);
	CHECK(dev == NULL);
	CHECK_BASELINE(b);
}

static void test_open_bad_fd(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	CHECK_EQ(vh_kernel_from_fd(&dev, -1, NULL), -EBADF);
	CHECK_EQ(vh_vdpa_from_fd(&dev, -5, NULL), -EBADF);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_kernel_from_fd(&dev, fd, NULL), -EBADF);
	CHECK_EQ(vh_vdpa_from_fd(&dev, fd, NULL), -EBADF);
	CHECK(dev == NULL);
	CHECK_BASELINE(b);
}

/* ---- every wrapper on a non-vhost fd -------------------------------------------------------- */

/* Runs every generic and device-specific kernel wrapper; each must answer want (the errno of
 * an ioctl on that fd) or, for calls the library refuses first, the documented errno. */
static void all_kernel_wrappers(struct vh_device *dev, int want, const char *what)
{
	uint64_t u64 = 0, words[2] = { 1, 0 };
	uint32_t u32 = 0;
	uint8_t u8 = 0;
	unsigned un = 0;
	int i = 0;
	struct vh_region reg = { 0x0, 0x1000, 0x7f0000000000ULL, -1, 0 };
	struct vh_vring_addr addr = { 0, 0, 0x1000, 0x2000, 0x3000, 0 };

	CHECK_EQ_M(vh_kernel_get_features(dev, &u64), want, "%s get_features", what);
	CHECK_EQ_M(vh_kernel_set_features(dev, 1ULL << 32), want, "%s set_features", what);
	CHECK_EQ_M(vh_kernel_get_features_array(dev, words, 2), want, "%s get_farray", what);
	CHECK_EQ_M(vh_kernel_set_features_array(dev, words, 2), want, "%s set_farray", what);
	CHECK_EQ_M(vh_kernel_set_owner(dev), want, "%s set_owner", what);
	CHECK_EQ_M(vh_kernel_reset_owner(dev), want, "%s reset_owner", what);
	CHECK_EQ_M(vh_kernel_set_fork_from_owner(dev, VHOST_FORK_OWNER_TASK), want, "%s fork",
		   what);
	CHECK_EQ_M(vh_kernel_get_fork_from_owner(dev, &u8), want, "%s get fork", what);
	CHECK_EQ_M(vh_kernel_set_mem_table(dev, &reg, 1), want, "%s mem table", what);
	CHECK_EQ_M(vh_kernel_set_mem_table(dev, NULL, 0), want, "%s empty mem table", what);
	CHECK_EQ_M(vh_kernel_set_log_base(dev, 0x10000), want, "%s log base", what);
	CHECK_EQ_M(vh_kernel_set_log_fd(dev, -1), want, "%s log fd", what);
	CHECK_EQ_M(vh_kernel_new_worker(dev, &u32), want, "%s new worker", what);
	CHECK_EQ_M(vh_kernel_free_worker(dev, 1), want, "%s free worker", what);
	CHECK_EQ_M(vh_kernel_attach_vring_worker(dev, 0, 1), want, "%s attach worker", what);
	CHECK_EQ_M(vh_kernel_get_vring_worker(dev, 0, &u32), want, "%s get worker", what);
	CHECK_EQ_M(vh_kernel_set_vring_num(dev, 0, 256), want, "%s vring num", what);
	CHECK_EQ_M(vh_kernel_set_vring_addr(dev, &addr), want, "%s vring addr", what);
	CHECK_EQ_M(vh_kernel_set_vring_base(dev, 0, 0), want, "%s vring base", what);
	CHECK_EQ_M(vh_kernel_get_vring_base(dev, 0, &u32), want, "%s get vring base", what);
	CHECK_EQ_M(vh_kernel_set_vring_endian(dev, 0, 1), want, "%s endian", what);
	CHECK_EQ_M(vh_kernel_get_vring_endian(dev, 0, &un), want, "%s get endian", what);
	CHECK_EQ_M(vh_kernel_set_vring_kick(dev, 0, -1), want, "%s kick", what);
	CHECK_EQ_M(vh_kernel_set_vring_call(dev, 0, -1), want, "%s call", what);
	CHECK_EQ_M(vh_kernel_set_vring_err(dev, 0, -1), want, "%s err", what);
	CHECK_EQ_M(vh_kernel_set_vring_busyloop_timeout(dev, 0, 50), want, "%s busyloop", what);
	CHECK_EQ_M(vh_kernel_get_vring_busyloop_timeout(dev, 0, &u32), want, "%s get busyloop",
		   what);
	CHECK_EQ_M(vh_kernel_get_backend_features(dev, &u64), want, "%s get backend", what);
	CHECK_EQ_M(vh_kernel_set_backend_features(dev, 2), want, "%s set backend", what);
	CHECK_EQ_M(vh_kernel_net_set_backend(dev, 0, -1), want, "%s net backend", what);
	CHECK_EQ_M(vh_kernel_vsock_set_guest_cid(dev, 3), want, "%s cid", what);
	CHECK_EQ_M(vh_kernel_vsock_set_running(dev, 1), want, "%s running", what);
	CHECK_EQ_M(vh_kernel_scsi_set_endpoint(dev, "naa.6001405000000001", 1), want,
		   "%s scsi set", what);
	CHECK_EQ_M(vh_kernel_scsi_clear_endpoint(dev, "naa.6001405000000001", 1), want,
		   "%s scsi clear", what);
	CHECK_EQ_M(vh_kernel_scsi_get_abi_version(dev, &i), want, "%s abi", what);
	CHECK_EQ_M(vh_kernel_scsi_set_events_missed(dev, 1), want, "%s set missed", what);
	CHECK_EQ_M(vh_kernel_scsi_get_events_missed(dev, &u32), want, "%s get missed", what);

	/* The same through the device-control interface. */
	CHECK_EQ_M(vh_device_get_features(dev, &u64), want, "%s dev features", what);
	CHECK_EQ_M(vh_device_set_owner(dev), want, "%s dev owner", what);
	CHECK_EQ_M(vh_device_set_mem_table(dev, &reg, 1), want, "%s dev mem", what);
	CHECK_EQ_M(vh_device_set_log_base(dev, 0x1000, -1, 0, 0), want, "%s dev log", what);
	CHECK_EQ_M(vh_device_set_vring_num(dev, 1, 64), want, "%s dev num", what);
	CHECK_EQ_M(vh_device_set_vring_addr(dev, &addr), want, "%s dev addr", what);
	CHECK_EQ_M(vh_device_get_vring_base(dev, 1, &u32), want, "%s dev base", what);
	CHECK_EQ_M(vh_device_set_vring_kick(dev, 1, -1), want, "%s dev kick", what);
	CHECK_EQ_M(vh_device_set_vring_call(dev, 1, -1), want, "%s dev call", what);
	CHECK_EQ_M(vh_device_set_vring_err(dev, 1, -1), want, "%s dev err", what);
	CHECK_EQ_M(vh_device_set_log_fd(dev, -1), want, "%s dev log fd", what);
}

static void all_vdpa_wrappers(struct vh_device *dev, int want, const char *what)
{
	uint64_t a = 0, b = 0;
	uint32_t u32 = 0;
	uint16_t u16 = 0;
	uint8_t u8 = 0, cfg[8] = { 0 };

	CHECK_EQ_M(vh_vdpa_get_device_id(dev, &u32), want, "%s device id", what);
	CHECK_EQ_M(vh_vdpa_get_status(dev, &u8), want, "%s status", what);
	CHECK_EQ_M(vh_vdpa_set_status(dev, VH_STATUS_ACKNOWLEDGE), want, "%s set status", what);
	CHECK_EQ_M(vh_vdpa_get_config_size(dev, &u32), want, "%s config size", what);
	CHECK_EQ_M(vh_vdpa_get_config(dev, 0, cfg, sizeof(cfg)), want, "%s config", what);
	CHECK_EQ_M(vh_vdpa_set_config(dev, 0, cfg, sizeof(cfg)), want, "%s set config", what);
	CHECK_EQ_M(vh_vdpa_set_vring_enable(dev, 0, 1), want, "%s enable", what);
	CHECK_EQ_M(vh_vdpa_get_vring_num(dev, &u16), want, "%s vring num", what);
	CHECK_EQ_M(vh_vdpa_get_vring_size(dev, 0, &u32), want, "%s vring size", what);
	CHECK_EQ_M(vh_vdpa_get_vring_group(dev, 0, &u32), want, "%s group", what);
	CHECK_EQ_M(vh_vdpa_get_vring_desc_group(dev, 0, &u32), want, "%s desc group", what);
	CHECK_EQ_M(vh_vdpa_set_config_call(dev, -1), want, "%s config call", what);
	CHECK_EQ_M(vh_vdpa_get_iova_range(dev, &a, &b), want, "%s iova range", what);
	CHECK_EQ_M(vh_vdpa_get_as_num(dev, &u32), want, "%s as num", what);
	CHECK_EQ_M(vh_vdpa_get_group_num(dev, &u32), want, "%s group num", what);
	CHECK_EQ_M(vh_vdpa_get_vqs_count(dev, &u32), want, "%s vqs", what);
	CHECK_EQ_M(vh_vdpa_set_group_asid(dev, 0, 0), want, "%s group asid", what);
	CHECK_EQ_M(vh_vdpa_suspend(dev), want, "%s suspend", what);
	CHECK_EQ_M(vh_vdpa_resume(dev), want, "%s resume", what);
	CHECK_EQ_M(vh_vdpa_reset(dev), want, "%s reset", what);
	CHECK_EQ_M(vh_vdpa_negotiate(dev, 0, &a), want, "%s negotiate", what);
	CHECK_EQ_M(vh_vdpa_driver_ok(dev), want, "%s driver ok", what);
	CHECK_EQ_M(vh_device_get_status(dev, &u8), want, "%s dev status", what);
	CHECK_EQ_M(vh_device_set_status(dev, 0), want, "%s dev set status", what);
	CHECK_EQ_M(vh_device_get_config(dev, 0, cfg, 4), want, "%s dev config", what);
	CHECK_EQ_M(vh_device_set_config(dev, 0, cfg, 4), want, "%s dev set config", what);
	CHECK_EQ_M(vh_device_set_vring_enable(dev, 0, 1), want, "%s dev enable", what);
	CHECK_EQ_M(vh_device_get_queue_num(dev, (unsigned *)&u32), want, "%s dev queues", what);
	CHECK_EQ_M(vh_device_get_vring_max(dev, 0, (unsigned *)&u32), want, "%s dev max", what);
}

static void test_wrappers_dev_null(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	CHECK_EQ(vhp_kernel_wrap(&dev, fd, VH_KERNEL_UNKNOWN, NULL), 0);
	all_kernel_wrappers(dev, -ENOTTY, "kernel /dev/null");
	vh_device_close(dev);

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK_EQ(vhp_vdpa_wrap(&dev, fd, NULL), 0);
	all_vdpa_wrappers(dev, -ENOTTY, "vdpa /dev/null");
	vh_device_close(dev);
	CHECK_BASELINE(b);
}

static void test_wrappers_pipe(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	int p[2];

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(vhp_kernel_wrap(&dev, p[0], VH_KERNEL_UNKNOWN, NULL), 0);
	all_kernel_wrappers(dev, -ENOTTY, "kernel pipe");
	vh_device_close(dev);
	CHECK_EQ(vhp_vdpa_wrap(&dev, p[1], NULL), 0);
	all_vdpa_wrappers(dev, -ENOTTY, "vdpa pipe");
	vh_device_close(dev);
	CHECK_BASELINE(b);
}

static void test_wrappers_closed_fd(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	struct vh_iotlb_event ev;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	close(fd);
	CHECK_EQ(vhp_kernel_wrap(&dev, fd, VH_KERNEL_UNKNOWN, NULL), 0);
	all_kernel_wrappers(dev, -EBADF, "kernel closed");
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 4096, 0x10000, VH_ACCESS_RW), -EBADF);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 0), -EBADF);
	((struct vhp_vhost *)dev)->fd = -1; /* never close a number that may be reused */
	vh_device_close(dev);

	CHECK_EQ(vhp_vdpa_wrap(&dev, fd, NULL), 0);
	all_vdpa_wrappers(dev, -EBADF, "vdpa closed");
	CHECK_EQ(vh_vdpa_dma_map(dev, 0, 0, 4096, (void *)0x10000, VH_ACCESS_RW), -EBADF);
	((struct vhp_vhost *)dev)->fd = -1;
	vh_device_close(dev);
	CHECK_BASELINE(b);
}

/* ---- library-side checks ---------------------------------------------------------------- */

static void test_argument_checks(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL, *vd = NULL;
	struct vh_device user = { .ops = NULL, .transport = VH_TRANSPORT_USER };
	struct vh_region bad[2] = {
		{ 0x1000, 0, 0x10000, -1, 0 },                     /* empty */
		{ UINT64_MAX - 0xfff, 0x2000, 0x10000, -1, 0 },    /* wraps */
	};
	uint64_t words[65] = { 0 };
	uint32_t u32;
	char longname[300];
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	CHECK_EQ(vhp_kernel_wrap(&dev, fd, VH_KERNEL_NET, NULL), 0);
	/* NULL or foreign handles */
	CHECK_EQ(vh_kernel_set_owner(NULL), -EINVAL);
	CHECK_EQ(vh_kernel_set_owner(&user), -ENODEV);
	CHECK_EQ(vh_kernel_fd(&user), -ENODEV);
	CHECK_EQ(vh_kernel_fd(NULL), -EINVAL);
	CHECK_EQ(vh_kernel_fd(dev), fd);
	CHECK_EQ(vh_kernel_kind(dev), VH_KERNEL_NET);
	CHECK_EQ(vh_kernel_kind(&user), VH_KERNEL_UNKNOWN);
	CHECK_EQ(vh_vdpa_get_device_id(dev, &u32), -ENODEV);
	CHECK_EQ(vh_vdpa_suspend(&user), -ENODEV);
	CHECK_EQ(vh_kernel_get_features(dev, NULL), -EINVAL);
	/* device kind */
	CHECK_EQ(vh_kernel_vsock_set_guest_cid(dev, 3), -ENODEV);
	CHECK_EQ(vh_kernel_scsi_get_abi_version(dev, (int *)&u32), -ENODEV);
	CHECK_EQ(vh_kernel_net_set_backend(dev, 0, -1), -ENOTTY);
	/* ranges */
	CHECK_EQ(vh_kernel_set_vring_num(dev, 0x10000, 256), -EINVAL);
	CHECK_EQ(vh_kernel_set_vring_kick(dev, 0, -2), -EINVAL);
	CHECK_EQ(vh_kernel_set_vring_endian(dev, 0, 2), -EINVAL);
	CHECK_EQ(vh_kernel_set_fork_from_owner(dev, 2), -EINVAL);
	CHECK_EQ(vh_kernel_set_mem_table(dev, &bad[0], 1), -EINVAL);
	CHECK_EQ(vh_kernel_set_mem_table(dev, &bad[1], 1), -EINVAL);
	CHECK_EQ(vh_kernel_set_mem_table(dev, NULL, 1), -EINVAL);
	CHECK_EQ(vh_kernel_set_mem_table(dev, bad, VH_KERNEL_MAX_REGIONS + 1), -E2BIG);
	CHECK_EQ(vh_kernel_get_features_array(dev, words, 0), -EINVAL);
	CHECK_EQ(vh_kernel_get_features_array(dev, words, 65), -E2BIG);
	CHECK_EQ(vh_kernel_set_backend_features(dev, 1ULL << VHOST_BACKEND_F_DESC_ASID), -EINVAL);
	/* IOTLB */
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 0, 0x1000, VH_ACCESS_RW), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, UINT64_MAX, 2, 0x1000, VH_ACCESS_RW), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 2, UINT64_MAX, VH_ACCESS_RW), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 4096, 0x1000, 0), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 4096, 0x1000, 4), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_invalidate(dev, 0, 2, UINT64_MAX), -EINVAL);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 1, 0, 4096, 0x1000, VH_ACCESS_RW), -EOPNOTSUPP);
	CHECK_EQ(vh_kernel_iotlb_batch_begin(dev, 0), -EOPNOTSUPP);
	CHECK_EQ(vh_kernel_iotlb_batch_end(dev, 0), -EOPNOTSUPP);
	/* /dev/null swallows a well-formed message */
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0, 4096, 0x1000, VH_ACCESS_RW), 0);
	CHECK_EQ(vh_kernel_iotlb_invalidate(dev, 0, 0, 4096), 0);
	/* scsi names */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	((struct vhp_vhost *)dev)->kind = VH_KERNEL_SCSI;
	CHECK_EQ(vh_kernel_scsi_set_endpoint(dev, longname, 1), -ENAMETOOLONG);
	CHECK_EQ(vh_kernel_scsi_set_endpoint(dev, "", 1), -EINVAL);
	CHECK_EQ(vh_kernel_scsi_set_endpoint(dev, NULL, 1), -EINVAL);
	/* device-control operations the kernel transport lacks */
	CHECK_EQ(vh_device_get_status(dev, (uint8_t *)&u32), -EOPNOTSUPP);
	CHECK_EQ(vh_device_set_vring_enable(dev, 0, 1), -EOPNOTSUPP);
	CHECK_EQ(vh_device_get_config(dev, 0, &u32, 4), -EOPNOTSUPP);
	CHECK_EQ(vh_device_get_vring_max(dev, 0, (unsigned *)&u32), 0);
	CHECK_EQ(u32, 32768);
	CHECK_EQ(vh_device_transport(dev), VH_TRANSPORT_KERNEL);
	vh_device_close(dev);

	/* vdpa-side checks */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK_EQ(vhp_vdpa_wrap(&vd, fd, NULL), 0);
	CHECK_EQ(vh_device_transport(vd), VH_TRANSPORT_VDPA);
	CHECK_EQ(vh_kernel_kind(vd), VH_KERNEL_VDPA);
	CHECK_EQ(vh_kernel_net_set_backend(vd, 0, -1), -ENODEV);
	CHECK_EQ(vh_vdpa_set_status(vd, 0x10), -EINVAL);
	CHECK_EQ(vh_vdpa_get_config(vd, 0, &u32, 0), -EINVAL);
	CHECK_EQ(vh_vdpa_get_config(vd, 0, &u32, VH_VDPA_MAX_CONFIG + 1), -E2BIG);
	CHECK_EQ(vh_vdpa_get_config(vd, UINT32_MAX, &u32, 4), -EINVAL);
	CHECK_EQ(vh_vdpa_get_config(vd, 0, NULL, 4), -EINVAL);
	CHECK_EQ(vh_vdpa_dma_map(vd, 0, 0, 0, &u32, VH_ACCESS_RW), -EINVAL);
	CHECK_EQ(vh_vdpa_dma_map(vd, 1, 0, 4096, &u32, VH_ACCESS_RW), -EOPNOTSUPP);
	CHECK_EQ(vh_vdpa_dma_unmap(vd, 0, UINT64_MAX, 2), -EINVAL);
	/* Without IOTLB_BATCH a batch is a no-op. */
	CHECK_EQ(vh_vdpa_dma_batch_begin(vd, 0), 0);
	CHECK_EQ(vh_vdpa_dma_batch_end(vd), 0);
	vh_device_close(vd);
	CHECK_BASELINE(b);
}

/* ---- IOTLB messages read back: a pipe plays the kernel --------------------------------------- */

static void put_msg(int wfd, uint32_t type, uint32_t asid, uint8_t iotlb_type, uint8_t perm,
		    size_t len)
{
	struct vhost_msg_v2 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.asid = asid;
	m.iotlb.iova = 0x123000;
	m.iotlb.size = 0x1000;
	m.iotlb.uaddr = 0;
	m.iotlb.perm = perm;
	m.iotlb.type = iotlb_type;
	CHECK(write(wfd, &m, len) == (ssize_t)len);
}

static void test_iotlb_read(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	struct vh_iotlb_event ev;
	int p[2];
	int64_t t0;

	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(vhp_kernel_wrap(&dev, p[0], VH_KERNEL_NET, NULL), 0);

	/* v1: a MISS for a read access */
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_MISS, VHOST_ACCESS_RO, 72);
	memset(&ev, 0xff, sizeof(ev));
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), 0);
	CHECK_EQ(ev.iova, 0x123000);
	CHECK_EQ(ev.size, 0x1000);
	CHECK_EQ(ev.perm, VH_ACCESS_RO);
	CHECK_EQ(ev.type, VH_IOTLB_MISS);
	CHECK_EQ(ev.asid, 0);

	/* malformed: wrong message type, iotlb type, permission, short */
	put_msg(p[1], VHOST_IOTLB_MSG_V2, 0, VHOST_IOTLB_MISS, VHOST_ACCESS_RO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_UPDATE, VHOST_ACCESS_RO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, 0, VHOST_ACCESS_RO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, 200, VHOST_ACCESS_RO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_MISS, 0, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_MISS, 7, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_MISS, VHOST_ACCESS_RW, 40);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EIO);

	/* v2 with ASID once those backend features are acked on the handle */
	((struct vhp_vhost *)dev)->backend_acked =
		(1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_IOTLB_ASID);
	put_msg(p[1], VHOST_IOTLB_MSG_V2, 5, VHOST_IOTLB_MISS, VHOST_ACCESS_WO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), 0);
	CHECK_EQ(ev.asid, 5);
	CHECK_EQ(ev.perm, VH_ACCESS_WO);
	put_msg(p[1], VHOST_IOTLB_MSG, 0, VHOST_IOTLB_MISS, VHOST_ACCESS_RO, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EPROTO);
	put_msg(p[1], VHOST_IOTLB_MSG_V2, 0, VHOST_IOTLB_ACCESS_FAIL, VHOST_ACCESS_RW, 72);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), 0);
	CHECK_EQ(ev.type, VH_IOTLB_ACCESS_FAIL);

	/* nothing to read: timeouts */
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 0), -ETIMEDOUT);
	t0 = t_now_ms();
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 50), -ETIMEDOUT);
	CHECK(t_now_ms() - t0 >= 40);
	CHECK_EQ(vh_kernel_iotlb_read(dev, NULL, 0), -EINVAL);
	/* the writer went away */
	close(p[1]);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EIO);
	vh_device_close(dev);

	/* /dev/null reads EOF at once */
	CHECK_EQ(vhp_kernel_wrap(&dev, open("/dev/null", O_RDWR | O_CLOEXEC), VH_KERNEL_UNKNOWN,
				 NULL), 0);
	CHECK_EQ(vh_kernel_iotlb_read(dev, &ev, 1000), -EIO);
	vh_device_close(dev);
	CHECK_BASELINE(b);
}

/* IOTLB messages written: a pipe stands in for the kernel and the test reads what came out. */
static void test_iotlb_write(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	struct vhost_msg_v2 m2;
	struct vhost_msg m1;
	int p[2];

	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(vhp_kernel_wrap(&dev, p[1], VH_KERNEL_NET, NULL), 0);
	CHECK_EQ(vh_kernel_iotlb_update(dev, 0, 0x4000, 0x2000, 0x7f0000001000ULL, VH_ACCESS_RW), 0);
	CHECK(read(p[0], &m1, sizeof(m1)) == (ssize_t)sizeof(m1));
	CHECK_EQ(m1.type, VHOST_IOTLB_MSG);
	CHECK_EQ(m1.iotlb.type, VHOST_IOTLB_UPDATE);
	CHECK_EQ(m1.iotlb.iova, 0x4000);
	CHECK_EQ(m1.iotlb.size, 0x2000);
	CHECK_EQ(m1.iotlb.uaddr, 0x7f0000001000ULL);
	CHECK_EQ(m1.iotlb.perm, VHOST_ACCESS_RW);

	((struct vhp_vhost *)dev)->backend_acked = (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) |
						   (1ULL << VHOST_BACKEND_F_IOTLB_ASID) |
						   (1ULL << VHOST_BACKEND_F_IOTLB_BATCH);
	CHECK_EQ(vh_kernel_iotlb_batch_begin(dev, 0), 0);
	CHECK_EQ(vh_kernel_iotlb_invalidate(dev, 3, 0x4000, 0x2000), 0);
	CHECK_EQ(vh_kernel_iotlb_batch_end(dev, 0), 0);
	CHECK(read(p[0], &m2, sizeof(m2)) == (ssize_t)sizeof(m2));
	CHECK_EQ(m2.type, VHOST_IOTLB_MSG_V2);
	CHECK_EQ(m2.iotlb.type, VHOST_IOTLB_BATCH_BEGIN);
	CHECK(read(p[0], &m2, sizeof(m2)) == (ssize_t)sizeof(m2));
	CHECK_EQ(m2.iotlb.type, VHOST_IOTLB_INVALIDATE);
	CHECK_EQ(m2.asid, 3);
	CHECK_EQ(m2.iotlb.iova, 0x4000);
	CHECK(read(p[0], &m2, sizeof(m2)) == (ssize_t)sizeof(m2));
	CHECK_EQ(m2.iotlb.type, VHOST_IOTLB_BATCH_END);

	/* A full pipe: the non-blocking write fails cleanly. */
	while (vh_kernel_iotlb_invalidate(dev, 0, 0, 1) == 0)
		;
	CHECK_EQ(vh_kernel_iotlb_invalidate(dev, 0, 0, 1), -EAGAIN);
	close(p[0]);
	CHECK_EQ(vh_kernel_iotlb_invalidate(dev, 0, 0, 1), -EPIPE);
	vh_device_close(dev);
	CHECK_BASELINE(b);
}

/* ---- vdpa memory table and IOVA translation, with a pipe as the kernel ------------------------ */

static int read_msg(int fd, struct vhost_msg *m)
{
	return read(fd, m, sizeof(*m)) == (ssize_t)sizeof(*m) ? 0 : -1;
}

static void test_vdpa_mem_table(void)
{
	struct t_baseline b = t_baseline();
	struct vh_device *dev = NULL;
	struct vhost_msg m;
	struct vh_region r[2] = {
		{ 0x100000, 0x10000, 0x7f1000000000ULL, -1, 0 },
		{ 0x0, 0x10000, 0x7f2000000000ULL, -1, 0 },
	};
	struct vh_region overlap[2] = {
		{ 0x0, 0x10000, 0x7f1000000000ULL, -1, 0 },
		{ 0xf000, 0x10000, 0x7f2000000000ULL, -1, 0 },
	};
	struct vh_vring_addr a = { 0, 0, 0x7f1000000000ULL, 0x7f1000002000ULL,
				   0x7f1000001000ULL, 0 };
	int p[2], n;
	uint64_t seen = 0;

	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(vhp_vdpa_wrap(&dev, p[1], NULL), 0);
	CHECK_EQ(vh_device_set_mem_table(dev, r, 2), 0);
	/* two v1 UPDATEs, IOVA = guest physical address, uaddr = process address */
	for (n = 0; n < 2; n++) {
		CHECK_EQ(read_msg(p[0], &m), 0);
		CHECK_EQ(m.type, VHOST_IOTLB_MSG);
		CHECK_EQ(m.iotlb.type, VHOST_IOTLB_UPDATE);
		CHECK_EQ(m.iotlb.perm, VHOST_ACCESS_RW);
		CHECK_EQ(m.iotlb.size, 0x10000);
		if (m.iotlb.iova == 0x100000) {
			CHECK_EQ(m.iotlb.uaddr, 0x7f1000000000ULL);
			seen |= 1;
		} else if (m.iotlb.iova == 0) {
			CHECK_EQ(m.iotlb.uaddr, 0x7f2000000000ULL);
			seen |= 2;
		}
	}
	CHECK_EQ(seen, 3);
	CHECK(read_msg(p[0], &m) < 0);

	/* The same table again sends nothing; dropping one region unmaps only it. */
	CHECK_EQ(vh_device_set_mem_table(dev, r, 2), 0);
	CHECK(read_msg(p[0], &m) < 0);
	CHECK_EQ(vh_device_set_mem_table(dev, r, 1), 0);
	CHECK_EQ(read_msg(p[0], &m), 0);
	CHECK_EQ(m.iotlb.type, VHOST_IOTLB_INVALIDATE);
	CHECK_EQ(m.iotlb.iova, 0);
	CHECK_EQ(m.iotlb.size, 0x10000);
	CHECK(read_msg(p[0], &m) < 0);

	/* Rejected tables send nothing and keep the old one. */
	CHECK_EQ(vh_device_set_mem_table(dev, overlap, 2), -EINVAL);
	CHECK(read_msg(p[0], &m) < 0);

	/* Ring addresses translate through the table; the ioctl then fails on the pipe. */
	CHECK_EQ(vh_device_set_vring_addr(dev, &a), -ENOTTY);
	a.used_user_addr = 0x7f2000000000ULL; /* unmapped now */
	CHECK_EQ(vh_device_set_vring_addr(dev, &a), -EFAULT);
	a.used_user_addr = 0x7f100000fff0ULL; /* starts inside, ends outside */
	CHECK_EQ(vh_device_set_vring_num(dev, 0, 256), -ENOTTY); /* num not recorded */
	CHECK_EQ(vh_device_set_vring_addr(dev, &a), -ENOTTY);
	vh_device_close(dev);
	close(p[0]);
	CHECK_BASELINE(b);
}

/* ---- compat header: the 6.12 numbers from the reference table -------------------------------- */

static void test_compat_numbers(void)
{
	static const struct {
		const char *name;
		unsigned long got, want;
	} t[] = {
#define N(x, v) { #x, (unsigned long)(x), (unsigned long)(v) }
		N(VHOST_GET_FEATURES, 0x8008af00), N(VHOST_SET_FEATURES, 0x4008af00),
		N(VHOST_SET_OWNER, 0xaf01), N(VHOST_RESET_OWNER, 0xaf02),
		N(VHOST_SET_MEM_TABLE, 0x4008af03), N(VHOST_SET_LOG_BASE, 0x4008af04),
		N(VHOST_SET_LOG_FD, 0x4004af07), N(VHOST_NEW_WORKER, 0x8004af08),
		N(VHOST_FREE_WORKER, 0x4004af09), N(VHOST_SET_VRING_NUM, 0x4008af10),
		N(VHOST_SET_VRING_ADDR, 0x4028af11), N(VHOST_SET_VRING_BASE, 0x4008af12),
		N(VHOST_GET_VRING_BASE, 0xc008af12), N(VHOST_SET_VRING_ENDIAN, 0x4008af13),
		N(VHOST_GET_VRING_ENDIAN, 0x4008af14), N(VHOST_ATTACH_VRING_WORKER, 0x4008af15),
		N(VHOST_GET_VRING_WORKER, 0xc008af16), N(VHOST_SET_VRING_KICK, 0x4008af20),
		N(VHOST_SET_VRING_CALL, 0x4008af21), N(VHOST_SET_VRING_ERR, 0x4008af22),
		N(VHOST_SET_VRING_BUSYLOOP_TIMEOUT, 0x4008af23),
		N(VHOST_GET_VRING_BUSYLOOP_TIMEOUT, 0x4008af24),
		N(VHOST_SET_BACKEND_FEATURES, 0x4008af25), N(VHOST_GET_BACKEND_FEATURES, 0x8008af26),
		N(VHOST_NET_SET_BACKEND, 0x4008af30), N(VHOST_SCSI_SET_ENDPOINT, 0x40e8af40),
		N(VHOST_SCSI_CLEAR_ENDPOINT, 0x40e8af41), N(VHOST_SCSI_GET_ABI_VERSION, 0x4004af42),
		N(VHOST_SCSI_SET_EVENTS_MISSED, 0x4004af43),
		N(VHOST_SCSI_GET_EVENTS_MISSED, 0x4004af44),
		N(VHOST_VSOCK_SET_GUEST_CID, 0x4008af60), N(VHOST_VSOCK_SET_RUNNING, 0x4004af61),
		N(VHOST_VDPA_GET_DEVICE_ID, 0x8004af70), N(VHOST_VDPA_GET_STATUS, 0x8001af71),
		N(VHOST_VDPA_SET_STATUS, 0x4001af72), N(VHOST_VDPA_GET_CONFIG, 0x8008af73),
		N(VHOST_VDPA_SET_CONFIG, 0x4008af74), N(VHOST_VDPA_SET_VRING_ENABLE, 0x4008af75),
		N(VHOST_VDPA_GET_VRING_NUM, 0x8002af76), N(VHOST_VDPA_SET_CONFIG_CALL, 0x4004af77),
		N(VHOST_VDPA_GET_IOVA_RANGE, 0x8010af78), N(VHOST_VDPA_GET_CONFIG_SIZE, 0x8004af79),
		N(VHOST_VDPA_GET_AS_NUM, 0x8004af7a), N(VHOST_VDPA_GET_VRING_GROUP, 0xc008af7b),
		N(VHOST_VDPA_SET_GROUP_ASID, 0x4008af7c), N(VHOST_VDPA_SUSPEND, 0xaf7d),
		N(VHOST_VDPA_RESUME, 0xaf7e), N(VHOST_VDPA_GET_VRING_DESC_GROUP, 0xc008af7f),
		N(VHOST_VDPA_GET_VQS_COUNT, 0x8004af80), N(VHOST_VDPA_GET_GROUP_NUM, 0x8004af81),
		N(VHOST_VDPA_GET_VRING_SIZE, 0xc008af82), N(VHOST_GET_FEATURES_ARRAY, 0x8008af83),
		N(VHOST_SET_FEATURES_ARRAY, 0x4008af83), N(VHOST_SET_FORK_FROM_OWNER, 0x4001af84),
		N(VHOST_GET_FORK_FROM_OWNER, 0x8001af85),
		/* values, not ioctls */
		N(VHOST_BACKEND_F_IOTLB_MSG_V2, 1), N(VHOST_BACKEND_F_IOTLB_BATCH, 2),
		N(VHOST_BACKEND_F_IOTLB_ASID, 3), N(VHOST_BACKEND_F_SUSPEND, 4),
		N(VHOST_BACKEND_F_RESUME, 5), N(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK, 6),
		N(VHOST_BACKEND_F_DESC_ASID, 7), N(VHOST_BACKEND_F_IOTLB_PERSIST, 8),
		N(VHOST_FORK_OWNER_KTHREAD, 0), N(VHOST_FORK_OWNER_TASK, 1),
		N(VHOST_IOTLB_MSG, 1), N(VHOST_IOTLB_MSG_V2, 2), N(VHOST_FILE_UNBIND, -1),
		N(sizeof(struct vhost_worker_state), 4), N(sizeof(struct vhost_vring_worker), 8),
		N(sizeof(struct vhost_features_array), 8), N(sizeof(struct vhost_msg_v2), 72),
#undef N
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_EQ_M(t[i].got, t[i].want, "%s", t[i].name);
}

/* The allocator (ASan's too) maps its arenas on first use; do that before any baseline. */
static void warm_up(void)
{
	struct vh_device *dev = NULL;

	if (vhp_kernel_wrap(&dev, open("/dev/null", O_RDWR | O_CLOEXEC), VH_KERNEL_UNKNOWN,
			    NULL) == 0) {
		all_kernel_wrappers(dev, -ENOTTY, "warm-up");
		vh_device_close(dev);
	}
	if (vhp_vdpa_wrap(&dev, open("/dev/null", O_RDWR | O_CLOEXEC), NULL) == 0) {
		all_vdpa_wrappers(dev, -ENOTTY, "warm-up");
		vh_device_close(dev);
	}
	t_failures = 0;
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_open_missing),      T_TEST(test_open_not_vhost),
		T_TEST(test_open_bad_fd),       T_TEST(test_wrappers_dev_null),
		T_TEST(test_wrappers_pipe),     T_TEST(test_wrappers_closed_fd),
		T_TEST(test_argument_checks),   T_TEST(test_iotlb_read),
		T_TEST(test_iotlb_write),       T_TEST(test_vdpa_mem_table),
		T_TEST(test_compat_numbers),
	};

	signal(SIGPIPE, SIG_IGN); /* the IOTLB write test writes to a pipe without reader */
	warm_up();
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
