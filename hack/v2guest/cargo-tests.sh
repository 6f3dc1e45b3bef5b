#!/usr/bin/env bash
# Run the workspace's cargo test binaries inside the cgroup v2 guest.
#
#   hack/v2guest/cargo-tests.sh [CARGO_ARGS...] [-- TEST_ARGS...]
#
# Builds the test binaries on the host (`cargo test --release --no-run
# --message-format=json`, plus CARGO_ARGS, default --workspace), packs them,
# their package directories (for fixtures), husk and runc/crun (for
# comparisons) into the guest, and runs each binary there as cargo would:
# from its package directory, with TEST_ARGS, HUSK_BIN pointing at husk.
# Exits non-zero if any binary fails or the guest gives no result.
# Timeout: V2GUEST_TIMEOUT, default 900 s (TCG is several times slower).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cargo_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do cargo_args+=("$1"); shift; done
[ $# -eq 0 ] || shift
test_args=("$@")
[ ${#cargo_args[@]} -gt 0 ] || cargo_args=(--workspace)

work="$(mktemp -d /tmp/husk-v2tests.XXXXXX)"
trap 'rm -rf "$work"' EXIT

(cd "$repo" && cargo test --release --no-run --message-format=json "${cargo_args[@]}") \
    > "$work/cargo.json"
# One "EXECUTABLE<TAB>PACKAGE_DIR" line per test binary.
python3 - "$work/cargo.json" > "$work/tests" <<'PYTHON'
import json, os, sys
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["profile"]["test"]:
        print("%s\t%s" % (msg["executable"], os.path.dirname(msg["manifest_path"])))
PYTHON
if [ ! -s "$work/tests" ]; then
    echo "v2 tests: cargo built no test binaries" >&2
    exit 1
fi

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
args=()
{
    echo '#!/bin/sh'
    echo "export HUSK_BIN=$(quote "$(realpath "${HUSK_BIN:-$repo/target/release/husk}")") RUST_BACKTRACE=1"
    echo 'failed=0 total=0'
    while IFS=$'\t' read -r exe pkgdir; do
        args+=(--include "$exe")
        targs=''
        for a in "${test_args[@]}"; do targs+=" $(quote "$a")"; done
        echo "total=\$((total + 1)); echo \"=== v2 guest: $(quote "$exe")\""
        echo "(cd $(quote "$pkgdir") && $(quote "$exe")$targs) || { failed=\$((failed + 1)); echo \"=== FAILED: $(quote "$exe")\"; }"
    done < "$work/tests"
    echo 'echo "=== v2 guest: $total test binaries, $failed failed"'
    echo '[ "$failed" -eq 0 ]'
} > "$work/run-tests.sh"
cut -f2 "$work/tests" | sort -u > "$work/pkgdirs"
while read -r d; do
    args+=(--include "$d")
done < "$work/pkgdirs"
# Binaries the tests start by CARGO_BIN_EXE_* path (husk itself comes with run.sh).
for bin in "$repo/target/release/containerd-shim-husk-v2"; do
    [ -x "$bin" ] && args+=(--include "$bin")
done
# util-linux's unshare: the rootfs kernel tests need --propagation, which busybox lacks.
for rt in /usr/sbin/runc /usr/bin/crun /usr/bin/unshare; do
    [ -x "$rt" ] && args+=(--include "$rt")
done

V2GUEST_TIMEOUT="${V2GUEST_TIMEOUT:-900}" \
    "$here/run.sh" "${args[@]}" --include "$work/run-tests.sh:/husk-v2/run-tests.sh" \
    -- sh /husk-v2/run-tests.sh
