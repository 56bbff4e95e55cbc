/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user dirty log: one bit per 4 KiB guest page in a shared bitmap. Every write is
 * bounds-checked against the log size; a log is only stored once it is mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhost/memory.h>
#include "internal.h"

static void log_release(struct vh_dirty_log *log)
{
	if (log->map_base)
		munmap(log->map_base, log->map_len);
	memset(log, 0, sizeof(*log));
}

int vh_dirty_log_set(struct vh_dirty_log *log, int fd, uint64_t size, uint64_t offset)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t end, aligned, delta, len;
	struct stat st;
	void *p;
	int fl;

	if (!log || size == 0)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (__builtin_add_overflow(offset, size, &end))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	/* a log past the end of the file would SIGBUS on the first mark */
	if (st.st_size < 0 || end > (uint64_t)st.st_size)
		return -EINVAL;
	aligned = offset & ~(page - 1);
	delta = offset - aligned;
	if (__builtin_add_overflow(size, delta, &len) ||
	    __builtin_add_overflow(len, page - 1, &len))
		return -EINVAL;
	len &= ~(page - 1);
	if (len > SIZE_MAX || aligned > (uint64_t)INT64_MAX)
		return -EINVAL;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)aligned);
	if (p == MAP_FAILED)
		return -errno;
	log_release(log);
	log->map_base = p;
	log->map_len = (size_t)len;
	log->bitmap = (uint8_t *)p + delta;
	log->size = size;
	return 0;
}

int vh_dirty_log_set_local(struct vh_dirty_log *log, void *bitmap, uint64_t size)
{
	if (!log || !bitmap || size == 0)
		return -EINVAL;
	log_release(log);
	log->bitmap = bitmap;
	log->size = size;
	return 0;
}

void vh_dirty_log_clear(struct vh_dirty_log *log)
{
	if (log)
		log_release(log);
}

uint64_t vh_dirty_log_size_for(uint64_t mem_end)
{
	uint64_t pages = (mem_end >> VH_LOG_PAGE_SHIFT) + ((mem_end & (VH_LOG_PAGE_SIZE - 1)) != 0);

	return pages / 8 + (pages % 8 != 0);
}

/* Sets the bits in mask of byte b; skips the write when they are already set so that a hot
 * page does not keep dirtying the log's cache line. */
static inline void or_byte(uint8_t *b, uint8_t mask)
{
	if ((__atomic_load_n(b, __ATOMIC_RELAXED) & mask) != mask)
		__atomic_fetch_or(b, mask, __ATOMIC_RELAXED);
}

int vh_dirty_log_mark(struct vh_dirty_log *log, uint64_t gpa, uint64_t len)
{
	uint64_t first, last, npages, last_in;
	int ret = 0;

	if (!log || !log->bitmap)
		return -EINVAL;
	if (len == 0)
		return 0;
	first = gpa >> VH_LOG_PAGE_SHIFT;
	/* gpa + len - 1 may wrap: everything past 2^64 is out of range anyway */
	if (__builtin_add_overflow(gpa, len - 1, &last)) {
		last = UINT64_MAX >> VH_LOG_PAGE_SHIFT;
		ret = -ERANGE;
	} else {
		last >>= VH_LOG_PAGE_SHIFT;
	}
	npages = log->size > (UINT64_MAX >> 3) ? UINT64_MAX : log->size * 8;
	if (first >= npages)
		return -ERANGE;
	last_in = last;
	if (last >= npages) {
		last_in = npages - 1;
		ret = -ERANGE;
	}
	/* bits first..last_in, bytes first/8..last_in/8 */
	{
		uint64_t b0 = first >> 3, b1 = last_in >> 3, b;
		uint8_t m0 = (uint8_t)(0xffu << (first & 7));
		uint8_t m1 = (uint8_t)(0xffu >> (7 - (last_in & 7)));

		if (b0 == b1) {
			or_byte(&log->bitmap[b0], m0 & m1);
			return ret;
		}
		or_byte(&log->bitmap[b0], m0);
		for (b = b0 + 1; b < b1; b++)
			or_byte(&log->bitmap[b], 0xff);
		or_byte(&log->bitmap[b1], m1);
	}
	return ret;
}

int vh_dirty_log_test(const struct vh_dirty_log *log, uint64_t gpa)
{
	uint64_t page = gpa >> VH_LOG_PAGE_SHIFT;

	if (!log || !log->bitmap)
		return -EINVAL;
	if ((page >> 3) >= log->size)
		return -ERANGE;
	return (__atomic_load_n(&log->bitmap[page >> 3], __ATOMIC_RELAXED) >> (page & 7)) & 1;
}

int64_t vh_dirty_log_collect(struct vh_dirty_log *log, uint64_t *pages, uint64_t max, int clear)
{
	uint64_t b;
	int64_t count = 0;

	if (!log || !log->bitmap || (max && !pages))
		return -EINVAL;
	for (b = 0; b < log->size; b++) {
		uint8_t v = __atomic_load_n(&log->bitmap[b], __ATOMIC_RELAXED);
		unsigned bit;

		if (!v)
			continue;
		if (clear)
			v = __atomic_exchange_n(&log->bitmap[b], 0, __ATOMIC_RELAXED);
		for (bit = 0; bit < 8; bit++) {
			if (!(v & (1u << bit)))
				continue;
			if ((uint64_t)count < max)
				pages[count] = b * 8 + bit;
			count++;
		}
	}
	return count;
}

int vh_dirty_log_new_memfd(struct vh_dirty_log *log, uint64_t mem_end, int *fd)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t size = vh_dirty_log_size_for(mem_end), file_size;
	struct vh_dirty_log fresh = {0};
	int mfd, ret;

	if (!log || !fd || size == 0)
		return -EINVAL;
	if (__builtin_add_overflow(size, page - 1, &file_size) || file_size > (uint64_t)INT64_MAX)
		return -EINVAL;
	file_size &= ~(page - 1);
	mfd = memfd_create("libvhost-dirty-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, (off_t)file_size) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		vhp_close(mfd);
		return ret;
	}
	ret = vh_dirty_log_set(&fresh, mfd, size, 0);
	if (ret) {
		vhp_close(mfd);
		return ret;
	}
	log_release(log);
	*log = fresh;
	*fd = mfd;
	return 0;
}
