/* SPDX-License-Identifier: MIT */
/*
 * Data checks for the device-server tests, on both sides of a QEMU guest: the same static
 * program writes and reads patterns on /dev/vda inside the guest and verifies the image file
 * on the host, so both compute the same bytes.
 *
 * The pattern of a byte range depends only on a seed and the absolute offset of each 8-byte
 * word, so any part of it can be checked on its own.
 *
 *   blkcheck write DEV OFF LEN SEED      O_DIRECT write of the pattern, fdatasync
 *   blkcheck verify FILE OFF LEN SEED    the pattern is there (O_DIRECT when a block device)
 *   blkcheck zero FILE OFF LEN           the range reads as zeroes
 *   blkcheck discard DEV OFF LEN         BLKDISCARD
 *   blkcheck zeroout DEV OFF LEN         BLKZEROOUT (the guest kernel sends WRITE_ZEROES)
 *   blkcheck write-fails DEV OFF         a write is refused (read-only disk)
 *   blkcheck blocks DEV BASE N SEED      writes blocks 0..N-1 of 4 KiB at BASE, each with
 *                                        O_DIRECT then fdatasync, printing "ACK i" after each
 *   blkcheck count FILE BASE N SEED      how many leading blocks of `blocks` are in FILE
 *   blkcheck acked FILE BASE SEED LOG    every "ACK i" line of LOG names a block in FILE
 *   blkcheck hwrng                       /dev/hwrng is virtio and gives varying bytes
 *   blkcheck insmod MODULE               loads a kernel module file
 *
 * Exit 0 = the check passed; 1 = it failed (with a message); 2 = usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BLOCK 4096u
#define CHUNK (1u << 20)

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stdout, "blkcheck: FAIL: ");
	vfprintf(stdout, fmt, ap);
	fprintf(stdout, "\n");
	va_end(ap);
	fflush(stdout);
	return 1;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fills buf (len a multiple of 8) with the pattern of [off, off + len). */
static void pattern(uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = mix(seed ^ ((off + i) >> 3));

		memcpy(buf + i, &v, 8);
	}
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "blkcheck: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void *abuf(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, BLOCK, len)) {
		fprintf(stderr, "blkcheck: out of memory\n");
		exit(1);
	}
	return p;
}

static int is_blockdev(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
}

static int open_data(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd >= 0 && is_blockdev(fd)) {
		/* Reads and writes of the device itself, not of the guest's page cache. */
		close(fd);
		fd = open(path, flags | O_CLOEXEC | O_DIRECT);
	}
	return fd;
}

static int full_pwrite(int fd, const uint8_t *b, size_t len, uint64_t off)
{
	while (len) {
		ssize_t k = pwrite(fd, b, len, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int full_pread(int fd, uint8_t *b, size_t len, uint64_t off)
{
	while (len) {
		ssize_t k = pread(fd, b, len, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = ENODATA;
			return -1;
		}
		b += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int cmd_write(const char *dev, uint64_t off, uint64_t len, uint64_t seed)
{
	int fd = open_data(dev, O_RDWR);
	uint8_t *b = abuf(CHUNK);

	if (fd < 0)
		return fail("open %s: %s", dev, strerror(errno));
	for (uint64_t pos = 0; pos < len; pos += CHUNK) {
		size_t n = len - pos < CHUNK ? (size_t)(len - pos) : CHUNK;

		pattern(b, off + pos, n, seed);
		if (full_pwrite(fd, b, n, off + pos))
			return fail("write %s at %" PRIu64 ": %s", dev, off + pos, strerror(errno));
	}
	if (fdatasync(fd))
		return fail("fdatasync %s: %s", dev, strerror(errno));
	close(fd);
	free(b);
	printf("wrote %" PRIu64 " bytes at %" PRIu64 "\n", len, off);
	return 0;
}

/* zero: check zeroes instead of the pattern. */
static int cmd_verify(const char *path, uint64_t off, uint64_t len, uint64_t seed, int zero)
{
	int fd = open_data(path, O_RDONLY);
	uint8_t *b = abuf(CHUNK), *want = abuf(CHUNK);

	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	memset(want, 0, CHUNK);
	for (uint64_t pos = 0; pos < len; pos += CHUNK) {
		size_t n = len - pos < CHUNK ? (size_t)(len - pos) : CHUNK;

		if (full_pread(fd, b, n, off + pos))
			return fail("read %s at %" PRIu64 ": %s", path, off + pos, strerror(errno));
		if (!zero)
			pattern(want, off + pos, n, seed);
		if (memcmp(b, want, n)) {
			size_t i = 0;

			while (i < n && b[i] == want[i])
				i++;
			return fail("%s: byte %" PRIu64 " differs from the %s", path, off + pos + i,
				    zero ? "zeroes" : "pattern");
		}
	}
	close(fd);
	free(b);
	free(want);
	printf("%s: %" PRIu64 " bytes at %" PRIu64 " are %s\n", path, len, off,
	       zero ? "zeroes" : "the pattern");
	return 0;
}

static int cmd_range_ioctl(const char *dev, uint64_t off, uint64_t len, int zeroout)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	uint64_t range[2] = { off, len };

	if (fd < 0)
		return fail("open %s: %s", dev, strerror(errno));
	if (ioctl(fd, zeroout ? BLKZEROOUT : BLKDISCARD, range))
		return fail("%s %s: %s", zeroout ? "BLKZEROOUT" : "BLKDISCARD", dev, strerror(errno));
	close(fd);
	printf("%s of %" PRIu64 " bytes at %" PRIu64 ": ok\n", zeroout ? "zeroout" : "discard", len,
	       off);
	return 0;
}

static int cmd_write_fails(const char *dev, uint64_t off)
{
	uint8_t *b = abuf(BLOCK);
	int fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);

	memset(b, 0xa5, BLOCK);
	if (fd < 0) {
		/* A read-only disk cannot even be opened for writing. */
		printf("open for writing refused: %s\n", strerror(errno));
		return errno == EROFS || errno == EACCES || errno == EPERM ? 0 : 1;
	}
	if (pwrite(fd, b, BLOCK, (off_t)off) == (ssize_t)BLOCK && fdatasync(fd) == 0)
		return fail("a write to the read-only disk succeeded");
	printf("write refused: %s\n", strerror(errno));
	close(fd);
	return 0;
}

static int cmd_blocks(const char *dev, uint64_t base, uint64_t n, uint64_t seed)
{
	int fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	uint8_t *b = abuf(BLOCK);

	if (fd < 0)
		return fail("open %s: %s", dev, strerror(errno));
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = base + i * BLOCK;

		pattern(b, off, BLOCK, seed);
		if (full_pwrite(fd, b, BLOCK, off))
			return fail("write block %" PRIu64 ": %s", i, strerror(errno));
		if (fdatasync(fd))
			return fail("fdatasync after block %" PRIu64 ": %s", i, strerror(errno));
		printf("ACK %" PRIu64 "\n", i);
	}
	close(fd);
	printf("all %" PRIu64 " blocks written\n", n);
	return 0;
}

static int block_ok(int fd, uint8_t *b, uint8_t *want, uint64_t off, uint64_t seed)
{
	if (full_pread(fd, b, BLOCK, off))
		return 0;
	pattern(want, off, BLOCK, seed);
	return memcmp(b, want, BLOCK) == 0;
}

static int cmd_count(const char *path, uint64_t base, uint64_t n, uint64_t seed)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *b = abuf(BLOCK), *want = abuf(BLOCK);
	uint64_t i = 0;

	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	while (i < n && block_ok(fd, b, want, base + i * BLOCK, seed))
		i++;
	printf("%" PRIu64 "\n", i);
	close(fd);
	return 0;
}

static int cmd_acked(const char *path, uint64_t base, uint64_t seed, const char *log)
{
	FILE *f = fopen(log, "r");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *b = abuf(BLOCK), *want = abuf(BLOCK);
	char line[256];
	uint64_t acked = 0, bad = 0;

	if (!f || fd < 0)
		return fail("open %s / %s: %s", path, log, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long i;

		if (sscanf(line, "ACK %llu", &i) != 1)
			continue;
		acked++;
		if (!block_ok(fd, b, want, base + i * BLOCK, seed)) {
			if (bad++ < 10)
				printf("acknowledged block %llu is not in %s\n", i, path);
		}
	}
	fclose(f);
	close(fd);
	if (acked == 0)
		return fail("no acknowledged block in %s", log);
	if (bad)
		return fail("%" PRIu64 " of %" PRIu64 " acknowledged blocks are missing", bad, acked);
	printf("all %" PRIu64 " acknowledged blocks are in %s\n", acked, path);
	return 0;
}

static int cmd_hwrng(void)
{
	char cur[64] = "";
	uint8_t a[64], b[64];
	FILE *f = fopen("/sys/class/misc/hw_random/rng_current", "r");
	int fd, zero = 1;

	if (!f || !fgets(cur, sizeof(cur), f))
		return fail("no /sys/class/misc/hw_random/rng_current");
	fclose(f);
	cur[strcspn(cur, "\n")] = 0;
	printf("rng_current: %s\n", cur);
	if (strncmp(cur, "virtio_rng", 10))
		return fail("the current hwrng is '%s', not virtio_rng", cur);
	fd = open("/dev/hwrng", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/hwrng: %s", strerror(errno));
	if (full_pread(fd, a, sizeof(a), 0) || full_pread(fd, b, sizeof(b), 0))
		return fail("read /dev/hwrng: %s", strerror(errno));
	close(fd);
	for (size_t i = 0; i < sizeof(a); i++)
		zero &= a[i] == 0;
	if (zero)
		return fail("/dev/hwrng gave zeroes");
	if (!memcmp(a, b, sizeof(a)))
		return fail("/dev/hwrng gave the same 64 bytes twice");
	printf("hwrng: two different non-zero 64-byte reads (%02x%02x%02x%02x..)\n", a[0], a[1],
	       a[2], a[3]);
	return 0;
}

static int cmd_insmod(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
		return fail("finit_module %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	if (!strcmp(c, "write") && argc == 6)
		return cmd_write(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(c, "verify") && argc == 6)
		return cmd_verify(argv[2], num(argv[3]), num(argv[4]), num(argv[5]), 0);
	if (!strcmp(c, "zero") && argc == 5)
		return cmd_verify(argv[2], num(argv[3]), num(argv[4]), 0, 1);
	if ((!strcmp(c, "discard") || !strcmp(c, "zeroout")) && argc == 5)
		return cmd_range_ioctl(argv[2], num(argv[3]), num(argv[4]), c[0] == 'z');
	if (!strcmp(c, "write-fails") && argc == 4)
		return cmd_write_fails(argv[2], num(argv[3]));
	if (!strcmp(c, "blocks") && argc == 6)
		return cmd_blocks(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(c, "count") && argc == 6)
		return cmd_count(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(c, "acked") && argc == 6)
		return cmd_acked(argv[2], num(argv[3]), num(argv[4]), argv[5]);
	if (!strcmp(c, "hwrng") && argc == 2)
		return cmd_hwrng();
	if (!strcmp(c, "insmod") && argc == 3)
		return cmd_insmod(argv[2]);
	fprintf(stderr, "usage: blkcheck write|verify|zero|discard|zeroout|write-fails|blocks|"
		"count|acked|hwrng|insmod ARGS (see the source)\n");
	return 2;
}
