/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_VDPA_H
#define LIBVHOST_VDPA_H
#endif
