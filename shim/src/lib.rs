//! containerd shim v2 for husk (`io.containerd.husk.v2`).
//!
//! containerd runs `containerd-shim-husk-v2`; it serves containerd's task API over
//! ttrpc and drives each container through the husk binary (see README.md).

/// `mod proto` holding the code build.rs generated from a file under proto/ (`$file` is
/// its path below OUT_DIR). The allows are the inner attributes rust-protobuf puts at
/// the top of the file, which `include!` cannot take.
macro_rules! generated_proto {
    ($file:literal) => {
        #[allow(
            clippy::all,
            dead_code,
            missing_docs,
            non_camel_case_types,
            non_snake_case,
            non_upper_case_globals,
            trivial_casts,
            unused_attributes,
            unused_mut,
            unused_results
        )]
        mod proto {
            include!(concat!(env!("OUT_DIR"), $file));
        }
    };
}

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
