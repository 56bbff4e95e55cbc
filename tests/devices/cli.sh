#!/bin/bash
# The device servers' command line: --help, --print-capabilities (exact JSON, other options
# ignored), the description files, errors for bad options (exit 2, one line naming the
# problem), start-up failures (exit 1), SIGUSR1 statistics, SIGTERM/SIGINT clean exit with
# the socket removed, a live socket not stolen.
#
#   cli.sh VHOST_USER_BLK VHOST_USER_RNG BUILD_TOOLS_DIR
. "$(dirname "$0")/lib.sh"

BLK=${1:?vhost-user-blk}
RNG=${2:?vhost-user-rng}
TOOLS=${3:?build tools dir}
need "$BLK" "$RNG"

# expect_rc RC PATTERN CMD...: CMD exits with RC and its output matches PATTERN (grep -E).
expect_rc() {
	local want=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; output: $out"
	echo "$out" | grep -Eq -- "$pat" || fail "'$*' said '$out', expected /$pat/"
	ok "$(basename "$1") ${*:2} -> $rc: $(echo "$out" | head -n 1)"
}

# --help: exit 0, the spec's options and the device's own are listed.
for b in "$BLK" "$RNG"; do
	out=$("$b" --help) || fail "$b --help failed"
	for o in --socket-path=PATH --fd=FD --print-capabilities --connect=PATH --threads; do
		echo "$out" | grep -q -- "$o" || fail "$b --help does not mention $o"
	done
	"$b" -h | cmp -s - <(echo "$out") || fail "$b -h differs from --help"
done
"$BLK" --help | grep -q -- '--blk-file=PATH' || fail "blk --help lacks --blk-file"
"$BLK" --help | grep -q -- '--read-only' || fail "blk --help lacks --read-only"
ok "--help lists the conventions' options and the devices' own"

# --print-capabilities: exactly the schema's JSON, whatever else is on the command line.
want_blk='{
  "type": "block",
  "features": [
    "read-only",
    "blk-file"
  ]
}'
want_rng='{
  "type": "rng"
}'
[ "$("$BLK" --print-capabilities)" = "$want_blk" ] || fail "blk capabilities: $("$BLK" --print-capabilities)"
[ "$("$BLK" --bogus --blk-file=/nonexistent --print-capabilities extra)" = "$want_blk" ] ||
	fail "--print-capabilities must ignore other options"
[ "$("$RNG" --print-capabilities)" = "$want_rng" ] || fail "rng capabilities"
if command -v python3 >/dev/null; then
	for b in "$BLK" "$RNG"; do
		"$b" --print-capabilities | python3 -m json.tool >/dev/null || fail "$b: invalid JSON"
	done
fi
ok "--print-capabilities prints the schema's JSON and ignores the rest"

# Description files (vhost-user.json VhostUserBackend): type, absolute binary, valid JSON.
for f in 50-libvhost-blk.json:block:vhost-user-blk 50-libvhost-rng.json:rng:vhost-user-rng; do
	IFS=: read -r file type bin <<<"$f"
	[ -f "$TOOLS/$file" ] || fail "$TOOLS/$file missing"
	grep -q "\"type\": \"$type\"" "$TOOLS/$file" || fail "$file: type is not $type"
	grep -Eq "\"binary\": \"/.*/$bin\"" "$TOOLS/$file" || fail "$file: binary is not an absolute path"
	if command -v python3 >/dev/null; then
		python3 -m json.tool "$TOOLS/$file" >/dev/null || fail "$file: invalid JSON"
	fi
done
ok "description files name the type and an absolute binary"

# Bad command lines: exit 2, one message naming the problem.
S=$WORK/x.sock
IMG=$WORK/disk.img
truncate -s 1M "$IMG"
expect_rc 2 "one of --socket-path, --fd or --connect is required" "$BLK" --blk-file="$IMG"
expect_rc 2 "blk-file=PATH \(or --null\) is required" "$BLK" --socket-path="$S"
expect_rc 2 "cannot be combined" "$BLK" --socket-path="$S" --fd=0 --blk-file="$IMG"
expect_rc 2 "cannot be combined" "$BLK" --null --blk-file="$IMG" --socket-path="$S"
expect_rc 2 "unknown option '--bogus'" "$BLK" --bogus
expect_rc 2 "unknown option '-x'" "$RNG" -x
expect_rc 2 "needs a value" "$BLK" --blk-file
expect_rc 2 "unexpected argument 'stray'" "$BLK" --socket-path="$S" --null stray
expect_rc 2 "num-queues=0 is out of range" "$BLK" --null --socket-path="$S" --num-queues=0
expect_rc 2 "num-queues=257 is out of range" "$BLK" --null --socket-path="$S" --num-queues=257
expect_rc 2 "'12x' is not a number" "$BLK" --null --socket-path="$S" --queue-size=12x
expect_rc 2 "needs a number" "$BLK" --null --socket-path="$S" --queue-size=-1
expect_rc 2 "longer than 20 bytes" "$BLK" --null --socket-path="$S" --serial=123456789012345678901
expect_rc 2 "neither io_uring nor sync" "$BLK" --null --socket-path="$S" --aio=posix
expect_rc 2 "not an open file descriptor" "$BLK" --null --fd=99
expect_rc 2 "not a socket" "$BLK" --null --fd=0
expect_rc 2 "max-bytes" "$RNG" --socket-path="$S" --max-bytes=0
ok "bad command lines are refused with exit 2"

# Start-up failures: exit 1 with the reason.
expect_rc 1 "cannot open .*nonexistent" "$BLK" --socket-path="$S" --blk-file="$WORK/nonexistent"
expect_rc 1 "Is a directory" "$BLK" --socket-path="$S" --blk-file="$WORK"
expect_rc 1 "neither a regular file nor a block device" "$BLK" --socket-path="$S" --read-only --blk-file="$WORK"
: >"$WORK/empty.img"
expect_rc 1 "smaller than one sector" "$BLK" --socket-path="$S" --blk-file="$WORK/empty.img"
expect_rc 1 "cannot listen on" "$BLK" --socket-path="$WORK/no/such/dir/s.sock" --null
[ -e "$S" ] && fail "a failed start left $S behind"
ok "start-up failures exit 1"

# Serving: SIGUSR1 prints statistics, a second server does not steal the live socket,
# SIGTERM (blk) and SIGINT (rng) end cleanly with the socket removed.
start_server blk "$S" "$BLK" --socket-path="$S" --blk-file="$IMG"
BPID=$SERVER_PID
kill -USR1 "$BPID"
for _ in $(seq 50); do grep -q ': stats: ' "$WORK/blk.log" && break; sleep 0.1; done
grep -q 'vhost-user-blk: stats: requests=0 .* blk: connections=0 reads=0' "$WORK/blk.log" ||
	fail "no statistics line after SIGUSR1"
kill -0 "$BPID" || fail "SIGUSR1 ended the server"
ok "SIGUSR1 prints a statistics line and the server goes on"
expect_rc 1 "cannot listen on .*: Address already in use" "$BLK" --socket-path="$S" --null
[ -S "$S" ] || fail "the second server removed the live socket"
stop_server "$BPID"
[ "$STOP_RC" = 0 ] || fail "SIGTERM: exit $STOP_RC"
[ -e "$S" ] && fail "the socket was left behind after SIGTERM"
[ "$(grep -c ': stats: ' "$WORK/blk.log")" = 2 ] || fail "no statistics line at exit"
ok "SIGTERM: exit 0, statistics printed, socket removed"

R=$WORK/rng.sock
start_server rng "$R" "$RNG" --socket-path="$R"
kill -INT "$SERVER_PID"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SERVER_PID"
rc=$?
[ "$rc" = 0 ] || fail "rng after SIGINT: exit $rc"
[ -e "$R" ] && fail "the rng socket was left behind"
grep -q 'vhost-user-rng: stats: .* rng: requests=0 bytes=0 errors=0' "$WORK/rng.log" ||
	fail "rng: no statistics at exit"
ok "SIGINT: rng exits 0 with its statistics, socket removed"
echo "PASS: cli ($(elapsed) s)"
