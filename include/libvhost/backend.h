/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_BACKEND_H
#define LIBVHOST_BACKEND_H
#endif
