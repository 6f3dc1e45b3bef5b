//! File-descriptor based path resolution and the "new" mount API (`openat2`, `open_tree`,
//! `move_mount`, `mount_setattr`, `fsopen`/`fsconfig`/`fsmount`).
//!
//! The rootfs code resolves every container path to an `O_PATH` descriptor with
//! `openat2(RESOLVE_IN_ROOT)` so that a symlink in the image can never point a mount outside
//! the rootfs, and then mounts onto (or from) those descriptors. `mount(2)` itself is used
//! through nix's safe wrapper; the calls below have no nix wrapper, hence the raw syscalls.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

const EMPTY: &CStr = c"";

/// Turns a descriptor number the kernel just returned into an [`OwnedFd`].
fn owned(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: `fd` was returned by a successful syscall that creates a new descriptor; nothing
    // else in the process owns it, so handing it to OwnedFd (which will close it once) is sound.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(dir, path, how)` returning an owned descriptor; `O_CLOEXEC` is always added.
/// `mode` must be empty unless `flags` contains `O_CREAT`/`O_TMPFILE` (kernel rule).
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    mode: Mode,
    resolve: ResolveFlag,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(resolve);
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), path, how)?;
    owned(fd as libc::c_long)
}

/// `open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH[|AT_RECURSIVE])`: a detached copy of the
/// mount (tree) at `fd`, like the source side of `mount --bind` / `--rbind`.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: `fd` is a live descriptor borrowed for the duration of the call, the path is a
    // valid NUL-terminated (empty) string, and the kernel keeps neither pointer after return.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), EMPTY.as_ptr(), flags) };
    owned(ret)
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH)`: attach the detached mount `from`
/// (from [`clone_tree`] or [`fsmount_tmpfs`]) on top of the object `to` refers to.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both descriptors are live for the call, both paths are valid empty C strings the
    // kernel only reads during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            EMPTY.as_ptr(),
            to.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// Mount attributes to change with [`mount_setattr`] (`MOUNT_ATTR_*` bits, `MS_*` propagation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clear: u64,
    /// One of `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`, or 0 for "unchanged".
    pub propagation: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH[|AT_RECURSIVE], attr)` on the mount `fd` refers to.
/// Unlike a `MS_REMOUNT`, only the named bits change, so flags locked by a user namespace stay.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: MountAttr) -> Result<(), Errno> {
    let mut raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `fd` is live for the call; `raw` is a properly initialised `struct mount_attr`
    // whose size we pass, living on our stack for the whole (synchronous) call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            &mut raw as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// A fresh, detached tmpfs (`fsopen("tmpfs")` → `FSCONFIG_CMD_CREATE` → `fsmount`) with the
/// given `MOUNT_ATTR_*` flags; attach it with [`move_mount`]. Needs no path at all, so it works
/// after `pivot_root` even when the container has no `/proc`.
pub fn fsmount_tmpfs(attr_flags: u64) -> Result<OwnedFd, Errno> {
    fsmount_new(c"tmpfs", &[], attr_flags)
}

/// A fresh, detached mount of a new `fstype` superblock configured with string `options`
/// (`fsopen` → `FSCONFIG_SET_STRING`… → `FSCONFIG_CMD_CREATE` → `fsmount`), with the given
/// `MOUNT_ATTR_*` flags. Nothing is attached anywhere: the mount lives as long as a
/// descriptor (or an executing file) refers into it.
pub fn fsmount_new(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    attr_flags: u64,
) -> Result<OwnedFd, Errno> {
    // SAFETY: the fs name is a valid NUL-terminated string only read during the call.
    let fs =
        owned(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    for (key, value) in options {
        // SAFETY: `fs` is a live fs-context descriptor; key and value are NUL-terminated
        // strings read during the call; FSCONFIG_SET_STRING takes aux = 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        Errno::result(ret)?;
    }
    // SAFETY: `fs` is a live fs-context descriptor; FSCONFIG_CMD_CREATE takes no key, value or
    // aux argument, so NULL/0 are the documented values.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret)?;
    // SAFETY: `fs` is a live fs-context descriptor in the "created" state; flags are plain ints.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr_flags,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn openat2_in_root_keeps_absolute_symlinks_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/marker"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let fd = openat2(
            root.as_fd(),
            Path::new("link/marker"),
            OFlag::O_RDONLY,
            Mode::empty(),
            ResolveFlag::RESOLVE_IN_ROOT,
        )
        .unwrap();
        let content = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(content, "inside");
    }
}
