//! `exec`: running an extra process inside a running container, in its
//! namespaces and cgroup, with the requested env, cwd and user.

use serde_json::json;
use spec_tests::host::ns_link;
use spec_tests::{Bundle, Container, Runtime};

fn running<'a>(rt: &'a Runtime, b: &mut Bundle) -> Container<'a> {
    b.args(&["sleep", "60"]).hostname("exec-host");
    let c = rt.container(b);
    c.create().ok("create");
    c.start().ok("start");
    c
}

#[test]
fn exec_runs_inside_the_containers_namespaces() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    let pid = c.pid().to_string();
    let out = c
        .exec(&["sh", "-c", "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; echo $$"])
        .ok("exec");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "exec-host");
    assert_eq!(lines[1], ns_link(&pid, "net"));
    assert_eq!(lines[2], ns_link(&pid, "mnt"));
    assert_eq!(lines[3], ns_link(&pid, "pid"));
    assert_ne!(lines[4], "1", "exec'd process must not be pid 1");
}

#[test]
fn exec_returns_the_processes_exit_code() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    let out = c.exec(&["sh", "-c", "exit 5"]);
    assert_eq!(out.code, 5, "{out:#?}");
}

#[test]
fn exec_applies_env_cwd_and_user_flags() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    let out = c
        .exec_with(
            &["--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000"],
            &["sh", "-c", "echo $FOO; pwd; id -u; id -g"],
        )
        .ok("exec with flags");
    assert_eq!(out.stdout, "bar\n/tmp\n1000\n1000\n");
}

#[test]
fn exec_with_a_process_json_file() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    let process = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "echo from-process-json $X"],
        "env": ["PATH=/bin", "X=y"],
        "cwd": "/"
    });
    let path = b.path().join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let out = c
        .exec_with(&["--process", path.to_str().unwrap()], &[])
        .ok("exec --process");
    assert_eq!(out.stdout, "from-process-json y\n");
}

#[test]
fn exec_process_lands_in_the_containers_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    let out = c.exec(&["cat", "/proc/self/cgroup"]).ok("exec");
    let want = format!("/husk-test/{}", c.id);
    let memory = out
        .stdout
        .lines()
        .find(|l| {
            // v1: the memory hierarchy's line; v2: the single "0::" line.
            let ctrl = l.split(':').nth(1);
            ctrl == Some("memory") || (spec_tests::host::cgroup_v2() && l.starts_with("0::"))
        })
        .unwrap_or("");
    assert!(
        memory.ends_with(&want),
        "exec'd process in {memory}, want {want}"
    );
}

#[test]
fn exec_keeps_the_containers_capability_bounding_set() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.caps(&["CAP_KILL"]);
    let c = running(&rt, &mut b);
    let out = c.exec(&["grep", "CapBnd", "/proc/self/status"]).ok("exec");
    assert_eq!(
        out.stdout.split_whitespace().last(),
        Some(spec_tests::cap_mask(&["CAP_KILL"]).as_str())
    );
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    c.wait_for_status("stopped", std::time::Duration::from_secs(5));
    c.exec(&["true"]).failed("exec into a stopped container");
}

#[test]
fn exec_into_a_missing_container_fails() {
    let rt = Runtime::new();
    let out = rt
        .cmd(&["exec", "no-such-container-husk", "true"])
        .failed("exec into a missing container");
    assert!(out.stderr.contains("does not exist"), "{out:#?}");
}

/// `exec --cgroup SUB` puts the process in an existing sub-cgroup of the container's.
#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let c = running(&rt, &mut b);
    // The sub-cgroup must exist in every hierarchy (runc's semantics): make it from the host.
    let mut made = Vec::new();
    for dir in spec_tests::host::test_cgroups(&c.id) {
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).expect("make the sub-cgroup");
        // A new v1 cpuset cgroup starts with no cpus or mems: inherit the container's
        // (v2 has no such files unless cpuset is delegated, and needs nothing).
        let v1_cpuset = !spec_tests::host::cgroup_v2() && dir.join("cpuset.cpus").exists();
        for f in ["cpuset.cpus", "cpuset.mems"].iter().filter(|_| v1_cpuset) {
            if let Ok(v) = std::fs::read_to_string(dir.join(f)) {
                std::fs::write(sub.join(f), v.trim()).expect("copy cpuset setting");
            }
        }
        made.push(sub);
    }
    let out = c
        .exec(&["sh", "-c", "cat /proc/self/cgroup"])
        .ok("exec without --cgroup");
    assert!(
        !out.stdout.contains(&format!("{}/sub", c.id)),
        "{}",
        out.stdout
    );
    let out = rt
        .cmd(&["exec", "--cgroup", "sub", &c.id, "cat", "/proc/self/cgroup"])
        .ok("exec --cgroup sub");
    assert!(
        out.stdout.contains(&format!("/husk-test/{}/sub", c.id)),
        "{}",
        out.stdout
    );
    let bad = rt.cmd(&["exec", "--cgroup", "../escape", &c.id, "true"]);
    assert_ne!(bad.code, 0, "a climbing --cgroup must be refused");
    for sub in made.iter().rev() {
        let _ = std::fs::remove_dir(sub);
    }
}
