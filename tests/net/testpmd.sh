#!/bin/bash
# vhost-user-net in echo mode against DPDK testpmd's net_virtio_user (a vhost-user front-end
# that shares no code with ours). testpmd has two ports: port 0 is virtio-user on our socket,
# port 1 is net_pcap reading frames from a file we generate and writing what it receives to
# another file; `io` forwarding sends port 1's frames out of port 0 and port 0's into port 1's
# file. So every frame crosses our TX ring, comes back on RX of the same pair, and is compared
# byte for byte with what was sent; testpmd's counters and ours must all say N both ways.
#
#   usage: testpmd.sh SERVER PCAPTOOL CASE [FRAMES]
#   CASE: split | packed | mrg0 | mrg1-small | mrg1-small-in-order | packed-mrg1-small-in-order |
#         in-order | packed-in-order | queues2
set -euo pipefail
server=$1 pcaptool=$2 case=$3 frames=${4:-2000}
# shellcheck source=tests/peers/lib.sh
. "$(dirname "$0")/../peers/lib.sh"
need dpdk-testpmd stdbuf "$server" "$pcaptool"

# want_bits / no_bits: virtio feature bits that must / must not be negotiated.
pairs=1 vu_args="" tp_args=() srv_args=() maxlen=1514 layout=split want_bits="32" no_bits=""
start_cmds=""
case $case in
split) vu_args=",in_order=0" no_bits="34 35" ;;
packed) vu_args=",packed_vq=1,in_order=0" layout=packed want_bits="32 34" no_bits="35" ;;
mrg0) vu_args=",mrg_rxbuf=0,in_order=0" no_bits="15 35" ;;
# Small mbufs: each RX buffer holds 384 bytes, so larger frames span several buffers and the
# server must spread them (num_buffers in the header).
mrg1-small) vu_args=",mrg_rxbuf=1,in_order=0"; tp_args=(--mbuf-size=512 --disable-device-start)
	start_cmds='port config 0 rx_offload scatter on\nport start all\n' 
	want_bits="15 32" no_bits="35" ;;
mrg1-small-in-order) vu_args=",mrg_rxbuf=1,in_order=1"; tp_args=(--mbuf-size=512 --disable-device-start)
	start_cmds='port config 0 rx_offload scatter on\nport start all\n' want_bits="15 32 35" ;;
# Packed with multi-segment TX frames: DPDK 22.11 sends them through an indirect table whose
# header entry keeps the WRITE flag its initialisation gave it (a device-writable descriptor
# before readable ones, which we, QEMU and the kernel refuse as a broken ring), so these cases
# run without indirect descriptors.
packed-mrg1-small) vu_args=",packed_vq=1,mrg_rxbuf=1,in_order=0" layout=packed
	tp_args=(--mbuf-size=512 --disable-device-start) want_bits="15 32 34" no_bits="28 35"
	start_cmds='port config 0 rx_offload scatter on\nport start all\n' srv_args=(--no-indirect) ;;
packed-mrg1-small-in-order) vu_args=",packed_vq=1,mrg_rxbuf=1,in_order=1" layout=packed
	tp_args=(--mbuf-size=512 --disable-device-start) want_bits="15 32 34 35" no_bits="28"
	start_cmds='port config 0 rx_offload scatter on\nport start all\n' srv_args=(--no-indirect) ;;
in-order) vu_args=",in_order=1" want_bits="32 35" ;;
packed-in-order) vu_args=",packed_vq=1,in_order=1" layout=packed want_bits="32 34 35" ;;
queues2) pairs=2; vu_args=",queues=2"; tp_args=(--rxq=2 --txq=2) ;;
*) fail "unknown case '$case'" ;;
esac

sock=$TMP/net.sock
prefix=vhnet$$
rx_pcaps="" tx_pcaps=""
for q in $(seq 0 $((pairs - 1))); do
	"$pcaptool" gen "$TMP/in$q.pcap" "$frames" $((q + 11)) 60 "$maxlen" || fail "pcaptool gen"
	rx_pcaps+=",rx_pcap=$TMP/in$q.pcap"
	tx_pcaps+=",tx_pcap=$TMP/out$q.pcap"
done

start_peer "$TMP/server.log" "$server" -v --echo --queue-pairs="$pairs" --socket-path="$sock" \
	${srv_args[@]+"${srv_args[@]}"}
spid=$LAST_PEER
wait_socket "$sock" "$spid" || { cat "$TMP/server.log" >&2; fail "the server did not listen"; }

# testpmd busy-polls a core: let another test's (or a benchmark's) testpmd finish first.
for i in $(seq 240); do
	pgrep -x dpdk-testpmd >/dev/null || break
	[ "$i" = 1 ] && echo "waiting for another dpdk-testpmd to finish (at most 120 s)"
	sleep 0.5
done

# Retry instead of dropping when the virtio TX ring is full (our server runs on a kick, not
# polling); no flush of RX queues at start, it would swallow the pcap frames.
printf "${start_cmds}set fwd io retry\nset burst tx delay 20 retry 50000\n" >"$TMP/cmds"
mkfifo "$TMP/stdin"
# shellcheck disable=SC2016 # expanded by the inner shell
start_peer "$TMP/testpmd.log" bash -c 'stdin=$1; shift; exec "$@" <"$stdin"' testpmd \
	"$TMP/stdin" stdbuf -oL dpdk-testpmd --no-pci --no-huge -m 512 --file-prefix="$prefix" -l 0,1 \
	--vdev "net_virtio_user0,path=$sock$vu_args" \
	--vdev "net_pcap0$rx_pcaps$tx_pcaps" \
	-- --forward-mode=io --nb-cores=1 --total-num-mbufs=16384 --no-flush-rx \
	--cmdline-file="$TMP/cmds" "${tp_args[@]}"
tpid=$LAST_PEER
exec 3>"$TMP/stdin"
cleanup_dpdk() {
	local rc=$?
	{ exec 3>&-; } 2>/dev/null || true
	if [ "$rc" != 0 ]; then
		echo "--- testpmd log (tail):" >&2
		tail -n 60 "$TMP/testpmd.log" >&2 || true
		echo "--- server log (tail):" >&2
		grep -v ": stats: " "$TMP/server.log" | tail -n 30 >&2 || true
	fi
	for _ in $(seq 50); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
	cleanup
	rm -rf "/var/run/dpdk/$prefix"
}
trap cleanup_dpdk EXIT

# Forwarding runs once testpmd asks for Enter; then wait until our server echoed every frame.
for _ in $(seq 200); do
	grep -q "Press enter to exit" "$TMP/testpmd.log" && break
	kill -0 "$tpid" 2>/dev/null || { cat "$TMP/testpmd.log" >&2; fail "testpmd exited early"; }
	sleep 0.1
done
grep -q "Press enter to exit" "$TMP/testpmd.log" || { cat "$TMP/testpmd.log" >&2; fail "testpmd did not start forwarding"; }
want=$((frames * pairs))
got=0
for _ in $(seq 100); do
	kill -USR1 "$spid"
	sleep 0.1
	got=$(grep -o 'rx_frames=[0-9]*' "$TMP/server.log" | tail -n 1 | cut -d= -f2)
	[ "${got:-0}" -ge "$want" ] && break
done
sleep 0.3    # let the last frames reach port 1's file
echo >&3     # testpmd stops forwarding, prints its statistics and exits
for _ in $(seq 100); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$tpid" 2>/dev/null && fail "testpmd did not exit"
wait "$tpid" || { cat "$TMP/testpmd.log" >&2; fail "testpmd failed"; }
kill -TERM "$spid"
wait "$spid" || { cat "$TMP/server.log" >&2; fail "the server exited with an error"; }

grep -E "RX-packets|TX-packets|negotiated|Features" "$TMP/testpmd.log" || true
tail -n 1 "$TMP/server.log"

# testpmd's counters: port 0 (virtio-user) sent and received N, port 1 (pcap) too.
stats=$(awk 'BEGIN{p=-1} /Forward statistics for port 0/{p=0} /Forward statistics for port 1/{p=1}
	/Accumulated forward statistics/{p=-1}
	p>=0 && /RX-packets/{rx[p]=$2} p>=0 && /TX-packets/{tx[p]=$2; txd[p]=$4}
	END{print rx[0]+0, tx[0]+0, txd[0]+0, rx[1]+0, tx[1]+0}' "$TMP/testpmd.log")
read -r rx0 tx0 txd0 rx1 tx1 <<<"$stats"
[ "$tx0" = "$want" ] || fail "testpmd sent $tx0 frames to vhost-user-net, not $want"
[ "$txd0" = 0 ] || fail "testpmd dropped $txd0 frames on the virtio TX side"
[ "$rx0" = "$want" ] || fail "testpmd received $rx0 frames from vhost-user-net, not $want"
[ "$rx1" = "$want" ] && [ "$tx1" = "$want" ] || fail "pcap port: rx $rx1 tx $tx1, not $want"
echo "ok: testpmd counted $want frames each way"

# Our counters (the line printed at exit).
line=$(grep 'stats:' "$TMP/server.log" | tail -n 1)
val() { grep -o " $1=[0-9]*" <<<"$line" | cut -d= -f2; }
[ "$(val rx_frames)" = "$want" ] && [ "$(val tx_frames)" = "$want" ] ||
	fail "server counted rx $(val rx_frames) tx $(val tx_frames), not $want"
for k in tx_malformed tx_no_rx tx_errors rx_too_big rx_bad_buf rx_errors faults; do
	[ "$(val "$k")" = 0 ] || fail "server counter $k = $(val "$k")"
done
echo "ok: server counted $want frames each way, no drops or faults"

# What was negotiated is what the case is about.
acked=$(grep -o 'features acked: 0x[0-9a-f]*' "$TMP/server.log" | tail -n 1 | awk '{print $3}')
[ -n "$acked" ] || fail "no SET_FEATURES seen by the server"
for b in $want_bits; do
	if ! (( (acked >> b) & 1 )); then fail "feature bit $b not negotiated (features $acked)"; fi
done
for b in $no_bits; do
	if (( (acked >> b) & 1 )); then fail "feature bit $b negotiated (features $acked)"; fi
done
started=$(grep -c "queue [0-9]* started ($layout" "$TMP/server.log" || true)
[ "$started" -ge $((2 * pairs)) ] || fail "$((2 * pairs)) $layout rings expected, $started started"
echo "ok: features $acked, $started $layout rings"

for q in $(seq 0 $((pairs - 1))); do
	"$pcaptool" cmp "$TMP/in$q.pcap" "$TMP/out$q.pcap" || fail "queue $q: frames differ"
done
if [[ "$case" == *small* ]]; then
	# 384-byte RX buffers: most frames took several (MRG_RXBUF spreading).
	bufs=$(grep -o ' q0=[0-9]*' <<<"$line" | cut -d= -f2)
	[ "${bufs:-0}" -ge $((want * 3 / 2)) ] || fail "only ${bufs:-0} RX buffers for $want frames"
	echo "ok: $want frames took $bufs RX buffers"
fi
if [ "$case" = queues2 ]; then
	# Both pairs carried their own file's frames (per-queue counts in the stats line).
	grep -q "pair0=$frames/$frames pair1=$frames/$frames" <<<"$line" ||
		fail "frames not spread over the pairs as sent: $line"
	echo "ok: each pair echoed its own $frames frames"
fi
echo "testpmd-$case: all checks passed"
