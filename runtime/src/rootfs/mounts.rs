//! The spec's `mounts[]`, performed in order inside the rootfs before the pivot (runc's
//! `mountToRootfs`): proc/sysfs, tmpfs, bind (with the remount that applies its flags), cgroup
//! (v1 tmpfs + per-hierarchy mounts, or cgroup2) and any other filesystem type.
//!
//! Each destination is resolved with [`Root::resolve`] and mounted through `/proc/self/fd/N`
//! of the resolved descriptor, after checking the descriptor really is below the rootfs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::Mount;

use super::options::{self, MountOptions, MS_NOSYMFOLLOW};
use super::resolve::{proc_fd_path, Create, Root};
use super::{RootfsContext, RootfsError};
use crate::sys::mount::mount_setattr;

const NONE: Option<&str> = None;

/// `nosuid,nodev,noexec`: what runc gives the cgroup tmpfs and cgroup mounts.
pub(super) const DEFAULT_MOUNT_FLAGS: MsFlags = MsFlags::MS_NOEXEC
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV);

/// The atime "enum" flags and all atime-related flags.
const ATIME_ENUM: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);
const ATIME_ALL: MsFlags = ATIME_ENUM.union(MsFlags::MS_NODIRATIME);
/// Flags the kernel locks (MNT_LOCK_*) on mounts inherited into a less privileged user
/// namespace: a remount must keep them as they are.
pub const LOCKED_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOSUID)
    .union(ATIME_ALL);

/// Mount destinations below `/proc` that may be mounted over (lxcfs-style), as in runc.
const VALID_PROC_MOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// A `mounts[]` entry, normalised.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `mounts[i]` (or a description for mounts runc synthesises).
    pub field: String,
    /// Absolute container path (a relative one gets a `/` prefix, as runc does).
    pub destination: PathBuf,
    pub source: Option<PathBuf>,
    /// The filesystem type; `"bind"` for every bind mount whatever the spec said.
    pub fs_type: String,
    pub options: MountOptions,
}

impl Entry {
    pub fn from_spec(index: usize, m: &Mount, bundle: &Path) -> Result<Entry, RootfsError> {
        let field = format!("mounts[{index}]");
        let dest = m.destination();
        if dest.as_os_str().is_empty() {
            return Err(RootfsError::BadDestination {
                field,
                destination: dest.clone(),
                reason: "is empty",
            });
        }
        let destination = Path::new("/").join(dest);
        let mut options = options::parse(m.options().as_deref().unwrap_or_default());
        let mut fs_type = m.typ().clone().unwrap_or_default();
        let mut source = m.source().clone();
        // `type: bind` without a bind option still means a bind mount (as in crun/youki);
        // and any type given with bind/rbind is meaningless: runc calls those "bind".
        if fs_type == "bind" && !options.is_bind() {
            options.flags |= MsFlags::MS_BIND;
        }
        if options.is_bind() {
            fs_type = "bind".to_string();
            source = source.map(|s| if s.is_absolute() { s } else { bundle.join(s) });
        }
        Ok(Entry {
            field,
            destination,
            source,
            fs_type,
            options,
        })
    }

    fn is_dev(&self) -> bool {
        clean(&self.destination) == Path::new("/dev")
    }

    fn source_str(&self) -> String {
        match &self.source {
            Some(s) => s.to_string_lossy().into_owned(),
            None => self.fs_type.clone(),
        }
    }
}

/// Lexically cleaned absolute path (`/dev/` and `/dev/./` → `/dev`), like runc's `CleanPath`.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `ST_NOSYMFOLLOW` from <linux/statfs.h> (not in libc).
const ST_NOSYMFOLLOW: libc::c_ulong = 0x2000;

/// runc's `statfsToMountFlags`: the `MS_*` flags a mount currently has.
pub fn statfs_to_mount_flags(st: FsFlags) -> MsFlags {
    let table = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::from_bits_retain(ST_NOSYMFOLLOW), MS_NOSYMFOLLOW),
    ];
    let mut flags = MsFlags::empty();
    for (st_flag, ms_flag) in table {
        if st.contains(st_flag) {
            flags |= ms_flag;
        }
    }
    // MS_STRICTATIME is not stored; a mount with no other atime value is strictatime.
    if !flags.intersects(ATIME_ENUM) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    flags
}

/// Performs every `mounts[]` entry in order.
pub fn mount_all(ctx: &RootfsContext<'_>, root: &Root) -> Result<(), RootfsError> {
    let mounts = ctx.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let entry = Entry::from_spec(i, m, ctx.bundle)?;
        mount_entry(ctx, root, &entry)?;
    }
    Ok(())
}

/// Resolves `dest` in the root (creating it), checks the result is inside the root, and
/// returns the descriptor together with its container path.
pub(super) fn target(
    root: &Root,
    field: &str,
    dest: &Path,
    create: Create,
) -> Result<(OwnedFd, PathBuf), RootfsError> {
    let fd = root
        .resolve(dest, create)
        .map_err(|e| RootfsError::resolve(field, dest, e))?;
    let inside = root
        .container_path(fd.as_fd())
        .map_err(|e| RootfsError::resolve(field, dest, e))?;
    Ok((fd, inside))
}

pub fn mount_entry(ctx: &RootfsContext<'_>, root: &Root, e: &Entry) -> Result<(), RootfsError> {
    if e.options.idmap.is_some() {
        return Err(RootfsError::UnsupportedOption {
            field: e.field.clone(),
            option: if e.options.idmap == Some(true) {
                "ridmap"
            } else {
                "idmap"
            },
            reason: "id-mapped mounts are not implemented by husk",
        });
    }
    if e.options.tmpcopyup && e.fs_type != "tmpfs" {
        return Err(RootfsError::UnsupportedOption {
            field: e.field.clone(),
            option: "tmpcopyup",
            reason: "only valid for tmpfs mounts",
        });
    }
    match e.fs_type.as_str() {
        "proc" | "sysfs" => mount_proc_or_sys(ctx, root, e),
        "tmpfs" => mount_tmpfs(root, e),
        "bind" => mount_bind(root, e),
        "cgroup" => super::cgroupfs::mount_cgroup(ctx, root, e),
        _ => {
            let (_, inside) = target(root, &e.field, &e.destination, Create::Dir)?;
            check_proc_mount(e, &inside, None)?;
            mount_propagate(
                root,
                e,
                &e.source_str(),
                &e.fs_type,
                e.options.flags,
                &e.options.data,
            )
        }
    }
}

/// The `mount(2)` call onto the resolved destination, then each propagation change (on a fresh
/// descriptor: the first one now points below the new mount). tmpfs and `/dev` mounts are made
/// writable here and remounted read-only by `finalize` (files get created in them first).
pub(super) fn mount_propagate(
    root: &Root,
    e: &Entry,
    source: &str,
    fs_type: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), RootfsError> {
    let mut flags = flags;
    if e.fs_type == "tmpfs" || e.is_dev() {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let (fd, _) = target(root, &e.field, &e.destination, Create::Nothing)?;
    let data = (!data.is_empty()).then_some(data);
    mount(
        Some(source),
        &proc_fd_path(fd.as_fd()),
        Some(fs_type),
        flags,
        data,
    )
    .map_err(|err| RootfsError::mount(&e.field, source, &e.destination, err))?;
    apply_propagation(root, e)
}

fn apply_propagation(root: &Root, e: &Entry) -> Result<(), RootfsError> {
    if e.options.propagation.is_empty() {
        return Ok(());
    }
    let (fd, _) = target(root, &e.field, &e.destination, Create::Nothing)?;
    for flag in &e.options.propagation {
        mount(NONE, &proc_fd_path(fd.as_fd()), NONE, *flag, NONE)
            .map_err(|err| RootfsError::mount(&e.field, "propagation", &e.destination, err))?;
    }
    Ok(())
}

/// runc's `checkProcMount`: nothing may be mounted below `/proc` except a few lxcfs-style
/// files, and only a procfs may be mounted on `/proc` itself.
pub(super) fn check_proc_mount(
    e: &Entry,
    inside: &Path,
    source: Option<&Path>,
) -> Result<(), RootfsError> {
    let Ok(rest) = inside.strip_prefix("/proc") else {
        return Ok(());
    };
    if rest.as_os_str().is_empty() {
        let is_proc = match source {
            Some(src) => {
                nix::sys::statfs::statfs(src)
                    .map_err(|err| RootfsError::syscall(&e.field, "statfs", src, err))?
                    .filesystem_type()
                    == nix::sys::statfs::PROC_SUPER_MAGIC
            }
            None => false,
        };
        if is_proc {
            return Ok(());
        }
        return Err(RootfsError::BadDestination {
            field: e.field.clone(),
            destination: e.destination.clone(),
            reason: "resolves to /proc, where only a procfs may be mounted",
        });
    }
    if VALID_PROC_MOUNTS.iter().any(|v| Path::new(v) == inside) {
        return Ok(());
    }
    Err(RootfsError::BadDestination {
        field: e.field.clone(),
        destination: e.destination.clone(),
        reason: "resolves inside /proc, where mounts are not allowed",
    })
}

fn mount_proc_or_sys(ctx: &RootfsContext<'_>, root: &Root, e: &Entry) -> Result<(), RootfsError> {
    let (fd, _) = target(root, &e.field, &e.destination, Create::Dir)?;
    let st = fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|err| RootfsError::syscall(&e.field, "fstat", &e.destination, err))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(RootfsError::BadDestination {
            field: e.field.clone(),
            destination: e.destination.clone(),
            reason: "is not a directory (proc and sysfs are only mounted on ordinary directories)",
        });
    }
    let result = mount_propagate(
        root,
        e,
        &e.source_str(),
        &e.fs_type,
        e.options.flags,
        &e.options.data,
    );
    match result {
        // A user namespace without its own network namespace may not mount sysfs: bind the
        // host's /sys (recursively) instead, with the requested flags, as runc does.
        Err(RootfsError::Mount {
            source: Errno::EPERM,
            ..
        }) if e.fs_type == "sysfs" && ctx.in_new_userns => {
            let mut bind = e.clone();
            bind.fs_type = "bind".into();
            bind.source = Some(PathBuf::from("/sys"));
            bind.options.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            bind.options.data.clear();
            mount_bind(root, &bind)
        }
        other => other,
    }
}

pub(super) fn mount_tmpfs(root: &Root, e: &Entry) -> Result<(), RootfsError> {
    let mut data = e.options.data.clone();
    match root.resolve(&e.destination, Create::Nothing) {
        Ok(fd) => {
            // Keep the permissions of the directory being covered unless `mode=` says otherwise.
            let st = fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
                .map_err(|err| RootfsError::syscall(&e.field, "fstat", &e.destination, err))?;
            let mode = format!("mode={:04o}", st.st_mode & 0o7777);
            data = if data.is_empty() {
                mode
            } else {
                format!("{mode},{data}")
            };
        }
        Err(Errno::ENOENT) => {
            target(root, &e.field, &e.destination, Create::Dir)?;
        }
        Err(err) => return Err(RootfsError::resolve(&e.field, &e.destination, err)),
    }
    let (_, inside) = target(root, &e.field, &e.destination, Create::Nothing)?;
    check_proc_mount(e, &inside, None)?;
    if e.options.tmpcopyup {
        return super::paths::tmpfs_copy_up(root, e, &data);
    }
    mount_propagate(root, e, &e.source_str(), "tmpfs", e.options.flags, &data)
}

pub(super) fn mount_bind(root: &Root, e: &Entry) -> Result<(), RootfsError> {
    let Some(source) = &e.source else {
        return Err(RootfsError::MissingSource {
            field: e.field.clone(),
            destination: e.destination.clone(),
        });
    };
    let meta = std::fs::metadata(source).map_err(|err| {
        RootfsError::syscall(
            &e.field,
            "stat bind source",
            source,
            Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    let create = if meta.is_dir() {
        Create::Dir
    } else {
        Create::File
    };
    let (_, inside) = target(root, &e.field, &e.destination, create)?;
    check_proc_mount(e, &inside, Some(source))?;
    let source_str = source.to_string_lossy();
    mount_propagate(root, e, &source_str, "bind", e.options.flags, "")?;

    let wanted = e.options.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !wanted.is_empty() || !e.options.cleared.is_empty() {
        remount_bind(root, e, source)?;
    }
    if let Some(attr) = e.options.recursive {
        let (fd, _) = target(root, &e.field, &e.destination, Create::Nothing)?;
        mount_setattr(fd.as_fd(), true, attr).map_err(|err| {
            RootfsError::mount(&e.field, "recursive mount attributes", &e.destination, err)
        })?;
    }
    Ok(())
}

/// A bind mount keeps the source's flags; the requested ones need `MS_BIND|MS_REMOUNT`. First
/// as asked ("mount --bind -o ..."), and if the kernel refuses (flags locked by a user
/// namespace) again with the source's locked flags kept, unless the user explicitly asked to
/// clear one of them or for a different atime mode (runc's logic, incl. its atime caveats).
fn remount_bind(root: &Root, e: &Entry, source: &Path) -> Result<(), RootfsError> {
    let (fd, _) = target(root, &e.field, &e.destination, Create::Nothing)?;
    let path = proc_fd_path(fd.as_fd());
    let mut flags = e.options.flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let first = match mount(NONE, &path, NONE, flags, NONE) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    let fail = |err| RootfsError::mount(&e.field, "remount", &e.destination, err);
    let st =
        statvfs(source).map_err(|err| RootfsError::syscall(&e.field, "statfs", source, err))?;
    let src_flags = statfs_to_mount_flags(st.flags());
    if (src_flags & e.options.cleared & LOCKED_FLAGS) != MsFlags::empty() {
        return Err(fail(first));
    }
    let asked_atime = e.options.flags & ATIME_ALL;
    if !asked_atime.is_empty() && asked_atime != src_flags & ATIME_ALL {
        return Err(fail(first));
    }
    flags |= src_flags & LOCKED_FLAGS;
    mount(NONE, &path, NONE, flags, NONE).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_mount(json: &str) -> Mount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn relative_destinations_get_a_leading_slash_and_bind_sources_the_bundle() {
        let m = spec_mount(
            r#"{"destination":"data","type":"none","source":"vol","options":["rbind","ro"]}"#,
        );
        let e = Entry::from_spec(3, &m, Path::new("/bundle")).unwrap();
        assert_eq!(e.destination, Path::new("/data"));
        assert_eq!(e.source.as_deref(), Some(Path::new("/bundle/vol")));
        assert_eq!(e.fs_type, "bind");
        assert_eq!(e.field, "mounts[3]");
        assert_eq!(
            e.options.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn type_bind_without_bind_option_is_still_a_bind() {
        let m = spec_mount(r#"{"destination":"/x","type":"bind","source":"/etc"}"#);
        let e = Entry::from_spec(0, &m, Path::new("/b")).unwrap();
        assert!(e.options.is_bind());
        assert_eq!(e.source.as_deref(), Some(Path::new("/etc")));
    }

    #[test]
    fn empty_destination_is_rejected_naming_the_entry() {
        let m = spec_mount(r#"{"destination":"","type":"tmpfs"}"#);
        let err = Entry::from_spec(5, &m, Path::new("/b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mounts[5]"), "{err}");
    }

    #[test]
    fn clean_path_matches_runc_clean_path() {
        assert_eq!(clean(Path::new("/dev/")), Path::new("/dev"));
        assert_eq!(clean(Path::new("/dev/./")), Path::new("/dev"));
        assert_eq!(clean(Path::new("/a/../dev")), Path::new("/dev"));
        assert_eq!(clean(Path::new("/../../dev")), Path::new("/dev"));
    }

    #[test]
    fn statfs_flags_map_to_mount_flags_and_imply_strictatime() {
        let f =
            statfs_to_mount_flags(FsFlags::ST_RDONLY | FsFlags::ST_NOSUID | FsFlags::ST_RELATIME);
        assert_eq!(
            f,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_RELATIME
        );
        let f = statfs_to_mount_flags(FsFlags::ST_NODEV | FsFlags::ST_NOEXEC);
        assert_eq!(
            f,
            MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_STRICTATIME
        );
        let f = statfs_to_mount_flags(FsFlags::ST_NOATIME | FsFlags::ST_NODIRATIME);
        assert_eq!(f, MsFlags::MS_NOATIME | MsFlags::MS_NODIRATIME);
    }

    #[test]
    fn idmap_and_misplaced_tmpcopyup_are_refused_before_touching_anything() {
        let dir = tempfile::tempdir().unwrap();
        let spec: oci_spec::runtime::Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2"}"#).unwrap();
        let ctx = RootfsContext {
            spec: &spec,
            rootfs: dir.path(),
            bundle: dir.path(),
            in_new_userns: false,
            in_new_cgroupns: false,
            cgroup_mount: None,
            no_pivot: false,
        };
        let root = Root::open(dir.path()).unwrap();
        let m = spec_mount(
            r#"{"destination":"/x","type":"bind","source":"/etc","options":["rbind","ridmap"]}"#,
        );
        let err = mount_entry(&ctx, &root, &Entry::from_spec(2, &m, dir.path()).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mounts[2]") && err.contains("\"ridmap\""),
            "{err}"
        );
        let m = spec_mount(
            r#"{"destination":"/x","type":"proc","source":"proc","options":["tmpcopyup"]}"#,
        );
        let err = mount_entry(&ctx, &root, &Entry::from_spec(0, &m, dir.path()).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tmpcopyup"), "{err}");
        let m = spec_mount(r#"{"destination":"/x","type":"cgroup","source":"cgroup"}"#);
        let err = mount_entry(&ctx, &root, &Entry::from_spec(4, &m, dir.path()).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mounts[4]") && err.contains("cgroup information"),
            "{err}"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing may be created"
        );
    }

    #[test]
    fn proc_destinations_are_checked_like_runc() {
        let m = spec_mount(r#"{"destination":"/proc/x","type":"tmpfs"}"#);
        let e = Entry::from_spec(1, &m, Path::new("/b")).unwrap();
        let err = check_proc_mount(&e, Path::new("/proc/kcore"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mounts[1]") && err.contains("inside /proc"),
            "{err}"
        );
        check_proc_mount(&e, Path::new("/proc/meminfo"), None).unwrap();
        check_proc_mount(&e, Path::new("/procfoo"), None).unwrap();
        assert!(check_proc_mount(&e, Path::new("/proc"), None).is_err());
        // A procfs source may be mounted on /proc itself.
        check_proc_mount(&e, Path::new("/proc"), Some(Path::new("/proc"))).unwrap();
    }
}
