#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end check that husk is a drop-in for runc under Debian's Docker 20.10
# (docker.io) and containerd 1.6, both driving it through containerd's own Go
# containerd-shim-runc-v2 exactly as they drive runc.
#
#   hack/e2e/run.sh          (HUSK=path/to/husk; default target/release/husk)
#
# Everything is private to one temp dir /tmp/husk-e2e.XXXXXX: containerd's
# root/state/sockets/config, dockerd's data-root/exec-root/pidfile/socket/
# daemon.json, ctr's FIFOs, the runtimes' --root dirs. Containers' cgroups live
# under /husk-e2e-XXXXXX in every v1 controller. The daemons are stopped by
# pid on exit; no other docker/containerd on the machine is touched.
#
# Phases:
#   1. containerd (cri disabled; v1 linux runtime = husk) + dockerd with
#      --add-runtime husk=<husk>: image import and the docker scenarios;
#   2. dockerd restarted with husk declared in daemon.json ("runtimes" and
#      "default-runtime"); the image is saved for containerd;
#   3. ctr scenarios: --runc-binary (shim option BinaryName), the v1 runtime;
#   4. containerd restarted with `runc` on its PATH being husk (no options);
#   5. leak checks after both daemons stopped: processes, mounts, cgroups.
#
# Prints one PASS/FAIL line per scenario with its wall time, then
# "N passed, M failed"; exits 1 if anything failed. E2E_KEEP=1 keeps the temp
# dir. On failure the logs (scenarios, daemons, bundles' log.json) are copied
# to /tmp/husk-e2e-failed.XXXXXX.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
. "$here/docker.sh"
. "$here/containerd.sh"

die() { echo "e2e: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (daemons, cgroups, mounts)"
"$repo/hack/install-deps.sh" --e2e || die "installing docker.io/containerd failed"
HUSK=${HUSK:-$repo/target/release/husk}
[ -x "$HUSK" ] || die "$HUSK missing: run 'cargo build --release' (or 'make build') first"
HUSK=$(readlink -f "$HUSK")
for tool in /usr/sbin/dockerd /usr/bin/docker /usr/bin/containerd /usr/bin/ctr \
    /usr/bin/containerd-shim-runc-v2 /usr/bin/containerd-shim /bin/busybox script python3; do
    command -v "$tool" >/dev/null || die "$tool missing"
done

E2E_TMP=$(mktemp -d /tmp/husk-e2e.XXXXXX)
suffix=${E2E_TMP##*.}
mkdir -p "$E2E_TMP"/{state,logs,pids,fifo,cli,bin}
export E2E_TMP
export DOCKER_CONFIG="$E2E_TMP/cli" # the docker CLI's config, not ~/.docker

# ctr's default cgroupsPath is /<namespace>/<id>: naming the namespace like
# docker's --cgroup-parent puts every container under one test-owned parent.
CG_PARENT="/husk-e2e-$suffix"
CTR_NS="husk-e2e-$suffix"
CONTAINERD_DIR="$E2E_TMP/containerd"
CONTAINERD_SOCK="$CONTAINERD_DIR/containerd.sock"
CONTAINERD_STATE="$CONTAINERD_DIR/state"
CTR_RUNC_ROOT="$E2E_TMP/runc-root"
CTR_V1_ROOT="$E2E_TMP/runc-v1-root"
DOCKER_DIR="$E2E_TMP/docker"
DOCKER_SOCK="$DOCKER_DIR/docker.sock"
# dockerd 20.10 passes root=<exec-root>/runtime-runc to the shim for every
# runtime (husk too); the shim appends the containerd namespace.
DOCKER_RUNC_ROOT="$DOCKER_DIR/exec/runtime-runc/moby"
IMG=husk-e2e/busybox:latest
CTR_IMG=docker.io/husk-e2e/busybox:latest
E2E_BLOCKED=""

# ---------------------------------------------------------------- cleanup --

copy_logs() {
    local dest="/tmp/husk-e2e-failed.$suffix" f
    mkdir -p "$dest"
    cp -r "$E2E_TMP/logs" "$dest/" 2>/dev/null
    cp "$E2E_TMP"/*.log "$dest/" 2>/dev/null
    # husk's error messages as the shims saw them
    while IFS= read -r f; do
        cp "$f" "$dest/$(basename "$(dirname "$f")")-log.json" 2>/dev/null
    done < <(find "$CONTAINERD_STATE" -name log.json -size +0 2>/dev/null)
    echo "e2e: logs kept in $dest"
}

# A v2 shim listens on /run/containerd/s/<sha256(address/namespace/id)> whatever
# containerd's state dir is (containerd 1.6); a killed shim leaves it behind.
shim_socket_of() { # SHIM-CMDLINE
    local ns id addr
    # shellcheck disable=SC2086
    set -- $1
    while [ $# -gt 1 ]; do
        case "$1" in
            -namespace) ns=$2 ;;
            -id) id=$2 ;;
            -address) addr=$2 ;;
        esac
        shift
    done
    [ -n "${ns:-}" ] && [ -n "${id:-}" ] && [ -n "${addr:-}" ] || return 0
    echo "/run/containerd/s/$(printf '%s' "$addr/$ns/$id" | sha256sum | cut -d' ' -f1)"
}

# Best effort: whatever the leak checks found is removed here, by pid/path.
cleanup() {
    local rc=$? pid cmd d line
    trap - EXIT INT TERM
    stop_daemon dockerd
    stop_daemon containerd
    while read -r pid cmd; do
        [ -n "$pid" ] || continue
        echo "e2e: killing leftover pid $pid: $cmd" >&2
        kill -KILL "$pid" 2>/dev/null
        shim_socket_of "$cmd" | xargs -r rm -f
    done < <(our_processes)
    while IFS= read -r d; do
        while read -r pid; do
            echo "e2e: killing leftover container process $pid in $d" >&2
            kill -KILL "$pid" 2>/dev/null
        done 2>/dev/null <"$d/cgroup.procs"
    done < <(find /sys/fs/cgroup/*/"${CG_PARENT#/}" -depth -type d 2>/dev/null)
    sleep 0.2
    find /sys/fs/cgroup/*/"${CG_PARENT#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
    # Mount points under the temp dir, deepest first.
    awk -v t="$E2E_TMP" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r line; do umount -l "$line" 2>/dev/null; done
    if [ "$rc" -ne 0 ] || [ "$E2E_FAILED" -ne 0 ]; then copy_logs; fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        echo "e2e: kept $E2E_TMP"
    else
        rm -rf --one-file-system "$E2E_TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- daemons --

write_containerd_config() {
    mkdir -p "$CONTAINERD_DIR"
    cat >"$CONTAINERD_DIR/config.toml" <<EOF
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_STATE"
# No CRI: ctr and dockerd only need the core services.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CONTAINERD_DIR/opt"
  # The v1 runtime (containerd-shim) takes its runc binary from this file.
  [plugins."io.containerd.runtime.v1.linux"]
    runtime = "$HUSK"
    runtime_root = "$CTR_V1_ROOT"
EOF
}

# start_containerd [PATH-prefix]
start_containerd() {
    local path="$PATH"
    [ $# -eq 0 ] || path="$1:$PATH"
    start_daemon containerd "$E2E_TMP/containerd.log" \
        env PATH="$path" containerd --config "$CONTAINERD_DIR/config.toml"
    wait_for 30 ctr -a "$CONTAINERD_SOCK" version
}

# start_dockerd DAEMON_JSON [extra dockerd flags...]
start_dockerd() {
    local json="$1"
    shift
    mkdir -p "$DOCKER_DIR"
    printf '%s\n' "$json" >"$DOCKER_DIR/daemon.json"
    start_daemon dockerd "$E2E_TMP/dockerd.log" dockerd \
        --config-file "$DOCKER_DIR/daemon.json" \
        --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
        --pidfile "$DOCKER_DIR/docker.pid" -H "unix://$DOCKER_SOCK" \
        --containerd "$CONTAINERD_SOCK" \
        --iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
        --storage-driver "$DOCKER_STORAGE" --cgroup-parent "$CG_PARENT" "$@"
    wait_for 30 dk version
}

# overlay2 needs overlayfs on the temp dir's filesystem; vfs works anywhere.
pick_storage_driver() {
    local d="$E2E_TMP/ovl-probe"
    mkdir -p "$d"/{l,u,w,m}
    if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
        umount "$d/m"
        echo overlay2
    else
        echo vfs
    fi
    rm -rf "$d"
}
DOCKER_STORAGE=$(pick_storage_driver)

# ---------------------------------------------------------- setup steps --

setup_containerd() {
    write_containerd_config
    start_containerd
}

setup_dockerd_flag() {
    start_dockerd "{\"deprecated-key-path\": \"$DOCKER_DIR/key.json\"}" --add-runtime "husk=$HUSK"
    # husk is registered under its absolute path; runc is still the default.
    expect_eq runc "$(dk info -f '{{.DefaultRuntime}}')" DefaultRuntime
}

setup_image() {
    "$repo/hack/mkbundle.sh" "$E2E_TMP/bundle" e2e >/dev/null
    tar -C "$E2E_TMP/bundle/rootfs" -c . | dk import -c 'CMD ["sh"]' - "$IMG"
    rm -rf "$E2E_TMP/bundle"
    expect_contains "$(dk images --format '{{.Repository}}:{{.Tag}}')" "$IMG"
}

setup_dockerd_json() {
    stop_daemon dockerd
    start_dockerd "$(printf '{"deprecated-key-path": "%s", "runtimes": {"husk": {"path": "%s"}}, "default-runtime": "husk"}' \
        "$DOCKER_DIR/key.json" "$HUSK")"
}

save_image() {
    dk save -o "$E2E_TMP/image.tar" "$IMG"
    [ -s "$E2E_TMP/image.tar" ] || fail "docker save wrote nothing"
}

stop_docker() { stop_daemon dockerd; }

setup_containerd_path() {
    stop_daemon containerd
    cat >"$E2E_TMP/bin/runc" <<EOF
#!/bin/sh
# containerd's PATH leads the shim's default BinaryName "runc" here.
echo "\$*" >>"$E2E_TMP/runc-calls.log"
exec "$HUSK" "\$@"
EOF
    chmod 755 "$E2E_TMP/bin/runc"
    : >"$E2E_TMP/runc-calls.log"
    start_containerd "$E2E_TMP/bin"
}

stop_all() {
    stop_daemon dockerd
    stop_daemon containerd
}

# ------------------------------------------------------------ leak checks --

leak_processes() {
    local left
    left=$(our_processes)
    expect_eq "" "$left" "daemons/shims still running"
}

leak_mounts() {
    local left
    left=$(awk -v t="$E2E_TMP" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
    expect_eq "" "$left" "mounts under $E2E_TMP"
}

leak_cgroups() {
    local left
    left=$(find /sys/fs/cgroup/*/"${CG_PARENT#/}" -mindepth 1 -type d 2>/dev/null || true)
    expect_eq "" "$left" "container cgroups under $CG_PARENT"
}

leak_runtime_state() {
    local left
    # (a root the runtime never made is as empty as one it cleaned)
    left=$(find "$DOCKER_RUNC_ROOT" "$CTR_RUNC_ROOT/$CTR_NS" "$CTR_V1_ROOT/$CTR_NS" \
        -mindepth 1 -maxdepth 1 2>/dev/null || true)
    expect_eq "" "$left" "husk state dirs left"
}

# ------------------------------------------------------------------- main --

# `fatal NAME FN`: a daemon or the image; if it fails, everything that needs
# it is reported as not run (and failed) until `unblock`.
# `step NAME FN`: a scenario the next ones of its group depend on (a shared
# container); if it fails, they are reported as not run until `endgroup`.
E2E_FATAL=""
fatal() {
    if [ -n "$E2E_FATAL" ]; then skip_fail "$1" "$E2E_FATAL"; return; fi
    local before=$E2E_FAILED
    scenario "$1" "$2"
    [ "$E2E_FAILED" -eq "$before" ] || E2E_FATAL="'$1' failed"
}
step() {
    if [ -n "$E2E_FATAL$E2E_BLOCKED" ]; then skip_fail "$1" "$E2E_FATAL$E2E_BLOCKED"; return; fi
    local before=$E2E_FAILED
    scenario "$1" "$2"
    [ "$E2E_FAILED" -eq "$before" ] || E2E_BLOCKED="'$1' failed"
}
check() {
    if [ -n "$E2E_FATAL$E2E_BLOCKED" ]; then skip_fail "$1" "$E2E_FATAL$E2E_BLOCKED"; return; fi
    scenario "$1" "$2"
}
endgroup() { E2E_BLOCKED=""; }
unblock() { E2E_FATAL=""; E2E_BLOCKED=""; }

t_start=$(now)
echo "e2e: husk=$HUSK tmp=$E2E_TMP storage=$DOCKER_STORAGE cgroup-parent=$CG_PARENT"
echo "e2e: $(dockerd --version); $(containerd --version | cut -d' ' -f1,3)"

fatal "containerd: start (private root/state/sockets, no cri)" setup_containerd
fatal "docker: dockerd --add-runtime husk=<abs path>" setup_dockerd_flag
fatal "docker: import busybox image" setup_image
check "docker: run --rm echo hello" d_hello
check "docker: run --rm exit status 7 propagates" d_exit_code
check "docker: missing/non-executable binary exits 127/126" d_missing_binary
step "docker: run -d (runtime=husk, husk state running)" d_run_detached
check "docker: exec (output, exit status, pid ns)" d_exec
check "docker: exec -t (tty)" d_exec_tty
check "docker: exec -it under script(1)" d_exec_interactive_tty
check "docker: logs" d_logs
check "docker: top" d_top
check "docker: stats --no-stream" d_stats
check "docker: pause/unpause (freezer, state)" d_pause_unpause
check "docker: stop -t 1 + rm (cgroup and state removed)" d_stop_rm
endgroup
check "docker: run -t" d_run_tty
step "docker: --memory 64m --cpus 0.5 --pids-limit 50 (host cgroup)" d_resources
check "docker: limits visible in the container's /sys/fs/cgroup" d_resources_inside
check "docker: update --memory, --memory-swap, --pids-limit" d_update
check "docker: kill (137) + rm" d_kill
endgroup
check "docker: kill -s USR1 reaches the container's handler" d_kill_signal
check "docker: --read-only (write to / fails)" d_read_only
check "docker: --cap-drop ALL --cap-add NET_BIND_SERVICE" d_caps
check "docker: --user 1000:1000" d_user
check "docker: default seccomp profile (mode 2, unshare denied)" d_seccomp_default
check "docker: run -i (stdin pipe)" d_stdin
check "docker: -v, --tmpfs, -w, -e, --hostname, --ulimit, --shm-size" d_run_options
check "docker: --init (docker-init is pid 1)" d_init
check "docker: exec --user -w -e" d_exec_options
check "docker: restart (same bundle created again)" d_restart
check "docker: OOM kill (137, State.OOMKilled)" d_oom
check "docker: husk list shows docker's container" d_husk_list
check "docker: no containers/tasks left" d_no_containers_left
# The second dockerd needs containerd and the image (same data-root) only.
E2E_BLOCKED=""
fatal "docker: dockerd restarted, husk in daemon.json (default)" setup_dockerd_json
check "docker(json): info lists husk as default runtime" j_info
check "docker(json): run/exec without --runtime use husk" j_run_default_runtime
check "docker(json): --runtime runc still works alongside" j_runc_still_works
check "docker(json): no containers/tasks left" d_no_containers_left
fatal "docker(json): docker save image for containerd" save_image
scenario "docker: dockerd stopped" stop_docker
fatal "ctr: images import (docker save tar)" c_import
check "ctr: run --rm --runc-binary husk echo hi" c_run_rm
check "ctr: run exit status 9 propagates" c_exit_code
step "ctr: run -d (husk state, cgroup /<ns>/<id>)" c_run_detached
check "ctr: task exec --exec-id (output, exit status)" c_exec
check "ctr: task exec -t (tty)" c_exec_tty
check "ctr: task ps" c_ps
check "ctr: task pause/resume (freezer, state)" c_pause_resume
check "ctr: task metrics (table + json)" c_metrics
check "ctr: task kill -s SIGKILL, delete (cgroup, state gone)" c_kill_delete
endgroup
check "ctr: task kill (SIGTERM handled)" c_kill_term
check "ctr: create error (missing binary) reaches ctr via log.json" c_create_error
check "ctr: v1 runtime (containerd-shim), config runtime=husk" c_v1_runtime
check "ctr: no containers/tasks left" c_no_containers_left
# containerd restarts from scratch here (the image stays in its root).
unblock
fatal "containerd: restarted with runc=husk on its PATH" setup_containerd_path
check "ctr(PATH): run --rm without --runc-binary uses husk" p_run_default_binary
check "ctr(PATH): run -d, exec, pause/resume, metrics, kill" p_exec_pause_metrics
check "ctr(PATH): no containers/tasks left" c_no_containers_left
unblock
scenario "daemons stopped" stop_all
scenario "leaks: no daemon/shim processes" leak_processes
scenario "leaks: no mounts under the temp dir" leak_mounts
scenario "leaks: no container cgroups under the parent" leak_cgroups
scenario "leaks: no husk state dirs" leak_runtime_state

echo "e2e: total $(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
summary
