#!/bin/bash
# Prepare the QEMU/TCG guest test layer: host packages, two Debian guest kernels, the
# vDPA simulator modules for the 6.12 guest and one initramfs per kernel.
#
#   usage: scripts/guest/setup.sh          idempotent; a warm cache returns in about a second
#   env:   LIBVHOST_LAB_CACHE     cache directory (default /var/tmp/libvhost-lab)
#          LIBVHOST_GUEST_KERNELS kernels to prepare (default "6.12 6.1")
#          LIBVHOST_GUEST_REBUILD 1 = rebuild the simulator modules and the initramfs images
#
# Kernels: 6.12 is Debian's linux-image-6.12-amd64 (vhost_vdpa and vduse as modules, but no
# vdpa_sim and no vringh, which are built here out of tree); 6.1 is linux-image-amd64 (no
# vDPA at all). Both are fetched with `apt-get download` and unpacked with `dpkg -x` into the
# cache; nothing is installed into the host's /boot or /lib/modules.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LIBVHOST_LAB_CACHE:-/var/tmp/libvhost-lab}
KERNELS=${LIBVHOST_GUEST_KERNELS:-"6.12 6.1"}
REBUILD=${LIBVHOST_GUEST_REBUILD:-0}
export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)

say() { echo "guest-setup: $*"; }
die() { echo "guest-setup: error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -E "$@"
    else
        die "'$*' needs root: run as root or install sudo"
    fi
}

mkdir -p "$CACHE/debs"
# Parallel test runs may all find the cache cold; only one of them prepares it.
exec 9>"$CACHE/.setup.lock"
flock -w 1800 9 || die "timed out waiting for another setup run ($CACHE/.setup.lock)"

apt_updated=0
apt_update_once() {
    [ "$apt_updated" = 1 ] && return 0
    say "apt-get update"
    as_root timeout 600 apt-get update -q >/dev/null || die "apt-get update failed"
    apt_updated=1
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# --- host packages -----------------------------------------------------------------------
# qemu-system-x86: the VMM; qemu-system-common: qemu-storage-daemon (VDUSE back-end in the
# guest); busybox-static: the guest userland; kmod: depmod/modprobe -d for module closures;
# cpio/xz/zstd: initramfs and compressed modules; iproute2: the `vdpa` tool;
# gcc-12/make/libelf1/bc/pahole: kbuild for the simulator (Debian's 6.12 was built with gcc-12);
# gcc/libc6-dev/linux-libc-dev: static test programs.
PKGS="qemu-system-x86 qemu-utils qemu-system-common busybox-static kmod cpio xz-utils zstd
      iproute2 gcc gcc-12 make libc6-dev linux-libc-dev libelf1 bc pahole binutils"
missing=""
for p in $PKGS; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
    apt_update_once
    say "installing:$missing"
    # shellcheck disable=SC2086
    as_root timeout 900 apt-get install -y -q --no-install-recommends $missing >/dev/null \
        || die "apt-get install$missing failed"
fi

# Downloads land in the cache; as root, apt's _apt sandbox user could not write there.
fetch() {
    (cd "$CACHE/debs" && timeout 900 apt-get download -q -o APT::Sandbox::User="$(id -un)" "$@") \
        >/dev/null 2>"$CACHE/debs/.apt-error"
}
have_deb() { ls "$CACHE/debs/${1}"_*.deb >/dev/null 2>&1; }

# Stale package lists name versions the archive no longer has: update once and retry.
apt_download() {
    fetch "$@" && return 0
    [ "$apt_updated" = 0 ] && apt_update_once && fetch "$@" && return 0
    cat "$CACHE/debs/.apt-error" >&2
    die "apt-get download $* failed"
}

# Resolve a kernel meta package to the concrete image package of the apt candidate.
resolve_image() {
    local meta=$1 pkg
    pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$pkg" ]; then
        apt_update_once
        pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    [ -n "$pkg" ] || die "cannot resolve $meta to a kernel image package"
    echo "$pkg"
}

# --- guest kernels -----------------------------------------------------------------------
unpack_kernel() {
    local sel=$1 meta pkg dir deb kver old
    case "$sel" in
        6.1)  meta=linux-image-amd64 ;;
        6.12) meta=linux-image-6.12-amd64 ;;
        *) die "unknown kernel selector '$sel' (use 6.12 or 6.1)" ;;
    esac
    pkg=$(resolve_image "$meta")
    if [ ! -e "$CACHE/$pkg/.unpacked" ] && ! have_deb "$pkg"; then
        say "downloading $pkg"
        if ! fetch "$pkg"; then
            # Debian drops superseded kernel ABIs; fresh lists name the successor.
            apt_update_once
            pkg=$(resolve_image "$meta")
            have_deb "$pkg" || apt_download "$pkg"
        fi
    fi
    dir=$CACHE/$pkg
    if [ ! -e "$dir/.unpacked" ]; then
        deb=$(ls "$CACHE/debs/${pkg}"_*.deb | tail -1)
        rm -rf "$dir"; mkdir -p "$dir"
        dpkg -x "$deb" "$dir"
        kver=$(ls "$dir/lib/modules")
        depmod -b "$dir" "$kver"
        dpkg-deb -f "$deb" Version > "$dir/.version"
        touch "$dir/.unpacked"
    fi
    # A newer Debian kernel replaces the previous one: drop the stale tree.
    old=$(readlink "$CACHE/kernel-$sel" 2>/dev/null || true)
    if [ -n "$old" ] && [ "$old" != "$pkg" ] && [ -d "$CACHE/$old" ]; then
        say "replacing $old with $pkg"; rm -rf "${CACHE:?}/$old"
    fi
    ln -sfn "$pkg" "$CACHE/kernel-$sel"
    [ -f "$dir/vmlinux" ] || extract_vmlinux "$dir"
}

# The bzImage's compressed payload as an ELF vmlinux: QEMU boots it through the PVH entry
# point (CONFIG_PVH=y in both kernels), which skips the in-guest decompressor, 0.7 s (zstd,
# 6.12) to 2.5 s (xz, 6.1) of every TCG boot. run.sh falls back to the bzImage without it.
extract_vmlinux() {
    local dir=$1 bz sects off len size magic dec
    bz=$(ls "$dir"/boot/vmlinuz-*)
    grep -q '^CONFIG_PVH=y' "$dir"/boot/config-* || return 0
    u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
    sects=$(od -An -t u1 -j $((0x1f1)) -N 1 "$bz" | tr -d ' ')
    [ "$sects" != 0 ] || sects=4
    off=$(( (sects + 1) * 512 + $(u32 "$bz" $((0x248))) ))   # setup size + payload_offset
    len=$(u32 "$bz" $((0x24c)))                               # payload_length
    # The payload ends with the uncompressed size (le32), which the decompressors reject.
    size=$(u32 "$bz" $((off + len - 4)))
    len=$((len - 4))
    magic=$(dd if="$bz" bs=1 skip="$off" count=4 status=none | od -An -t x1 | tr -d ' ')
    case "$magic" in
        28b52ffd) dec="zstd -qdc" ;;
        fd377a58) dec="xz -dc" ;;
        1f8b*)    dec="gzip -dc" ;;
        *) say "unknown payload compression ($magic) in $bz; guests boot the bzImage"; return 0 ;;
    esac
    if dd if="$bz" iflag=skip_bytes,count_bytes bs=1M skip="$off" count="$len" status=none \
            | $dec > "$dir/vmlinux.tmp" 2>/dev/null \
            && [ "$(od -An -t x1 -N 4 "$dir/vmlinux.tmp" | tr -d ' ')" = 7f454c46 ] \
            && [ "$(stat -c %s "$dir/vmlinux.tmp")" = "$size" ]; then
        mv "$dir/vmlinux.tmp" "$dir/vmlinux"
    else
        rm -f "$dir/vmlinux.tmp"; say "could not extract vmlinux from $bz; guests boot the bzImage"
    fi
}

# --- vdpa_sim, vdpa_sim_net, vdpa_sim_blk, vringh for 6.12 -------------------------------
# Debian builds 6.12 with CONFIG_VDPA_SIM and CONFIG_VHOST_RING off. Only those sources are
# taken from linux-source-6.12 (same version as the image) and built against the unpacked
# linux-headers/linux-kbuild packages.
build_vdpa_sim() {
    local kdir kver abi ver dst kb hdr src p name
    kdir=$(readlink -f "$CACHE/kernel-6.12")
    kver=$(ls "$kdir/lib/modules")
    abi=${kver%-amd64}
    ver=$(cat "$kdir/.version")
    dst=$kdir/lib/modules/$kver/updates/vdpa_sim
    if [ -f "$dst/.built" ] && [ "$REBUILD" != 1 ]; then return 0; fi
    say "building vdpa_sim modules for $kver"
    for p in "linux-headers-$abi-amd64" "linux-headers-$abi-common" "linux-kbuild-$abi" \
             "linux-source-6.12=$ver"; do
        name=${p%%=*}
        [ "$name" = "$p" ] || name=${name}_${p#*=}     # the source must match the image
        have_deb "$name" || { say "downloading $name"; apt_download "$p"; }
    done
    kb=$CACHE/kbuild-$abi
    rm -rf "$kb"; mkdir -p "$kb"
    for p in "linux-headers-$abi-amd64" "linux-headers-$abi-common" "linux-kbuild-$abi"; do
        dpkg -x "$(ls "$CACHE/debs/${p}"_*.deb | tail -1)" "$kb"
    done
    hdr=$kb/usr/src/linux-headers-$abi-amd64
    [ -f "$hdr/Makefile" ] || die "no kbuild Makefile in $hdr"
    # The arch header tree includes the common one by absolute /usr/src path.
    sed -i "s|^include /usr/src/|include $kb/usr/src/|" "$hdr/Makefile"
    src=$kb/vdpa_sim
    mkdir -p "$src"
    dpkg-deb --fsys-tarfile "$(ls "$CACHE/debs/linux-source-6.12_${ver}"_*.deb | tail -1)" \
        | tar -xO ./usr/src/linux-source-6.12.tar.xz \
        | xz -dc -T0 \
        | tar -x -C "$src" --strip-components=1 \
            linux-source-6.12/drivers/vdpa/vdpa_sim linux-source-6.12/drivers/vhost/vringh.c
    cp "$src"/drivers/vdpa/vdpa_sim/*.[ch] "$src/drivers/vhost/vringh.c" "$src/"
    echo 'obj-m += vringh.o vdpa_sim.o vdpa_sim_net.o vdpa_sim_blk.o' > "$src/Kbuild"
    make -s -C "$hdr" M="$src" CC=gcc-12 -j"$(nproc)" modules >"$src/build.log" 2>&1 \
        || { tail -n 30 "$src/build.log" >&2; die "vdpa_sim build failed"; }
    rm -rf "$dst"; mkdir -p "$dst"
    cp "$src"/*.ko "$dst/"
    strip --strip-debug "$dst"/*.ko
    depmod -b "$kdir" "$kver"
    touch "$dst/.built"
    # Headers, kbuild and the unpacked sources are only needed for this build.
    rm -rf "$kb"
}

for k in $KERNELS; do
    unpack_kernel "$k"
    [ "$k" = 6.12 ] && build_vdpa_sim
    LIBVHOST_LAB_CACHE=$CACHE LIBVHOST_GUEST_REBUILD=$REBUILD "$HERE/mkinitramfs.sh" "$k" >/dev/null
done
say "ready in $(( $(date +%s) - T0 )) s; cache $CACHE ($(du -sh "$CACHE" 2>/dev/null | cut -f1))"
