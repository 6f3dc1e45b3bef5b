#!/usr/bin/env bash
# Build a one-layer OCI image archive holding /bin/busybox and a few applet links,
# for `ctr images import` (no registry needed).
#
# Usage: hack/busybox-image.sh OUT.tar IMAGE_NAME
#   IMAGE_NAME is the full reference ctr lists, e.g. docker.io/library/husk-busybox:e2e
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
out=$1 name=$2
d=$(mktemp -d /tmp/husk-busybox-image.XXXXXX)
trap 'rm -rf "$d"' EXIT
r=$d/rootfs
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$d/blobs/sha256"
cp /bin/busybox "$r/bin/busybox"
for a in sh echo sleep cat dd head wc true false ps ls tty yes id; do ln -s busybox "$r/bin/$a"; done
tar -C "$r" -cf "$d/layer.tar" .
blob() { # FILE -> "digest size", moved into blobs/sha256
    local sum size
    sum=$(sha256sum "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
    mv "$1" "$d/blobs/sha256/$sum"
    echo "$sum $size"
}
read -r ld ls < <(blob "$d/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" > "$d/config"
read -r cd cs < <(blob "$d/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" > "$d/manifest"
read -r md ms < <(blob "$d/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$name" "${name##*:}" > "$d/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
rm -rf "$r"
tar -C "$d" -cf "$out" oci-layout index.json blobs
