#!/usr/bin/env bash
# Fetch Debian's stock kernel for the cgroup v2 guest, without installing it.
#
#   hack/v2guest/kernel.sh     prints the directory holding the extracted package
#
# The package is the one linux-image-amd64 depends on (override with
# V2GUEST_KERNEL_PKG=linux-image-...). It is fetched with `apt-get download`
# and unpacked with `dpkg-deb -x` into .cache/v2guest/<package>/, which then
# holds boot/vmlinuz-*, boot/config-* and lib/modules/<version>/, plus
# vmlinux: the uncompressed ELF kernel taken out of vmlinuz. qemu boots that
# directly through its PVH entry point (CONFIG_PVH=y), which skips the BIOS
# boot loader and the xz decompression: under TCG that halves the boot time.
# Nothing on the host's /boot or /lib/modules is touched. Cached: a second
# run only prints the path (the package name is looked up again once a day).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${V2GUEST_CACHE:-$repo/.cache/v2guest}"
current="$cache/current-package"

pkg="${V2GUEST_KERNEL_PKG:-}"
if [ -z "$pkg" ] && [ -n "$(find "$current" -mmin -1440 2>/dev/null)" ]; then
    pkg="$(cat "$current")"
fi
if [ -z "$pkg" ]; then
    pkg="$(apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-/ { print $2; exit }')"
fi
if [ -z "$pkg" ]; then
    echo "v2guest: cannot tell which kernel linux-image-amd64 depends on (apt-get update?)" >&2
    exit 1
fi

remember() {
    [ -n "${V2GUEST_KERNEL_PKG:-}" ] || echo "$pkg" > "$current"
}

dest="$cache/$pkg"
if [ -f "$dest/vmlinux" ]; then
    remember
    echo "$dest"
    exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "v2guest: downloading $pkg into $cache" >&2
# apt-get download writes to the current directory. The _apt sandbox user
# may not be able to write there; apt then falls back to root (a warning).
if ! (cd "$tmp" && apt-get download -q "$pkg" </dev/null >&2); then
    echo "v2guest: download failed; refreshing the package lists once" >&2
    apt-get update -q </dev/null >&2
    (cd "$tmp" && apt-get download -q "$pkg" </dev/null >&2)
fi
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"

# vmlinuz is a bzImage: x86 boot code followed by the xz-compressed ELF.
python3 - "$tmp"/x/boot/vmlinuz-* "$tmp/x/vmlinux" <<'PYTHON'
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("v2guest: no xz stream in %s (kernel not built with CONFIG_KERNEL_XZ?)" % sys.argv[1])
elf = lzma.LZMADecompressor().decompress(data[start:])
if elf[:4] != b"\x7fELF":
    sys.exit("v2guest: the xz stream in %s is not an ELF kernel" % sys.argv[1])
open(sys.argv[2], "wb").write(elf)
PYTHON

rm -rf "$dest"
mv "$tmp/x" "$dest"
remember
echo "$dest"
