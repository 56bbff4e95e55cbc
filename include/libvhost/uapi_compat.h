/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
#ifndef LIBVHOST_UAPI_COMPAT_H
#define LIBVHOST_UAPI_COMPAT_H
#endif
