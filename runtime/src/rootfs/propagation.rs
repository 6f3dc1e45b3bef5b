//! Mount propagation of the container's mount namespace (`linux.rootfsPropagation`) and the
//! `/proc/self/mountinfo` parsing it needs, following runc's `prepareRoot`.
//!
//! The new mount namespace starts as a copy of the host's, with its mounts still in the host's
//! peer groups. Making `/` recursively slave (the default) stops anything we mount from
//! propagating back to the host while host mounts still show up in the container; the
//! parent mount of the rootfs is made private when shared (pivot_root refuses shared parents).

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::options::propagation_flag;
use super::{RootfsContext, RootfsError};

const NONE: Option<&str> = None;

/// One line of `/proc/<pid>/mountinfo`, with the fields the rootfs code needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The root of the mount within its filesystem (`/` for a full mount).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields such as `shared:1`, `master:2`.
    pub optional: Vec<String>,
    pub fs_type: String,
}

use crate::mountinfo::unescape;

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 || fields.len() < sep + 2 {
                return None;
            }
            Some(MountInfo {
                root: unescape(fields[3]),
                mount_point: unescape(fields[4]),
                optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
                fs_type: fields[sep + 1].to_string(),
            })
        })
        .collect()
}

pub fn read_mountinfo(proc_root: &Path) -> Result<Vec<MountInfo>, RootfsError> {
    let path = proc_root.join("self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|source| RootfsError::ReadMountinfo {
        path: path.clone(),
        source,
    })?;
    Ok(parse_mountinfo(&text))
}

/// The mount `path` lives on: the longest mount point that is a prefix of it.
pub fn parent_mount<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// The flags `linux.rootfsPropagation` asks for, if any.
fn configured(ctx: &RootfsContext<'_>) -> Result<Option<MsFlags>, RootfsError> {
    let value = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone());
    match value {
        None => Ok(None),
        Some(v) => propagation_flag(&v)
            .map(Some)
            .ok_or(RootfsError::BadRootPropagation { value: v }),
    }
}

/// runc's `prepareRoot`: `/` gets the configured propagation (default rslave), the rootfs'
/// parent mount is made private if shared, and the rootfs is bound onto itself (MS_REC) so
/// that it is a mount point, which `pivot_root` requires.
///
/// An `unbindable` root would make that self-bind fail (EINVAL, as runc 1.1 does): `/` stays
/// rslave until after the pivot, where [`reapply_root_propagation`] makes it unbindable (crun's
/// order).
pub fn prepare_root(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    let default = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    let flags = match configured(ctx)? {
        Some(f) if f.contains(MsFlags::MS_UNBINDABLE) => default,
        Some(f) => f,
        None => default,
    };
    let field = "linux.rootfsPropagation";
    mount(NONE, "/", NONE, flags, NONE)
        .map_err(|e| RootfsError::mount(field, "propagation", Path::new("/"), e))?;

    let rootfs = std::fs::canonicalize(ctx.rootfs).unwrap_or_else(|_| ctx.rootfs.to_path_buf());
    let mounts = read_mountinfo(Path::new("/proc"))?;
    if let Some(parent) = parent_mount(&mounts, &rootfs) {
        if parent.optional.iter().any(|o| o.starts_with("shared:")) {
            mount(NONE, &parent.mount_point, NONE, MsFlags::MS_PRIVATE, NONE)
                .map_err(|e| RootfsError::mount("root.path", "private", &parent.mount_point, e))?;
        }
    }
    mount(
        Some(&rootfs),
        &rootfs,
        Some("bind"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| RootfsError::mount("root.path", &rootfs.to_string_lossy(), &rootfs, e))
}

/// After the pivot, an explicit `rootfsPropagation` is applied to the new `/` too (runc does
/// this so that e.g. `shared` really makes the container's root shared).
pub fn reapply_root_propagation(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    if let Some(flags) = configured(ctx)? {
        mount(NONE, "/", NONE, flags, NONE).map_err(|e| {
            RootfsError::mount("linux.rootfsPropagation", "propagation", Path::new("/"), e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid shared:7 master:3 - sysfs sysfs rw
40 22 0:40 /sub /var/lib/my\\040dir rw - tmpfs tmpfs rw
41 22 0:41 / /var/lib rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_fields_are_parsed_and_unescaped() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].mount_point, Path::new("/"));
        assert_eq!(m[0].optional, vec!["shared:1"]);
        assert_eq!(m[1].fs_type, "proc");
        assert_eq!(m[2].optional, vec!["shared:7", "master:3"]);
        assert_eq!(m[3].mount_point, Path::new("/var/lib/my dir"));
        assert_eq!(m[3].root, Path::new("/sub"));
        assert!(m[3].optional.is_empty());
    }

    #[test]
    fn parent_mount_is_the_longest_prefix_by_component() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(
            parent_mount(&m, Path::new("/var/lib/x/rootfs"))
                .unwrap()
                .mount_point,
            Path::new("/var/lib")
        );
        assert_eq!(
            parent_mount(&m, Path::new("/var/library"))
                .unwrap()
                .mount_point,
            Path::new("/")
        );
        assert_eq!(
            parent_mount(&m, Path::new("/proc")).unwrap().fs_type,
            "proc"
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_mountinfo("garbage\n1 2 3\n").is_empty());
    }
}
