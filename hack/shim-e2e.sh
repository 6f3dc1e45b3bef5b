#!/usr/bin/env bash
# End-to-end test of containerd-shim-husk-v2 under a private containerd.
#
# Usage: hack/shim-e2e.sh [SHIM_BIN [HUSK_BIN]]   (defaults: the static shim `make build`
# links, target/<host triple>/release/…, else target/release/…; husk from target/release)
# Installs Debian's containerd if missing, runs containerd by hand with its own
# root/state/sockets under a temp dir (CRI plugin off), copies the shim and husk
# into a temp dir on containerd's PATH, imports a busybox image made from
# /bin/busybox, and drives containers with `ctr --runtime io.containerd.husk.v2`.
# Containers' cgroups live under /husk-test/shim-e2e-<pid>. Prints
# "N passed, M failed"; exits non-zero on any failure.
set -u

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
HOST_TRIPLE=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
SHIM_BIN=${1:-$ROOT_DIR/target/$HOST_TRIPLE/release/containerd-shim-husk-v2}
[ -x "$SHIM_BIN" ] || SHIM_BIN=$ROOT_DIR/target/release/containerd-shim-husk-v2
HUSK_BIN=${2:-$ROOT_DIR/target/release/husk}
# shim/examples/task_update.rs (the Update RPC; ctr 1.6 cannot send it)
TASK_UPDATE=${TASK_UPDATE:-$ROOT_DIR/target/release/examples/task_update}
RUNTIME=io.containerd.husk.v2
NS=husk-e2e
CG=/husk-test/shim-e2e-$$
IMG=docker.io/library/husk-busybox:e2e

[ "$(id -u)" = 0 ] || { echo "shim-e2e: must run as root" >&2; exit 2; }
for b in "$SHIM_BIN" "$HUSK_BIN" "$TASK_UPDATE" /bin/busybox; do
    [ -x "$b" ] || { echo "shim-e2e: $b missing (build first: make build, cargo build --release -p husk-shim --example task_update)" >&2; exit 2; }
done
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    echo "shim-e2e: installing containerd (apt)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd) >/dev/null
fi

T=$(mktemp -d /tmp/husk-shim-e2e.XXXXXX)
SOCK=$T/containerd.sock
CTRD_PID=
EVENTS_PID=
SOCKS_BEFORE=$(ls /run/containerd/s 2>/dev/null | sort)

ctr_() { ctr --address "$SOCK" --namespace "$NS" "$@"; }

cleanup() {
    set +e
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1; ctr_ tasks rm -f "$id" >/dev/null 2>&1; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$id" >/dev/null 2>&1; done
    [ -n "$EVENTS_PID" ] && kill "$EVENTS_PID" 2>/dev/null
    if [ -n "$CTRD_PID" ]; then
        kill "$CTRD_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$CTRD_PID" 2>/dev/null
    fi
    # Mounts containerd (or a failed test) left under the temp dir, deepest first.
    awk -v t="$T" '$5 ~ "^"t {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    for c in /sys/fs/cgroup/*/husk-test/shim-e2e-$$; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

PASS=0 FAIL=0
ok()   { PASS=$((PASS+1)); echo "ok   - $1"; }
bad()  { FAIL=$((FAIL+1)); echo "FAIL - $1"; [ $# -gt 1 ] && printf '       %s\n' "$2" | head -20; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2] got [$3]"; fi
}

# --- shim and husk on containerd's PATH (copies keep the names in ps) ---
mkdir -p "$T/bin" "$T/root" "$T/state"
cp "$SHIM_BIN" "$T/bin/containerd-shim-husk-v2"
cp "$HUSK_BIN" "$T/bin/husk"

"$ROOT_DIR/hack/containerd-config.sh" "$T" "$SOCK" > "$T/config.toml"
PATH="$T/bin:$PATH" containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do ctr --address "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$SOCK" version >/dev/null 2>&1 || { echo "containerd did not start"; tail "$T/containerd.log"; exit 1; }

# --- a busybox OCI image made by hand ---
"$ROOT_DIR/hack/busybox-image.sh" "$T/image.tar" "$IMG"
if ctr_ images import "$T/image.tar" >"$T/import.log" 2>&1 && ctr_ images ls -q | grep -qx "$IMG"; then
    ok "busybox image imported"
else
    bad "busybox image imported" "$(cat "$T/import.log")"; echo "$PASS passed, $FAIL failed"; exit 1
fi

ctr_ events > "$T/events.log" 2>&1 &
EVENTS_PID=$!
sleep 0.3

state_of() { ctr_ task ls | awk -v id="$1" '$1==id {print $3}'; }
run() { local id=$1; shift; ctr_ run --rm --runtime "$RUNTIME" --cgroup "$CG/$id" "$IMG" "$id" "$@"; }

# 1. output of a one-shot container
check "ctr run echo hi prints hi" "hi" "$(run t-echo echo hi 2>&1)"

# 2. exit status
run t-exit sh -c 'exit 7' >/dev/null 2>&1; check "exit status 7 comes back" 7 $?

# 2b. stdin reaches the container and its EOF (CloseIO) ends it; a terminal for the init
check "stdin piped into ctr run reaches cat and its EOF ends it" "from-stdin" "$(echo from-stdin | ctr_ run --rm --runtime "$RUNTIME" --cgroup "$CG/t-in" "$IMG" t-in cat 2>&1)"
out=$(script -qec "ctr --address $SOCK --namespace $NS run --rm -t --runtime $RUNTIME --cgroup $CG/t-tty $IMG t-tty sh -c 'tty; stty size'" /dev/null 2>&1 | tr -d '\r')
case "$out" in */dev/pts/0*) ok "ctr run -t gives the init a terminal";; *) bad "ctr run -t gives the init a terminal" "$out";; esac

# 2d. runtime options as containerd's CRI sends them for a non-runc runtime type:
#     runtimeoptions.v1.Options naming a TOML file of runc options (ctr sends the same
#     with --runtime-config-path).
cat > "$T/bin/husk-logged" <<SH
#!/bin/sh
echo "\$*" >> "$T/husk-argv.log"
exec "$T/bin/husk" "\$@"
SH
chmod +x "$T/bin/husk-logged"
printf 'BinaryName = "%s"\nNoNewKeyring = true\n' "$T/bin/husk-logged" > "$T/opts-ok.toml"
check "ConfigPath options: BinaryName's husk runs the container" "hi" \
    "$(ctr_ run --rm --runtime "$RUNTIME" --runtime-config-path "$T/opts-ok.toml" --cgroup "$CG/t-opt" "$IMG" t-opt echo hi 2>&1)"
if grep -q -- " create .*--no-new-keyring" "$T/husk-argv.log" 2>/dev/null; then
    ok "ConfigPath options: NoNewKeyring = true becomes create --no-new-keyring"
else
    bad "ConfigPath options: NoNewKeyring = true becomes create --no-new-keyring" "$(cat "$T/husk-argv.log" 2>&1)"
fi
printf 'SystemdCgroup = true\n' > "$T/opts-systemd.toml"
out=$(ctr_ run --rm --runtime "$RUNTIME" --runtime-config-path "$T/opts-systemd.toml" --cgroup "$CG/t-opt2" "$IMG" t-opt2 true 2>&1)
case "$?:$out" in
    0:*) bad "ConfigPath options: SystemdCgroup = true is refused by name" "the container ran: $out" ;;
    *"SystemdCgroup = true (in ConfigPath"*"not supported"*) ok "ConfigPath options: SystemdCgroup = true is refused by name" ;;
    *) bad "ConfigPath options: SystemdCgroup = true is refused by name" "$out" ;;
esac

# 2c. husk's error (from its log.json) reaches the user.
out=$(run t-bad nosuchcmd 2>&1)
case "$out" in *'create failed'*'"nosuchcmd"'*) ok "husk's create error reaches ctr";; *) bad "husk's create error reaches ctr" "$out";; esac
ctr_ containers rm t-bad >/dev/null 2>&1

# 3. detached container, exec with and without a tty, ps, metrics, pause/resume, kill, rm
ctr_ run -d --runtime "$RUNTIME" --cgroup "$CG/t-d" "$IMG" t-d sleep 1000 >/dev/null 2>&1
check "ctr run -d leaves a RUNNING task" RUNNING "$(ctr_ task ls | awk '$1=="t-d"{print $3}')"
check "ctr task exec prints the output" "exec-out" "$(ctr_ task exec --exec-id e1 t-d echo exec-out 2>&1)"
ctr_ task exec --exec-id e2 t-d sh -c 'exit 3' >/dev/null 2>&1; check "exec exit status 3" 3 $?
out=$(script -qec "ctr --address $SOCK --namespace $NS task exec -t --exec-id e3 t-d tty" /dev/null 2>&1 | tr -d '\r')
case "$out" in */dev/pts/*) ok "ctr task exec -t gets a terminal ($out)";; *) bad "ctr task exec -t gets a terminal" "$out";; esac
out=$(ctr_ task ps t-d 2>&1)
pid=$(ctr_ task ls | awk '$1=="t-d"{print $2}')
if echo "$out" | grep -qw "$pid"; then ok "ctr task ps lists the init pid $pid"; else bad "ctr task ps lists the init pid" "$out"; fi
out=$(ctr_ task metrics t-d 2>&1)
if echo "$out" | grep -q "memory.usage_in_bytes\|pids.current"; then ok "ctr task metrics shows cgroup metrics"; else bad "ctr task metrics" "$out"; fi
# Update RPC: ctr 1.6 has no `task update`; shim/examples/task_update.rs calls the RPC on
# the shim's socket as containerd does, and the container's cgroup files must follow.
addr=$(cat "$T/state/io.containerd.runtime.v2.task/$NS/t-d/address" 2>/dev/null)
if out=$("$TASK_UPDATE" "$addr" t-d '{"memory":{"limit":50331648},"pids":{"limit":77}}' 2>&1); then
    got="$(cat /sys/fs/cgroup/memory$CG/t-d/memory.limit_in_bytes 2>&1) $(cat /sys/fs/cgroup/pids$CG/t-d/pids.max 2>&1)"
    check "Update RPC sets memory and pids limits in the cgroup" "50331648 77" "$got"
else
    bad "Update RPC on the shim at [$addr]" "$out"
fi
ctr_ task pause t-d >/dev/null 2>&1
check "pause makes the task PAUSED" PAUSED "$(ctr_ task ls | awk '$1=="t-d"{print $3}')"
ctr_ task resume t-d >/dev/null 2>&1
check "resume makes it RUNNING again" RUNNING "$(ctr_ task ls | awk '$1=="t-d"{print $3}')"
ctr_ task kill -s SIGKILL t-d >/dev/null 2>&1
for _ in $(seq 50); do [ "$(ctr_ task ls | awk '$1=="t-d"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "kill stops the task" STOPPED "$(ctr_ task ls | awk '$1=="t-d"{print $3}')"
ctr_ task rm t-d >/dev/null 2>&1 && ctr_ container rm t-d >/dev/null 2>&1; check "task rm + container rm succeed" 0 $?
if kill -0 "$pid" 2>/dev/null; then bad "container init $pid is gone"; else ok "container init is gone"; fi

# 4. events
sleep 0.5
for t in /tasks/create /tasks/start /tasks/exec-added /tasks/exec-started /tasks/paused /tasks/resumed /tasks/exit /tasks/delete; do
    if grep -q "$t" "$T/events.log"; then ok "ctr events shows $t"; else bad "ctr events shows $t" "$(tail -5 "$T/events.log")"; fi
done

# 5. 50 MB through stdout
n=$(run t-big sh -c 'dd if=/dev/zero bs=1048576 count=50 2>/dev/null' 2>/dev/null | wc -c)
check "50 MB of stdout arrive whole" 52428800 "$n"

# 6. a shim killed with SIGKILL: containerd cleans up through `containerd-shim-husk-v2 delete`
ctr_ run -d --runtime "$RUNTIME" --cgroup "$CG/t-kill" "$IMG" t-kill sleep 1000 >/dev/null 2>&1
cpid=$(ctr_ task ls | awk '$1=="t-kill"{print $2}')
spid=$(cat "$T/state/io.containerd.runtime.v2.task/$NS/t-kill/shim.pid" 2>/dev/null)
if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
    kill -9 "$spid"
    for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    ctr_ task rm -f t-kill >/dev/null 2>&1; ctr_ container rm t-kill >/dev/null 2>&1
    for _ in $(seq 30); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
    if ! ctr_ container ls -q | grep -qx t-kill && ! kill -0 "$cpid" 2>/dev/null; then
        ok "shim killed with SIGKILL: task rm/container rm clean up (init $cpid gone)"
    else
        bad "shim killed with SIGKILL: cleanup" "$(ctr_ container ls; tail -5 "$T/containerd.log")"
    fi
    if grep -q 'exit_status:137\|exit_status=137\|"exit_status":137' "$T/events.log" || grep -q "t-kill" "$T/events.log"; then :; fi
else
    bad "shim.pid of t-kill found" "$(ls "$T/state/io.containerd.runtime.v2.task/$NS/t-kill" 2>&1)"
fi

# 7. OOM: a 64 MiB buffer in a 16 MiB memory cgroup
ctr_ run --rm --runtime "$RUNTIME" --cgroup "$CG/t-oom" --memory-limit 16777216 "$IMG" t-oom \
    dd if=/dev/zero of=/dev/null bs=67108864 count=1 >/dev/null 2>&1
st=$?
sleep 0.5
if grep -q /tasks/oom "$T/events.log"; then ok "TaskOOM published (exit status $st)"; else bad "TaskOOM published" "exit status $st"; fi

# 7b. a container in the host's pid namespace: its init's exit takes an exec'd process
# with it (containerd's runc shim: ShouldKillAllOnExit -> kill --all SIGKILL), since no
# pid namespace teardown would. A container with its own pid namespace is the kernel's job.
# (Joined through this script's own /proc/PID/ns/pid: /proc/1/ns may be unreadable here.)
runout=$(ctr_ run -d --runtime "$RUNTIME" --cgroup "$CG/t-hostpid" --with-ns "pid:/proc/$$/ns/pid" "$IMG" t-hostpid sleep 1000 2>&1)
ipid=$(ctr_ task ls | awk '$1=="t-hostpid"{print $2}')
ctr_ task exec -d --exec-id e-orphan t-hostpid sleep 1001 >/dev/null 2>&1
epid=
for _ in $(seq 30); do
    epid=$(ctr_ task ps t-hostpid 2>/dev/null | awk -v i="$ipid" 'NR>1 && $1!=i {print $1}' | head -1)
    [ -n "$epid" ] && break; sleep 0.1
done
if [ -n "$ipid" ] && [ -n "$epid" ] && kill -0 "$epid" 2>/dev/null; then
    kill -9 "$ipid"
    for _ in $(seq 50); do kill -0 "$epid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$epid" 2>/dev/null; then
        bad "host pid namespace: exec'd sleep $epid dies with init $ipid" "$(ps -o pid,stat,args -p "$epid")"
    else
        ok "host pid namespace: exec'd sleep dies with its init"
    fi
else
    bad "host pid namespace: container with an exec'd sleep" "init [$ipid] exec [$epid]: $runout $(ctr_ task ps t-hostpid 2>&1 | head -5)"
fi
ctr_ task rm -f t-hostpid >/dev/null 2>&1; ctr_ container rm t-hostpid >/dev/null 2>&1
[ -n "$epid" ] && kill -9 "$epid" 2>/dev/null

# 7c. shim grouping: containers annotated with the same io.containerd.runc.v2.group
# share one shim server (shim.rs reads the group from config.json's annotations),
# which outlives the first container's deletion and exits after the last.
G="io.containerd.runc.v2.group=e2e-group-$$"
rung() { ctr_ run -d --runtime "$RUNTIME" --cgroup "$CG/$1" --annotation "$G" "$IMG" "$1" sleep 1000 >/dev/null 2>&1; }
rung t-g1; rung t-g2
g1=$(cat "$T/state/io.containerd.runtime.v2.task/$NS/t-g1/shim.pid" 2>/dev/null)
g2=$(cat "$T/state/io.containerd.runtime.v2.task/$NS/t-g2/shim.pid" 2>/dev/null)
nshims=$(ps -eo args | grep -c "^$T/bin/containerd-shim-husk-v2")
if [ -n "$g1" ] && [ "$g1" = "$g2" ] && [ "$nshims" = 1 ]; then
    ok "two containers of one group share shim $g1"
else
    bad "two containers of one group share a shim" "shim.pid t-g1=[$g1] t-g2=[$g2], $nshims shim processes"
fi
check "the grouped containers both run" "RUNNING RUNNING" "$(state_of t-g1) $(state_of t-g2)"
check "exec in the second grouped container" "grouped" "$(ctr_ task exec --exec-id eg t-g2 echo grouped 2>&1)"
ctr_ task kill -s SIGKILL t-g1 >/dev/null 2>&1
for _ in $(seq 50); do [ "$(state_of t-g1)" = STOPPED ] && break; sleep 0.1; done
ctr_ task rm t-g1 >/dev/null 2>&1; ctr_ container rm t-g1 >/dev/null 2>&1
sleep 0.3
if [ -n "$g1" ] && kill -0 "$g1" 2>/dev/null && [ "$(state_of t-g2)" = RUNNING ]; then
    ok "the group's shim outlives its first container"
else
    bad "the group's shim outlives its first container" "shim $g1, t-g2 $(state_of t-g2)"
fi
ctr_ task kill -s SIGKILL t-g2 >/dev/null 2>&1
for _ in $(seq 50); do [ "$(state_of t-g2)" = STOPPED ] && break; sleep 0.1; done
ctr_ task rm t-g2 >/dev/null 2>&1; ctr_ container rm t-g2 >/dev/null 2>&1
for _ in $(seq 30); do [ -n "$g1" ] && kill -0 "$g1" 2>/dev/null || break; sleep 0.1; done
if [ -n "$g1" ] && ! kill -0 "$g1" 2>/dev/null; then ok "the group's shim exits after its last container"; else bad "the group's shim exits after its last container" "shim $g1 still alive"; fi

# 8. leaks
sleep 0.5
left=$(ps -eo pid,args | grep "$T/bin/containerd-shim-husk-v2" | grep -v grep)
check "no shim processes left" "" "$left"
mnts=$(awk -v t="$T" '$5 ~ "^"t"/(state|root)" {print $5}' /proc/self/mountinfo)
check "no rootfs mounts left" "" "$mnts"
cgs=$(find /sys/fs/cgroup/*/husk-test/shim-e2e-$$ -mindepth 1 -type d 2>/dev/null)
check "no container cgroups left" "" "$cgs"
socks=$(comm -13 <(echo "$SOCKS_BEFORE") <(ls /run/containerd/s 2>/dev/null | sort))
check "no shim sockets left in /run/containerd/s" "" "$socks"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
