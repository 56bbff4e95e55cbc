# shellcheck shell=bash
# Shared by the device-server tests (sourced). Each test works in its own temporary directory,
# starts its servers on sockets there, and cleanup() kills whatever it started (by pid) and
# removes the directory however the test ends. A missing program (QEMU, the guest kernel) is a
# failure, never a skip.

set -uo pipefail

: "${LIBVHOST_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export PATH=$PATH:/usr/sbin:/sbin
DEV_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/libvhost-dev.XXXXXX") || exit 1
T_START=$(date +%s.%N)

cleanup() {
	local pid
	for pid in ${DEV_PIDS[@]+"${DEV_PIDS[@]}"}; do
		kill "$pid" 2>/dev/null
	done
	for pid in ${DEV_PIDS[@]+"${DEV_PIDS[@]}"}; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

fail() {
	echo "FAIL: $*"
	local f
	for f in "$WORK"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $(basename "$f") (tail) ----"
		tail -n 30 "$f"
	done
	exit 1
}

ok() { echo "ok: $*"; }

elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

need() {
	local p
	for p in "$@"; do
		if [ "${p#/}" != "$p" ]; then
			[ -x "$p" ] || fail "$p is missing"
		else
			command -v "$p" >/dev/null || fail "$p is not installed (scripts/deps.sh installs it)"
		fi
	done
}

# start_server NAME SOCKET CMD...: runs CMD in the background (output in $WORK/NAME.log),
# waits for SOCKET, sets SERVER_PID.
start_server() {
	local name=$1 sock=$2
	shift 2
	"$@" >>"$WORK/$name.log" 2>&1 </dev/null &
	SERVER_PID=$!
	DEV_PIDS+=("$SERVER_PID")
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || fail "$name exited before listening on $sock"
		sleep 0.1
	done
	fail "$name did not listen on $sock within 10 s"
}

# stop_server PID: SIGTERM, waits up to 10 s; sets STOP_RC to the exit status (or fails).
stop_server() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || fail "server $pid is already gone"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "server $pid did not stop within 10 s of SIGTERM"
	wait "$pid"
	STOP_RC=$?
	# Sanitizer builds: UBSan reports without failing the process; any report fails the test.
	if grep -q -E 'runtime error:|ERROR: [A-Za-z]*Sanitizer' "$WORK"/*.log 2>/dev/null; then
		fail "sanitizer report in a server log"
	fi
}

# stat_of LOG FIELD: the value of FIELD=N in the last statistics line of LOG.
stat_of() {
	grep ': stats: ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# run_guest OUTFILE SMP QEMU-DEVICE-ARGS COMMAND [run.sh options...]: boots the 6.12 guest with
# memfd guest RAM shared with the back-ends and runs the busybox shell COMMAND; blkcheck is
# at /vmrun/files/blkcheck. Sets GUEST_RC. start_guest takes the same arguments, runs the
# guest in the background and sets GUEST_PID (run.sh itself: SIGTERM stops its QEMU).
GUEST_MEM=512M
start_guest() {
	local out=$1 smp=$2 qargs=$3 cmd=$4
	shift 4
	LIBVHOST_GUEST_QEMU_ARGS="-object memory-backend-memfd,id=mem,size=$GUEST_MEM,share=on -numa node,memdev=mem $qargs" \
		"$LIBVHOST_SOURCE_ROOT/scripts/guest/run.sh" --kernel 6.12 --mem "$GUEST_MEM" \
		--smp "$smp" --timeout "${GUEST_TIMEOUT:-150}" --file "$BLKCHECK:/vmrun/files/blkcheck" \
		"$@" -c "$cmd" >"$out" 2>&1 </dev/null &
	GUEST_PID=$!
	DEV_PIDS+=("$GUEST_PID")
}

run_guest() {
	local out=$1
	start_guest "$@"
	wait "$GUEST_PID"
	GUEST_RC=$?
	sed 's/^/  guest| /' "$out"
}
