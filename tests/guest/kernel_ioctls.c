/* SPDX-License-Identifier: MIT */
/*
 * Every kernel vhost and vhost-vdpa wrapper of the library, at least once, against the real
 * drivers of the guest kernel: vhost_net (with a tap and an IOTLB miss), vhost_vsock,
 * vhost_scsi (LIO target), vdpa_sim_net, vdpa_sim_blk and a VDUSE block device served by
 * qemu-storage-daemon. Values are checked against what the drivers are known to return
 * (reference §8); on 6.1 the ioctls that kernel lacks must answer -ENOTTY and vDPA must be
 * reported missing with -ENOENT.
 *
 *   kernel_ioctls          everything announced in the environment (run.sh devices)
 */
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include <libvhost/uapi_compat.h>
#include "kguest.h"

#define F_VERSION_1 (1ULL << 32)
#define F_ACCESS_PLATFORM (1ULL << 33)
#define F_LOG_ALL (1ULL << 26)
#define F_RING_RESET (1ULL << 40)
#define NET_F_MAC (1ULL << 5)
#define BIT(n) (1ULL << (n))

static bool is612;
static struct vh_logger logger;

static void log_line(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	printf("     log[%d] %s\n", (int)level, msg);
}

static int open_tap(char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "kvtap%%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

/* Sets up split rings 0..nq-1 of dev at base (addresses as the device expects them). */
static void setup_rings(struct vh_device *d, uint64_t base, unsigned nq, int *kick, int *call)
{
	for (unsigned q = 0; q < nq; q++) {
		struct kg_ring_addr ra = kg_ring_at(base, q);
		struct vh_vring_addr a = { q, 0, ra.desc, ra.used, ra.avail, 0 };

		KG_RET(vh_kernel_set_vring_num(d, q, KG_RING_NUM), 0);
		KG_RET(vh_kernel_set_vring_base(d, q, 0), 0);
		KG_RET(vh_kernel_set_vring_addr(d, &a), 0);
		KG_RET(vh_kernel_set_vring_kick(d, q, kick[q]), 0);
		KG_RET(vh_kernel_set_vring_call(d, q, call[q]), 0);
	}
}

/* ---- vhost-net ------------------------------------------------------------------------------ */

static void test_net(void)
{
	struct vh_device *d = NULL;
	uint64_t f = 0, bf = 0, words[2] = { 0, 0 };
	uint32_t w1 = 0, u32 = 0;
	uint8_t mode = 0xff;
	unsigned un = 9;
	int kick[2], call[2], errfd, logfd, tap, fds0 = kg_count_fds();
	char tapname[IFNAMSIZ] = "";
	struct vh_iotlb_event ev;
	uint8_t *mem = kg_alloc(0x100000);
	struct vh_region reg = { 0x100000, 0x100000, (uint64_t)(uintptr_t)mem, -1, 0 };
	struct vh_region many[65];
	const uint64_t iova = 0x40000000; /* where the rings live in the device's IOVA space */

	printf("== vhost-net\n");
	KG_RET(vh_kernel_open(&d, "/dev/vhost-net", &logger), 0);
	if (!d || !mem)
		return;
	KG_EQ(vh_kernel_kind(d), VH_KERNEL_NET);
	KG_EQ(vh_device_transport(d), VH_TRANSPORT_KERNEL);
	KG_RET(vh_kernel_get_features(d, &f), 0);
	KG_TRUE((f & (F_VERSION_1 | F_ACCESS_PLATFORM | F_LOG_ALL)) ==
			(F_VERSION_1 | F_ACCESS_PLATFORM | F_LOG_ALL),
		"vhost-net features 0x%llx", (unsigned long long)f);
	KG_TRUE(is612 == !!(f & F_RING_RESET), "RING_RESET only from 6.12 on");
	/* Fork-owner control: Debian's 6.12 has it (CONFIG_VHOST_ENABLE_FORK_OWNER_CONTROL),
	 * 6.1 does not. */
	if (is612) {
		KG_RET(vh_kernel_set_fork_from_owner(d, VHOST_FORK_OWNER_KTHREAD), 0);
		KG_RET(vh_kernel_get_fork_from_owner(d, &mode), 0);
		KG_EQ(mode, VHOST_FORK_OWNER_KTHREAD);
		KG_RET(vh_kernel_set_fork_from_owner(d, VHOST_FORK_OWNER_TASK), 0);
		KG_RET(vh_kernel_get_fork_from_owner(d, &mode), 0);
		KG_EQ(mode, VHOST_FORK_OWNER_TASK);
	} else {
		KG_RET(vh_kernel_set_fork_from_owner(d, VHOST_FORK_OWNER_TASK), -ENOTTY);
		KG_RET(vh_kernel_get_fork_from_owner(d, &mode), -ENOTTY);
	}
	/* Before SET_OWNER every other ioctl of the common code is refused. */
	KG_RET(vh_kernel_set_vring_num(d, 0, 256), -EPERM);
	KG_RET(vh_kernel_set_owner(d), 0);
	KG_RET(vh_kernel_set_owner(d), -EBUSY);
	if (is612)
		KG_RET(vh_kernel_set_fork_from_owner(d, VHOST_FORK_OWNER_TASK), -EBUSY);
	/* No kernel up to 6.12 has the features array. */
	KG_RET(vh_kernel_get_features_array(d, words, 2), -ENOTTY);
	KG_RET(vh_kernel_set_features_array(d, words, 2), -ENOTTY);

	KG_RET(vh_kernel_get_backend_features(d, &bf), 0);
	KG_EQ(bf, BIT(VHOST_BACKEND_F_IOTLB_MSG_V2));
	KG_RET(vh_kernel_set_backend_features(d, BIT(VHOST_BACKEND_F_IOTLB_BATCH)), -EOPNOTSUPP);
	KG_RET(vh_kernel_set_backend_features(d, BIT(VHOST_BACKEND_F_IOTLB_MSG_V2)), 0);
	KG_EQ(vh_kernel_acked_backend_features(d), BIT(VHOST_BACKEND_F_IOTLB_MSG_V2));
	/* IOTLB messages need ACCESS_PLATFORM acked first: the kernel answers EFAULT. */
	KG_RET(vh_kernel_iotlb_update(d, 0, iova, 0x10000, (uint64_t)(uintptr_t)mem, VH_ACCESS_RW),
	       -EFAULT);
	KG_RET(vh_kernel_set_features(d, BIT(63)), -EOPNOTSUPP);
	KG_RET(vh_kernel_set_features(d, F_VERSION_1 | F_ACCESS_PLATFORM), 0);

	/* Memory table: accepted, and the kernel's own region limit (64) passes through. */
	KG_RET(vh_kernel_set_mem_table(d, &reg, 1), 0);
	for (unsigned i = 0; i < 65; i++)
		many[i] = (struct vh_region){ 0x1000ULL * i, 0x1000, (uint64_t)(uintptr_t)mem +
							       0x1000ULL * (i % 16), -1, 0 };
	KG_RET(vh_kernel_set_mem_table(d, many, 65), -E2BIG);
	logfd = kg_eventfd();
	KG_RET(vh_kernel_set_log_base(d, (uint64_t)(uintptr_t)(mem + 0xf0000)), 0);
	KG_RET(vh_kernel_set_log_fd(d, logfd), 0);
	KG_RET(vh_kernel_set_log_fd(d, -1), 0);

	/* vhost-net never opted in to the worker ioctls (vhost-scsi did, see test_scsi). */
	KG_RET(vh_kernel_new_worker(d, &w1), -ENOTTY);
	KG_RET(vh_kernel_attach_vring_worker(d, 0, 0), -ENOTTY);
	KG_RET(vh_kernel_get_vring_worker(d, 0, &u32), -ENOTTY);
	KG_RET(vh_kernel_free_worker(d, 0), -ENOTTY);

	/* Rings 0 (RX) and 1 (TX) at IOVAs that are not mapped yet. */
	kick[0] = kg_eventfd();
	kick[1] = kg_eventfd();
	call[0] = kg_eventfd();
	call[1] = kg_eventfd();
	errfd = kg_eventfd();
	KG_RET(vh_kernel_set_vring_num(d, 0, 3), -EINVAL); /* not a power of two */
	setup_rings(d, iova, 2, kick, call);
	KG_RET(vh_kernel_set_vring_base(d, 0, 7), 0);
	KG_RET(vh_kernel_get_vring_base(d, 0, &u32), 0);
	KG_EQ(u32, 7);
	KG_RET(vh_kernel_set_vring_base(d, 0, 0), 0);
	/* Legacy byte order exists only with CONFIG_VHOST_CROSS_ENDIAN_LEGACY. */
	KG_RET2(vh_kernel_set_vring_endian(d, 0, 0), 0, -ENOTTY);
	KG_RET2(vh_kernel_get_vring_endian(d, 0, &un), 0, -ENOTTY);
	KG_RET(vh_kernel_set_vring_busyloop_timeout(d, 0, 50), 0);
	KG_RET(vh_kernel_get_vring_busyloop_timeout(d, 0, &u32), 0);
	KG_EQ(u32, 50);
	KG_RET(vh_kernel_set_vring_busyloop_timeout(d, 0, 0), 0);
	KG_RET(vh_kernel_set_vring_err(d, 0, errfd), 0);
	KG_RET(vh_kernel_set_vring_err(d, 0, -1), 0);
	KG_RET(vh_kernel_set_vring_num(d, 70000, 256), -EINVAL);
	KG_RET(vh_kernel_set_vring_num(d, 2, 256), -ENOBUFS); /* vhost-net has 2 rings */

	/* A tap as TX backend: attaching it makes the kernel write the used ring's flags, which
	 * are not mapped yet, so the attach fails and the kernel asks for the IOVA (IOTLB miss). */
	KG_RET(vh_kernel_iotlb_read(d, &ev, 0), -ETIMEDOUT);
	tap = open_tap(tapname);
	KG_TRUE(tap >= 0, "tap %s: %s", tapname, kg_err(tap));
	KG_RET(vh_kernel_net_set_backend(d, 5, tap), -ENOBUFS);
	KG_RET(vh_kernel_net_set_backend(d, 1, tap), -EFAULT);
	memset(&ev, 0, sizeof(ev));
	KG_RET(vh_kernel_iotlb_read(d, &ev, 5000), 0);
	KG_EQ(ev.type, VH_IOTLB_MISS);
	KG_EQ(ev.iova, kg_ring_at(iova, 1).used);
	KG_EQ(ev.perm, VH_ACCESS_RO); /* the kernel's user-access lookup asks for read access */
	KG_EQ(ev.asid, 0);
	/* Answer it: map the rings; attaching works now and a kick asks for nothing more. */
	KG_RET(vh_kernel_iotlb_update(d, 0, iova, 0x10000, (uint64_t)(uintptr_t)mem,
				      VH_ACCESS_RW), 0);
	KG_RET(vh_kernel_net_set_backend(d, 1, tap), 0);
	KG_RET(write(kick[1], &(uint64_t){ 1 }, 8), 8);
	KG_RET(vh_kernel_iotlb_read(d, &ev, 300), -ETIMEDOUT);
	KG_RET(vh_kernel_iotlb_update(d, 1, iova, 0x1000, (uint64_t)(uintptr_t)mem, VH_ACCESS_RW),
	       -EOPNOTSUPP); /* ASID not offered by vhost-net */
	KG_RET(vh_kernel_iotlb_batch_begin(d, 0), -EOPNOTSUPP);
	KG_RET(vh_kernel_iotlb_batch_end(d, 0), -EOPNOTSUPP);
	KG_RET(vh_kernel_net_set_backend(d, 1, -1), 0);
	KG_RET(vh_kernel_iotlb_invalidate(d, 0, iova, 0x10000), 0);

	/* Wrong device kind, and the vdpa entry points on a kernel handle. */
	KG_RET(vh_kernel_vsock_set_guest_cid(d, 3), -ENODEV);
	KG_RET(vh_kernel_scsi_set_events_missed(d, 1), -ENODEV);
	KG_RET(vh_vdpa_get_device_id(d, &u32), -ENODEV);
	/* Device-control interface on the same handle */
	KG_RET(vh_device_get_queue_num(d, &un), 0);
	KG_EQ(un, 2);
	KG_RET(vh_device_get_status(d, &mode), -EOPNOTSUPP);
	KG_RET(vh_kernel_reset_owner(d), 0);
	KG_RET(vh_kernel_set_owner(d), 0);
	KG_RET(vh_kernel_fd(d) >= 0 ? 0 : -1, 0);
	vh_device_close(d);
	close(tap);
	close(logfd);
	close(errfd);
	for (int i = 0; i < 2; i++) {
		close(kick[i]);
		close(call[i]);
	}
	munmap(mem, 0x100000);
	KG_EQ(kg_count_fds(), fds0);
	/* vhost-net is not vdpa */
	KG_RET(vh_vdpa_open(&d, "/dev/vhost-net", &logger), -ENODEV);
	KG_EQ(kg_count_fds(), fds0);
}

/* ---- vhost-vsock ---------------------------------------------------------------------------- */

static void test_vsock(void)
{
	struct vh_device *d = NULL;
	uint64_t f = 0;
	int kick[2], call[2], fds0 = kg_count_fds();
	uint8_t *mem = kg_alloc(0x10000);
	struct vh_region reg = { 0x200000, 0x10000, (uint64_t)(uintptr_t)mem, -1, 0 };
	unsigned un;

	printf("== vhost-vsock\n");
	KG_RET(vh_kernel_open(&d, "/dev/vhost-vsock", &logger), 0);
	if (!d || !mem)
		return;
	KG_EQ(vh_kernel_kind(d), VH_KERNEL_VSOCK);
	KG_RET(vh_kernel_get_features(d, &f), 0);
	KG_EQ(f, 0x33d000002ULL);
	KG_RET(vh_kernel_get_backend_features(d, &f), 0);
	KG_EQ(f, BIT(VHOST_BACKEND_F_IOTLB_MSG_V2));
	KG_RET(vh_kernel_set_owner(d), 0);
	KG_RET(vh_kernel_set_features(d, F_VERSION_1), 0);
	KG_RET(vh_kernel_set_mem_table(d, &reg, 1), 0);
	for (int i = 0; i < 2; i++) {
		kick[i] = kg_eventfd();
		call[i] = kg_eventfd();
	}
	/* Without ACCESS_PLATFORM ring addresses are addresses of this process. */
	setup_rings(d, (uint64_t)(uintptr_t)mem, 2, kick, call);
	KG_RET(vh_kernel_vsock_set_guest_cid(d, 2), -EINVAL); /* the host's CID */
	KG_RET(vh_kernel_vsock_set_guest_cid(d, 3), 0);
	KG_RET(vh_kernel_vsock_set_running(d, 1), 0);
	KG_RET(vh_kernel_vsock_set_running(d, 0), 0);
	KG_RET(vh_kernel_net_set_backend(d, 0, -1), -ENODEV);
	KG_RET(vh_device_get_queue_num(d, &un), 0);
	KG_EQ(un, 2);
	vh_device_close(d);
	for (int i = 0; i < 2; i++) {
		close(kick[i]);
		close(call[i]);
	}
	munmap(mem, 0x10000);
	KG_EQ(kg_count_fds(), fds0);
}

/* ---- vhost-scsi ----------------------------------------------------------------------------- */

static void test_scsi(void)
{
	const char *wwpn = getenv("LIBVHOST_VHOST_SCSI_WWPN");
	const char *tpgt_s = getenv("LIBVHOST_VHOST_SCSI_TPGT");
	struct vh_device *d = NULL;
	uint16_t tpgt = tpgt_s ? (uint16_t)atoi(tpgt_s) : 1;
	uint32_t missed = 9, w1 = 0, w2 = 0, u32 = 0;
	uint64_t f = 0;
	int abi = -1, fds0 = kg_count_fds();
	uint8_t *mem = kg_alloc(0x10000);
	struct vh_region reg = { 0, 0x10000, (uint64_t)(uintptr_t)mem, -1, 0 };

	if (!wwpn) {
		printf("== vhost-scsi: no LIO target in this run, skipped\n");
		return;
	}
	printf("== vhost-scsi (%s tpgt %u)\n", wwpn, tpgt);
	KG_RET(vh_kernel_open(&d, "/dev/vhost-scsi", &logger), 0);
	if (!d)
		return;
	KG_EQ(vh_kernel_kind(d), VH_KERNEL_SCSI);
	KG_RET(vh_kernel_scsi_get_abi_version(d, &abi), 0);
	KG_EQ(abi, VHOST_SCSI_ABI_VERSION);
	KG_RET(vh_kernel_get_features(d, &f), 0);
	KG_TRUE(f & F_VERSION_1, "scsi features 0x%llx", (unsigned long long)f);
	KG_RET(vh_kernel_set_owner(d), 0);
	KG_RET(vh_kernel_set_features(d, F_VERSION_1), 0);
	/* Workers: vhost-scsi opted in (6.5+); -ENOTTY on 6.1. */
	if (is612) {
		KG_RET(vh_kernel_new_worker(d, &w1), 0);
		KG_RET(vh_kernel_attach_vring_worker(d, 2, w1), 0);
		KG_RET(vh_kernel_get_vring_worker(d, 2, &u32), 0);
		KG_EQ(u32, w1);
		KG_RET(vh_kernel_free_worker(d, w1), -EBUSY); /* still attached */
		KG_RET(vh_kernel_new_worker(d, &w2), 0);
		KG_TRUE(w2 != w1, "worker ids %u and %u differ", w1, w2);
		KG_RET(vh_kernel_free_worker(d, w2), 0);
		KG_RET(vh_kernel_free_worker(d, w2), -ENODEV);
	} else {
		KG_RET(vh_kernel_new_worker(d, &w1), -ENOTTY);
		KG_RET(vh_kernel_free_worker(d, 0), -ENOTTY);
		KG_RET(vh_kernel_attach_vring_worker(d, 2, 0), -ENOTTY);
		KG_RET(vh_kernel_get_vring_worker(d, 2, &u32), -ENOTTY);
	}
	/* The endpoint checks each ring against the memory table: one is needed. */
	KG_RET(vh_kernel_scsi_set_endpoint(d, wwpn, tpgt), -EFAULT);
	KG_RET(vh_kernel_set_mem_table(d, &reg, 1), 0);
	KG_RET(vh_kernel_scsi_set_endpoint(d, "naa.0000000000000bad", tpgt), -ENODEV);
	KG_RET(vh_kernel_scsi_set_endpoint(d, wwpn, tpgt), 0);
	KG_RET(vh_kernel_scsi_get_events_missed(d, &missed), 0);
	KG_EQ(missed, 0);
	KG_RET(vh_kernel_scsi_set_events_missed(d, 1), 0);
	KG_RET(vh_kernel_scsi_get_events_missed(d, &missed), 0);
	KG_EQ(missed, 1);
	KG_RET(vh_kernel_scsi_clear_endpoint(d, wwpn, tpgt), 0);
	KG_RET(vh_kernel_vsock_set_running(d, 1), -ENODEV);
	vh_device_close(d);
	munmap(mem, 0x10000);
	KG_EQ(kg_count_fds(), fds0);
}

/* ---- vhost-vdpa ----------------------------------------------------------------------------- */

static void vdpa_common(struct vh_device *d, uint32_t want_id, uint32_t *vqs)
{
	uint32_t id = 0, size = 0, as = 0, groups = 0;
	uint64_t first = 1, last = 0;
	uint16_t num = 0;
	uint8_t st = 0xff;

	KG_EQ(vh_device_transport(d), VH_TRANSPORT_VDPA);
	KG_EQ(vh_kernel_kind(d), VH_KERNEL_VDPA);
	KG_RET(vh_vdpa_get_device_id(d, &id), 0);
	KG_EQ(id, want_id);
	KG_RET(vh_vdpa_get_status(d, &st), 0);
	KG_EQ(st, 0);
	KG_RET(vh_vdpa_get_config_size(d, &size), 0);
	KG_TRUE(size > 0, "config size %u", size);
	KG_RET(vh_vdpa_get_vqs_count(d, vqs), 0);
	KG_RET(vh_vdpa_get_group_num(d, &groups), 0);
	KG_RET(vh_vdpa_get_as_num(d, &as), 0);
	KG_TRUE(groups >= 1 && as >= 1, "%u groups, %u address spaces", groups, as);
	KG_RET(vh_vdpa_get_iova_range(d, &first, &last), 0);
	KG_TRUE(first <= last, "iova 0x%llx-0x%llx", (unsigned long long)first,
		(unsigned long long)last);
	KG_RET(vh_vdpa_get_vring_num(d, &num), 0);
	KG_TRUE(num >= 64, "max vring num %u", num);
}

static uint64_t config_capacity(struct vh_device *d)
{
	uint64_t cap = 0;

	KG_RET(vh_vdpa_get_config(d, 0, &cap, sizeof(cap)), 0);
	return cap;
}

static void test_vdpa_net(const char *path)
{
	struct vh_device *d = NULL;
	uint32_t vqs = 0, g = 9, size = 0;
	uint64_t neg = 0, f = 0;
	uint8_t mac[6], mac2[6], st = 0;
	unsigned un = 0;
	int kick[3], call[3], cfgcall, fds0 = kg_count_fds();
	uint8_t *mem = kg_alloc(0x100000), *extra = kg_alloc(0x10000);
	struct vh_region reg = { 0x100000, 0x100000, (uint64_t)(uintptr_t)mem, -1, 0 };

	printf("== vdpa_sim_net %s\n", path);
	KG_RET(vh_vdpa_open(&d, path, &logger), 0);
	if (!d || !mem || !extra)
		return;
	vdpa_common(d, 1, &vqs);
	KG_EQ(vqs, 3);
	/* vdpa_sim offers bits 1-6 and 8 (no DESC_ASID): all of them are acked. */
	KG_EQ(vh_kernel_acked_backend_features(d), 0x17e);
	KG_RET(vh_kernel_get_backend_features(d, &f), 0);
	KG_EQ(f, 0x17e);
	KG_RET(vh_vdpa_get_vring_size(d, 0, &size), -EPERM); /* needs SET_OWNER */
	/* Only one open at a time. */
	{
		struct vh_device *d2 = NULL;

		KG_RET(vh_vdpa_open(&d2, path, &logger), -EBUSY);
	}
	KG_RET(vh_vdpa_get_vring_group(d, 0, &g), -EPERM); /* needs SET_OWNER */
	KG_RET(vh_kernel_set_owner(d), 0);
	/* vdpa_sim has no per-queue size: the kernel says so, the device op falls back. */
	KG_RET(vh_vdpa_get_vring_size(d, 0, &size), -EOPNOTSUPP);
	KG_RET(vh_vdpa_get_vring_group(d, 0, &g), 0);
	KG_EQ(g, 0);
	KG_RET(vh_vdpa_get_vring_group(d, 2, &g), 0); /* the control queue has its own group */
	KG_EQ(g, 1);
	KG_RET(vh_vdpa_get_vring_desc_group(d, 0, &g), -EOPNOTSUPP);
	KG_RET(vh_vdpa_set_group_asid(d, 1, 1), 0);
	KG_RET(vh_vdpa_set_group_asid(d, 1, 0), 0);
	KG_RET(vh_vdpa_set_group_asid(d, 7, 0), -EINVAL);

	KG_RET(vh_vdpa_negotiate(d, NET_F_MAC, &neg), 0);
	KG_TRUE((neg & (F_VERSION_1 | F_ACCESS_PLATFORM | NET_F_MAC)) ==
			(F_VERSION_1 | F_ACCESS_PLATFORM | NET_F_MAC),
		"negotiated 0x%llx", (unsigned long long)neg);
	KG_RET(vh_vdpa_get_status(d, &st), 0);
	KG_EQ(st, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER | VH_STATUS_FEATURES_OK);
	KG_RET(vh_vdpa_get_config(d, 0, mac, 6), 0);
	printf("     mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5]);
	KG_RET(vh_device_get_config(d, 0, mac2, 6), 0);
	KG_TRUE(!memcmp(mac, mac2, 6), "config read twice agrees");
	KG_RET(vh_vdpa_set_config(d, 0, mac, 6), 0);
	KG_RET(vh_vdpa_get_config(d, 20, mac2, 6), -EINVAL); /* past the 24-byte config */
	cfgcall = kg_eventfd();
	KG_RET(vh_vdpa_set_config_call(d, cfgcall), 0);
	KG_RET(vh_vdpa_set_config_call(d, -1), 0);

	/* Memory and rings through the device-control interface: GPA = IOVA. */
	KG_RET(vh_device_set_mem_table(d, &reg, 1), 0);
	KG_RET(vh_vdpa_dma_map(d, 0, 0x100000, 0x1000, extra, VH_ACCESS_RW), -EFAULT); /* overlap */
	KG_RET(vh_vdpa_dma_batch_begin(d, 1), 0);
	KG_RET(vh_vdpa_dma_batch_begin(d, 1), -EBUSY);
	KG_RET(vh_vdpa_dma_map(d, 0, 0x800000, 0x10000, extra, VH_ACCESS_RO), -EINVAL);
	KG_RET(vh_vdpa_dma_map(d, 1, 0x800000, 0x10000, extra, VH_ACCESS_RW), 0);
	KG_RET(vh_vdpa_dma_map(d, 1, 0x900000, 0x10000, extra, VH_ACCESS_RW), 0);
	KG_RET(vh_vdpa_dma_batch_end(d), 0);
	KG_RET(vh_vdpa_dma_map(d, 0, 0x800000, 0x10000, extra, VH_ACCESS_RO), 0);
	KG_RET(vh_vdpa_dma_unmap(d, 1, 0x900000, 0x10000), 0);
	KG_RET(vh_vdpa_dma_unmap(d, 0, 0x800000, 0x10000), 0);
	KG_RET(vh_vdpa_dma_unmap(d, 1, 0x800000, 0x10000), 0);
	KG_RET(vh_vdpa_dma_map(d, 2, 0x800000, 0x10000, extra, VH_ACCESS_RW), -EINVAL);
	for (unsigned q = 0; q < 3; q++) {
		struct kg_ring_addr ra = kg_ring_at((uint64_t)(uintptr_t)mem, q);
		struct vh_vring_addr a = { q, 0, ra.desc, ra.used, ra.avail, 0 };

		kick[q] = kg_eventfd();
		call[q] = kg_eventfd();
		KG_RET(vh_device_set_vring_num(d, q, KG_RING_NUM), 0);
		KG_RET(vh_device_set_vring_base(d, q, 0), 0);
		KG_RET(vh_device_set_vring_addr(d, &a), 0);
		KG_RET(vh_device_set_vring_kick(d, q, kick[q]), 0);
		KG_RET(vh_device_set_vring_call(d, q, call[q]), 0);
		KG_RET(vh_device_set_vring_enable(d, q, 1), 0);
	}
	{
		struct vh_vring_addr bad = { 0, 0, 0x1000, 0x2000, 0x3000, 0 };

		KG_RET(vh_device_set_vring_addr(d, &bad), -EFAULT); /* not in the table */
	}
	KG_RET(vh_device_get_vring_max(d, 0, &un), 0);
	KG_EQ(un, 256);
	KG_RET(vh_device_get_queue_num(d, &un), 0);
	KG_EQ(un, 3);
	KG_RET(vh_vdpa_driver_ok(d), 0);
	KG_RET(vh_device_get_status(d, &st), 0);
	KG_TRUE(st & VH_STATUS_DRIVER_OK, "status 0x%x", st);
	KG_RET(vh_vdpa_suspend(d), 0);
	KG_RET(vh_kernel_get_vring_base(d, 0, &g), 0);
	KG_EQ(g, 0);
	KG_RET(vh_vdpa_resume(d), 0);
	KG_RET(vh_vdpa_reset(d), 0);
	KG_RET(vh_device_set_mem_table(d, NULL, 0), 0);
	KG_RET(vh_kernel_set_log_base(d, 0x1000), -ENOTTY); /* vDPA has no dirty log */
	vh_device_close(d);
	close(cfgcall);
	for (unsigned q = 0; q < 3; q++) {
		close(kick[q]);
		close(call[q]);
	}
	KG_EQ(kg_count_fds(), fds0);
	/* A vdpa node is refused by the kernel transport. */
	KG_RET(vh_kernel_open(&d, path, &logger), -ENODEV);
	KG_EQ(kg_count_fds(), fds0);
	munmap(mem, 0x100000);
	munmap(extra, 0x10000);
}

static void test_vdpa_blk(const char *path, uint64_t want_sectors, uint64_t want_backend)
{
	struct vh_device *d = NULL;
	uint32_t vqs = 0;
	uint64_t cap, neg = 0;
	int fds0 = kg_count_fds();

	printf("== vdpa blk %s\n", path);
	KG_RET(vh_vdpa_open(&d, path, &logger), 0);
	if (!d)
		return;
	vdpa_common(d, 2, &vqs);
	KG_EQ(vqs, 1);
	if (want_backend)
		KG_EQ(vh_kernel_acked_backend_features(d), want_backend);
	KG_RET(vh_kernel_set_owner(d), 0);
	KG_RET(vh_vdpa_negotiate(d, 0, &neg), 0);
	cap = config_capacity(d);
	printf("     capacity %llu sectors\n", (unsigned long long)cap);
	if (want_sectors)
		KG_EQ(cap, want_sectors);
	else
		KG_TRUE(cap > 0, "capacity %llu", (unsigned long long)cap);
	KG_RET(vh_vdpa_reset(d), 0);
	vh_device_close(d);
	KG_EQ(kg_count_fds(), fds0);
}

int main(void)
{
	const char *net = getenv("LIBVHOST_VDPA_NET");
	const char *blk = getenv("LIBVHOST_VDPA_BLK");
	const char *vduse = getenv("LIBVHOST_VDPA_VDUSE");
	const char *img = getenv("LIBVHOST_VDUSE_IMAGE");
	struct utsname u;

	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	is612 = kg_kernel_version() >= 6012;
	printf("kernel %s\n", u.release);
	logger.fn = log_line;
	logger.max_level = VH_LOG_WARN;

	test_net();
	test_vsock();
	test_scsi();
	if (!is612) {
		struct vh_device *d = NULL;

		printf("== vDPA on %s\n", u.release);
		KG_RET(vh_vdpa_open(&d, "/dev/vhost-vdpa-0", &logger), -ENOENT);
		KG_TRUE(access("/sys/bus/vdpa", F_OK) != 0, "no vdpa bus in this kernel");
		return kg_done("kernel_ioctls");
	}
	if (net)
		test_vdpa_net(net);
	if (blk)
		test_vdpa_blk(blk, 0, 0x17e);
	if (vduse) {
		struct stat st;
		uint64_t sectors = img && stat(img, &st) == 0 ? (uint64_t)st.st_size / 512 : 0;

		/* VDUSE offers IOTLB_MSG_V2, IOTLB_BATCH and IOTLB_ASID. */
		test_vdpa_blk(vduse, sectors, 0xe);
	}
	KG_TRUE(net && blk && vduse, "all three vDPA devices were provided");
	return kg_done("kernel_ioctls");
}
