#!/usr/bin/env bash
# After the test suite: nothing husk made may be left on the host.
#   - no cgroup under a test-owned parent (husk-test, husk-demo, husk-bench, husk-conformance)
#   - no process started by a test (they carry HUSK_TEST_MARKER in their environment)
#   - no mount whose mount point lies in a test's temp directory
#   - no state directory under the default --root of a test run
# Prints what it finds and exits 1 if anything is left.
set -uo pipefail

leaks=0
report() { echo "leak: $*"; leaks=$((leaks + 1)); }

# Container cgroups are removed by `delete`; their parents (test-owned, or husk's default
# /husk for a spec without cgroupsPath) are left like runc leaves them, so remove them here
# once empty. A cgroup below a parent is a container's that was not deleted: a leak
# (reported, then removed when empty so the next run starts clean).
for parent in husk-test husk-demo husk-bench husk-conformance husk; do
    for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$root/$parent" ] || continue
        while IFS= read -r d; do
            report "cgroup $d"
        done < <(find "$root/$parent" -mindepth 1 -type d 2>/dev/null)
        find "$root/$parent" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
done

for env in /proc/[0-9]*/environ; do
    pid="${env#/proc/}"; pid="${pid%/environ}"
    if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -q '^HUSK_TEST_MARKER='; then
        report "process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
    fi
done

while read -r _ _ _ _ mnt _; do
    case "$mnt" in
        /tmp/.tmp*|/tmp/husk-*) report "mount $mnt" ;;
    esac
done < /proc/self/mountinfo

if [ "$leaks" -gt 0 ]; then
    echo "check-leaks: $leaks leftovers" >&2
    exit 1
fi
echo "check-leaks: no leftover cgroups, processes or mounts"
