#!/bin/sh
# Guest half of hack/shim-e2e-v2.sh (busybox sh, inside the pure cgroup v2 guest):
# a private containerd drives busybox containers through containerd-shim-husk-v2.
#
#   sh shim-e2e.sh DIR    DIR holds bin/{containerd,ctr,containerd-shim-husk-v2}
#                         image.tar and containerd-config.sh; husk is on PATH (/usr/local/bin/husk)
#
# Checks what only a v2 host shows: Stats as io.containerd.cgroups.v2.Metrics
# (`ctr task metrics`), its memory_events fed from memory.events, and TaskOOM
# from the memory.events watcher. Prints "N passed, M failed".
set -u
D=${1:?usage: shim-e2e.sh DIR}
RUNTIME=io.containerd.husk.v2
NS=husk-v2
CG=/husk-test/shim-v2
IMG=docker.io/library/husk-busybox:e2e
T=/tmp/husk-shim-v2
SOCK=$T/containerd.sock
mkdir -p "$T/root" "$T/state"
export PATH="$D/bin:$PATH"

ctr_() { ctr --address "$SOCK" --namespace "$NS" "$@"; }
PASS=0 FAIL=0
ok()  { PASS=$((PASS+1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL+1)); echo "FAIL - $1"; [ $# -gt 1 ] && printf '       %s\n' "$2" | head -30; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2] got [$3]"; fi; }
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
    exit $?
}
state() { ctr_ task ls | awk -v id="$1" '$1==id {print $3}'; }
# `ctr task metrics` table value of METRIC
metric() { awk -v m="$2" '$1==m {print $2}' "$1"; }

sh "$D/containerd-config.sh" "$T" "$SOCK" > "$T/config.toml"
containerd --config "$T/config.toml" > "$T/containerd.log" 2>&1 &
for _ in $(seq 200); do ctr --address "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
if ! ctr --address "$SOCK" version >/dev/null 2>&1; then
    bad "containerd starts" "$(tail -20 "$T/containerd.log")"; finish
fi
if ctr_ images import "$D/image.tar" > "$T/import.log" 2>&1; then
    ok "busybox image imported"
else
    bad "busybox image imported" "$(cat "$T/import.log")"; finish
fi
ctr_ events > "$T/events.log" 2>&1 &

# 1. a one-shot container through the shim
check "ctr run --rm echo prints its output" "hi-v2" \
    "$(ctr_ run --rm --runtime "$RUNTIME" --cgroup "$CG/t-echo" "$IMG" t-echo echo hi-v2 2>&1)"

# 2. Stats: a 64 MiB / 32-pid container in which a 96 MiB dd is OOM-killed
#    while its init (sh, then sleep) lives on.
ctr_ run -d --runtime "$RUNTIME" --cgroup "$CG/t-m" --memory-limit 67108864 "$IMG" t-m \
    sh -c 'dd if=/dev/zero of=/dev/null bs=100663296 count=1; exec sleep 1000' > "$T/run-m.log" 2>&1
check "memory-limited container runs" RUNNING "$(state t-m)"
for _ in $(seq 100); do grep -q /tasks/oom "$T/events.log" && break; sleep 0.1; done
if grep -q /tasks/oom "$T/events.log"; then
    ok "TaskOOM published from memory.events"
else
    bad "TaskOOM published from memory.events" "$(cat "$T/events.log"; cat "/sys/fs/cgroup$CG/t-m/memory.events" 2>&1)"
fi
ctr_ task metrics t-m > "$T/metrics.txt" 2>&1
sed 's/^/       | /' "$T/metrics.txt"
if grep -q '^cpu.usage_usec' "$T/metrics.txt" && grep -q '^memory.usage_limit' "$T/metrics.txt"; then
    ok "ctr task metrics shows cgroup v2 metrics"
else
    bad "ctr task metrics shows cgroup v2 metrics" "$(cat "$T/metrics.txt")"
fi
check "memory.usage_limit is memory.max" 67108864 "$(metric "$T/metrics.txt" memory.usage_limit)"
check "pids.current counts the init" 1 "$(metric "$T/metrics.txt" pids.current)"
check "pids.limit is pids.max (max = 2^64-1)" 18446744073709551615 "$(metric "$T/metrics.txt" pids.limit)"
usec=$(metric "$T/metrics.txt" cpu.usage_usec)
if [ "${usec:-0}" -gt 0 ]; then ok "cpu.usage_usec is counted ($usec)"; else bad "cpu.usage_usec is counted" "$(cat "$T/metrics.txt")"; fi
ctr_ task metrics --format json t-m > "$T/metrics.json" 2>&1
kills=$(tr -d ' \n' < "$T/metrics.json" | grep -o '"memory_events":{[^}]*}' | grep -o '"oom_kill":[0-9]*' | cut -d: -f2)
check "memory_events.oom_kill in the v2 metrics matches memory.events" \
    "$(awk '$1=="oom_kill" {print $2}' "/sys/fs/cgroup$CG/t-m/memory.events")" "${kills:-none}"
[ "${kills:-0}" -ge 1 ] 2>/dev/null && ok "the OOM kill is counted ($kills)" || bad "the OOM kill is counted" "$(cat "$T/metrics.json")"

ctr_ task kill -s SIGKILL t-m >/dev/null 2>&1
for _ in $(seq 50); do [ "$(state t-m)" = STOPPED ] && break; sleep 0.1; done
ctr_ task rm t-m >/dev/null 2>&1 && ctr_ container rm t-m >/dev/null 2>&1
check "task rm + container rm succeed" 0 $?

# 3. leaks
sleep 0.3
check "no shim processes left" "" "$(ps -o pid,args | grep '[c]ontainerd-shim-husk-v2')"
check "no container cgroups left" "" "$(find "/sys/fs/cgroup$CG" -mindepth 1 -type d 2>/dev/null)"
finish
