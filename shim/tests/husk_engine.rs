//! The husk engine and the reaper against a fake `husk` script: go-runc's argv,
//! pid files, stdin for update, JSON output, and log.json errors classified like
//! go-runc. A reaper thread stands in for containerd-shim's SIGCHLD handler (this
//! test binary's only child-reaping thread, so it takes no one else's children).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use containerd_shim::monitor::monitor_notify_by_pid;
use husk_shim::engine::{CreateOpts, Engine, ProcessIo};
use husk_shim::error::EngineError;
use husk_shim::husk::HuskEngine;
use husk_shim::reaper::Reaper;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

static REAPING: Once = Once::new();

/// waitpid(-1) → monitor, like containerd-shim's signal thread (polling here).
fn start_reaping() {
    REAPING.call_once(|| {
        std::thread::spawn(|| loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    let _ = monitor_notify_by_pid(pid.as_raw(), code);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    let _ = monitor_notify_by_pid(pid.as_raw(), 128 + sig as i32);
                }
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        });
    });
}

const FAKE_HUSK: &str = r#"#!/bin/sh
# fake husk: record argv (one call per line), act on the verb
echo "$*" >> "$(dirname "$0")/argv"
while [ $# -gt 0 ]; do
  case "$1" in
    --root|--log-format) shift 2;;
    --log) LOG=$2; shift 2;;
    *) break;;
  esac
done
verb=$1; shift
case "$verb" in
  create) while [ $# -gt 1 ]; do [ "$1" = --pid-file ] && echo 4242 > "$2"; shift; done; echo container-says-hi ;;
  kill) echo '{"level":"error","msg":"container not running","time":"x"}' >> "$LOG"; exit 1 ;;
  delete) echo '{"level":"error","msg":"container c1 does not exist","time":"x"}' >> "$LOG"; exit 1 ;;
  start) echo '{"level":"error","msg":"cannot start: bad rootfs","time":"x"}' >> "$LOG"; exit 1 ;;
  ps) echo '[4242,4243]' ;;
  update) cat > "$(dirname "$LOG")/update.json" ;;
  events) echo '{"type":"stats","id":"c1","data":{"pids":{"current":2}}}' ;;
esac
"#;

static N: AtomicU32 = AtomicU32::new(0);

struct Fixture {
    dir: PathBuf,
    engine: HuskEngine,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The fake husk script, written once per test process: writing an executable while
/// another test thread forks lets that child inherit the writable fd until its exec, and
/// exec'ing the file then fails with ETXTBSY. Fixtures link to it instead.
fn fake_husk() -> &'static Path {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        // Cargo's scratch directory for integration tests, so no run leaves a file in /tmp.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("husk-shim-fake-husk");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, FAKE_HUSK).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
}

fn fixture(reaper: &Arc<Reaper>) -> Fixture {
    let script = fake_husk();
    let dir = std::env::temp_dir().join(format!(
        "husk-shim-engine-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // The script logs its argv next to `$0`, i.e. in this fixture's directory.
    let bin = dir.join("husk");
    std::os::unix::fs::symlink(script, &bin).unwrap();
    let engine = HuskEngine {
        binary: bin,
        root: dir.join("root"),
        bundle: dir.clone(),
        reaper: reaper.clone(),
        no_new_keyring: false,
    };
    Fixture { dir, engine }
}

fn argv(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("argv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn reaper() -> Arc<Reaper> {
    static R: Mutex<Option<Arc<Reaper>>> = Mutex::new(None);
    start_reaping();
    R.lock()
        .unwrap()
        .get_or_insert_with(|| Reaper::start().unwrap())
        .clone()
}

#[test]
fn create_uses_go_runc_argv_reads_the_pid_file_and_gives_stdout_to_the_process() {
    let f = fixture(&reaper());
    let (r, w) = nix::unistd::pipe().unwrap();
    let io = ProcessIo {
        stdout: Some(w.into()),
        ..Default::default()
    };
    let pid = f
        .engine
        .create(CreateOpts {
            id: "c1",
            bundle: &f.dir,
            io,
            console_socket: None,
        })
        .unwrap();
    assert_eq!(pid, 4242);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
    assert_eq!(out, "container-says-hi\n");
    let d = f.dir.display();
    assert_eq!(
        argv(&f.dir),
        [format!("--root {d}/root --log {d}/log.json --log-format json create --bundle {d} --pid-file {d}/init.pid c1")]
    );
}

#[test]
fn failures_carry_the_log_json_message_and_are_classified() {
    let f = fixture(&reaper());
    assert!(matches!(
        f.engine.kill("c1", 9, true),
        Err(EngineError::ProcessFinished { .. })
    ));
    assert!(matches!(
        f.engine.delete("c1", true),
        Err(EngineError::NoSuchContainer { .. })
    ));
    let err = f.engine.start("c1").unwrap_err().to_string();
    assert_eq!(err, "start failed: cannot start: bad rootfs");
    let calls = argv(&f.dir);
    assert!(calls[0].ends_with("kill --all c1 9"), "{calls:?}");
    assert!(calls[1].ends_with("delete --force c1"), "{calls:?}");
}

#[test]
fn ps_update_and_stats_speak_json() {
    let f = fixture(&reaper());
    assert_eq!(f.engine.ps("c1").unwrap(), [4242, 4243]);
    f.engine.update("c1", br#"{"pids":{"limit":3}}"#).unwrap();
    assert_eq!(
        std::fs::read_to_string(f.dir.join("update.json")).unwrap(),
        r#"{"pids":{"limit":3}}"#
    );
    assert_eq!(f.engine.stats("c1").unwrap()["data"]["pids"]["current"], 2);
    let calls = argv(&f.dir);
    assert!(calls[0].ends_with("ps --format json c1"));
    assert!(calls[1].ends_with("update --resources - c1"));
    assert!(calls[2].ends_with("events --stats c1"));
}

#[test]
fn exits_of_processes_not_spawned_by_the_engine_go_to_the_sink() {
    let r = reaper();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    r.set_sink(Box::new(move |pid, code| {
        s.lock().unwrap().push((pid, code))
    }));
    // A child spawned outside Reaper::spawn (as a container init is, by husk);
    // the reaping thread collects it, so no wait() here.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new("sh")
        .args(["-c", "exit 5"])
        .spawn()
        .unwrap();
    let pid = child.id();
    for _ in 0..500 {
        if seen.lock().unwrap().iter().any(|&(p, _)| p == pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        seen.lock().unwrap().contains(&(pid, 5)),
        "{:?}",
        seen.lock().unwrap()
    );
}
