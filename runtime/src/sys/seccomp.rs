//! seccomp(2) and the pidfd calls used to hand a seccomp notify listener to the parent.
//!
//! `seccomp::Program::load` calls [`set_mode_filter`] in the container's init process right
//! before exec; the parent can then copy the notify listener out of the child with
//! [`fetch_listener_fd`] (pidfd_open + pidfd_getfd, as runc does since 1.1).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `SECCOMP_FILTER_FLAG_LOG`: log every action but `SECCOMP_RET_ALLOW` (Linux 4.14).
pub const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep speculative store bypass enabled (Linux 4.17).
pub const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a notify listener fd (Linux 5.0).
pub const FLAG_NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: once the listener received a notification, only
/// fatal signals interrupt the waiting syscall (Linux 5.19; needs `NEW_LISTENER`).
pub const FLAG_WAIT_KILLABLE_RECV: u32 = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;

/// The kernel refuses longer programs (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Installs `filter` on the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER, flags, ..)`.
///
/// The caller must have set no_new_privs or hold `CAP_SYS_ADMIN` (else `EACCES`). Returns the
/// notify listener (close-on-exec, as the kernel creates it) when `flags` holds
/// [`FLAG_NEW_LISTENER`]. Does not allocate: safe to call between fork and exec.
pub fn set_mode_filter(flags: u32, filter: &[libc::sock_filter]) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(filter.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (it copies the program in).
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` valid, initialised sock_filter entries borrowed from
    // `filter`, which outlives the call; seccomp(2) copies the program and keeps no reference.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a new file
    // descriptor that nobody else owns yet; we take sole ownership of it here.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Duplicates file descriptor `fd` of process `pid` into this process (pidfd_open(2) +
/// pidfd_getfd(2), Linux 5.6). Needs ptrace access to `pid` (`PTRACE_MODE_ATTACH_REALCREDS`).
/// This is how runc's parent picks up the notify listener its init created.
pub fn fetch_listener_fd(pid: i32, fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new fd or -1.
    let pidfd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let pidfd = RawFd::try_from(pidfd).map_err(|_| Errno::EBADF)?;
    // SAFETY: pidfd_open succeeded, so `pidfd` is a fresh descriptor owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&pidfd);
    // SAFETY: pidfd_getfd takes two fds and flags by value and returns a new fd or -1.
    let dup = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_getfd, raw, fd, 0) })?;
    let dup = RawFd::try_from(dup).map_err(|_| Errno::EBADF)?;
    // SAFETY: pidfd_getfd succeeded, so `dup` is a fresh descriptor (O_CLOEXEC) owned by nobody
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}
