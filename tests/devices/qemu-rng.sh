#!/bin/bash
# QEMU 7.2 (TCG) boots the Debian 6.12 guest with vhost-user-rng-pci on our vhost-user-rng;
# the guest's current hwrng must be virtio and /dev/hwrng must give varying, non-zero bytes;
# the server's counters must show the requests.
#
#   qemu-rng.sh VHOST_USER_RNG BLKCHECK
#
# Debian QEMU 7.2's vhost-user-rng-pci aborts when its back-end goes away, so the guest (and
# with it QEMU) ends before the server is stopped.
. "$(dirname "$0")/lib.sh"

RNG=${1:?vhost-user-rng}
BLKCHECK=${2:?blkcheck}
need qemu-system-x86_64 xz "$RNG" "$BLKCHECK"

CACHE=${LIBVHOST_LAB_CACHE:-/var/tmp/libvhost-lab}
if [ ! -d "$CACHE/kernel-6.12/lib/modules" ]; then
	"$LIBVHOST_SOURCE_ROOT/scripts/guest/setup.sh" >&2 || fail "guest setup failed"
fi
# virtio-rng is not in the harness's initramfs: bring the module in as a file.
MOD=$(find "$CACHE"/kernel-6.12/lib/modules/*/kernel/drivers/char/hw_random -name 'virtio-rng.ko*' | head -n 1)
[ -n "$MOD" ] || fail "no virtio-rng module in the 6.12 guest kernel"
case $MOD in
*.xz) xz -dc "$MOD" >"$WORK/virtio-rng.ko" ;;
*) cp "$MOD" "$WORK/virtio-rng.ko" ;;
esac || fail "cannot unpack $MOD"

SOCK=$WORK/rng.sock
start_server server "$SOCK" "$RNG" --socket-path="$SOCK"
run_guest "$WORK/guest.out" 1 \
	"-chardev socket,id=r0,path=$SOCK -device vhost-user-rng-pci,chardev=r0" \
	"set -e
/vmrun/files/blkcheck insmod /vmrun/files/virtio-rng.ko
/vmrun/files/blkcheck hwrng" \
	--file "$WORK/virtio-rng.ko:/vmrun/files/virtio-rng.ko"
[ "$GUEST_RC" = 0 ] || fail "guest checks failed (exit $GUEST_RC)"
ok "guest read entropy from the virtio hwrng"

stop_server "$SERVER_PID"
[ "$STOP_RC" = 0 ] || fail "the server exited with $STOP_RC after SIGTERM"
[ -e "$SOCK" ] && fail "the socket was left behind"
grep ': stats: ' "$WORK/server.log" | tail -n 1
req=$(stat_of "$WORK/server.log" requests)
bytes=$(stat_of "$WORK/server.log" bytes)
[ -n "$req" ] && [ "$req" -gt 0 ] || fail "statistics: no request served"
[ -n "$bytes" ] && [ "$bytes" -ge 128 ] || fail "statistics: only ${bytes:-no} bytes served"
[ "$(stat_of "$WORK/server.log" errors)" = 0 ] || fail "statistics: getrandom errors"
ok "served $req requests, $bytes bytes"
echo "PASS: qemu-rng ($(elapsed) s)"
