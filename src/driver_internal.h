/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the driver-side files (driver.c, driver_blk.c, driver_net.c). */
#ifndef LIBVHOST_DRIVER_INTERNAL_H
#define LIBVHOST_DRIVER_INTERNAL_H

#include <stdint.h>
#include <libvhost/driver.h>

/* Marks the driver unusable with err unless it already is; returns the sticky error. */
int vhp_driver_fail(struct vh_driver *d, int err);
/* Absolute deadline for timeout_ms (< 0: the driver's configured timeout); returns the ms used. */
int vhp_driver_deadline(const struct vh_driver *d, int timeout_ms, int64_t *deadline);
/* Milliseconds left until deadline (0 when passed), rounded up. */
int vhp_driver_remaining_ms(int64_t deadline);

/* Little-endian loads and stores for device-visible structures. */
static inline uint16_t vhp_le16(const void *p)
{
	const uint8_t *b = p;

	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t vhp_le32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t vhp_le64(const void *p)
{
	return vhp_le32(p) | (uint64_t)vhp_le32((const uint8_t *)p + 4) << 32;
}

#endif
