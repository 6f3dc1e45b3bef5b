//! The serving process (containerd's `-socket` invocation), without
//! containerd-shim's bootstrap.
//!
//! An idle shim's threads cost ~8 KiB each (stack and TLS pages), and the
//! bootstrap serves with ttrpc's default pool (three workers per connection,
//! one of them held by containerd's blocking `Wait`), runs its own SIGCHLD thread
//! and opens a publisher connection this shim never uses. This runs the same
//! steps (subreaper, logger, listener, server, wait, shutdown) with fewer idle
//! workers per connection and reaping on the reaper's thread. `start` and
//! `delete` still go through `containerd_shim::run`.

use std::os::fd::IntoRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::util::write_address;
use containerd_shim::{Config, Flags, Shim};
use containerd_shim_protos::shim::shim_ttrpc::create_task;
use containerd_shim_protos::ttrpc::Server;

use crate::shim::HuskShim;

/// ttrpc workers per connection: two at first; when fewer than one is idle
/// (containerd's `Wait` holds one for the life of the task) ttrpc starts two
/// more, so calls still run concurrently; above three idle ones a worker exits.
/// ttrpc's defaults are 3, 1 and 5; it requires min < default < max.
const WORKERS: usize = 2;
const MIN_IDLE_WORKERS: usize = 1;
const MAX_IDLE_WORKERS: usize = 3;

/// What failed while bringing the server up.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Flags(&'static str),
    #[error("become a child subreaper: {0}")]
    Subreaper(nix::Error),
    #[error("set up the log FIFO: {0}")]
    Logger(containerd_shim::Error),
    #[error("listen on {path}: {source}")]
    Listen {
        path: String,
        source: std::io::Error,
    },
    #[error("write the address file: {0}")]
    Address(containerd_shim::Error),
    #[error("ttrpc server: {0}")]
    Server(containerd_shim_protos::ttrpc::Error),
    #[error("point stdout at stderr: {0}")]
    Stdout(nix::Error),
}

pub fn serve(runtime_id: &str, flags: Flags) -> Result<(), ServeError> {
    if flags.namespace.is_empty() {
        return Err(ServeError::Flags("shim namespace cannot be empty"));
    }
    if flags.socket.is_empty() {
        return Err(ServeError::Flags("shim socket cannot be empty"));
    }
    if std::env::var_os("TTRPC_ADDRESS").is_none() {
        return Err(ServeError::Flags("TTRPC_ADDRESS is not set"));
    }
    nix::sys::prctl::set_child_subreaper(true).map_err(ServeError::Subreaper)?;
    let mut config = Config::default();
    let mut shim = HuskShim::new(runtime_id, &flags, &mut config);
    containerd_shim::logger::init(
        flags.debug,
        &config.default_log_level,
        &flags.namespace,
        &flags.id,
    )
    .map_err(ServeError::Logger)?;
    let task = shim.task_service();
    let Some(listener) = listen(&flags.socket)? else {
        // The group's shim already serves this address.
        server_started()?;
        return Ok(());
    };
    let mut server = Server::new()
        .add_listener(listener.into_raw_fd())
        .map_err(ServeError::Server)?
        .set_thread_count_default(WORKERS)
        .set_thread_count_min(MIN_IDLE_WORKERS)
        .set_thread_count_max(MAX_IDLE_WORKERS)
        .register_service(create_task(Arc::new(task)));
    server.start().map_err(ServeError::Server)?;
    server_started()?;
    log::info!("shim serves {}", flags.socket);
    shim.wait();
    log::info!("shutting down");
    server.shutdown();
    // Ours to remove: containerd only knows the address file in the first
    // container's bundle, which is gone when a group's shim outlives it.
    let _ = std::fs::remove_file(
        flags
            .socket
            .strip_prefix("unix://")
            .unwrap_or(&flags.socket),
    );
    Ok(())
}

/// Binds the server socket. If it is taken and answers, another process of the
/// group serves it (`Ok(None)`, after recording the address); a dead socket is
/// replaced. As containerd-shim does: up to 200 tries, 5 ms apart.
fn listen(address: &str) -> Result<Option<UnixListener>, ServeError> {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let err = |source| ServeError::Listen {
        path: path.to_string(),
        source,
    };
    if let Some(parent) = Path::new(path).parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match UnixListener::bind(path) {
        Ok(l) => return Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(err(e)),
    }
    for _ in 0..200 {
        if UnixStream::connect(path).is_ok() {
            write_address(address).map_err(ServeError::Address)?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map(Some).map_err(err)
}

/// containerd reads the address from the `start` process's stdout, which this
/// process inherited: pointing stdout at stderr (the log) closes that pipe and
/// tells containerd the server is up.
fn server_started() -> Result<(), ServeError> {
    nix::unistd::dup2(2, 1)
        .map(drop)
        .map_err(ServeError::Stdout)
}
