#!/bin/bash
# vhost-user-probe against DPDK testpmd's net_vhost PMD (a vhost-user-net back-end that does
# not use libvhost-user): the type is guessed as net from the feature bits.
#   usage: probe-testpmd.sh PROBE
probe=$1
# shellcheck source=tests/peers/lib.sh
. "$(dirname "$0")/lib.sh"
need dpdk-testpmd jq

sock=$TMP/net.sock
prefix=vhprobe$$
# Interactive mode with the ports started and forwarding stopped: nothing busy-polls. The FIFO
# keeps stdin open until we send "quit".
mkfifo "$TMP/cmd"
# shellcheck disable=SC2016 # expanded by the inner shell
start_peer "$TMP/testpmd.log" bash -c 'exec dpdk-testpmd --no-pci --no-huge -m 512 \
	--file-prefix="$1" --vdev "net_vhost0,iface=$2,queues=2" -- -i --nb-cores=1 \
	--total-num-mbufs=2048 <"$3"' testpmd "$prefix" "$sock" "$TMP/cmd"
tpid=$LAST_PEER
exec 3>"$TMP/cmd"
cleanup_dpdk() {
	echo quit >&3 2>/dev/null || true
	exec 3>&-
	for _ in $(seq 50); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
	cleanup
	rm -rf "/var/run/dpdk/$prefix"
}
trap cleanup_dpdk EXIT
wait_socket "$sock" "$tpid" || { cat "$TMP/testpmd.log" >&2; fail "testpmd did not listen"; }

out=$TMP/probe.json
"$probe" --json --timeout 10 "$sock" >"$out" || { cat "$TMP/testpmd.log" >&2; fail "probe exited $?"; }
cat "$out"

jq_check "$out" '.type == "net" and .type_guessed == true' "type guessed as net"
has_names "$out" feature_names CSUM GUEST_CSUM MRG_RXBUF CTRL_VQ CTRL_RX GUEST_ANNOUNCE MQ \
	RING_INDIRECT_DESC PROTOCOL_FEATURES VERSION_1 RING_PACKED IN_ORDER
has_names "$out" protocol_feature_names MQ REPLY_ACK STATUS
jq_check "$out" '.protocol_features_accepted == .protocol_features_offered' "all offered bits accepted"
jq_check "$out" '.queue_num >= 2' "GET_QUEUE_NUM covers the 2 queues"
jq_check "$out" '.max_mem_slots == null' "no CONFIGURE_MEM_SLOTS, no GET_MAX_MEM_SLOTS"
jq_check "$out" '.config == null' "no CONFIG, no GET_CONFIG"
# testpmd logs each message it read: the probe sent exactly QEMU's init questions.
for m in GET_FEATURES GET_PROTOCOL_FEATURES SET_PROTOCOL_FEATURES GET_QUEUE_NUM; do
	grep -q "read message VHOST_USER_$m\$" "$TMP/testpmd.log" || fail "testpmd did not see $m"
	echo "ok: testpmd saw $m"
done
if grep 'read message' "$TMP/testpmd.log" | grep -qvE 'VHOST_USER_(GET_FEATURES|GET_PROTOCOL_FEATURES|SET_PROTOCOL_FEATURES|GET_QUEUE_NUM)$'; then
	fail "the probe sent something beyond the handshake"
fi
echo "probe-testpmd: all checks passed"
