//! v1 manager against a fake cgroupfs tree (plain files in a temp dir, a fake mountinfo).

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxHugepageLimitBuilder,
    LinuxInterfacePriorityBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxRdmaBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::*;
use crate::cgroups::fs::record;
use crate::cgroups::{default_device_rules, open, Hierarchy};

/// Hierarchy directory names and their mount options, like this project's test host plus the
/// controllers it lacks.
const MOUNTS: &[(&str, &str)] = &[
    ("cpu", "cpu"),
    ("cpuacct", "cpuacct"),
    ("cpuset", "cpuset"),
    ("memory", "memory"),
    ("devices", "devices"),
    ("freezer", "freezer"),
    ("blkio", "blkio"),
    ("pids", "pids"),
    ("hugetlb", "hugetlb"),
    ("rdma", "rdma"),
    ("systemd", "xattr,name=systemd"),
];

struct Fake {
    _tmp: tempfile::TempDir,
    host: Host,
}

impl Fake {
    /// A fake host with every hierarchy of MOUNTS, the container's cgroup holding an empty
    /// `file` in each.
    fn with_empty_file_in_every_hierarchy(file: &str) -> Fake {
        let files: Vec<String> = MOUNTS.iter().map(|(h, _)| format!("{h}/{file}")).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|f| (f.as_str(), "")).collect();
        Fake::new(MOUNTS, &files)
    }

    /// A fake host with `mounts`, and the container's cgroup `/husk/t` holding `files`
    /// (given as "hierarchy/file" => content).
    fn new(mounts: &[(&str, &str)], files: &[(&str, &str)]) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        let proc_root = tmp.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        let mut mi = format!("31 23 0:28 / {} rw - tmpfs tmpfs rw\n", root.display());
        for (i, (name, opts)) in mounts.iter().enumerate() {
            std::fs::create_dir_all(root.join(name).join("husk/t")).unwrap();
            mi.push_str(&format!(
                "{} 31 0:{} / {}/{} rw - cgroup cgroup rw,{}\n",
                40 + i,
                40 + i,
                root.display(),
                name,
                opts
            ));
        }
        mi.push_str(&format!(
            "99 31 0:99 / {}/unified rw - cgroup2 cgroup2 rw\n",
            root.display()
        ));
        std::fs::write(proc_root.join("self/mountinfo"), mi).unwrap();
        for (file, content) in files {
            let (h, f) = file.split_once('/').unwrap();
            let path = root.join(h).join("husk/t").join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Fake {
            host: Host {
                cgroup_root: root,
                proc_root,
            },
            _tmp: tmp,
        }
    }

    fn manager(&self) -> Box<dyn Manager> {
        let path = CgroupsPath {
            hierarchy: Hierarchy::V1,
            path: "/husk/t".into(),
            v1_paths: BTreeMap::new(),
        };
        open(&self.host, &path).unwrap()
    }

    fn read(&self, file: &str) -> String {
        let (h, f) = file.split_once('/').unwrap();
        std::fs::read_to_string(self.host.cgroup_root.join(h).join("husk/t").join(f)).unwrap()
    }

    /// The writes made so far, as ("hierarchy/file", value) with the `/husk/t` part removed.
    fn writes(&self) -> Vec<(String, String)> {
        record::take(&self.host.cgroup_root)
            .into_iter()
            .map(|(p, v)| (p.replace("/husk/t/", "/"), v))
            .collect()
    }
}

fn w(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const MEMORY_FILES: &[(&str, &str)] = &[
    ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
    (
        "memory/memory.memsw.limit_in_bytes",
        "9223372036854771712\n",
    ),
    ("memory/memory.soft_limit_in_bytes", ""),
    ("memory/memory.kmem.limit_in_bytes", ""),
    ("memory/memory.kmem.tcp.limit_in_bytes", ""),
    ("memory/memory.oom_control", ""),
    ("memory/memory.swappiness", ""),
    ("memory/memory.use_hierarchy", ""),
];

#[test]
fn memory_settings_go_to_their_v1_files_memory_before_swap_when_shrinking() {
    let f = Fake::new(MOUNTS, MEMORY_FILES);
    let mem = LinuxMemoryBuilder::default()
        .limit(104857600)
        .swap(209715200)
        .reservation(52428800)
        .kernel(1048576)
        .kernel_tcp(2097152)
        .swappiness(10u64)
        .disable_oom_killer(true)
        .use_hierarchy(true)
        .build()
        .unwrap();
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/memory.limit_in_bytes", "104857600"),
            ("memory/memory.memsw.limit_in_bytes", "209715200"),
            ("memory/memory.kmem.limit_in_bytes", "1048576"),
            ("memory/memory.kmem.tcp.limit_in_bytes", "2097152"),
            ("memory/memory.soft_limit_in_bytes", "52428800"),
            ("memory/memory.oom_control", "1"),
            ("memory/memory.swappiness", "10"),
            ("memory/memory.use_hierarchy", "1"),
        ])
    );
    assert_eq!(f.read("memory/memory.limit_in_bytes"), "104857600");
    assert_eq!(f.read("memory/memory.memsw.limit_in_bytes"), "209715200");
}

#[test]
fn growing_memory_raises_memsw_first() {
    let f = Fake::new(
        MOUNTS,
        &[
            ("memory/memory.limit_in_bytes", "104857600\n"),
            ("memory/memory.memsw.limit_in_bytes", "104857600\n"),
        ],
    );
    let mem = LinuxMemoryBuilder::default()
        .limit(209715200)
        .swap(419430400)
        .build()
        .unwrap();
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/memory.memsw.limit_in_bytes", "419430400"),
            ("memory/memory.limit_in_bytes", "209715200")
        ])
    );
}

#[test]
fn unlimited_memory_also_unlimits_swap_only_where_swap_is_accounted() {
    let f = Fake::new(MOUNTS, MEMORY_FILES);
    let r = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    f.manager().apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/memory.memsw.limit_in_bytes", "-1"),
            ("memory/memory.limit_in_bytes", "-1")
        ])
    );

    let f = Fake::new(MOUNTS, &[("memory/memory.limit_in_bytes", "1")]);
    f.manager().apply(&r).unwrap();
    assert_eq!(f.writes(), w(&[("memory/memory.limit_in_bytes", "-1")]));
}

#[test]
fn swap_without_swap_accounting_fails_naming_the_file() {
    let f = Fake::new(
        MOUNTS,
        &[("memory/memory.limit_in_bytes", "9223372036854771712")],
    );
    let mem = LinuxMemoryBuilder::default()
        .limit(100)
        .swap(200)
        .build()
        .unwrap();
    let err = f
        .manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("memory.memsw.limit_in_bytes")
            && err.to_string().contains("\"200\""),
        "{err}"
    );
}

#[test]
fn kernel_memory_is_skipped_where_the_kernel_has_no_file() {
    let f = Fake::new(MOUNTS, &[("memory/memory.limit_in_bytes", "1")]);
    let mem = LinuxMemoryBuilder::default()
        .kernel(100)
        .kernel_tcp(100)
        .build()
        .unwrap();
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert!(f.writes().is_empty());
}

#[test]
fn swappiness_over_100_is_refused_naming_the_field() {
    let f = Fake::new(MOUNTS, MEMORY_FILES);
    let mem = LinuxMemoryBuilder::default()
        .swappiness(101u64)
        .build()
        .unwrap();
    let err = f
        .manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.memory.swappiness: invalid value 101"),
        "{err}"
    );
}

const CPU_FILES: &[(&str, &str)] = &[
    ("cpu/cpu.shares", ""),
    ("cpu/cpu.cfs_period_us", ""),
    ("cpu/cpu.cfs_quota_us", ""),
    ("cpu/cpu.cfs_burst_us", ""),
    ("cpu/cpu.idle", ""),
    ("cpu/cpu.rt_period_us", ""),
    ("cpu/cpu.rt_runtime_us", ""),
    ("cpuset/cpuset.cpus", ""),
    ("cpuset/cpuset.mems", ""),
];

#[test]
fn cpu_and_cpuset_settings_go_to_their_v1_files_in_runcs_order() {
    let f = Fake::new(MOUNTS, CPU_FILES);
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50000)
        .period(100000u64)
        .burst(1000u64)
        .idle(1)
        .realtime_runtime(950)
        .realtime_period(1000u64)
        .cpus("0-1")
        .mems("0")
        .build()
        .unwrap();
    f.manager()
        .apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpuset/cpuset.cpus", "0-1"),
            ("cpuset/cpuset.mems", "0"),
            ("cpu/cpu.shares", "512"),
            ("cpu/cpu.cfs_period_us", "100000"),
            ("cpu/cpu.cfs_burst_us", "1000"),
            ("cpu/cpu.cfs_quota_us", "50000"),
            ("cpu/cpu.idle", "1"),
            ("cpu/cpu.rt_period_us", "1000"),
            ("cpu/cpu.rt_runtime_us", "950"),
        ])
    );
    assert_eq!(f.read("cpu/cpu.cfs_quota_us"), "50000");
}

#[test]
fn pids_limit_negative_means_max() {
    let f = Fake::new(MOUNTS, &[("pids/pids.max", "")]);
    let m = f.manager();
    m.apply(
        &LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.read("pids/pids.max"), "10");
    m.apply(
        &LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.read("pids/pids.max"), "max");
}

fn block_io() -> oci_spec::runtime::LinuxBlockIo {
    let td = |major: i64, minor: i64, rate: u64| {
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(rate)
            .build()
            .unwrap()
    };
    LinuxBlockIoBuilder::default()
        .weight(500u16)
        .leaf_weight(300u16)
        .weight_device(vec![LinuxWeightDeviceBuilder::default()
            .major(8)
            .minor(0)
            .weight(600u16)
            .leaf_weight(200u16)
            .build()
            .unwrap()])
        .throttle_read_bps_device(vec![td(8, 0, 1048576), td(8, 16, 2048)])
        .throttle_write_bps_device(vec![td(8, 0, 4096)])
        .throttle_read_iops_device(vec![td(8, 0, 100)])
        .throttle_write_iops_device(vec![td(8, 0, 200)])
        .build()
        .unwrap()
}

#[test]
fn blkio_uses_cfq_files_when_present() {
    let files: Vec<(&str, &str)> = [
        "blkio/blkio.weight",
        "blkio/blkio.weight_device",
        "blkio/blkio.leaf_weight",
        "blkio/blkio.leaf_weight_device",
        "blkio/blkio.throttle.read_bps_device",
        "blkio/blkio.throttle.write_bps_device",
        "blkio/blkio.throttle.read_iops_device",
        "blkio/blkio.throttle.write_iops_device",
    ]
    .iter()
    .map(|f| (*f, ""))
    .collect();
    let f = Fake::new(MOUNTS, &files);
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .block_io(block_io())
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("blkio/blkio.weight", "500"),
            ("blkio/blkio.leaf_weight", "300"),
            ("blkio/blkio.weight_device", "8:0 600"),
            ("blkio/blkio.leaf_weight_device", "8:0 200"),
            ("blkio/blkio.throttle.read_bps_device", "8:0 1048576"),
            ("blkio/blkio.throttle.read_bps_device", "8:16 2048"),
            ("blkio/blkio.throttle.write_bps_device", "8:0 4096"),
            ("blkio/blkio.throttle.read_iops_device", "8:0 100"),
            ("blkio/blkio.throttle.write_iops_device", "8:0 200"),
        ])
    );
}

#[test]
fn blkio_weight_falls_back_to_bfq_and_a_missing_file_is_named() {
    let f = Fake::new(
        MOUNTS,
        &[
            ("blkio/blkio.bfq.weight", ""),
            ("blkio/blkio.bfq.weight_device", ""),
        ],
    );
    let b = LinuxBlockIoBuilder::default()
        .weight(500u16)
        .weight_device(vec![LinuxWeightDeviceBuilder::default()
            .major(8)
            .minor(0)
            .weight(600u16)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .block_io(b)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("blkio/blkio.bfq.weight", "500"),
            ("blkio/blkio.bfq.weight_device", "8:0 600")
        ])
    );

    let f = Fake::new(MOUNTS, &[]);
    let err = f
        .manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .block_io(block_io())
                .build()
                .unwrap(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("writing \"500\" to ") && msg.ends_with("blkio/husk/t/blkio.bfq.weight"),
        "{msg}"
    );
}

#[test]
fn hugetlb_network_and_rdma_go_to_their_files() {
    let f = Fake::new(
        &[MOUNTS, &[("net_cls,net_prio", "net_cls,net_prio")]].concat(),
        &[
            ("hugetlb/hugetlb.2MB.limit_in_bytes", ""),
            ("hugetlb/hugetlb.2MB.rsvd.limit_in_bytes", ""),
            ("hugetlb/hugetlb.1GB.limit_in_bytes", ""),
            ("hugetlb/hugetlb.1GB.rsvd.limit_in_bytes", ""),
            ("net_cls,net_prio/net_cls.classid", ""),
            ("net_cls,net_prio/net_prio.ifpriomap", ""),
            ("rdma/rdma.max", ""),
        ],
    );
    let hp = |size: &str, limit| {
        LinuxHugepageLimitBuilder::default()
            .page_size(size)
            .limit(limit)
            .build()
            .unwrap()
    };
    let prio = |name: &str, p: u32| {
        LinuxInterfacePriorityBuilder::default()
            .name(name)
            .priority(p)
            .build()
            .unwrap()
    };
    let mut rdma = std::collections::HashMap::new();
    rdma.insert(
        "mlx5_1".to_string(),
        LinuxRdmaBuilder::default()
            .hca_handles(3u32)
            .build()
            .unwrap(),
    );
    rdma.insert(
        "mlx4_0".to_string(),
        LinuxRdmaBuilder::default()
            .hca_handles(2u32)
            .hca_objects(100u32)
            .build()
            .unwrap(),
    );
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![hp("2MB", 2097152), hp("1GB", 1073741824)])
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x100001u32)
                .priorities(vec![prio("eth0", 5), prio("lo", 2)])
                .build()
                .unwrap(),
        )
        .rdma(rdma)
        .build()
        .unwrap();
    f.manager().apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("hugetlb/hugetlb.2MB.limit_in_bytes", "2097152"),
            ("hugetlb/hugetlb.2MB.rsvd.limit_in_bytes", "2097152"),
            ("hugetlb/hugetlb.1GB.limit_in_bytes", "1073741824"),
            ("hugetlb/hugetlb.1GB.rsvd.limit_in_bytes", "1073741824"),
            ("net_cls,net_prio/net_cls.classid", "1048577"),
            ("net_cls,net_prio/net_prio.ifpriomap", "eth0 5"),
            ("net_cls,net_prio/net_prio.ifpriomap", "lo 2"),
            ("rdma/rdma.max", "mlx4_0 hca_handle=2 hca_object=100"),
            ("rdma/rdma.max", "mlx5_1 hca_handle=3"),
        ])
    );
}

#[test]
fn a_limit_for_an_unmounted_controller_names_field_and_controller() {
    // Like this host: hugetlb exists only in the hybrid cgroup2, net_cls not at all.
    let f = Fake::new(MOUNTS, &[]);
    let r = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(1u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = f.manager().apply(&r).unwrap_err().to_string();
    assert!(err.starts_with("linux.resources.network.classID is set, but the net_cls cgroup controller is not mounted"), "{err}");
    let hp = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(1)
        .build()
        .unwrap();
    let f = Fake::new(&MOUNTS[..8], &[]);
    let err = f
        .manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .hugepage_limits(vec![hp])
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("hugepageLimits is set, but the hugetlb cgroup controller is not mounted"),
        "{err}"
    );
}

#[test]
fn unified_keys_are_refused_on_v1_before_anything_is_written() {
    let f = Fake::new(MOUNTS, &[("pids/pids.max", "")]);
    let mut u = std::collections::HashMap::new();
    u.insert("memory.high".to_string(), "1000".to_string());
    let r = LinuxResourcesBuilder::default()
        .unified(u)
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let err = f.manager().apply(&r).unwrap_err();
    assert!(matches!(err, CgroupError::UnifiedOnV1), "{err}");
    assert!(err.to_string().contains("linux.resources.unified"));
    assert!(f.writes().is_empty());
}

#[test]
fn devices_deny_all_then_allow_each_rule() {
    let f = Fake::new(
        MOUNTS,
        &[
            ("devices/devices.list", "a *:* rwm\n"),
            ("devices/devices.allow", ""),
            ("devices/devices.deny", ""),
        ],
    );
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()];
    rules.extend(default_device_rules());
    f.manager()
        .apply(
            &LinuxResourcesBuilder::default()
                .devices(rules)
                .build()
                .unwrap(),
        )
        .unwrap();
    let writes = f.writes();
    assert_eq!(
        writes[0],
        ("devices/devices.deny".to_string(), "a *:* rwm".to_string())
    );
    let allowed: Vec<&str> = writes[1..]
        .iter()
        .map(|(file, v)| {
            assert_eq!(file, "devices/devices.allow");
            v.as_str()
        })
        .collect();
    // In the spec's order (runc sorts them), so devices.list lists them in that order.
    assert_eq!(
        allowed,
        [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:8 rwm",
            "c 1:7 rwm",
            "c 5:0 rwm",
            "c 1:5 rwm",
            "c 1:9 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
            "c 10:200 rwm"
        ]
    );
}

#[test]
fn add_process_joins_every_hierarchy_including_name_systemd() {
    let f = Fake::with_empty_file_in_every_hierarchy("cgroup.procs");
    f.manager().add_process(4242).unwrap();
    let writes = f.writes();
    assert_eq!(writes.len(), MOUNTS.len());
    assert!(writes.iter().all(|(_, v)| v == "4242"));
    assert!(writes
        .iter()
        .any(|(file, _)| file == "systemd/cgroup.procs"));
    assert_eq!(f.read("memory/cgroup.procs"), "4242");
}

#[test]
fn self_join_writes_0_to_the_tasks_file_of_every_hierarchy_and_names_a_missing_one() {
    let f = Fake::with_empty_file_in_every_hierarchy("tasks");
    let join = f
        .manager()
        .self_join()
        .unwrap()
        .expect("v1 has a self-join");
    join.join().unwrap();
    for (h, _) in MOUNTS {
        assert_eq!(f.read(&format!("{h}/tasks")), "0", "{h}");
    }

    let f = Fake::new(MOUNTS, &[("memory/tasks", "")]);
    let err = f.manager().self_join().unwrap_err().to_string();
    assert!(
        err.contains("opening ") && err.contains("cpu/husk/t/tasks"),
        "{err}"
    );
}

#[test]
fn pids_lists_the_pids_hierarchy_recursively() {
    let f = Fake::new(
        MOUNTS,
        &[
            ("pids/cgroup.procs", "10\n12\n"),
            ("pids/sub/cgroup.procs", "11\n"),
            ("memory/cgroup.procs", "99\n"),
        ],
    );
    assert_eq!(f.manager().pids().unwrap(), [10, 11, 12]);
}

#[test]
fn destroy_removes_the_leaf_in_every_hierarchy_and_keeps_parents() {
    let f = Fake::new(MOUNTS, &[]);
    std::fs::create_dir(f.host.cgroup_root.join("memory/husk/t/nested")).unwrap();
    f.manager().destroy().unwrap();
    for (h, _) in MOUNTS {
        assert!(!f.host.cgroup_root.join(h).join("husk/t").exists(), "{h}");
        assert!(f.host.cgroup_root.join(h).join("husk").exists(), "{h}");
    }
    // Destroying again is fine: nothing is left to remove.
    f.manager().destroy().unwrap();
}

#[test]
fn create_makes_the_directory_in_hierarchies_without_cpuset() {
    let f = Fake::new(&[("memory", "memory"), ("systemd", "name=systemd")], &[]);
    let path = CgroupsPath {
        hierarchy: Hierarchy::V1,
        path: "/husk/new/deep".into(),
        v1_paths: BTreeMap::new(),
    };
    open(&f.host, &path).unwrap().create().unwrap();
    assert!(f.host.cgroup_root.join("memory/husk/new/deep").is_dir());
    assert!(f.host.cgroup_root.join("systemd/husk/new/deep").is_dir());
}

#[test]
fn per_hierarchy_paths_from_a_relative_cgroups_path_are_used() {
    let f = Fake::new(MOUNTS, &[]);
    let mut v1_paths = BTreeMap::new();
    v1_paths.insert("memory".to_string(), PathBuf::from("/other/t"));
    let path = CgroupsPath {
        hierarchy: Hierarchy::V1,
        path: "/husk/t".into(),
        v1_paths,
    };
    let ContainerCgroupMount::V1 { hierarchies } = open(&f.host, &path)
        .unwrap()
        .mounts_for_container()
        .unwrap()
    else {
        panic!("v1")
    };
    let memory = hierarchies.iter().find(|h| h.name == "memory").unwrap();
    assert_eq!(memory.host_dir, f.host.cgroup_root.join("memory/other/t"));
    let cpu = hierarchies.iter().find(|h| h.name == "cpu").unwrap();
    assert_eq!(cpu.host_dir, f.host.cgroup_root.join("cpu/husk/t"));
}

#[test]
fn container_cgroup_mount_lists_each_hierarchy_with_its_options() {
    let f = Fake::new(
        &[
            ("cpu,cpuacct", "cpu,cpuacct"),
            ("memory", "memory"),
            ("systemd", "xattr,name=systemd"),
        ],
        &[],
    );
    let m = f.manager().mounts_for_container().unwrap();
    let root = &f.host.cgroup_root;
    assert_eq!(
        m,
        ContainerCgroupMount::V1 {
            hierarchies: vec![
                V1Hierarchy {
                    name: "cpu,cpuacct".into(),
                    options: "cpu,cpuacct".into(),
                    host_dir: root.join("cpu,cpuacct/husk/t")
                },
                V1Hierarchy {
                    name: "memory".into(),
                    options: "memory".into(),
                    host_dir: root.join("memory/husk/t")
                },
                V1Hierarchy {
                    name: "systemd".into(),
                    options: "name=systemd".into(),
                    host_dir: root.join("systemd/husk/t")
                },
            ]
        }
    );
    assert_eq!(f.manager().clone_into_fd().unwrap().map(|_| ()), None);
}

#[test]
fn freeze_writes_freezer_state_and_reads_it_back() {
    let f = Fake::new(MOUNTS, &[("freezer/freezer.state", "THAWED\n")]);
    f.manager().freeze(FreezerState::Frozen).unwrap();
    assert_eq!(f.read("freezer/freezer.state"), "FROZEN");
    let f = Fake::new(&MOUNTS[..4], &[]);
    let err = f.manager().freeze(FreezerState::Frozen).unwrap_err();
    assert!(matches!(err, CgroupError::FreezerMissing { .. }), "{err}");
}

#[test]
fn stats_read_v1_counters_in_runcs_json_shape() {
    let f = Fake::new(
        MOUNTS,
        &[
            ("cpuacct/cpuacct.usage", "3000\n"),
            ("cpuacct/cpuacct.usage_percpu", "1000 2000 \n"),
            ("cpuacct/cpuacct.stat", "user 5\nsystem 7\n"),
            (
                "cpu/cpu.stat",
                "nr_periods 4\nnr_throttled 1\nthrottled_time 900\n",
            ),
            ("memory/memory.stat", "cache 4096\nrss 8192\n"),
            ("memory/memory.usage_in_bytes", "12288\n"),
            ("memory/memory.max_usage_in_bytes", "20480\n"),
            ("memory/memory.failcnt", "2\n"),
            ("memory/memory.limit_in_bytes", "104857600\n"),
            (
                "memory/memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            ("pids/pids.current", "2\n"),
            ("pids/pids.max", "max\n"),
            (
                "blkio/blkio.bfq.io_service_bytes_recursive",
                "254:0 Read 4096\n254:0 Write 0\nTotal 4096\n",
            ),
            (
                "blkio/blkio.bfq.io_serviced_recursive",
                "254:0 Read 1\n254:0 Write 0\nTotal 1\n",
            ),
        ],
    );
    let m = f.manager();
    let s = m.stats().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as u64;
    assert_eq!(s.cpu.usage.user, 5 * 1_000_000_000 / hz);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["cpu"]["usage"]["total"], 3000);
    assert_eq!(
        json["cpu"]["usage"]["percpu"],
        serde_json::json!([1000, 2000])
    );
    assert_eq!(
        json["cpu"]["throttling"],
        serde_json::json!({"periods": 4, "throttledPeriods": 1, "throttledTime": 900})
    );
    assert_eq!(
        json["memory"]["usage"],
        serde_json::json!({"limit": 104857600, "usage": 12288, "max": 20480, "failcnt": 2})
    );
    assert_eq!(json["memory"]["cache"], 4096);
    assert_eq!(json["memory"]["raw"]["rss"], 8192);
    assert_eq!(json["pids"], serde_json::json!({"current": 2}));
    assert_eq!(
        json["blkio"]["ioServiceBytesRecursive"][0],
        serde_json::json!({"major": 254, "op": "Read", "value": 4096})
    );
    assert_eq!(m.oom_kill_count().unwrap(), 3);
}

#[test]
fn a_host_without_v1_hierarchies_is_reported_with_the_file_read() {
    let f = Fake::new(&[], &[]);
    let path = CgroupsPath {
        hierarchy: Hierarchy::V1,
        path: "/husk/t".into(),
        v1_paths: BTreeMap::new(),
    };
    let err = open(&f.host, &path).unwrap_err().to_string();
    assert!(
        err.starts_with("no cgroup v1 hierarchy is mounted under")
            && err.contains("self/mountinfo"),
        "{err}"
    );
}

#[test]
fn a_failed_rmdir_names_the_directory() {
    // A plain file keeps the fake directory non-empty, as a live task keeps a real cgroup busy.
    let f = Fake::new(MOUNTS, &[("memory/stuck", "")]);
    let err = f.manager().destroy().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "removing cgroup directory {}",
            f.host.cgroup_root.join("memory/husk/t").display()
        )
    );
    // The other hierarchies were still cleaned up.
    assert!(!f.host.cgroup_root.join("pids/husk/t").exists());
}
