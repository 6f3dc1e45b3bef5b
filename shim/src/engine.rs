//! The narrow seam between the task service and whatever runs containers.
//!
//! The service never forks containers itself: it asks an [`Engine`] (in production
//! the husk binary, see `husk.rs`; in unit tests a fake) to create, start, signal
//! and delete them, and learns about exits from the reaper.

use std::fs::File;
use std::path::Path;

use crate::error::EngineError;

/// The stdio fds a new process gets (`None` → /dev/null).
#[derive(Default)]
pub struct ProcessIo {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub io: ProcessIo,
    pub console_socket: Option<&'a Path>,
}

pub struct ExecOpts<'a> {
    pub id: &'a str,
    pub exec_id: &'a str,
    pub bundle: &'a Path,
    /// The OCI `process` JSON containerd sent.
    pub spec: &'a [u8],
    pub io: ProcessIo,
    pub console_socket: Option<&'a Path>,
}

pub trait Engine: Send + Sync {
    /// Creates the container; returns the init's host pid (not yet started).
    fn create(&self, opts: CreateOpts<'_>) -> Result<u32, EngineError>;
    fn start(&self, id: &str) -> Result<(), EngineError>;
    /// Starts an extra process in the container; returns its host pid.
    fn exec(&self, opts: ExecOpts<'_>) -> Result<u32, EngineError>;
    fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), EngineError>;
    fn delete(&self, id: &str, force: bool) -> Result<(), EngineError>;
    fn ps(&self, id: &str) -> Result<Vec<u32>, EngineError>;
    fn pause(&self, id: &str) -> Result<(), EngineError>;
    fn resume(&self, id: &str) -> Result<(), EngineError>;
    /// Applies LinuxResources JSON.
    fn update(&self, id: &str, resources: &[u8]) -> Result<(), EngineError>;
    /// One `events --stats` sample: `{"type":"stats","id":…,"data":{…}}`.
    fn stats(&self, id: &str) -> Result<serde_json::Value, EngineError>;
    /// Calls `on_oom` whenever the container whose init is `pid` hits an OOM.
    /// Engines that cannot tell do nothing.
    fn watch_oom(&self, _id: &str, _pid: u32, _on_oom: Box<dyn Fn() + Send>) {}
}
