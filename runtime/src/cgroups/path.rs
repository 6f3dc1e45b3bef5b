//! Where a container's cgroup lives: `linux.cgroupsPath` resolution against
//! `/proc/self/cgroup`, and discovery of the mounted v1 hierarchies from `/proc/self/mountinfo`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupsPath, Hierarchy, Host};

/// v1 controllers runc's cgroupfs driver knows; a hierarchy carrying any of them (or the
/// `name=systemd` hierarchy) gets a directory for the container.
const KNOWN_V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Lexically cleans `path`: drops `.`, applies `..`, and refuses a `..` that would climb above
/// the start. `base` names what the start is, for the error.
fn clean(original: &Path, path: &Path, base: &str) -> Result<PathBuf, CgroupError> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(CgroupError::PathEscapes {
                        path: original.to_path_buf(),
                        base: base.to_string(),
                    });
                }
            }
            Component::Normal(p) => parts.push(p),
        }
    }
    let mut out = PathBuf::from("/");
    out.extend(parts);
    Ok(out)
}

/// One line of `/proc/self/cgroup`: hierarchy key ("" for the v2 line) and the cgroup path.
fn own_cgroups(host: &Host) -> Result<Vec<(String, PathBuf)>, CgroupError> {
    let file = host.proc_root.join("self/cgroup");
    let text = std::fs::read_to_string(&file).map_err(|source| CgroupError::Read {
        path: file.clone(),
        source,
    })?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(_id), Some(ctrls), Some(path)) => {
                    Ok((ctrls.to_string(), PathBuf::from(path)))
                }
                _ => Err(CgroupError::Parse {
                    path: file.clone(),
                    reason: format!("line {line:?} is not id:controllers:path"),
                }),
            }
        })
        .collect()
}

pub(super) fn resolve(
    host: &Host,
    hierarchy: Hierarchy,
    spec_path: Option<&Path>,
    id: &str,
) -> Result<CgroupsPath, CgroupError> {
    let (spec, relative) = match spec_path {
        Some(p) if !p.as_os_str().is_empty() => (p.to_path_buf(), !p.is_absolute()),
        _ => {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                return Err(CgroupError::InvalidId { id: id.to_string() });
            }
            (PathBuf::from("/husk").join(id), false)
        }
    };
    if !relative {
        let path = clean(&spec, &spec, "the cgroup root")?;
        if path == Path::new("/") {
            return Err(CgroupError::PathIsParent {
                path: spec,
                what: "the root cgroup",
            });
        }
        return Ok(CgroupsPath {
            hierarchy,
            path,
            v1_paths: BTreeMap::new(),
        });
    }
    // Relative: below the caller's own cgroup (runc's GetOwnCgroupPath), which on v1 may differ
    // per hierarchy. The relative part must not climb out of it.
    let rel = clean(&spec, &spec, "the calling process's own cgroup")?;
    let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
    if rel.as_os_str().is_empty() {
        return Err(CgroupError::PathIsParent {
            path: spec,
            what: "the calling process's own cgroup",
        });
    }
    let file = host.proc_root.join("self/cgroup");
    let own = own_cgroups(host)?;
    match hierarchy {
        Hierarchy::V2 => {
            let base = own
                .iter()
                .find(|(k, _)| k.is_empty())
                .map(|(_, p)| p.clone())
                .ok_or_else(|| CgroupError::OwnCgroupUnknown {
                    path: spec.clone(),
                    file: file.clone(),
                    hierarchy: "unified (0::)".into(),
                })?;
            Ok(CgroupsPath {
                hierarchy,
                path: base.join(&rel),
                v1_paths: BTreeMap::new(),
            })
        }
        Hierarchy::V1 => {
            let resolved: BTreeMap<String, PathBuf> = own
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, p)| (k, p.join(&rel)))
                .collect();
            if resolved.is_empty() {
                return Err(CgroupError::OwnCgroupUnknown {
                    path: spec,
                    file,
                    hierarchy: "any v1".into(),
                });
            }
            // The most common path becomes `path`; the others are kept per hierarchy.
            let mut counts: BTreeMap<&PathBuf, usize> = BTreeMap::new();
            for p in resolved.values() {
                *counts.entry(p).or_default() += 1;
            }
            let common = counts
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(p, _)| (*p).clone())
                .unwrap_or_default();
            let v1_paths = resolved.into_iter().filter(|(_, p)| *p != common).collect();
            Ok(CgroupsPath {
                hierarchy,
                path: common,
                v1_paths,
            })
        }
    }
}

/// A mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V1Mount {
    /// Controllers as `/proc/self/cgroup` lists them: "cpu,cpuacct", "name=systemd".
    pub key: String,
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup shown at the mount point (not "/" inside some containers).
    pub root: PathBuf,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    crate::mountinfo::unescape(s).to_string_lossy().into_owned()
}

/// The v1 hierarchies mounted below the cgroup root, in mountinfo order, one per hierarchy.
pub(super) fn v1_mounts(host: &Host) -> Result<Vec<V1Mount>, CgroupError> {
    let file = host.proc_root.join("self/mountinfo");
    let text = std::fs::read_to_string(&file).map_err(|source| CgroupError::Read {
        path: file.clone(),
        source,
    })?;
    let mut out: Vec<V1Mount> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 4 || sep < 6 || fields[sep + 1] != "cgroup" {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(fields[4]));
        if mountpoint.parent() != Some(host.cgroup_root.as_path()) {
            continue;
        }
        let controllers: Vec<String> = fields[sep + 3]
            .split(',')
            .filter(|o| o.starts_with("name=") || KNOWN_V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        let joined = controllers
            .iter()
            .any(|c| c == "name=systemd" || KNOWN_V1_CONTROLLERS.contains(&c.as_str()));
        if !joined {
            continue;
        }
        // The kernel lists controllers in the same order in mountinfo and /proc/self/cgroup,
        // with `name=` last.
        let key = controllers.join(",");
        if out.iter().any(|m| m.key == key) {
            continue;
        }
        out.push(V1Mount {
            key,
            controllers,
            mountpoint,
            root: PathBuf::from(unescape(fields[3])),
        });
    }
    Ok(out)
}

/// The container's directory in `mount` for the cgroup path `cgroup` (which is relative to the
/// cgroup namespace, like `/proc/self/cgroup`): the mount's root is stripped when it prefixes it.
pub(super) fn dir_in_mount(mountpoint: &Path, root: &Path, cgroup: &Path) -> PathBuf {
    let rel = if root != Path::new("/") {
        cgroup.strip_prefix(root).unwrap_or(cgroup)
    } else {
        cgroup
    };
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    mountpoint.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(proc_cgroup: &str) -> (tempfile::TempDir, Host) {
        let tmp = tempfile::tempdir().unwrap();
        let proc_root = tmp.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/cgroup"), proc_cgroup).unwrap();
        let host = Host {
            cgroup_root: tmp.path().join("cgroup"),
            proc_root,
        };
        (tmp, host)
    }

    const HYBRID_SELF: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e57\n2:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn absent_cgroups_path_defaults_to_husk_slash_id() {
        let (_t, host) = host_with(HYBRID_SELF);
        let p = resolve(&host, Hierarchy::V1, None, "abc").unwrap();
        assert_eq!(p.path, PathBuf::from("/husk/abc"));
        assert!(p.v1_paths.is_empty());
    }

    #[test]
    fn absolute_cgroups_path_is_cleaned_and_used_as_is() {
        let (_t, host) = host_with(HYBRID_SELF);
        let p = resolve(&host, Hierarchy::V1, Some(Path::new("/a/./b/../c/")), "x").unwrap();
        assert_eq!(p.path, PathBuf::from("/a/c"));
        let p = resolve(&host, Hierarchy::V2, Some(Path::new("/husk-test/x")), "x").unwrap();
        assert_eq!(p.path, PathBuf::from("/husk-test/x"));
    }

    #[test]
    fn escaping_dotdot_is_rejected_naming_the_field() {
        let (_t, host) = host_with(HYBRID_SELF);
        let err = resolve(&host, Hierarchy::V1, Some(Path::new("/a/../../etc")), "x").unwrap_err();
        assert!(err.to_string().contains("linux.cgroupsPath"), "{err}");
        let err = resolve(&host, Hierarchy::V1, Some(Path::new("a/../../b")), "x").unwrap_err();
        assert!(
            err.to_string().contains("linux.cgroupsPath \"a/../../b\""),
            "{err}"
        );
        assert!(err.to_string().contains("own cgroup"), "{err}");
    }

    #[test]
    fn paths_naming_the_root_or_our_own_cgroup_are_rejected() {
        let (_t, host) = host_with(HYBRID_SELF);
        let err = resolve(&host, Hierarchy::V1, Some(Path::new("/a/..")), "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.cgroupsPath \"/a/..\" names the root cgroup"
        );
        let err = resolve(&host, Hierarchy::V1, Some(Path::new("./")), "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("names the calling process's own cgroup"),
            "{err}"
        );
        let err = resolve(&host, Hierarchy::V1, None, "..").unwrap_err();
        assert!(err.to_string().contains("container id \"..\""), "{err}");
    }

    #[test]
    fn relative_path_on_v1_is_resolved_per_hierarchy() {
        let (_t, host) = host_with(HYBRID_SELF);
        let p = resolve(&host, Hierarchy::V1, Some(Path::new("grp/ctr")), "x").unwrap();
        assert_eq!(p.path, PathBuf::from("/grp/ctr"));
        assert_eq!(p.v1_paths.len(), 1);
        assert_eq!(
            p.v1_paths["memory"],
            PathBuf::from("/process_api/e57/grp/ctr")
        );
        // It must survive a round trip through state.json.
        let json = serde_json::to_string(&p).unwrap();
        let back: CgroupsPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn relative_path_on_v2_uses_the_unified_line() {
        let (_t, host) = host_with("0::/user.slice/session-1.scope\n");
        let p = resolve(&host, Hierarchy::V2, Some(Path::new("ctr")), "x").unwrap();
        assert_eq!(p.path, PathBuf::from("/user.slice/session-1.scope/ctr"));
    }

    #[test]
    fn state_written_without_v1_paths_still_loads() {
        let p: CgroupsPath =
            serde_json::from_str(r#"{"hierarchy":"V1","path":"/husk/a"}"#).unwrap();
        assert!(p.v1_paths.is_empty());
    }

    #[test]
    fn v1_mounts_come_from_mountinfo_below_the_root() {
        let (tmp, host) = host_with(HYBRID_SELF);
        let r = host.cgroup_root.display().to_string();
        let mi = format!(
            "31 23 0:28 / {r} rw - tmpfs tmpfs rw\n\
             32 31 0:29 / {r}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             35 31 0:32 /sub {r}/memory rw - cgroup cgroup rw,memory\n\
             40 31 0:37 / {r}/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             41 31 0:38 / {r}/unified rw - cgroup2 cgroup2 rw\n\
             42 23 0:39 / /elsewhere/memory rw - cgroup cgroup rw,memory\n"
        );
        std::fs::write(host.proc_root.join("self/mountinfo"), mi).unwrap();
        let m = v1_mounts(&host).unwrap();
        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["cpu,cpuacct", "memory", "name=systemd"]);
        assert_eq!(m[1].root, PathBuf::from("/sub"));
        assert_eq!(
            dir_in_mount(&m[1].mountpoint, &m[1].root, Path::new("/sub/husk/a")),
            tmp.path().join("cgroup/memory/husk/a")
        );
        assert_eq!(
            dir_in_mount(&m[0].mountpoint, &m[0].root, Path::new("/husk/a")),
            tmp.path().join("cgroup/cpu,cpuacct/husk/a")
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
