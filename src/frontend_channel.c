/* SPDX-License-Identifier: MIT */
/* placeholder: filled in by its owner */
typedef int vhp_placeholder_frontend_channel;
