#!/usr/bin/env bash
# Run one busybox container with husk and show what it sees.
#
#   HUSK=/path/to/runtime hack/demo.sh     (default: target/release/husk)
#
# The container prints its hostname, its pid (1: it has its own pid namespace)
# and its mount table. Everything is cleaned up on exit, also on failure:
# the container (`delete -f`), its state dir, the bundle and its cgroup.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
husk="${HUSK:-$repo/target/release/husk}"
if [ ! -x "$husk" ]; then
    echo "demo: runtime $husk not found (run make build, or set HUSK=)" >&2
    exit 1
fi

id="husk-demo-$$"
work="$(mktemp -d /tmp/husk-demo.XXXXXX)"
cleanup() {
    "$husk" --root "$work/state" delete -f "$id" >/dev/null 2>&1 || true
    # The runtime removes its own cgroup; remove what is left (rmdir only
    # removes empty cgroups, so this cannot disturb anything else).
    for parent in /sys/fs/cgroup/husk-demo /sys/fs/cgroup/*/husk-demo; do
        [ -d "$parent" ] || continue
        rmdir "$parent/$id" 2>/dev/null || true
        rmdir "$parent" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

"$repo/hack/mkbundle.sh" \
    --cmd 'echo "hostname=$(hostname)"; echo "pid=$$"; echo "--- /proc/self/mounts"; cat /proc/self/mounts' \
    "$work/bundle" "$id"

echo "demo: $husk run $id"
"$husk" --root "$work/state" run --bundle "$work/bundle" "$id" | tee "$work/out"
if ! grep -qx 'pid=1' "$work/out" || ! grep -qx 'hostname=husk' "$work/out"; then
    echo "demo: FAILED: the container did not report hostname=husk and pid=1" >&2
    exit 1
fi
echo "demo: container exited 0"
