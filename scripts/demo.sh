#!/bin/bash
# demo.sh - the README's main job: serve a disk image over vhost-user-blk and use it from a
# process through real shared-memory virtqueues.
#
#   usage: scripts/demo.sh            the demo (no VM): back-end + the library's blk client
#          scripts/demo.sh --guest    then boot a QEMU/TCG guest on the same back-end and use
#                                     /dev/vda from inside it (downloads the guest kernels once)
#
# Steps: install what is missing (scripts/deps.sh), build, create a sparse image, start a
# vhost-user-blk back-end on it, then run tools/vhost-user-blk-demo against its socket: the
# library's driver-side blk client negotiates (features printed by name), shares memfd guest
# memory, sets up the virtqueues, writes and verifies data, measures a sequential write and
# read-back with a progress bar, and checks on the host (pread of the image) that the data
# landed. Everything it started is stopped and removed at the end, however it ends.
#
# The back-end and the front-end are one function each:
#   DEMO_BACKEND=auto   the library's own vhost-user-blk when it is built, else qsd (default)
#   DEMO_BACKEND=ours   build/tools/vhost-user-blk
#   DEMO_BACKEND=qsd    qemu-storage-daemon's vhost-user-blk export (QEMU's back-end)
#   DEMO_FRONTEND=demo  vhost-user-blk-demo (default)
#   DEMO_FRONTEND=probe vhost-user-probe: handshake, features, config space, and a sector
#                       written, read back and restored (--io)
# Env: DEMO_SIZE (image bytes, default 256 MiB, sparse), DEMO_MIB (MiB of the throughput run,
# default 128), DEMO_QUEUES (default 1), SKIP_DEPS=1, KEEP=1 (keep the temporary directory),
# BUILD (build directory, default build).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

GUEST=0
case "${1:-}" in
--guest) GUEST=1 ;;
"") ;;
-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: scripts/demo.sh [--guest]" >&2; exit 2 ;;
esac

DEMO_BACKEND=${DEMO_BACKEND:-auto}
DEMO_FRONTEND=${DEMO_FRONTEND:-demo}
DEMO_SIZE=${DEMO_SIZE:-$((256 * 1024 * 1024))}
DEMO_MIB=${DEMO_MIB:-128}
DEMO_QUEUES=${DEMO_QUEUES:-1}
BUILD=${BUILD:-build}

step() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d /tmp/libvhost-demo-XXXXXX)
backend_pid=
cleanup() {
	if [ -n "$backend_pid" ]; then
		kill "$backend_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$backend_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$backend_pid" 2>/dev/null || true
		wait "$backend_pid" 2>/dev/null || true
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- back-ends: start_backend IMAGE SOCKET (sets backend_pid, returns once SOCKET listens) ----

start_backend_ours() {
	"$BUILD/tools/vhost-user-blk" --socket-path="$2" --blk-file="$1" \
		--num-queues="$DEMO_QUEUES" >"$tmp/backend.log" 2>&1 </dev/null &
	backend_pid=$!
}

start_backend_qsd() {
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$1" \
		--blockdev driver=raw,node-name=disk0,file=file0 \
		--export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$2,writable=on,num-queues=$DEMO_QUEUES" \
		>"$tmp/backend.log" 2>&1 </dev/null &
	backend_pid=$!
}

start_backend() {
	case "$DEMO_BACKEND" in
	ours) start_backend_ours "$@" ;;
	qsd) start_backend_qsd "$@" ;;
	*) echo "unknown DEMO_BACKEND=$DEMO_BACKEND (auto, ours or qsd)" >&2; exit 2 ;;
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

# ---- front-ends: run_frontend SOCKET IMAGE (prints what it did; non-zero on any mismatch) ----

run_frontend_demo() {
	"$BUILD/tools/vhost-user-blk-demo" --queues "$DEMO_QUEUES" --mib "$DEMO_MIB" \
		--image "$2" "$1"
}

run_frontend_probe() {
	local probe=$BUILD/tools/vhost-user-probe
	"$probe" --type blk "$1"
	"$probe" --json --type blk "$1" >"$tmp/probe.json"
	local cap want=$((DEMO_SIZE / 512))
	cap=$(jq -r '.blk.capacity' "$tmp/probe.json")
	if [ "$cap" != "$want" ]; then
		echo "demo: capacity $cap sectors, expected $want" >&2
		return 1
	fi
	echo
	echo "demo: the back-end reports $cap sectors = $DEMO_SIZE bytes, the size of the image: ok"
	"$probe" --io --type blk "$1"
}

run_frontend() {
	case "$DEMO_FRONTEND" in
	demo) run_frontend_demo "$@" ;;
	probe) run_frontend_probe "$@" ;;
	*) echo "unknown DEMO_FRONTEND=$DEMO_FRONTEND (demo or probe)" >&2; exit 2 ;;
	esac
}

# ---- the guest: boot QEMU on the same socket, use /dev/vda ----

run_guest() {
	local sock=$1 img=$2 out=$tmp/guest.out mem=512M
	cat >"$tmp/guest.sh" <<'EOF'
set -e
modprobe virtio_blk 2>/dev/null || true
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
echo "guest: /dev/vda is $(cat /sys/block/vda/size) sectors"
echo "guest: first MiB, written by the demo client: sha256 $(dd if=/dev/vda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=1M seek=8 count=4 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/vda of=/tmp/back bs=1M skip=8 count=4 iflag=direct 2>/dev/null
cmp /tmp/pat /tmp/back && echo "guest: 4 MiB written to /dev/vda at 8 MiB and read back: equal"
echo "guest: pattern sha256 $(sha256sum /tmp/pat | cut -d' ' -f1)"
EOF
	echo "booting Debian's 6.12 kernel under QEMU/TCG with -device vhost-user-blk-pci on $sock"
	LIBVHOST_GUEST_QEMU_ARGS="-object memory-backend-memfd,id=mem,size=$mem,share=on -numa node,memdev=mem -chardev socket,id=c0,path=$sock -device vhost-user-blk-pci,chardev=c0,num-queues=$DEMO_QUEUES" \
		scripts/guest/run.sh --mem "$mem" --timeout 120 --modules virtio_blk \
		--file "$tmp/guest.sh" -c 'sh /vmrun/files/guest.sh' | tee "$out"
	local want got
	want=$(sed -n 's/^guest: first MiB.*sha256 //p' "$out")
	got=$(dd if="$img" bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ -n "$want" ] && [ "$want" = "$got" ] || { echo "demo: the guest saw other data than the image holds" >&2; return 1; }
	echo "host: the image's first MiB has the same sha256: the guest read what the client wrote"
	want=$(sed -n 's/^guest: pattern sha256 //p' "$out")
	got=$(dd if="$img" bs=1M skip=8 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ -n "$want" ] && [ "$want" = "$got" ] || { echo "demo: the guest's write is not in the image" >&2; return 1; }
	echo "host: the guest's 4 MiB are in the image at 8 MiB (same sha256)"
}

# ---- the demo ----

if [ -z "${SKIP_DEPS:-}" ]; then
	step "dependencies (scripts/deps.sh)"
	if [ "$GUEST" = 1 ]; then scripts/deps.sh; else DEPS_NO_GUEST=1 scripts/deps.sh; fi
	echo "all present"
fi

step "build ($BUILD/)"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
targets=(tools/vhost-user-blk-demo tools/vhost-user-probe)
# The library's own server, when this tree has it.
if ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^tools/vhost-user-blk:'; then
	targets+=(tools/vhost-user-blk)
fi
ninja -C "$BUILD" "${targets[@]}" >/dev/null
echo "built ${targets[*]}"

# Prefer the library's own vhost-user-blk server once it is built; else QEMU's.
if [ "$DEMO_BACKEND" = auto ]; then
	if [ -x "$BUILD/tools/vhost-user-blk" ]; then DEMO_BACKEND=ours; else DEMO_BACKEND=qsd; fi
fi
case "$DEMO_BACKEND" in
ours) backend_name="libvhost's vhost-user-blk ($BUILD/tools/vhost-user-blk)" ;;
qsd) backend_name="qemu-storage-daemon's vhost-user-blk export"
     [ -x "$BUILD/tools/vhost-user-blk" ] ||
	backend_name="$backend_name (libvhost's own vhost-user-blk is not built; the demo uses it once it is)" ;;
*) backend_name=$DEMO_BACKEND ;;
esac

img=$tmp/disk.img
sock=$tmp/vhost-user-blk.sock
step "back-end: $backend_name"
truncate -s "$DEMO_SIZE" "$img"
echo "sparse image $img, $((DEMO_SIZE / 1048576)) MiB"
start_backend "$img" "$sock"
echo "listening on $sock (pid $backend_pid)"

step "guest side, in this process: $DEMO_FRONTEND (libvhost's driver-side blk client)"
run_frontend "$sock" "$img"

if [ "$GUEST" = 1 ]; then
	step "a QEMU guest on the same back-end"
	run_guest "$sock" "$img"
fi
step "done"
