//! `husk exec`: start another process inside a running container.
//!
//! ```text
//!  husk exec (parent)                 intermediate                    exec'd process
//!  ──────────────────                 ────────────                    ──────────────
//!  fork (v2: clone3 CLONE_INTO_  ▶    wait_for(Go)
//!  CGROUP, into the container's)
//!  send Go ──────────────────────▶    non-dumpable; v1: join the cgroup
//!                                     itself (cgroups::SelfJoin); setns
//!                                     into every namespace of the init
//!                                     (user first); fork ───────────▶ wait for EOF on a pipe
//!                 ◀──────────────────  InitPid(pid); exit ─(EOF)────▶ console, rlimits, caps,
//!                                                                     user, cwd, no_new_privs,
//!                 ◀─────────────────────────────────────────────────  seccomp; Ready; execve
//!  --pid-file; wait (foreground) or exit (--detach)
//! ```
//!
//! The second fork is needed because joining a pid namespace only applies to children.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::capabilities::Sets;
use crate::cgroups::{self, Host};
use crate::channel::{self, Endpoint, Message};
use crate::container::{self, ContainerError};
use crate::init::{self, InitError};
use crate::namespaces;
use crate::seccomp;
use crate::state::{Status, Store};
use crate::sys::process::Forked;

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup SUB`: run in this existing sub-cgroup of the container's cgroup.
    pub sub_cgroup: Option<PathBuf>,
}

/// The namespace files of the container's init, user namespace first.
fn init_namespaces(
    pid: i32,
    spec: &oci_spec::runtime::Spec,
) -> Result<Vec<namespaces::Join>, ContainerError> {
    let mut joins = Vec::new();
    let order = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Mount,
    ];
    for typ in order {
        if !crate::spec::namespaces(spec).iter().any(|n| n.typ() == typ) {
            continue;
        }
        let file = proc_ns_file(typ);
        let path = PathBuf::from(format!("/proc/{pid}/ns/{file}"));
        let fd = std::fs::File::open(&path).map_err(|source| namespaces::NamespaceError::Open {
            typ: typ.to_string(),
            path: path.clone(),
            source,
        })?;
        joins.push(namespaces::Join {
            typ,
            path,
            fd: fd.into(),
        });
    }
    Ok(joins)
}

fn proc_ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Time => "time",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
    }
}

/// Run the exec; returns the pid, and with a foreground exec the exit code.
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<(i32, Option<i32>), ContainerError> {
    let record = store.peek(&opts.id)?;
    let status = container::status_of(store, &record);
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(ContainerError::WrongStatus {
                id: opts.id.clone(),
                status,
                wanted: "cannot exec in a paused container (use --ignore-paused)",
            })
        }
        s => {
            return Err(ContainerError::WrongStatus {
                id: opts.id.clone(),
                status: s,
                wanted: "cannot exec in a stopped container",
            })
        }
    }
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(crate::spec::SpecError::NoArgs.into());
    }
    if p.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(crate::tty::TtyError::NoSocket.into());
    }
    let caps = Sets::from_spec(p.capabilities().as_ref())?;
    let seccomp = match record
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    let joins = init_namespaces(record.init_pid, &record.spec)?;
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::tty::connect)
        .transpose()?;
    let host = Host::system();
    let cg_path = match &opts.sub_cgroup {
        Some(sub) => sub_cgroup(&record.cgroup, sub)?,
        None => record.cgroup.clone(),
    };
    let cg = cgroups::open(&host, &cg_path)?;
    // v1: the intermediate moves itself in; v2: it is cloned straight into the cgroup.
    let self_join = cg.self_join()?;
    let clone_into = cg.clone_into_fd()?;
    let (parent_end, child_end) = channel::pair()?;
    if !opts.detach {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|source| ContainerError::Wait { pid: 0, source })?;
    }

    let child = ChildContext {
        process: p,
        caps: &caps,
        seccomp: seccomp.as_ref(),
        joins: &joins,
        channel: &child_end,
        console: console.as_ref(),
        preserve_fds: opts.preserve_fds,
        cgroup: self_join.as_ref(),
    };
    let intermediate = match crate::sys::process::clone3(0, clone_into.as_ref().map(|f| f.as_fd()))
    {
        Ok(Forked::Child) => child.run_intermediate(),
        Ok(Forked::Parent { child }) => child,
        Err(source) => {
            return Err(ContainerError::Clone {
                what: "exec intermediate (clone3, on v2 into the container's cgroup)",
                source,
            })
        }
    };
    drop(child_end);
    drop(console);
    let fail = |e: ContainerError| {
        let _ = nix::sys::signal::kill(
            Pid::from_raw(intermediate),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(Pid::from_raw(intermediate), None);
        e
    };
    if self_join.is_none() && clone_into.is_none() {
        cg.add_process(intermediate).map_err(|e| fail(e.into()))?;
    }
    parent_end.send(&Message::Go).map_err(|e| fail(e.into()))?;
    let pid = parent_end.wait_for_init_pid().map_err(|e| fail(e.into()));
    let _ = nix::sys::wait::waitpid(Pid::from_raw(intermediate), None);
    let pid = pid?;
    let listener = match parent_end.wait_for_ready() {
        Ok(l) => l,
        Err(e) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            return Err(e.into());
        }
    };
    if let (Some(fd), Some(program)) = (listener, seccomp.as_ref()) {
        let state = serde_json::to_value(record.oci_state(status)).unwrap_or_default();
        seccomp::send_listener_fd(program, &fd, pid, &state)?;
    }
    if let Some(path) = &opts.pid_file {
        container::write_pid_file(path, pid)?;
    }
    if opts.detach {
        return Ok((pid, None));
    }
    let code = container::wait_foreground(pid)?;
    Ok((pid, Some(code)))
}

/// `exec --cgroup SUB` (runc's bare form): SUB below the container's cgroup in every
/// hierarchy; it must exist and may not climb out with `..`.
fn sub_cgroup(
    base: &cgroups::CgroupsPath,
    sub: &std::path::Path,
) -> Result<cgroups::CgroupsPath, ContainerError> {
    let rel = sub.strip_prefix("/").unwrap_or(sub);
    if rel.as_os_str().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(ContainerError::SubCgroup(sub.to_path_buf()));
    }
    let mut path = base.clone();
    path.path = base.path.join(rel);
    for p in path.v1_paths.values_mut() {
        *p = p.join(rel);
    }
    Ok(path)
}

struct ChildContext<'a> {
    process: &'a Process,
    caps: &'a Sets,
    seccomp: Option<&'a seccomp::Program>,
    joins: &'a [namespaces::Join],
    channel: &'a Endpoint,
    console: Option<&'a std::os::unix::net::UnixStream>,
    preserve_fds: u32,
    /// v1: the intermediate moves itself into the cgroup (else the parent moved it).
    cgroup: Option<&'a cgroups::SelfJoin>,
}

impl ChildContext<'_> {
    fn run_intermediate(&self) -> ! {
        let result = (|| -> Result<(Forked, OwnedFd, OwnedFd), InitError> {
            // Nothing in the container may ptrace us or open /proc/<pid>/exe while we are husk.
            nix::sys::prctl::set_dumpable(false).map_err(InitError::Dumpable)?;
            init::close_inherited_fds(self.preserve_fds)?;
            self.channel.wait_for(Message::Go)?;
            init::join_cgroup(self.cgroup)?;
            for j in self.joins {
                nix::sched::setns(j.fd.as_fd(), namespaces::clone_flag(j.typ)).map_err(
                    |source| namespaces::NamespaceError::Join {
                        typ: j.typ.to_string(),
                        path: j.path.clone(),
                        source,
                    },
                )?;
            }
            // The process must not speak on the channel before we have sent its pid: it
            // waits for EOF on this pipe, which our exit (after InitPid) gives it.
            let (reported_r, reported_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|source| namespaces::NamespaceError::Unshare {
                    what: "make the pid-reported pipe",
                    source,
                })?;
            let forked = crate::sys::process::fork().map_err(|source| {
                namespaces::NamespaceError::Unshare {
                    what: "fork into the pid namespace",
                    source,
                }
            })?;
            Ok((forked, reported_r, reported_w))
        })();
        match result {
            Ok((Forked::Child, reported_r, reported_w)) => {
                drop(reported_w);
                let _ = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&reported_r), &mut [0]);
                drop(reported_r);
                self.run_process()
            }
            Ok((Forked::Parent { child }, _, _reported_w)) => {
                let _ = self.channel.send(&Message::InitPid(child));
                crate::sys::process::exit_now(0)
            }
            Err(e) => {
                let _ = self.channel.send(&Message::Error(init::chain(&e)));
                crate::sys::process::exit_now(1)
            }
        }
    }

    fn run_process(&self) -> ! {
        let result = (|| -> Result<std::convert::Infallible, InitError> {
            nix::unistd::setsid().map_err(InitError::Setsid)?;
            if let Some(socket) = self.console {
                let size = self
                    .process
                    .console_size()
                    .map(|b| (b.height() as u16, b.width() as u16));
                let pty = crate::tty::setup(socket, size)?;
                crate::tty::attach(&pty)?;
            }
            if let Some(profile) = self
                .process
                .apparmor_profile()
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                crate::process::apply_apparmor(profile)?;
            }
            let plan =
                init::become_the_process(self.process, self.caps, self.seccomp, self.channel)?;
            self.channel.send(&Message::Ready)?;
            Err(plan.exec().into())
        })();
        let Err(e) = result;
        let _ = self.channel.send(&Message::Error(init::chain(&e)));
        crate::sys::process::exit_now(1)
    }
}
