//! The container's mount table: configured mounts only, masked and read-only
//! paths, read-only root, tmpfs options, bind mounts, and symlink escapes.

use serde_json::json;
use spec_tests::host::{host_mountpoints, mount_entries, mountpoints, new_mounts_mentioning};
use spec_tests::{Bundle, Runtime};
use std::collections::BTreeSet;
use std::path::Path;

fn run_sh(b: &mut Bundle, script: &str) -> String {
    let rt = Runtime::new();
    b.sh(script);
    let c = rt.container(b);
    c.run_ok()
}

#[test]
fn only_the_configured_mounts_are_present() {
    let mut b = Bundle::busybox();
    let info = run_sh(&mut b, "cat /proc/self/mountinfo");
    let found: BTreeSet<String> = mountpoints(&info).into_iter().collect();
    let cfg = b.config();
    let destinations: BTreeSet<String> = cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    // Masked and read-only paths become mounts when they exist (this kernel
    // decides which /proc files exist; the host's /proc shows the same set).
    let protected: BTreeSet<String> = ["maskedPaths", "readonlyPaths"]
        .iter()
        .flat_map(|k| cfg["linux"][*k].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap().to_string())
        .filter(|p| Path::new(p).exists())
        .collect();
    for want in destinations
        .iter()
        .chain(&protected)
        .chain(std::iter::once(&"/".to_string()))
    {
        assert!(
            found.contains(want),
            "{want} is not mounted in the container:\n{info}"
        );
    }
    for got in &found {
        let allowed = got == "/"
            || destinations.contains(got)
            || protected.contains(got)
            // The cgroup mount expands to one mount per v1 hierarchy.
            || got.starts_with("/sys/fs/cgroup/");
        assert!(allowed, "unexpected mount {got} in the container:\n{info}");
    }
}

#[test]
fn no_host_mounts_leak_into_the_container() {
    let mut b = Bundle::busybox();
    let info = run_sh(&mut b, "cat /proc/self/mountinfo");
    for m in mountpoints(&info) {
        assert!(
            !m.contains("husk-bundle-"),
            "host path {m} visible inside:\n{info}"
        );
    }
}

#[test]
fn masked_files_read_as_empty_and_masked_dirs_list_as_empty() {
    let mut b = Bundle::busybox();
    std::fs::write(b.rootfs().join("etc/secret"), "top-secret\n").unwrap();
    std::fs::create_dir(b.rootfs().join("secretdir")).unwrap();
    std::fs::write(b.rootfs().join("secretdir/file"), "x").unwrap();
    b.masked_paths(&[
        "/etc/secret",
        "/secretdir",
        "/proc/timer_list",
        "/proc/keys",
        "/sys/firmware",
    ]);
    let out = run_sh(
        &mut b,
        "cat /etc/secret | wc -c; ls -A /secretdir | wc -l; cat /proc/timer_list | wc -c; \
         cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l; touch /secretdir/new 2>/dev/null && echo writable || echo ro",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, vec!["0", "0", "0", "0", "0", "ro"], "{out}");
}

#[test]
fn masking_a_missing_path_is_not_an_error() {
    let mut b = Bundle::busybox();
    b.masked_paths(&["/does/not/exist", "/proc/kcore"]);
    assert_eq!(run_sh(&mut b, "echo ok"), "ok\n");
}

#[test]
fn readonly_paths_are_not_writable() {
    let mut b = Bundle::busybox();
    b.root_readonly(false);
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    b.readonly_paths(&["/proc/sys", "/data"]);
    let out = run_sh(
        &mut b,
        "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable || echo procsys-ro; \
         touch /data/f 2>/dev/null && echo data-writable || echo data-ro; \
         touch /tmp/f && echo tmp-writable",
    );
    assert_eq!(out, "procsys-ro\ndata-ro\ntmp-writable\n");
}

#[test]
fn readonly_root_makes_slash_read_only() {
    let mut b = Bundle::busybox();
    b.root_readonly(true);
    let out = run_sh(
        &mut b,
        "touch /newfile 2>/dev/null && echo writable || echo ro; cat /proc/self/mountinfo",
    );
    assert_eq!(out.lines().next(), Some("ro"), "{out}");
    let entries = mount_entries(&out);
    let root = entries.iter().find(|e| e.0 == "/").expect("/ in mountinfo");
    assert!(root.1.split(',').any(|o| o == "ro"), "/ mounted {}", root.1);
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn writable_root_can_be_written() {
    let mut b = Bundle::busybox();
    b.root_readonly(false);
    let out = run_sh(&mut b, "echo data > /newfile && cat /newfile");
    assert_eq!(out, "data\n");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("newfile")).unwrap(),
        "data\n"
    );
}

#[test]
fn tmpfs_mount_gets_its_options() {
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]
    }));
    let out = run_sh(&mut b, "cat /proc/self/mountinfo; stat -c %a /scratch");
    let entries = mount_entries(&out);
    let (_, opts, fstype, sopts) = entries
        .iter()
        .find(|e| e.0 == "/scratch")
        .unwrap_or_else(|| panic!("/scratch not mounted:\n{out}"));
    assert_eq!(fstype, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(opts.split(',').any(|x| x == o), "{o} missing from {opts}");
    }
    assert!(sopts.contains("size=1024k"), "{sopts}");
    assert!(sopts.contains("mode=1770"), "{sopts}");
    assert_eq!(out.lines().last(), Some("1770"));
}

#[test]
fn mount_destination_is_created_inside_the_rootfs() {
    let mut b = Bundle::busybox();
    b.mount(json!({ "destination": "/a/b/c", "type": "tmpfs", "source": "tmpfs" }));
    let out = run_sh(&mut b, "grep -c ' /a/b/c ' /proc/self/mountinfo");
    assert_eq!(out, "1\n");
    assert!(
        b.rootfs().join("a/b/c").is_dir(),
        "mount point made inside the rootfs"
    );
}

#[test]
fn read_only_bind_mount_of_a_host_dir() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello.txt"), "from-host\n").unwrap();
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/hostdata", "type": "bind",
        "source": host.path().to_str().unwrap(), "options": ["rbind", "ro"]
    }));
    let out = run_sh(
        &mut b,
        "cat /hostdata/hello.txt; touch /hostdata/new 2>/dev/null && echo writable || echo ro",
    );
    assert_eq!(out, "from-host\nro\n");
    assert!(!host.path().join("new").exists());
}

#[test]
fn read_write_bind_mount_writes_through_to_the_host() {
    let host = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/hostdata", "type": "bind",
        "source": host.path().to_str().unwrap(), "options": ["rbind", "rw"]
    }));
    run_sh(&mut b, "echo written > /hostdata/out.txt");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "written\n"
    );
}

#[test]
fn bind_mount_of_a_single_file() {
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("resolv.conf");
    std::fs::write(&file, "nameserver 192.0.2.1\n").unwrap();
    let mut b = Bundle::busybox();
    b.mount(json!({
        "destination": "/etc/resolv.conf", "type": "bind",
        "source": file.to_str().unwrap(), "options": ["bind", "ro"]
    }));
    assert_eq!(
        run_sh(&mut b, "cat /etc/resolv.conf"),
        "nameserver 192.0.2.1\n"
    );
}

#[test]
fn symlinked_mount_destinations_stay_inside_the_rootfs() {
    let mut b = Bundle::busybox();
    let id = b.id.clone();
    std::os::unix::fs::symlink("/", b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../..", b.rootfs().join("evil2")).unwrap();
    std::os::unix::fs::symlink("/tmp/../../..", b.rootfs().join("evil3")).unwrap();
    let escape1 = format!("husk-escape-{id}");
    let escape2 = format!("husk-escape2-{id}");
    let escape3 = format!("husk-escape3-{id}");
    b.mount(
        json!({ "destination": format!("/evil/{escape1}"), "type": "tmpfs", "source": "tmpfs" }),
    );
    b.mount(
        json!({ "destination": format!("/evil2/{escape2}"), "type": "tmpfs", "source": "tmpfs" }),
    );
    b.mount(
        json!({ "destination": format!("/evil3/{escape3}"), "type": "tmpfs", "source": "tmpfs" }),
    );
    b.sh("cat /proc/self/mountinfo");
    let before = host_mountpoints();
    let rt = Runtime::new();
    let c = rt.container(&b);
    let out = c.run();
    // Whether the runtime resolves the links inside the rootfs (runc) or
    // refuses the config, nothing may appear on the host.
    for e in [&escape1, &escape2, &escape3] {
        assert!(
            !Path::new("/").join(e).exists(),
            "/{e} was created on the host: {out:#?}"
        );
        assert!(
            !Path::new("/tmp").join(e).exists(),
            "/tmp/{e} was created on the host"
        );
    }
    let leaked = new_mounts_mentioning(&before, &[&id]);
    assert!(leaked.is_empty(), "host gained mounts {leaked:?}");
    if out.success() {
        // Resolved in the rootfs: the tmpfs sits at /<name> inside.
        for e in [&escape1, &escape2, &escape3] {
            assert!(
                mountpoints(&out.stdout).contains(&format!("/{e}")),
                "/{e} should be mounted inside the container:\n{}",
                out.stdout
            );
        }
    } else {
        assert!(!out.stderr.contains("panicked"), "{out:#?}");
    }
    // The symlinks themselves are untouched.
    assert_eq!(
        std::fs::read_link(b.rootfs().join("evil")).unwrap(),
        Path::new("/")
    );
}

#[test]
fn bind_source_symlink_in_rootfs_does_not_redirect_the_destination() {
    // A symlinked parent directory of a bind destination pointing at the host's
    // /etc must resolve inside the rootfs, never onto the host's /etc.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("payload"), "p\n").unwrap();
    let mut b = Bundle::busybox();
    let id = b.id.clone();
    std::os::unix::fs::symlink("/etc", b.rootfs().join("hostetc")).unwrap();
    let dest_name = format!("husk-escape-bind-{id}");
    b.mount(json!({
        "destination": format!("/hostetc/{dest_name}"), "type": "bind",
        "source": host.path().to_str().unwrap(), "options": ["rbind", "ro"]
    }));
    b.sh("true");
    let before = host_mountpoints();
    let rt = Runtime::new();
    let c = rt.container(&b);
    let out = c.run();
    assert!(
        !Path::new("/etc").join(&dest_name).exists(),
        "created /etc/{dest_name} on host: {out:#?}"
    );
    assert!(new_mounts_mentioning(&before, &[&id]).is_empty());
}

#[test]
fn dev_has_runcs_symlinks_and_a_private_ptmx() {
    let mut b = Bundle::busybox();
    let out = run_sh(
        &mut b,
        "for l in ptmx fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; test -c /dev/pts/ptmx && echo pts-ok",
    );
    assert_eq!(
        out,
        "ptmx=pts/ptmx\nfd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\nstderr=/proc/self/fd/2\npts-ok\n"
    );
}

#[test]
fn sys_and_proc_sys_are_read_only_by_default() {
    let mut b = Bundle::busybox();
    let info = run_sh(&mut b, "cat /proc/self/mountinfo");
    let entries = mount_entries(&info);
    for dest in ["/sys", "/proc/sys"] {
        let (_, opts, _, _) = entries
            .iter()
            .find(|e| e.0 == dest)
            .unwrap_or_else(|| panic!("{dest} not mounted:\n{info}"));
        assert!(opts.split(',').any(|o| o == "ro"), "{dest} mounted {opts}");
    }
}

#[test]
fn configured_device_nodes_are_created() {
    let mut b = Bundle::busybox();
    b.devices(json!([
        { "path": "/dev/husk-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0 }
    ]));
    let out = run_sh(
        &mut b,
        "stat -c '%F %t:%T %a' /dev/husk-null; echo x > /dev/husk-null && echo writable",
    );
    assert_eq!(out, "character special file 1:3 666\nwritable\n");
}
