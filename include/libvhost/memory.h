/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_MEMORY_H
#define LIBVHOST_MEMORY_H
#endif
