# Helpers for hack/e2e/run.sh (sourced, not executed).
#
# Scenarios are bash functions. `scenario NAME FN` runs FN in a subshell with
# `set -e` (so any failing command or assertion ends it), captures its output,
# prints one PASS/FAIL line with the wall time and, on failure, the output.
# Scenarios share state (container ids) through files under $E2E_TMP/state.

E2E_PASSED=0
E2E_FAILED=0
E2E_RESULTS=()

now() { date +%s.%N; }

scenario() {
    local name="$1" fn="$2" t0 t1 rc secs log
    log="$E2E_TMP/logs/$(printf '%03d' $((E2E_PASSED + E2E_FAILED)))-$fn.log"
    t0=$(now)
    ( set -eE -o pipefail; "$fn" ) >"$log" 2>&1 </dev/null
    rc=$?
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    if [ "$rc" -eq 0 ]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        printf 'PASS  %-62s %6ss\n' "$name" "$secs"
        E2E_RESULTS+=("PASS|$name|$secs")
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        printf 'FAIL  %-62s %6ss\n' "$name" "$secs"
        E2E_RESULTS+=("FAIL|$name|$secs")
        sed -e 's/^/      | /' "$log" | tail -n 40
    fi
}

# A scenario that cannot run because an earlier step failed still counts.
skip_fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    printf 'FAIL  %-62s %6s\n' "$1" "-"
    printf '      | not run: %s\n' "$2"
    E2E_RESULTS+=("FAIL|$1|-")
}

summary() {
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" -eq 0 ]
}

# ---- assertions: print what was expected and what was seen, then fail ----

fail() { echo "ASSERTION FAILED: $*" >&2; return 1; }

expect_eq() { # WANT GOT [WHAT]
    [ "$1" = "$2" ] || fail "${3:-value}: want '$1', got '$2'"
}

expect_contains() { # HAYSTACK NEEDLE [WHAT]
    case "$1" in
        *"$2"*) ;;
        *) fail "${3:-output} does not contain '$2': '$1'" ;;
    esac
}

expect_not_contains() { # HAYSTACK NEEDLE [WHAT]
    case "$1" in
        *"$2"*) fail "${3:-output} unexpectedly contains '$2': '$1'" ;;
        *) ;;
    esac
}

# Run a command that must fail; print its output. `expect_failure CMD...`
expect_failure() {
    local rc=0
    "$@" || rc=$?
    [ "$rc" -ne 0 ] || fail "command succeeded but should have failed: $*"
}

# Poll until CMD succeeds (every 0.1 s, at most SECONDS). `wait_for 5 cmd...`
wait_for() {
    local limit="$1" i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    fail "timed out after ${limit}s waiting for: $*"
}

# Poll until CMD prints WANT (every 0.1 s, at most SECONDS). CMD runs anew
# each time: `wait_eq 10 STOPPED task_status id`.
wait_eq() {
    local limit="$1" want="$2" i got=""
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        got=$("$@" 2>/dev/null) || true
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    fail "timed out after ${limit}s waiting for '$*' to print '$want' (last: '$got')"
}

save() { printf '%s' "$2" >"$E2E_TMP/state/$1"; }
load() { cat "$E2E_TMP/state/$1" 2>/dev/null || fail "no saved state '$1' (an earlier scenario failed)"; }

# The host cgroup (v1) directory of PID in CONTROLLER, from /proc/PID/cgroup.
cgroup_dir_of() { # CONTROLLER PID
    local path
    path=$(awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$2/cgroup")
    [ -n "$path" ] || fail "pid $2 has no $1 cgroup"
    echo "/sys/fs/cgroup/$1$path"
}

# ---- daemons ----

# Start a daemon in the background, stdout+stderr to LOG; record its pid in
# $E2E_TMP/pids/NAME. `start_daemon NAME LOG CMD...`
start_daemon() {
    local name="$1" log="$2"
    shift 2
    "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$E2E_TMP/pids/$name"
}

# SIGTERM the daemon by its recorded pid, wait up to 20 s, then SIGKILL.
stop_daemon() { # NAME
    local pidf="$E2E_TMP/pids/$1" pid i
    [ -f "$pidf" ] || return 0
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "e2e: $1 (pid $pid) ignored SIGTERM for 20 s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
}

# Processes whose command line mentions the temp dir: the daemons and the
# shims they spawned (all started by this script, directly or not).
our_processes() {
    local p cmd
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$$" ] && continue
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        case "$cmd" in
            *"$E2E_TMP"*) echo "${p#/proc/} $cmd" ;;
        esac
    done
}
