/* SPDX-License-Identifier: MIT */
/*
 * Test frames on disk, for the DPDK tests: testpmd reads them from a pcap file (net_pcap rx),
 * sends them through vhost-user-net and writes what comes back to another pcap file.
 *
 *   pcaptool gen FILE COUNT SEED [MINLEN MAXLEN]   write COUNT frames (default 60..1514 bytes)
 *   pcaptool cmp EXPECTED GOT                      same frames, same bytes, same order
 *
 * Every frame is unicast from 02:00:00:00:00:02 to 02:00:00:00:00:01 with ethertype 0x88b5
 * (local experimental), its index and seed, then bytes from a generator seeded by both, so a
 * frame that comes back altered, truncated, duplicated or out of order is caught.
 * Exit: 0 equal / written, 1 different, 2 usage or I/O error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME 65535u

struct pcap_file {
	FILE *f;
	int swap;
	const char *name;
};

static uint32_t sw32(uint32_t v, int swap)
{
	return swap ? __builtin_bswap32(v) : v;
}

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: fixed, portable, good enough to make every byte matter */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static size_t make_frame(uint8_t *buf, uint32_t idx, uint32_t seed, unsigned minlen,
			 unsigned maxlen)
{
	uint64_t s = ((uint64_t)seed << 32 | idx) * 0x9E3779B97F4A7C15ull + 1;
	size_t len = minlen + (size_t)(next_rand(&s) % (maxlen - minlen + 1));
	static const uint8_t hdr[14] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5 };

	memcpy(buf, hdr, sizeof(hdr));
	memcpy(buf + 14, &idx, 4);
	memcpy(buf + 18, &seed, 4);
	for (size_t i = 22; i < len; i++)
		buf[i] = (uint8_t)(next_rand(&s) >> 56);
	return len;
}

static int gen(const char *path, unsigned count, uint32_t seed, unsigned minlen, unsigned maxlen)
{
	static uint8_t buf[MAX_FRAME];
	uint32_t gh[6] = { 0xa1b2c3d4u, 2u | (4u << 16), 0, 0, MAX_FRAME, 1 };
	FILE *f = fopen(path, "wb");

	if (!f) {
		fprintf(stderr, "pcaptool: %s: %s\n", path, strerror(errno));
		return 2;
	}
	fwrite(gh, sizeof(gh), 1, f);
	for (unsigned i = 0; i < count; i++) {
		size_t len = make_frame(buf, i, seed, minlen, maxlen);
		uint32_t rh[4] = { i, 0, (uint32_t)len, (uint32_t)len };

		fwrite(rh, sizeof(rh), 1, f);
		fwrite(buf, len, 1, f);
	}
	if (fclose(f)) {
		fprintf(stderr, "pcaptool: %s: %s\n", path, strerror(errno));
		return 2;
	}
	return 0;
}

static int open_pcap(struct pcap_file *p, const char *path)
{
	uint32_t gh[6];

	p->name = path;
	p->f = fopen(path, "rb");
	if (!p->f) {
		fprintf(stderr, "pcaptool: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fread(gh, sizeof(gh), 1, p->f) != 1) {
		fprintf(stderr, "pcaptool: %s: no pcap header\n", path);
		return -1;
	}
	/* microsecond or nanosecond timestamps, either byte order */
	if (gh[0] == 0xa1b2c3d4u || gh[0] == 0xa1b23c4du) {
		p->swap = 0;
	} else if (gh[0] == 0xd4c3b2a1u || gh[0] == 0x4d3cb2a1u) {
		p->swap = 1;
	} else {
		fprintf(stderr, "pcaptool: %s: not a pcap file\n", path);
		return -1;
	}
	if (sw32(gh[5], p->swap) != 1) {
		fprintf(stderr, "pcaptool: %s: link type %u, not Ethernet\n", path,
			sw32(gh[5], p->swap));
		return -1;
	}
	return 0;
}

/* 1 and the frame, 0 at the end, -1 on a broken file. */
static int read_frame(struct pcap_file *p, uint8_t *buf, size_t *len)
{
	uint32_t rh[4];
	uint32_t incl, orig;

	if (fread(rh, sizeof(rh), 1, p->f) != 1)
		return 0;
	incl = sw32(rh[2], p->swap);
	orig = sw32(rh[3], p->swap);
	if (incl > MAX_FRAME || incl != orig) {
		fprintf(stderr, "pcaptool: %s: record of %u bytes (%u on the wire)\n", p->name, incl,
			orig);
		return -1;
	}
	if (incl && fread(buf, incl, 1, p->f) != 1) {
		fprintf(stderr, "pcaptool: %s: truncated record\n", p->name);
		return -1;
	}
	*len = incl;
	return 1;
}

static int cmp(const char *exp_path, const char *got_path)
{
	static uint8_t a[MAX_FRAME], b[MAX_FRAME];
	struct pcap_file e = { 0 }, g = { 0 };
	unsigned n = 0;
	int ret = 2;

	if (open_pcap(&e, exp_path) < 0 || open_pcap(&g, got_path) < 0)
		goto out;
	for (;;) {
		size_t la = 0, lb = 0;
		int ra = read_frame(&e, a, &la), rb = read_frame(&g, b, &lb);

		if (ra < 0 || rb < 0)
			goto out;
		if (!ra && !rb)
			break;
		if (!rb) {
			fprintf(stderr, "pcaptool: %s has %u frames, %s more\n", got_path, n,
				exp_path);
			ret = 1;
			goto out;
		}
		if (!ra) {
			fprintf(stderr, "pcaptool: %s has more frames than the %u of %s\n", got_path,
				n, exp_path);
			ret = 1;
			goto out;
		}
		if (la != lb || memcmp(a, b, la)) {
			size_t i = 0;

			while (i < la && i < lb && a[i] == b[i])
				i++;
			fprintf(stderr, "pcaptool: frame %u differs: %zu bytes expected, %zu got, "
				"first difference at byte %zu\n", n, la, lb, i);
			ret = 1;
			goto out;
		}
		n++;
	}
	printf("pcaptool: %u frames equal\n", n);
	ret = 0;
out:
	if (e.f)
		fclose(e.f);
	if (g.f)
		fclose(g.f);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: pcaptool gen FILE COUNT SEED [MINLEN MAXLEN]\n"
			"       pcaptool cmp EXPECTED GOT\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "gen")) {
		unsigned long count = strtoul(argv[3], NULL, 0);
		unsigned long seed = strtoul(argv[4], NULL, 0);
		unsigned long minlen = argc > 5 ? strtoul(argv[5], NULL, 0) : 60;
		unsigned long maxlen = argc > 6 ? strtoul(argv[6], NULL, 0) : 1514;

		if (count > 10000000 || minlen < 22 || maxlen < minlen || maxlen > MAX_FRAME)
			return usage();
		return gen(argv[2], (unsigned)count, (uint32_t)seed, (unsigned)minlen,
			   (unsigned)maxlen);
	}
	if (argc == 4 && !strcmp(argv[1], "cmp"))
		return cmp(argv[2], argv[3]);
	return usage();
}
