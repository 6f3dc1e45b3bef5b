//! cgroup v1: one directory per mounted hierarchy (cpu,cpuacct / memory / pids / ... /
//! name=systemd), each controller configured through its own files, like runc's `fs` manager.

mod blkio;
mod cpu;
mod memory;
mod misc;
mod stats;

pub(crate) use misc::rdma_line;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::fs;
use super::path::{dir_in_mount, v1_mounts, V1Mount};
use super::{
    CgroupError, CgroupsPath, ContainerCgroupMount, FreezerState, Host, Manager, SelfJoin, Stats,
    V1Hierarchy,
};

#[derive(Debug)]
struct Joined {
    mount: V1Mount,
    /// The container's cgroup directory in this hierarchy.
    dir: PathBuf,
}

#[derive(Debug)]
pub(crate) struct V1Manager {
    path: CgroupsPath,
    root: PathBuf,
    joined: Vec<Joined>,
}

impl V1Manager {
    pub(crate) fn new(host: &Host, path: &CgroupsPath) -> Result<Self, CgroupError> {
        let mounts = v1_mounts(host)?;
        if mounts.is_empty() {
            return Err(CgroupError::NoHierarchies {
                root: host.cgroup_root.clone(),
                mountinfo: host.proc_root.join("self/mountinfo"),
            });
        }
        let joined = mounts
            .into_iter()
            .map(|mount| {
                let cgroup = path.v1_paths.get(&mount.key).unwrap_or(&path.path);
                let dir = dir_in_mount(&mount.mountpoint, &mount.root, cgroup);
                Joined { mount, dir }
            })
            .collect();
        Ok(V1Manager {
            path: path.clone(),
            root: host.cgroup_root.clone(),
            joined,
        })
    }

    /// The container's directory in the hierarchy carrying `controller`, if mounted.
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.joined
            .iter()
            .find(|j| j.mount.controllers.iter().any(|c| c == controller))
            .map(|j| j.dir.as_path())
    }

    /// Like [`dir`], but a setting that needs the controller fails when it is not mounted
    /// (runc: "cannot set <controller> limit: container could not join or create cgroup").
    fn need(&self, controller: &'static str, field: &'static str) -> Result<&Path, CgroupError> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::ControllerMissing {
                field,
                controller,
                root: self.root.clone(),
            })
    }

    /// The hierarchy whose `cgroup.procs` tree lists every process of the container.
    fn procs_dir(&self) -> &Path {
        self.dir("pids")
            .or_else(|| self.dir("devices"))
            .unwrap_or(self.joined[0].dir.as_path())
    }
}

/// Creates `dir` below the cpuset mount, giving every new level the parent's `cpuset.cpus`
/// and `cpuset.mems` when empty: the kernel refuses tasks in a cpuset without cpus or mems.
fn create_cpuset(mountpoint: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(mountpoint).unwrap_or(Path::new(""));
    let mut current = mountpoint.to_path_buf();
    for part in rel.components() {
        let parent = current.clone();
        current.push(part);
        mkdir(&current)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(&current, file)?.trim().is_empty() {
                let value = fs::read(&parent, file)?;
                fs::write(&current, file, value.trim())?;
            }
        }
    }
    Ok(())
}

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Mkdir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

impl Manager for V1Manager {
    fn path(&self) -> &CgroupsPath {
        &self.path
    }

    fn create(&self) -> Result<(), CgroupError> {
        for j in &self.joined {
            if j.mount.controllers.iter().any(|c| c == "cpuset") {
                create_cpuset(&j.mount.mountpoint, &j.dir)?;
            } else {
                std::fs::create_dir_all(&j.dir).map_err(|source| CgroupError::Mkdir {
                    path: j.dir.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Writes `linux.resources` in runc's subsystem order: cpuset, devices, memory, cpu, pids,
    /// blkio, hugetlb, net_cls, net_prio, rdma.
    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::UnifiedOnV1);
        }
        if let Some(c) = r.cpu() {
            cpu::apply_cpuset(self, c)?;
        }
        if let Some(d) = r.devices() {
            misc::apply_devices(self, d)?;
        }
        if let Some(m) = r.memory() {
            memory::apply(self, m)?;
        }
        if let Some(c) = r.cpu() {
            cpu::apply_cpu(self, c)?;
        }
        if let Some(p) = r.pids() {
            misc::apply_pids(self, p)?;
        }
        if let Some(b) = r.block_io() {
            blkio::apply(self, b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            misc::apply_hugetlb(self, h)?;
        }
        if let Some(n) = r.network() {
            misc::apply_network(self, n)?;
        }
        if let Some(rdma) = r.rdma() {
            misc::apply_rdma(self, rdma)?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for j in &self.joined {
            fs::write_procs(&j.dir, pid)?;
        }
        Ok(())
    }

    fn clone_into_fd(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        Ok(None)
    }

    fn self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        let files = self
            .joined
            .iter()
            .map(|j| Ok((j.dir.join("tasks"), fs::open_for_write(&j.dir, "tasks")?)))
            .collect::<Result<_, CgroupError>>()?;
        Ok(Some(SelfJoin { files }))
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::all_pids(self.procs_dir())
    }

    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError> {
        let dir = self
            .dir("freezer")
            .ok_or_else(|| CgroupError::FreezerMissing {
                path: self.path.path.clone(),
            })?;
        misc::freeze(dir, state)
    }

    /// FROZEN or FREEZING both count: a container on its way to paused is not running.
    fn is_frozen(&self) -> Result<bool, CgroupError> {
        let Some(dir) = self.dir("freezer") else {
            return Ok(false);
        };
        Ok(fs::read_optional(dir, "freezer.state")?.is_some_and(|s| s.trim() != "THAWED"))
    }

    /// Removes the container's directory (and any cgroups below it) in every hierarchy; like
    /// runc, parents are left alone. Tries every hierarchy and reports the first failure.
    fn destroy(&self) -> Result<(), CgroupError> {
        let mut first = None;
        for j in &self.joined {
            if let Err(e) = fs::remove_cgroup(&j.dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn mounts_for_container(&self) -> Result<ContainerCgroupMount, CgroupError> {
        let hierarchies = self
            .joined
            .iter()
            .map(|j| V1Hierarchy {
                name: j
                    .mount
                    .mountpoint
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                options: j.mount.key.clone(),
                host_dir: j.dir.clone(),
            })
            .collect();
        Ok(ContainerCgroupMount::V1 { hierarchies })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        stats::read(self)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match self.dir("memory") {
            Some(dir) => Ok(fs::read_key(dir, "memory.oom_control", "oom_kill")?.unwrap_or(0)),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests;
