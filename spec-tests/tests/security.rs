//! Isolation the runtime must keep: no leaked fds, no host cwd, no way to
//! rewrite the runtime binary through /proc (CVE-2019-5736), device and
//! seccomp restrictions.

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use serde_json::json;
use spec_tests::runtime::Opts;
use spec_tests::{Bundle, Runtime};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

fn fds(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn host_fds_without_cloexec_do_not_leak_into_the_container() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "host-secret").unwrap();
    // Deliberately inheritable: the runtime receives it and must close it.
    let raw = open(secret.path(), OFlag::O_RDONLY, Mode::empty()).expect("open without CLOEXEC");
    let _guard: OwnedFd = unsafe_own(raw);
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("ls /proc/self/fd; ls -l /proc/1/fd/");
    let c = rt.container(&b);
    let out = c.run().ok("run");
    let (listing, long) = out.stdout.split_once("total").unwrap_or((&out.stdout, ""));
    // ls itself holds fd 3 for the directory it lists.
    assert_eq!(fds(listing), vec![0, 1, 2, 3], "{out:#?}");
    let secret_name = secret.path().file_name().unwrap().to_str().unwrap();
    assert!(
        !long.contains(secret_name),
        "pid 1 holds the host file: {out:#?}"
    );
}

fn unsafe_own(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by open(2) and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn preserve_fds_passes_fd_3_into_the_container() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "preserved-content").unwrap();
    let fd = unsafe_own(
        open(
            file.path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap(),
    );
    let src = fd.as_raw_fd();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("ls /proc/self/fd; cat <&3");
    let c = rt.container(&b);
    let bundle = b.path().to_str().unwrap().to_string();
    let out = rt.cmd_with(
        &["run", "--preserve-fds", "1", "--bundle", &bundle, &c.id],
        Opts {
            pre_exec: Some(Box::new(move || {
                // dup2 clears FD_CLOEXEC on the new descriptor.
                nix::unistd::dup2(src, 3)
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            })),
            ..Opts::default()
        },
    );
    let out = out.ok("run --preserve-fds 1");
    let (listing, content) = out.stdout.rsplit_once('\n').unwrap_or(("", ""));
    assert_eq!(content, "preserved-content", "{out:#?}");
    assert_eq!(fds(listing), vec![0, 1, 2, 3, 4], "{out:#?}");
}

#[test]
fn the_runtimes_cwd_is_not_reachable_from_the_container() {
    let host_cwd = tempfile::tempdir().unwrap();
    std::fs::write(host_cwd.path().join("host-only-file"), "x").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("readlink /proc/self/cwd; readlink /proc/1/root; ls -a /proc/1/cwd/ /proc/self/cwd/ | grep -c host-only-file; true");
    let c = rt.container(&b);
    let bundle = b.path().to_str().unwrap().to_string();
    let out = rt
        .cmd_with(
            &["run", "--bundle", &bundle, &c.id],
            Opts {
                cwd: Some(host_cwd.path()),
                ..Opts::default()
            },
        )
        .ok("run from a host cwd");
    assert_eq!(out.stdout, "/\n/\n0\n");
}

/// CVE-2019-5736. Container A is created but not started, so its init is
/// the runtime binary waiting inside A's namespaces. Container B joins A's
/// pid namespace, where that init is pid 1, opens `/proc/1/exe`, and after
/// A is started (the init has exec'd `sleep`) reopens the fd for writing
/// through `/proc/self/fd/3`. Were that fd the host's runtime binary rather
/// than a sealed copy, the append would land in it.
#[test]
fn a_container_cannot_overwrite_the_runtime_binary_through_proc_exe() {
    let bin = spec_tests::runtime::runtime_binary();
    let before = std::fs::read(&bin).expect("read runtime binary");
    let rt = Runtime::new();
    let mut victim = Bundle::busybox();
    victim.args(&["sleep", "30"]);
    let a = rt.container(&victim);
    a.create().ok("create the victim container");
    let init = a.pid();

    let mut attacker = Bundle::busybox();
    attacker
        .root_readonly(false)
        .namespace("pid", Some(&format!("/proc/{init}/ns/pid")))
        .caps(&[
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_KILL",
            "CAP_SETUID",
            "CAP_SETGID",
            "CAP_SYS_PTRACE",
        ])
        .sh(r#"
            r=/tmp/report
            if exec 3</proc/1/exe; then echo "opened $(readlink /proc/1/exe)" >> $r
            else echo open-failed >> $r; exit 0; fi
            while [ ! -e /tmp/go ]; do usleep 10000; done
            m=0
            while [ $m -lt 50 ]; do m=$((m+1))
              if err=$( (echo pwn >> /proc/self/fd/3) 2>&1 ); then echo wrote >> $r; exit 0; fi
              usleep 10000
            done
            echo "write-failed: $err" >> $r
        "#);
    let b = rt.container(&attacker);
    b.create().ok("create the attacker container");
    b.start().ok("start the attacker container");
    let report = attacker.rootfs().join("tmp/report");
    let read_report = || std::fs::read_to_string(&report).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while read_report().is_empty() {
        assert!(Instant::now() < deadline, "attacker never reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The victim's init now leaves the runtime binary for `sleep`.
    a.start().ok("start the victim container");
    std::fs::write(attacker.rootfs().join("tmp/go"), "").unwrap();
    loop {
        let r = read_report();
        if r.contains("wrote") || r.contains("write-failed") || r.contains("open-failed") {
            break;
        }
        assert!(Instant::now() < deadline, "attacker did not finish: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = read_report();
    let after = std::fs::read(&bin).expect("read runtime binary");
    assert!(
        before == after,
        "runtime binary {} was modified from a container: {r}",
        bin.display()
    );
    assert!(
        !r.contains("wrote"),
        "container could write through the runtime's exe: {r}"
    );
    // ETXTBSY means the fd is a binary other processes are executing,
    // i.e. most likely the shared host binary: the write was only
    // prevented by chance. A sealed or private copy fails with EPERM.
    assert!(
        !r.contains("Text file busy"),
        "the container holds the runtime's (busy) executable for writing: {r}"
    );
    eprintln!("attack report: {r}");
}

#[test]
fn default_devices_exist_and_host_devices_do_not() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh(
        "for d in null zero full random urandom tty; do test -c /dev/$d && echo $d; done; \
         echo x > /dev/null && echo null-writable; head -c 4 /dev/zero | wc -c; \
         ls /dev | grep -cE '^(sd|vd|nvme|mem|kmsg)'; true",
    );
    let c = rt.container(&b);
    let out = c.run_ok();
    assert_eq!(
        out,
        "null\nzero\nfull\nrandom\nurandom\ntty\nnull-writable\n4\n0\n"
    );
}

#[test]
fn device_cgroup_denies_a_block_device_created_with_mknod() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false)
        .caps(&["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    // /dev/mem is char 1:1; not in the default allow list.
    b.sh("mknod /tmp/mem c 1 1 && (head -c 1 /tmp/mem >/dev/null 2>&1 && echo readable || echo denied)");
    let c = rt.container(&b);
    let out = c.run();
    assert!(
        !out.stdout.contains("readable"),
        "device cgroup let /dev/mem through: {out:#?}"
    );
}

#[test]
fn seccomp_errno_rule_blocks_the_listed_syscalls() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false).seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 } ]
    }));
    b.sh("mkdir /tmp/blocked 2>&1; test -d /tmp/blocked && echo created || echo blocked; touch /tmp/ok && echo touch-ok");
    let c = rt.container(&b);
    let out = c.run_ok();
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.ends_with("blocked\ntouch-ok\n"), "{out}");
}

#[test]
fn seccomp_kill_action_kills_the_process() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false).seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [ { "names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS" } ]
    }));
    b.args(&["uname"]);
    let c = rt.container(&b);
    let out = c.run();
    assert_eq!(out.code, 128 + 31, "process should die of SIGSYS: {out:#?}");
    assert_eq!(out.stdout, "", "uname must not have printed: {out:#?}");
}
