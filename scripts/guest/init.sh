#!/bin/busybox sh
# /init of the guest test initramfs (packed by mkinitramfs.sh, driven by run.sh).
#
# run.sh appends /vmrun/config (shell variables below), /vmrun/run.sh (the command) and the
# test files. This script mounts the usual filesystems, loads modules, creates the requested
# devices, runs the command under a watchdog with its output on the second serial port,
# prints "LIBVHOST_GUEST_EXIT=<code>" there and powers off.
#
#   GUEST_DEVICES   in order: vdpasim_net vdpasim_blk vduse_blk vhost_scsi
#   GUEST_MODULES   extra modules to load
#   GUEST_TIMEOUT   seconds the command may run (then TERM, KILL, exit code 124)
#   GUEST_ALLOW_WARN 1 = a kernel warning/oops taint during the command does not fail the run
#   GUEST_DMESG     1 = always print the kernel messages logged during the command
#
# The command sees LIBVHOST_GUEST=1 and, per created device, LIBVHOST_VDPA_NET,
# LIBVHOST_VDPA_BLK, LIBVHOST_VDPA_VDUSE (/dev/vhost-vdpa-N), LIBVHOST_VDUSE_IMAGE (the file
# behind the VDUSE disk), LIBVHOST_VHOST_SCSI_WWPN / _TPGT / _IMAGE (a LIO vhost target).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
umask 022
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
echo 4 > /proc/sys/kernel/printk

if [ -c /dev/ttyS1 ]; then exec 3>/dev/ttyS1; else exec 3>/dev/console; fi
note() { echo "guest: $*" >&3; }
finish() {
    echo "LIBVHOST_GUEST_EXIT=$1" >&3
    sync
    poweroff -f
    sleep 5
}

GUEST_DEVICES=""; GUEST_MODULES=""; GUEST_TIMEOUT=60; GUEST_ALLOW_WARN=0; GUEST_DMESG=0
[ -f /vmrun/config ] && . /vmrun/config
export LIBVHOST_GUEST=1

kmsg_start=0
kmsg_since() { dmesg | tail -n +"$((kmsg_start + 1))"; }
setup_failed() {
    note "harness setup failed: $*"
    kmsg_since | tail -n 40 >&3
    finish 125
}

load() {
    modprobe -a "$@" 2>/tmp/modprobe.err || setup_failed "modprobe $*: $(cat /tmp/modprobe.err)"
}

# /dev node of the vhost-vdpa device bound to vdpa device $1.
vdpa_node() {
    local n=0 d
    while [ $n -lt 50 ]; do
        for d in /sys/bus/vdpa/devices/"$1"/vhost-vdpa-*; do
            [ -e "$d" ] && [ -c "/dev/${d##*/}" ] && { echo "/dev/${d##*/}"; return 0; }
        done
        n=$((n + 1)); usleep 100000
    done
    return 1
}

vdpa_add() {  # vdpa_add NAME MGMTDEV VAR
    vdpa dev add mgmtdev "$2" name "$1" 2>/tmp/vdpa.err || setup_failed "vdpa dev add $2: $(cat /tmp/vdpa.err)"
    node=$(vdpa_node "$1") || setup_failed "no vhost-vdpa node for $1 (is vhost_vdpa bound?)"
    export "$3=$node"
}

add_vduse_blk() {
    load vhost_vdpa vduse
    img=/tmp/vduse-blk.img
    truncate -s 64M "$img"
    qemu-storage-daemon \
        --blockdev driver=file,node-name=file0,filename="$img" \
        --blockdev driver=raw,node-name=disk0,file=file0 \
        --export type=vduse-blk,id=vduse0,node-name=disk0,name=vduse-blk,num-queues=1,writable=on \
        --daemonize --pidfile /run/qsd-vduse.pid >/tmp/qsd.err 2>&1 \
        || setup_failed "qemu-storage-daemon vduse-blk: $(cat /tmp/qsd.err)"
    vdpa_add vduse-blk vduse LIBVHOST_VDPA_VDUSE
    export LIBVHOST_VDUSE_IMAGE=$img
}

# A LIO target with one file-backed LUN on the vhost fabric, as targetcli would build it.
add_vhost_scsi() {
    local cfs=/sys/kernel/config/target wwpn=naa.5001405000c0ffee img=/tmp/vhost-scsi.img
    load target_core_mod target_core_file vhost_scsi
    [ -d "$cfs" ] || setup_failed "no $cfs (configfs not mounted?)"
    truncate -s 16M "$img"
    mkdir -p "$cfs/core/fileio_0/disk0" || setup_failed "fileio backstore"
    echo "fd_dev_name=$img,fd_dev_size=16777216" > "$cfs/core/fileio_0/disk0/control"
    echo 1 > "$cfs/core/fileio_0/disk0/enable" || setup_failed "enable fileio backstore"
    mkdir -p "$cfs/vhost/$wwpn/tpgt_1/lun/lun_0" || setup_failed "vhost wwpn $wwpn"
    ln -s "$cfs/core/fileio_0/disk0" "$cfs/vhost/$wwpn/tpgt_1/lun/lun_0/virtual_scsi_port" \
        || setup_failed "map LUN 0"
    echo naa.5001405000c0ffef > "$cfs/vhost/$wwpn/tpgt_1/nexus" || setup_failed "I_T nexus"
    export LIBVHOST_VHOST_SCSI_WWPN=$wwpn LIBVHOST_VHOST_SCSI_TPGT=1 LIBVHOST_VHOST_SCSI_IMAGE=$img
}

kmsg_start=$(dmesg | wc -l)
ip link set lo up 2>/dev/null
# configfs is a module in some configs; the LIO target needs it mounted.
grep -q configfs /proc/filesystems || modprobe configfs 2>/dev/null
grep -q configfs /proc/filesystems && mount -t configfs configfs /sys/kernel/config

# shellcheck disable=SC2086
load vhost_net vhost_vsock $GUEST_MODULES
for dev in $GUEST_DEVICES; do
    case "$dev" in
        vdpasim_net) load vhost_vdpa vdpa_sim_net; vdpa_add vdpa-net vdpasim_net LIBVHOST_VDPA_NET ;;
        vdpasim_blk) load vhost_vdpa vdpa_sim_blk; vdpa_add vdpa-blk vdpasim_blk LIBVHOST_VDPA_BLK ;;
        vduse_blk)   add_vduse_blk ;;
        vhost_scsi)  add_vhost_scsi ;;
        *) setup_failed "unknown device '$dev'" ;;
    esac
done
if [ -f /vmrun/pre.sh ]; then
    . /vmrun/pre.sh >&3 2>&3 || setup_failed "/vmrun/pre.sh returned $?"
fi

taint0=$(cat /proc/sys/kernel/tainted)
kmsg_start=$(dmesg | wc -l)
echo "guest: command starts at uptime $(cut -d' ' -f1 /proc/uptime) s" > /dev/console
cd /tmp
# Own session, so the watchdog can signal everything the command started.
setsid sh /vmrun/run.sh >&3 2>&3 </dev/null &
cmd=$!
( sleep "$GUEST_TIMEOUT"; ps > /tmp/.timed-out; kill -s TERM -- -"$cmd"; sleep 3; kill -s KILL -- -"$cmd" ) \
    >/dev/null 2>&1 &
dog=$!
wait "$cmd"
rc=$?
kill "$dog" 2>/dev/null
if [ -e /tmp/.timed-out ]; then
    note "command timed out after $GUEST_TIMEOUT s; user processes then:"
    grep -v ' \[' /tmp/.timed-out >&3
    rc=124
fi

# Taint bits that mean the kernel misbehaved: 5 bad page, 7 oops, 9 warning, 14 soft lockup.
taint1=$(cat /proc/sys/kernel/tainted)
bad=$(( (taint1 & ~taint0) & ((1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)) ))
if [ "$bad" != 0 ]; then
    note "kernel taint changed $taint0 -> $taint1 during the command (warning/oops)"
    [ "$GUEST_ALLOW_WARN" = 1 ] || { [ "$rc" = 0 ] && rc=125; }
fi
if [ "$rc" != 0 ] || [ "$bad" != 0 ] || [ "$GUEST_DMESG" = 1 ]; then
    kmsg_since | tail -n 80 > /tmp/kmsg
    if [ -s /tmp/kmsg ]; then
        note "---- kernel messages during the command ----"
        cat /tmp/kmsg >&3
    fi
fi
finish "$rc"
