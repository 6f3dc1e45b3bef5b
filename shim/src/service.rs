//! The containerd task API (`containerd.task.v2.Task`) over an [`Engine`].
//!
//! [`TaskService`] holds the containers of this shim, drives their processes'
//! state machines, turns reaped exits into `Wait` results and `TaskExit` events,
//! and publishes every lifecycle event through the injected [`EventSender`]. All
//! methods return [`ShimError`]; `api.rs` maps them to ttrpc codes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, PauseRequest, PidsRequest,
    PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest, StartResponse,
    StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest, WaitRequest,
    WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::topics;
use containerd_shim_protos::types::task::{ProcessInfo, Status as ApiStatus};

use crate::engine::{CreateOpts, Engine, ExecOpts, ProcessIo};
use crate::error::ShimError;
use crate::events::{Event, EventSender};
use crate::mount::{self, MountSpec};
use crate::options::{self, RuntimeOptions};
use crate::process::{ExecProcess, Exit, InitProcess, IoHandles, Lifecycle, Status, StdioPaths};
use crate::stdio;

/// Makes the engine for a container once its bundle and options are known.
pub trait EngineFactory: Send + Sync {
    fn engine(&self, bundle: &Path, opts: &RuntimeOptions) -> Result<Arc<dyn Engine>, ShimError>;
}

struct Container {
    engine: Arc<dyn Engine>,
    init: Arc<InitProcess>,
    execs: Mutex<HashMap<String, Arc<ExecProcess>>>,
    /// Held while a start is published and while an exit is, so TaskExit never
    /// overtakes TaskStart/TaskExecStarted.
    event_order: Mutex<()>,
}

#[derive(Clone)]
enum Proc {
    Init(Arc<InitProcess>),
    Exec(Arc<ExecProcess>),
}

impl Proc {
    fn life(&self) -> &Lifecycle {
        match self {
            Proc::Init(p) => &p.life,
            Proc::Exec(p) => &p.life,
        }
    }
    fn io(&self) -> &Mutex<IoHandles> {
        match self {
            Proc::Init(p) => &p.io,
            Proc::Exec(p) => &p.io,
        }
    }
    fn stdio(&self) -> &StdioPaths {
        match self {
            Proc::Init(p) => &p.stdio,
            Proc::Exec(p) => &p.stdio,
        }
    }
    fn exec_id(&self) -> &str {
        match self {
            Proc::Init(_) => "",
            Proc::Exec(p) => &p.exec_id,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn timestamp(t: SystemTime) -> MessageField<Timestamp> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    MessageField::some(Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    })
}

fn api_status(s: Status) -> ApiStatus {
    match s {
        Status::Created => ApiStatus::CREATED,
        Status::Running => ApiStatus::RUNNING,
        Status::Paused => ApiStatus::PAUSED,
        Status::Stopped => ApiStatus::STOPPED,
    }
}

/// Whether the container's other processes must die with its init, as
/// containerd's runc shim decides (`runc.ShouldKillAllOnExit`): yes unless the
/// bundle gives the container a pid namespace of its own (a `pid` entry without
/// a path). In its own namespace the kernel kills them when init exits; sharing
/// the host's, or joining another by path, nothing would, and exec'd processes
/// would outlive the task. An unreadable config.json also means yes.
pub fn kills_all_on_exit(bundle: &Path) -> bool {
    let Some(spec) = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return true;
    };
    let own_pid_ns = spec["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|ns| ns["type"] == "pid" && ns["path"].as_str().unwrap_or("").is_empty());
    !own_pid_ns
}

pub struct TaskService {
    factory: Box<dyn EngineFactory>,
    events: Arc<dyn EventSender>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Exits of pids not (yet) known to belong to a process; also the lock that
    /// orders "record a pid" against "an exit arrives".
    orphans: Mutex<HashMap<u32, Exit>>,
    /// Called once Shutdown finds no container left.
    on_shutdown: Box<dyn Fn() + Send + Sync>,
}

impl TaskService {
    pub fn new(
        factory: Box<dyn EngineFactory>,
        events: Arc<dyn EventSender>,
        on_shutdown: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        TaskService {
            factory,
            events,
            containers: Mutex::new(HashMap::new()),
            orphans: Mutex::new(HashMap::new()),
            on_shutdown,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>, ShimError> {
        lock(&self.containers)
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NoContainer(id.to_string()))
    }

    fn process(&self, id: &str, exec_id: &str) -> Result<(Arc<Container>, Proc), ShimError> {
        let c = self.container(id)?;
        if exec_id.is_empty() {
            let init = c.init.clone();
            return Ok((c, Proc::Init(init)));
        }
        let exec = lock(&c.execs).get(exec_id).cloned();
        match exec {
            Some(e) => Ok((c, Proc::Exec(e))),
            None => Err(ShimError::NoProcess {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
            }),
        }
    }

    /// Spawns the process's stdio and runs `spawn` with it; returns the pid and the
    /// I/O handles to keep.
    fn with_stdio(
        stdio: &StdioPaths,
        spawn: impl FnOnce(ProcessIo, Option<&Path>) -> Result<u32, ShimError>,
    ) -> Result<(u32, IoHandles), ShimError> {
        if stdio.terminal {
            let socket = stdio::ConsoleSocket::new()?;
            let pid = spawn(ProcessIo::default(), Some(&socket.path))?;
            let master = socket.receive_master()?;
            Ok((pid, stdio::terminal(stdio, master)?))
        } else {
            let (io, handles) = stdio::pipes(stdio)?;
            let pid = spawn(io, None)?;
            Ok((pid, handles))
        }
    }

    /// Records `pid` for `proc`, or finishes its exit if the reaper saw it first.
    fn record_pid(self: &Arc<Self>, c: &Arc<Container>, proc: &Proc, pid: u32) {
        let early = {
            let mut orphans = lock(&self.orphans);
            proc.life().set_pid(pid);
            orphans.remove(&pid)
        };
        if let Some(exit) = early {
            let (svc, c, p) = (self.clone(), c.clone(), proc.clone());
            std::thread::spawn(move || svc.finish_exit(&c, &p, exit));
        }
    }

    /// The reaper's entry point: `pid` exited with `code` (128+N for signal N).
    pub fn on_exit(self: &Arc<Self>, pid: u32, code: u32) {
        let exit = Exit {
            code,
            at: SystemTime::now(),
        };
        let mut orphans = lock(&self.orphans);
        match self.find_by_pid(pid) {
            Some((c, p)) => {
                drop(orphans);
                let svc = self.clone();
                std::thread::spawn(move || svc.finish_exit(&c, &p, exit));
            }
            None => {
                if orphans.len() > 1024 {
                    orphans.clear();
                }
                orphans.insert(pid, exit);
            }
        }
    }

    fn find_by_pid(&self, pid: u32) -> Option<(Arc<Container>, Proc)> {
        let containers = lock(&self.containers);
        for c in containers.values() {
            if c.init.life.pid() == pid && c.init.life.exit().is_none() {
                return Some((c.clone(), Proc::Init(c.init.clone())));
            }
            for e in lock(&c.execs).values() {
                if e.life.pid() == pid && e.life.exit().is_none() {
                    return Some((c.clone(), Proc::Exec(e.clone())));
                }
            }
        }
        None
    }

    /// Drains the process's output, then records the exit (waking Wait) and
    /// publishes TaskExit. An init whose container shares a pid namespace first
    /// takes the container's other processes with it (see [`kills_all_on_exit`]),
    /// before the drain: they may hold the output pipes open.
    fn finish_exit(&self, c: &Container, p: &Proc, exit: Exit) {
        if let Proc::Init(init) = p {
            if kills_all_on_exit(&init.bundle) {
                match c.engine.kill(&init.id, libc::SIGKILL as u32, true) {
                    Ok(())
                    | Err(crate::error::EngineError::ProcessFinished { .. })
                    | Err(crate::error::EngineError::NoSuchContainer { .. }) => {}
                    Err(e) => log::error!("kill the processes left in {}: {e}", init.id),
                }
            }
        }
        let copiers = std::mem::take(&mut lock(p.io()).copiers);
        for h in copiers {
            let _ = h.join();
        }
        let _order = lock(&c.event_order);
        if p.life().exited(exit.code, exit.at) {
            let id = match p {
                Proc::Init(i) => i.id.clone(),
                Proc::Exec(e) => e.exec_id.clone(),
            };
            self.events.send(
                topics::TASK_EXIT_EVENT_TOPIC,
                Event::task(TaskExit {
                    container_id: c.init.id.clone(),
                    id,
                    pid: p.life().pid(),
                    exit_status: exit.code,
                    exited_at: timestamp(exit.at),
                    ..Default::default()
                }),
            );
        }
    }

    pub fn create(
        self: &Arc<Self>,
        req: CreateTaskRequest,
    ) -> Result<CreateTaskResponse, ShimError> {
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(ShimError::Unimplemented(
                "restore from a checkpoint is not supported by husk".into(),
            ));
        }
        if lock(&self.containers).contains_key(&req.id) {
            return Err(ShimError::ContainerExists { id: req.id.clone() });
        }
        let opts = options::parse(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        let engine = self.factory.engine(&bundle, &opts)?;
        let mounts: Vec<MountSpec> = req
            .rootfs
            .iter()
            .map(|m| MountSpec {
                fstype: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect();
        let rootfs = bundle.join("rootfs");
        if !mounts.is_empty() {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| ShimError::Mount(format!("mkdir {}: {e}", rootfs.display())))?;
            mount::mount_all(&mounts, &rootfs)?;
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let spawned = Self::with_stdio(&stdio, |io, console_socket| {
            Ok(engine.create(CreateOpts {
                id: &req.id,
                bundle: &bundle,
                io,
                console_socket,
            })?)
        });
        let (pid, handles) = match spawned {
            Ok(x) => x,
            Err(e) => {
                if !mounts.is_empty() {
                    let _ = mount::unmount_all(&rootfs);
                }
                return Err(e);
            }
        };
        let init = Arc::new(InitProcess {
            id: req.id.clone(),
            bundle: bundle.clone(),
            stdio: stdio.clone(),
            life: Lifecycle::new(""),
            io: Mutex::new(handles),
            mounted_rootfs: !mounts.is_empty(),
        });
        let c = Arc::new(Container {
            engine,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
            event_order: Mutex::new(()),
        });
        lock(&self.containers).insert(req.id.clone(), c.clone());
        self.record_pid(&c, &Proc::Init(init), pid);
        let (events, cid) = (self.events.clone(), req.id.clone());
        c.engine.watch_oom(
            &req.id,
            pid,
            Box::new(move || {
                events.send(
                    topics::TASK_OOM_EVENT_TOPIC,
                    Event::task(TaskOOM {
                        container_id: cid.clone(),
                        ..Default::default()
                    }),
                )
            }),
        );
        self.events.send(
            topics::TASK_CREATE_EVENT_TOPIC,
            Event::task(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: stdio.stdin,
                    stdout: stdio.stdout,
                    stderr: stdio.stderr,
                    terminal: stdio.terminal,
                    ..Default::default()
                }),
                pid,
                ..Default::default()
            }),
        );
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    pub fn start(self: &Arc<Self>, req: StartRequest) -> Result<StartResponse, ShimError> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        p.life().check_start()?;
        let pid = match &p {
            Proc::Init(init) => {
                let _order = lock(&c.event_order);
                c.engine.start(&init.id)?;
                init.life.started();
                let pid = init.life.pid();
                self.events.send(
                    topics::TASK_START_EVENT_TOPIC,
                    Event::task(TaskStart {
                        container_id: init.id.clone(),
                        pid,
                        ..Default::default()
                    }),
                );
                pid
            }
            Proc::Exec(exec) => {
                let (pid, handles) = Self::with_stdio(&exec.stdio, |io, console_socket| {
                    Ok(c.engine.exec(ExecOpts {
                        id: &c.init.id,
                        exec_id: &exec.exec_id,
                        bundle: &c.init.bundle,
                        spec: &exec.spec,
                        io,
                        console_socket,
                    })?)
                })?;
                *lock(&exec.io) = handles;
                let _order = lock(&c.event_order);
                self.record_pid(&c, &p, pid);
                exec.life.started();
                self.events.send(
                    topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                    Event::task(TaskExecStarted {
                        container_id: c.init.id.clone(),
                        exec_id: exec.exec_id.clone(),
                        pid,
                        ..Default::default()
                    }),
                );
                pid
            }
        };
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    pub fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, ShimError> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        p.life().check_delete()?;
        let exit = p.life().exit().unwrap_or(Exit {
            code: 0,
            at: SystemTime::now(),
        });
        let pid = p.life().pid();
        match &p {
            Proc::Exec(e) => {
                lock(&c.execs).remove(&e.exec_id);
            }
            Proc::Init(init) => {
                match c.engine.delete(&init.id, false) {
                    Ok(()) | Err(crate::error::EngineError::NoSuchContainer { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if init.mounted_rootfs {
                    mount::unmount_all(&init.bundle.join("rootfs"))?;
                }
                lock(&self.containers).remove(&init.id);
                self.events.send(
                    topics::TASK_DELETE_EVENT_TOPIC,
                    Event::task(TaskDelete {
                        container_id: init.id.clone(),
                        pid,
                        exit_status: exit.code,
                        exited_at: timestamp(exit.at),
                        id: init.id.clone(),
                        ..Default::default()
                    }),
                );
            }
        }
        Ok(DeleteResponse {
            pid,
            exit_status: exit.code,
            exited_at: timestamp(exit.at),
            ..Default::default()
        })
    }

    pub fn exec(&self, req: ExecProcessRequest) -> Result<(), ShimError> {
        let c = self.container(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if spec.is_empty() {
            return Err(ShimError::InvalidArgument(format!(
                "exec {}: no process spec",
                req.exec_id
            )));
        }
        {
            let mut execs = lock(&c.execs);
            if execs.contains_key(&req.exec_id) {
                return Err(ShimError::ExecExists {
                    id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                });
            }
            execs.insert(
                req.exec_id.clone(),
                Arc::new(ExecProcess {
                    exec_id: req.exec_id.clone(),
                    spec,
                    stdio: StdioPaths {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                    },
                    life: Lifecycle::new(&req.exec_id),
                    io: Mutex::new(IoHandles::default()),
                }),
            );
        }
        self.events.send(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Event::task(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub fn state(&self, req: StateRequest) -> Result<StateResponse, ShimError> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let life = p.life();
        let exit = life.exit();
        let stdio = p.stdio();
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: c.init.bundle.display().to_string(),
            pid: life.pid(),
            status: api_status(life.status()).into(),
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            terminal: stdio.terminal,
            exit_status: exit.map(|e| e.code).unwrap_or(0),
            exited_at: exit.map(|e| timestamp(e.at)).unwrap_or_default(),
            exec_id: p.exec_id().to_string(),
            ..Default::default()
        })
    }

    pub fn kill(&self, req: KillRequest) -> Result<(), ShimError> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        match &p {
            Proc::Init(init) => Ok(c.engine.kill(&init.id, req.signal, req.all)?),
            Proc::Exec(e) => {
                let pid = e.life.pid();
                if pid == 0 || e.life.exit().is_some() {
                    return Err(crate::error::EngineError::ProcessFinished { op: "kill" }.into());
                }
                let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                    ShimError::InvalidArgument(format!("signal {} is not valid", req.signal))
                })?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
                    .map_err(|_| crate::error::EngineError::ProcessFinished { op: "kill" }.into())
            }
        }
    }

    pub fn pids(&self, req: PidsRequest) -> Result<PidsResponse, ShimError> {
        let c = self.container(&req.id)?;
        let pids = c.engine.ps(&req.id)?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    pub fn pause(&self, req: PauseRequest) -> Result<(), ShimError> {
        let c = self.container(&req.id)?;
        c.init.life.check_pause()?;
        c.engine.pause(&req.id)?;
        c.init.life.pause()?;
        self.events.send(
            topics::TASK_PAUSED_EVENT_TOPIC,
            Event::task(TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub fn resume(&self, req: ResumeRequest) -> Result<(), ShimError> {
        let c = self.container(&req.id)?;
        c.init.life.check_resume()?;
        c.engine.resume(&req.id)?;
        c.init.life.resume()?;
        self.events.send(
            topics::TASK_RESUMED_EVENT_TOPIC,
            Event::task(TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> Result<(), ShimError> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let io = lock(p.io());
        let Some(master) = io.console.as_ref() else {
            return Err(ShimError::InvalidArgument(format!(
                "process {:?} of {} has no terminal",
                req.exec_id, req.id
            )));
        };
        crate::sys::set_winsize(master, req.height as u16, req.width as u16)
            .map_err(|e| ShimError::Console(format!("TIOCSWINSZ: {e}")))
    }

    pub fn close_io(&self, req: CloseIORequest) -> Result<(), ShimError> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            let stdin = lock(p.io()).stdin.clone();
            lock(&stdin).take();
        }
        Ok(())
    }

    pub fn update(&self, req: UpdateTaskRequest) -> Result<(), ShimError> {
        let c = self.container(&req.id)?;
        let resources = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if resources.is_empty() {
            return Err(ShimError::InvalidArgument(
                "update: no resources given".into(),
            ));
        }
        Ok(c.engine.update(&req.id, &resources)?)
    }

    pub fn wait(&self, req: WaitRequest) -> Result<WaitResponse, ShimError> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let exit = p.life().wait();
        Ok(WaitResponse {
            exit_status: exit.code,
            exited_at: timestamp(exit.at),
            ..Default::default()
        })
    }

    pub fn stats(&self, req: StatsRequest) -> Result<StatsResponse, ShimError> {
        let c = self.container(&req.id)?;
        let sample = c.engine.stats(&req.id)?;
        let any = crate::metrics::to_any(&sample, c.init.life.pid())?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    pub fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse, ShimError> {
        let task_pid = lock(&self.containers)
            .get(&req.id)
            .map(|c| c.init.life.pid())
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub fn shutdown(&self, _req: ShutdownRequest) -> Result<(), ShimError> {
        if lock(&self.containers).is_empty() {
            (self.on_shutdown)();
        }
        Ok(())
    }
}
