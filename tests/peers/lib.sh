# shellcheck shell=bash
# Shared helpers for the real-peer tests (sourced). Each test starts its own peer on a socket in
# a private temporary directory; cleanup() kills every peer started with start_peer and removes
# the directory whatever way the test ends.

set -euo pipefail

PEER_PIDS=()
TMP=$(mktemp -d /tmp/vhpeer-XXXXXX)

cleanup() {
	local pid
	for pid in "${PEER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PEER_PIDS[@]}"; do
		# bounded wait: SIGKILL whatever ignores SIGTERM for 5 s
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# need PROGRAM...: a missing peer is a failure, never a skip
need() {
	local p
	for p in "$@"; do
		if [ "${p#/}" != "$p" ]; then
			[ -x "$p" ] || fail "$p is not installed (run scripts/deps.sh)"
		else
			command -v "$p" >/dev/null || fail "$p is not installed (run scripts/deps.sh)"
		fi
	done
}

# start_peer LOGFILE CMD...: runs CMD in the background and records its pid
start_peer() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 </dev/null &
	PEER_PIDS+=($!)
	# shellcheck disable=SC2034 # read by the tests
	LAST_PEER=$!
}

# wait_socket PATH PID: until PATH is a socket (10 s), failing early if PID died
wait_socket() {
	for _ in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# jq_check FILE FILTER DESCRIPTION: FILTER must evaluate to true
jq_check() {
	if [ "$(jq -r "$2" "$1")" != true ]; then
		echo "--- $1:" >&2
		cat "$1" >&2
		fail "$3 ($2)"
	fi
	echo "ok: $3"
}

# has_names FILE FIELD NAME...: every NAME is in the JSON array FIELD
has_names() {
	local f=$1 field=$2 n
	shift 2
	for n in "$@"; do
		jq_check "$f" "(.$field | index(\"$n\")) != null" "$field has $n"
	done
}
