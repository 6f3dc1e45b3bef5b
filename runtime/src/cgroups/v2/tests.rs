//! v2 manager against a fake unified tree (plain files in a temp dir).

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxRdmaBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder,
};

use super::resources::{cpu_weight, io_weight, swap_max};
use super::*;
use crate::cgroups::fs::record;
use crate::cgroups::{detect, open, Hierarchy};

struct Fake {
    _tmp: tempfile::TempDir,
    host: Host,
}

impl Fake {
    /// A pure v2 host whose container cgroup `/husk/t` holds `files`.
    fn new(files: &[(&str, &str)]) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        std::fs::create_dir_all(root.join("husk/t")).unwrap();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        for (file, content) in files {
            let path = root.join("husk/t").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Fake {
            host: Host {
                cgroup_root: root,
                proc_root: tmp.path().join("proc"),
            },
            _tmp: tmp,
        }
    }

    fn manager(&self) -> Box<dyn Manager> {
        open(
            &self.host,
            &CgroupsPath {
                hierarchy: Hierarchy::V2,
                path: "/husk/t".into(),
                v1_paths: BTreeMap::new(),
            },
        )
        .unwrap()
    }

    fn writes(&self) -> Vec<(String, String)> {
        record::take(&self.host.cgroup_root.join("husk/t"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.host.cgroup_root.join("husk/t").join(file)).unwrap()
    }
}

fn w(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn detect_sees_v2_by_the_root_cgroup_controllers_file() {
    let f = Fake::new(&[]);
    assert_eq!(detect(&f.host).unwrap(), Hierarchy::V2);
    std::fs::remove_file(f.host.cgroup_root.join("cgroup.controllers")).unwrap();
    assert_eq!(detect(&f.host).unwrap(), Hierarchy::V1);
}

#[test]
fn conversions_match_runcs_formulas() {
    assert_eq!(cpu_weight(0), 0);
    assert_eq!(cpu_weight(2), 1);
    assert_eq!(cpu_weight(1024), 39);
    assert_eq!(cpu_weight(262144), 10000);
    assert_eq!(io_weight(0), 0);
    assert_eq!(io_weight(10), 1);
    assert_eq!(io_weight(500), 4950);
    assert_eq!(io_weight(1000), 10000);
    assert_eq!(swap_max(300, 100).unwrap(), 200);
    assert_eq!(swap_max(0, -1).unwrap(), -1);
    assert_eq!(swap_max(-1, 100).unwrap(), -1);
    assert_eq!(swap_max(0, 100).unwrap(), 0);
    assert!(swap_max(50, 100)
        .unwrap_err()
        .to_string()
        .contains("memory+swap limit should be >= memory limit"));
    assert!(swap_max(50, 0)
        .unwrap_err()
        .to_string()
        .contains("without memory limit"));
}

#[test]
fn memory_swap_becomes_swap_only_and_is_written_first() {
    let f = Fake::new(&[
        ("memory.swap.max", ""),
        ("memory.max", ""),
        ("memory.low", ""),
    ]);
    let mem = LinuxMemoryBuilder::default()
        .limit(104857600)
        .swap(314572800)
        .reservation(1048576)
        .swappiness(10u64)
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
            ("memory.swap.max", "209715200"),
            ("memory.max", "104857600"),
            ("memory.low", "1048576")
        ])
    );
    assert_eq!(f.read("memory.swap.max"), "209715200");
}

#[test]
fn equal_memory_and_swap_disable_swap_and_unlimited_memory_unlimits_swap() {
    let f = Fake::new(&[("memory.swap.max", ""), ("memory.max", "")]);
    let m = f.manager();
    m.apply(
        &LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(100)
                    .swap(100)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        f.writes(),
        w(&[("memory.swap.max", "0"), ("memory.max", "100")])
    );
    m.apply(
        &LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        f.writes(),
        w(&[("memory.swap.max", "max"), ("memory.max", "max")])
    );
}

#[test]
fn missing_swap_file_is_ignored_only_for_max_or_zero() {
    let f = Fake::new(&[("memory.max", "")]);
    let m = f.manager();
    m.apply(
        &LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.read("memory.max"), "max");
    let err = m
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(100)
                        .swap(300)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("writing \"200\" to ") && err.ends_with("memory.swap.max"),
        "{err}"
    );
}

#[test]
fn check_before_update_rejects_a_limit_below_usage() {
    let f = Fake::new(&[("memory.current", "5000\n"), ("memory.max", "")]);
    let mem = LinuxMemoryBuilder::default()
        .limit(4096)
        .check_before_update(true)
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
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rejecting memory limit 4096 <= usage 5000"),
        "{err}"
    );
}

#[test]
fn cpu_settings_become_idle_weight_burst_and_cpu_max() {
    let f = Fake::new(&[
        ("cpu.idle", ""),
        ("cpu.weight", ""),
        ("cpu.max.burst", ""),
        ("cpu.max", ""),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
    ]);
    let m = f.manager();
    let cpu = LinuxCpuBuilder::default()
        .shares(1024u64)
        .quota(50000)
        .period(200000u64)
        .burst(1000u64)
        .idle(0)
        .cpus("1")
        .mems("0")
        .build()
        .unwrap();
    m.apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpu.idle", "0"),
            ("cpu.weight", "39"),
            ("cpu.max.burst", "1000"),
            ("cpu.max", "50000 200000"),
            ("cpuset.cpus", "1"),
            ("cpuset.mems", "0"),
        ])
    );
    m.apply(
        &LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().quota(20000).build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.read("cpu.max"), "20000 100000");
    m.apply(
        &LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .period(250000u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.read("cpu.max"), "max 250000");
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
            .build()
            .unwrap()])
        .throttle_read_bps_device(vec![td(8, 0, 1048576)])
        .throttle_write_bps_device(vec![td(8, 0, 4096)])
        .throttle_read_iops_device(vec![td(8, 0, 100)])
        .throttle_write_iops_device(vec![td(8, 16, 200)])
        .build()
        .unwrap()
}

#[test]
fn blkio_without_bfq_uses_converted_io_weight_and_io_max_lines() {
    let f = Fake::new(&[("io.weight", ""), ("io.max", "")]);
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
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:0 wbps=4096"),
            ("io.max", "8:0 riops=100"),
            ("io.max", "8:16 wiops=200"),
        ])
    );
}

#[test]
fn blkio_with_bfq_writes_the_v1_weight_and_device_weights() {
    let f = Fake::new(&[("io.bfq.weight", "default 100\n"), ("io.max", "")]);
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
    // The fake file now holds "500" (a plain number), so pre-write the per-device format back.
    let m = f.manager();
    m.apply(
        &LinuxResourcesBuilder::default()
            .block_io(b.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.writes(), w(&[("io.bfq.weight", "500")]));
    std::fs::write(
        f.host.cgroup_root.join("husk/t/io.bfq.weight"),
        "default 500\n",
    )
    .unwrap();
    let b = LinuxBlockIoBuilder::default()
        .weight_device(vec![LinuxWeightDeviceBuilder::default()
            .major(8)
            .minor(0)
            .weight(600u16)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    m.apply(
        &LinuxResourcesBuilder::default()
            .block_io(b)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.writes(), w(&[("io.bfq.weight", "8:0 600")]));
}

#[test]
fn pids_hugetlb_rdma_and_unified_go_to_their_files() {
    let f = Fake::new(&[
        ("pids.max", ""),
        ("hugetlb.2MB.max", ""),
        ("hugetlb.2MB.rsvd.max", ""),
        ("rdma.max", ""),
        ("memory.high", ""),
        ("io.max", ""),
        ("cgroup.controllers", "cpu io memory pids\n"),
    ]);
    let mut unified = HashMap::new();
    unified.insert("memory.high".to_string(), "1048576".to_string());
    unified.insert(
        "io.max".to_string(),
        "8:0 rbps=1\n8:16 wbps=2\n".to_string(),
    );
    let mut rdma = HashMap::new();
    rdma.insert(
        "mlx4_0".to_string(),
        LinuxRdmaBuilder::default()
            .hca_objects(7u32)
            .build()
            .unwrap(),
    );
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4194304)
            .build()
            .unwrap()])
        .rdma(rdma)
        .unified(unified)
        .build()
        .unwrap();
    f.manager().apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("pids.max", "max"),
            ("hugetlb.2MB.max", "4194304"),
            ("hugetlb.2MB.rsvd.max", "4194304"),
            ("rdma.max", "mlx4_0 hca_object=7"),
            ("io.max", "8:0 rbps=1"),
            ("io.max", "8:16 wbps=2"),
            ("memory.high", "1048576"),
        ])
    );
}

#[test]
fn unified_errors_name_the_key_and_the_missing_controller() {
    let f = Fake::new(&[("cgroup.controllers", "cpu memory\n")]);
    let r = |k: &str| {
        let mut u = HashMap::new();
        u.insert(k.to_string(), "1".to_string());
        LinuxResourcesBuilder::default().unified(u).build().unwrap()
    };
    let err = f.manager().apply(&r("../escape")).unwrap_err().to_string();
    assert!(
        err.contains("linux.resources.unified[\"../escape\"]: must be a file name"),
        "{err}"
    );
    let err = f
        .manager()
        .apply(&r("hugetlb.2MB.max"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("controller \"hugetlb\" not available"),
        "{err}"
    );
    let err = f
        .manager()
        .apply(&r("memory.nonexistent"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("writing \"1\" to ") && err.ends_with("memory.nonexistent"),
        "{err}"
    );
}

#[test]
fn create_enables_controllers_top_down_and_makes_the_directories() {
    let f = Fake::new(&[]);
    let m = open(
        &f.host,
        &CgroupsPath {
            hierarchy: Hierarchy::V2,
            path: "/husk/new/c".into(),
            v1_paths: BTreeMap::new(),
        },
    )
    .unwrap();
    m.create().unwrap();
    assert!(f.host.cgroup_root.join("husk/new/c").is_dir());
    let root_writes: Vec<(String, String)> = record::take(&f.host.cgroup_root)
        .into_iter()
        .filter(|(p, _)| p == "cgroup.subtree_control")
        .collect();
    assert_eq!(
        root_writes,
        w(&[("cgroup.subtree_control", "+cpuset +cpu +io +memory +pids")])
    );
    assert_eq!(
        std::fs::read_to_string(f.host.cgroup_root.join("cgroup.subtree_control")).unwrap(),
        "+cpuset +cpu +io +memory +pids"
    );
}

#[test]
fn clone_into_fd_is_a_descriptor_of_the_leaf_directory() {
    let f = Fake::new(&[]);
    let fd = f
        .manager()
        .clone_into_fd()
        .unwrap()
        .expect("v2 gives a directory fd");
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert_eq!(link, f.host.cgroup_root.join("husk/t"));
}

#[test]
fn freeze_waits_for_cgroup_events() {
    let f = Fake::new(&[
        ("cgroup.freeze", "0\n"),
        ("cgroup.events", "populated 1\nfrozen 1\n"),
    ]);
    f.manager().freeze(FreezerState::Frozen).unwrap();
    assert_eq!(f.read("cgroup.freeze"), "1");
    let f = Fake::new(&[]);
    assert!(matches!(
        f.manager().freeze(FreezerState::Frozen).unwrap_err(),
        CgroupError::FreezerMissing { .. }
    ));
}

#[test]
fn pids_destroy_and_container_mount() {
    let f = Fake::new(&[("cgroup.procs", "7\n3\n"), ("sub/cgroup.procs", "5\n")]);
    let m = f.manager();
    assert_eq!(m.pids().unwrap(), [3, 5, 7]);
    assert_eq!(
        m.mounts_for_container().unwrap(),
        ContainerCgroupMount::V2 {
            host_dir: f.host.cgroup_root.join("husk/t")
        }
    );
    m.add_process(77).unwrap();
    assert_eq!(f.read("cgroup.procs"), "77");
    let f = Fake::new(&[]);
    std::fs::create_dir(f.host.cgroup_root.join("husk/t/child")).unwrap();
    f.manager().destroy().unwrap();
    assert!(!f.host.cgroup_root.join("husk/t").exists());
    assert!(f.host.cgroup_root.join("husk").exists());
}

#[test]
fn stats_convert_v2_counters_to_runcs_v1_shape() {
    let f = Fake::new(&[
        ("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 2\nthrottled_usec 5\n"),
        ("memory.stat", "anon 100\nfile 200\n"),
        ("memory.current", "300\n"),
        ("memory.max", "1000\n"),
        ("memory.peak", "400\n"),
        ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
        ("memory.swap.current", "50\n"),
        ("memory.swap.max", "max\n"),
        ("pids.current", "4\n"),
        ("pids.max", "64\n"),
        ("io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
        ("hugetlb.2MB.max", "max\n"),
        ("hugetlb.2MB.current", "0\n"),
        ("hugetlb.2MB.events", "max 1\n"),
    ]);
    let m = f.manager();
    let json = serde_json::to_value(m.stats().unwrap()).unwrap();
    assert_eq!(
        json["cpu"]["usage"],
        serde_json::json!({"total": 10000, "kernel": 4000, "user": 6000})
    );
    assert_eq!(json["cpu"]["throttling"]["throttledTime"], 5000);
    assert_eq!(
        json["memory"]["usage"],
        serde_json::json!({"limit": 1000, "usage": 300, "max": 400, "failcnt": 2})
    );
    assert_eq!(json["memory"]["swap"]["usage"], 350);
    assert_eq!(json["memory"]["swap"]["limit"], u64::MAX);
    assert_eq!(json["memory"]["cache"], 200);
    assert_eq!(json["pids"], serde_json::json!({"current": 4, "limit": 64}));
    assert_eq!(
        json["blkio"]["ioServicedRecursive"][1],
        serde_json::json!({"major": 254, "op": "Write", "value": 2})
    );
    assert_eq!(json["hugetlb"]["2MB"], serde_json::json!({"failcnt": 1}));
    assert_eq!(m.oom_kill_count().unwrap(), 1);
}
