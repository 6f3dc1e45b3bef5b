# Docker 20.10 scenarios for hack/e2e/run.sh (sourced). Each d_* function is
# one scenario; run.sh runs them under `scenario`, in order, against a private
# dockerd whose runtime `husk` is our binary. dockerd drives husk through
# containerd's containerd-shim-runc-v2, exactly as it drives runc.

# The scripts given to containers are single-quoted on purpose: they expand inside.
# shellcheck disable=SC2016
dk() { timeout 60 /usr/bin/docker -H "unix://$DOCKER_SOCK" "$@"; }
# Every container runs without networking: dockerd has --bridge=none.
drun() { dk run --network none --runtime husk "$@"; }

dstatus() { dk inspect -f '{{.State.Status}}' "$1"; }
dpid() { dk inspect -f '{{.State.Pid}}' "$1"; }

# husk's own view: dockerd 20.10 hands every runtime the shim option
# root=<exec-root>/runtime-runc, and the shim appends the namespace "moby".
husk_status() { # ROOT ID
    "$HUSK" --root "$1" state "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'
}

# The container's cgroup must be <cgroup-parent>/<full id> in CONTROLLER.
container_cgroup() { # CONTROLLER ID
    local pid dir
    pid=$(dpid "$2")
    dir=$(cgroup_dir_of "$1" "$pid")
    expect_eq "/sys/fs/cgroup/$1$CG_PARENT/$2" "$dir" "$1 cgroup of pid $pid"
    echo "$dir"
}

d_hello() {
    local out
    out=$(drun --rm "$IMG" echo hello)
    expect_eq hello "$out" "docker run --rm echo hello"
}

d_exit_code() {
    local rc=0
    drun --rm "$IMG" sh -c 'echo to-stderr >&2; exit 7' || rc=$?
    expect_eq 7 "$rc" "exit status of docker run"
}

# docker maps runc's create errors to exit statuses by their words.
d_missing_binary() {
    local out rc=0
    out=$(drun --rm "$IMG" /no/such/binary 2>&1) || rc=$?
    expect_eq 127 "$rc" "exit status of docker run /no/such/binary"
    expect_contains "$out" "no such file or directory"
    rc=0
    out=$(drun --rm "$IMG" no-such-command 2>&1) || rc=$?
    expect_eq 127 "$rc" "exit status of docker run no-such-command"
    expect_contains "$out" "executable file not found in \$PATH"
    rc=0
    out=$(drun --rm "$IMG" /etc/passwd 2>&1) || rc=$?
    expect_eq 126 "$rc" "exit status of docker run /etc/passwd"
    expect_contains "$out" "permission denied"
    expect_eq "" "$(dk ps -aq)" "containers left by the failed runs"
}

d_run_detached() {
    local id
    id=$(drun -d --name e2e-main "$IMG" sh -c 'echo started; exec sleep 1000')
    save main "$id"
    wait_eq 10 running dstatus "$id"
    expect_eq husk "$(dk inspect -f '{{.HostConfig.Runtime}}' "$id")" "HostConfig.Runtime"
    expect_eq running "$(husk_status "$DOCKER_RUNC_ROOT" "$id")" "husk state"
    # The shim recorded our binary as the runtime of this bundle.
    expect_eq "$HUSK" "$(cat "$CONTAINERD_STATE/io.containerd.runtime.v2.task/moby/$id/runtime")" \
        "bundle's runtime file"
}

d_exec() {
    local id out rc=0
    id=$(load main)
    out=$(dk exec "$id" sh -c 'echo exec-out; echo exec-err >&2; exit 3' 2>&1) || rc=$?
    expect_eq 3 "$rc" "docker exec exit status"
    expect_contains "$out" exec-out
    expect_contains "$out" exec-err
    # The exec'd process is in the container's pid namespace (pid 1 is sleep).
    out=$(dk exec "$id" cat /proc/1/cmdline | tr '\0' ' ')
    expect_eq "sleep 1000 " "$out" "pid 1 seen by exec"
}

d_exec_tty() {
    local id out
    id=$(load main)
    out=$(dk exec -t "$id" tty | tr -d '\r')
    case "$out" in
        /dev/pts/[0-9]*) ;;
        *) fail "docker exec -t tty printed '$out'" ;;
    esac
}

d_exec_interactive_tty() {
    local id out rc=0
    id=$(load main)
    # script(1) gives docker a terminal on stdin, as an interactive user has.
    out=$(printf 'echo in-$((6*7))\nexit 5\n' |
        timeout 30 script -qec "/usr/bin/docker -H unix://$DOCKER_SOCK exec -it $id sh" /dev/null) || rc=$?
    expect_eq 5 "$rc" "exit status through docker exec -it"
    expect_contains "$out" in-42
}

d_logs() {
    local out
    out=$(dk logs "$(load main)")
    expect_eq started "$out" "docker logs"
}

d_top() {
    local out
    out=$(dk top "$(load main)")
    expect_contains "$out" "sleep 1000"
}

d_stats() {
    local out mem pids
    out=$(dk stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' "$(load main)")
    mem=${out%%|*}
    pids=${out##*|}
    expect_not_contains "$mem" "0B / 0B" "memory usage"
    expect_eq 1 "$pids" "PIDs"
}

d_pause_unpause() {
    local id dir
    id=$(load main)
    dir=$(container_cgroup freezer "$id")
    dk pause "$id"
    expect_eq paused "$(dstatus "$id")" "docker status after pause"
    expect_eq FROZEN "$(cat "$dir/freezer.state")" freezer.state
    expect_eq paused "$(husk_status "$DOCKER_RUNC_ROOT" "$id")" "husk state"
    dk unpause "$id"
    expect_eq running "$(dstatus "$id")" "docker status after unpause"
    expect_eq THAWED "$(cat "$dir/freezer.state")" freezer.state
    dk exec "$id" true
}

d_stop_rm() {
    local id dir
    id=$(load main)
    dir=$(container_cgroup memory "$id")
    dk stop -t 1 "$id"
    expect_eq exited "$(dstatus "$id")" "status after stop"
    # sh ignored SIGTERM as pid 1 without a handler: docker escalated to SIGKILL.
    expect_eq 137 "$(dk inspect -f '{{.State.ExitCode}}' "$id")" "exit code after stop"
    dk rm "$id"
    expect_failure dk inspect "$id" >/dev/null 2>&1
    [ ! -e "$dir" ] || fail "cgroup $dir left after docker rm"
    [ ! -e "$DOCKER_RUNC_ROOT/$id" ] || fail "husk state dir left after docker rm"
}

d_run_tty() {
    local out
    out=$(drun --rm -t "$IMG" sh -c 'tty; [ -t 1 ] && echo stdout-is-tty' | tr -d '\r')
    expect_eq "/dev/pts/0
stdout-is-tty" "$out" "docker run -t"
}

d_resources() {
    local id dir
    id=$(drun -d --memory 64m --cpus 0.5 --pids-limit 50 "$IMG" sleep 1000)
    save res "$id"
    wait_eq 10 running dstatus "$id"
    dir=$(container_cgroup memory "$id")
    expect_eq 67108864 "$(cat "$dir/memory.limit_in_bytes")" memory.limit_in_bytes
    if [ -e "$dir/memory.memsw.limit_in_bytes" ]; then
        # docker's default swap limit is twice the memory limit
        expect_eq 134217728 "$(cat "$dir/memory.memsw.limit_in_bytes")" memory.memsw.limit_in_bytes
    fi
    dir=$(container_cgroup cpu "$id")
    expect_eq 50000 "$(cat "$dir/cpu.cfs_quota_us")" cpu.cfs_quota_us
    expect_eq 100000 "$(cat "$dir/cpu.cfs_period_us")" cpu.cfs_period_us
    dir=$(container_cgroup pids "$id")
    expect_eq 50 "$(cat "$dir/pids.max")" pids.max
}

# Inside, /sys/fs/cgroup/<ctrl> is the container's own cgroup (runc's v1 layout).
d_resources_inside() {
    local out
    out=$(dk exec "$(load res)" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max')
    expect_eq "67108864
50" "$out" "limits read inside the container"
}

d_update() {
    local id dir
    id=$(load res)
    dir=$(container_cgroup memory "$id")
    dk update --memory 128m "$id"
    expect_eq 134217728 "$(cat "$dir/memory.limit_in_bytes")" "memory.limit_in_bytes after update"
    # Raising both limits above the old swap limit needs memsw written first.
    dk update --memory 256m --memory-swap 512m "$id"
    expect_eq 268435456 "$(cat "$dir/memory.limit_in_bytes")" "memory.limit_in_bytes after 2nd update"
    if [ -e "$dir/memory.memsw.limit_in_bytes" ]; then
        expect_eq 536870912 "$(cat "$dir/memory.memsw.limit_in_bytes")" memory.memsw.limit_in_bytes
    fi
    dk update --pids-limit 77 "$id"
    expect_eq 77 "$(cat "$(container_cgroup pids "$id")/pids.max")" "pids.max after update"
    expect_eq 268435456 "$(dk inspect -f '{{.HostConfig.Memory}}' "$id")" HostConfig.Memory
}

d_kill() {
    local id dir
    id=$(load res)
    dir=$(container_cgroup memory "$id")
    dk kill "$id"
    wait_eq 10 exited dstatus "$id"
    expect_eq 137 "$(dk inspect -f '{{.State.ExitCode}}' "$id")" "exit code after docker kill"
    dk rm "$id"
    [ ! -e "$dir" ] || fail "cgroup $dir left after docker rm"
}

d_kill_signal() {
    local id
    id=$(drun -d "$IMG" sh -c 'trap "exit 42" USR1; while :; do sleep 0.1; done')
    wait_eq 10 running dstatus "$id"
    sleep 0.3 # let sh install the trap
    dk kill -s USR1 "$id"
    wait_eq 10 exited dstatus "$id"
    expect_eq 42 "$(dk inspect -f '{{.State.ExitCode}}' "$id")" "exit code after SIGUSR1"
    dk rm "$id"
}

d_read_only() {
    local out rc=0
    out=$(drun --rm --read-only "$IMG" sh -c 'touch /written' 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || fail "write to / succeeded with --read-only"
    expect_contains "$out" "Read-only file system"
    # /dev/shm stays writable, as with runc.
    drun --rm --read-only "$IMG" touch /dev/shm/ok
}

d_caps() {
    local out
    out=$(drun --rm --cap-drop ALL --cap-add NET_BIND_SERVICE "$IMG" grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status)
    expect_eq "CapPrm:	0000000000000400
CapEff:	0000000000000400
CapBnd:	0000000000000400" "$out" "capabilities"
}

d_user() {
    local out
    out=$(drun --rm --user 1000:1000 "$IMG" sh -c 'id -u; id -g; grep ^CapEff: /proc/self/status')
    expect_eq "1000
1000
CapEff:	0000000000000000" "$out" "uid, gid, effective caps"
}

d_seccomp_default() {
    local out
    out=$(drun --rm "$IMG" sh -c 'grep ^Seccomp: /proc/self/status; unshare -U true 2>/dev/null && echo unshare-ok || echo unshare-denied')
    expect_eq "Seccomp:	2
unshare-denied" "$out" "seccomp mode and unshare"
    # Control: the same call works without the profile, so the profile denied it.
    out=$(drun --rm --security-opt seccomp=unconfined "$IMG" sh -c 'grep ^Seccomp: /proc/self/status; unshare -U true && echo unshare-ok')
    expect_eq "Seccomp:	0
unshare-ok" "$out" "seccomp=unconfined control"
}

d_stdin() {
    local out
    out=$(printf 'line-1\nline-2\n' | dk run --rm -i --network none --runtime husk "$IMG" sh -c 'wc -l; echo done')
    expect_eq "2
done" "$(echo "$out" | tr -d ' ')" "stdin piped through docker run -i"
}

d_run_options() {
    local vol out
    vol="$E2E_TMP/volume"
    mkdir -p "$vol"
    echo from-host >"$vol/in"
    out=$(drun --rm -v "$vol:/data" --tmpfs /scratch:size=1m -w /data -e E2E_VAR=set-by-docker \
        --hostname e2e-host --ulimit nofile=512:1024 --shm-size 8m "$IMG" sh -c '
        cat in; echo from-container >out
        pwd; echo "$E2E_VAR"; hostname
        ulimit -n; ulimit -Hn
        grep -E " /scratch | /dev/shm " /proc/mounts | cut -d" " -f2,3,4 | sed "s/,.*size=/ size=/; s/,.*//"')
    expect_eq "from-host
/data
set-by-docker
e2e-host
512
1024
/dev/shm tmpfs rw size=8192k
/scratch tmpfs rw size=1024k" "$out" "volume, workdir, env, hostname, ulimit, tmpfs, shm-size"
    expect_eq from-container "$(cat "$vol/out")" "file written through the bind mount"
}

d_init() {
    local out
    # --init: docker-init (tini) is pid 1 and reaps; the command is its child.
    out=$(drun --rm --init "$IMG" sh -c 'cat /proc/1/comm; [ $$ -ne 1 ] && echo sh-is-not-pid-1')
    expect_eq "docker-init
sh-is-not-pid-1" "$out" "pid 1 under --init"
}

d_exec_options() {
    local id out
    id=$(drun -d "$IMG" sleep 1000)
    wait_eq 10 running dstatus "$id"
    out=$(dk exec --user 1000:1000 -w /tmp -e E2E_X=exec-env "$id" sh -c 'id -u; pwd; echo "$E2E_X"')
    expect_eq "1000
/tmp
exec-env" "$out" "exec --user, -w, -e"
    dk rm -f "$id" >/dev/null
}

d_restart() {
    local id pid1 pid2
    id=$(drun -d "$IMG" sh -c 'echo boot; exec sleep 1000')
    wait_eq 10 running dstatus "$id"
    pid1=$(dpid "$id")
    dk restart -t 0 "$id"
    wait_eq 10 running dstatus "$id"
    pid2=$(dpid "$id")
    [ "$pid1" != "$pid2" ] || fail "docker restart kept pid $pid1"
    expect_eq "boot
boot" "$(dk logs "$id")" "logs of both runs"
    expect_eq running "$(husk_status "$DOCKER_RUNC_ROOT" "$id")" "husk state after restart"
    dk rm -f "$id" >/dev/null
}

d_oom() {
    local id
    # tail keeps the endless line in memory: the 16m cgroup limit OOM-kills it.
    id=$(drun -d --memory 16m --memory-swap 16m "$IMG" sh -c 'tail /dev/zero')
    wait_eq 20 exited dstatus "$id"
    expect_eq 137 "$(dk inspect -f '{{.State.ExitCode}}' "$id")" "exit code of the OOM-killed container"
    expect_eq true "$(dk inspect -f '{{.State.OOMKilled}}' "$id")" "State.OOMKilled"
    dk rm "$id" >/dev/null
}

d_husk_list() {
    local id out
    id=$(drun -d "$IMG" sleep 1000)
    wait_eq 10 running dstatus "$id"
    out=$("$HUSK" --root "$DOCKER_RUNC_ROOT" list --format json)
    expect_contains "$out" "\"id\":\"$id\""
    dk rm -f "$id" >/dev/null
}

d_no_containers_left() {
    local out
    out=$(dk ps -aq)
    expect_eq "" "$out" "docker ps -aq"
    out=$(timeout 20 ctr -a "$CONTAINERD_SOCK" -n moby tasks ls -q)
    expect_eq "" "$out" "containerd tasks in namespace moby"
}

# ---- second daemon start: runtime declared in daemon.json, and default ----

j_info() {
    expect_eq husk "$(dk info -f '{{.DefaultRuntime}}')" DefaultRuntime
    expect_contains "$(dk info -f '{{json .Runtimes}}')" "\"husk\":{\"path\":\"$HUSK\"}"
}

j_run_default_runtime() {
    local out id
    # No --runtime: the daemon.json default is husk.
    out=$(dk run --rm --network none "$IMG" echo hello-from-daemon-json)
    expect_eq hello-from-daemon-json "$out"
    id=$(dk run -d --network none "$IMG" sleep 1000)
    wait_eq 10 running dstatus "$id"
    expect_eq husk "$(dk inspect -f '{{.HostConfig.Runtime}}' "$id")" HostConfig.Runtime
    expect_eq running "$(husk_status "$DOCKER_RUNC_ROOT" "$id")" "husk state"
    expect_eq json-exec "$(dk exec "$id" echo json-exec)" "docker exec"
    dk rm -f "$id" >/dev/null
}

j_runc_still_works() {
    # The stock runtime keeps working next to husk in the same daemon.
    local out
    out=$(dk run --rm --network none --runtime runc "$IMG" echo from-runc)
    expect_eq from-runc "$out"
}
