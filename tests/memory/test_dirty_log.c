/* SPDX-License-Identifier: MIT */
/*
 * Dirty log: exact bits for random writes against a reference bitmap, bounds (never a byte
 * past the log), the validation of SET_LOG_BASE-style input with the previous log kept, and
 * the driver-side memfd log read back through the file.
 */
#include <sys/socket.h>
#include <libvhost/memory.h>
#include "memtest.h"



static void ref_mark(uint8_t *ref, uint64_t npages, uint64_t gpa, uint64_t len)
{
	if (!len)
		return;
	for (uint64_t p = gpa / PAGE; p <= (gpa + len - 1) / PAGE && p < npages; p++)
		ref[p / 8] |= (uint8_t)(1u << (p % 8));
}

/* Random marks through a memfd log; collected pages and the raw file bytes match a reference. */
static void test_random_marks(void)
{
	struct m_baseline b = m_baseline();
	const uint64_t mem_end = 1ull << 30; /* 1 GiB guest: 262144 pages, 32 KiB log */
	struct vh_dirty_log log = {0};
	uint64_t npages = mem_end / PAGE;
	uint8_t *ref = calloc(npages / 8, 1), *file = malloc(npages / 8);
	uint64_t *pages = malloc(npages * sizeof(*pages));
	int fd = -1;

	CHECK_EQ(vh_dirty_log_size_for(mem_end), npages / 8);
	CHECK_EQ(vh_dirty_log_size_for(mem_end + 1), npages / 8 + 1);
	CHECK_EQ(vh_dirty_log_size_for(1), 1);
	CHECK_EQ(vh_dirty_log_size_for(0), 0);
	CHECK_EQ(vh_dirty_log_new_memfd(&log, mem_end, &fd), 0);
	CHECK(fd >= 0 && t_is_cloexec(fd));
	CHECK_EQ(log.size, npages / 8);
	for (unsigned round = 0; round < 5; round++) {
		for (unsigned i = 0; i < 2000; i++) {
			uint64_t gpa = rnd() % mem_end, len;

			switch (rnd() % 4) {
			case 0: len = 1 + rnd() % 8; break;             /* a used-ring entry */
			case 1: len = 1 + rnd() % (3 * PAGE); break;      /* a buffer */
			case 2: len = 1 + rnd() % (80 * PAGE); break;     /* several bytes of bits */
			default: len = PAGE - gpa % PAGE; break;          /* up to a page edge */
			}
			int want = gpa + len > mem_end ? -ERANGE : 0;
			CHECK_EQ(vh_dirty_log_mark(&log, gpa, len), want);
			ref_mark(ref, npages, gpa, len);
		}
		/* the shared file holds exactly the reference bits */
		CHECK_EQ(pread(fd, file, npages / 8, 0), (ssize_t)(npages / 8));
		CHECK(memcmp(file, ref, npages / 8) == 0);
		int64_t count = vh_dirty_log_collect(&log, pages, npages, round & 1);
		int64_t want = 0;
		for (uint64_t p = 0; p < npages; p++) {
			if (!(ref[p / 8] & (1u << (p % 8))))
				continue;
			if (want < count && pages[want] != p) {
				T_FAIL("page %llu expected at position %lld, got %llu",
				       (unsigned long long)p, (long long)want,
				       (unsigned long long)pages[want]);
				break;
			}
			want++;
		}
		CHECK_EQ(count, want);
		for (int s = 0; s < 200; s++) {
			uint64_t gpa = rnd() % mem_end, p = gpa / PAGE;

			CHECK_EQ(vh_dirty_log_test(&log, gpa),
				 (round & 1) ? 0 : !!(ref[p / 8] & (1u << (p % 8))));
		}
		if (round & 1) { /* collected with clear */
			memset(ref, 0, npages / 8);
			CHECK_EQ(vh_dirty_log_collect(&log, NULL, 0, 0), 0);
		}
	}
	/* collect with a small output array still counts everything */
	CHECK_EQ(vh_dirty_log_mark(&log, 0, 10 * PAGE), 0);
	uint64_t few[3];
	int64_t c = vh_dirty_log_collect(&log, few, 3, 0);
	CHECK(c >= 10);
	CHECK(few[0] == 0 && few[1] == 1 && few[2] == 2);
	vh_dirty_log_clear(&log);
	CHECK(log.bitmap == NULL);
	CHECK_EQ(vh_dirty_log_mark(&log, 0, 1), -EINVAL);
	CHECK_EQ(vh_dirty_log_test(&log, 0), -EINVAL);
	close(fd);
	free(ref);
	free(file);
	free(pages);
	CHECK_BASELINE_M(b);
}

/* Bounds: a log in a bigger buffer; the guard bytes after it never change. */
static void test_bounds(void)
{
	enum { LOG = 16, GUARD = 64 };
	uint8_t buf[LOG + GUARD];
	struct vh_dirty_log log = {0};
	const uint64_t end = LOG * 8 * PAGE; /* first GPA past the log */

	memset(buf, 0, sizeof(buf));
	memset(buf + LOG, 0x5c, GUARD);
	CHECK_EQ(vh_dirty_log_set_local(&log, buf, LOG), 0);
	CHECK_EQ(vh_dirty_log_mark(&log, end - 1, 1), 0);
	CHECK_EQ(buf[LOG - 1], 0x80);
	CHECK_EQ(vh_dirty_log_mark(&log, end, 1), -ERANGE);
	CHECK_EQ(vh_dirty_log_mark(&log, end - PAGE, 2 * PAGE), -ERANGE); /* in-range part marked */
	CHECK_EQ(vh_dirty_log_mark(&log, end + 100 * PAGE, PAGE), -ERANGE);
	CHECK_EQ(vh_dirty_log_mark(&log, UINT64_MAX, 1), -ERANGE);
	CHECK_EQ(vh_dirty_log_mark(&log, UINT64_MAX - 10, 100), -ERANGE); /* wraps */
	CHECK_EQ(vh_dirty_log_mark(&log, 5 * PAGE, UINT64_MAX), -ERANGE);  /* wraps */
	CHECK_EQ(vh_dirty_log_mark(&log, 0, 0), 0);
	CHECK_EQ(vh_dirty_log_test(&log, end), -ERANGE);
	CHECK_EQ(vh_dirty_log_test(&log, end - 1), 1);
	for (int i = 0; i < GUARD; i++)
		CHECK_EQ(buf[LOG + i], 0x5c);
	/* the huge wrapping mark set every page from 5 on */
	CHECK_EQ(buf[0], 0xe0);
	for (int i = 1; i < LOG; i++)
		CHECK_EQ(buf[i], 0xff);
	memset(buf, 0, LOG);
	/* byte-internal ranges and exact edges */
	CHECK_EQ(vh_dirty_log_mark(&log, 3 * PAGE, 2 * PAGE), 0); /* pages 3, 4 */
	CHECK_EQ(buf[0], 0x18);
	CHECK_EQ(vh_dirty_log_mark(&log, 7 * PAGE + PAGE - 1, 2), 0); /* pages 7, 8 */
	CHECK_EQ(buf[0], 0x98);
	CHECK_EQ(buf[1], 0x01);
	CHECK_EQ(vh_dirty_log_mark(&log, 16 * PAGE, 8 * 8 * PAGE), 0); /* bytes 2..9 whole */
	for (int i = 2; i < 10; i++)
		CHECK_EQ(buf[i], 0xff);
	CHECK_EQ(buf[10], 0);
	CHECK_EQ(vh_dirty_log_set_local(&log, NULL, 1), -EINVAL);
	CHECK_EQ(vh_dirty_log_set_local(&log, buf, 0), -EINVAL);
	CHECK(log.bitmap == buf); /* unchanged after the rejected calls */
	vh_dirty_log_clear(&log);
}

/* SET_LOG_BASE validation: nothing changes and nothing leaks on a bad fd, size or offset. */
static void test_set_validation(void)
{
	struct vh_dirty_log log = {0};
	int good = t_memfd("log", 2 * PAGE), other = t_memfd("other", PAGE), p[2], sv[2], ro;
	char path[64];
	struct m_baseline b;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", other);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(good >= 0 && other >= 0 && ro >= 0);
	/* an unaligned offset works: the bitmap starts there in the file */
	CHECK_EQ(vh_dirty_log_set(&log, good, 100, PAGE + 10), 0);
	CHECK_EQ(vh_dirty_log_mark(&log, 9 * PAGE, 1), 0);
	uint8_t v = 0;
	CHECK_EQ(pread(good, &v, 1, PAGE + 10 + 1), 1);
	CHECK_EQ(v, 0x02);
	uint8_t *bm = log.bitmap;

	b = m_baseline();
	CHECK_EQ(vh_dirty_log_set(&log, other, 0, 0), -EINVAL);
	CHECK_EQ(vh_dirty_log_set(&log, other, PAGE + 1, 0), -EINVAL);      /* past the end */
	CHECK_EQ(vh_dirty_log_set(&log, other, 1, PAGE), -EINVAL);          /* offset at end */
	CHECK_EQ(vh_dirty_log_set(&log, other, 16, UINT64_MAX - 8), -EINVAL); /* wraps */
	CHECK_EQ(vh_dirty_log_set(&log, other, UINT64_MAX, 1), -EINVAL);
	CHECK_EQ(vh_dirty_log_set(&log, p[0], 16, 0), -EINVAL);
	CHECK_EQ(vh_dirty_log_set(&log, sv[0], 16, 0), -EINVAL);
	CHECK_EQ(vh_dirty_log_set(&log, ro, 16, 0), -EACCES);
	CHECK_EQ(vh_dirty_log_set(&log, -1, 16, 0), -EBADF);
	CHECK_EQ(vh_dirty_log_set(&log, 1000, 16, 0), -EBADF);
	CHECK_EQ(vh_dirty_log_set(NULL, other, 16, 0), -EINVAL);
	CHECK_BASELINE_M(b);
	/* the previous log is still in place and working */
	CHECK(log.bitmap == bm);
	CHECK_EQ(log.size, 100);
	CHECK_EQ(vh_dirty_log_test(&log, 9 * PAGE), 1);
	/* replacing it unmaps the old one: mapping count unchanged */
	CHECK_EQ(vh_dirty_log_set(&log, other, PAGE, 0), 0);
	CHECK_BASELINE_M(b);
	CHECK_EQ(vh_dirty_log_test(&log, 9 * PAGE), 0);
	vh_dirty_log_clear(&log);
	vh_dirty_log_clear(&log);
	close(good);
	close(other);
	close(ro);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_new_memfd_args(void)
{
	struct m_baseline b = m_baseline();
	struct vh_dirty_log log = {0};
	int fd = -1;

	CHECK_EQ(vh_dirty_log_new_memfd(&log, 0, &fd), -EINVAL);
	CHECK_EQ(vh_dirty_log_new_memfd(NULL, PAGE, &fd), -EINVAL);
	CHECK_EQ(vh_dirty_log_new_memfd(&log, PAGE, NULL), -EINVAL);
	CHECK_EQ(fd, -1);
	CHECK_BASELINE_M(b);
	/* sealed against shrinking, like guest memory */
	CHECK_EQ(vh_dirty_log_new_memfd(&log, 3 * PAGE, &fd), 0);
	CHECK_EQ(log.size, 1);
	int seals = fcntl(fd, F_GET_SEALS);
	CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));
	CHECK_EQ(vh_dirty_log_mark(&log, 2 * PAGE, 1), 0);
	CHECK_EQ(vh_dirty_log_mark(&log, 8 * PAGE, 1), -ERANGE);
	CHECK_EQ(log.bitmap[0], 0x04);
	vh_dirty_log_clear(&log);
	close(fd);
	CHECK_BASELINE_M(b);
}

static const struct t_test tests[] = {
	T_TEST(test_random_marks),
	T_TEST(test_bounds),
	T_TEST(test_set_validation),
	T_TEST(test_new_memfd_args),
};

T_MAIN(tests)
