#!/bin/bash
# vhost-user-probe --io against qemu-storage-daemon's vhost-user-blk export: the check writes a
# pattern through the library's blk client, reads it back and restores the original bytes, so
# the image must be bit-identical afterwards; a sector beyond the disk is a usage error; a
# read-only export refuses the write.
#   usage: probe-io.sh PROBE
probe=$1
# shellcheck source=tests/peers/lib.sh
. "$(dirname "$0")/../peers/lib.sh"
need qemu-storage-daemon jq sha256sum

size=$((16 * 1024 * 1024 + 5 * 512))
img=$TMP/disk.img
head -c "$size" /dev/urandom >"$img"
before=$(sha256sum <"$img")

start_qsd() { # start_qsd SOCKET WRITABLE
	start_peer "$TMP/qsd-$2.log" qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$img" \
		--blockdev driver=raw,node-name=disk0,file=file0 \
		--export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$1,writable=$2"
	wait_socket "$1" "$LAST_PEER" || { cat "$TMP/qsd-$2.log" >&2; fail "qemu-storage-daemon did not listen"; }
}

sock=$TMP/blk.sock
start_qsd "$sock" on

out=$TMP/io.json
"$probe" --json --io --timeout 10 "$sock" >"$out" || { cat "$out" >&2; fail "probe --io exited $?"; }
jq .io "$out"
jq_check "$out" ".io.sector == $((size / 512 - 8)) and .io.bytes == 4096" "the last 8 sectors by default"
jq_check "$out" '.io.pattern_ok and .io.restored_ok and .io.error == null' "pattern read back, original restored"
jq_check "$out" '.io.ring == "split"' "split rings (no packed from qemu-storage-daemon)"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"
echo "ok: image unchanged"

txt=$TMP/io.txt
"$probe" --io-sector 1 "$sock" >"$txt" || fail "probe --io-sector exited $?"
grep -q '^io check: *4096 bytes at sector 1$' "$txt" || fail "text: sector"
grep -q 'pattern written, read back: *equal' "$txt" || fail "text: pattern"
grep -q 'original data restored: *equal' "$txt" || fail "text: restored"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"
echo "ok: --io-sector 1, image unchanged"

# A partial scratch area at the very end, then one beyond the disk.
"$probe" --json --io-sector $((size / 512 - 3)) "$sock" >"$out" || fail "probe at the end exited $?"
jq_check "$out" '.io.bytes == 1536 and .io.pattern_ok and .io.restored_ok' "3 sectors at the end"
rc=0
"$probe" --io-sector $((size / 512)) "$sock" >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" = 2 ] || fail "sector beyond the disk: exit $rc, expected 2"
grep -q 'beyond the disk' "$TMP/err" || fail "no message for a sector beyond the disk"
echo "ok: a sector beyond the disk is a usage error"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"

# --io on a net-typed device is refused before anything is written.
rc=0
"$probe" --io --type net "$sock" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--io --type net: exit $rc, expected 2"

# Read-only export: the client refuses to write (RO negotiated); nothing changes.
ro=$TMP/ro.sock
start_qsd "$ro" off
rc=0
"$probe" --json --io "$ro" >"$out" 2>"$TMP/err" || rc=$?
cat "$TMP/err"
[ "$rc" = 3 ] || fail "read-only export: exit $rc, expected 3"
jq_check "$out" '.io.failed_step == "write" and .io.pattern_ok == false' "the write is refused"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"
echo "probe-io: all checks passed"
