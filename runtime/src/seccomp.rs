//! seccomp: compile `linux.seccomp` to a BPF program in the parent, load it in the child.
//!
//! INTERFACE CONTRACT (used by `container.rs` and `init.rs`; keep these signatures):
//! * [`compile`] runs in the parent, before the child is cloned: it validates the profile
//!   (naming the bad field: unknown syscall, action, arch, operator, flag) and produces a
//!   [`Program`] (raw BPF instructions + seccomp(2) flags). No allocation-heavy work is left for
//!   the child.
//! * [`Program::load`] runs in the child as the last step before exec (init.rs orders it); it
//!   calls seccomp(2) through `sys::seccomp` and returns the notify listener fd when the profile
//!   uses `SCMP_ACT_NOTIFY`.
//! * [`send_listener_fd`] runs in the parent: sends the notify fd to `listenerPath` with the
//!   container state JSON, as runc does.

use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: (filled in by the owner of this module)")]
    Placeholder,
}

/// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Debug, Clone)]
pub struct Program {
    pub filter: Vec<libc::sock_filter>,
    pub flags: u32,
    pub uses_notify: bool,
    /// `listenerPath` and `listenerMetadata` from the profile (when notify is used).
    pub listener_path: Option<std::path::PathBuf>,
    pub listener_metadata: Option<String>,
}

pub fn compile(_profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    todo!("seccomp owner")
}

impl Program {
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        todo!("seccomp owner")
    }
}

/// `state_json` is the container's OCI state (runc sends `specs.ContainerProcessState`:
/// `{ociVersion, fds:["seccompFd"], pid, metadata, state}`).
pub fn send_listener_fd(
    _program: &Program,
    _fd: &OwnedFd,
    _pid: i32,
    _state_json: &serde_json::Value,
) -> Result<(), SeccompError> {
    todo!("seccomp owner")
}
