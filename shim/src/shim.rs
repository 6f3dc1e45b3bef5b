//! The shim's process lifecycle for containerd (`start`, `delete`, serve).
//!
//! containerd-shim's `run` parses the flags for `start` and `delete`; this
//! [`Shim`] says how to start a server (one per group: a pod's containers share
//! it) and how to clean up after a dead one. The server itself runs in serve.rs,
//! with the task service built here (husk engine, reaper, event publisher).

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{api::DeleteResponse, Config, Flags, Shim, StartOpts};
use serde::{Deserialize, Serialize};

use crate::api::TaskApi;
use crate::engine::Engine;
use crate::error::ShimError;
use crate::events::Publisher;
use crate::husk::{locate, HuskEngine};
use crate::options::RuntimeOptions;
use crate::reaper::Reaper;
use crate::service::{timestamp, EngineFactory, TaskService};

const GROUP_LABELS: [&str; 2] = [
    "io.kubernetes.cri.sandbox-id",
    "io.containerd.runc.v2.group",
];
/// Where the shim remembers, per bundle, which husk and root it used, so the
/// `delete` action (a fresh process) drives the same ones.
const ENGINE_FILE: &str = "husk-shim.json";

#[derive(Serialize, Deserialize)]
struct EngineRecord {
    binary: PathBuf,
    root: PathBuf,
}

pub struct HuskShim {
    id: String,
    namespace: String,
    bundle: PathBuf,
    exit: Arc<ExitTrigger>,
}

/// What ends the server: Shutdown with no container left, or SIGTERM/SIGINT.
///
/// A socket pair: both the Shutdown RPC and the signal handlers (signal-hook's
/// async-signal-safe self-pipe write) put a byte in it, and [`Shim::wait`] returns
/// once one arrives; serve.rs then stops the ttrpc server. (containerd-shim's
/// bootstrap only logs SIGTERM/SIGINT, whereas containerd's Go shims cancel their
/// context and exit on them.)
struct ExitTrigger {
    rx: UnixStream,
    tx: UnixStream,
}

impl ExitTrigger {
    fn new() -> std::io::Result<Self> {
        let (rx, tx) = UnixStream::pair()?;
        Ok(ExitTrigger { rx, tx })
    }

    fn on_signals(&self, signals: &[libc::c_int]) -> std::io::Result<()> {
        for &sig in signals {
            signal_hook::low_level::pipe::register(sig, self.tx.try_clone()?)?;
        }
        Ok(())
    }

    fn fire(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    fn wait(&self) {
        let mut byte = [0u8; 1];
        loop {
            match (&self.rx).read(&mut byte) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("wait for the exit trigger: {e}");
                    return;
                }
            }
        }
    }
}

struct HuskFactory {
    reaper: Arc<Reaper>,
    namespace: String,
}

fn default_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/husk").join(namespace)
}

impl EngineFactory for HuskFactory {
    fn engine(&self, bundle: &Path, opts: &RuntimeOptions) -> Result<Arc<dyn Engine>, ShimError> {
        let binary = locate(&opts.binary_name).ok_or_else(|| {
            ShimError::Options(if opts.binary_name.is_empty() {
                "husk binary not found next to the shim or on PATH".to_string()
            } else {
                format!("BinaryName {:?} not found", opts.binary_name)
            })
        })?;
        let root = if opts.root.is_empty() {
            default_root(&self.namespace)
        } else {
            Path::new(&opts.root).join(&self.namespace)
        };
        let record = serde_json::to_vec(&EngineRecord {
            binary: binary.clone(),
            root: root.clone(),
        })
        .map_err(|e| ShimError::Options(e.to_string()))?;
        let _ = std::fs::write(bundle.join(ENGINE_FILE), record);
        Ok(Arc::new(HuskEngine {
            binary,
            root,
            bundle: bundle.to_path_buf(),
            reaper: self.reaper.clone(),
            no_new_keyring: opts.no_new_keyring,
        }))
    }
}

/// The group this container's shim serves: a pod's sandbox id, or its own id.
fn grouping(bundle: &Path, id: &str) -> String {
    let spec: Option<serde_json::Value> = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    spec.as_ref()
        .and_then(|s| {
            GROUP_LABELS
                .iter()
                .find_map(|l| s["annotations"][l].as_str())
        })
        .filter(|g| !g.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// The pid of the process listening on a `unix://` ttrpc address.
fn server_pid(address: &str) -> Option<i32> {
    let stream =
        std::os::unix::net::UnixStream::connect(address.trim_start_matches("unix://")).ok()?;
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(cred.pid())
}

impl Shim for HuskShim {
    type T = TaskApi;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        let bundle = if args.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&args.bundle)
        };
        let exit = match ExitTrigger::new() {
            Ok(e) => Arc::new(e),
            Err(e) => {
                eprintln!("containerd-shim-husk-v2: socketpair for the exit trigger: {e}");
                std::process::exit(1);
            }
        };
        HuskShim {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle,
            exit,
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(&self.bundle, &opts.id);
        // One malloc arena: the server's threads mostly sleep, and a per-thread
        // arena is the largest part of an idle shim's private memory.
        let (_pid, address) =
            containerd_shim::spawn(opts, &group, vec![("MALLOC_ARENA_MAX", "1")])?;
        // Like the runc shim: the server's pid beside `address`, for operators and
        // tests. Asked from the socket (SO_PEERCRED), since the process just spawned
        // exits at once when the group's shim already serves this address.
        if let Some(pid) = server_pid(&address) {
            let _ = std::fs::write(self.bundle.join("shim.pid"), pid.to_string());
        }
        write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let record: Option<EngineRecord> = std::fs::read(self.bundle.join(ENGINE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (binary, root) = match record {
            Some(r) => (Some(r.binary), r.root),
            None => (locate(""), default_root(&self.namespace)),
        };
        if let Some(binary) = binary {
            let reaper =
                Reaper::start().map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
            let engine = HuskEngine {
                binary,
                root,
                bundle: self.bundle.clone(),
                reaper,
                no_new_keyring: false,
            };
            if let Err(e) = engine.delete(&self.id, true) {
                log::warn!("husk delete --force {}: {e}", self.id);
            }
        }
        if let Err(e) = crate::mount::unmount_all(&self.bundle.join("rootfs")) {
            log::warn!("{e}");
        }
        // A shim that died (SIGKILL, OOM) left its socket behind: remove it so
        // nothing leaks in /run/containerd/s; a live shim of the same group still
        // answers on it and keeps it.
        if let Ok(address) = std::fs::read_to_string(self.bundle.join("address")) {
            let path = address.trim().trim_start_matches("unix://");
            let is_socket = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_socket())
                .unwrap_or(false);
            if is_socket && std::os::unix::net::UnixStream::connect(path).is_err() {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(DeleteResponse {
            pid: 0,
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: timestamp(SystemTime::now()),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskApi {
        // Not reached: main.rs serves through serve.rs, not containerd-shim's
        // bootstrap (whose own SIGCHLD thread would race the reaper's waitpid).
        drop(publisher);
        self.task_service()
    }
}

impl HuskShim {
    /// The task service of the serving process, before its server starts:
    /// SIGTERM/SIGINT handling, the reaper and the events publisher.
    pub fn task_service(&self) -> TaskApi {
        if let Err(e) = self.exit.on_signals(&[libc::SIGTERM, libc::SIGINT]) {
            log::error!("handle SIGTERM/SIGINT: {e}");
            std::process::exit(1);
        }
        let reaper = match Reaper::start_on_sigchld() {
            Ok(r) => r,
            Err(e) => {
                log::error!("start the reaper: {e}");
                std::process::exit(1);
            }
        };
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        let events = match Publisher::connect(&address, self.namespace.clone()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                log::error!("events publisher: {e}");
                std::process::exit(1);
            }
        };
        let exit = self.exit.clone();
        let service = Arc::new(TaskService::new(
            Box::new(HuskFactory {
                reaper: reaper.clone(),
                namespace: self.namespace.clone(),
            }),
            events,
            Box::new(move || exit.fire()),
        ));
        let svc = service.clone();
        reaper.set_sink(Box::new(move |pid, code| svc.on_exit(pid, code)));
        TaskApi(service)
    }
}
