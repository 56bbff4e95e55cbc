/* Guest harness smoke test: runs inside the QEMU guest (scripts/guest/run.sh) and checks
 * that the kernel vhost and vhost-vdpa devices the harness provides answer the basic ioctls
 * with the values measured in reference/vhost-user-protocol.md §8. It uses raw ioctls, not
 * the library, so a failure here points at the harness or the guest kernel.
 *
 *   smoke          /dev/vhost-net and /dev/vhost-vsock, plus every device run.sh announced
 *                  in the environment (LIBVHOST_VDPA_NET, _BLK, _VDUSE, LIBVHOST_VHOST_SCSI_WWPN)
 *   smoke --all    the same, but each of those devices must be present
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/vhost.h>

static int failures;

static void fail(const char *dev, const char *what, const char *detail)
{
	printf("FAIL %s: %s: %s\n", dev, what, detail);
	failures++;
}

enum radix { DEC, HEX };

static void check(const char *dev, const char *what, uint64_t got, uint64_t want, enum radix r)
{
	char g[24], w[24], detail[64];
	snprintf(g, sizeof(g), r == HEX ? "0x%" PRIx64 : "%" PRIu64, got);
	snprintf(w, sizeof(w), r == HEX ? "0x%" PRIx64 : "%" PRIu64, want);
	if (got == want) {
		printf("ok   %s: %s %s\n", dev, what, g);
		return;
	}
	snprintf(detail, sizeof(detail), "got %s, expected %s", g, w);
	fail(dev, what, detail);
}

/* ioctl that must succeed; records the failure otherwise. */
static bool must(int fd, const char *dev, unsigned long req, const char *name, void *arg)
{
	if (ioctl(fd, req, arg) == 0)
		return true;
	fail(dev, name, strerror(errno));
	return false;
}

static int open_dev(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail(path, "open", strerror(errno));
	return fd;
}

/* Common to every vhost device: features, then SET_OWNER, which a second call refuses. */
static int open_owned(const char *path, uint64_t want_features)
{
	int fd = open_dev(path);
	if (fd < 0)
		return -1;
	uint64_t features = 0;
	if (must(fd, path, VHOST_GET_FEATURES, "VHOST_GET_FEATURES", &features))
		check(path, "features", features, want_features, HEX);
	if (must(fd, path, VHOST_SET_OWNER, "VHOST_SET_OWNER", NULL)) {
		if (ioctl(fd, VHOST_SET_OWNER, NULL) == 0 || errno != EBUSY)
			fail(path, "second VHOST_SET_OWNER", "expected EBUSY");
		else
			printf("ok   %s: owner set, second SET_OWNER refused (EBUSY)\n", path);
	}
	return fd;
}

static void check_vhost_net(bool kernel_61)
{
	/* 6.12 adds VIRTIO_F_RING_RESET (bit 40). */
	int fd = open_owned("/dev/vhost-net", kernel_61 ? 0x33d008000ULL : 0x1033d008000ULL);
	if (fd >= 0)
		close(fd);
}

static void check_vhost_vsock(void)
{
	const char *dev = "/dev/vhost-vsock";
	int fd = open_owned(dev, 0x33d000002ULL);
	if (fd < 0)
		return;
	uint64_t cid = 3;
	if (must(fd, dev, VHOST_VSOCK_SET_GUEST_CID, "VHOST_VSOCK_SET_GUEST_CID(3)", &cid))
		printf("ok   %s: guest cid 3\n", dev);
	close(fd);
}

struct vdpa_expect {
	const char *what;
	const char *env;
	const char *fallback;     /* node when --all and the variable is unset */
	uint32_t device_id;
	uint64_t features;        /* 0: not recorded in §8, print only */
	uint64_t backend_features;
	uint32_t config_size;
	uint32_t vqs;
	uint16_t vring_num;
};

static const struct vdpa_expect vdpa_devices[] = {
	{ "vdpa_sim_net", "LIBVHOST_VDPA_NET", "/dev/vhost-vdpa-0", 1, 0x308830028ULL, 0x17e, 24, 3, 256 },
	{ "vdpa_sim_blk", "LIBVHOST_VDPA_BLK", "/dev/vhost-vdpa-1", 2, 0, 0, 96, 1, 256 },
	{ "VDUSE blk", "LIBVHOST_VDPA_VDUSE", "/dev/vhost-vdpa-2", 2, 0x331006644ULL, 0xe, 0, 0, 0 },
};

static void check_vdpa(const struct vdpa_expect *e, const char *path)
{
	printf("---- %s (%s)\n", path, e->what);
	int fd = open_dev(path);
	if (fd < 0)
		return;
	uint64_t features = 0, backend = 0;
	uint32_t id = 0, config_size = 0, vqs = 0;
	uint16_t num = 0;
	uint8_t status = 0xff;

	if (must(fd, path, VHOST_VDPA_GET_DEVICE_ID, "VHOST_VDPA_GET_DEVICE_ID", &id))
		check(path, "device id", id, e->device_id, DEC);
	if (must(fd, path, VHOST_GET_FEATURES, "VHOST_GET_FEATURES", &features)) {
		if (e->features)
			check(path, "features", features, e->features, HEX);
		else if (!(features & (1ULL << 32)))
			fail(path, "features", "VIRTIO_F_VERSION_1 missing");
		else
			printf("ok   %s: features 0x%" PRIx64 "\n", path, features);
	}
	if (must(fd, path, VHOST_GET_BACKEND_FEATURES, "VHOST_GET_BACKEND_FEATURES", &backend)) {
		if (e->backend_features)
			check(path, "backend features", backend, e->backend_features, HEX);
		else
			printf("ok   %s: backend features 0x%" PRIx64 "\n", path, backend);
	}
	if (must(fd, path, VHOST_SET_OWNER, "VHOST_SET_OWNER", NULL))
		printf("ok   %s: owner set\n", path);
	if (must(fd, path, VHOST_VDPA_GET_STATUS, "VHOST_VDPA_GET_STATUS", &status))
		check(path, "status before the driver starts", status, 0, DEC);
	if (must(fd, path, VHOST_VDPA_GET_VRING_NUM, "VHOST_VDPA_GET_VRING_NUM", &num) && e->vring_num)
		check(path, "max vring size", num, e->vring_num, DEC);
	if (must(fd, path, VHOST_VDPA_GET_CONFIG_SIZE, "VHOST_VDPA_GET_CONFIG_SIZE", &config_size)) {
		if (e->config_size)
			check(path, "config size", config_size, e->config_size, DEC);
		else
			printf("ok   %s: config size %" PRIu32 "\n", path, config_size);
	}
	if (must(fd, path, VHOST_VDPA_GET_VQS_COUNT, "VHOST_VDPA_GET_VQS_COUNT", &vqs) && e->vqs)
		check(path, "virtqueues", vqs, e->vqs, DEC);
	close(fd);
}

/* The harness's LIO target must accept an endpoint: that proves configfs, the fileio LUN
 * and the vhost fabric are wired up. */
static void check_vhost_scsi(const char *wwpn)
{
	const char *dev = "/dev/vhost-scsi";
	printf("---- %s (LIO target %s)\n", dev, wwpn);
	int fd = open_dev(dev);
	if (fd < 0)
		return;
	int abi = -1;
	if (must(fd, dev, VHOST_SCSI_GET_ABI_VERSION, "VHOST_SCSI_GET_ABI_VERSION", &abi))
		check(dev, "ABI version", (uint64_t)abi, VHOST_SCSI_ABI_VERSION, DEC);
	uint64_t features = 0;
	if (must(fd, dev, VHOST_GET_FEATURES, "VHOST_GET_FEATURES", &features))
		printf("ok   %s: features 0x%" PRIx64 "\n", dev, features);
	if (!must(fd, dev, VHOST_SET_OWNER, "VHOST_SET_OWNER", NULL)) {
		close(fd);
		return;
	}
	/* SET_ENDPOINT checks every ring is accessible, which needs a memory table (empty). */
	struct vhost_memory mem;
	memset(&mem, 0, sizeof(mem));
	if (!must(fd, dev, VHOST_SET_MEM_TABLE, "VHOST_SET_MEM_TABLE(empty)", &mem)) {
		close(fd);
		return;
	}
	struct vhost_scsi_target t;
	memset(&t, 0, sizeof(t));
	snprintf(t.vhost_wwpn, sizeof(t.vhost_wwpn), "%s", wwpn);
	const char *tpgt = getenv("LIBVHOST_VHOST_SCSI_TPGT");
	t.vhost_tpgt = (unsigned short)(tpgt ? atoi(tpgt) : 1);
	if (must(fd, dev, VHOST_SCSI_SET_ENDPOINT, "VHOST_SCSI_SET_ENDPOINT", &t)) {
		printf("ok   %s: endpoint %s tpgt %u set\n", dev, t.vhost_wwpn, t.vhost_tpgt);
		if (must(fd, dev, VHOST_SCSI_CLEAR_ENDPOINT, "VHOST_SCSI_CLEAR_ENDPOINT", &t))
			printf("ok   %s: endpoint cleared\n", dev);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	bool all = argc > 1 && strcmp(argv[1], "--all") == 0;
	struct utsname u;
	if (uname(&u) != 0) {
		perror("uname");
		return 1;
	}
	bool kernel_61 = strncmp(u.release, "6.1.", 4) == 0;
	printf("guest kernel %s\n", u.release);

	printf("---- /dev/vhost-net\n");
	check_vhost_net(kernel_61);
	printf("---- /dev/vhost-vsock\n");
	check_vhost_vsock();
	for (size_t i = 0; i < sizeof(vdpa_devices) / sizeof(vdpa_devices[0]); i++) {
		const struct vdpa_expect *e = &vdpa_devices[i];
		const char *path = getenv(e->env);
		if (!path && all)
			path = e->fallback;
		if (path)
			check_vdpa(e, path);
	}
	const char *wwpn = getenv("LIBVHOST_VHOST_SCSI_WWPN");
	if (wwpn)
		check_vhost_scsi(wwpn);
	else if (all)
		fail("/dev/vhost-scsi", "setup", "LIBVHOST_VHOST_SCSI_WWPN not set by the harness");

	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
