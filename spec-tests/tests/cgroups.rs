//! cgroup v1 placement and resources: the container gets
//! `/sys/fs/cgroup/<ctrl>/husk-test/<id>` with the configured limits, and
//! `pause`/`resume`, `ps` and `delete` act on it.

use serde_json::json;
use spec_tests::host::test_cgroups;
use spec_tests::{Bundle, Runtime};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

fn cg(ctrl: &str, id: &str, file: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/husk-test/{id}/{file}"))
}

fn read(ctrl: &str, id: &str, file: &str) -> String {
    let p = cg(ctrl, id, file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn init_is_placed_in_the_configured_cgroup_of_every_controller() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    let c = rt.container(&b);
    c.create().ok("create");
    let pid = c.pid().to_string();
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        let procs = read(ctrl, &c.id, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid),
            "{ctrl}: pid {pid} not in {procs:?}"
        );
    }
}

#[test]
fn memory_pids_and_cpu_limits_are_written() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"])
        .set("/linux/resources/memory", json!({ "limit": 67108864 }))
        .set("/linux/resources/pids", json!({ "limit": 42 }))
        .set(
            "/linux/resources/cpu",
            json!({ "shares": 512, "quota": 50000, "period": 100000 }),
        );
    let c = rt.container(&b);
    c.create().ok("create");
    assert_eq!(read("memory", &c.id, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("pids", &c.id, "pids.max"), "42");
    assert_eq!(read("cpu", &c.id, "cpu.shares"), "512");
    assert_eq!(read("cpu", &c.id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", &c.id, "cpu.cfs_period_us"), "100000");
}

#[test]
fn the_pids_limit_stops_forks_inside_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/resources/pids", json!({ "limit": 5 }))
        .sh("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo all-forked");
    let c = rt.container(&b);
    let out = c.run();
    assert!(
        !out.stdout.contains("all-forked"),
        "10 forks succeeded under pids.max=5: {out:#?}"
    );
    assert!(
        out.stderr.contains("Resource temporarily unavailable"),
        "fork should fail with EAGAIN: {out:#?}"
    );
}

#[test]
fn the_container_sees_its_own_memory_limit() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/resources/memory", json!({ "limit": 33554432 }))
        .sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    let c = rt.container(&b);
    assert_eq!(c.run_ok(), "33554432\n");
}

#[test]
fn delete_removes_the_containers_cgroups() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    let c = rt.container(&b);
    c.create().ok("create");
    assert!(
        !test_cgroups(&c.id).is_empty(),
        "no cgroup created under /husk-test"
    );
    c.kill("KILL").ok("kill");
    c.wait_for_status("stopped", Duration::from_secs(5));
    c.delete().ok("delete");
    assert_eq!(
        test_cgroups(&c.id),
        Vec::<PathBuf>::new(),
        "delete left cgroups"
    );
}

#[test]
fn run_removes_the_containers_cgroups_when_it_exits() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let c = rt.container(&b);
    c.run().ok("run");
    assert_eq!(
        test_cgroups(&c.id),
        Vec::<PathBuf>::new(),
        "run left cgroups"
    );
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    rt.cmd(&["pause", &c.id]).ok("pause");
    assert_eq!(c.status(), "paused");
    assert_eq!(read("freezer", &c.id, "freezer.state"), "FROZEN");
    rt.cmd(&["resume", &c.id]).ok("resume");
    assert_eq!(c.status(), "running");
    assert_eq!(read("freezer", &c.id, "freezer.state"), "THAWED");
}

#[test]
fn delete_force_of_a_paused_container_cleans_up() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    rt.cmd(&["pause", &c.id]).ok("pause");
    c.delete_force().ok("delete --force of a paused container");
    assert!(
        test_cgroups(&c.id).is_empty(),
        "cgroups left after deleting a paused container"
    );
}

#[test]
fn ps_lists_the_containers_host_pids() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"]);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let out = rt.cmd(&["ps", "--format", "json", &c.id]).ok("ps");
    let pids: Vec<i64> =
        serde_json::from_str(out.stdout.trim()).expect("ps json is a list of pids");
    assert_eq!(pids, vec![i64::from(c.pid())]);
}

#[test]
fn update_changes_the_pids_limit_of_a_running_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"])
        .set("/linux/resources/pids", json!({ "limit": 42 }));
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    rt.cmd(&["update", "--pids-limit", "77", &c.id])
        .ok("update");
    assert_eq!(read("pids", &c.id, "pids.max"), "77");
}
