//! The container's init process: what the child does between `clone3` and `execve`.
//!
//! [`run`] is a linear script of named steps, in the order `ARCHITECTURE.md` lists them.
//! Everything it needs was parsed, validated and compiled by the parent before the clone
//! ([`InitContext`]); the child only performs system calls. A failing step is reported to the
//! parent over the handshake channel and the child exits.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::capabilities::{CapabilityError, Sets};
use crate::cgroups::{CgroupError, SelfJoin};
use crate::channel::{ChannelError, Endpoint, Message};
use crate::hooks::{self, HookError};
use crate::namespaces::{NamespaceError, Plan};
use crate::process::{self, ExecPlan, ProcessError};
use crate::rlimits::{self, RlimitError};
use crate::rootfs::{self, RootfsContext, RootfsError};
use crate::seccomp::{Program, SeccompError};
use crate::spec::Bundle;
use crate::tty::{self, TtyError};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("become root in the new user namespace: setresuid/setresgid(0)")]
    BecomeRoot(#[source] nix::errno::Errno),
    #[error("setsid")]
    Setsid(#[source] nix::errno::Errno),
    #[error("mark inherited fds close-on-exec")]
    CloseFds(#[source] nix::errno::Errno),
    #[error("linux.sysctl {key:?}: write {path:?}")]
    Sysctl {
        key: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("create process.cwd {path:?}")]
    MakeCwd {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open exec fifo {path:?} to wait for start")]
    Fifo {
        path: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("chroot into {path:?} (no mount namespace)")]
    Chroot {
        path: std::path::PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("keyctl(KEYCTL_JOIN_SESSION_KEYRING) for a new session keyring")]
    Keyring(#[source] nix::errno::Errno),
    #[error("prctl(PR_SET_DUMPABLE, 0)")]
    Dumpable(#[source] nix::errno::Errno),
    #[error("prctl(PR_SET_PDEATHSIG)")]
    DeathSignal(#[source] nix::errno::Errno),
}

/// Everything the init needs, prepared by the parent.
#[derive(Debug)]
pub struct InitContext<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    pub rootfs: RootfsContext<'a>,
    pub caps: &'a Sets,
    pub seccomp: Option<&'a Program>,
    pub channel: &'a Endpoint,
    /// O_PATH fd of the state directory holding `exec.fifo`: the init blocks opening the
    /// fifo for writing (openat) until `start`.
    pub exec_fifo: &'a OwnedFd,
    pub console: Option<&'a UnixStream>,
    pub preserve_fds: u32,
    /// `--no-new-keyring`: keep the caller's session keyring instead of a new one.
    pub no_new_keyring: bool,
    /// The init's parent stays around until Ready (no intermediate): kill the init if it dies.
    pub die_with_parent: bool,
    /// v1: the init moves itself into the container's cgroup (else the parent moved it).
    pub cgroup: Option<&'a SelfJoin>,
}

/// Run the script; never returns. On failure the error goes to the parent and we `_exit(1)`.
pub fn run(ctx: &InitContext<'_>) -> ! {
    match script(ctx) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = ctx.channel.send(&Message::Error(chain(&e)));
            crate::sys::process::exit_now(1)
        }
    }
}

/// "step: cause: cause" — the whole error chain on one line, as the user will read it.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn process_of<'a>(ctx: &InitContext<'a>) -> &'a Process {
    ctx.bundle
        .spec
        .process()
        .as_ref()
        .expect("validated: process is present")
}

enum Never {}

fn script(ctx: &InitContext<'_>) -> Result<Never, InitError> {
    let spec = &ctx.bundle.spec;
    let p = process_of(ctx);
    let linux = spec.linux().as_ref();
    let has_mntns = ctx.bundle.has_namespace(LinuxNamespaceType::Mount);

    if ctx.die_with_parent {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(InitError::DeathSignal)?;
    }
    close_inherited_fds(ctx.preserve_fds)?;
    ctx.channel.wait_for(Message::Go)?;
    join_cgroup(ctx.cgroup)?;
    become_root_in_userns(ctx)?;
    nix::unistd::setsid().map_err(InitError::Setsid)?;
    if !ctx.no_new_keyring {
        join_session_keyring(ctx)?;
    }
    enter_new_cgroup_and_time_namespaces(ctx)?;
    set_hostname(ctx)?;
    if has_mntns {
        rootfs::prepare(&ctx.rootfs)?;
    }
    ctx.channel.send(&Message::RunHooks)?;
    ctx.channel.wait_for(Message::HooksDone)?;
    run_hook_in_container(ctx, hooks::Kind::CreateContainer)?;
    if has_mntns {
        rootfs::pivot(&ctx.rootfs)?;
    } else {
        // No mount namespace: nothing may be mounted, but the process still runs inside its
        // root filesystem (runc chroots here too).
        chroot_into(ctx.rootfs.rootfs)?;
    }
    make_cwd(p)?;
    if let Some(socket) = ctx.console {
        setup_console(ctx, socket, has_mntns)?;
    }
    apply_sysctl(ctx)?;
    if has_mntns {
        rootfs::finalize(&ctx.rootfs)?;
    }
    apply_lsm_labels(p)?;
    if let Some(persona) = linux.and_then(|l| l.personality().as_ref()) {
        process::apply_personality(persona)?;
    }
    let exec = become_the_process(p, ctx.caps, ctx.seccomp, ctx.channel)?;
    if ctx.die_with_parent {
        nix::sys::prctl::set_pdeathsig(None).map_err(InitError::DeathSignal)?;
    }
    ctx.channel.send(&Message::Ready)?;
    // Held open (close-on-exec) until execve: `start` takes EOF on the fifo as "exec'd".
    let _fifo = wait_for_start(ctx)?;
    run_hook_in_container(ctx, hooks::Kind::StartContainer)?;
    Err(exec.exec().into())
}

/// No host fd but stdio and `--preserve-fds` may survive exec (CVE-2024-21626).
/// First step after Go: in the container's cgroup before anything that it accounts or
/// confines (memory, pids, devices) and before the cgroup namespace is made.
pub fn join_cgroup(cgroup: Option<&SelfJoin>) -> Result<(), InitError> {
    match cgroup {
        Some(c) => Ok(c.join()?),
        None => Ok(()),
    }
}

pub fn close_inherited_fds(preserve: u32) -> Result<(), InitError> {
    crate::sys::process::cloexec_from(3 + preserve).map_err(InitError::CloseFds)
}

fn become_root_in_userns(ctx: &InitContext<'_>) -> Result<(), InitError> {
    if ctx.plan.new_userns
        || ctx
            .bundle
            .namespace_path(LinuxNamespaceType::User)
            .is_some()
    {
        let root_g = nix::unistd::Gid::from_raw(0);
        let root_u = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g).map_err(InitError::BecomeRoot)?;
        nix::unistd::setresuid(root_u, root_u, root_u).map_err(InitError::BecomeRoot)?;
    }
    Ok(())
}

/// The steps shared by the init and `husk exec`, from resource limits to the loaded seccomp
/// filter: what is left afterwards is only the exec itself.
pub fn become_the_process(
    p: &Process,
    caps: &Sets,
    seccomp: Option<&Program>,
    channel: &Endpoint,
) -> Result<ExecPlan, InitError> {
    rlimits::apply(p.rlimits().as_deref().unwrap_or(&[]))?;
    process::apply_io_priority(p)?;
    caps.apply_bounding()?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let mut verified_cwd = None;
    if !nnp {
        if seccomp.is_some() {
            // The filter may deny getcwd(2), which the cwd check needs: check first.
            verified_cwd = Some(process::verify_cwd(p.cwd())?);
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the
        // capabilities are dropped (runc's order).
        load_seccomp(seccomp, channel)?;
    }
    process::switch_user(p, setgroups_allowed())?;
    caps.apply_rest()?;
    match verified_cwd {
        Some(v) => process::reenter_cwd(p.cwd(), v)?,
        None => process::enter_cwd(p.cwd())?,
    }
    if nnp {
        process::set_no_new_privs()?;
    }
    let exec = prepare_exec(p)?;
    if nnp {
        // As close to execve as possible, so the profile need allow few of our own syscalls.
        load_seccomp(seccomp, channel)?;
    }
    Ok(exec)
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// A kernel without keyring support, or a user namespace that may not create one, is not an
/// error (runc ignores ENOSYS and EACCES/EDQUOT here too).
fn join_session_keyring(ctx: &InitContext<'_>) -> Result<(), InitError> {
    match crate::sys::process::join_session_keyring(&format!("_ses.{}", ctx.id)) {
        Ok(())
        | Err(nix::errno::Errno::ENOSYS)
        | Err(nix::errno::Errno::EACCES)
        | Err(nix::errno::Errno::EDQUOT) => Ok(()),
        Err(e) => Err(InitError::Keyring(e)),
    }
}

fn enter_new_cgroup_and_time_namespaces(ctx: &InitContext<'_>) -> Result<(), InitError> {
    if ctx.plan.new_cgroupns {
        crate::namespaces::unshare_cgroupns()?;
    }
    if ctx.plan.new_timens {
        crate::namespaces::unshare_timens()?;
        if let Some(offsets) = ctx
            .bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref())
        {
            crate::namespaces::write_time_offsets(offsets)?;
        }
    }
    Ok(())
}

fn set_hostname(ctx: &InitContext<'_>) -> Result<(), InitError> {
    if let Some(h) = ctx
        .bundle
        .spec
        .hostname()
        .as_deref()
        .filter(|h| !h.is_empty())
    {
        crate::namespaces::set_hostname(h)?;
    }
    if let Some(d) = ctx
        .bundle
        .spec
        .domainname()
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        crate::namespaces::set_domainname(d)?;
    }
    Ok(())
}

fn state_json(ctx: &InitContext<'_>, status: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": ctx.bundle.spec.version(),
        "id": ctx.id,
        "status": status,
        "pid": std::process::id(),
        "bundle": ctx.bundle.dir,
        "annotations": ctx.bundle.spec.annotations().clone().unwrap_or_default(),
    }))
    .unwrap_or_default()
}

fn run_hook_in_container(ctx: &InitContext<'_>, kind: hooks::Kind) -> Result<(), InitError> {
    let Some(h) = ctx.bundle.spec.hooks().as_ref() else {
        return Ok(());
    };
    if kind.list(h).is_empty() {
        return Ok(());
    }
    let status = if kind == hooks::Kind::CreateContainer {
        "creating"
    } else {
        "created"
    };
    hooks::run(kind, Some(h), &state_json(ctx, status))?;
    Ok(())
}

fn setup_console(
    ctx: &InitContext<'_>,
    socket: &UnixStream,
    has_mntns: bool,
) -> Result<(), InitError> {
    let size = process_of(ctx)
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let pty = tty::setup(socket, size)?;
    if has_mntns {
        rootfs::mount_console(&pty.slave_path)?;
    }
    tty::attach(&pty)?;
    Ok(())
}

fn apply_sysctl(ctx: &InitContext<'_>) -> Result<(), InitError> {
    let Some(map) = ctx
        .bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
    else {
        return Ok(());
    };
    for (key, value) in map {
        let path = std::path::Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| InitError::Sysctl {
            key: key.clone(),
            path,
            source,
        })?;
    }
    Ok(())
}

fn chroot_into(root: &std::path::Path) -> Result<(), InitError> {
    let err = |source| InitError::Chroot {
        path: root.to_path_buf(),
        source,
    };
    nix::unistd::chroot(root).map_err(err)?;
    nix::unistd::chdir("/").map_err(err)
}

/// runc creates a missing cwd (as root, inside the new root) before switching user.
fn make_cwd(p: &Process) -> Result<(), InitError> {
    std::fs::create_dir_all(p.cwd()).map_err(|source| InitError::MakeCwd {
        path: p.cwd().clone(),
        source,
    })
}

fn apply_lsm_labels(p: &Process) -> Result<(), InitError> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        process::apply_apparmor(profile)?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        process::apply_selinux(label)?;
    }
    Ok(())
}

fn load_seccomp(seccomp: Option<&Program>, channel: &Endpoint) -> Result<(), InitError> {
    let Some(program) = seccomp else {
        return Ok(());
    };
    if let Some(listener) = program.load()? {
        channel.send_with_fd(&Message::SeccompFd, Some(listener.as_raw_fd()))?;
    }
    Ok(())
}

fn prepare_exec(p: &Process) -> Result<ExecPlan, InitError> {
    let env = process::environment(p);
    let args = p.args().clone().unwrap_or_default();
    let path = process::find_executable(&args[0], &env)?;
    Ok(ExecPlan::new(&path, &args, &env)?)
}

/// Block until `husk start` opens the fifo for reading, then tell it we are going. The
/// returned write end must stay open until execve closes it.
fn wait_for_start(ctx: &InitContext<'_>) -> Result<OwnedFd, InitError> {
    let path = crate::state::EXEC_FIFO.to_string();
    let fd = nix::fcntl::openat(
        Some(ctx.exec_fifo.as_fd().as_raw_fd()),
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| InitError::Fifo {
        path: path.clone(),
        source,
    })?;
    let fd = crate::sys::fd::own(fd);
    nix::unistd::write(&fd, b"0").map_err(|source| InitError::Fifo { path, source })?;
    Ok(fd)
}
