//! Namespaces: fresh ones differ from the host's, user namespaces map ids,
//! `path` joins an existing namespace, and the cgroup namespace hides paths.

use spec_tests::host::ns_link;
use spec_tests::{Bundle, Runtime};
use std::time::Duration;

fn run_sh(b: &mut Bundle, script: &str) -> String {
    let rt = Runtime::new();
    b.sh(script);
    let c = rt.container(b);
    c.run_ok()
}

/// `readlink /proc/self/ns/<ns>` for each ns, run inside the container.
fn inside_ns(b: &mut Bundle, nss: &[&str]) -> Vec<String> {
    let script: Vec<String> = nss
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect();
    run_sh(b, &script.join("; "))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn configured_namespaces_are_new_and_others_are_shared() {
    let mut b = Bundle::busybox();
    b.namespaces(&["pid", "network", "ipc", "uts", "mount"]);
    let nss = ["pid", "net", "ipc", "uts", "mnt", "user"];
    let inside = inside_ns(&mut b, &nss);
    for (ns, link) in nss.iter().zip(&inside) {
        let host = ns_link("self", ns);
        if *ns == "user" {
            assert_eq!(link, &host, "no user namespace was configured");
        } else {
            assert_ne!(link, &host, "{ns} namespace should be new");
        }
    }
}

#[test]
fn without_a_network_namespace_the_host_network_is_shared() {
    let mut b = Bundle::busybox();
    b.remove_namespace("network");
    // sysfs can't be mounted without a private network namespace.
    if let Some(serde_json::Value::Array(m)) = b.config_mut().get_mut("mounts") {
        m.retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
    }
    b.masked_paths(&[]);
    let inside = inside_ns(&mut b, &["net"]);
    assert_eq!(inside[0], ns_link("self", "net"));
}

#[test]
fn a_new_network_namespace_has_only_loopback() {
    let mut b = Bundle::busybox();
    let out = run_sh(
        &mut b,
        "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    );
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(names, vec!["lo", "lo"], "{out}");
}

#[test]
fn uts_namespace_keeps_the_host_hostname_unchanged() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut b = Bundle::busybox();
    b.hostname("husk-uts-test");
    let out = run_sh(&mut b, "hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(out, "husk-uts-test\nhusk-uts-test\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
}

#[test]
fn user_namespace_maps_container_root_to_the_configured_host_id() {
    let mut b = Bundle::busybox();
    b.namespace("user", None)
        .uid_mapping(0, 100000, 65536)
        .gid_mapping(0, 100000, 65536);
    let out = run_sh(
        &mut b,
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user",
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines[0..4],
        ["0", "0", "0 100000 65536", "0 100000 65536"],
        "{out}"
    );
    assert_ne!(
        lines[4],
        ns_link("self", "user"),
        "user namespace should be new"
    );
}

#[test]
fn user_namespace_with_a_non_root_process_user() {
    let mut b = Bundle::busybox();
    b.namespace("user", None)
        .uid_mapping(0, 200000, 2000)
        .gid_mapping(0, 200000, 2000)
        .user(1000, 1000, &[]);
    let out = run_sh(
        &mut b,
        "id -u; id -g; cat /proc/self/status | grep -E '^(Uid|Gid):'",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(lines.next(), Some("Uid:\t1000\t1000\t1000\t1000"));
}

#[test]
fn joining_another_containers_network_namespace_by_path() {
    let rt = Runtime::new();
    let mut first = Bundle::busybox();
    first.args(&["sleep", "60"]);
    let a = rt.container(&first);
    a.create().ok("create first container");
    let pid = a.pid();
    let target = ns_link(&pid.to_string(), "net");
    assert_ne!(target, ns_link("self", "net"));

    let mut second = Bundle::busybox();
    let path = format!("/proc/{pid}/ns/net");
    second
        .namespace("network", Some(&path))
        .sh("readlink /proc/self/ns/net");
    let b = rt.container(&second);
    assert_eq!(
        b.run_ok().trim(),
        target,
        "second container should share {path}"
    );
}

#[test]
fn joining_ipc_and_uts_namespaces_by_path_shares_the_hostname() {
    let rt = Runtime::new();
    let mut first = Bundle::busybox();
    first.args(&["sleep", "60"]).hostname("first-host");
    let a = rt.container(&first);
    a.create().ok("create first container");
    let pid = a.pid();

    let mut second = Bundle::busybox();
    second
        .namespace("uts", Some(&format!("/proc/{pid}/ns/uts")))
        .namespace("ipc", Some(&format!("/proc/{pid}/ns/ipc")))
        .remove("/hostname")
        .sh("hostname; readlink /proc/self/ns/ipc");
    let b = rt.container(&second);
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "first-host");
    assert_eq!(lines[1], ns_link(&pid.to_string(), "ipc"));
    a.kill("KILL").ok("kill first");
    a.wait_for_status("stopped", Duration::from_secs(5));
}

#[test]
fn cgroup_namespace_makes_the_own_cgroup_look_like_the_root() {
    let mut b = Bundle::busybox();
    b.namespace("cgroup", None);
    let out = run_sh(
        &mut b,
        "cat /proc/self/cgroup; readlink /proc/self/ns/cgroup",
    );
    let mut lines: Vec<&str> = out.lines().collect();
    let link = lines.pop().unwrap();
    assert_ne!(link, ns_link("self", "cgroup"));
    for l in lines {
        assert!(l.ends_with(":/"), "cgroup path not virtualised: {l}\n{out}");
    }
}

#[test]
fn without_a_cgroup_namespace_the_full_path_shows() {
    let mut b = Bundle::busybox();
    let id = b.id.clone();
    let out = run_sh(&mut b, "cat /proc/self/cgroup");
    assert!(out.contains(&format!("/husk-test/{id}")), "{out}");
}

#[test]
fn joining_a_nonexistent_namespace_path_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.namespace("network", Some("/proc/999999999/ns/net"))
        .args(&["true"]);
    let c = rt.container(&b);
    c.run().failed("joining a nonexistent namespace path");
    assert!(!c.state_dir_exists());
}
