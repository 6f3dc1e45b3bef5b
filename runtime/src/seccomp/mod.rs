//! seccomp: compile `linux.seccomp` to a BPF program in the parent, load it in the child.
//!
//! A seccomp filter is a classic-BPF program the kernel runs on every syscall of the container;
//! its return value allows the call, fails it with an errno, kills, traps, or hands it to a
//! userspace agent (`SCMP_ACT_NOTIFY`). We follow runc (`libcontainer/seccomp`):
//!
//! * [`compile`] / [`compile_json`] run in the parent, before the child is cloned. They validate
//!   the profile, naming the bad JSON field (unknown action, operator, architecture or flag),
//!   build a libseccomp filter (default action + `defaultErrnoRet`, the native architecture plus
//!   the listed ones, one rule per syscall name), export it as BPF and prepend runc's -ENOSYS
//!   stub (see `enosys`). Syscall names libseccomp does not know are skipped, as are rules whose
//!   action equals the default action, exactly like runc.
//! * [`Program::load`] runs in the child (init.rs orders it): one seccomp(2) call, no
//!   allocation. The kernel requires no_new_privs **or** `CAP_SYS_ADMIN` in the child's user
//!   namespace (else `EACCES`); load does not set no_new_privs itself (init does that when
//!   `process.noNewPrivileges` asks). Hence runc's two timings: with noNewPrivileges, load as
//!   late as possible, right before exec; without it, load *before* capabilities are dropped
//!   and the user switched. It returns the notify listener when the profile uses
//!   `SCMP_ACT_NOTIFY` (the program then carries `SECCOMP_FILTER_FLAG_NEW_LISTENER`).
//!   The listener is close-on-exec: init must hand it to the parent before exec; the parent can
//!   copy it with [`crate::sys::seccomp::fetch_listener_fd`] (pidfd_getfd, as runc does).
//! * [`send_listener_fd`] runs in the parent: sends the listener to `listenerPath` with runc's
//!   `ContainerProcessState` JSON.
//!
//! The exported program is cached per profile (`cache`): libseccomp needs 10–20 ms for Docker's
//! default profile, every time.
//!
//! Flags: `SECCOMP_FILTER_FLAG_LOG`, `_SPEC_ALLOW` and `_WAIT_KILLABLE_RECV` (the latter needs a
//! notify rule) are passed to seccomp(2); `SECCOMP_FILTER_FLAG_TSYNC` is accepted and ignored as
//! runc does. Other names are errors.

mod cache;
mod enosys;
mod filter;
mod listener;
mod profile;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::LinuxSeccomp;

use crate::sys::seccomp as sys;

pub use listener::{process_state, SECCOMP_FD_NAME};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: invalid profile")]
    Json(#[source] serde_json::Error),
    #[error("{field}: unknown action {value:?}")]
    UnknownAction { field: String, value: String },
    #[error("{field}: unknown architecture {value:?}")]
    UnknownArch { field: String, value: String },
    #[error("{field}: unknown operator {value:?}")]
    UnknownOperator { field: String, value: String },
    #[error("{field}: unknown flag {value:?}")]
    UnknownFlag { field: String, value: String },
    #[error("{field}: {value} does not fit in the 16 bits seccomp returns")]
    ErrnoRetRange { field: String, value: u32 },
    #[error("{field}: argument index {index} is out of range (syscalls take at most 6)")]
    ArgIndex { field: String, index: usize },
    #[error("{field}: empty syscall name")]
    EmptyName { field: String },
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite { field: String },
    #[error("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY")]
    MissingListenerPath,
    #[error("{field}: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule")]
    WaitKillableWithoutNotify { field: String },
    #[error("{field}: libseccomp failed {step}")]
    Libseccomp {
        field: String,
        step: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: exporting the BPF program: {step}")]
    Export {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("linux.seccomp: libseccomp exported {len} bytes, not whole BPF instructions")]
    Truncated { len: usize },
    #[error("linux.seccomp: building the -ENOSYS stub: {reason}")]
    EnosysStub { reason: &'static str },
    #[error("linux.seccomp: the filter has {len} BPF instructions, the kernel accepts {max}")]
    TooLong { len: usize, max: usize },
    #[error("loading the filter: seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x})")]
    Load {
        flags: u32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("encoding the container process state for the seccomp agent at {path:?}")]
    StateJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("connecting to the seccomp agent at linux.seccomp.listenerPath {path:?}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sending the seccomp listener fd to the agent at {path:?}")]
    Send {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("sending the seccomp listener fd to {path:?}: only {sent} of {len} bytes sent")]
    ShortSend {
        path: PathBuf,
        sent: usize,
        len: usize,
    },
}

/// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Debug, Clone)]
pub struct Program {
    /// The -ENOSYS stub followed by libseccomp's program.
    pub filter: Vec<libc::sock_filter>,
    /// seccomp(2) flags, `SECCOMP_FILTER_FLAG_NEW_LISTENER` included when `uses_notify`.
    pub flags: u32,
    pub uses_notify: bool,
    /// `listenerPath` and `listenerMetadata` from the profile (when notify is used).
    pub listener_path: Option<std::path::PathBuf>,
    pub listener_metadata: Option<String>,
}

/// Compiles the typed `linux.seccomp` (see [`compile_json`] for the JSON form).
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    compile_json(&serde_json::to_value(profile).map_err(SeccompError::Json)?)
}

/// Compiles `linux.seccomp` given as JSON. Use this on the raw config.json value to report an
/// unknown action/operator/architecture/flag with its field (oci-spec's typed parse rejects
/// those with a generic serde message) and to accept names oci-spec 0.8 lacks
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, `SCMP_ARCH_PARISC*`).
pub fn compile_json(linux_seccomp: &serde_json::Value) -> Result<Program, SeccompError> {
    let profile = profile::Profile::from_json(linux_seccomp)?;
    let program = cache::get_or_compile(linux_seccomp, || {
        let ctx = filter::build(&profile)?;
        let mut program = enosys::stub(&profile)?;
        program.extend(filter::export(&ctx)?);
        Ok::<_, SeccompError>(program)
    })?;
    if program.len() > sys::MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong {
            len: program.len(),
            max: sys::MAX_INSTRUCTIONS,
        });
    }
    let mut flags = profile.flags;
    if profile.uses_notify {
        flags |= sys::FLAG_NEW_LISTENER;
    }
    Ok(Program {
        filter: program,
        flags,
        uses_notify: profile.uses_notify,
        listener_path: profile.listener_path,
        listener_metadata: profile.listener_metadata,
    })
}

impl Program {
    /// Installs the filter on the calling thread. Requires no_new_privs or `CAP_SYS_ADMIN`
    /// (see the module docs for when init should call it). Returns the close-on-exec notify listener when the
    /// profile uses `SCMP_ACT_NOTIFY`. Does not allocate.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let flags = if self.uses_notify {
            self.flags | sys::FLAG_NEW_LISTENER
        } else {
            self.flags
        };
        sys::set_mode_filter(flags, &self.filter)
            .map_err(|source| SeccompError::Load { flags, source })
    }
}

/// `state_json` is the container's OCI state (runc sends `specs.ContainerProcessState`:
/// `{ociVersion, fds:["seccompFd"], pid, metadata, state}`).
pub fn send_listener_fd(
    program: &Program,
    fd: &OwnedFd,
    pid: i32,
    state_json: &serde_json::Value,
) -> Result<(), SeccompError> {
    listener::send(program, fd, pid, state_json)
}
