//! cgroup v2: one directory in the unified hierarchy, controllers enabled top-down through
//! `cgroup.subtree_control`, v1-style values converted like runc's `fs2` manager.

mod devices;
mod resources;
mod stats;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::fs;
use super::{
    CgroupError, CgroupsPath, ContainerCgroupMount, FreezerState, Host, Manager, SelfJoin, Stats,
};

#[derive(Debug)]
pub(crate) struct V2Manager {
    path: CgroupsPath,
    root: PathBuf,
    dir: PathBuf,
}

impl V2Manager {
    pub(crate) fn new(host: &Host, path: &CgroupsPath) -> Self {
        let rel = path.path.strip_prefix("/").unwrap_or(&path.path);
        V2Manager {
            path: path.clone(),
            root: host.cgroup_root.clone(),
            dir: host.cgroup_root.join(rel),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Manager for V2Manager {
    fn path(&self) -> &CgroupsPath {
        &self.path
    }

    /// Creates each level below the root, enabling every controller the root offers in the
    /// `cgroup.subtree_control` of each ancestor (runc's `CreateCgroupPath`). Controllers the
    /// kernel refuses to enable are left off here; setting one of their limits fails later
    /// with the file's name.
    fn create(&self) -> Result<(), CgroupError> {
        let available = fs::read_optional(&self.root, "cgroup.controllers")?.unwrap_or_default();
        let controllers: Vec<String> = available
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        let all = controllers.join(" ");
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut current = self.root.clone();
        for part in rel.components() {
            if !controllers.is_empty()
                && fs::try_write(&current, "cgroup.subtree_control", &all).is_err()
            {
                for c in &controllers {
                    let _ = fs::try_write(&current, "cgroup.subtree_control", c);
                }
            }
            current.push(part);
            match std::fs::create_dir(&current) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(CgroupError::Mkdir {
                        path: current,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        resources::apply(self, r)
    }

    fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        fs::write_procs(&self.dir, pid)
    }

    /// An `O_PATH` descriptor of the container's cgroup, for `clone3(CLONE_INTO_CGROUP)`.
    fn clone_into_fd(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.dir)
            .map_err(|source| CgroupError::Open {
                path: self.dir.clone(),
                source,
            })?;
        Ok(Some(file.into()))
    }

    /// v2 has no per-thread migration outside threaded subtrees: `cgroup.procs` it is (or
    /// `CLONE_INTO_CGROUP`, which needs no migration at all).
    fn self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        Ok(None)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::all_pids(&self.dir)
    }

    /// Writes `cgroup.freeze` and waits until `cgroup.events` reports the new state.
    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(fs::read_optional(&self.dir, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1"))
    }

    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError> {
        if !fs::exists(&self.dir, "cgroup.freeze") {
            return Err(CgroupError::FreezerMissing {
                path: self.dir.clone(),
            });
        }
        let (value, wanted) = match state {
            FreezerState::Frozen => ("1", "frozen 1"),
            FreezerState::Thawed => ("0", "frozen 0"),
        };
        fs::write(&self.dir, "cgroup.freeze", value)?;
        let mut last = String::new();
        for _ in 0..1000 {
            let events = match fs::read_optional(&self.dir, "cgroup.events")? {
                Some(e) => e,
                None => return Ok(()),
            };
            last = events
                .lines()
                .find(|l| l.starts_with("frozen "))
                .unwrap_or_default()
                .to_string();
            if last == wanted {
                return Ok(());
            }
            sleep(Duration::from_millis(10));
        }
        Err(CgroupError::FreezeTimeout {
            path: self.dir.join("cgroup.events"),
            wanted,
            last,
        })
    }

    /// Removes the container's cgroup (and any below it); parents are left, like runc.
    fn destroy(&self) -> Result<(), CgroupError> {
        fs::remove_cgroup(&self.dir)
    }

    fn mounts_for_container(&self) -> Result<ContainerCgroupMount, CgroupError> {
        Ok(ContainerCgroupMount::V2 {
            host_dir: self.dir.clone(),
        })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        stats::read(&self.dir)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        if !fs::exists(&self.dir, "memory.events") {
            return Ok(0);
        }
        Ok(fs::read_key(&self.dir, "memory.events", "oom_kill")?.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests;
