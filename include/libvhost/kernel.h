/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_KERNEL_H
#define LIBVHOST_KERNEL_H
#endif
