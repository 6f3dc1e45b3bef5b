//! husk: a low-level OCI container runtime.
//!
//! The library does all the work; `main.rs` and `cli/` only map runc's command line onto it.
//! Modules are named after the kernel mechanism they drive; `ARCHITECTURE.md` at the repository
//! root shows how they fit together during `create`.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod container;
pub mod control;
pub mod exec;
pub mod exeseal;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod mountinfo;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sys;
pub mod tty;
