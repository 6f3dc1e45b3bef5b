//! `husk exec`: run another process in a running container.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Value};

use super::Globals;

/// Execute a new process inside a running container.
///
/// Either give the command after the container id, or a complete OCI process JSON with
/// --process. The process joins every namespace and the cgroup of the container; it gets the
/// container's seccomp profile. Without --detach husk waits and exits with its exit code.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Path to a process.json (an OCI `process` object) describing the process.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Unix socket that receives the pty master (with --tty).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pseudo-TTY.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Detach: start the process and exit.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (K=V); repeatable.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability to all sets; repeatable.
    #[arg(long = "cap", short = 'c')]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N extra fds (from 3) into the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in an existing sub-cgroup of the container's cgroup (runc's bare form SUB; the
    /// per-controller form CONTROLLER:SUB is refused).
    #[arg(long)]
    pub cgroup: Option<String>,
    pub id: String,
    /// The command and its arguments (without --process).
    pub command: Vec<String>,
}

fn build_process(g: &Globals, a: &Args) -> anyhow::Result<oci_spec::runtime::Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path)
            .with_context(|| format!("read --process file {}", path.display()))?;
        let mut de = serde_json::Deserializer::from_slice(&text);
        return serde_path_to_error::deserialize(&mut de).map_err(|e| {
            anyhow::anyhow!(
                "parse --process file {}: field `{}`: {}",
                path.display(),
                e.path(),
                e.inner()
            )
        });
    }
    if a.command.is_empty() {
        anyhow::bail!("exec needs a command after the container id, or --process");
    }
    let record = g.store.peek(&a.id)?;
    let mut p = serde_json::to_value(record.spec.process().clone().unwrap_or_default())?;
    p["args"] = json!(a.command);
    p["terminal"] = json!(a.tty);
    if let Some(cwd) = &a.cwd {
        p["cwd"] = json!(cwd);
    }
    if !a.env.is_empty() {
        let env = p["env"].as_array().cloned().unwrap_or_default();
        let mut env: Vec<Value> = env;
        env.extend(a.env.iter().map(|e| json!(e)));
        p["env"] = Value::Array(env);
    }
    if let Some(user) = &a.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .with_context(|| format!("--user {user:?}: uid must be a number"))?;
        p["user"]["uid"] = json!(uid);
        if let Some(g) = gid {
            let gid: u32 = g
                .parse()
                .with_context(|| format!("--user {user:?}: gid must be a number"))?;
            p["user"]["gid"] = json!(gid);
        }
    }
    if !a.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(a.additional_gids);
    }
    for cap in &a.caps {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let list = p["capabilities"][set]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut list = list;
            list.push(json!(cap));
            p["capabilities"][set] = Value::Array(list);
        }
    }
    if a.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(profile) = &a.apparmor {
        p["apparmorProfile"] = json!(profile);
    }
    if let Some(label) = &a.process_label {
        p["selinuxLabel"] = json!(label);
    }
    serde_path_to_error::deserialize(p)
        .map_err(|e| anyhow::anyhow!("exec process: field `{}`: {}", e.path(), e.inner()))
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    super::ensure_sealed_copy(g)?;
    if let Some(c) = a.cgroup.as_deref().filter(|c| c.contains(':')) {
        anyhow::bail!("--cgroup {c:?}: the per-controller form is not supported; give one sub-cgroup for all controllers");
    }
    let process = build_process(g, &a)?;
    let opts = husk::exec::ExecOptions {
        id: a.id.clone(),
        process,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: a.cgroup.as_ref().map(std::path::PathBuf::from),
    };
    let (_pid, code) = husk::exec::exec(&g.store, &opts)?;
    Ok(code.unwrap_or(0))
}
