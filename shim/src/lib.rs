//! containerd shim v2 for husk (`io.containerd.husk.v2`).
//!
//! containerd runs `containerd-shim-husk-v2`; it serves containerd's task API over
//! ttrpc and drives each container through the husk binary (see README.md).

pub mod api;
pub mod engine;
pub mod error;
pub mod events;
pub mod husk;
pub mod metrics;
pub mod mount;
pub mod oom;
pub mod options;
pub mod process;
pub mod reaper;
pub mod serve;
pub mod service;
pub mod shim;
pub mod stdio;
mod sys;
