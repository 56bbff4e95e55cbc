#!/bin/bash
# test.sh - the project's test command: every test layer, under every build that matters.
#
#   usage: scripts/test.sh
#
# Runs, in order:
#   1. scripts/deps.sh                      (packages, guest kernels)
#   2. build/       normal build: suites unit, protocol, peers, guest, fuzz (whatever is registered)
#   3. build-asan/  ASan+UBSan build: suites unit, protocol
#   4. build-fuzz/  clang -Dfuzz=true build (ASan+UBSan): suite fuzz (bounded libFuzzer runs)
#   5. valgrind (memcheck, leaks are errors) over the unit suite's compiled tests in build/
# and ends with one line "N passed, N failed" (exit 1 if anything failed).
#
# With CI=true a skipped test (exit 77) counts as failed, and so does a layer with no tests:
# a missing peer or kernel must never pass silently.
#
# Env: SKIP_DEPS=1 (do not run deps.sh), NO_ASAN=1, NO_FUZZ=1, NO_VALGRIND=1,
#      SUITES="unit protocol" (limit step 2), MESON_TEST_ARGS (extra `meson test` arguments).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

strict=0
[ "${CI:-}" = true ] && strict=1

passed=0
failed=0
skipped=0
failures=()
t_start=$SECONDS

say() { printf '== %s\n' "$*"; }

fail_step() { # label reason
	failed=$((failed + 1))
	failures+=("$1: $2")
	say "FAILED $1: $2"
}

# configure_and_build DIR LABEL [meson options...] ; honours $BUILD_CC for a fresh directory.
configure_and_build() {
	local dir=$1 label=$2 t0=$SECONDS log
	shift 2
	mkdir -p "$root/build-logs"
	log="$root/build-logs/$label.log"
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 ||
			meson setup --wipe "$dir" "$@" >"$log" 2>&1
	else
		rm -rf "$dir"
		CC=${BUILD_CC:-${CC:-cc}} meson setup "$dir" "$@" >"$log" 2>&1
	fi
	local rc=$?
	if [ $rc -eq 0 ]; then
		ninja -C "$dir" >>"$log" 2>&1
		rc=$?
	fi
	if [ $rc -ne 0 ]; then
		tail -n 40 "$log"
		fail_step "$label" "configure/build failed (log: $log)"
		return 1
	fi
	say "$label: built in $((SECONDS - t0)) s"
}

# count_tests DIR SUITE -> number of tests registered in SUITE
count_tests() {
	meson introspect "$1" --tests 2>/dev/null | python3 -c '
import json, sys
suite = sys.argv[1]
try:
    tests = json.load(sys.stdin)
except ValueError:
    tests = []
print(sum(1 for t in tests if any(s.split(":")[-1] == suite for s in t["suite"])))' "$2"
}

# tally LOGJSON LABEL -> adds to the totals, prints failing tests
tally() {
	local out
	out=$(python3 - "$1" "$2" "$strict" <<'PY'
import json, sys
path, label, strict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
ok = bad = skip = 0
names = []
try:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            r = t.get("result", "ERROR")
            if r in ("OK", "EXPECTEDFAIL"):
                ok += 1
            elif r == "SKIP" and not strict:
                skip += 1
                names.append("SKIP %s: %s" % (label, t["name"].split(" / ")[-1]))
            else:
                bad += 1
                names.append("%s %s: %s" % (r, label, t["name"].split(" / ")[-1]))
except FileNotFoundError:
    pass
print(ok, bad, skip)
for n in names:
    print(n)
PY
)
	local first rest ok bad skip
	first=$(head -n 1 <<<"$out")
	rest=$(tail -n +2 <<<"$out")
	read -r ok bad skip <<<"$first"
	passed=$((passed + ok))
	failed=$((failed + bad))
	skipped=$((skipped + skip))
	while IFS= read -r n; do
		[ -n "$n" ] || continue
		case "$n" in SKIP*) say "$n (skipped)";; *) failures+=("$n");; esac
	done <<<"$rest"
	TALLY_OK=$ok
	TALLY_BAD=$bad
}

# testlog DIR LOGBASE -> the JSON log of that run (meson appends the wrapper's name with --wrap)
testlog() {
	local f
	for f in "$1/meson-logs/$2".json "$1/meson-logs/$2"-*.json; do
		[ -f "$f" ] && { echo "$f"; return; }
	done
	echo "$1/meson-logs/$2.json"
}

# run_suite DIR LABEL SUITE [extra meson test args...]
run_suite() {
	local dir=$1 label=$2 suite=$3 t0=$SECONDS n logbase rc
	shift 3
	n=$(count_tests "$dir" "$suite")
	if [ "${n:-0}" -eq 0 ]; then
		if [ $strict -eq 1 ]; then
			fail_step "$label/$suite" "no tests registered"
		else
			say "$label/$suite: no tests registered"
		fi
		return 0
	fi
	logbase="testlog-$label-$suite"
	rm -f "$dir/meson-logs/$logbase"*.json
	say "$label/$suite: running $n test(s)"
	# shellcheck disable=SC2086
	meson test -C "$dir" --suite "$suite" --logbase "$logbase" --print-errorlogs \
		${MESON_TEST_ARGS:-} "$@" </dev/null
	rc=$?
	tally "$(testlog "$dir" "$logbase")" "$label/$suite"
	if [ $rc -ne 0 ] && [ "$TALLY_BAD" -eq 0 ]; then
		fail_step "$label/$suite" "meson test exited $rc"
	fi
	say "$label/$suite: $TALLY_OK passed, $TALLY_BAD failed in $((SECONDS - t0)) s"
}

# 1. dependencies
if [ -z "${SKIP_DEPS:-}" ]; then
	t0=$SECONDS
	if "$root/scripts/deps.sh" </dev/null; then
		say "deps: ok in $((SECONDS - t0)) s"
	else
		fail_step deps "scripts/deps.sh failed"
	fi
fi

# Huge pages for the hugetlbfs guest-memory tests (a few 2 MiB pages; root only). With them
# reserved the tests are required to use them instead of reporting "not run".
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
	if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 16 ]; then
		echo 16 >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
	if [ "$(cat /proc/sys/vm/nr_hugepages)" -ge 4 ]; then
		export LIBVHOST_REQUIRE_HUGEPAGES=1
	fi
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1}

# 2. normal build, every layer
if configure_and_build build build -Dtests=true -Dtools=true -Dpeer_tests=true -Dguest_tests=true \
	-Dfuzz=false; then
	for s in ${SUITES:-unit protocol peers guest fuzz}; do
		if [ "$s" = fuzz ] && [ "$(count_tests build fuzz)" -eq 0 ]; then
			continue # fuzz targets only exist in the fuzz build
		fi
		run_suite build build "$s"
	done
fi

# 3. ASan + UBSan
if [ -z "${NO_ASAN:-}" ]; then
	if BUILD_CC=${ASAN_CC:-gcc} configure_and_build build-asan asan \
		-Db_sanitize=address,undefined -Db_lundef=false -Dpeer_tests=false -Dguest_tests=false \
		-Dfuzz=false; then
		run_suite build-asan asan unit
		run_suite build-asan asan protocol
	fi
fi

# 4. libFuzzer targets, bounded runs
if [ -z "${NO_FUZZ:-}" ]; then
	if BUILD_CC=clang configure_and_build build-fuzz fuzz -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false -Dpeer_tests=false -Dguest_tests=false; then
		run_suite build-fuzz fuzz fuzz
	fi
fi

# 5. valgrind over the unit suite's compiled tests (scripts would only check the shell)
if [ -z "${NO_VALGRIND:-}" ] && [ -f build/build.ninja ]; then
	# Only programs built here: a test run through an interpreter (bash, python3) would put
	# the interpreter under valgrind, and its own leaks are not ours.
	mapfile -t vg_tests < <(meson introspect build --tests 2>/dev/null | python3 -c '
import json, os, sys
builddir = os.path.realpath(sys.argv[1]) + "/"
for t in json.load(sys.stdin):
    if not any(s.split(":")[-1] == "unit" for s in t["suite"]):
        continue
    if not os.path.realpath(t["cmd"][0]).startswith(builddir):
        continue
    try:
        with open(t["cmd"][0], "rb") as f:
            if f.read(4) == b"\x7fELF":
                print(t["name"])
    except OSError:
        pass' "$root/build")
	if [ ${#vg_tests[@]} -gt 0 ]; then
		t0=$SECONDS
		rm -f build/meson-logs/testlog-valgrind-unit*.json
		say "valgrind/unit: running ${#vg_tests[@]} test(s)"
		# The probe's CLI tests also run the probe itself under valgrind (VH_PROBE_WRAP).
		# shellcheck disable=SC2086
		VH_PROBE_WRAP='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite' \
		meson test -C build --suite unit --logbase testlog-valgrind-unit --print-errorlogs \
			--timeout-multiplier 5 ${MESON_TEST_ARGS:-} \
			--wrap='valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' \
			"${vg_tests[@]}" </dev/null
		vrc=$?
		tally "$(testlog build testlog-valgrind-unit)" valgrind/unit
		if [ $vrc -ne 0 ] && [ "$TALLY_BAD" -eq 0 ]; then
			fail_step valgrind/unit "meson test exited $vrc"
		fi
		say "valgrind/unit: $TALLY_OK passed, $TALLY_BAD failed in $((SECONDS - t0)) s"
	fi
fi

echo
say "total time $((SECONDS - t_start)) s"
if [ ${#failures[@]} -gt 0 ]; then
	say "failures:"
	printf '  %s\n' "${failures[@]}"
fi
[ $skipped -gt 0 ] && say "$skipped skipped (not counted; CI=true counts skips as failures)"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
