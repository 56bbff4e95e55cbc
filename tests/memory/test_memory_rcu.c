/* SPDX-License-Identifier: MIT */
/*
 * Publishing memory tables to worker threads: readers keep reading through the table they got
 * at lock time while the owner replaces (and unmaps) tables as fast as it can. A reader that
 * touched an unmapped table would crash; a reader that saw a mix of tables would read the
 * wrong pattern. Also: the timeout path keeps a held table alive until it is released.
 */
#include <pthread.h>
#include <libvhost/memory.h>
#include "memtest.h"

#define MEM_SIZE (16 * PAGE)
#define READERS 2

struct shared {
	struct vh_memory_rcu rcu;
	int stop;
	uint64_t reads[READERS];
	int bad[READERS];
};

struct reader_arg {
	struct shared *s;
	int id;
};

/* Each table's memory is filled with one byte value; a section must see a single value. */
static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	struct vh_memory_reader r;

	vh_memory_rcu_register(&a->s->rcu, &r);
	while (!__atomic_load_n(&a->s->stop, __ATOMIC_RELAXED)) {
		struct vh_memory *mem = vh_memory_read_lock(&r);
		struct iovec iov[4];
		int k;

		if (mem) {
			uint8_t *h = vh_memory_gpa_to_host(mem, 0, MEM_SIZE);
			uint8_t want = h ? h[0] : 0;

			for (uint64_t off = 0; h && off < MEM_SIZE; off += 512)
				if (h[off] != want)
					a->s->bad[a->id]++;
			k = vh_memory_gpa_to_iov(mem, PAGE - 1, 2, iov, 4);
			if (k != 1 || ((uint8_t *)iov[0].iov_base)[1] != want)
				a->s->bad[a->id]++;
			a->s->reads[a->id]++;
		}
		vh_memory_read_unlock(&r);
	}
	vh_memory_rcu_unregister(&r);
	return NULL;
}

/* Mappings of our test memfds ("/memfd:rcu (deleted)"): thread stacks that glibc caches
 * after a join make the plain mapping count useless here. */
static int count_rcu_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:rcu ") != NULL;
	fclose(f);
	return n;
}

static struct vh_memory *make_table(uint8_t value)
{
	struct vh_mem_region wr = { 0, MEM_SIZE, 0x7f0000000000, 0 };
	struct vh_memory *mem = NULL;
	int fd = t_memfd("rcu", MEM_SIZE);
	void *p = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p != MAP_FAILED) {
		memset(p, value, MEM_SIZE);
		munmap(p, MEM_SIZE);
	}
	CHECK_EQ(vh_memory_map(&mem, &wr, &fd, 1, NULL), 0);
	close(fd);
	return mem;
}

static void test_publish_under_readers(void)
{
	struct m_baseline b = m_baseline();
	int maps0 = count_rcu_maps();
	struct shared *s = calloc(1, sizeof(*s));
	struct reader_arg args[READERS];
	pthread_t th[READERS];
	unsigned publishes = 0;
	int64_t until;

	CHECK_EQ(vh_memory_rcu_init(&s->rcu, make_table(1)), 0);
	for (int i = 0; i < READERS; i++) {
		args[i].s = s;
		args[i].id = i;
		CHECK_EQ(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
	}
	until = t_now_ms() + 1000;
	while (t_now_ms() < until) {
		int left = vh_memory_rcu_publish(&s->rcu, make_table((uint8_t)(2 + publishes % 200)),
						 -1);

		CHECK_EQ(left, 0);
		publishes++;
		/* every replaced table is already unmapped */
		if (publishes % 64 == 0)
			CHECK_EQ(count_rcu_maps(), maps0 + 1);
		if (t_failures)
			break;
	}
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	printf("# %u publishes, reads %llu/%llu\n", publishes, (unsigned long long)s->reads[0],
	       (unsigned long long)s->reads[1]);
	for (int i = 0; i < READERS; i++) {
		CHECK_EQ(s->bad[i], 0);
		CHECK(s->reads[i] > 0);
	}
	CHECK(publishes > 10);
	CHECK(s->rcu.readers == NULL);
	vh_memory_rcu_destroy(&s->rcu);
	free(s);
	CHECK_FDS_BASELINE(b);
	CHECK_EQ(count_rcu_maps(), maps0);
}

/* A reader holding a section across a publish: the old table stays mapped until it leaves. */
static void test_timeout_keeps_held_table(void)
{
	struct m_baseline b = m_baseline();
	struct vh_memory_rcu rcu;
	struct vh_memory_reader r;
	struct vh_memory *held;
	uint8_t *h;

	CHECK_EQ(vh_memory_rcu_init(&rcu, make_table(7)), 0);
	CHECK_EQ(vh_memory_rcu_register(&rcu, &r), 0);
	held = vh_memory_read_lock(&r);
	h = vh_memory_gpa_to_host(held, 0, MEM_SIZE);
	CHECK(h && h[0] == 7);
	int64_t t0 = t_now_ms();
	CHECK_EQ(vh_memory_rcu_publish(&rcu, make_table(8), 20), 1);
	CHECK(t_now_ms() - t0 >= 20);
	CHECK(h[MEM_SIZE - 1] == 7); /* still mapped */
	CHECK_EQ(vh_memory_rcu_reclaim(&rcu, 0), 1);
	/* a second publish while still held: two tables wait */
	CHECK_EQ(vh_memory_rcu_publish(&rcu, make_table(9), 0), 2);
	vh_memory_read_unlock(&r);
	CHECK_EQ(vh_memory_rcu_reclaim(&rcu, 0), 0);
	/* the new section sees the newest table */
	held = vh_memory_read_lock(&r);
	h = vh_memory_gpa_to_host(held, 0, 1);
	CHECK(h && h[0] == 9);
	vh_memory_read_unlock(&r);
	/* publishing NULL (no memory) is allowed; readers then get NULL */
	CHECK_EQ(vh_memory_rcu_publish(&rcu, NULL, -1), 0);
	CHECK(vh_memory_read_lock(&r) == NULL);
	vh_memory_read_unlock(&r);
	vh_memory_rcu_unregister(&r);
	vh_memory_rcu_unregister(&r); /* harmless twice */
	vh_memory_rcu_destroy(&rcu);
	CHECK_BASELINE_M(b);
}

/* Destroy releases tables still waiting. */
static void test_destroy_with_retired(void)
{
	struct m_baseline b = m_baseline();
	struct vh_memory_rcu rcu;
	struct vh_memory_reader r;

	CHECK_EQ(vh_memory_rcu_init(&rcu, make_table(1)), 0);
	CHECK_EQ(vh_memory_rcu_register(&rcu, &r), 0);
	(void)vh_memory_read_lock(&r);
	CHECK_EQ(vh_memory_rcu_publish(&rcu, make_table(2), 0), 1);
	vh_memory_read_unlock(&r);
	vh_memory_rcu_unregister(&r);
	vh_memory_rcu_destroy(&rcu);
	CHECK_BASELINE_M(b);
	CHECK_EQ(vh_memory_rcu_init(NULL, NULL), -EINVAL);
	CHECK_EQ(vh_memory_rcu_register(NULL, &r), -EINVAL);
}

static const struct t_test tests[] = {
	T_TEST(test_publish_under_readers),
	T_TEST(test_timeout_keeps_held_table),
	T_TEST(test_destroy_with_retired),
};

T_MAIN(tests)
