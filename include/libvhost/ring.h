/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_RING_H
#define LIBVHOST_RING_H
#endif
