//! [`Engine`] implemented by running the husk binary with go-runc's argv.
//!
//! Every call is `husk --root R --log B/log.json --log-format json <verb> …`, as
//! containerd's runc shim runs runc. On failure the last `error` line husk wrote
//! to log.json during this call is the message, like go-runc reports it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::engine::{CreateOpts, Engine, ExecOpts, ProcessIo};
use crate::error::EngineError;
use crate::reaper::Reaper;

pub struct HuskEngine {
    pub binary: PathBuf,
    pub root: PathBuf,
    /// Directory of log.json and pid files (the bundle).
    pub bundle: PathBuf,
    pub reaper: Arc<Reaper>,
    /// runc's NoNewKeyring option: `create --no-new-keyring`.
    pub no_new_keyring: bool,
}

/// Finds husk: `binary_name` from the runc options if set, else next to the shim
/// binary, else `husk` on PATH.
pub fn locate(binary_name: &str) -> Option<PathBuf> {
    let on_path = |name: &str| -> Option<PathBuf> {
        if name.contains('/') {
            return Path::new(name).is_file().then(|| PathBuf::from(name));
        }
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|c| c.is_file())
        })
    };
    if !binary_name.is_empty() {
        return on_path(binary_name);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = dir.join("husk");
        if beside.is_file() {
            return Some(beside);
        }
    }
    on_path("husk")
}

/// The last `"level":"error"` message among the JSON lines of `log`.
pub fn last_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .next()
}

/// Classifies a failure message the way go-runc/containerd do for kill.
fn classify(op: &'static str, msg: String) -> EngineError {
    if msg.contains("container not running") || msg.contains("no such process") {
        EngineError::ProcessFinished { op }
    } else if msg.contains("does not exist") {
        EngineError::NoSuchContainer { op }
    } else {
        EngineError::Failed { op, msg }
    }
}

struct Call<'a> {
    op: &'static str,
    args: Vec<String>,
    io: ProcessIo,
    stdin_data: Option<&'a [u8]>,
    capture: bool,
}

impl HuskEngine {
    fn log_path(&self) -> PathBuf {
        self.bundle.join("log.json")
    }

    fn run(&self, call: Call<'_>) -> Result<Vec<u8>, EngineError> {
        let op = call.op;
        let log = self.log_path();
        let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json");
        cmd.args(&call.args).env_remove("NOTIFY_SOCKET");
        let io = call.io;
        cmd.stdin(match (call.stdin_data, io.stdin) {
            (Some(_), _) => Stdio::piped(),
            (None, Some(f)) => Stdio::from(f),
            (None, None) => Stdio::null(),
        });
        cmd.stdout(match (call.capture, io.stdout) {
            (true, _) => Stdio::piped(),
            (false, Some(f)) => Stdio::from(f),
            (false, None) => Stdio::null(),
        });
        let capture_stderr = io.stderr.is_none();
        cmd.stderr(match io.stderr {
            Some(f) => Stdio::from(f),
            None => Stdio::piped(),
        });
        let (mut child, exited) =
            self.reaper
                .spawn(&mut cmd)
                .map_err(|source| EngineError::Spawn {
                    binary: self.binary.display().to_string(),
                    source,
                })?;
        drop(cmd);
        if let (Some(data), Some(mut stdin)) = (call.stdin_data, child.stdin.take()) {
            let _ = stdin.write_all(data);
        }
        let mut out = Vec::new();
        if let Some(mut so) = child.stdout.take() {
            let _ = so.read_to_end(&mut out);
        }
        let mut err = String::new();
        if let Some(mut se) = child.stderr.take().filter(|_| capture_stderr) {
            let _ = se.read_to_string(&mut err);
        }
        let code = exited.recv().unwrap_or(255);
        if code == 0 {
            return Ok(out);
        }
        let msg = read_log_from(&log, log_start)
            .and_then(|l| last_error(&l))
            .or_else(|| Some(err.trim().to_string()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("husk exited with status {code}"));
        Err(classify(op, msg))
    }

    fn simple(&self, op: &'static str, args: &[&str]) -> Result<Vec<u8>, EngineError> {
        self.run(Call {
            op,
            args: args.iter().map(|s| s.to_string()).collect(),
            io: ProcessIo::default(),
            stdin_data: None,
            capture: true,
        })
    }

    fn read_pid(&self, op: &'static str, path: &Path) -> Result<u32, EngineError> {
        let s = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            op,
            path: path.display().to_string(),
            source,
        })?;
        s.trim().parse().map_err(|_| EngineError::Output {
            op,
            msg: format!("{} holds {s:?}, not a pid", path.display()),
        })
    }
}

fn read_log_from(path: &Path, start: u64) -> Option<String> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    Some(s)
}

impl Engine for HuskEngine {
    fn create(&self, opts: CreateOpts<'_>) -> Result<u32, EngineError> {
        let pid_file = opts.bundle.join("init.pid");
        let mut args = vec![
            "create".to_string(),
            "--bundle".into(),
            opts.bundle.display().to_string(),
        ];
        args.extend(["--pid-file".to_string(), pid_file.display().to_string()]);
        if let Some(s) = opts.console_socket {
            args.extend(["--console-socket".to_string(), s.display().to_string()]);
        }
        if self.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        args.push(opts.id.to_string());
        self.run(Call {
            op: "create",
            args,
            io: opts.io,
            stdin_data: None,
            capture: false,
        })?;
        self.read_pid("create", &pid_file)
    }

    fn start(&self, id: &str) -> Result<(), EngineError> {
        self.simple("start", &["start", id]).map(drop)
    }

    fn exec(&self, opts: ExecOpts<'_>) -> Result<u32, EngineError> {
        let spec_path = opts.bundle.join(format!("{}.process.json", opts.exec_id));
        let pid_file = opts.bundle.join(format!("{}.pid", opts.exec_id));
        std::fs::write(&spec_path, opts.spec).map_err(|source| EngineError::Io {
            op: "exec",
            path: spec_path.display().to_string(),
            source,
        })?;
        let mut args = vec![
            "exec".to_string(),
            "--process".into(),
            spec_path.display().to_string(),
        ];
        if let Some(s) = opts.console_socket {
            args.extend(["--console-socket".to_string(), s.display().to_string()]);
        }
        args.extend([
            "--detach".to_string(),
            "--pid-file".into(),
            pid_file.display().to_string(),
        ]);
        args.push(opts.id.to_string());
        let res = self.run(Call {
            op: "exec",
            args,
            io: opts.io,
            stdin_data: None,
            capture: false,
        });
        let _ = std::fs::remove_file(&spec_path);
        res?;
        let pid = self.read_pid("exec", &pid_file);
        let _ = std::fs::remove_file(&pid_file);
        pid
    }

    fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), EngineError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.simple("kill", &args).map(drop)
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), EngineError> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.simple("delete", &args).map(drop)
    }

    fn ps(&self, id: &str) -> Result<Vec<u32>, EngineError> {
        let out = self.simple("ps", &["ps", "--format", "json", id])?;
        serde_json::from_slice(&out).map_err(|e| EngineError::Output {
            op: "ps",
            msg: e.to_string(),
        })
    }

    fn pause(&self, id: &str) -> Result<(), EngineError> {
        self.simple("pause", &["pause", id]).map(drop)
    }

    fn resume(&self, id: &str) -> Result<(), EngineError> {
        self.simple("resume", &["resume", id]).map(drop)
    }

    fn update(&self, id: &str, resources: &[u8]) -> Result<(), EngineError> {
        self.run(Call {
            op: "update",
            args: vec!["update".into(), "--resources".into(), "-".into(), id.into()],
            io: ProcessIo::default(),
            stdin_data: Some(resources),
            capture: true,
        })
        .map(drop)
    }

    fn stats(&self, id: &str) -> Result<serde_json::Value, EngineError> {
        let out = self.simple("events", &["events", "--stats", id])?;
        let line = String::from_utf8_lossy(&out);
        let first = line.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        serde_json::from_str(first).map_err(|e| EngineError::Output {
            op: "events --stats",
            msg: e.to_string(),
        })
    }

    fn watch_oom(&self, id: &str, pid: u32, on_oom: Box<dyn Fn() + Send>) {
        let Some(cg) =
            crate::oom::memory_cgroup_of(Path::new("/proc"), Path::new("/sys/fs/cgroup"), pid)
        else {
            log::warn!("no memory cgroup found for {id} (pid {pid}): no OOM events");
            return;
        };
        if let Err(e) = crate::oom::watch(cg.clone(), on_oom) {
            log::warn!("watch {cg:?} for OOM: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_line_of_the_log_is_the_message() {
        let log = "{\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"info\",\"msg\":\"x\"}\n\
                   {\"level\":\"error\",\"msg\":\"container_linux: bad rootfs\"}\nnot json\n";
        assert_eq!(
            last_error(log).as_deref(),
            Some("container_linux: bad rootfs")
        );
    }

    #[test]
    fn kill_of_finished_process_is_classified_like_go_runc() {
        assert!(matches!(
            classify("kill", "container not running".into()),
            EngineError::ProcessFinished { .. }
        ));
        assert!(matches!(
            classify("kill", "container x does not exist".into()),
            EngineError::NoSuchContainer { .. }
        ));
        assert!(matches!(
            classify("kill", "permission denied".into()),
            EngineError::Failed { .. }
        ));
    }
}
