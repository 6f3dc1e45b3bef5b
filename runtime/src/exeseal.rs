//! CVE-2019-5736: nothing in a container may ever write to the husk binary on the host.
//!
//! `create`, `run` and `exec` put a husk process inside the container (the init until it execs
//! the user's program, the exec helper after `setns`), and a process in the container can open
//! `/proc/<that pid>/exe`. So those verbs first re-exec husk from an immutable copy of itself:
//!
//! 1. **A read-only overlayfs** (runc 1.2 does the same): a detached overlay mount whose lower
//!    layers are the binary's directory and an empty scratch directory (overlayfs wants two
//!    lower layers when it has no upper one). The binary seen there is an overlay inode on a
//!    read-only superblock, so opening it for writing fails with EROFS, always and first,
//!    whoever else executes the real file; the mount is attached nowhere, so nothing can
//!    remount it. It costs one mount, not a copy: the pages are the real binary's page cache.
//! 2. **A sealed memfd copy** when the overlay cannot be made (no overlayfs or new mount API,
//!    a binary path overlayfs cannot take, a deleted binary): correct, but the 4–5 MiB copy
//!    costs 3–10 ms per call (bench/findings.md).
//!
//! After the exec, [`sys::process::running_from_sealed_copy`] recognises either copy, so the
//! new image goes straight on with the verb.
//!
//! The overlay's superblock goes away with the last reference to it (the executable of the
//! last process running from it), and its teardown waits for an RCU grace period (~3 ms
//! here) in whichever process drops that reference: husk's own exit, or the container's
//! first `execve` at `start`. Both are on the caller's critical path, so husk hands its
//! reference to a child that outlives it by a moment ([`hand_off_teardown`]), and `start`
//! takes a reference to the init's copy first ([`share_teardown_of`]) so that the init's
//! `execve` is never the last one.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::Mode;

use crate::logging;
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum ExesealError {
    #[error(
        "re-exec husk from a sealed memfd copy of {exe:?} (CVE-2019-5736 defence): {step}: {errno}"
    )]
    Memfd {
        exe: PathBuf,
        step: &'static str,
        errno: Errno,
    },
}

/// Why the overlay copy could not be used (logged at debug level, then the memfd is tried).
#[derive(Debug, thiserror::Error)]
enum OverlayUnusable {
    #[error("{0:?} cannot be an overlayfs lower layer (':', ',', '\\\\' or '=' in the path, or not absolute)")]
    Path(PathBuf),
    #[error("{step} {path:?}: {errno}")]
    Sys {
        step: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{0:?} on the overlay is not on a read-only overlayfs")]
    NotSealed(PathBuf),
}

/// Make sure this process runs from an immutable copy of husk: return if it already does,
/// otherwise re-exec (same argv and environment) and never return unless both ways fail.
/// `scratch` is a directory where an empty directory may be made for a moment (the state
/// root).
pub fn ensure_sealed(scratch: &Path) -> Result<(), ExesealError> {
    if sys::process::running_from_sealed_copy() {
        HOLDS_OVERLAY.store(on_overlay(Path::new("/proc/self/exe")), Ordering::Relaxed);
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "/proc/self/exe".into());
    logging::phase("re-exec from a read-only overlayfs");
    match overlay_copy(&exe, scratch) {
        Ok(fd) => {
            let errno = sys::process::reexec(fd.as_fd());
            logging::debug(&format!(
                "exec of {exe:?} through a read-only overlayfs: {errno}; using a memfd"
            ));
        }
        Err(why) => logging::debug(&format!(
            "no read-only overlayfs for {exe:?}: {why}; using a memfd"
        )),
    }
    logging::phase("re-exec from sealed memfd");
    let fail = |step, errno| ExesealError::Memfd {
        exe: exe.clone(),
        step,
        errno,
    };
    let memfd = sys::process::sealed_memfd_copy().map_err(|e| fail("copy", e))?;
    Err(fail("exec", sys::process::reexec(memfd.as_fd())))
}

/// Whether this process keeps a read-only overlayfs alive (runs from one, or holds a file on one).
static HOLDS_OVERLAY: AtomicBool = AtomicBool::new(false);
/// `start`'s reference to the init's executable, kept until this process exits.
static SHARED: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn on_overlay(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

/// Before `start` lets the init exec the container's program: hold a reference to the init's
/// executable if it is a read-only overlayfs copy, so the init's `execve` does not pay for the
/// overlay's teardown (this process hands it off at exit instead).
pub fn share_teardown_of(pid: i32) {
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    if !on_overlay(&exe) {
        return;
    }
    if let Ok(fd) = nix::fcntl::open(&exe, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        *SHARED.lock().unwrap_or_else(|e| e.into_inner()) = Some(sys::fd::own(fd));
        HOLDS_OVERLAY.store(true, Ordering::Relaxed);
    }
}

/// Right before this process exits: if it keeps a read-only overlayfs alive, fork a child that
/// inherits those references and exits only after this process is gone (EOF on a pipe, which
/// the kernel closes after it released our memory and with it our executable), so the
/// overlay's teardown runs in that child and not in our exit, which the caller waits for.
/// The child keeps no other descriptor open (but `start`'s reference, see
/// [`share_teardown_of`]).
pub fn hand_off_teardown() {
    if !HOLDS_OVERLAY.load(Ordering::Relaxed) {
        return;
    }
    let Ok((read, write)) = nix::unistd::pipe() else {
        return;
    };
    match sys::process::fork() {
        Ok(sys::process::Forked::Child) => {
            drop(write);
            let mut keep = vec![read.as_raw_fd()];
            if let Some(fd) = SHARED.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                keep.push(fd.as_raw_fd());
            }
            let _ = sys::process::close_all_but(&keep);
            let _ = nix::unistd::read(read.as_raw_fd(), &mut [0u8; 1]);
            sys::process::exit_now(0)
        }
        // The write end stays open until our exit.
        Ok(sys::process::Forked::Parent { .. }) => std::mem::forget(write),
        Err(_) => {}
    }
}

/// An `O_PATH` descriptor of `exe` seen through a fresh, detached, read-only overlayfs.
fn overlay_copy(exe: &Path, scratch: &Path) -> Result<OwnedFd, OverlayUnusable> {
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(OverlayUnusable::Path(exe.to_path_buf()));
    };
    let empty = scratch.join(format!(".exeseal-{}", std::process::id()));
    let lower = format!("{}:{}", layer(dir)?, layer(&empty)?);
    let sys_err = |step, path: &Path| {
        let path = path.to_path_buf();
        move |errno| OverlayUnusable::Sys { step, path, errno }
    };
    // A directory of this name can only be left by a killed husk whose pid we now have.
    let _ = std::fs::remove_dir(&empty);
    std::fs::create_dir(&empty).map_err(|e| {
        sys_err("create empty layer", &empty)(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    })?;
    let lower = CString::new(lower).map_err(|_| OverlayUnusable::Path(dir.to_path_buf()))?;
    let mounted = sys::mount::fsmount_new(
        c"overlay",
        &[
            (c"lowerdir", &lower),
            // Not wanted here, and each would otherwise depend on the host's defaults (xino
            // logs warnings when the layers are on different filesystems).
            (c"xino", c"off"),
            (c"redirect_dir", c"off"),
            (c"metacopy", c"off"),
        ],
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
    );
    // The superblock holds its own reference to the layer: the name can go at once.
    let _ = std::fs::remove_dir(&empty);
    let mounted = mounted.map_err(sys_err("mount a read-only overlayfs of", dir))?;
    let fd = sys::mount::openat2(
        mounted.as_fd(),
        Path::new(name),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
        Mode::empty(),
        ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_BENEATH,
    )
    .map_err(sys_err("open on the overlay", exe))?;
    // Checked before the exec, so that the new image can never fail the same check and loop.
    if !sys::process::is_sealed_copy(fd.as_fd()) {
        return Err(OverlayUnusable::NotSealed(exe.to_path_buf()));
    }
    Ok(fd)
}

/// `path` as one element of overlayfs' `lowerdir=` list, which has no escaping we rely on.
fn layer(path: &Path) -> Result<&str, OverlayUnusable> {
    let bad = |c: char| matches!(c, ':' | ',' | '\\' | '=');
    match path.to_str() {
        Some(s) if path.is_absolute() && !s.contains(bad) => Ok(s),
        _ => Err(OverlayUnusable::Path(path.to_path_buf())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_paths_that_overlayfs_would_split_are_refused() {
        assert_eq!(
            layer(Path::new("/usr/local/bin")).unwrap(),
            "/usr/local/bin"
        );
        for bad in ["/a:b", "/a,b", "/a\\b", "/a=b", "relative"] {
            assert!(layer(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_overlay_copy_is_read_only_and_a_different_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("prog");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        let scratch = dir.path().join("root");
        std::fs::create_dir(&scratch).unwrap();
        let fd = overlay_copy(&exe, &scratch).expect("overlay copy (needs root and overlayfs)");
        // The scratch layer's name is gone again.
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
        let via = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ));
        assert_eq!(std::fs::read(&via).unwrap(), b"#!/bin/sh\n");
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(&via)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        assert_ne!(
            std::fs::metadata(&via).unwrap().dev(),
            std::fs::metadata(&exe).unwrap().dev()
        );
    }
}
