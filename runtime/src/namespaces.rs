//! Linux namespaces: which to create (clone flags), which to join (`setns` on a `path`), and the
//! user namespace's id maps.
//!
//! New namespaces come from the `clone3` flags of the init. Namespaces joined by path are
//! entered by an intermediate process *before* it clones the init (user namespace first, as the
//! kernel requires), exactly as runc's nsexec orders it; the intermediate is only used when a
//! path is given, so the common all-new case costs one clone. A new cgroup namespace is
//! unshared by the init itself once it is in its cgroup, so that the
//! namespace's root is the container's cgroup.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};

use crate::spec::Bundle;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("open {typ} namespace {path:?}")]
    Open {
        typ: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("setns into {typ} namespace {path:?}")]
    Join {
        typ: String,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("unshare({what})")]
    Unshare {
        what: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("write {path:?} ({content:?})")]
    WriteMap {
        path: PathBuf,
        content: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sethostname({0:?})")]
    Hostname(String, #[source] nix::errno::Errno),
    #[error("setdomainname({0:?})")]
    Domainname(String, #[source] nix::errno::Errno),
    #[error("linux.timeOffsets: unknown clock {0:?} (expected monotonic or boottime)")]
    TimeClock(String),
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME has no nix constant in this version.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened in the parent so a bad path fails before anything is cloned.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace plan of one container.
#[derive(Debug)]
pub struct Plan {
    /// Flags for the init's clone3: every new namespace except cgroup (unshared later).
    pub clone_flags: CloneFlags,
    pub new_cgroupns: bool,
    pub new_userns: bool,
    pub new_timens: bool,
    /// Namespaces joined by path, user namespace first.
    pub joins: Vec<Join>,
}

impl Plan {
    pub fn from_bundle(b: &Bundle) -> Result<Plan, NamespaceError> {
        let mut flags = CloneFlags::empty();
        let mut joins = Vec::new();
        for ns in crate::spec::namespaces(&b.spec) {
            match ns.path() {
                None => flags |= clone_flag(ns.typ()),
                Some(path) => {
                    let fd = File::open(path).map_err(|source| NamespaceError::Open {
                        typ: ns.typ().to_string(),
                        path: path.clone(),
                        source,
                    })?;
                    joins.push(Join {
                        typ: ns.typ(),
                        path: path.clone(),
                        fd: fd.into(),
                    });
                }
            }
        }
        joins.sort_by_key(|j| j.typ != LinuxNamespaceType::User);
        let new_cgroupns = flags.contains(CloneFlags::CLONE_NEWCGROUP);
        let new_timens = flags.contains(clone_flag(LinuxNamespaceType::Time));
        flags.remove(CloneFlags::CLONE_NEWCGROUP);
        // A new time namespace is unshared by the init and entered at execve (time_for_children),
        // after its offsets are written.
        flags.remove(clone_flag(LinuxNamespaceType::Time));
        Ok(Plan {
            clone_flags: flags,
            new_cgroupns,
            new_userns: flags.contains(CloneFlags::CLONE_NEWUSER),
            new_timens,
            joins,
        })
    }

    /// Joining a namespace by path needs an intermediate process: setns(pid) and a joined user
    /// namespace only take effect for children, and new namespaces must be owned by the joined
    /// user namespace.
    pub fn needs_intermediate(&self) -> bool {
        !self.joins.is_empty()
    }

    /// Enter every namespace given by path (user first). Runs in the intermediate.
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        for j in &self.joins {
            nix::sched::setns(j.fd.as_fd(), clone_flag(j.typ)).map_err(|source| {
                NamespaceError::Join {
                    typ: j.typ.to_string(),
                    path: j.path.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

/// Format id mappings as the kernel's uid_map/gid_map expect: "container host size" lines.
pub fn map_content(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write the id maps of the init `pid` (run in the parent, which is privileged in the parent
/// user namespace). `setgroups` is left as "allow": the parent has CAP_SETGID.
pub fn write_id_maps(
    proc_root: &Path,
    pid: i32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let base = proc_root.join(pid.to_string());
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let path = base.join(file);
        let content = map_content(maps);
        std::fs::write(&path, &content).map_err(|source| NamespaceError::WriteMap {
            path,
            content,
            source,
        })?;
    }
    Ok(())
}

/// Write `linux.timeOffsets` for a time namespace the init has just unshared.
pub fn write_time_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<(), NamespaceError> {
    let mut content = String::new();
    for (clock, off) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(NamespaceError::TimeClock(clock.clone()));
        }
        content.push_str(&format!(
            "{} {} {}\n",
            clock,
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if content.is_empty() {
        return Ok(());
    }
    let path = PathBuf::from("/proc/self/timens_offsets");
    std::fs::write(&path, &content).map_err(|source| NamespaceError::WriteMap {
        path,
        content,
        source,
    })
}

pub fn unshare_cgroupns() -> Result<(), NamespaceError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|source| NamespaceError::Unshare {
        what: "CLONE_NEWCGROUP",
        source,
    })
}

pub fn unshare_timens() -> Result<(), NamespaceError> {
    nix::sched::unshare(clone_flag(LinuxNamespaceType::Time)).map_err(|source| {
        NamespaceError::Unshare {
            what: "CLONE_NEWTIME",
            source,
        }
    })
}

pub fn set_hostname(name: &str) -> Result<(), NamespaceError> {
    nix::unistd::sethostname(name).map_err(|e| NamespaceError::Hostname(name.into(), e))
}

pub fn set_domainname(name: &str) -> Result<(), NamespaceError> {
    crate::sys::process::set_domainname(name)
        .map_err(|e| NamespaceError::Domainname(name.into(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_are_written_one_range_per_line() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(map_content(&m), "0 1000 1\n1 100000 65536\n");
    }
}
