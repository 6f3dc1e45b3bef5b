#!/usr/bin/env bash
# containerd-shim-husk-v2 on a pure cgroup v2 host: boots the qemu guest
# (hack/v2guest/run.sh) with Debian's containerd + ctr, the shim, husk and a
# busybox image, and runs hack/v2guest/shim-e2e.sh in it (ctr run, Stats as
# io.containerd.cgroups.v2.Metrics, memory_events, TaskOOM).
#
# Usage: hack/shim-e2e-v2.sh [SHIM_BIN [HUSK_BIN]]   (defaults: target/release/…)
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
SHIM_BIN=${1:-$ROOT_DIR/target/release/containerd-shim-husk-v2}
HUSK_BIN=${2:-$ROOT_DIR/target/release/husk}
for b in "$SHIM_BIN" "$HUSK_BIN"; do
    [ -x "$b" ] || { echo "shim-e2e-v2: $b missing (build first: cargo build --release)" >&2; exit 2; }
done
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    echo "shim-e2e-v2: installing containerd (apt)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd) >/dev/null
fi
T=$(mktemp -d /tmp/husk-shim-e2e-v2.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$ROOT_DIR/hack/busybox-image.sh" "$T/image.tar" docker.io/library/husk-busybox:e2e
G=/husk-v2/shim
"$ROOT_DIR/hack/v2guest/run.sh" --timeout "${V2GUEST_TIMEOUT:-300}" --husk "$HUSK_BIN" \
    --include "$(command -v containerd):$G/bin/containerd" \
    --include "$(command -v ctr):$G/bin/ctr" \
    --include "$SHIM_BIN:$G/bin/containerd-shim-husk-v2" \
    --include "$T/image.tar:$G/image.tar" \
    --include "$ROOT_DIR/hack/v2guest/shim-e2e.sh:$G/shim-e2e.sh" \
    --include "$ROOT_DIR/hack/containerd-config.sh:$G/containerd-config.sh" \
    -- sh "$G/shim-e2e.sh" "$G"
