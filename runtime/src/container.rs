//! Container lifecycle in the parent: create, start, state, kill, delete, and `run`'s wait.
//!
//! `create` does the heavy work once — load and validate the spec, make the cgroup, compile
//! seccomp, open namespace paths, connect the console socket — then clones the init (see
//! `channel.rs` for the handshake and `init.rs` for the child's script). If any step fails,
//! [`Cleanup`] undoes what was done: the init is killed, the cgroup removed, the state
//! directory deleted. Nothing is left behind.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxNamespaceType, LinuxResources};

use crate::cgroups::{self, CgroupError, CgroupsPath, Host, Manager};
use crate::channel::{self, ChannelError, Message};
use crate::hooks::{self, HookError};
use crate::init::{self, InitContext};
use crate::namespaces::{NamespaceError, Plan};
use crate::rootfs::RootfsContext;
use crate::seccomp::{self, SeccompError};
use crate::signal::SignalNumber;
use crate::spec::{self, Bundle, SpecError};
use crate::state::{self, Locked, OciState, Record, StateError, Status, Store};
use crate::sys::process::Forked;
use crate::tty::TtyError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Capability(#[from] crate::capabilities::CapabilityError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("create exec fifo {path:?}")]
    Fifo {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("clone3 the container's {what}")]
    Clone {
        what: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("write pid file {path:?}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id:?} is {status}: {wanted}")]
    WrongStatus {
        id: String,
        status: Status,
        wanted: &'static str,
    },
    #[error("container not running")]
    NotRunning,
    #[error("exec --cgroup {0:?}: give a sub-cgroup of the container's cgroup, without \"..\"")]
    SubCgroup(PathBuf),
    #[error("invalid linux.resources update: {0}")]
    Resources(String),
    #[error("send signal {signal} to pid {pid}")]
    Kill {
        signal: i32,
        pid: i32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("container init (pid {0}) exited before start")]
    InitGone(i32),
    #[error("wait for container init (pid {pid})")]
    Wait {
        pid: i32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("process.terminal is true: `husk run` in the foreground needs --console-socket (or use --detach with one)")]
    ForegroundTerminal,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// systemd socket activation (`LISTEN_FDS` in husk's environment): that many fds from 3
    /// pass through, and the process gets `LISTEN_FDS=N LISTEN_PID=1`, as runc does.
    pub listen_fds: u32,
}

/// A created container whose init is blocked on exec.fifo.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
}

fn host() -> Host {
    Host::system()
}

/// Undo a half-made container when `create` fails (Drop runs on every early return).
struct Cleanup<'a> {
    locked: Option<Locked>,
    cgroup: Option<Box<dyn Manager>>,
    init_pid: Option<i32>,
    child_is_ours: bool,
    _store: &'a Store,
}

impl Cleanup<'_> {
    fn disarm(mut self) -> Locked {
        self.cgroup = None;
        self.init_pid = None;
        self.locked.take().expect("armed cleanup holds the lock")
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.init_pid.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            if self.child_is_ours {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            } else {
                wait_gone(pid, Duration::from_secs(5));
            }
        }
        if let Some(cg) = self.cgroup.take() {
            kill_all_in(cg.as_ref(), Signal::SIGKILL);
            let _ = cg.destroy();
        }
        if let Some(l) = self.locked.take() {
            let _ = l.remove();
        }
    }
}

/// Default device cgroup rules are appended after the spec's own, then `linux.devices`
/// (allowed rwm), as runc's specconv does.
fn resources_with_devices(b: &Bundle) -> LinuxResources {
    let linux = b.spec.linux().as_ref();
    let mut res = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules: Vec<LinuxDeviceCgroup> = res.devices().clone().unwrap_or_default();
    rules.extend(cgroups::default_device_rules());
    for d in linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]) {
        // The devices controller only knows block and char devices: a FIFO ("p") needs no
        // rule and an unbuffered char device ("u") is a char device (runc's Type.CanCgroup
        // likewise leaves FIFOs out of the cgroup rules).
        let typ = match d.typ() {
            oci_spec::runtime::LinuxDeviceType::P => continue,
            oci_spec::runtime::LinuxDeviceType::U => oci_spec::runtime::LinuxDeviceType::C,
            t => t,
        };
        let rule: Option<LinuxDeviceCgroup> = serde_json::from_value(serde_json::json!({
            "allow": true, "type": typ, "major": d.major(), "minor": d.minor(), "access": "rwm"
        }))
        .ok();
        rules.extend(rule);
    }
    res.set_devices(Some(rules));
    res
}

pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created, ContainerError> {
    crate::logging::phase("create: start");
    let mut bundle = spec::load(&opts.bundle)?;
    if opts.listen_fds > 0 {
        pass_listen_fds(&mut bundle, opts.listen_fds);
    }
    let process = bundle.spec.process().as_ref().expect("validated");
    if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(TtyError::NoSocket.into());
    }
    if !process.terminal().unwrap_or(false) && opts.console_socket.is_some() {
        return Err(TtyError::SocketWithoutTerminal.into());
    }
    crate::logging::phase("create: spec loaded");
    let locked = store.create(&opts.id)?;
    let mut cleanup = Cleanup {
        locked: Some(locked),
        cgroup: None,
        init_pid: None,
        child_is_ours: true,
        _store: store,
    };

    let host = host();
    let cg_spec = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone());
    let cg_path = CgroupsPath::resolve(&host, cg_spec.as_deref(), &opts.id)?;
    let cg = cgroups::open(&host, &cg_path)?;
    cg.create()?;
    cleanup.cgroup = Some(cg);
    let cg = cleanup.cgroup.as_deref().expect("just set");
    cg.apply(&resources_with_devices(&bundle))?;
    crate::logging::phase("create: cgroup ready");

    let seccomp = match bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    let caps = crate::capabilities::Sets::from_spec(process.capabilities().as_ref())?;
    let plan = Plan::from_bundle(&bundle)?;
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::tty::connect)
        .transpose()?;
    let fifo = make_exec_fifo(&cleanup.locked.as_ref().expect("armed").fifo_path())?;
    let cgroup_mount = if plan
        .clone_flags
        .contains(nix::sched::CloneFlags::CLONE_NEWNS)
        || bundle.has_namespace(LinuxNamespaceType::Mount)
    {
        cg.mounts_for_container().ok()
    } else {
        None
    };
    let clone_into = cg.clone_into_fd()?;
    let self_join = cg.self_join()?;
    crate::logging::phase("create: prepared");

    let (parent_end, child_end) = channel::pair()?;
    let rootfs_ctx = RootfsContext {
        spec: &bundle.spec,
        rootfs: &bundle.rootfs,
        bundle: &bundle.dir,
        in_new_userns: plan.new_userns || bundle.namespace_path(LinuxNamespaceType::User).is_some(),
        in_new_cgroupns: plan.new_cgroupns,
        cgroup_mount,
        no_pivot: opts.no_pivot,
    };
    let init_ctx = InitContext {
        id: &opts.id,
        bundle: &bundle,
        plan: &plan,
        rootfs: rootfs_ctx,
        caps: &caps,
        seccomp: seccomp.as_ref(),
        channel: &child_end,
        exec_fifo: &fifo,
        console: console.as_ref(),
        preserve_fds: opts.preserve_fds + opts.listen_fds,
        no_new_keyring: opts.no_new_keyring,
        die_with_parent: !plan.needs_intermediate(),
        cgroup: self_join.as_ref(),
    };

    let (pid, via_intermediate) = spawn_init(&init_ctx, &plan, clone_into.as_ref(), &parent_end)?;
    cleanup.init_pid = Some(pid);
    cleanup.child_is_ours = !via_intermediate;
    drop(child_end);
    drop(console);
    crate::logging::phase("create: cloned");

    let cg = cleanup.cgroup.as_deref().expect("set");
    let linux = bundle.spec.linux().as_ref();
    if plan.new_userns {
        crate::namespaces::write_id_maps(
            &host.proc_root,
            pid,
            linux
                .and_then(|l| l.uid_mappings().as_deref())
                .unwrap_or(&[]),
            linux
                .and_then(|l| l.gid_mappings().as_deref())
                .unwrap_or(&[]),
        )?;
    }
    if let Some(adj) = process.oom_score_adj() {
        crate::process::write_oom_score_adj(&host.proc_root, pid, adj)?;
    }
    if self_join.is_none() && (clone_into.is_none() || via_intermediate) {
        cg.add_process(pid)?;
    }
    parent_end.send(&Message::Go)?;

    parent_end.wait_for(Message::RunHooks)?;
    crate::logging::phase("create: rootfs mounted");
    let hooks = bundle.spec.hooks().as_ref();
    // The deprecated prestart hooks see "created", as crun passes and runtime-tools'
    // hooks_stdin checks (runtime-spec 1.0 ran them at `start`); createRuntime is "creating".
    let created = hook_state(&opts.id, &bundle, pid, "created");
    hooks::run(hooks::Kind::Prestart, hooks, &created)?;
    let creating = hook_state(&opts.id, &bundle, pid, "creating");
    hooks::run(hooks::Kind::CreateRuntime, hooks, &creating)?;
    parent_end.send(&Message::HooksDone)?;
    crate::logging::phase("create: hooks done");

    let listener = parent_end.wait_for_ready()?;
    crate::logging::phase("create: init ready");

    let (start_time, _) =
        state::process_start_time(&host.proc_root, pid).ok_or(ContainerError::InitGone(pid))?;
    let record = Record {
        id: opts.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        init_pid: pid,
        init_start_time: start_time,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        cgroup: cg_path,
        spec: bundle.spec.clone(),
    };
    if let (Some(fd), Some(program)) = (listener, seccomp.as_ref()) {
        let state = serde_json::to_value(record.oci_state(Status::Created)).unwrap_or_default();
        seccomp::send_listener_fd(program, &fd, pid, &state)?;
    }
    cleanup.locked.as_ref().expect("armed").write(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    let _locked = cleanup.disarm();
    crate::logging::phase("create: done");
    Ok(Created { pid })
}

fn pass_listen_fds(bundle: &mut Bundle, n: u32) {
    if let Some(p) = bundle.spec.process_mut().as_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
}

fn hook_state(id: &str, b: &Bundle, pid: i32, status: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": b.spec.version(),
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": b.dir,
        "annotations": b.spec.annotations().clone().unwrap_or_default(),
    }))
    .unwrap_or_default()
}

fn make_exec_fifo(path: &Path) -> Result<OwnedFd, ContainerError> {
    let err = |source| ContainerError::Fifo {
        path: path.to_path_buf(),
        source,
    };
    let old = nix::sys::stat::umask(Mode::empty());
    let made = nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622));
    nix::sys::stat::umask(old);
    made.map_err(err)?;
    // The init reaches the fifo through an O_PATH fd of its directory (openat), which works
    // after pivot_root or chroot and without a /proc in the container.
    let dir = path.parent().unwrap_or(Path::new("/"));
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    Ok(crate::sys::fd::own(fd))
}

/// Clone the init, through an intermediate when namespaces are joined by path.
fn spawn_init(
    ctx: &InitContext<'_>,
    plan: &Plan,
    clone_into: Option<&OwnedFd>,
    parent_end: &channel::Endpoint,
) -> Result<(i32, bool), ContainerError> {
    let flags = plan.clone_flags.bits() as u64;
    if !plan.needs_intermediate() {
        return match crate::sys::process::clone3(flags, clone_into.map(|f| f.as_fd())) {
            Ok(Forked::Child) => init::run(ctx),
            Ok(Forked::Parent { child }) => Ok((child, false)),
            Err(source) => Err(ContainerError::Clone {
                what: "init",
                source,
            }),
        };
    }
    match crate::sys::process::fork() {
        Ok(Forked::Child) => {
            // The intermediate: join, clone the init into the joined namespaces, report, exit.
            let outcome = plan.join_all().map_err(|e| init::chain(&e)).and_then(|()| {
                crate::sys::process::clone3(flags, None)
                    .map_err(|e| format!("clone3 the container's init: {e}"))
            });
            match outcome {
                Ok(Forked::Child) => init::run(ctx),
                Ok(Forked::Parent { child }) => {
                    let _ = ctx.channel.send(&Message::InitPid(child));
                    crate::sys::process::exit_now(0)
                }
                Err(msg) => {
                    let _ = ctx.channel.send(&Message::Error(msg));
                    crate::sys::process::exit_now(1)
                }
            }
        }
        Ok(Forked::Parent { child }) => {
            let pid = parent_end.wait_for_init_pid();
            let _ = nix::sys::wait::waitpid(Pid::from_raw(child), None);
            Ok((pid?, true))
        }
        Err(source) => Err(ContainerError::Clone {
            what: "intermediate",
            source,
        }),
    }
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let err = |source| ContainerError::PidFile {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The container's current status, derived from the kernel rather than trusted from disk.
pub fn status_of(store: &Store, record: &Record) -> Status {
    let host = host();
    match state::process_start_time(&host.proc_root, record.init_pid) {
        Some((t, false)) if t == record.init_start_time => {}
        _ => return Status::Stopped,
    }
    if store.dir(&record.id).join(state::EXEC_FIFO).exists() {
        return Status::Created;
    }
    if let Ok(cg) = cgroups::open(&host, &record.cgroup) {
        if cg.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
    }
    Status::Running
}

pub fn state(store: &Store, id: &str) -> Result<OciState, ContainerError> {
    let record = store.peek(id)?;
    let status = status_of(store, &record);
    Ok(record.oci_state(status))
}

pub fn list(store: &Store) -> Result<Vec<OciState>, ContainerError> {
    let mut out = Vec::new();
    for id in store.ids()? {
        if let Ok(s) = state(store, &id) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Release a created container's init: open exec.fifo for reading, wait for its byte.
pub fn start(store: &Store, id: &str) -> Result<(), ContainerError> {
    let locked = store.open(id)?;
    let record = locked.read()?;
    let status = status_of(store, &record);
    if status != Status::Created {
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status,
            wanted: "only a created container can be started",
        });
    }
    crate::exeseal::share_teardown_of(record.init_pid);
    let fifo = locked.fifo_path();
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| ContainerError::Fifo {
        path: fifo.clone(),
        source,
    })?;
    let fd = crate::sys::fd::own(fd);
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => {
                let mut b = [0u8; 1];
                match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut b) {
                    Ok(1) => break,
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(source) => return Err(ContainerError::Fifo { path: fifo, source }),
                }
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(source) => return Err(ContainerError::Fifo { path: fifo, source }),
        }
        if status_of(store, &record) == Status::Stopped {
            let _ = std::fs::remove_file(&fifo);
            return Err(ContainerError::InitGone(record.init_pid));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&fifo);
    wait_for_exec(&fd);
    let running = serde_json::to_vec(&record.oci_state(Status::Running)).unwrap_or_default();
    // The spec: a failing poststart hook is a warning; the other hooks still run and the
    // container keeps running (crun; runc 1.1 instead kills it and fails `start`).
    let hooks = record.spec.hooks().as_ref();
    for e in hooks::run_all(hooks::Kind::Poststart, hooks, &running) {
        crate::logging::warn(&init::chain(&e));
    }
    Ok(())
}

/// After its byte, the init runs startContainer hooks and execs; its fifo fd is close-on-exec,
/// so end-of-file on our side means the user program has been exec'd (or the init died).
/// poststart hooks must not run before that.
fn wait_for_exec(fifo: &OwnedFd) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut buf = [0u8; 16];
    while Instant::now() < deadline {
        let mut pfd = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(1000u16));
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fifo), &mut buf) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn kill_all_in(cg: &dyn Manager, sig: Signal) {
    if let Ok(pids) = cg.pids() {
        for p in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), sig);
        }
    }
}

fn kill_container(record: &Record, signal: i32, all: bool) -> Result<(), ContainerError> {
    let sig = Signal::try_from(signal).ok();
    if all {
        let cg = cgroups::open(&host(), &record.cgroup)?;
        let pids = cg.pids()?;
        let frozen = cg.is_frozen().unwrap_or(false);
        for p in pids {
            send(p, signal, sig)?;
        }
        if frozen && signal == libc::SIGKILL {
            let _ = cg.freeze(cgroups::FreezerState::Thawed);
        }
        return Ok(());
    }
    send(record.init_pid, signal, sig)
}

fn send(pid: i32, signal: i32, _sig: Option<Signal>) -> Result<(), ContainerError> {
    crate::sys::process::kill(pid, signal).map_err(|source| match source {
        nix::errno::Errno::ESRCH => ContainerError::NotRunning,
        source => ContainerError::Kill {
            signal,
            pid,
            source,
        },
    })
}

pub fn kill(
    store: &Store,
    id: &str,
    signal: SignalNumber,
    all: bool,
) -> Result<(), ContainerError> {
    let locked = store.open(id)?;
    let record = locked.read()?;
    let status = status_of(store, &record);
    if status == Status::Stopped && !all {
        return Err(ContainerError::NotRunning);
    }
    kill_container(&record, signal.0, all)
}

/// Wait until `pid` is gone or a zombie (it is not our child, so we cannot reap it).
fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    let proc_root = PathBuf::from("/proc");
    while start.elapsed() < limit {
        match state::process_start_time(&proc_root, pid) {
            None | Some((_, true)) => return true,
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    false
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), ContainerError> {
    let locked = match store.open(id) {
        Ok(l) => l,
        Err(StateError::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let record = locked.read()?;
    let status = status_of(store, &record);
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        s => {
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status: s,
                wanted: "cannot delete a container that is not stopped (use --force)",
            })
        }
    }
    let host = host();
    if status != Status::Stopped {
        let _ = nix::sys::signal::kill(Pid::from_raw(record.init_pid), Signal::SIGKILL);
    }
    if let Ok(cg) = cgroups::open(&host, &record.cgroup) {
        destroy_cgroup(cg.as_ref());
    }
    if status != Status::Stopped {
        wait_gone(record.init_pid, Duration::from_secs(10));
    }
    let stopped = serde_json::to_vec(&record.oci_state(Status::Stopped)).unwrap_or_default();
    let poststop = hooks::run_all(
        hooks::Kind::Poststop,
        record.spec.hooks().as_ref(),
        &stopped,
    );
    locked.remove()?;
    for e in poststop {
        crate::logging::warn(&init::chain(&e));
    }
    Ok(())
}

/// Kill whatever is left in the cgroup (thawing it first so SIGKILL is delivered) and remove it.
fn destroy_cgroup(cg: &dyn Manager) {
    if cg.is_frozen().unwrap_or(false) {
        let _ = cg.freeze(cgroups::FreezerState::Thawed);
    }
    for _ in 0..100 {
        match cg.pids() {
            Ok(p) if p.is_empty() => break,
            Ok(p) => {
                for pid in p {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    let _ = cg.destroy();
}

/// `run` in the foreground: wait for the init we are subreaper/parent of; forward signals.
pub fn wait_foreground(pid: i32) -> Result<i32, ContainerError> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let forwarded = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ];
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in forwarded {
        set.add(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    loop {
        // Reap every exited child; the init's exit is the answer.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                    return Ok(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    return Err(ContainerError::Wait {
                        pid,
                        source: nix::errno::Errno::ECHILD,
                    })
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => return Err(ContainerError::Wait { pid, source }),
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
            Err(_) => {}
        }
    }
}
