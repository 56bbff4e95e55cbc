#!/bin/bash
# vhost-user-net's command line: --help, --print-capabilities (the schema's JSON, everything
# else ignored), the description file, bad options (exit 2, one line naming the problem), a tap
# it cannot open (exit 1), SIGUSR1 statistics with the device's counters, SIGTERM clean exit
# with the socket removed and a last statistics line.
#
#   cli.sh VHOST_USER_NET BUILD_TOOLS_DIR
. "$(dirname "$0")/../devices/lib.sh"

NET=${1:?vhost-user-net}
TOOLS=${2:?build tools dir}
need "$NET" jq

# expect_rc RC PATTERN CMD...: CMD exits with RC and its output matches PATTERN (grep -E).
expect_rc() {
	local want=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; output: $out"
	echo "$out" | grep -Eq -- "$pat" || fail "'$*' said '$out', expected /$pat/"
	[ "$want" = 0 ] || [ "$(echo "$out" | wc -l)" = 1 ] || fail "'$*': more than one line: $out"
	ok "${*:2} -> $rc: $(echo "$out" | head -n 1)"
}

out=$("$NET" --help) || fail "--help failed"
for o in --socket-path=PATH --fd=FD --print-capabilities --tap=NAME --echo --queue-pairs=N \
	--mac=MAC --mtu=N --no-offload --no-mrg-rxbuf SIGUSR1; do
	echo "$out" | grep -q -- "$o" || fail "--help does not mention $o"
done
ok "--help lists the conventions' options and the device's own"

want='{
  "type": "net"
}'
[ "$("$NET" --print-capabilities)" = "$want" ] || fail "capabilities: $("$NET" --print-capabilities)"
[ "$("$NET" --tap=/bad --bogus --print-capabilities extra)" = "$want" ] ||
	fail "--print-capabilities must ignore other options"
ok "--print-capabilities prints {\"type\": \"net\"} and ignores the rest"

desc=$TOOLS/50-libvhost-net.json
[ -f "$desc" ] || fail "no description file $desc"
[ "$(jq -r .type "$desc")" = net ] || fail "description type: $(jq -r .type "$desc")"
case $(jq -r .binary "$desc") in /*/vhost-user-net) ;; *) fail "description binary: $(jq -r .binary "$desc")" ;; esac
jq -e '.description | length > 0' "$desc" >/dev/null || fail "description text missing"
ok "description file: type net, absolute binary"

S=$WORK/net.sock
expect_rc 2 'give --tap=NAME or --echo' "$NET" --socket-path="$S"
expect_rc 2 'exclude each other' "$NET" --echo --tap=x0 --socket-path="$S"
expect_rc 2 'not an interface name' "$NET" --tap=a/b --socket-path="$S"
expect_rc 2 'not an interface name' "$NET" --tap=abcdefghijklmnop --socket-path="$S"
expect_rc 2 'not xx:xx:xx:xx:xx:xx' "$NET" --echo --mac=52:54:00:12:34 --socket-path="$S"
expect_rc 2 'multicast' "$NET" --echo --mac=01:00:5e:00:00:01 --socket-path="$S"
expect_rc 2 'queue-pairs' "$NET" --echo --queue-pairs=0 --socket-path="$S"
expect_rc 2 'queue-pairs' "$NET" --echo --queue-pairs=129 --socket-path="$S"
expect_rc 2 'mtu' "$NET" --echo --mtu=67 --socket-path="$S"
expect_rc 2 'mtu' "$NET" --echo --mtu=65536 --socket-path="$S"
expect_rc 2 'socket-path|fd|connect' "$NET" --echo
# A tap name that exists as another kind of interface cannot be opened: exit 1, said why.
expect_rc 1 'TUNSETIFF' "$NET" --tap=lo --socket-path="$S"

start_server server "$S" "$NET" --echo --queue-pairs=2 --mac=52:54:00:12:34:56 --mtu=9000 \
	--socket-path="$S"
kill -USR1 "$SERVER_PID"
for _ in $(seq 50); do grep -q ': stats: ' "$WORK/server.log" && break; sleep 0.1; done
grep ': stats: ' "$WORK/server.log" | grep -q 'net: rx_frames=0 .*tx_malformed=0.*pair0=0/0 pair1=0/0' ||
	fail "SIGUSR1: no statistics line with the device's counters: $(cat "$WORK/server.log")"
ok "SIGUSR1: $(grep ': stats: ' "$WORK/server.log" | tail -n 1 | cut -c1-100)..."
stop_server "$SERVER_PID"
[ "$STOP_RC" = 0 ] || fail "exit $STOP_RC after SIGTERM"
[ -e "$S" ] && fail "the socket was left behind"
[ "$(grep -c ': stats: ' "$WORK/server.log")" = 2 ] || fail "no statistics line at exit"
ok "SIGTERM: exit 0, socket removed, statistics at exit"
echo "PASS: net-cli ($(elapsed) s)"
