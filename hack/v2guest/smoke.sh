#!/usr/bin/env bash
# Smoke test of the cgroup v2 guest: boot it and check it is a pure v2 host.
#
#   hack/v2guest/smoke.sh [--with-husk | --runtime PATH]
#
#   --with-husk     also run a busybox container with husk ($HUSK_BIN, else
#                   target/release/husk) in it
#   --runtime PATH  same with another runtime (e.g. /usr/sbin/runc, to check the
#                   flow itself while husk cannot run containers yet)
#
# Exits non-zero, saying why, if a check fails, the guest does not boot, or
# the result line never comes (timeout: V2GUEST_TIMEOUT, default 120 s).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runtime=''
while [ $# -gt 0 ]; do
    case "$1" in
        --with-husk) runtime="${HUSK_BIN:-$repo/target/release/husk}"; shift ;;
        --runtime) runtime="${2?--runtime needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" >&2; exit 2 ;;
        *) echo "smoke: unknown argument $1" >&2; exit 2 ;;
    esac
done

work="$(mktemp -d /tmp/husk-v2smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT
args=(--include "$here/check-v2.sh:/smoke/check-v2.sh")
payload=(sh /smoke/check-v2.sh)
if [ -n "$runtime" ]; then
    [ -x "$runtime" ] || { echo "smoke: runtime $runtime is not an executable" >&2; exit 1; }
    runtime="$(realpath "$runtime")"
    "$repo/hack/mkbundle.sh" \
        --cmd 'echo "hostname=$(hostname)"; echo "pid=$$"; cat /proc/self/cgroup' \
        "$work/bundle" smoke
    # Two containers run in the guest ("run", then "create"); cgroupsPath
    # comes from config.json, so each gets its own copy of the bundle.
    cp -a "$work/bundle" "$work/bundle-create"
    python3 - "$work/bundle/config.json" "$work/bundle-create/config.json" <<'PYTHON'
import json, sys
for path, cgroup in ((sys.argv[1], "/husk-demo/smoke-run"), (sys.argv[2], "/husk-demo/smoke-create")):
    config = json.load(open(path))
    config["linux"]["cgroupsPath"] = cgroup
    config["linux"]["resources"]["memory"] = {"limit": 67108864}
    config["linux"]["resources"]["pids"] = {"limit": 32}
    json.dump(config, open(path, "w"), indent="\t")
PYTHON
    args+=(--include "$work/bundle:/smoke/bundle" --include "$work/bundle-create:/smoke/bundle-create"
           --include "$runtime")
    payload+=("$runtime" /smoke/bundle)
fi

start=$(date +%s.%N)
set +e
"$here/run.sh" "${args[@]}" -- "${payload[@]}"
rc=$?
set -e
elapsed=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
if [ "$rc" -ne 0 ]; then
    echo "smoke: FAILED (rc=$rc) after ${elapsed}s" >&2
    exit 1
fi
echo "smoke: cgroup v2 guest OK${runtime:+ (with $runtime)} in ${elapsed}s" >&2
