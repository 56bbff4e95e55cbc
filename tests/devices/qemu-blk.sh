#!/bin/bash
# QEMU 7.2 (TCG) boots the Debian 6.12 guest with vhost-user-blk-pci on our vhost-user-blk; the
# guest moves data with O_DIRECT and the host checks the image file byte for byte.
#
#   qemu-blk.sh VARIANT VHOST_USER_BLK BLKCHECK
#
#   basic   pattern write + read back, GET_ID (serial), discard, write-zeroes; the host finds
#           the pattern, holes and zeroes in the image and the counters in the statistics
#   mq      num-queues=2 on two vCPUs, one writer per CPU: both queues carry requests
#   packed  as basic's data part with packed=on rings
#   ro      --read-only: the guest sees a read-only disk, reads the host's pattern, a write
#           fails, the image is unchanged
#   sync    basic's data part with --aio=sync
#   crash   the server is killed (SIGKILL) four times while the guest writes numbered blocks with
#           O_DIRECT and fdatasync; each time a new server on the same socket takes over (QEMU
#           reconnect=1, the inflight buffer); the guest finishes and every acknowledged block
#           is in the image. Whether a kill catches a request in flight is up to timing; the
#           test reports how many restarts resubmitted one.
#   restart the front-end goes away instead: QEMU is stopped while the guest writes, then a
#           second QEMU boots on the same, still running server and moves data
. "$(dirname "$0")/lib.sh"

VARIANT=${1:?variant}
BLK=${2:?vhost-user-blk}
BLKCHECK=${3:?blkcheck}
need qemu-system-x86_64 "$BLK" "$BLKCHECK"

SOCK=$WORK/blk.sock
IMG=$WORK/disk.img
truncate -s 64M "$IMG" || fail "cannot create $IMG"
SEED=$(( (RANDOM << 16) ^ RANDOM ^ $$ ))
MiB=1048576
B=/vmrun/files/blkcheck
RECONNECT=""
SMP=1
NQ=1
DEVOPTS=""
SERVER_ARGS=()
GUEST_DATA="set -e
test \"\$(cat /sys/block/vda/size)\" = 131072
$B write /dev/vda $MiB $((4 * MiB)) $SEED
$B verify /dev/vda $MiB $((4 * MiB)) $SEED"

case $VARIANT in
basic)
	SERVER_ARGS=(--serial=libvhost-test-01)
	GUEST_CMD="$GUEST_DATA
test \"\$(cat /sys/block/vda/serial)\" = libvhost-test-01 && echo 'serial: libvhost-test-01'
echo \"write cache: \$(cat /sys/block/vda/queue/write_cache)\"
$B write /dev/vda $((16 * MiB)) $((2 * MiB)) $SEED
$B discard /dev/vda $((16 * MiB)) $MiB
$B write /dev/vda $((32 * MiB)) $((2 * MiB)) $SEED
$B zeroout /dev/vda $((32 * MiB)) $MiB
$B zero /dev/vda $((32 * MiB)) $MiB
$B verify /dev/vda $((33 * MiB)) $MiB $SEED"
	;;
mq)
	SMP=2
	NQ=2
	SERVER_ARGS=(--num-queues=2)
	GUEST_CMD="set -e
echo \"hardware queues: \$(ls /sys/block/vda/mq | wc -l)\"
test \"\$(ls /sys/block/vda/mq | wc -l)\" = 2
taskset 1 $B write /dev/vda $MiB $((8 * MiB)) $SEED &
p1=\$!
taskset 2 $B write /dev/vda $((16 * MiB)) $((8 * MiB)) $SEED &
p2=\$!
wait \$p1
wait \$p2
taskset 2 $B verify /dev/vda $MiB $((8 * MiB)) $SEED
taskset 1 $B verify /dev/vda $((16 * MiB)) $((8 * MiB)) $SEED"
	;;
packed)
	DEVOPTS=",packed=on"
	GUEST_CMD=$GUEST_DATA
	;;
sync)
	SERVER_ARGS=(--aio=sync)
	GUEST_CMD=$GUEST_DATA
	;;
ro)
	SERVER_ARGS=(--read-only)
	"$BLKCHECK" write "$IMG" "$MiB" $((4 * MiB)) "$SEED" >/dev/null || fail "host pre-fill"
	GUEST_CMD="set -e
echo \"ro: \$(cat /sys/block/vda/ro)\"
test \"\$(cat /sys/block/vda/ro)\" = 1
$B verify /dev/vda $MiB $((4 * MiB)) $SEED
$B write-fails /dev/vda 0"
	;;
restart)
	NBLOCKS=8000
	GUEST_CMD=$GUEST_DATA
	;;
crash)
	RECONNECT=",reconnect=1"
	SERVER_ARGS=(-v)
	NBLOCKS=8000
	GUEST_CMD="$B blocks /dev/vda $((8 * MiB)) $NBLOCKS $SEED"
	;;
*)
	fail "unknown variant $VARIANT"
	;;
esac

start_server server "$SOCK" "$BLK" --socket-path="$SOCK" --blk-file="$IMG" \
	--num-queues=$NQ ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"}
QARGS="-chardev socket,id=c0,path=$SOCK$RECONNECT -device vhost-user-blk-pci,chardev=c0,num-queues=$NQ$DEVOPTS"

if [ "$VARIANT" = restart ]; then
	start_guest "$WORK/guest1.out" 1 "$QARGS" "$B blocks /dev/vda $((8 * MiB)) $NBLOCKS $SEED" \
		--modules virtio_blk
	n=0
	for _ in $(seq 600); do
		n=$("$BLKCHECK" count "$IMG" $((8 * MiB)) $NBLOCKS "$SEED")
		[ "$n" -ge 300 ] && break
		kill -0 "$GUEST_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ "$n" -ge 300 ] && [ "$n" -lt $NBLOCKS ] || fail "the first guest wrote $n blocks, not a part"
	kill -TERM "$GUEST_PID"   # run.sh stops its QEMU: the connection drops mid-I/O
	wait "$GUEST_PID" 2>/dev/null
	ok "first QEMU stopped after $n blocks"
	kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died with its front-end"
	run_guest "$WORK/guest.out" 1 "$QARGS" "$GUEST_CMD" --modules virtio_blk
	[ "$GUEST_RC" = 0 ] || fail "the second guest's checks failed (exit $GUEST_RC)"
	ok "a second QEMU uses the same server"
elif [ "$VARIANT" != crash ]; then
	run_guest "$WORK/guest.out" "$SMP" "$QARGS" "$GUEST_CMD" --modules virtio_blk
	[ "$GUEST_RC" = 0 ] || fail "guest checks failed (exit $GUEST_RC)"
	ok "guest checks passed"
else
	# The guest runs in the background; the host watches its blocks land in the image.
	start_guest "$WORK/guest.out" 1 "$QARGS" "$GUEST_CMD" --modules virtio_blk
	GPID=$GUEST_PID
	# Several kills, each once the guest has made progress since the last restart.
	KILLS=4
	last=0
	for k in $(seq $KILLS); do
		n=0
		for _ in $(seq 600); do
			n=$("$BLKCHECK" count "$IMG" $((8 * MiB)) $NBLOCKS "$SEED")
			[ "$n" -ge $((last + 300)) ] && break
			kill -0 "$GPID" 2>/dev/null || break
			sleep 0.05
		done
		[ "$n" -lt "$NBLOCKS" ] || fail "the guest finished before kill $k"
		[ "$n" -ge $((last + 300)) ] || fail "the guest wrote only $n blocks before kill $k"
		kill -9 "$SERVER_PID"
		wait "$SERVER_PID" 2>/dev/null
		ok "kill $k: server killed with SIGKILL after $n blocks"
		last=$n
		start_server "server$((k + 1))" "$SOCK" "$BLK" --socket-path="$SOCK" --blk-file="$IMG" \
			--num-queues=$NQ ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"}
	done
	wait "$GPID"
	GUEST_RC=$?
	sed 's/^/  guest| /' "$WORK/guest.out" | grep -v '  guest| ACK ' | tail -n 20
	[ "$GUEST_RC" = 0 ] || fail "the guest did not finish its writes (exit $GUEST_RC)"
	grep -q "all $NBLOCKS blocks written" "$WORK/guest.out" || fail "the guest did not report all blocks"
	"$BLKCHECK" acked "$IMG" $((8 * MiB)) "$SEED" "$WORK/guest.out" || fail "acknowledged writes are missing"
	"$BLKCHECK" verify "$IMG" $((8 * MiB)) $((NBLOCKS * 4096)) "$SEED" >/dev/null ||
		fail "the image does not hold all $NBLOCKS blocks"
	resubmitted=0
	for k in $(seq 2 $((KILLS + 1))); do
		grep -q 'front-end connected' "$WORK/server$k.log" || fail "QEMU never reconnected to server $k"
		if grep -q 'requests in flight before the restart' "$WORK/server$k.log"; then
			resubmitted=$((resubmitted + 1))
			grep -o 'queue [0-9]*: [0-9]* requests in flight before the restart' "$WORK/server$k.log"
		fi
	done
	ok "QEMU reconnected after each of $KILLS kills; $resubmitted restarts resubmitted requests the killed server had in flight"
fi

# The guest has powered off, so QEMU is gone: stop the server and read its statistics.
stop_server "$SERVER_PID"
[ "$STOP_RC" = 0 ] || fail "the server exited with $STOP_RC after SIGTERM"
[ -e "$SOCK" ] && fail "the socket $SOCK was left behind"
LOG=$WORK/server.log
[ "$VARIANT" = crash ] && LOG=$WORK/server$((KILLS + 1)).log
grep ': stats: ' "$LOG" | tail -n 1
ok "clean exit on SIGTERM, socket removed"

case $VARIANT in
basic)
	"$BLKCHECK" verify "$IMG" "$MiB" $((4 * MiB)) "$SEED" || fail "pattern not in the image"
	"$BLKCHECK" zero "$IMG" $((16 * MiB)) "$MiB" || fail "the discarded range still holds data"
	"$BLKCHECK" verify "$IMG" $((17 * MiB)) "$MiB" "$SEED" || fail "discard went too far"
	"$BLKCHECK" zero "$IMG" $((32 * MiB)) "$MiB" || fail "write-zeroes left data"
	"$BLKCHECK" verify "$IMG" $((33 * MiB)) "$MiB" "$SEED" || fail "write-zeroes went too far"
	for f in writes reads discards write_zeroes get_id flushes; do
		v=$(stat_of "$LOG" $f)
		[ -n "$v" ] && [ "$v" -gt 0 ] || fail "statistics: $f=${v:-missing}"
	done
	[ "$(stat_of "$LOG" ioerr)" = 0 ] || fail "statistics: I/O errors"
	ok "image holds the pattern, the hole and the zeroes; counters agree"
	;;
mq)
	"$BLKCHECK" verify "$IMG" "$MiB" $((8 * MiB)) "$SEED" || fail "first writer's data"
	"$BLKCHECK" verify "$IMG" $((16 * MiB)) $((8 * MiB)) "$SEED" || fail "second writer's data"
	line=$(grep ': stats: ' "$LOG" | tail -n 1)
	for q in q0 q1; do
		echo "$line" | grep -Eq " $q=[1-9]" || fail "queue $q carried no request"
	done
	ok "both queues carried requests; both regions are in the image"
	;;
restart)
	[ "$(stat_of "$LOG" connections)" = 2 ] || fail "statistics: connections=$(stat_of "$LOG" connections)"
	"$BLKCHECK" verify "$IMG" "$MiB" $((4 * MiB)) "$SEED" || fail "pattern not in the image"
	"$BLKCHECK" verify "$IMG" $((8 * MiB)) $((n * 4096)) "$SEED" || fail "the first guest's blocks"
	ok "two connections; both guests' data are in the image"
	;;
packed|sync)
	"$BLKCHECK" verify "$IMG" "$MiB" $((4 * MiB)) "$SEED" || fail "pattern not in the image"
	ok "pattern is in the image"
	;;
ro)
	"$BLKCHECK" verify "$IMG" "$MiB" $((4 * MiB)) "$SEED" || fail "the image changed"
	"$BLKCHECK" zero "$IMG" 0 "$MiB" || fail "the refused write reached the image"
	[ "$(stat_of "$LOG" bytes_written)" = 0 ] || fail "bytes were written to a read-only disk"
	ok "image unchanged"
	;;
esac
echo "PASS: qemu-blk $VARIANT ($(elapsed) s)"
