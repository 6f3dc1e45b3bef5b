//! The container lifecycle: create, state, start, kill, delete, run, list.

use serde_json::Value;
use spec_tests::{Bundle, Runtime};
use std::time::Duration;

fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    b
}

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let state = c.state_json();
    assert_eq!(state["status"], "created", "{state}");
    assert!(
        state["pid"].as_i64().unwrap_or(0) > 0,
        "created container has a pid: {state}"
    );
    c.start().ok("start");
    assert_eq!(c.status(), "running");
    c.kill("SIGKILL").ok("kill SIGKILL");
    c.wait_for_status("stopped", Duration::from_secs(5));
    c.delete().ok("delete");
    let gone = c.state();
    assert_ne!(gone.code, 0, "state after delete must fail: {gone:?}");
    assert!(
        gone.stderr.contains("does not exist"),
        "stderr should say it does not exist: {gone:?}"
    );
    assert!(
        !c.state_dir_exists(),
        "state dir left under --root after delete"
    );
}

#[test]
fn kill_accepts_kill_9_and_sigkill_spellings() {
    let rt = Runtime::new();
    for sig in ["KILL", "9", "SIGKILL"] {
        let b = sleeper();
        let c = rt.container(&b);
        c.create().ok("create");
        c.start().ok("start");
        c.kill(sig).ok(&format!("kill {sig}"));
        c.wait_for_status("stopped", Duration::from_secs(5));
        c.delete().ok("delete");
    }
}

#[test]
fn kill_without_signal_sends_sigterm() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // sh as pid 1 ignores SIGTERM unless it installs a handler.
    b.root_readonly(false)
        .sh("trap 'exit 0' TERM; touch /tmp/ready; while :; do sleep 0.1; done");
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let ready = b.rootfs().join("tmp/ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "container never set its trap"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.cmd(&["kill", &c.id]).ok("kill with default signal");
    c.wait_for_status("stopped", Duration::from_secs(5));
}

#[test]
fn run_returns_the_containers_exit_code() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 7");
    let c = rt.container(&b);
    let out = c.run();
    assert_eq!(out.code, 7, "{out:#?}");
    assert!(
        !c.state_dir_exists(),
        "run must delete the container after it exits"
    );
}

#[test]
fn run_passes_the_containers_stdout_through() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("echo hello-from-container; echo to-stderr >&2");
    let c = rt.container(&b);
    let out = c.run().ok("run");
    assert_eq!(out.stdout, "hello-from-container\n");
    assert!(out.stderr.contains("to-stderr"), "{out:#?}");
}

#[test]
fn run_reports_a_signal_death_as_128_plus_signal() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    let out = std::thread::scope(|s| {
        let running = s.spawn(|| c.run());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !c.state().stdout.contains("\"running\"") {
            assert!(std::time::Instant::now() < deadline, "container never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        c.kill("KILL").ok("kill");
        running.join().expect("run thread")
    });
    assert_eq!(out.code, 128 + 9, "{out:#?}");
}

#[test]
fn delete_force_removes_a_running_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let pid = c.pid();
    assert_eq!(c.status(), "running");
    c.delete().failed("plain delete of a running container");
    c.delete_force().ok("delete --force");
    assert!(c.state().code != 0, "state must fail after delete --force");
    std::thread::sleep(Duration::from_millis(100));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "init pid {pid} still running after delete --force");
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let pid = c.pid();
    c.delete_force().ok("delete --force of created container");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while rt.processes_of(&c.id).contains(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "init {pid} of a deleted created container survived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn list_json_includes_the_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let out = rt.cmd(&["list", "--format", "json"]).ok("list");
    let list: Value = serde_json::from_str(&out.stdout).expect("list output is JSON");
    let entry = list
        .as_array()
        .expect("list is an array")
        .iter()
        .find(|e| e["id"] == c.id.as_str())
        .unwrap_or_else(|| panic!("{} missing from {list}", c.id));
    assert_eq!(entry["status"], "created");
    assert_eq!(entry["bundle"], b.path().to_str().unwrap());
    assert!(entry["pid"].as_i64().unwrap_or(0) > 0);
}

#[test]
fn list_of_an_empty_root_is_empty() {
    let rt = Runtime::new();
    let out = rt.cmd(&["list", "--format", "json"]).ok("list");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
    assert!(
        v.as_array().map(|a| a.is_empty()).unwrap_or(true),
        "empty root lists containers: {}",
        out.stdout
    );
}

#[test]
fn state_json_has_exactly_runcs_keys() {
    let rt = Runtime::new();
    let mut b = sleeper();
    b.annotation("org.example.key", "value");
    let c = rt.container(&b);
    c.create().ok("create");
    let state = c.state_json();
    let mut keys: Vec<&str> = state
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "annotations",
        "bundle",
        "created",
        "id",
        "ociVersion",
        "owner",
        "pid",
        "rootfs",
        "status",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "{state}");
    assert_eq!(state["id"], c.id.as_str());
    assert_eq!(state["bundle"], b.path().to_str().unwrap());
    assert_eq!(state["rootfs"], b.rootfs().to_str().unwrap());
    assert_eq!(state["annotations"]["org.example.key"], "value");
    assert!(
        state["created"].as_str().unwrap_or("").contains('T'),
        "RFC 3339 created: {state}"
    );
}

#[test]
fn state_json_omits_annotations_when_there_are_none() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let state = c.state_json();
    assert!(state.get("annotations").is_none(), "{state}");
    assert!(state.get("ociVersion").is_some(), "{state}");
}

#[test]
fn create_with_pid_file_writes_the_init_pid() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    let pid_file = b.path().join("init.pid");
    c.create_with(&["--pid-file", pid_file.to_str().unwrap()])
        .ok("create --pid-file");
    let written = std::fs::read_to_string(&pid_file).expect("pid file exists");
    assert_eq!(
        written
            .trim()
            .parse::<i32>()
            .expect("pid file holds a number"),
        c.pid()
    );
}

#[test]
fn create_with_a_duplicate_id_fails_and_keeps_the_first() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let pid = c.pid();
    let b2 = sleeper();
    let out = rt.cmd(&["create", "--bundle", b2.path().to_str().unwrap(), &c.id]);
    let out = out.failed("second create with the same id");
    assert!(out.stderr.contains("already exists"), "{out:#?}");
    assert_eq!(c.pid(), pid, "first container must be untouched");
    assert_eq!(c.status(), "created");
}

#[test]
fn start_twice_fails() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    c.start().failed("second start");
    assert_eq!(c.status(), "running");
}

#[test]
fn a_container_that_exits_is_reported_stopped() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    c.wait_for_status("stopped", Duration::from_secs(5));
    c.delete().ok("delete of stopped container");
}

#[test]
fn delete_leaves_no_runtime_processes_behind() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    // The created container's init is found (by cgroup, env or state dir).
    let pid = c.pid();
    assert!(
        rt.processes_of(&c.id).contains(&pid),
        "init {pid} of a created container not found by its marker"
    );
    c.delete_force().ok("delete --force");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !rt.processes_of(&c.id).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left running: {:?}",
            rt.processes_of(&c.id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_detach_returns_while_the_container_keeps_running() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.run_with(&["--detach"]).ok("run --detach");
    assert_eq!(c.status(), "running");
    assert!(c.pid() > 0);
}

#[test]
fn an_init_killed_from_the_host_is_reported_stopped_with_pid_0() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let pid = c.pid();
    // Our own container's init, killed by pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill init");
    c.wait_for_status("stopped", Duration::from_secs(5));
    assert_eq!(
        c.state_json()["pid"],
        0,
        "a stopped container reports pid 0"
    );
    c.delete().ok("delete");
}

#[test]
fn list_prints_a_table_and_quiet_prints_ids() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let table = rt.cmd(&["list"]).ok("list").stdout;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row.first(), Some(&c.id.as_str()), "{table}");
    assert_eq!(row.get(2), Some(&"created"), "{table}");
    let quiet = rt.cmd(&["list", "-q"]).ok("list -q").stdout;
    assert_eq!(quiet, format!("{}\n", c.id));
}

#[test]
fn run_forwards_signals_to_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false)
        .sh("trap 'exit 3' TERM; touch /tmp/ready; while :; do sleep 0.1; done");
    let c = rt.container(&b);
    let bundle = b.path().to_str().unwrap().to_string();
    let running = rt.spawn(&["run", "--bundle", &bundle, &c.id]);
    let ready = b.rootfs().join("tmp/ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "container never set its trap"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal(nix::sys::signal::Signal::SIGTERM);
    let out = running.wait(Duration::from_secs(10));
    assert_eq!(out.code, 3, "SIGTERM should reach the container: {out:#?}");
}

#[test]
fn delete_without_force_removes_a_created_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let c = rt.container(&b);
    c.create().ok("create");
    let pid = c.pid();
    c.delete().ok("delete of a created container");
    assert!(c.state().code != 0, "state must fail after delete");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while rt.processes_of(&c.id).contains(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "init {pid} survived delete"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_and_start_of_a_stopped_container_fail() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    c.wait_for_status("stopped", Duration::from_secs(5));
    c.kill("KILL").failed("kill of a stopped container");
    c.start().failed("start of a stopped container");
    assert_eq!(c.status(), "stopped");
}
