#!/bin/sh
# Runs INSIDE the v2 guest (busybox sh), from hack/v2guest/smoke.sh.
#
#   check-v2.sh [RUNTIME BUNDLE_DIR]
#
# BUNDLE_DIR runs with cgroupsPath /husk-demo/smoke-run; BUNDLE_DIR-create is
# the same with cgroupsPath /husk-demo/smoke-create (both: memory 64 MiB,
# pids 32).
# Proves the guest is a pure cgroup v2 host; with RUNTIME, also runs a
# busybox container with it and checks what it created in the v2 hierarchy.
# Prints "ok:"/"FAIL:" per check; exits with the number of failures.
cg=/sys/fs/cgroup
failures=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() { # DESCRIPTION WANT GOT
    if [ "$2" = "$3" ]; then ok "$1 = $3"; else bad "$1: want '$2', got '$3'"; fi
}

# --- the host itself
expect "fs type of $cg (CGROUP2_SUPER_MAGIC)" 63677270 "$(stat -fc %t $cg)"
v1="$(awk '$3 == "cgroup"' /proc/mounts)"
expect "cgroup v1 mounts in /proc/mounts" "" "$v1"
controllers="$(cat $cg/cgroup.controllers)"
echo "   cgroup.controllers: $controllers"
for c in cpu memory pids io cpuset; do
    case " $controllers " in
        *" $c "*) ok "controller $c available" ;;
        *) bad "controller $c missing from cgroup.controllers" ;;
    esac
done
expect "root cgroup.subtree_control" "$controllers" "$(cat $cg/cgroup.subtree_control)"
if grep -q . /proc/self/cgroup && [ "$(cat /proc/self/cgroup)" = "0::/" ]; then
    ok "/proc/self/cgroup is the single v2 line 0::/"
else
    bad "/proc/self/cgroup: $(cat /proc/self/cgroup | tr '\n' ' ')"
fi

child=$cg/husk-smoke
if mkdir $child; then
    echo 67108864 > $child/memory.max
    expect "child memory.max read back" 67108864 "$(cat $child/memory.max)"
    echo 16 > $child/pids.max
    expect "child pids.max read back" 16 "$(cat $child/pids.max)"
    got="$(sh -c "echo \$\$ > $child/cgroup.procs && cat /proc/self/cgroup")"
    expect "/proc/self/cgroup of a process moved into the child" "0::/husk-smoke" "$got"
    rmdir $child || bad "rmdir $child"
else
    bad "mkdir $child"
fi

# --- a container, when a runtime is given
if [ $# -ge 2 ]; then
    rt="$1" bundle="$2"
    state=/run/husk-smoke
    echo "   runtime: $rt ($("$rt" --version 2>&1 | head -n1))"
    out="$("$rt" --root $state run --bundle "$bundle" smoke-run 2>&1)"
    rc=$?
    echo "$out" | sed 's/^/   | /'
    expect "exit status of '$rt run'" 0 "$rc"
    case "$out" in *"pid=1"*) ok "container is pid 1 in its pid namespace" ;; *) bad "no pid=1 in the container output" ;; esac
    case "$out" in *"hostname=husk"*) ok "container hostname is husk" ;; *) bad "no hostname=husk in the container output" ;; esac
    "$rt" --root $state delete -f smoke-run >/dev/null 2>&1

    # Limits from config.json land in the container's v2 cgroup.
    ccg=$cg/husk-demo/smoke-create
    if "$rt" --root $state create --bundle "$bundle-create" smoke-create; then
        ok "'$rt create' succeeded"
        expect "memory.max of the created container" 67108864 "$(cat $ccg/memory.max 2>&1)"
        expect "pids.max of the created container" 32 "$(cat $ccg/pids.max 2>&1)"
        pid="$("$rt" --root $state state smoke-create | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')"
        if [ -n "$pid" ]; then
            expect "cgroup.procs of the created container" "$pid" "$(cat $ccg/cgroup.procs 2>&1)"
        else
            bad "'$rt state smoke-create' shows no pid"
        fi
        "$rt" --root $state delete -f smoke-create
        expect "exit status of '$rt delete -f'" 0 "$?"
        if [ -e $ccg ]; then bad "$ccg still exists after delete"; else ok "container cgroup removed on delete"; fi
    else
        bad "'$rt create' failed"
    fi
    rmdir $cg/husk-demo 2>/dev/null
fi

echo "checks failed: $failures"
exit $failures
