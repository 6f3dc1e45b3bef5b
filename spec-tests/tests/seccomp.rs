//! seccomp through the whole runtime: Docker's default profile runs a busybox shell, custom
//! errno values reach the process, argument conditions match only their case, and a NOTIFY
//! profile hands the listener fd (with runc's container-process-state JSON) to
//! `listenerPath`, where a test agent answers the syscall.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;
use spec_tests::{Bundle, Runtime};

#[path = "../../runtime/tests/fixtures/seccomp/docker_profile.rs"]
#[allow(dead_code)]
mod docker_profile;

fn kernel() -> (u64, u64) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    docker_profile::parse_kernel(&release)
}

#[test]
fn dockers_default_profile_runs_a_busybox_shell_and_blocks_unshare() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let profile = docker_profile::to_oci(
        &docker_profile::docker_default(),
        &docker_profile::amd64_default_caps(kernel()),
    );
    b.seccomp(profile).sh("echo shell-ok; grep Seccomp: /proc/self/status; unshare -U true && echo unshare=allowed || echo unshare=blocked");
    let out = rt.container(&b).run_ok();
    assert!(out.contains("shell-ok"), "{out}");
    assert!(
        out.contains("Seccomp:\t2"),
        "filter mode not in force: {out}"
    );
    assert!(out.contains("unshare=blocked"), "{out}");
}

#[test]
fn errno_ret_is_the_errno_the_process_sees() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false)
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]
        }))
        .sh("mkdir /x 2>&1; true");
    let out = rt.container(&b).run_ok();
    assert!(out.contains("No space left on device"), "{out}");
}

#[test]
fn argument_conditions_match_only_their_case() {
    // personality(0xffffffff) only queries; block personality(PER_LINUX32 = 8) alone.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    }))
    .sh("linux32 true && echo linux32=allowed || echo linux32=blocked; linux64 true && echo linux64=allowed || echo linux64=blocked");
    let out = rt.container(&b).run_ok();
    assert!(out.contains("linux32=blocked"), "{out}");
    assert!(out.contains("linux64=allowed"), "{out}");
}

/// Receive runc's ContainerProcessState message and the listener fd on one connection.
fn receive_listener(listener: &UnixListener) -> (serde_json::Value, OwnedFd) {
    listener.set_nonblocking(false).unwrap();
    let (conn, _) = listener
        .accept()
        .expect("the runtime connects to listenerPath");
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed these fds for us; we own them from here on.
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    let state: serde_json::Value = serde_json::from_slice(&buf[..n]).expect("state JSON");
    (state, fd.expect("an fd came with the message"))
}

#[test]
fn notify_hands_the_listener_to_the_agent_which_answers_the_syscall() {
    let rt = Runtime::new();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::busybox();
    b.root_readonly(false)
        .no_new_privileges(true)
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "husk-test-agent",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .sh("mkdir /notified 2>&1; echo done");
    let c = rt.container(&b);
    let agent = std::thread::spawn(move || {
        let (state, fd) = receive_listener(&listener);
        let req = ScmpNotifReq::receive(fd.as_raw_fd()).expect("receive the notification");
        ScmpNotifResp::new_error(req.id, -libc::EDQUOT, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .expect("answer the notification");
        state
    });
    c.create().ok("create");
    c.start().ok("start");
    c.wait_for_status("stopped", Duration::from_secs(20));
    let state = agent.join().expect("agent thread");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "husk-test-agent", "{state}");
    assert_eq!(state["state"]["id"], c.id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    // The agent answered EDQUOT: the directory was never made.
    assert!(
        !b.rootfs().join("notified").exists(),
        "mkdir went through despite the agent's answer"
    );
}
