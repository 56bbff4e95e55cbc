/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
typedef int vhp_placeholder_backend_send;
