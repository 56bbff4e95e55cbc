#!/bin/bash
# deps.sh - install what building and testing libvhost needs, from Debian's apt archive only.
#
#   usage: scripts/deps.sh
#
# Idempotent and silent when everything is present. Runs apt-get through sudo when not root,
# refreshes the package lists at most once (only when a package has no install candidate), then
# runs scripts/guest/setup.sh (guest kernels, vdpa_sim) if that script exists.
# Env: DEPS_NO_GUEST=1 skips the guest set-up.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Build: meson, ninja, gcc, clang (+ its sanitizer/libFuzzer runtimes), pkg-config, liburing.
# Tests: valgrind; QEMU, qemu-storage-daemon, virtiofsd (qemu-system-common); guest images
# (busybox-static, kmod, cpio, xz, zstd, iproute2); scripts (python3, jq); DPDK testpmd.
# gcc only recommends libc6-dev, and recommends are not installed: name the headers.
PKGS=(meson ninja-build gcc libc6-dev linux-libc-dev clang libclang-rt-14-dev pkg-config
      liburing-dev valgrind
      qemu-system-x86 qemu-utils qemu-system-common busybox-static kmod cpio xz-utils zstd
      iproute2 python3 jq dpdk-dev)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=()
	elif command -v sudo >/dev/null; then
		SUDO=(sudo -n)
	else
		echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	echo "deps.sh: installing ${missing[*]}"
	updated=0
	# A fresh machine may have empty package lists: refresh once if any package has no candidate.
	for p in "${missing[@]}"; do
		cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			"${SUDO[@]}" apt-get update -qq
			updated=1
			break
		fi
	done
	# --no-install-recommends keeps dpdk-dev (and QEMU) from pulling hundreds of extras.
	install() {
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	}
	# Stale lists name versions the mirror no longer has: refresh once and retry.
	if ! install; then
		[ $updated -eq 0 ] || exit 1
		"${SUDO[@]}" apt-get update -qq
		install
	fi
	echo "deps.sh: installed ${#missing[@]} package(s)"
fi

if [ -z "${DEPS_NO_GUEST:-}" ] && [ -x "$here/guest/setup.sh" ]; then
	"$here/guest/setup.sh"
elif [ -z "${DEPS_NO_GUEST:-}" ] && [ -f "$here/guest/setup.sh" ]; then
	bash "$here/guest/setup.sh"
fi
