//! Real-kernel tests: a child loads a compiled profile with `Program::load` and execs busybox;
//! we assert on what busybox reports and how it exits.
//!
//! The child is this test binary run again on the same test (`--exact`) with
//! `HUSK_SECCOMP_CHILD` set: every test first calls [`play_child_if_asked`], which in the child
//! compiles the profile, sets no_new_privs, loads the filter, hands a notify listener to the
//! parent through `send_listener_fd`, and execs `/bin/busybox`. No `unsafe` and no fork in the
//! multi-threaded test process: the filter is installed on the thread that then execs.

use std::env;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use husk::seccomp::{compile_json, send_listener_fd};
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
use nix::fcntl::{FcntlArg, FdFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

#[path = "fixtures/seccomp/docker_profile.rs"]
mod docker_profile;

const CHILD_ENV: &str = "HUSK_SECCOMP_CHILD";
const PROFILE_ENV: &str = "HUSK_SECCOMP_PROFILE";
const ARGV_ENV: &str = "HUSK_SECCOMP_ARGV";
/// Set: the child keeps the listener across exec and prints its number instead of sending it.
const INHERIT_ENV: &str = "HUSK_SECCOMP_INHERIT_LISTENER";
const LISTENER_LINE: &str = "listener-fd=";
/// Set: the child drops CAP_SYS_ADMIN and skips no_new_privs, then reports the load error.
const UNPRIVILEGED_ENV: &str = "HUSK_SECCOMP_UNPRIVILEGED";
const BUSYBOX: &str = "/bin/busybox";

/// In the child role (env set by [`spawn_confined`]): load the profile and exec busybox.
fn play_child_if_asked() {
    if env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let profile: Value = serde_json::from_str(&env::var(PROFILE_ENV).unwrap()).unwrap();
    let argv: Vec<String> = serde_json::from_str(&env::var(ARGV_ENV).unwrap()).unwrap();
    let program = compile_json(&profile).expect("child: profile compiles");
    if env::var_os(UNPRIVILEGED_ENV).is_some() {
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .unwrap();
        let err = program
            .load()
            .expect_err("child: load needs NNP or CAP_SYS_ADMIN");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        eprintln!("{err}: {}", source.unwrap_or_default());
        std::process::exit(3);
    }
    nix::sys::prctl::set_no_new_privs().expect("child: no_new_privs");
    let listener = program.load().expect("child: seccomp filter loads");
    assert_eq!(listener.is_some(), program.uses_notify);
    if env::var_os(INHERIT_ENV).is_some() {
        let fd = listener.expect("child: notify profile gives a listener");
        nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        println!("{LISTENER_LINE}{}", fd.into_raw_fd());
    } else if let Some(fd) = listener {
        let pid = std::process::id() as i32;
        let state = json!({"ociVersion": "1.2.0", "id": "seccomp-kernel-test",
            "status": "creating", "pid": pid, "bundle": "/"});
        send_listener_fd(&program, &fd, pid, &state).expect("child: listener fd sent");
    }
    let err = Command::new(BUSYBOX).args(&argv).exec();
    panic!("child: exec {BUSYBOX}: {err}");
}

/// Runs this binary's test `test` again as a child confined by `profile`, execing busybox `argv`.
fn spawn_confined(test: &str, profile: &Value, argv: &[&str]) -> Child {
    confined_command(test, profile, argv)
        .spawn()
        .expect("spawn the confined child")
}

fn confined_command(test: &str, profile: &Value, argv: &[&str]) -> Command {
    let mut cmd = Command::new(env::current_exe().unwrap());
    cmd.args([
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(CHILD_ENV, "1")
    .env(PROFILE_ENV, profile.to_string())
    .env(ARGV_ENV, json!(argv).to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn run_confined(test: &str, profile: &Value, argv: &[&str]) -> Output {
    spawn_confined(test, profile, argv)
        .wait_with_output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Default ALLOW; both `mkdir` and `mkdirat` get `action` (libc may use either).
fn mkdir_profile(action: Value) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"]});
    rule.as_object_mut()
        .unwrap()
        .extend(action.as_object().unwrap().clone());
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

#[test]
fn errno_rule_makes_mkdir_fail_with_operation_not_permitted() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("blocked");
    let profile = mkdir_profile(json!({"action": "SCMP_ACT_ERRNO"}));
    let out = run_confined(
        "errno_rule_makes_mkdir_fail_with_operation_not_permitted",
        &profile,
        &["mkdir", target.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "stderr: {}",
        stderr(&out)
    );
    assert!(!target.exists());
}

#[test]
fn errno_ret_38_reaches_the_process_as_enosys() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("blocked");
    let profile = mkdir_profile(json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    let out = run_confined(
        "errno_ret_38_reaches_the_process_as_enosys",
        &profile,
        &["mkdir", target.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Function not implemented"),
        "stderr: {}",
        stderr(&out)
    );
    assert!(!target.exists());
}

#[test]
fn unconfined_syscalls_still_work_under_a_filter() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("allowed");
    // Only rmdir is refused: mkdir goes through.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]});
    let out = run_confined(
        "unconfined_syscalls_still_work_under_a_filter",
        &profile,
        &["mkdir", target.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(target.is_dir());
}

#[test]
fn kill_process_kills_the_process_with_sigsys() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("blocked");
    let profile = mkdir_profile(json!({"action": "SCMP_ACT_KILL_PROCESS"}));
    let out = run_confined(
        "kill_process_kills_the_process_with_sigsys",
        &profile,
        &["mkdir", target.to_str().unwrap()],
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "status: {:?}",
        out.status
    );
    assert!(!target.exists());
}

#[test]
fn argument_condition_blocks_only_the_matching_call() {
    play_child_if_asked();
    const PER_LINUX32: u64 = 0x0008;
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["personality"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"}]}]});
    let test = "argument_condition_blocks_only_the_matching_call";
    // `linux32` calls personality(PER_LINUX32): refused.
    let out = run_confined(test, &profile, &["linux32", BUSYBOX, "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "stderr: {}",
        stderr(&out)
    );
    // `linux64` calls personality(PER_LINUX): allowed.
    let out = run_confined(test, &profile, &["linux64", BUSYBOX, "true"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

/// Receives the `ContainerProcessState` message and the listener fd from the agent socket.
/// Gives up (and reports the child's stderr) if the child exits or 20s pass first.
fn accept_listener(sock: &UnixListener, child: &mut Child) -> (Value, RawFd) {
    sock.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match sock.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept on the agent socket: {e}"),
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("child exited ({status}) without sending its listener; stderr: {err}");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child sent no listener within 20s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    stream.set_nonblocking(false).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(rights) = c {
            fds.extend(rights);
        }
    }
    let len = msg.bytes;
    assert_eq!(fds.len(), 1, "exactly one fd passed with SCM_RIGHTS");
    (serde_json::from_slice(&buf[..len]).unwrap(), fds[0])
}

#[test]
fn notify_listener_answers_the_syscall_for_the_container() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("agent.sock");
    let target = dir.path().join("notified");
    let sock = UnixListener::bind(&agent).unwrap();
    let mut profile = mkdir_profile(json!({"action": "SCMP_ACT_NOTIFY"}));
    profile["listenerPath"] = json!(agent);
    profile["listenerMetadata"] = json!("test-metadata");
    let mut child = spawn_confined(
        "notify_listener_answers_the_syscall_for_the_container",
        &profile,
        &["mkdir", target.to_str().unwrap()],
    );
    let pid = child.id();

    let (state, fd) = accept_listener(&sock, &mut child);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["pid"], json!(pid));
    assert_eq!(state["metadata"], json!("test-metadata"));
    assert_eq!(state["ociVersion"], json!("1.2.0"));
    assert_eq!(state["state"]["id"], json!("seccomp-kernel-test"));

    // The agent answers busybox's mkdir with ENOSPC.
    let req = answer_one(
        fd,
        |id| ScmpNotifResp::new_error(id, -libc::ENOSPC, ScmpNotifRespFlags::empty()),
        &mut child,
    );
    assert_eq!(req.pid, pid);
    let mkdir = [
        ScmpSyscall::from_name("mkdir").unwrap(),
        ScmpSyscall::from_name("mkdirat").unwrap(),
    ];
    assert!(
        mkdir.contains(&req.data.syscall),
        "notified syscall {:?}",
        req.data.syscall
    );

    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    nix::unistd::close(fd).unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("No space left on device"), "stderr: {err}");
    assert!(!target.exists());
}

#[test]
fn docker_default_profile_lets_a_shell_run_and_blocks_unshare() {
    play_child_if_asked();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let host = docker_profile::amd64_default_caps(docker_profile::parse_kernel(&release));
    let profile = docker_profile::to_oci(&docker_profile::docker_default(), &host);
    let test = "docker_default_profile_lets_a_shell_run_and_blocks_unshare";

    let out = run_confined(test, &profile, &["sh", "-c", "echo ok"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "ok"), "stdout: {stdout}");

    // unshare(2) needs CAP_SYS_ADMIN in Docker's profile, which the default caps lack.
    let out = run_confined(test, &profile, &["unshare", "-U", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn load_reports_the_kernels_refusal() {
    // An empty program is refused by the kernel (EINVAL): reported as a load error naming
    // seccomp(2), not a panic. Loading nothing leaves this test process unconfined.
    let program = husk::seccomp::Program {
        filter: Vec::new(),
        flags: 0,
        uses_notify: false,
        listener_path: None,
        listener_metadata: None,
    };
    let err = program.load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "loading the filter: seccomp(SECCOMP_SET_MODE_FILTER, flags 0x0)"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("EINVAL"), "{source}");
}

/// Answers the next notification on `listener` with `resp(id)`, in a thread; bounded wait.
fn answer_one(listener: RawFd, resp: fn(u64) -> ScmpNotifResp, child: &mut Child) -> ScmpNotifReq {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let answer = || -> Result<ScmpNotifReq, libseccomp::error::SeccompError> {
            let req = ScmpNotifReq::receive(listener)?;
            resp(req.id).respond(listener)?;
            Ok(req)
        };
        let _ = tx.send(answer().map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(req) => req.expect("agent receives and answers the notification"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no seccomp notification within 20s");
        }
    }
}

#[test]
fn parent_fetches_the_listener_with_pidfd_getfd_and_spoofs_success() {
    play_child_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("spoofed");
    let mut profile = mkdir_profile(json!({"action": "SCMP_ACT_NOTIFY"}));
    profile["listenerPath"] = json!(dir.path().join("unused.sock"));
    // "sh-ready" tells the parent the exec into busybox is over: fetching the listener while
    // the child is still inside execve raced under load.
    let script = format!("echo sh-ready; read go; exec mkdir {}", target.display());
    let mut child = confined_command(
        "parent_fetches_the_listener_with_pidfd_getfd_and_spoofs_success",
        &profile,
        &["sh", "-c", &script],
    )
    .env(INHERIT_ENV, "1")
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();

    // The child prints the number of its listener, then waits on stdin inside busybox sh.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let number = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("child printed no listener number; stderr: {err}");
        }
        if let Some(n) = line.trim().strip_prefix(LISTENER_LINE) {
            break n.parse::<RawFd>().unwrap();
        }
    };
    let mut line = String::new();
    while !line.contains("sh-ready") {
        line.clear();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            panic!("child exited before its shell started");
        }
    }
    let listener = husk::sys::seccomp::fetch_listener_fd(pid as i32, number)
        .unwrap_or_else(|e| panic!("pidfd_getfd of the child's fd {number}: {e}"));
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();

    // Spoofed success: mkdir returns 0 although nothing was created.
    let req = answer_one(
        listener.as_raw_fd(),
        |id| ScmpNotifResp::new_val(id, 0, ScmpNotifRespFlags::empty()),
        &mut child,
    );
    assert_eq!(req.pid, pid);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!target.exists());
}

#[test]
fn load_without_no_new_privs_needs_cap_sys_admin() {
    play_child_if_asked();
    let profile = mkdir_profile(json!({"action": "SCMP_ACT_ERRNO"}));
    let out = confined_command(
        "load_without_no_new_privs_needs_cap_sys_admin",
        &profile,
        &["true"],
    )
    .env(UNPRIVILEGED_ENV, "1")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("loading the filter: seccomp(SECCOMP_SET_MODE_FILTER, flags 0x0): EACCES"),
        "stderr: {}",
        stderr(&out)
    );
}
