#!/bin/bash
# vhost-user-probe against QEMU's virtiofsd (vhost-user-fs back-end, libvhost-user based).
#   usage: probe-virtiofsd.sh PROBE
probe=$1
# shellcheck source=tests/peers/lib.sh
. "$(dirname "$0")/lib.sh"
VIRTIOFSD=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
need "$VIRTIOFSD" jq
[ "$(id -u)" -eq 0 ] || fail "virtiofsd -o sandbox=chroot needs root"

mkdir "$TMP/share"
echo hello >"$TMP/share/file"
sock=$TMP/fs.sock
start_peer "$TMP/virtiofsd.log" "$VIRTIOFSD" --socket-path="$sock" -o source="$TMP/share" \
	-o cache=none -o sandbox=chroot
vpid=$LAST_PEER
wait_socket "$sock" "$vpid" || { cat "$TMP/virtiofsd.log" >&2; fail "virtiofsd did not listen"; }

out=$TMP/probe.json
"$probe" --json --timeout 10 "$sock" >"$out" || { cat "$TMP/virtiofsd.log" >&2; fail "probe exited $?"; }
cat "$out"

# virtio-fs has no device feature bits in use: only the transport ones, and no type to guess.
has_names "$out" feature_names NOTIFY_ON_EMPTY LOG_ALL RING_INDIRECT_DESC RING_EVENT_IDX \
	PROTOCOL_FEATURES VERSION_1
jq_check "$out" '.type == "unknown"' "no device type guessed"
has_names "$out" protocol_feature_names MQ LOG_SHMFD REPLY_ACK BACKEND_REQ CONFIGURE_MEM_SLOTS
jq_check "$out" '(.protocol_feature_names | index("CONFIG")) == null' "no CONFIG (fs has no config here)"
jq_check "$out" '.protocol_features_accepted == .protocol_features_offered' "all offered bits accepted"
# One hiprio queue plus one request queue.
jq_check "$out" '.queue_num == 2' "GET_QUEUE_NUM = 2"
jq_check "$out" '.max_mem_slots >= 8 and .max_mem_slots <= 509' "GET_MAX_MEM_SLOTS in 8..509"
jq_check "$out" '.config == null' "no config read"

# virtiofsd serves one front-end and exits when it leaves: the probe's hang-up was clean.
for _ in $(seq 50); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$vpid" 2>/dev/null; then
	fail "virtiofsd still running 5 s after the probe disconnected"
fi
[ "$(cat "$TMP/share/file")" = hello ] || fail "shared file changed"
echo "probe-virtiofsd: all checks passed"
