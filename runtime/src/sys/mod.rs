//! Every `unsafe` block of the runtime lives below this module.
//!
//! Each submodule wraps one family of raw system calls behind a safe function whose
//! documentation states the invariant the caller relies on; each `unsafe` block carries a
//! `// SAFETY:` comment (enforced by `clippy::undocumented_unsafe_blocks`). Code outside `sys`
//! never writes `unsafe`.

pub mod bpf;
pub mod fd;
pub mod mount;
pub mod process;
pub mod seccomp;
