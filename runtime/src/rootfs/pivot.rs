//! Switching `/` to the rootfs: `pivot_root(".", ".")` (runc's `pivotRoot`, an LXC trick that
//! needs no put_old directory) or, with `--no-pivot`, `MS_MOVE` + `chroot` (`msMoveRoot`).

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::propagation::read_mountinfo;
use super::RootfsError;

const NONE: Option<&str> = None;
const FIELD: &str = "pivot_root";

fn open_dir(path: &Path) -> Result<std::fs::File, RootfsError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            RootfsError::syscall(
                FIELD,
                "open",
                path,
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })
}

/// After `pivot_root(".", ".")` the old root is stacked on top of the new one and is our cwd;
/// it is made rslave (so the unmount can't propagate to the host) and lazily unmounted.
pub fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let old = open_dir(Path::new("/"))?;
    let new = open_dir(rootfs)?;
    nix::unistd::fchdir(new.as_raw_fd())
        .map_err(|e| RootfsError::syscall(FIELD, "fchdir", rootfs, e))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| RootfsError::syscall(FIELD, "pivot_root", rootfs, e))?;
    // The kernel gives no guarantee what "." is now: go to the old root explicitly.
    nix::unistd::fchdir(old.as_raw_fd())
        .map_err(|e| RootfsError::syscall(FIELD, "fchdir", Path::new("old root"), e))?;
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .map_err(|e| RootfsError::mount(FIELD, "rslave", Path::new("old root"), e))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| RootfsError::syscall(FIELD, "umount", Path::new("old root"), e))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::syscall(FIELD, "chdir", Path::new("/"), e))
}

/// `--no-pivot`: every full procfs/sysfs mount outside the rootfs is detached (or covered by
/// a tmpfs when that is not permitted), because after a mere chroot they would still be
/// reachable and would let the container mount fresh proc/sys instances; then the rootfs is
/// moved onto `/` and we chroot into it.
pub fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let field = "--no-pivot";
    for info in read_mountinfo(Path::new("/proc"))? {
        let full_pseudo =
            info.root == Path::new("/") && (info.fs_type == "proc" || info.fs_type == "sysfs");
        if !full_pseudo || info.mount_point.starts_with(&rootfs) {
            continue;
        }
        let p = &info.mount_point;
        match mount(NONE, p, NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE) {
            Ok(()) => {}
            // A parent was already detached: nothing left to hide.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(RootfsError::mount(field, "rslave", p, e)),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::empty(), NONE)
                    .map_err(|e| RootfsError::mount(field, "tmpfs", p, e))?
            }
            Err(e) => return Err(RootfsError::syscall(field, "umount", p, e)),
        }
    }
    nix::unistd::chdir(&rootfs).map_err(|e| RootfsError::syscall(field, "chdir", &rootfs, e))?;
    mount(Some(&rootfs), "/", NONE, MsFlags::MS_MOVE, NONE)
        .map_err(|e| RootfsError::mount(field, &rootfs.to_string_lossy(), Path::new("/"), e))?;
    nix::unistd::chroot(".").map_err(|e| RootfsError::syscall(field, "chroot", &rootfs, e))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::syscall(field, "chdir", Path::new("/"), e))
}
