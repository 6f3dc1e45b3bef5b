//! OCI hooks: run a hook binary with its args and env, the container state JSON on stdin, and
//! an optional `timeout` after which it is killed and the hook counts as failed.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    #[allow(deprecated)]
    pub fn list(self, hooks: &Hooks) -> &[Hook] {
        let l = match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        l.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook #{index} {path:?}: start")]
    Spawn {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook #{index} {path:?}: {status}{stderr}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook #{index} {path:?}: killed after its timeout of {secs}s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        secs: i64,
    },
    #[error("{kind} hook #{index} {path:?}: wait")]
    Wait {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Run every hook of `kind` in order; the first failure stops the run.
pub fn run(kind: Kind, hooks: Option<&Hooks>, state_json: &[u8]) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    for (index, hook) in kind.list(hooks).iter().enumerate() {
        run_one(kind.name(), index, hook, state_json)?;
    }
    Ok(())
}

/// Run every hook of `kind` in order, even after failures, which are returned: for poststart
/// and poststop the spec says a failing hook is logged as a warning and "the remaining hooks
/// and lifecycle continue as if the hook had succeeded".
pub fn run_all(kind: Kind, hooks: Option<&Hooks>, state_json: &[u8]) -> Vec<HookError> {
    let Some(hooks) = hooks else {
        return Vec::new();
    };
    kind.list(hooks)
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| run_one(kind.name(), index, hook, state_json).err())
        .collect()
}

fn run_one(
    kind: &'static str,
    index: usize,
    hook: &Hook,
    state_json: &[u8],
) -> Result<(), HookError> {
    let path = hook.path().clone();
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE ignored).
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Wait {
                    kind,
                    index,
                    path,
                    source,
                })
            }
        }
        if let Some((secs, at)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    kind,
                    index,
                    path,
                    secs,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = match stderr.trim() {
        "" => String::new(),
        s => format!(": {s}"),
    };
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        stderr,
    })
}
