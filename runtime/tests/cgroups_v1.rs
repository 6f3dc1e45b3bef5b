//! Real-kernel tests of the cgroups module on a cgroup v1 (or hybrid) host, run as root.
//!
//! Every cgroup lives under `/husk-test/<unique>/` in each hierarchy; a guard kills the child
//! it started, removes the container's cgroups and the unique parent even when an assertion
//! fails. The tests skip (printing why) only when not root or when the host has no v1
//! hierarchies (a pure cgroup v2 host).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use husk::cgroups::{
    default_device_rules, detect, open, CgroupError, CgroupsPath, ContainerCgroupMount,
    FreezerState, Hierarchy, Host, Manager,
};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder,
};

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// Why this host can't run these tests, if it can't.
fn skip_reason(host: &Host) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root".into());
    }
    match detect(host) {
        Ok(Hierarchy::V1) => None,
        Ok(Hierarchy::V2) => Some("host runs pure cgroup v2 (no v1 controllers)".into()),
        Err(e) => Some(format!("cannot detect the cgroup hierarchy: {e}")),
    }
}

/// Cleans up whatever the test created, in order: our child, the container cgroup, the
/// unique parent directories.
struct Guard {
    child: Option<Child>,
    manager: Box<dyn Manager>,
    parents: Vec<PathBuf>,
}

impl Guard {
    fn kill_child(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.manager.freeze(FreezerState::Thawed);
        self.kill_child();
        let _ = self.manager.destroy();
        // Only our unique parent: the shared /husk-test may be in use by other tests.
        for p in &self.parents {
            rmdir_retrying(p);
        }
    }
}

/// rmdir, retrying briefly while the kernel still reports the cgroup busy.
fn rmdir_retrying(dir: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => return,
        }
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// A block device of this machine for throttling tests ("major:minor" of a non-loop disk, else loop0).
fn some_block_device() -> (i64, i64) {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| n.starts_with("loop") || n.starts_with("zram") || n.starts_with("ram"));
    let dev = read(&Path::new("/sys/block").join(&names[0]), "dev");
    let (a, b) = dev.split_once(':').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn v1_container_cgroup_lifecycle_on_the_real_kernel() {
    let host = Host::system();
    if let Some(why) = skip_reason(&host) {
        eprintln!("skipping v1_container_cgroup_lifecycle_on_the_real_kernel: {why}");
        return;
    }
    let u = unique("lifecycle");
    let path =
        CgroupsPath::resolve(&host, Some(Path::new(&format!("/husk-test/{u}/c"))), "c").unwrap();
    assert_eq!(path.hierarchy, Hierarchy::V1);
    assert_eq!(path.path, PathBuf::from(format!("/husk-test/{u}/c")));
    let manager = open(&host, &path).unwrap();
    let ContainerCgroupMount::V1 { hierarchies } = manager.mounts_for_container().unwrap() else {
        panic!("v1 host")
    };
    let parents = hierarchies
        .iter()
        .map(|h| h.host_dir.parent().unwrap().to_path_buf())
        .collect();
    let mut guard = Guard {
        child: None,
        manager,
        parents,
    };
    let m = &guard.manager;
    let dir_of = |name: &str| {
        hierarchies
            .iter()
            .find(|h| h.options.split(',').any(|o| o == name))
            .map(|h| h.host_dir.clone())
    };

    // The name=systemd hierarchy is joined like every controller.
    let systemd = hierarchies
        .iter()
        .find(|h| h.options == "name=systemd")
        .expect("name=systemd hierarchy on this host");
    assert_eq!(
        systemd.host_dir,
        PathBuf::from(format!("/sys/fs/cgroup/{}/husk-test/{u}/c", systemd.name))
    );

    m.create().unwrap();
    for h in &hierarchies {
        assert!(
            h.host_dir.is_dir(),
            "{} was not created",
            h.host_dir.display()
        );
    }
    let cpuset = dir_of("cpuset").expect("cpuset is mounted on this host");
    assert!(
        !read(&cpuset, "cpuset.cpus").is_empty(),
        "cpuset.cpus inherited from the parent"
    );
    assert!(
        !read(&cpuset, "cpuset.mems").is_empty(),
        "cpuset.mems inherited from the parent"
    );

    let (major, minor) = some_block_device();
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()];
    rules.extend(default_device_rules());
    let memory = dir_of("memory").unwrap();
    let with_swap = memory.join("memory.memsw.limit_in_bytes").exists();
    let mut mem = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .swappiness(30u64)
        .reservation(32 << 20)
        .kernel_tcp(16 << 20)
        .disable_oom_killer(true);
    if with_swap {
        mem = mem.swap(128 << 20);
    }
    let resources = LinuxResourcesBuilder::default()
        .memory(mem.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50000)
                .period(100000u64)
                .burst(1000u64)
                .idle(0)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(1048576u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .devices(rules)
        .build()
        .unwrap();
    m.apply(&resources).unwrap();

    assert_eq!(
        read(&memory, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    if with_swap {
        assert_eq!(
            read(&memory, "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
    }
    assert_eq!(read(&memory, "memory.swappiness"), "30");
    assert_eq!(
        read(&memory, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    if memory.join("memory.kmem.tcp.limit_in_bytes").exists() {
        assert_eq!(
            read(&memory, "memory.kmem.tcp.limit_in_bytes"),
            (16u64 << 20).to_string()
        );
    }
    assert!(read(&memory, "memory.oom_control").contains("oom_kill_disable 1"));
    let pids = dir_of("pids").unwrap();
    assert_eq!(read(&pids, "pids.max"), "32");
    let cpu = dir_of("cpu").unwrap();
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    if cpu.join("cpu.cfs_burst_us").exists() {
        assert_eq!(read(&cpu, "cpu.cfs_burst_us"), "1000");
    }
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(read(&cpuset, "cpuset.mems"), "0");
    let blkio = dir_of("blkio").unwrap();
    assert_eq!(
        read(&blkio, "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} 1048576")
    );
    let devices = read(&dir_of("devices").unwrap(), "devices.list");
    assert!(
        devices.lines().any(|l| l == "c 1:3 rwm"),
        "devices.list: {devices}"
    );
    assert!(
        devices.lines().any(|l| l == "c 136:* rwm"),
        "devices.list: {devices}"
    );
    assert!(
        !devices.lines().any(|l| l.starts_with("a ")),
        "deny-all did not take: {devices}"
    );

    // Updates must keep memsw >= limit at every step, or the kernel refuses the write:
    // shrinking lowers the limit first, growing raises memsw first.
    if with_swap {
        for (limit, swap) in [(32i64 << 20, 48i64 << 20), (256 << 20, 512 << 20)] {
            let update = LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(limit)
                        .swap(swap)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap();
            m.apply(&update).unwrap();
            assert_eq!(read(&memory, "memory.limit_in_bytes"), limit.to_string());
            assert_eq!(
                read(&memory, "memory.memsw.limit_in_bytes"),
                swap.to_string()
            );
        }
        let restore = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        m.apply(&restore).unwrap();
    }
    // Re-applying the same device rules writes nothing disruptive and still verifies.
    m.apply(&resources).unwrap();

    // blkio weight: this kernel may have neither CFQ's nor BFQ's weight file.
    let weight = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let has_weight = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .find(|f| blkio.join(f).exists());
    match (m.apply(&weight), has_weight) {
        (Ok(()), Some(f)) => assert_eq!(read(&blkio, f), "500"),
        (Err(e), None) => {
            eprintln!("blkio weight unsupported here, as expected: {e}");
            assert!(
                e.to_string().contains("blkio.bfq.weight") && e.to_string().contains("\"500\""),
                "{e}"
            );
        }
        (r, f) => panic!("blkio weight: {r:?} with weight file {f:?}"),
    }

    // Hugepage limits: this host only has hugetlb in the hybrid cgroup2 tree, which husk (like
    // runc's cgroupfs driver) does not join.
    let huge = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(2 << 20)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    match dir_of("hugetlb") {
        None => assert!(matches!(
            m.apply(&huge),
            Err(CgroupError::ControllerMissing {
                controller: "hugetlb",
                ..
            })
        )),
        Some(d) => {
            m.apply(&huge).unwrap();
            assert_eq!(
                read(&d, "hugetlb.2MB.limit_in_bytes"),
                (2u64 << 20).to_string()
            );
        }
    }

    // A process joins every hierarchy and is listed.
    let child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.id() as i32;
    guard.child = Some(child);
    let m = &guard.manager;
    m.add_process(pid).unwrap();
    assert_eq!(m.pids().unwrap(), [pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let wanted = format!("/husk-test/{u}/c");
    for line in own.lines().filter(|l| !l.starts_with("0::")) {
        assert!(
            line.ends_with(&wanted),
            "/proc/{pid}/cgroup line {line:?} is not in {wanted}"
        );
    }

    m.freeze(FreezerState::Frozen).unwrap();
    let freezer = dir_of("freezer").unwrap();
    assert_eq!(read(&freezer, "freezer.state"), "FROZEN");
    m.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(read(&freezer, "freezer.state"), "THAWED");

    let stats = m.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 32);
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert!(!stats.cpu.usage.percpu.is_empty());
    assert_eq!(m.oom_kill_count().unwrap(), 0);

    guard.kill_child();
    let m = &guard.manager;
    m.destroy().unwrap();
    for h in &hierarchies {
        assert!(!h.host_dir.exists(), "{} left behind", h.host_dir.display());
        let parent = h.host_dir.parent().unwrap();
        rmdir_retrying(parent);
        assert!(!parent.exists(), "{} left behind", parent.display());
    }
}

#[test]
fn a_cgroup_with_nested_children_is_destroyed_whole() {
    let host = Host::system();
    if let Some(why) = skip_reason(&host) {
        eprintln!("skipping a_cgroup_with_nested_children_is_destroyed_whole: {why}");
        return;
    }
    let u = unique("nested");
    let path =
        CgroupsPath::resolve(&host, Some(Path::new(&format!("/husk-test/{u}/c"))), "c").unwrap();
    let manager = open(&host, &path).unwrap();
    let ContainerCgroupMount::V1 { hierarchies } = manager.mounts_for_container().unwrap() else {
        panic!("v1 host")
    };
    let parents = hierarchies
        .iter()
        .map(|h| h.host_dir.parent().unwrap().to_path_buf())
        .collect();
    let mut guard = Guard {
        child: None,
        manager,
        parents,
    };
    guard.manager.create().unwrap();
    // A container may create its own sub-cgroups, and run processes there.
    let pids_dir = hierarchies
        .iter()
        .find(|h| h.options == "pids")
        .unwrap()
        .host_dir
        .clone();
    std::fs::create_dir(pids_dir.join("inner")).unwrap();
    let child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.id() as i32;
    guard.child = Some(child);
    std::fs::write(pids_dir.join("inner/cgroup.procs"), pid.to_string()).unwrap();
    assert_eq!(
        guard.manager.pids().unwrap(),
        [pid],
        "pids() must see processes in nested cgroups (kill --all)"
    );
    guard.kill_child();
    guard.manager.destroy().unwrap();
    assert!(!pids_dir.exists());
    let parents = guard.parents.clone();
    drop(guard);
    for p in parents {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

/// The v2 device filter, exercised for real on the hybrid host's cgroup2 tree: device access
/// is checked by the attached eBPF program even for a task in the v1 devices root.
#[test]
fn v2_device_filter_denies_devices_on_the_hybrid_cgroup2_tree() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping v2_device_filter_denies_devices_on_the_hybrid_cgroup2_tree: not running as root");
        return;
    }
    if !unified.join("cgroup.procs").exists() {
        eprintln!("skipping v2_device_filter_denies_devices_on_the_hybrid_cgroup2_tree: no cgroup2 mounted at {}", unified.display());
        return;
    }
    let host = Host {
        cgroup_root: unified.to_path_buf(),
        proc_root: PathBuf::from("/proc"),
    };
    let u = unique("bpf");
    let path = CgroupsPath {
        hierarchy: Hierarchy::V2,
        path: PathBuf::from(format!("/husk-test/{u}/c")),
        v1_paths: Default::default(),
    };
    let manager = open(&host, &path).unwrap();
    let ContainerCgroupMount::V2 { host_dir } = manager.mounts_for_container().unwrap() else {
        panic!("v2 manager")
    };
    // Created by hand: `create` would enable controllers in the host's unified root.
    std::fs::create_dir_all(&host_dir).unwrap();
    let mut guard = Guard {
        child: None,
        manager,
        parents: vec![host_dir.parent().unwrap().to_path_buf()],
    };

    let dev = |major: i64, minor: i64| {
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .access("rwm")
            .build()
            .unwrap()
    };
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap();
    let only_null = LinuxResourcesBuilder::default()
        .devices(vec![deny_all.clone(), dev(1, 3)])
        .build()
        .unwrap();
    guard.manager.apply(&only_null).unwrap();

    let probe = "read x; echo probe >/dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied";
    let run_probe = |guard: &mut Guard| -> Vec<String> {
        let mut child = Command::new("sh")
            .args(["-c", probe])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        guard.child = Some(child);
        guard.manager.add_process(pid).unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let lines = BufReader::new(stdout).lines().map(|l| l.unwrap()).collect();
        guard.kill_child();
        lines
    };
    assert_eq!(run_probe(&mut guard), ["null-ok", "zero-denied"]);

    // Re-applying replaces the filter instead of stacking a second one.
    let null_and_zero = LinuxResourcesBuilder::default()
        .devices(vec![deny_all, dev(1, 3), dev(1, 5)])
        .build()
        .unwrap();
    guard.manager.apply(&null_and_zero).unwrap();
    assert_eq!(run_probe(&mut guard), ["null-ok", "zero-ok"]);

    guard.manager.destroy().unwrap();
    assert!(!host_dir.exists());
    drop(guard);
    assert!(
        !host_dir.parent().unwrap().exists(),
        "/husk-test/<unique> left behind in the cgroup2 tree"
    );
}
