//! Test helpers for driving an OCI runtime binary (husk, or runc for validation)
//! on real bundles built from Debian's static busybox.
//!
//! The runtime binary is chosen by `HUSK_BIN`; see [`runtime::runtime_binary`].
//! Every container a test makes lives in a [`runtime::Container`] guard whose
//! `Drop` deletes it and removes its cgroups under the test-owned `/husk-test`
//! parent, so a panicking test still cleans up after itself.

pub mod bundle;
pub mod console;
pub mod host;
pub mod runtime;

pub use bundle::{cap_mask, Bundle};
pub use console::ConsoleSocket;
pub use runtime::{unique_id, Container, Output, Runtime};
