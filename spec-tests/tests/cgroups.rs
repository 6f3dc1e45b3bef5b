//! cgroup placement and resources, on cgroup v1 (this host) and v2 (the test guest): the
//! container gets `/sys/fs/cgroup/<ctrl>/husk-test/<id>` (v1) or
//! `/sys/fs/cgroup/husk-test/<id>` (v2) with the configured limits really enforced, and
//! `pause`/`resume`, `ps`, `update`, `events` and `delete` act on it.

use serde_json::json;
use spec_tests::host::{cgroup_file, cgroup_v2, test_cgroups};
use spec_tests::{Bundle, Runtime};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

fn cg(ctrl: &str, id: &str, file: &str) -> PathBuf {
    cgroup_file(ctrl, id, file)
}

/// (v1 file, v2 file) — the same setting under each hierarchy's name.
fn either(v1: &'static str, v2: &'static str) -> &'static str {
    if cgroup_v2() {
        v2
    } else {
        v1
    }
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
    let ctrls: &[&str] = if cgroup_v2() {
        &["unified"]
    } else {
        &["memory", "pids", "cpu", "devices", "freezer"]
    };
    for &ctrl in ctrls {
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
    let mem = either("memory.limit_in_bytes", "memory.max");
    assert_eq!(read("memory", &c.id, mem), "67108864");
    assert_eq!(read("pids", &c.id, "pids.max"), "42");
    if cgroup_v2() {
        // runc's conversion: weight = 1 + (shares - 2) * 9999 / 262142.
        assert_eq!(read("cpu", &c.id, "cpu.weight"), "20");
        assert_eq!(read("cpu", &c.id, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("cpu", &c.id, "cpu.shares"), "512");
        assert_eq!(read("cpu", &c.id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", &c.id, "cpu.cfs_period_us"), "100000");
    }
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
        .sh(either(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            "cat /sys/fs/cgroup/memory.max",
        ));
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
    let (file, frozen, thawed) = if cgroup_v2() {
        ("cgroup.freeze", "1", "0")
    } else {
        ("freezer.state", "FROZEN", "THAWED")
    };
    assert_eq!(read("freezer", &c.id, file), frozen);
    rt.cmd(&["resume", &c.id]).ok("resume");
    assert_eq!(c.status(), "running");
    assert_eq!(read("freezer", &c.id, file), thawed);
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

/// A counter the container bumps in a host directory: it stands still while the container
/// is paused and moves again after resume. The counter is replaced by rename, so a read never
/// sees the empty file that `echo > n` leaves between its truncate and its write.
#[test]
fn paused_processes_make_no_progress_until_resumed() {
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox();
    b.mount(json!({"destination": "/out", "type": "bind", "source": host_dir.path(), "options": ["rbind", "rw"]}))
        .sh("i=0; while :; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.02; done");
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let counter = || {
        fs::read_to_string(host_dir.path().join("n"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counter() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.cmd(&["pause", &c.id]).ok("pause");
    let at_pause = counter();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(counter(), at_pause, "the counter moved while paused");
    rt.cmd(&["resume", &c.id]).ok("resume");
    // A loaded CI host may take a while to schedule the thawed loop: wait up to 5 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counter() <= at_pause && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        counter() > at_pause,
        "the counter did not move after resume (still {at_pause})"
    );
}

#[test]
fn ps_json_lists_every_process_of_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("sleep 60 & sleep 61 & wait");
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut pids: Vec<i64> = Vec::new();
    while std::time::Instant::now() < deadline {
        let out = rt.cmd(&["ps", "--format", "json", &c.id]).ok("ps");
        pids = serde_json::from_str(out.stdout.trim()).expect("ps json is a list of pids");
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pids.len(), 3, "sh and two sleeps: {pids:?}");
    assert!(pids.contains(&i64::from(c.pid())));
}

#[test]
fn a_memory_limit_oom_kills_a_process_that_exceeds_it_and_events_report_it() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // No swap, so the only way out is the OOM killer.
    b.set(
        "/linux/resources/memory",
        json!({ "limit": 33554432, "swap": 33554432 }),
    )
    .sh("sleep 1; head -c 200m /dev/zero | tail > /dev/null; echo tail-exit=$?; sleep 1");
    let c = rt.container(&b);
    c.create().ok("create");
    let events = rt.spawn(&["events", "--interval", "1s", &c.id]);
    c.start().ok("start");
    // Reclaim before the kill takes ~20 s in the emulated v2 guest; a second on the host.
    c.wait_for_status("stopped", Duration::from_secs(120));
    let out = events.wait(Duration::from_secs(10));
    assert!(
        out.stdout.lines().any(|l| l.contains("\"type\":\"oom\"")),
        "no oom event in {out:#?}"
    );
    let stats: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        stats.iter().any(|e| e["type"] == "stats"),
        "no stats event: {out:#?}"
    );
}

#[test]
fn a_cpu_quota_really_throttles() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/resources/cpu", json!({ "quota": 10000, "period": 100000 }))
        .sh("timeout 1 sh -c 'while :; do :; done'; cat /sys/fs/cgroup/cpu*/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpu.stat");
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    c.wait_for_status("stopped", Duration::from_secs(20));
    let stat = fs::read_to_string(cg("cpu", &c.id, "cpu.stat")).unwrap_or_default();
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        throttled > 0,
        "cpu.stat shows no throttling under a 10% quota: {stat}"
    );
}

#[test]
fn events_stats_prints_runcs_json() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"])
        .set("/linux/resources/pids", json!({ "limit": 42 }));
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let out = rt.cmd(&["events", "--stats", &c.id]).ok("events --stats");
    let ev: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).expect("events --stats prints JSON");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], c.id.as_str());
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    assert_eq!(ev["data"]["pids"]["limit"], 42, "{ev}");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{ev}"
    );
    assert!(ev["data"]["cpu"]["usage"].is_object(), "{ev}");
}

#[test]
fn update_from_stdin_json_changes_memory_and_cpu() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "60"])
        .set("/linux/resources/memory", json!({ "limit": 67108864 }));
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    rt.cmd_stdin(
        &["update", "--resources", "-", &c.id],
        r#"{"memory":{"limit":134217728},"cpu":{"quota":20000,"period":100000}}"#,
    )
    .ok("update --resources -");
    assert_eq!(
        read(
            "memory",
            &c.id,
            either("memory.limit_in_bytes", "memory.max")
        ),
        "134217728"
    );
    if cgroup_v2() {
        assert_eq!(read("cpu", &c.id, "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read("cpu", &c.id, "cpu.cfs_quota_us"), "20000");
    }
}

#[test]
fn a_device_outside_the_allow_list_cannot_be_opened_but_an_allowed_one_can() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.caps(&["CAP_MKNOD", "CAP_DAC_OVERRIDE"]).sh(
        "mknod /dev/mem-test c 1 1; head -c1 /dev/mem-test >/dev/null 2>&1 && echo mem=open || echo mem=denied; \
         head -c1 /dev/zero >/dev/null && echo zero=open || echo zero=denied",
    );
    let c = rt.container(&b);
    let out = c.run_ok();
    assert!(out.contains("mem=denied"), "{out}");
    assert!(out.contains("zero=open"), "{out}");
}
