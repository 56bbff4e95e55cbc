#!/bin/bash
# vhost-user-probe against qemu-storage-daemon's vhost-user-blk export on a sparse file image:
# the features must include what qemu-storage-daemon 7.2 offers (0x175007e46, protocol 0x8f2b,
# reference §8), and the config space must describe this image (capacity = size / 512) and this
# export (2 queues).
#   usage: probe-qsd.sh PROBE
probe=$1
# shellcheck source=tests/peers/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-storage-daemon jq

# An odd size (37 MiB + 3 sectors) so a rounding error shows.
size=$((37 * 1024 * 1024 + 3 * 512))
img=$TMP/disk.img
sock=$TMP/blk.sock
truncate -s "$size" "$img"
start_peer "$TMP/qsd.log" qemu-storage-daemon \
	--blockdev "driver=file,node-name=file0,filename=$img" \
	--blockdev driver=raw,node-name=disk0,file=file0 \
	--export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock,writable=on,num-queues=2"
wait_socket "$sock" "$LAST_PEER" || { cat "$TMP/qsd.log" >&2; fail "qemu-storage-daemon did not listen"; }

out=$TMP/probe.json
"$probe" --json --type blk --timeout 10 "$sock" >"$out" || fail "probe exited $?"
cat "$out"

jq_check "$out" '.type == "blk" and .type_guessed == false' "type as given"
# 0x175007e46
has_names "$out" feature_names SIZE_MAX SEG_MAX BLK_SIZE FLUSH TOPOLOGY CONFIG_WCE MQ DISCARD \
	WRITE_ZEROES NOTIFY_ON_EMPTY LOG_ALL RING_INDIRECT_DESC RING_EVENT_IDX PROTOCOL_FEATURES \
	VERSION_1
# 0x8f2b
has_names "$out" protocol_feature_names MQ LOG_SHMFD REPLY_ACK BACKEND_REQ PAGEFAULT CONFIG \
	BACKEND_SEND_FD HOST_NOTIFIER CONFIGURE_MEM_SLOTS
# Every offered bit the library implements is accepted (INFLIGHT_SHMFD is not offered by 7.2).
jq_check "$out" '.protocol_features_accepted == .protocol_features_offered' "all offered bits accepted"
[ "$(jq -r .features_hex "$out")" = 0x175007e46 ] ||
	echo "note: features $(jq -r .features_hex "$out") differ from the reference 0x175007e46 (newer QEMU?)"
[ "$(jq -r .protocol_features_offered_hex "$out")" = 0x8f2b ] ||
	echo "note: protocol features differ from the reference 0x8f2b (newer QEMU?)"

jq_check "$out" '.queue_num == 2' "GET_QUEUE_NUM = num-queues"
jq_check "$out" '.max_mem_slots >= 8 and .max_mem_slots <= 509' "GET_MAX_MEM_SLOTS in 8..509"
jq_check "$out" '.config_size == 60' "60 bytes of config"
jq_check "$out" ".blk.capacity == $((size / 512))" "capacity = image size / 512"
jq_check "$out" '.blk.blk_size == 512' "blk_size 512"
jq_check "$out" '.blk.seg_max > 0' "seg_max set"
jq_check "$out" '.blk.num_queues == 2' "config num_queues = num-queues"
# The hex dump and the decoded fields come from the same bytes.
cap_hex=$(printf '%016x' $((size / 512)) | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}')
jq_check "$out" ".config | startswith(\"$cap_hex\")" "config hex starts with capacity (LE)"

# The daemon survives a front-end leaving: probe again, in text mode, with the type guessed.
txt=$TMP/probe.txt
"$probe" "$sock" >"$txt" || fail "second probe exited $?"
cat "$txt"
grep -q '^device type: *blk (guessed' "$txt" || fail "type not guessed as blk"
grep -q "^  capacity: $((size / 512)) sectors ($size bytes)\$" "$txt" || fail "text capacity"
grep -q '^queues: *2$' "$txt" || fail "text queues"

# qemu-storage-daemon refuses a config read beyond its 60 bytes: reported, not fatal.
big=$TMP/probe-96.json
"$probe" --json --type blk --config-size 96 "$sock" >"$big" 2>"$TMP/probe-96.err" ||
	fail "probe with --config-size 96 exited $?"
jq_check "$big" '.config_refused == true and .config == null and .queue_num == 2' \
	"GET_CONFIG of 96 bytes refused, the rest reported"
grep -q 'refused GET_CONFIG of 96 bytes' "$TMP/probe-96.err" || fail "no warning on stderr"

# The probe asks questions only: the image is untouched and still sparse.
[ "$(stat -c %s "$img")" -eq "$size" ] || fail "image size changed"
[ "$(stat -c %b "$img")" -eq 0 ] || fail "image gained blocks"
echo "probe-qsd: all checks passed"
