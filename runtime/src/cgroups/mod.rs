//! Control groups: one interface over the v1 (incl. hybrid) and v2 hierarchies.
//!
//! Drives the kernel's cgroupfs the way runc's `cgroupfs` driver does (no systemd): directories
//! are created under every mounted hierarchy (v1) or in the unified tree (v2), `linux.resources`
//! is written to the controller files, processes are moved in through `cgroup.procs` (v1: a new
//! child moves itself through `tasks`, see [`SelfJoin`]), and the
//! device allow-list is enforced with `devices.allow`/`devices.deny` (v1) or an eBPF program
//! attached to the cgroup directory (v2).
//!
//! INTERFACE CONTRACT (used by `container.rs`, `init.rs`, `rootfs/`; keep these signatures):
//!
//! * [`CgroupsPath::resolve`] turns the spec's `linux.cgroupsPath` (absolute, relative to the
//!   caller's own cgroup, or absent → `/husk/<id>`) into a [`CgroupsPath`] that is stored in the
//!   container's state file and is enough to reopen the cgroup later (kill --all, delete, ps...).
//! * [`open`] returns a `Box<dyn Manager>` for the detected host hierarchy.
//! * `Manager::create` makes the directories; `apply` writes `linux.resources`;
//!   `add_process` moves a pid in; `clone_into_fd` gives a v2 dir fd for
//!   `clone3(CLONE_INTO_CGROUP)` (None on v1); `self_join` gives the v1 `tasks` files through
//!   which a new single-threaded child moves itself in (None on v2), see [`SelfJoin`];
//!   `pids` lists every pid; `destroy` removes the directories (after the caller killed
//!   everything); `freeze`/`thaw` for pause/resume;
//!   `mounts_for_container` says what a `type: cgroup` mount inside the container must show;
//!   `stats`/`oom_kill_count` read usage counters for `events`.
//!
//! Call order for a new container: `create`, `apply`, then `add_process` or the child's
//! `SelfJoin::join` (like runc, cpuset cpus/mems and realtime budgets must be in place before a
//! task can join on v1).
//!
//! Hybrid hosts (v1 controllers plus an empty cgroup2 at `<root>/unified`) are driven as V1.
//! Like runc's cgroupfs driver (only its systemd driver also joins `unified`), husk does NOT
//! mirror the container into `unified`: enabling hugetlb there would mean writing the host
//! root's `cgroup.subtree_control`, a global change. Hugepage limits on a host where hugetlb
//! is only available in `unified` therefore fail with [`CgroupError::ControllerMissing`].
//!
//! The sysfs root (`/sys/fs/cgroup`) and procfs root are passed in (see [`Host`]) so that unit
//! tests run against temp dirs.

mod devicefilter;
mod devices;
mod fs;
mod path;
mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use devicefilter::{device_filter_program, Insn};
pub use devices::default_device_rules;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

/// Where the kernel's cgroup and proc filesystems are; `Host::system()` in production.
#[derive(Debug, Clone)]
pub struct Host {
    pub cgroup_root: PathBuf,
    pub proc_root: PathBuf,
}

impl Host {
    pub fn system() -> Self {
        Host {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// Which hierarchy the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// v1 controllers mounted under the root (a hybrid host's empty cgroup2 at `unified` too).
    V1,
    /// A pure cgroup2 at the root.
    V2,
}

/// The container's cgroup, resolved to an absolute cgroup path; serialisable into state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupsPath {
    pub hierarchy: Hierarchy,
    /// Absolute path inside the hierarchy, e.g. `/husk-test/abc`. On v1 this is the path in
    /// every hierarchy not listed in `v1_paths`.
    pub path: PathBuf,
    /// v1 only: hierarchies (keyed like the second field of `/proc/self/cgroup`, e.g.
    /// `"cpu,cpuacct"`, `"memory"`, `"name=systemd"`) where the container's cgroup is not
    /// `path`. This happens when a relative `linux.cgroupsPath` was resolved against a caller
    /// that sits in different cgroups in different hierarchies (runc resolves per controller).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1_paths: BTreeMap<String, PathBuf>,
}

/// Freezer state for pause/resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Frozen,
    Thawed,
}

/// What the container's own `type: cgroup` mount should present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCgroupMount {
    /// Pure v2: mount a cgroup2 filesystem (with a cgroup ns) or bind `host_dir`.
    V2 { host_dir: PathBuf },
    /// v1: a tmpfs with one entry per mounted hierarchy (`name` e.g. "cpu,cpuacct" or "memory",
    /// `options` the mount options, e.g. "memory" or "name=systemd"), each either a fresh
    /// cgroup mount (with cgroup ns) or a bind of `host_dir`.
    V1 { hierarchies: Vec<V1Hierarchy> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Directory name of the hierarchy under the cgroup root (e.g. "cpu,cpuacct", "systemd").
    pub name: String,
    /// The hierarchy's controllers as mount options (e.g. "cpu,cpuacct", "name=systemd").
    pub options: String,
    /// The container's cgroup directory in this hierarchy on the host.
    pub host_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating cgroup directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing cgroup directory {path}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening {path} for writing")]
    OpenForWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening cgroup directory {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("linux.cgroupsPath {path:?} names {what}")]
    PathIsParent { path: PathBuf, what: &'static str },
    #[error("container id {id:?} cannot name a cgroup (empty, '.', '..' or containing '/')")]
    InvalidId { id: String },
    #[error("linux.cgroupsPath {path:?}: '..' escapes {base}")]
    PathEscapes { path: PathBuf, base: String },
    #[error("linux.cgroupsPath {path:?} is relative, but {file} names no cgroup of ours for the {hierarchy} hierarchy")]
    OwnCgroupUnknown {
        path: PathBuf,
        file: PathBuf,
        hierarchy: String,
    },
    #[error("no cgroup v1 hierarchy is mounted under {root} (according to {mountinfo})")]
    NoHierarchies { root: PathBuf, mountinfo: PathBuf },
    #[error("{field} is set, but the {controller} cgroup controller is not mounted under {root}")]
    ControllerMissing {
        field: &'static str,
        controller: &'static str,
        root: PathBuf,
    },
    #[error("linux.resources.unified is set, but this host runs cgroup v1 (unified keys need cgroup v2)")]
    UnifiedOnV1,
    #[error("{field}: {reason}")]
    InvalidResource { field: String, reason: String },
    #[error("cannot set {path} to {limit}: the cgroup already uses {usage} bytes (peak {peak})")]
    MemoryBelowUsage {
        path: PathBuf,
        limit: i64,
        usage: u64,
        peak: u64,
    },
    #[error("{path} does not match linux.resources.devices after writing the rules")]
    DevicesMismatch { path: PathBuf },
    #[error("{path} did not reach {wanted} (last read {last:?})")]
    FreezeTimeout {
        path: PathBuf,
        wanted: &'static str,
        last: String,
    },
    #[error("pausing needs the freezer, which is not available for {path}")]
    FreezerMissing { path: PathBuf },
    #[error("{step} for cgroup {path}")]
    Bpf {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: crate::sys::bpf::BpfError,
    },
}

pub trait Manager: std::fmt::Debug {
    fn path(&self) -> &CgroupsPath;
    fn create(&self) -> Result<(), CgroupError>;
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    fn add_process(&self, pid: i32) -> Result<(), CgroupError>;
    fn clone_into_fd(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError>;
    fn self_join(&self) -> Result<Option<SelfJoin>, CgroupError>;
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError>;
    fn is_frozen(&self) -> Result<bool, CgroupError>;
    fn destroy(&self) -> Result<(), CgroupError>;
    fn mounts_for_container(&self) -> Result<ContainerCgroupMount, CgroupError>;
    /// Usage counters, shaped like the `data` object of `runc events --stats`.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// How many times the kernel's OOM killer killed a task of this cgroup.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
}

/// v1: the container's `tasks` file in every hierarchy, opened for writing by the parent, so
/// that a freshly cloned child moves *itself* in by writing "0" (the calling thread).
///
/// Why not the parent writing the child's pid to `cgroup.procs`, as runc does: migrating a
/// whole thread group takes the global `cgroup_threadgroup_rwsem` for writing, whose first
/// writer after a quiet spell waits for an RCU grace period (`rcu_sync_enter`): 4–16 ms here,
/// measured, the largest single cost of a `create` or `exec`. The kernel skips that lock when
/// a single thread moves itself (`cgroup_procs_write_start` with pid 0 and no threadgroup):
/// 0.04 ms here. Kernels without that shortcut take the lock as before, so nothing is lost.
/// For a single-threaded process, which every child husk clones or forks is, moving its one
/// thread moves the process (and v1 cpuset/memory treat it as the thread-group leader it is).
#[derive(Debug)]
pub struct SelfJoin {
    files: Vec<(PathBuf, std::os::fd::OwnedFd)>,
}

impl SelfJoin {
    /// Called by the child, single-threaded, before anything it does must be accounted to or
    /// confined by the container's cgroup.
    pub fn join(&self) -> Result<(), CgroupError> {
        for (path, fd) in &self.files {
            nix::unistd::write(fd, b"0").map_err(|errno| CgroupError::Write {
                path: path.clone(),
                value: "0".to_string(),
                source: errno.into(),
            })?;
        }
        Ok(())
    }
}

impl CgroupsPath {
    pub fn resolve(host: &Host, spec_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        path::resolve(host, detect(host)?, spec_path, id)
    }
}

pub fn detect(host: &Host) -> Result<Hierarchy, CgroupError> {
    if host.cgroup_root.join("cgroup.controllers").exists() {
        Ok(Hierarchy::V2)
    } else {
        Ok(Hierarchy::V1)
    }
}

pub fn open(host: &Host, path: &CgroupsPath) -> Result<Box<dyn Manager>, CgroupError> {
    match path.hierarchy {
        Hierarchy::V1 => Ok(Box::new(v1::V1Manager::new(host, path)?)),
        Hierarchy::V2 => Ok(Box::new(v2::V2Manager::new(host, path))),
    }
}
