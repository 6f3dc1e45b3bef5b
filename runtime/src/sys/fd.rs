//! Taking ownership of raw fds the kernel handed us (SCM_RIGHTS, syscalls returning fds).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Wrap an fd that the kernel has just installed in our table for us alone (received with
/// SCM_RIGHTS, or returned by a syscall), so it is closed exactly once.
pub fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass only fds freshly returned by the kernel that no other object owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
