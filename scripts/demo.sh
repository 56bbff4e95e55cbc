#!/bin/bash
# demo.sh - the README's main job: serve a block device over vhost-user and talk to it.
#
#   usage: scripts/demo.sh
#
# Steps: install dependencies, build, create a sparse disk image, start a vhost-user-blk
# back-end on it, run a front-end against the back-end's socket, check what it reports, clean up.
#
# The back-end and the front-end are one function each, so either can be swapped:
#   DEMO_BACKEND=qsd   qemu-storage-daemon's vhost-user-blk export (default)
#   DEMO_FRONTEND=probe  vhost-user-probe: handshake, features by name, config space (default)
# Env: DEMO_SIZE (image size in bytes, default 64 MiB), SKIP_DEPS=1, KEEP=1 (keep the temp dir).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

DEMO_BACKEND=${DEMO_BACKEND:-qsd}
DEMO_FRONTEND=${DEMO_FRONTEND:-probe}
DEMO_SIZE=${DEMO_SIZE:-$((64 * 1024 * 1024))}
BUILD=${BUILD:-build}

step() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d /tmp/libvhost-demo-XXXXXX)
backend_pid=
cleanup() {
	if [ -n "$backend_pid" ]; then
		kill "$backend_pid" 2>/dev/null || true
		wait "$backend_pid" 2>/dev/null || true
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# ---- back-ends: start_backend IMAGE SOCKET (sets backend_pid, returns once SOCKET listens) ----

start_backend_qsd() {
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$1" \
		--blockdev driver=raw,node-name=disk0,file=file0 \
		--export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$2,writable=on,num-queues=1" \
		>"$tmp/backend.log" 2>&1 </dev/null &
	backend_pid=$!
}

start_backend() {
	case "$DEMO_BACKEND" in
	qsd) start_backend_qsd "$@" ;;
	*) echo "unknown DEMO_BACKEND=$DEMO_BACKEND" >&2; exit 2 ;;
	esac
	for _ in $(seq 100); do
		[ -S "$2" ] && return 0
		kill -0 "$backend_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$tmp/backend.log" >&2
	echo "demo: the back-end did not start" >&2
	exit 1
}

# ---- front-ends: run_frontend SOCKET IMAGE_SIZE (prints what it found; non-zero on mismatch) ----

run_frontend_probe() {
	local probe=$BUILD/tools/vhost-user-probe
	"$probe" --type blk "$1"
	"$probe" --json --type blk "$1" >"$tmp/probe.json"
	local cap want=$(($2 / 512))
	cap=$(jq -r '.blk.capacity' "$tmp/probe.json")
	if [ "$cap" != "$want" ]; then
		echo "demo: capacity $cap sectors, expected $want" >&2
		return 1
	fi
	echo
	echo "demo: the back-end reports $cap sectors = $2 bytes, the size of the image: ok"
}

run_frontend() {
	case "$DEMO_FRONTEND" in
	probe) run_frontend_probe "$@" ;;
	*) echo "unknown DEMO_FRONTEND=$DEMO_FRONTEND" >&2; exit 2 ;;
	esac
}

# ---- the demo ----

if [ -z "${SKIP_DEPS:-}" ]; then
	step "dependencies (scripts/deps.sh)"
	DEPS_NO_GUEST=1 scripts/deps.sh
fi

step "build ($BUILD/)"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" tools/vhost-user-probe >/dev/null
echo "built $BUILD/tools/vhost-user-probe"

img=$tmp/disk.img
sock=$tmp/vhost-user-blk.sock
step "sparse image $img ($DEMO_SIZE bytes), back-end: $DEMO_BACKEND"
truncate -s "$DEMO_SIZE" "$img"
start_backend "$img" "$sock"
echo "listening on $sock (pid $backend_pid)"

step "front-end: $DEMO_FRONTEND"
run_frontend "$sock" "$DEMO_SIZE"
