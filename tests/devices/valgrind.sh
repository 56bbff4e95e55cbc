#!/bin/bash
# The device servers under valgrind (memcheck) on the paths valgrind can follow: the blk
# server's synchronous engine and --null, and the rng server, driven by the request tests.
# Any memory error, or a leak at exit (definite, indirect or possible), fails: the servers
# exit through SIGTERM, which must free everything.
#
#   valgrind.sh TEST_BLK_SERVER VHOST_USER_BLK TEST_RNG_SERVER VHOST_USER_RNG
. "$(dirname "$0")/lib.sh"

TBLK=${1:?} BLK=${2:?} TRNG=${3:?} RNG=${4:?}
need valgrind "$TBLK" "$BLK" "$TRNG" "$RNG"

# The tests start "the server" by path: give them a wrapper that runs it under valgrind.
wrap() {
	cat >"$WORK/$1" <<EOW
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full \\
	--errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \\
	--track-fds=no --log-file="$WORK/$1.%p.vg" "$2" "\$@"
EOW
	chmod +x "$WORK/$1"
}
wrap blk "$BLK"
wrap rng "$RNG"

BLK_TEST_AIO=sync "$TBLK" "$WORK/blk" || fail "blk request tests under valgrind"
"$TRNG" "$WORK/rng" || fail "rng request tests under valgrind"
n=0
for f in "$WORK"/*.vg; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	if [ -s "$f" ]; then
		cat "$f"
		fail "valgrind reported problems ($f)"
	fi
done
[ "$n" -ge 8 ] || fail "only $n server runs were checked"
ok "$n server runs under valgrind: no memory errors, nothing leaked at exit"
echo "PASS: valgrind ($(elapsed) s)"
