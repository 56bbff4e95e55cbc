/* SPDX-License-Identifier: MIT */
/*
 * ADD_MEM_REG / REM_MEM_REG of the same region by several holders. QEMU 7.2 drives each
 * virtio-net queue pair as its own vhost device on one socket; every pair adds the guest's
 * regions and removes them when it stops. The back-end must map a region once, count its
 * holders, and unmap it only when the last one removes it.
 */
#include <libvhost/backend.h>
#include <libvhost/endpoint.h>
#include "testutil.h"

struct seen {
	int adds, rems;
};

static int cb_add(struct vh_backend *be, const struct vh_backend_mem_region *r, int *fd)
{
	struct seen *s = vh_backend_opaque(be);

	(void)r, (void)fd;
	s->adds++;
	return 0;
}

static int cb_rem(struct vh_backend *be, const struct vh_backend_mem_region *r)
{
	struct seen *s = vh_backend_opaque(be);

	(void)r;
	s->rems++;
	return 0;
}

#define PF(x) VH_BIT(VH_USER_PROTOCOL_F_##x)

/* Sends one request (with NEED_REPLY), lets the back-end handle it, returns the ack value. */
static long long request(struct vh_endpoint *ep, struct vh_backend *be, uint32_t id,
			 const void *payload, uint32_t size, int fd)
{
	struct vh_msg_hdr hdr = { id, VH_USER_VERSION | VH_USER_FLAG_NEED_REPLY, size };
	struct vh_msg reply;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;

	if (vh_endpoint_send(ep, &hdr, payload, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0))
		return -1000;
	if (vh_backend_dispatch(be))
		return -1001;
	if (vh_endpoint_recv(ep, &reply, fds, &nfds, 1000))
		return -1002;
	vh_close_fds(fds, nfds);
	if (reply.hdr.size != 8)
		return -1003;
	return (long long)reply.payload.u64;
}

static void negotiate(struct vh_endpoint *ep, struct vh_backend *be)
{
	uint64_t pf = PF(REPLY_ACK) | PF(CONFIGURE_MEM_SLOTS);
	struct vh_msg_hdr hdr = { VH_USER_SET_PROTOCOL_FEATURES, VH_USER_VERSION, 8 };

	CHECK_EQ(vh_endpoint_send(ep, &hdr, &pf, NULL, 0), 0);
	CHECK_EQ(vh_backend_dispatch(be), 0);
}

static void test_shared_region(void)
{
	struct t_baseline b = t_baseline();
	struct vh_backend_config cfg = {
		.features = VH_BIT(VH_F_VERSION_1),
		.protocol_features = PF(REPLY_ACK) | PF(CONFIGURE_MEM_SLOTS),
		.num_queues = 4,
	};
	struct vh_backend_ops ops = { .add_mem_reg = cb_add, .rem_mem_reg = cb_rem };
	struct vh_backend_mem_region got[4];
	struct seen seen = { 0 };
	struct vh_backend *be;
	struct vh_endpoint ep;
	struct vh_mem_single one = { 0 }, other = { 0 }, overlap = { 0 };
	int sv[2], mem = t_memfd("guest", 2 << 20);

	CHECK_EQ(vh_backend_new(&be, &cfg, &ops, &seen), 0);
	CHECK_EQ(vh_socketpair(sv), 0);
	CHECK_EQ(vh_backend_set_connection(be, sv[1]), 0);
	vh_endpoint_init(&ep, sv[0], "test");
	negotiate(&ep, be);

	one.region = (struct vh_mem_region){ 0x100000, 1 << 20, 0x7f0000100000ull, 0 };
	other.region = (struct vh_mem_region){ 0x0, 1 << 20, 0x7f0000000000ull, 1 << 20 };
	overlap.region = (struct vh_mem_region){ 0x180000, 1 << 20, 0x7f0000300000ull, 0 };

	/* Pair 0 and pair 1 add the same region: mapped once. */
	CHECK_EQ(request(&ep, be, VH_USER_ADD_MEM_REG, &one, sizeof(one), mem), 0);
	CHECK_EQ(request(&ep, be, VH_USER_ADD_MEM_REG, &one, sizeof(one), mem), 0);
	CHECK_EQ(seen.adds, 1);
	/* A region that overlaps without being the same one is still refused. */
	CHECK(request(&ep, be, VH_USER_ADD_MEM_REG, &overlap, sizeof(overlap), mem) != 0);
	/* A lower region lands first in the recorded (sorted) table. */
	CHECK_EQ(request(&ep, be, VH_USER_ADD_MEM_REG, &other, sizeof(other), mem), 0);
	CHECK_EQ(seen.adds, 2);
	CHECK_EQ(vh_backend_get_mem_table(be, got, 4), 2);
	CHECK_EQ(got[0].r.guest_phys_addr, 0);
	CHECK_EQ(got[1].r.guest_phys_addr, 0x100000);

	/* Pair 1 stops: the region stays for pair 0. */
	CHECK_EQ(request(&ep, be, VH_USER_REM_MEM_REG, &one, sizeof(one), -1), 0);
	CHECK_EQ(seen.rems, 0);
	CHECK_EQ(vh_backend_get_mem_table(be, got, 4), 2);
	/* Pair 0 stops: now it goes. A third removal names an unknown region. */
	CHECK_EQ(request(&ep, be, VH_USER_REM_MEM_REG, &one, sizeof(one), -1), 0);
	CHECK_EQ(seen.rems, 1);
	CHECK_EQ(vh_backend_get_mem_table(be, got, 4), 1);
	CHECK_EQ(got[0].r.guest_phys_addr, 0);
	CHECK(request(&ep, be, VH_USER_REM_MEM_REG, &one, sizeof(one), -1) != 0);
	CHECK_EQ(seen.rems, 1);

	vh_endpoint_close(&ep);
	vh_backend_free(be);
	close(mem);
	CHECK_BASELINE(b);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = { T_TEST(test_shared_region) };

	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
