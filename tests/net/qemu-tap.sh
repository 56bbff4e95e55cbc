#!/bin/bash
# QEMU 7.2 (TCG) boots the Debian 6.12 guest with virtio-net-pci on `-netdev vhost-user`, served
# by our vhost-user-net bridged to a tap in a private network namespace. Checked:
#   - raw frames both ways, every byte (netcheck raw-guest in the guest, raw-host on the tap);
#   - ping from the guest's eth0 (10.99.0.2) to the tap (10.99.0.1);
#   - a TCP stream each way, every byte (netcheck tcp-guest / tcp-host), which with offloads
#     negotiated carries checksum-offloaded and TSO frames through the tap;
#   - the features the guest negotiated, the server's counters and a clean SIGTERM exit.
#
#   qemu-tap.sh VHOST_USER_NET NETCHECK [basic|no-offload|mq|mtu]
#
# virtio-net-pci needs vectors=0 under TCG: with MSI-X, QEMU 7.2 segfaults at DRIVER_OK.
. "$(dirname "$0")/../devices/lib.sh"

NET=${1:?vhost-user-net}
NETCHECK=${2:?netcheck}
VARIANT=${3:-basic}
FRAMES=500
TCP_BYTES=$((2 * 1024 * 1024))
need qemu-system-x86_64 ip "$NET" "$NETCHECK"

srv_args=() qemu_net="" qemu_dev="" smp=1 pairs=1 tcp_cpu="" maxframe=1514
case $VARIANT in
basic) ;;
no-offload) srv_args=(--no-offload) ;;
# The TCP stream runs on the guest's second CPU, so it leaves by the second TX queue (XPS) and
# the tap steers its answers to the queue its flow came in on: both pairs carry frames.
mq) pairs=2 smp=2 srv_args=(--queue-pairs=2) qemu_net=",queues=2" qemu_dev=",mq=on"
	tcp_cpu="taskset 2" ;;
# MTU offered (--mtu) and set by QEMU's host_mtu: QEMU sends NET_SET_MTU, we set the tap's.
mtu) srv_args=(--mtu=1400) qemu_dev=",host_mtu=1400" maxframe=1414 ;;
*) fail "unknown variant $VARIANT" ;;
esac

NS=vhnet$$
TAP=vhn$$
TAP=${TAP:0:15}
ip netns add "$NS" || fail "cannot create network namespace $NS"
net_cleanup() {
	cleanup
	ip netns del "$NS" 2>/dev/null
}
trap net_cleanup EXIT

SOCK=$WORK/net.sock
# The server runs in the namespace, so the tap it creates is there; the socket is a file.
start_server server "$SOCK" ip netns exec "$NS" "$NET" -v --tap="$TAP" --socket-path="$SOCK" \
	--mac=52:54:00:12:34:56 ${srv_args[@]+"${srv_args[@]}"}
ip -n "$NS" link set lo up && ip -n "$NS" addr add 10.99.0.1/24 dev "$TAP" &&
	ip -n "$NS" link set "$TAP" up || fail "cannot configure $TAP in $NS"
ok "tap $TAP up in namespace $NS"

ip netns exec "$NS" "$NETCHECK" raw-host "$TAP" "$FRAMES" "$maxframe" >"$WORK/raw-host.log" 2>&1 &
RAW_PID=$!
DEV_PIDS+=("$RAW_PID")
ip netns exec "$NS" "$NETCHECK" tcp-host 10.99.0.1 5001 "$TCP_BYTES" >"$WORK/tcp-host.log" 2>&1 &
TCP_PID=$!
DEV_PIDS+=("$TCP_PID")

GUEST_MEM=512M
LIBVHOST_GUEST_QEMU_ARGS="-object memory-backend-memfd,id=mem,size=$GUEST_MEM,share=on \
-numa node,memdev=mem -chardev socket,id=n0,path=$SOCK \
-netdev vhost-user,id=net0,chardev=n0$qemu_net \
-device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,vectors=0,romfile=$qemu_dev" \
	"$LIBVHOST_SOURCE_ROOT/scripts/guest/run.sh" --kernel 6.12 --mem "$GUEST_MEM" --smp "$smp" \
	--timeout 150 --modules virtio_net --file "$NETCHECK:/vmrun/files/netcheck" -c "set -e
echo features \$(cat /sys/bus/virtio/drivers/virtio_net/virtio*/features)
ip link set eth0 up
echo mtu \$(cat /sys/class/net/eth0/mtu)
/vmrun/files/netcheck raw-guest eth0 $FRAMES $maxframe
ip addr add 10.99.0.2/24 dev eth0
ping -c 3 -W 5 10.99.0.1
$tcp_cpu /vmrun/files/netcheck tcp-guest 10.99.0.1 5001 $TCP_BYTES
echo queues \$(ls /sys/class/net/eth0/queues | tr '\n' ' ')
grep eth0 /proc/net/dev" >"$WORK/guest.out" 2>&1 </dev/null
GUEST_RC=$?
sed 's/^/  guest| /' "$WORK/guest.out"
[ "$GUEST_RC" = 0 ] || fail "guest checks failed (exit $GUEST_RC)"

wait "$RAW_PID" || fail "host side of the raw frames failed: $(cat "$WORK/raw-host.log")"
cat "$WORK/raw-host.log"
wait "$TCP_PID" || fail "host side of the TCP stream failed: $(cat "$WORK/tcp-host.log")"
ok "raw frames and TCP stream checked on both sides"
grep -q ' 0% packet loss' "$WORK/guest.out" || fail "ping lost packets"
ok "ping from the guest to the tap"

# The features the guest driver negotiated (a string of 0/1 per bit, bit 0 first).
feat=$(sed -n 's/.*features \([01]*\).*/\1/p' "$WORK/guest.out" | head -n 1)
[ -n "$feat" ] || fail "the guest did not show its features"
bit() { [ "${feat:$1:1}" = 1 ]; }
bit 32 || fail "VERSION_1 not negotiated"
bit 15 || fail "MRG_RXBUF not negotiated"
if [ "$VARIANT" = no-offload ]; then
	for b in 0 1 7 8 11 12; do bit $b && fail "offload bit $b negotiated with --no-offload"; done
	ok "no offload negotiated"
else
	for b in 0 1 7 8 11 12; do bit $b || fail "offload bit $b not negotiated"; done
	ok "CSUM, GUEST_CSUM, GUEST_TSO4/6, HOST_TSO4/6 negotiated"
fi
if [ "$VARIANT" = mq ]; then
	bit 22 || fail "MQ not negotiated"
	grep -q 'queues.*rx-1 .*tx-1' "$WORK/guest.out" || fail "the guest did not use 2 queue pairs"
	n=$(grep -c 'ring [0-9] .* started' "$WORK/server.log")
	[ "$n" -ge 4 ] || fail "only $n rings started"
	ok "2 queue pairs in the guest, $n rings started"
fi

if [ "$VARIANT" = mtu ]; then
	bit 3 || fail "MTU not negotiated"
	grep -q 'mtu 1400' "$WORK/guest.out" || fail "the guest's eth0 MTU is not 1400"
	grep -q 'NET_SET_MTU 1400: tap MTU set' "$WORK/server.log" || fail "no NET_SET_MTU 1400"
	ip -n "$NS" link show "$TAP" | grep -q 'mtu 1400' || fail "the tap's MTU is not 1400"
	ok "MTU 1400: offered, negotiated, NET_SET_MTU applied to the tap"
fi

stop_server "$SERVER_PID"
[ "$STOP_RC" = 0 ] || fail "the server exited with $STOP_RC after SIGTERM"
grep ': stats: ' "$WORK/server.log" | tail -n 1
rx=$(stat_of "$WORK/server.log" rx_frames)
tx=$(stat_of "$WORK/server.log" tx_frames)
[ "${rx:-0}" -ge "$FRAMES" ] && [ "${tx:-0}" -ge "$FRAMES" ] ||
	fail "server counted rx ${rx:-?} tx ${tx:-?}, fewer than $FRAMES"
for k in tx_malformed tx_errors rx_too_big rx_bad_buf rx_errors faults; do
	[ "$(stat_of "$WORK/server.log" "$k")" = 0 ] || fail "server counter $k is not 0"
done
ok "server: $rx frames to the guest, $tx from it, no drops or faults"
if [ "$VARIANT" = mq ]; then
	p1=$(grep ': stats: ' "$WORK/server.log" | tail -n 1 | grep -o 'pair1=[0-9]*/[0-9]*')
	p1rx=$(echo "$p1" | sed 's|pair1=\([0-9]*\)/.*|\1|')
	p1tx=$(echo "$p1" | sed 's|.*/||')
	[ "${p1rx:-0}" -gt 0 ] && [ "${p1tx:-0}" -gt 0 ] || fail "pair 1 carried no frames ($p1)"
	ok "pair 1 carried frames both ways ($p1)"
fi
txg=$(stat_of "$WORK/server.log" tx_gso)
rxg=$(stat_of "$WORK/server.log" rx_gso)
if [ "$VARIANT" = no-offload ]; then
	[ "$txg" = 0 ] && [ "$rxg" = 0 ] || fail "GSO frames without offloads ($txg out, $rxg in)"
else
	# The TCP streams went as TSO frames through the tap, both ways.
	[ "${txg:-0}" -gt 0 ] && [ "${rxg:-0}" -gt 0 ] ||
		fail "no GSO frames passed ($txg from the guest, ${rxg} to it)"
	ok "GSO frames passed both ways: $txg from the guest, $rxg to it"
fi
echo "PASS: qemu-tap-$VARIANT ($(elapsed) s)"
