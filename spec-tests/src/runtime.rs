//! Runs the runtime binary under test (`HUSK_BIN`) with a private `--root`,
//! a timeout, and captured output, and guards every container it creates.

use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bundle::Bundle;
use crate::host;

/// How long any single runtime command may take before the test kills it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime binary under test: `$HUSK_BIN`, else `target/release/husk`,
/// else `target/debug/husk` of this workspace.
pub fn runtime_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(bin) = std::env::var_os("HUSK_BIN") {
        let bin = PathBuf::from(bin);
        // cargo runs tests from the package dir; a relative HUSK_BIN (as a
        // Makefile at the workspace root would pass) may mean either.
        let found = [bin.clone(), workspace.join(&bin)]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("HUSK_BIN={} is not a file", bin.display()));
        return found.canonicalize().unwrap_or(found);
    }
    let target = workspace.join("target");
    for profile in ["release", "debug"] {
        let candidate = target.join(profile).join("husk");
        if candidate.is_file() {
            return candidate.canonicalize().unwrap_or(candidate);
        }
    }
    panic!(
        "no runtime binary to test: set HUSK_BIN (e.g. HUSK_BIN=/usr/sbin/runc) or build husk \
         (cargo build --release -p husk) so that {} exists",
        target.join("release/husk").display()
    );
}

/// Whether to assert on husk's exact error wording. On unless the binary is
/// named `runc` (whose wording differs); `HUSK_STRICT_MESSAGES=0|1` overrides.
pub fn strict_messages() -> bool {
    match std::env::var("HUSK_STRICT_MESSAGES").ok().as_deref() {
        Some("0") | Some("false") => false,
        Some(_) => true,
        None => runtime_binary().file_name().is_some_and(|n| n != "runc"),
    }
}

/// A container id unique across parallel tests and test processes:
/// `t-<pid>-<counter>-<nanos>`.
pub fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t-{}-{n}-{nanos}", std::process::id())
}

/// What a finished runtime command left behind. `code` is the exit status,
/// or 128+signal if it was killed.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Panics with the full output unless the command exited 0.
    #[track_caller]
    pub fn ok(self, what: &str) -> Output {
        assert!(self.success(), "{what} failed: {self:#?}");
        self
    }

    /// Panics unless the command failed (non-zero, not a timeout, no panic).
    #[track_caller]
    pub fn failed(self, what: &str) -> Output {
        assert!(!self.timed_out, "{what} hung: {self:#?}");
        assert!(self.code != 0, "{what} unexpectedly succeeded: {self:#?}");
        assert!(
            !self.stderr.contains("panicked"),
            "{what} panicked: {self:#?}"
        );
        self
    }
}

/// Extra knobs for one command.
#[derive(Default)]
pub struct Opts<'a> {
    pub timeout: Option<Duration>,
    /// Passed as global `--log <path> --log-format json`.
    pub log: Option<&'a Path>,
    pub cwd: Option<&'a Path>,
    /// Fed to the command's standard input (e.g. `update --resources -`).
    pub stdin: Option<&'a str>,
    /// Runs this before exec in the child (e.g. to place an fd at 3).
    pub pre_exec: Option<Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>>,
}

/// A runtime binary with a private state directory (`--root`).
pub struct Runtime {
    bin: PathBuf,
    root: tempfile::TempDir,
    scratch: tempfile::TempDir,
    marker: String,
}

/// Environment variable set on every runtime command a [`Runtime`] spawns;
/// its value is unique per `Runtime`, so any process still carrying it in
/// `/proc/<pid>/environ` descends from this test's commands.
pub const MARKER_VAR: &str = "HUSK_TEST_MARKER";

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            bin: runtime_binary(),
            root: tempfile::Builder::new()
                .prefix("husk-root-")
                .tempdir()
                .expect("root dir"),
            scratch: tempfile::Builder::new()
                .prefix("husk-out-")
                .tempdir()
                .expect("out dir"),
            marker: unique_id(),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Processes descended from this runtime's commands that are still alive
    /// (runtime leftovers, or container processes that kept the marker).
    pub fn marked_processes(&self) -> Vec<i32> {
        let marker = format!("{MARKER_VAR}={}", self.marker);
        let root = self.root.path().to_string_lossy();
        host::processes_matching(&[&marker, &root], None)
    }

    /// Like [`Runtime::marked_processes`], plus anything in the cgroup of
    /// container `id` (processes that exec'd with a clean environment).
    pub fn processes_of(&self, id: &str) -> Vec<i32> {
        let marker = format!("{MARKER_VAR}={}", self.marker);
        let root = self.root.path().to_string_lossy();
        host::processes_matching(&[&marker, &root], Some(id))
    }

    /// Runs `<bin> --root <root> <args>` with the default timeout.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_with(args, Opts::default())
    }

    /// Runs `<bin> --root <root> [--log F --log-format json] <args>`.
    /// Output goes to files, not pipes, so a detached container holding
    /// our stdio can never make the test wait for EOF.
    pub fn cmd_with(&self, args: &[&str], opts: Opts<'_>) -> Output {
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        self.spawn_with(args, opts).wait(timeout)
    }

    /// Runs `<bin> --root <root> <args>` with `input` on its standard input.
    pub fn cmd_stdin(&self, args: &[&str], input: &str) -> Output {
        self.cmd_with(
            args,
            Opts {
                stdin: Some(input),
                ..Opts::default()
            },
        )
    }

    /// Starts `<bin> --root <root> <args>` without waiting, e.g. to signal it.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_with(args, Opts::default())
    }

    fn spawn_with(&self, args: &[&str], opts: Opts<'_>) -> Running {
        let tag = unique_id();
        let out_path = self.scratch.path().join(format!("{tag}.out"));
        let err_path = self.scratch.path().join(format!("{tag}.err"));
        let out = fs::File::create(&out_path).expect("stdout file");
        let err = fs::File::create(&err_path).expect("stderr file");
        let mut command = Command::new(&self.bin);
        command.env(MARKER_VAR, &self.marker);
        command.arg("--root").arg(self.root.path());
        if let Some(log) = opts.log {
            command.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        let stdin = match opts.stdin {
            Some(text) => {
                let in_path = self.scratch.path().join(format!("{tag}.in"));
                fs::write(&in_path, text).expect("stdin file");
                Stdio::from(fs::File::open(&in_path).expect("open stdin file"))
            }
            None => Stdio::null(),
        };
        command.args(args).stdin(stdin).stdout(out).stderr(err);
        if let Some(cwd) = opts.cwd {
            command.current_dir(cwd);
        }
        if let Some(hook) = opts.pre_exec {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hooks tests pass only call async-signal-safe
            // functions (dup2) between fork and exec.
            unsafe {
                command.pre_exec(hook);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        Running {
            child,
            out_path,
            err_path,
        }
    }

    /// A guard for a container with the bundle's id; writes the bundle's
    /// config now. Dropping it force-deletes the container and its cgroups.
    pub fn container<'a>(&'a self, bundle: &Bundle) -> Container<'a> {
        bundle.save();
        self.container_with_id(bundle, &bundle.id)
    }

    /// Like [`Runtime::container`] with an explicit id.
    pub fn container_with_id<'a>(&'a self, bundle: &Bundle, id: &str) -> Container<'a> {
        bundle.save();
        Container {
            rt: self,
            id: id.to_string(),
            bundle: bundle.path().to_path_buf(),
        }
    }
}

/// A runtime command still running; [`Running::wait`] collects its output.
pub struct Running {
    child: std::process::Child,
    out_path: PathBuf,
    err_path: PathBuf,
}

impl Running {
    /// The runtime process's pid (a child of the test).
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Sends `signal` to the runtime process (our own child, by pid).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signal the runtime process");
    }

    /// Waits up to `timeout` (then SIGKILLs it) and returns its output.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for runtime") {
                break status;
            }
            if Instant::now() > deadline {
                timed_out = true;
                let _ = self.child.kill(); // our own child, by pid
                break self.child.wait().expect("reap killed runtime");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let read = |p: &Path| {
            let mut bytes = Vec::new();
            if let Ok(mut f) = fs::File::open(p) {
                let _ = f.read_to_end(&mut bytes);
            }
            let _ = fs::remove_file(p);
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Output {
            code,
            stdout: read(&self.out_path),
            stderr: read(&self.err_path),
            timed_out,
        }
    }
}

/// A container (maybe not created yet) that is force-deleted on drop, with
/// its cgroups under `/husk-test/<id>` removed.
pub struct Container<'a> {
    rt: &'a Runtime,
    pub id: String,
    pub bundle: PathBuf,
}

impl Container<'_> {
    fn bundle_str(&self) -> &str {
        self.bundle.to_str().expect("utf-8 bundle path")
    }

    pub fn runtime(&self) -> &Runtime {
        self.rt
    }

    /// `create [extra] --bundle <bundle> <id>`.
    pub fn create_with(&self, extra: &[&str]) -> Output {
        let mut args = vec!["create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", self.bundle_str(), &self.id]);
        self.rt.cmd(&args)
    }

    pub fn create(&self) -> Output {
        self.create_with(&[])
    }

    pub fn start(&self) -> Output {
        self.rt.cmd(&["start", &self.id])
    }

    /// `run [extra] --bundle <bundle> <id>`: foreground, the container's
    /// output is the command's output.
    pub fn run_with(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", self.bundle_str(), &self.id]);
        self.rt.cmd(&args)
    }

    pub fn run(&self) -> Output {
        self.run_with(&[])
    }

    /// Runs the container and returns its stdout, panicking on failure.
    #[track_caller]
    pub fn run_ok(&self) -> String {
        self.run().ok(&format!("run {}", self.id)).stdout
    }

    pub fn state(&self) -> Output {
        self.rt.cmd(&["state", &self.id])
    }

    /// The parsed `state` JSON (panics if `state` fails).
    #[track_caller]
    pub fn state_json(&self) -> Value {
        let out = self.state().ok("state");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", out.stdout))
    }

    pub fn status(&self) -> String {
        self.state_json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The init pid from `state`.
    pub fn pid(&self) -> i32 {
        let pid = self.state_json()["pid"]
            .as_i64()
            .expect("state has a numeric pid");
        i32::try_from(pid).expect("pid fits i32")
    }

    pub fn kill(&self, signal: &str) -> Output {
        self.rt.cmd(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Output {
        self.rt.cmd(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> Output {
        self.rt.cmd(&["delete", "--force", &self.id])
    }

    /// `exec <id> <args...>`.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_with(&[], args)
    }

    /// `exec <flags...> <id> <args...>`.
    pub fn exec_with(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut full = vec!["exec"];
        full.extend_from_slice(flags);
        full.push(&self.id);
        full.extend_from_slice(args);
        self.rt.cmd(&full)
    }

    /// Waits until `state` reports `status` (or panics after `timeout`).
    #[track_caller]
    pub fn wait_for_status(&self, status: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.status();
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {} stayed {now}, not {status}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the runtime still has state for this id under `--root`.
    pub fn state_dir_exists(&self) -> bool {
        self.rt.root().join(&self.id).exists()
    }
}

impl Drop for Runtime {
    /// Kills (by pid) anything our runtime commands left running: every such
    /// process inherited our unique marker, so we started it.
    fn drop(&mut self) {
        for _ in 0..3 {
            let pids = self.marked_processes();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.cmd_with(
            &["delete", "--force", &self.id],
            Opts {
                timeout: Some(Duration::from_secs(10)),
                ..Opts::default()
            },
        );
        host::remove_test_cgroups(&self.id);
    }
}
