//! The steps after the pivot: read-only remounts (`root.readonly`, read-only tmpfs and `/dev`
//! mounts, `linux.readonlyPaths`), `linux.maskedPaths`, the console bind, and `tmpcopyup`.
//!
//! After the pivot `/` is the container root, but the image may still hold hostile symlinks
//! or a fake `/dev/null` (CVE-2025-31133), so every path is resolved in-root to a descriptor
//! and mounts are made descriptor-to-descriptor with `open_tree`/`move_mount`/`fsmount`;
//! none of this needs the container to have a `/proc`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};
use nix::sys::statvfs::statvfs;
use oci_spec::runtime::Spec;

use super::mounts::{statfs_to_mount_flags, Entry};
use super::resolve::{proc_fd_path, Create, Root};
use super::RootfsError;
use crate::sys::mount::{clone_tree, fsmount_tmpfs, mount_setattr, move_mount, openat2, MountAttr};

const NONE: Option<&str> = None;
const RDONLY: MountAttr = MountAttr {
    set: libc::MOUNT_ATTR_RDONLY,
    clear: 0,
    propagation: 0,
};

fn errno(e: io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn file_kind(mode: u32) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

fn open_container_root() -> Result<Root, RootfsError> {
    Root::open(Path::new("/")).map_err(|e| RootfsError::syscall("root", "open", Path::new("/"), e))
}

pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    let root = open_container_root()?;
    remount_readonly_mounts(spec, &root)?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        set_root_readonly()?;
    }
    let linux = spec.linux().as_ref();
    for (i, path) in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        readonly_path(&root, &format!("linux.readonlyPaths[{i}]"), Path::new(path))?;
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    if !masked.is_empty() {
        let null = verified_dev_null(&root, "linux.maskedPaths")?;
        for (i, path) in masked.iter().enumerate() {
            mask_path(
                &root,
                &null,
                &format!("linux.maskedPaths[{i}]"),
                Path::new(path),
            )?;
        }
    }
    Ok(())
}

/// tmpfs and `/dev` mounts were mounted writable (files had to be created in them); those
/// with `ro` become read-only now (runc's `finalizeRootfs`).
fn remount_readonly_mounts(spec: &Spec, root: &Root) -> Result<(), RootfsError> {
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let e = Entry::from_spec(i, m, Path::new("/"))?;
        let is_dev = super::mounts::clean(&e.destination) == Path::new("/dev");
        if !e.options.flags.contains(MsFlags::MS_RDONLY) || !(e.fs_type == "tmpfs" || is_dev) {
            continue;
        }
        let fd = root
            .resolve(&e.destination, Create::Nothing)
            .map_err(|err| RootfsError::resolve(&e.field, &e.destination, err))?;
        mount_setattr(fd.as_fd(), false, RDONLY).map_err(|err| {
            RootfsError::mount(&e.field, "remount read-only", &e.destination, err)
        })?;
    }
    Ok(())
}

/// runc's `setReadonly`: a read-only bind remount of `/`, retried with the flags `/` already
/// has (a user namespace locks nosuid/nodev/... so they must be repeated).
fn set_root_readonly() -> Result<(), RootfsError> {
    let field = "root.readonly";
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let first = match mount(NONE, "/", NONE, flags, NONE) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let st = statvfs("/").map_err(|e| RootfsError::syscall(field, "statfs", Path::new("/"), e))?;
    let current = statfs_to_mount_flags(st.flags()) & !MsFlags::MS_STRICTATIME;
    mount(NONE, "/", NONE, flags | current, NONE)
        .map_err(|_| RootfsError::mount(field, "remount read-only", Path::new("/"), first))
}

/// Opens `path` in the root, or `None` when it does not exist (skipped silently, like runc).
fn open_optional(root: &Root, field: &str, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match root.resolve(path, Create::Nothing) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(RootfsError::resolve(field, path, e)),
    }
}

/// Binds `path` onto itself (recursively) and makes the top mount read-only; `mount_setattr`
/// only adds `MOUNT_ATTR_RDONLY`, so nosuid/nodev/noexec stay as they are.
fn readonly_path(root: &Root, field: &str, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_optional(root, field, path)? else {
        return Ok(());
    };
    let fail = |e| RootfsError::mount(field, "read-only bind", path, e);
    let tree = clone_tree(fd.as_fd(), true).map_err(fail)?;
    mount_setattr(tree.as_fd(), false, RDONLY).map_err(fail)?;
    move_mount(tree.as_fd(), fd.as_fd()).map_err(fail)
}

/// The container's `/dev/null`, opened and checked to be the real character device 1:3: an
/// image (or an earlier mount) that replaced it with a symlink or a regular file must not get
/// that file bound over the masked paths (CVE-2025-31133).
pub fn verified_dev_null(root: &Root, field: &str) -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = root
        .resolve(path, Create::Nothing)
        .map_err(|e| RootfsError::resolve(field, path, e))?;
    let st = fstat(fd.as_raw_fd()).map_err(|e| RootfsError::syscall(field, "fstat", path, e))?;
    let kind = file_kind(st.st_mode);
    if kind != SFlag::S_IFCHR || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        let found = if kind == SFlag::S_IFCHR {
            format!(
                "the character device {}:{}",
                major(st.st_rdev),
                minor(st.st_rdev)
            )
        } else {
            format!("a file of type {:o}", kind.bits())
        };
        return Err(RootfsError::FakeDevNull {
            field: field.to_string(),
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(fd)
}

/// A masked directory gets a read-only empty tmpfs, anything else the verified `/dev/null`.
fn mask_path(root: &Root, null: &OwnedFd, field: &str, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_optional(root, field, path)? else {
        return Ok(());
    };
    let st = fstat(fd.as_raw_fd()).map_err(|e| RootfsError::syscall(field, "fstat", path, e))?;
    if file_kind(st.st_mode) == SFlag::S_IFDIR {
        let fail = |e| RootfsError::mount(field, "tmpfs", path, e);
        let tmpfs = fsmount_tmpfs(libc::MOUNT_ATTR_RDONLY).map_err(fail)?;
        move_mount(tmpfs.as_fd(), fd.as_fd()).map_err(fail)
    } else {
        let fail = |e| RootfsError::mount(field, "/dev/null", path, e);
        let tree = clone_tree(null.as_fd(), false).map_err(fail)?;
        move_mount(tree.as_fd(), fd.as_fd()).map_err(fail)
    }
}

/// Binds the pty slave onto `/dev/console` (created as an empty file when missing). The
/// target must be a regular file or a character device reached without following a final
/// symlink and not on procfs, so a hostile image can't redirect the bind (CVE-2025-52565).
pub fn mount_console(slave: &Path) -> Result<(), RootfsError> {
    let field = "process.terminal";
    let console = Path::new("/dev/console");
    let root = open_container_root()?;
    let slave_fd = root
        .resolve(slave, Create::Nothing)
        .map_err(|e| RootfsError::resolve(field, slave, e))?;
    let (dev, name) = root
        .resolve_parent(console)
        .map_err(|e| RootfsError::resolve(field, console, e))?;
    let nofollow = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
    let target = match openat2(
        dev.as_fd(),
        Path::new(&name),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
        Mode::empty(),
        nofollow,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => openat2(
            dev.as_fd(),
            Path::new(&name),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o666),
            nofollow,
        )
        .map_err(|e| RootfsError::syscall(field, "create", console, e))?,
        Err(e) => return Err(RootfsError::resolve(field, console, e)),
    };
    let st =
        fstat(target.as_raw_fd()).map_err(|e| RootfsError::syscall(field, "fstat", console, e))?;
    let on_proc = nix::sys::statfs::fstatfs(target.as_fd())
        .map(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        .map_err(|e| RootfsError::syscall(field, "statfs", console, e))?;
    let kind = file_kind(st.st_mode);
    if on_proc || !(kind == SFlag::S_IFREG || kind == SFlag::S_IFCHR) {
        return Err(RootfsError::BadDestination {
            field: field.to_string(),
            destination: console.to_path_buf(),
            reason: "is not a regular file or character device outside /proc",
        });
    }
    let fail = |e| RootfsError::mount(field, &slave.to_string_lossy(), console, e);
    let tree = clone_tree(slave_fd.as_fd(), false).map_err(fail)?;
    move_mount(tree.as_fd(), target.as_fd()).map_err(fail)
}

/// `tmpcopyup`: mount the tmpfs over the destination, then copy what the directory held into
/// it, reading the covered directory through a descriptor opened before the mount.
pub fn tmpfs_copy_up(root: &Root, e: &Entry, data: &str) -> Result<(), RootfsError> {
    let below = root
        .resolve(&e.destination, Create::Nothing)
        .map_err(|err| RootfsError::resolve(&e.field, &e.destination, err))?;
    let source = e
        .source
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tmpfs".into());
    let mut flags = e.options.flags;
    flags.remove(MsFlags::MS_RDONLY);
    let data = (!data.is_empty()).then_some(data);
    mount(
        Some(source.as_str()),
        &proc_fd_path(below.as_fd()),
        Some("tmpfs"),
        flags,
        data,
    )
    .map_err(|err| RootfsError::mount(&e.field, &source, &e.destination, err))?;
    let above = root
        .resolve(&e.destination, Create::Nothing)
        .map_err(|err| RootfsError::resolve(&e.field, &e.destination, err))?;
    copy_tree(&proc_fd_path(below.as_fd()), &proc_fd_path(above.as_fd())).map_err(|err| {
        RootfsError::syscall(&e.field, "tmpcopyup copy", &e.destination, errno(err))
    })?;
    for flag in &e.options.propagation {
        mount(NONE, &proc_fd_path(above.as_fd()), NONE, *flag, NONE)
            .map_err(|err| RootfsError::mount(&e.field, "propagation", &e.destination, err))?;
    }
    Ok(())
}

/// Copies a directory's content (files, directories, symlinks as links, special files) with
/// owners and modes; never follows a symlink.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src: PathBuf = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            use std::os::unix::fs::OpenOptionsExt;
            let mut input = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&src)?;
            let mut output = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)?;
            io::copy(&mut input, &mut output)?;
        } else {
            let kind = file_kind(meta.mode());
            nix::sys::stat::mknod(
                &dst,
                kind,
                Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )
            .map_err(io::Error::from)?;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}
