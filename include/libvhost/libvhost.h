/* SPDX-License-Identifier: MIT */
/* Umbrella header: everything libvhost exports. */
#ifndef LIBVHOST_LIBVHOST_H
#define LIBVHOST_LIBVHOST_H

#include <libvhost/log.h>
#include <libvhost/wire.h>
#include <libvhost/endpoint.h>
#include <libvhost/device.h>
#include <libvhost/frontend.h>
#include <libvhost/backend.h>
#include <libvhost/uapi_compat.h>
#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include <libvhost/server.h>
#include <libvhost/driver.h>

#endif
