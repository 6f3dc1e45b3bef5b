//! Child reaping: every exit is collected once and routed to one owner.
//!
//! The shim is a child subreaper (PR_SET_CHILD_SUBREAPER, set by containerd-shim's
//! bootstrap), whose SIGCHLD thread calls `waitpid(-1)` and publishes each exit on
//! the crate's monitor. Nothing may therefore call `wait()` on a `Command` child:
//! the reaper may have taken its status first. Instead [`Reaper::spawn`] registers
//! the pid under the same lock the dispatch thread takes, so the exit of a husk
//! invocation always reaches its caller; every other exit (container inits, exec
//! processes, reparented orphans) goes to the sink the task service installs.
//!
//! The serving process has no containerd-shim bootstrap (see serve.rs): there
//! [`Reaper::start_on_sigchld`] reaps on its own thread, woken by SIGCHLD, with
//! the same `waitpid(-1)` loop, which saves the bootstrap's signal thread.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::iterator::Signals;

type Sink = Box<dyn Fn(u32, u32) + Send + Sync>;

#[derive(Default)]
struct Inner {
    waiting: HashMap<i32, Sender<u32>>,
}

pub struct Reaper {
    inner: Mutex<Inner>,
    sink: OnceLock<Sink>,
}

impl Reaper {
    /// Subscribes to every exit containerd-shim's bootstrap reaps (the `delete`
    /// action) and starts the dispatch thread.
    pub fn start() -> std::io::Result<Arc<Reaper>> {
        let sub = monitor_subscribe(Topic::All)
            .map_err(|e| std::io::Error::other(format!("subscribe to exits: {e}")))?;
        Reaper::with_thread(move |r| {
            // Keep the subscription alive for the life of the thread.
            let sub = sub;
            while let Ok(ev) = sub.rx.recv() {
                if let Subject::Pid(pid) = ev.subject {
                    r.dispatch(pid, ev.exit_code);
                }
            }
        })
    }

    /// Reaps every child itself: a thread woken by SIGCHLD collects all exited
    /// children (`waitpid(-1, WNOHANG)` until none is left) and dispatches them.
    /// Nothing else in the process may reap.
    pub fn start_on_sigchld() -> std::io::Result<Arc<Reaper>> {
        let mut signals = Signals::new([libc::SIGCHLD])?;
        Reaper::with_thread(move |r| {
            for _ in signals.forever() {
                r.reap_all();
            }
        })
    }

    /// A reaper whose exits come from `feed`, run on a thread named "reaper".
    fn with_thread(feed: impl FnOnce(&Reaper) + Send + 'static) -> std::io::Result<Arc<Reaper>> {
        let reaper = Arc::new(Reaper {
            inner: Mutex::new(Inner::default()),
            sink: OnceLock::new(),
        });
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || feed(&r))?;
        Ok(reaper)
    }

    fn reap_all(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.dispatch(pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.dispatch(pid.as_raw(), 128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("waitpid: {e}");
                    return;
                }
                // Stopped or continued: still a child, keep collecting.
                Ok(_) => {}
            }
        }
    }

    /// Where exits of processes nobody spawned through [`Reaper::spawn`] go.
    pub fn set_sink(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    fn dispatch(&self, pid: i32, code: i32) {
        let waiter = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiting
            .remove(&pid);
        match waiter {
            Some(tx) => {
                let _ = tx.send(code as u32);
            }
            None => {
                if let Some(sink) = self.sink.get() {
                    sink(pid as u32, code as u32);
                }
            }
        }
    }

    /// Spawns `cmd`; the receiver yields its exit code once reaped.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(Child, Receiver<u32>)> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let child = cmd.spawn()?;
        let (tx, rx) = channel();
        inner.waiting.insert(child.id() as i32, tx);
        Ok((child, rx))
    }
}
