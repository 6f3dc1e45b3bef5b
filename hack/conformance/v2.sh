#!/bin/bash
# Runs runtime-tools' validation suite against husk inside the pure cgroup v2
# guest (hack/v2guest/run.sh), then prints the per-test table the host runner
# prints, from the guest's console.
#
#   hack/conformance/v2.sh [--tests a,b] [--expect FILE [--check]]
#
# In the guest (busybox only, no python) a small shell loop runs each test
# like run.py does: its own --root, TMPDIR and cgroup
# /sys/fs/cgroup/husk-conformance/<test>/runner, a 90 s timeout, cleanup of
# leftover containers; each test's TAP goes to the console between
# "=== CONFORMANCE-BEGIN <test> rc=N" and "=== CONFORMANCE-END" lines, which
# run.py --from-v2-log turns into the table and the expectation check.
# The guest gets: the suite (built by build.sh; the rootfs tarball is passed
# decompressed under its .tar.gz name, which busybox tar cannot inflate), husk,
# and util-linux's unshare (busybox's lacks --cgroup).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C=$ROOT/.cache/conformance
tests=''
pass_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tests) tests="${2//,/ }"; shift 2 ;;
        --expect) pass_args+=(--expect "$2"); shift 2 ;;
        --check) pass_args+=(--check husk); shift ;;
        *) echo "v2.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

"$ROOT/hack/conformance/build.sh"
HUSK=${HUSK:-$ROOT/target/release/husk}
[ -x "$HUSK" ] || { echo "v2.sh: $HUSK missing: cargo build --release" >&2; exit 1; }

work=$(mktemp -d /tmp/husk-conformance-v2.XXXXXX)
trap 'rm -rf "$work"' EXIT
G=/conformance   # where the suite lands in the guest
mkdir -p "$work/bin"
cp "$C"/bin/*.t "$C/bin/runtimetest" "$work/bin/"
gzip -dc "$C/bin/rootfs-amd64.tar.gz" > "$work/bin/rootfs-amd64.tar.gz"
if [ -z "$tests" ]; then
    tests=$(cd "$C/bin" && ls *.t | sed 's/\.t$//' | tr '\n' ' ')
fi

cat > "$work/guest.sh" <<EOF
#!/bin/sh
# Runs in the v2 guest.
export PATH=/usr/local/bin:\$PATH
CG=/sys/fs/cgroup
enable() { for c in \$(cat "\$1/cgroup.controllers"); do echo "+\$c" > "\$1/cgroup.subtree_control" 2>/dev/null; done; }
enable \$CG
mkdir -p \$CG/husk-conformance
enable \$CG/husk-conformance
for t in $tests; do
    d=\$CG/husk-conformance/\$t
    mkdir -p \$d/runner
    enable \$d
    w=\$(mktemp -d /tmp/conf.XXXXXX)
    mkdir \$w/root \$w/tmp
    printf '#!/bin/sh\nexec $HUSK --root %s "\$@"\n' \$w/root > \$w/husk
    chmod 755 \$w/husk
    start=\$(date +%s)
    (cd $G && RUNTIME=\$w/husk TMPDIR=\$w/tmp OCI_CONFORMANCE_ABS_CGROUP=/husk-conformance/\$t/cgrouptest \\
        sh -c 'echo \$\$ > "\$1/runner/cgroup.procs" && exec timeout -s KILL 90 ./"\$2".t' sh \$d \$t) \\
        > \$w/out 2> \$w/err < /dev/null
    rc=\$?
    echo "=== CONFORMANCE-BEGIN \$t rc=\$rc secs=\$((\$(date +%s) - start))"
    cat \$w/out
    echo "=== CONFORMANCE-END \$t"
    sed 's/^/=== stderr: /' \$w/err | head -5
    for id in \$(\$w/husk list -q 2>/dev/null); do \$w/husk delete -f "\$id" >/dev/null 2>&1; done
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=\$(find \$d -name cgroup.procs -exec cat {} + 2>/dev/null)
        [ -z "\$pids" ] && break
        kill -9 \$pids 2>/dev/null; sleep 0.2
    done
    find \$d -depth -type d -exec rmdir {} + 2>/dev/null
    rm -rf \$w
done
echo "=== CONFORMANCE-DONE"
EOF
chmod 755 "$work/guest.sh"

log="$C/v2-console.log"
V2GUEST_TIMEOUT=${V2GUEST_TIMEOUT:-3000} "$ROOT/hack/v2guest/run.sh" \
    --husk "$HUSK" --include "$work/bin:$G" --include "$work/guest.sh:/conformance-guest.sh" \
    --include "$(command -v unshare):/usr/local/bin/unshare" \
    --log "$log" -- /bin/sh /conformance-guest.sh > /dev/null || true
# Not exec: the EXIT trap removes $work.
"$ROOT/hack/conformance/run.py" --from-v2-log "$log" "${pass_args[@]}"
