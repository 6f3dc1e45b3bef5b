# containerd 1.6 scenarios for hack/e2e/run.sh (sourced). Each c_* function is
# one scenario, driven with `ctr` against the private containerd. Containers go
# through containerd's Go containerd-shim-runc-v2 (runtime io.containerd.runc.v2)
# with the shim option BinaryName=husk (`ctr run --runc-binary`), or through
# the runc binary name the shim finds on containerd's PATH (p_* scenarios), or
# through the v1 linux runtime whose `runtime` key in config.toml names husk.
#
# containerd 1.6 has no config.toml knob that sets BinaryName for non-CRI clients:
# `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options] BinaryName`
# is read by the CRI plugin only (containerd/containerd#4618: "This config is only used
# by CRI, not by ctr and Docker"); ctr and dockerd send the shim options themselves
# with each container. What does work from the daemon side is the shim's default
# BinaryName "runc" looked up on containerd's PATH, and the deprecated v1 runtime's
# `[plugins."io.containerd.runtime.v1.linux"] runtime = ...` (containerd-shim, not
# containerd-shim-runc-v2).

# ctr's FIFOs go under the temp dir, not /run/containerd/fifo.
ctr_() { timeout 60 ctr -a "$CONTAINERD_SOCK" -n "$CTR_NS" "$@"; }
crun_() { # ctr run through the runc v2 shim with husk as BinaryName
    local opts=(--fifo-dir "$E2E_TMP/fifo" --runc-binary "$HUSK" --runc-root "$CTR_RUNC_ROOT")
    ctr_ run "${opts[@]}" "$@"
}

# Task status as ctr prints it: RUNNING, PAUSED, STOPPED, CREATED.
task_status() { ctr_ tasks ls | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { ctr_ tasks ls | awk -v id="$1" '$1 == id { print $2 }'; }
husk_state_of() { # ROOT ID
    "$HUSK" --root "$1" state "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'
}

c_import() {
    ctr_ images import "$E2E_TMP/image.tar"
    expect_contains "$(ctr_ images ls -q)" "$CTR_IMG"
}

c_run_rm() {
    local out
    out=$(crun_ --rm "$CTR_IMG" e2e-hi echo hi)
    expect_eq hi "$out" "ctr run --rm echo hi"
    expect_eq "" "$(ctr_ containers ls -q)" "containers after --rm"
}

c_exit_code() {
    local rc=0
    crun_ --rm "$CTR_IMG" e2e-exit sh -c 'exit 9' || rc=$?
    expect_eq 9 "$rc" "exit status through ctr run"
}

c_run_detached() {
    local pid
    crun_ -d --null-io "$CTR_IMG" e2e-main sleep 1000
    wait_eq 10 RUNNING task_status e2e-main
    expect_eq running "$(husk_state_of "$CTR_RUNC_ROOT/$CTR_NS" e2e-main)" "husk state"
    pid=$(task_pid e2e-main)
    expect_eq "/sys/fs/cgroup/memory/$CTR_NS/e2e-main" "$(cgroup_dir_of memory "$pid")" "memory cgroup"
    expect_eq "$HUSK" "$(cat "$CONTAINERD_STATE/io.containerd.runtime.v2.task/$CTR_NS/e2e-main/runtime")" \
        "bundle's runtime file"
}

c_exec() {
    local out rc=0
    out=$(ctr_ tasks exec --fifo-dir "$E2E_TMP/fifo" --exec-id x1 e2e-main sh -c 'echo exec-hi; exit 4') || rc=$?
    expect_eq 4 "$rc" "ctr task exec exit status"
    expect_eq exec-hi "$out" "ctr task exec output"
    out=$(ctr_ tasks exec --fifo-dir "$E2E_TMP/fifo" --exec-id x2 e2e-main cat /proc/1/cmdline | tr '\0' ' ')
    expect_eq "sleep 1000 " "$out" "pid 1 seen by exec"
}

c_exec_tty() {
    local out tty
    # script(1) merges ctr's own stderr into the terminal: with runc too, ctr writes a NUL
    # byte (which the container's pty may echo as "^@" before the output, depending on
    # timing) and may log "resize pty ... cannot resize a stopped container" (its own race).
    out=$(timeout 30 script -qec "ctr -a $CONTAINERD_SOCK -n $CTR_NS tasks exec -t --fifo-dir $E2E_TMP/fifo --exec-id x3 e2e-main tty" /dev/null </dev/null)
    tty=$(printf '%s' "$out" | tr -d '\r\0' | sed 's/^\^@//' | grep -o '^/dev/pts/[0-9]*' | head -n 1) || true
    [ -n "$tty" ] || fail "ctr task exec -t tty printed '$out'"
}

c_ps() {
    local out pid
    pid=$(task_pid e2e-main)
    out=$(ctr_ tasks ps e2e-main)
    expect_contains "$out" "$pid"
}

c_pause_resume() {
    local dir
    dir=$(cgroup_dir_of freezer "$(task_pid e2e-main)")
    ctr_ tasks pause e2e-main
    expect_eq PAUSED "$(task_status e2e-main)" "task status after pause"
    expect_eq FROZEN "$(cat "$dir/freezer.state")" freezer.state
    expect_eq paused "$(husk_state_of "$CTR_RUNC_ROOT/$CTR_NS" e2e-main)" "husk state"
    ctr_ tasks resume e2e-main
    expect_eq RUNNING "$(task_status e2e-main)" "task status after resume"
    expect_eq THAWED "$(cat "$dir/freezer.state")" freezer.state
}

c_metrics() {
    local out
    out=$(ctr_ tasks metrics e2e-main)
    expect_contains "$out" memory.usage_in_bytes
    expect_contains "$out" pids.current
    out=$(ctr_ tasks metrics --format json e2e-main)
    # one process (sleep) in the pids controller
    python3 - "$out" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
data = m.get("Data") or m.get("data") or m  # 1.6 prints the metrics data itself
pids = data.get("pids", {}).get("current")
assert pids == 1, f"pids.current = {pids!r}, want 1: {m}"
assert data.get("memory", {}).get("usage", {}).get("usage", 0) > 0, f"no memory usage: {m}"
PY
}

c_kill_delete() {
    local dir
    dir=$(cgroup_dir_of memory "$(task_pid e2e-main)")
    ctr_ tasks kill -s SIGKILL e2e-main
    wait_eq 10 STOPPED task_status e2e-main
    ctr_ tasks delete e2e-main
    ctr_ containers delete e2e-main
    [ ! -e "$dir" ] || fail "cgroup $dir left after task delete"
    [ ! -e "$CTR_RUNC_ROOT/$CTR_NS/e2e-main" ] || fail "husk state dir left after task delete"
}

c_kill_term() {
    # ctr's default signal is SIGTERM; the container's handler exits 0.
    crun_ -d --null-io "$CTR_IMG" e2e-term sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
    wait_eq 10 RUNNING task_status e2e-term
    sleep 0.3 # let sh install the trap
    ctr_ tasks kill e2e-term
    wait_eq 10 STOPPED task_status e2e-term
    ctr_ tasks delete e2e-term
    ctr_ containers delete e2e-term
}

c_create_error() {
    # A broken process spec is refused by husk; containerd reports husk's own
    # message, which the shim read from log.json.
    local out rc=0
    out=$(crun_ --rm "$CTR_IMG" e2e-bad /no/such/binary 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || fail "ctr run of a missing binary succeeded"
    expect_contains "$out" "OCI runtime create failed: " "ctr's error"
    expect_contains "$out" '"/no/such/binary"' "ctr's error"
    expect_contains "$out" "no such file or directory" "ctr's error"
    ctr_ containers delete e2e-bad >/dev/null 2>&1 || true
    expect_eq "" "$(ctr_ containers ls -q)" "containers after the failed run"
}

# ---- v1 linux runtime (containerd-shim, config.toml `runtime` = husk) ----

c_v1_runtime() {
    local out
    out=$(ctr_ run --rm --fifo-dir "$E2E_TMP/fifo" --runtime io.containerd.runtime.v1.linux "$CTR_IMG" e2e-v1 echo v1-hi)
    expect_eq v1-hi "$out" "ctr run on io.containerd.runtime.v1.linux"
    ctr_ run -d --null-io --fifo-dir "$E2E_TMP/fifo" --runtime io.containerd.runtime.v1.linux "$CTR_IMG" e2e-v1d sleep 1000
    wait_eq 10 RUNNING task_status e2e-v1d
    expect_eq running "$(husk_state_of "$CTR_V1_ROOT/$CTR_NS" e2e-v1d)" "husk state under the v1 runtime_root"
    ctr_ tasks kill -s SIGKILL e2e-v1d
    wait_eq 10 STOPPED task_status e2e-v1d
    ctr_ tasks delete e2e-v1d >/dev/null
    ctr_ containers delete e2e-v1d
}

c_no_containers_left() {
    expect_eq "" "$(ctr_ containers ls -q)" "ctr containers"
    expect_eq "" "$(ctr_ tasks ls -q)" "ctr tasks"
    # husk prints [], runc null, for no containers
    expect_eq 0 "$("$HUSK" --root "$CTR_RUNC_ROOT/$CTR_NS" list --format json 2>/dev/null |
        python3 -c 'import json,sys; print(len(json.loads(sys.stdin.read() or "[]") or []))')" \
        "containers in husk list"
}

# ---- containerd restarted with `runc` on its PATH being husk ----
# No --runc-binary: the shim's default BinaryName "runc" resolves through
# containerd's PATH to $E2E_TMP/bin/runc, a wrapper that logs and execs husk.

p_run_default_binary() {
    local out
    out=$(ctr_ run --rm --fifo-dir "$E2E_TMP/fifo" --runc-root "$CTR_RUNC_ROOT" "$CTR_IMG" e2e-path echo path-hi)
    expect_eq path-hi "$out"
    expect_contains "$(cat "$E2E_TMP/runc-calls.log")" "create --bundle"
    expect_contains "$(cat "$E2E_TMP/runc-calls.log")" "delete e2e-path"
}

p_exec_pause_metrics() {
    ctr_ run -d --null-io --fifo-dir "$E2E_TMP/fifo" --runc-root "$CTR_RUNC_ROOT" "$CTR_IMG" e2e-path2 sleep 1000
    wait_eq 10 RUNNING task_status e2e-path2
    expect_eq running "$(husk_state_of "$CTR_RUNC_ROOT/$CTR_NS" e2e-path2)" "husk state"
    expect_eq p-exec "$(ctr_ tasks exec --fifo-dir "$E2E_TMP/fifo" --exec-id px e2e-path2 echo p-exec)"
    ctr_ tasks pause e2e-path2
    expect_eq PAUSED "$(task_status e2e-path2)"
    ctr_ tasks resume e2e-path2
    expect_contains "$(ctr_ tasks metrics e2e-path2)" pids.current
    ctr_ tasks kill -s SIGKILL e2e-path2
    wait_eq 10 STOPPED task_status e2e-path2
    ctr_ tasks delete e2e-path2 >/dev/null
    ctr_ containers delete e2e-path2
    expect_contains "$(cat "$E2E_TMP/runc-calls.log")" "exec --process"
    expect_contains "$(cat "$E2E_TMP/runc-calls.log")" "pause e2e-path2"
}
