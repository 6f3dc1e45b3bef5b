//! Task processes as explicit state machines.
//!
//! The init process (the container) and exec processes are separate types: only
//! the init owns a bundle and rootfs, only an exec owns a process spec. Both share
//! [`Lifecycle`], the `created → running ⇄ paused → stopped` machine whose illegal
//! transitions are typed errors, and whose exit is fanned out to every `Wait`
//! caller through a condition variable.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::error::ShimError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// How a process ended: exit code (128+N for a signal) and when the shim reaped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: u32,
    pub at: SystemTime,
}

#[derive(Debug)]
struct State {
    status: Status,
    pid: u32,
    exit: Option<Exit>,
}

/// The state machine shared by init and exec processes.
#[derive(Debug)]
pub struct Lifecycle {
    exec_id: String,
    state: Mutex<State>,
    exited: Condvar,
}

impl Lifecycle {
    pub fn new(exec_id: &str) -> Self {
        Lifecycle {
            exec_id: exec_id.to_string(),
            state: Mutex::new(State {
                status: Status::Created,
                pid: 0,
                exit: None,
            }),
            exited: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bad(&self, action: &'static str, status: Status) -> ShimError {
        ShimError::BadState {
            action,
            exec_id: self.exec_id.clone(),
            status,
        }
    }

    pub fn status(&self) -> Status {
        self.lock().status
    }
    pub fn pid(&self) -> u32 {
        self.lock().pid
    }
    pub fn exit(&self) -> Option<Exit> {
        self.lock().exit
    }

    /// The engine created the process: record its pid (still `created`).
    pub fn set_pid(&self, pid: u32) {
        self.lock().pid = pid;
    }

    /// Checks that `start` is legal now (created).
    pub fn check_start(&self) -> Result<(), ShimError> {
        match self.status() {
            Status::Created => Ok(()),
            s => Err(self.bad("start", s)),
        }
    }

    /// created → running. An exit that raced the start keeps the process stopped.
    pub fn started(&self) {
        let mut st = self.lock();
        if st.status == Status::Created {
            st.status = Status::Running;
        }
    }

    pub fn pause(&self) -> Result<(), ShimError> {
        let mut st = self.lock();
        match st.status {
            Status::Running => {
                st.status = Status::Paused;
                Ok(())
            }
            s => Err(self.bad("pause", s)),
        }
    }

    pub fn check_pause(&self) -> Result<(), ShimError> {
        match self.status() {
            Status::Running => Ok(()),
            s => Err(self.bad("pause", s)),
        }
    }

    pub fn check_resume(&self) -> Result<(), ShimError> {
        match self.status() {
            Status::Paused => Ok(()),
            s => Err(self.bad("resume", s)),
        }
    }

    pub fn resume(&self) -> Result<(), ShimError> {
        let mut st = self.lock();
        match st.status {
            Status::Paused => {
                st.status = Status::Running;
                Ok(())
            }
            s => Err(self.bad("resume", s)),
        }
    }

    /// Delete is legal for a process that never started or has exited.
    pub fn check_delete(&self) -> Result<(), ShimError> {
        match self.status() {
            Status::Created | Status::Stopped => Ok(()),
            s => Err(self.bad("delete", s)),
        }
    }

    /// Any state → stopped, once. Returns false if the exit was already recorded.
    pub fn exited(&self, code: u32, at: SystemTime) -> bool {
        let mut st = self.lock();
        if st.exit.is_some() {
            return false;
        }
        st.status = Status::Stopped;
        st.exit = Some(Exit { code, at });
        self.exited.notify_all();
        true
    }

    /// Blocks until the process has exited; every caller gets the same exit.
    pub fn wait(&self) -> Exit {
        let mut st = self.lock();
        loop {
            if let Some(exit) = st.exit {
                return exit;
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Paths of the FIFOs containerd gave for a process (any may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What the shim keeps of a process's running I/O.
#[derive(Default)]
pub struct IoHandles {
    /// Writer end of the container's stdin; dropping it is the EOF CloseIO sends.
    pub stdin: Arc<Mutex<Option<File>>>,
    /// The pty master, when the process has a terminal (for ResizePty).
    pub console: Option<File>,
    /// Copy threads for stdout/stderr; joined before the exit event goes out.
    pub copiers: Vec<JoinHandle<()>>,
}

/// The container's own process.
pub struct InitProcess {
    pub id: String,
    pub bundle: PathBuf,
    pub stdio: StdioPaths,
    pub life: Lifecycle,
    pub io: Mutex<IoHandles>,
    /// Whether the shim mounted the rootfs (and so must unmount it on delete).
    pub mounted_rootfs: bool,
}

/// A process added with `ctr task exec`.
pub struct ExecProcess {
    pub exec_id: String,
    pub spec: Vec<u8>,
    pub stdio: StdioPaths,
    pub life: Lifecycle,
    pub io: Mutex<IoHandles>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_of_a_created_process_is_refused_with_its_state() {
        let l = Lifecycle::new("");
        let err = l.pause().unwrap_err().to_string();
        assert!(
            err.contains("cannot pause") && err.contains("created"),
            "{err}"
        );
    }

    #[test]
    fn exit_is_recorded_once_and_wins_over_a_late_start() {
        let l = Lifecycle::new("e1");
        assert!(l.exited(7, SystemTime::now()));
        assert!(!l.exited(9, SystemTime::now()));
        l.started();
        assert_eq!(l.status(), Status::Stopped);
        assert_eq!(l.exit().map(|e| e.code), Some(7));
    }

    #[test]
    fn running_process_cannot_be_deleted_but_stopped_can() {
        let l = Lifecycle::new("");
        l.started();
        assert!(l.check_delete().is_err());
        l.exited(0, SystemTime::now());
        assert!(l.check_delete().is_ok());
    }

    #[test]
    fn every_waiter_sees_the_same_exit() {
        let l = Arc::new(Lifecycle::new(""));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.wait().code)
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        l.exited(137, SystemTime::now());
        for w in waiters {
            assert_eq!(w.join().unwrap(), 137);
        }
    }
}
