#!/bin/sh
# SPDX-License-Identifier: MIT
# The one benchmark command: builds libvhost with -Dbench=true into its own directory, then
# runs every case (bench/bench.py) and writes bench/results/<date>.md.
#
#   bench/run.sh                 everything (about 30-60 minutes)
#   bench/run.sh --quick         main table only, counts / 5 (about 10 minutes)
#   bench/run.sh --help          the other options (--only REGEX, --no-wall, ...)
#
# Needs: meson, ninja, a C compiler, valgrind, python3; for the anchors dpdk-testpmd (Debian
# dpdk-dev) and qemu-storage-daemon (qemu-system-common). BUILD overrides the build directory.
# BENCH_REV=<commit> measures that commit, exported from git, instead of the work tree (whose
# uncommitted changes the report lists otherwise).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD:-${TMPDIR:-/tmp}/libvhost-bench}
src=$root
if [ -n "${BENCH_REV:-}" ]; then
	src=$build-src
	build=$build-rev
	rm -rf "$src" "$build"
	mkdir -p "$src"
	git -C "$root" archive "$BENCH_REV" | tar -x -C "$src"
fi

for tool in meson ninja valgrind callgrind_control python3 taskset; do
	command -v "$tool" >/dev/null 2>&1 || { echo "bench/run.sh: $tool is missing" >&2; exit 2; }
done
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" -Dbench=true -Dtools=true -Dtests=false >/dev/null
else
	meson configure "$build" -Dbench=true -Dtools=true >/dev/null
fi
ninja -C "$build" >/dev/null
# Bounded: the whole run is stopped after two hours whatever happens.
exec timeout --signal=INT 7200 python3 "$here/bench.py" --build "$build" "$@"
