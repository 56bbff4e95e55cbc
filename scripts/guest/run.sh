#!/bin/bash
# Boot a Debian guest kernel under QEMU/TCG, run one program (or shell command) inside with
# the requested kernel vhost / vDPA devices in place, print its output, exit with its code.
#
#   usage: scripts/guest/run.sh [options] [--] PROGRAM [ARGS...]
#          scripts/guest/run.sh [options] -c 'shell command'
#
#   -k, --kernel 6.12|6.1   guest kernel (env LIBVHOST_GUEST_KERNEL, default 6.12; 6.1 has no vDPA)
#   -d, --devices LIST      comma separated, created in this order, so with "vdpa" the nodes
#                           are vhost-vdpa-0 net, -1 blk, -2 VDUSE:
#                             vdpasim_net  vdpa_sim_net device    -> $LIBVHOST_VDPA_NET
#                             vdpasim_blk  vdpa_sim_blk device    -> $LIBVHOST_VDPA_BLK
#                             vduse_blk    qemu-storage-daemon --export vduse-blk on a 64 MiB
#                                          file in the guest      -> $LIBVHOST_VDPA_VDUSE,
#                                                                    $LIBVHOST_VDUSE_IMAGE
#                             vhost_scsi   LIO vhost target, one 16 MiB fileio LUN
#                                          -> $LIBVHOST_VHOST_SCSI_WWPN, _TPGT, _IMAGE
#                           aliases: vdpa_sim (net+blk), vduse, vdpa (net+blk+vduse),
#                           scsi, all (vdpa+scsi), none. /dev/vhost-net and /dev/vhost-vsock
#                           are always there.
#   -m, --modules LIST      more modules to load (comma or space separated)
#   -f, --file HOST[:GUEST] copy a file in (default guest path /vmrun/files/<name>); repeatable
#   -p, --pre FILE          shell snippet sourced in the guest after the devices exist
#   -t, --timeout SECONDS   whole run, boot included (env LIBVHOST_GUEST_TIMEOUT, default 120)
#       --smp N             vCPUs (env LIBVHOST_GUEST_SMP, default 1)
#       --mem SIZE          RAM (env LIBVHOST_GUEST_MEM, default 512M)
#       --allow-kernel-warn a kernel WARN/oops taint during the command does not fail the run
#       --dmesg             always print the kernel messages logged during the command
#   -v, --verbose           also print the guest's console (env LIBVHOST_GUEST_VERBOSE=1)
#   -c, --cmd CMD           run a busybox sh command instead of a program
#
# Exit: the command's exit code; 124 = timed out (guest watchdog or host timeout);
# 125 = harness failure (device setup failed, kernel crashed, no exit code seen).
# More env: LIBVHOST_LAB_CACHE (default /var/tmp/libvhost-lab), LIBVHOST_GUEST_CPU (QEMU -cpu,
# default: QEMU's), LIBVHOST_GUEST_QEMU_ARGS (extra QEMU words), LIBVHOST_GUEST_APPEND
# (extra kernel command line), LIBVHOST_GUEST_CONSOLE (keep the console log in this file).
# Programs must be static (the guest has only the libraries qemu-storage-daemon needs).
# A missing or stale cache is prepared first (scripts/guest/setup.sh).
set -uo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LIBVHOST_LAB_CACHE:-/var/tmp/libvhost-lab}
KSEL=${LIBVHOST_GUEST_KERNEL:-6.12}
TIMEOUT=${LIBVHOST_GUEST_TIMEOUT:-120}
SMP=${LIBVHOST_GUEST_SMP:-1}
MEM=${LIBVHOST_GUEST_MEM:-512M}
VERBOSE=${LIBVHOST_GUEST_VERBOSE:-0}
DEVSPEC=none; MODULES=""; PRE=""; CMD=""; ALLOW_WARN=0; DMESG=0
FILES=()
T0=$(date +%s.%N)

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
die() { echo "guest-run: $*" >&2; exit 125; }
need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -k|--kernel)  need_arg "$@"; KSEL=$2; shift 2 ;;
        -d|--devices) need_arg "$@"; DEVSPEC=$2; shift 2 ;;
        -m|--modules) need_arg "$@"; MODULES="$MODULES ${2//,/ }"; shift 2 ;;
        -f|--file)    need_arg "$@"; FILES+=("$2"); shift 2 ;;
        -p|--pre)     need_arg "$@"; PRE=$2; shift 2 ;;
        -t|--timeout) need_arg "$@"; TIMEOUT=$2; shift 2 ;;
        --smp)        need_arg "$@"; SMP=$2; shift 2 ;;
        --mem)        need_arg "$@"; MEM=$2; shift 2 ;;
        --allow-kernel-warn) ALLOW_WARN=1; shift ;;
        --dmesg)      DMESG=1; shift ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -c|--cmd)     need_arg "$@"; CMD=$2; shift 2 ;;
        -h|--help)    usage ;;
        --)           shift; break ;;
        -*)           die "unknown option $1 (see --help)" ;;
        *)            break ;;
    esac
done
[ -n "$CMD" ] || [ $# -ge 1 ] || usage
case "$KSEL" in 6.12|6.1) ;; *) die "unknown kernel '$KSEL' (6.12 or 6.1)" ;; esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -ge 10 ] || die "timeout must be >= 10 s"

# Expand device aliases into the ordered list init.sh understands.
DEVICES=""
for tok in ${DEVSPEC//,/ }; do
    case "$tok" in
        none) ;;
        vdpasim_net|vdpasim_blk|vduse_blk|vhost_scsi) DEVICES="$DEVICES $tok" ;;
        vdpa_sim) DEVICES="$DEVICES vdpasim_net vdpasim_blk" ;;
        vduse)    DEVICES="$DEVICES vduse_blk" ;;
        vdpa)     DEVICES="$DEVICES vdpasim_net vdpasim_blk vduse_blk" ;;
        scsi)     DEVICES="$DEVICES vhost_scsi" ;;
        all)      DEVICES="$DEVICES vdpasim_net vdpasim_blk vduse_blk vhost_scsi" ;;
        *) die "unknown device '$tok' (see --help)" ;;
    esac
done
if [ "$KSEL" = 6.1 ] && [[ "$DEVICES" == *vd* ]]; then
    die "the 6.1 guest kernel has no vDPA (devices:$DEVICES)"
fi

# --- cache: kernel, modules, initramfs ----------------------------------------------------
if [ ! -e "$CACHE/kernel-$KSEL/.unpacked" ] || { [ "$KSEL" = 6.12 ] && ! ls "$CACHE"/kernel-6.12/lib/modules/*/updates/vdpa_sim/.built >/dev/null 2>&1; }; then
    echo "guest-run: preparing $CACHE for kernel $KSEL" >&2
    LIBVHOST_LAB_CACHE=$CACHE LIBVHOST_GUEST_KERNELS=$KSEL "$HERE/setup.sh" >&2 || die "setup failed"
fi
# Cheap when the image exists; the lock keeps parallel runs from building it at once.
BASE=$( (flock -w 600 9 && LIBVHOST_LAB_CACHE=$CACHE "$HERE/mkinitramfs.sh" "$KSEL") 9>"$CACHE/.setup.lock") \
    || die "initramfs build failed"
KDIR=$(readlink -f "$CACHE/kernel-$KSEL")
KVER=$(ls "$KDIR/lib/modules")
KERNEL=$KDIR/boot/vmlinuz-$KVER
# PVH boot of the unpacked vmlinux when setup.sh could extract it (faster under TCG).
[ -f "$KDIR/vmlinux" ] && [ "${LIBVHOST_GUEST_BZIMAGE:-0}" != 1 ] && KERNEL=$KDIR/vmlinux
[ -f "$KERNEL" ] && [ -f "$BASE" ] || die "cache incomplete: $KERNEL / $BASE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libvhost-guest.XXXXXX") || die "mktemp failed"
QPID=""
cleanup() {
    if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# --- per-run overlay: config, command, program, files ------------------------------------
X=$WORK/overlay
mkdir -p "$X/vmrun/bin" "$X/vmrun/files"
squote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
if [ -n "$CMD" ]; then
    printf '%s\n' "$CMD" > "$X/vmrun/run.sh"
else
    prog=$1; shift
    [ -f "$prog" ] || die "no such program: $prog"
    if LC_ALL=C readelf -d "$prog" 2>/dev/null | grep -q '(NEEDED)'; then
        die "$prog is dynamically linked; guest programs must be static"
    fi
    name=$(basename "$prog")
    install -m 0755 "$prog" "$X/vmrun/bin/$name"
    { printf 'exec /vmrun/bin/%s' "$(squote "$name")"
      for a in "$@"; do printf ' %s' "$(squote "$a")"; done; echo; } > "$X/vmrun/run.sh"
fi
for spec in ${FILES[@]+"${FILES[@]}"}; do
    src=${spec%%:*}; dst=${spec#*:}
    [ "$dst" = "$spec" ] && dst=/vmrun/files/$(basename "$src")
    case "$dst" in
        /proc/*|/sys/*|/dev/*) die "guest path $dst would be hidden by a mount" ;;
        /*) ;;
        *) die "guest path $dst must be absolute" ;;
    esac
    [ -e "$src" ] || die "no such file: $src"
    mkdir -p "$X/$(dirname "$dst")"
    cp -L "$src" "$X/$dst" || die "cannot copy $src"
done
[ -z "$PRE" ] || cp "$PRE" "$X/vmrun/pre.sh" || die "cannot copy $PRE"
# Leave the guest a few seconds after its watchdog fires to report before the host gives up.
margin=15; [ "$KSEL" = 6.1 ] && margin=20
GTIMEOUT=$((TIMEOUT - margin)); [ "$GTIMEOUT" -ge 5 ] || GTIMEOUT=5
{
    echo "GUEST_DEVICES='${DEVICES# }'"
    echo "GUEST_MODULES='${MODULES# }'"
    echo "GUEST_TIMEOUT=$GTIMEOUT"
    echo "GUEST_ALLOW_WARN=$ALLOW_WARN"
    echo "GUEST_DMESG=$DMESG"
} > "$X/vmrun/config"
(cd "$X" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$WORK/overlay.cpio" \
    || die "cpio failed"
cat "$BASE" "$WORK/overlay.cpio" > "$WORK/initrd.cpio"

# --- boot ----------------------------------------------------------------------------------
CONSOLE=${LIBVHOST_GUEST_CONSOLE:-$WORK/console.log}
OUT=$WORK/out.log
: > "$OUT"
cpu=(); [ -z "${LIBVHOST_GUEST_CPU:-}" ] || cpu=(-cpu "$LIBVHOST_GUEST_CPU")
# ttyS0: kernel console; ttyS1: the command's output and the exit marker.
# shellcheck disable=SC2086
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg -machine pc ${cpu[@]+"${cpu[@]}"} -smp "$SMP" -m "$MEM" \
    -nodefaults -nographic -no-reboot -nic none -monitor none \
    -serial "file:$CONSOLE" -serial "file:$OUT" \
    -kernel "$KERNEL" -initrd "$WORK/initrd.cpio" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic ${LIBVHOST_GUEST_APPEND:-}" \
    ${LIBVHOST_GUEST_QEMU_ARGS:-} </dev/null >"$WORK/qemu.log" 2>&1 &
QPID=$!
wait "$QPID"; qrc=$?; QPID=""
T1=$(date +%s.%N)

tr -d '\r' < "$OUT" | sed 's/LIBVHOST_GUEST_EXIT=[0-9]*$//' | sed '${/^$/d}'
rc=$(tr -d '\r' < "$OUT" | sed -n 's/.*LIBVHOST_GUEST_EXIT=\([0-9][0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$rc" ]; then
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        rc=124; echo "guest-run: timed out after $TIMEOUT s (no exit code from the guest)" >&2
    else
        rc=125; echo "guest-run: no exit code from the guest (qemu exit $qrc)" >&2
    fi
    tail -n 20 "$WORK/qemu.log" >&2
    echo "guest-run: ---- console tail ----" >&2
    tail -n 50 "$CONSOLE" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >&2
elif [ "$VERBOSE" = 1 ]; then
    echo "guest-run: ---- console ----" >&2
    tr -d '\r' < "$CONSOLE" >&2
fi
printf 'guest-run: kernel %s, devices:%s, exit %s, %.1f s\n' "$KVER" "${DEVICES:- none}" "$rc" \
    "$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" >&2
exit "$rc"
