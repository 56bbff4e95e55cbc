#!/bin/bash
# Build the base initramfs of the guest test layer for one kernel: busybox, the vhost /
# vDPA / VDUSE / tun / vsock / LIO target module closures, iproute2's `vdpa`,
# qemu-storage-daemon with its libraries (VDUSE back-end) and scripts/guest/init.sh as /init.
# Test programs are not in it: run.sh appends a small per-run cpio.
#
#   usage: scripts/guest/mkinitramfs.sh 6.12|6.1     (setup.sh and run.sh call it)
#   out:   $LIBVHOST_LAB_CACHE/initramfs-<kernel>-<hash of the inputs>.cpio, uncompressed
#          (under TCG unpacking plain cpio beats decompressing it); its path on stdout.
#          Built only when no image matches the inputs; naming images by their inputs lets
#          checkouts with different scripts share one cache without rebuilding in turn.
#   env:   LIBVHOST_LAB_CACHE, LIBVHOST_GUEST_REBUILD=1 (force)
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LIBVHOST_LAB_CACHE:-/var/tmp/libvhost-lab}
SEL=${1:?usage: mkinitramfs.sh 6.12|6.1}
KDIR=$(readlink -f "$CACHE/kernel-$SEL")
[ -d "$KDIR/lib/modules" ] || { echo "mkinitramfs: $CACHE/kernel-$SEL missing; run scripts/guest/setup.sh" >&2; exit 2; }
KVER=$(ls "$KDIR/lib/modules")
MD=$KDIR/lib/modules/$KVER

# Everything tests may need; the guest loads only what a run asks for (see init.sh).
MODS="vhost vhost_iotlb vhost_net vhost_vsock vhost_scsi tun tap macvtap dummy af_packet
      vsock vsock_loopback vdpa vhost_vdpa vduse virtio_vdpa vdpa_sim vdpa_sim_net vdpa_sim_blk
      configfs target_core_mod target_core_file target_core_iblock tcm_loop loop
      virtio_blk virtio_net"
QSD=/usr/bin/qemu-storage-daemon
VDPA=/usr/sbin/vdpa

# The image depends on these scripts, the kernel tree (including out-of-tree modules) and
# the host binaries copied in.
stamp=$( { sha256sum "$HERE/mkinitramfs.sh" "$HERE/init.sh"
           echo "$KDIR"; ls -l --time-style=+%s "$MD/updates" -R 2>/dev/null || true
           ls -lL --time-style=+%s /bin/busybox "$QSD" "$VDPA"; } | sha256sum | cut -d' ' -f1)
OUT=$CACHE/initramfs-$SEL-${stamp:0:16}.cpio
if [ -f "$OUT" ] && [ "${LIBVHOST_GUEST_REBUILD:-0}" != 1 ]; then
    echo "$OUT"; exit 0
fi

file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || \
    ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || \
    { echo "mkinitramfs: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }
for b in "$QSD" "$VDPA"; do [ -x "$b" ] || { echo "mkinitramfs: $b missing" >&2; exit 1; }; done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/libvhost-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var,vmrun,lib/modules/$KVER}
ln -s ../run "$STAGE/var/run"
cp /bin/busybox "$STAGE/bin/busybox"
# Applet links made here save the guest a `busybox --install` on every boot.
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$STAGE/bin/$a"
done
install -m 0755 "$HERE/init.sh" "$STAGE/init"

# A dynamically linked host binary with its ldd closure, at the same paths.
copy_with_libs() {
    local f
    for f in "$1" $(ldd "$1" | awk '/=>/ {print $3} /^\t\// {print $1}' | grep '^/'); do
        [ -e "$STAGE/$f" ] && continue
        mkdir -p "$STAGE/$(dirname "$f")"
        cp -L "$f" "$STAGE/$f"
    done
}
copy_with_libs "$VDPA"
copy_with_libs "$QSD"

# Module closures as modprobe resolves them in the unpacked tree; .ko.xz is unpacked here
# because decompressing in the guest costs TCG time on every boot.
depmod -b "$KDIR" "$KVER"
have=""; absent=""
for m in $MODS; do
    deps=$(modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" 2>/dev/null || true)
    if [ -z "$deps" ]; then absent="$absent $m"; continue; fi
    for f in $(echo "$deps" | awk '$1 == "insmod" {print $2}'); do
        rel=${f#"$MD"/}
        mkdir -p "$STAGE/lib/modules/$KVER/$(dirname "$rel")"
        case "$f" in
            *.ko.xz)  xz -dc "$f" > "$STAGE/lib/modules/$KVER/${rel%.xz}" ;;
            *.ko.zst) zstd -qdc "$f" > "$STAGE/lib/modules/$KVER/${rel%.zst}" ;;
            *)        cp "$f" "$STAGE/lib/modules/$KVER/$rel" ;;
        esac
    done
    have="$have $m"
done
cp "$MD"/modules.builtin* "$MD"/modules.order "$STAGE/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$STAGE" "$KVER"
echo "$have" | tr ' ' '\n' | sed '/^$/d' > "$STAGE/etc/guest-modules"
printf '%s\n' "$SEL" > "$STAGE/etc/guest-kernel"

(cd "$STAGE" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
# Images of other script versions not used for a day go.
find "$CACHE" -maxdepth 1 -name "initramfs-$SEL-*.cpio" ! -newermt '1 day ago' ! -path "$OUT" -delete
echo "guest-setup: $(basename "$OUT") ($(du -h "$OUT" | cut -f1); $KVER; modules:$have; not in this kernel:${absent:- none})" >&2
echo "$OUT"
