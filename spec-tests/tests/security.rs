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

/// CVE-2019-5736: a process in the container opens /proc/<pid>/exe of a
/// runtime process that entered the container (`exec`), waits for it to
/// exit, then reopens that fd for writing through /proc/self/fd. If that
/// fd were the host's runtime binary, the write would land in it.
#[test]
fn a_container_cannot_overwrite_the_runtime_binary_through_proc_exe() {
    let bin = spec_tests::runtime::runtime_binary();
    let before = std::fs::read(&bin).expect("read runtime binary");
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false).caps(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_SYS_PTRACE",
    ]);
    b.sh(r#"
        n=0
        while [ $n -lt 3000 ]; do n=$((n+1))
          for p in /proc/[0-9]*; do q=${p#/proc/}
            [ "$q" = 1 ] && continue; [ "$q" = $$ ] && continue
            t=$(readlink /proc/$q/exe 2>/dev/null)
            [ "$t" = /bin/busybox ] && continue
            if exec 3</proc/$q/exe; then echo "opened $q $t" >> /tmp/report; break 2; fi 2>/dev/null
          done
        done
        [ -e /proc/self/fd/3 ] || { echo never-opened >> /tmp/report; exit 0; }
        m=0
        while [ $m -lt 100 ]; do m=$((m+1))
          if echo pwn 2>/dev/null >> /proc/self/fd/3; then echo wrote >> /tmp/report; exit 0; fi
          usleep 20000
        done
        echo write-failed >> /tmp/report
        "#);
    let c = rt.container(&b);
    c.create().ok("create");
    c.start().ok("start");
    let report = b.rootfs().join("tmp/report");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut execs_ok = 0;
    for _ in 0..20 {
        if std::fs::read_to_string(&report)
            .unwrap_or_default()
            .contains("opened")
        {
            break;
        }
        execs_ok += usize::from(c.exec(&["true"]).success());
    }
    // Without a working exec there was no runtime process to attack.
    assert!(
        execs_ok > 0
            || std::fs::read_to_string(&report)
                .unwrap_or_default()
                .contains("opened"),
        "exec never succeeded, so the attack was not attempted"
    );
    loop {
        let r = std::fs::read_to_string(&report).unwrap_or_default();
        if r.contains("wrote") || r.contains("write-failed") || r.contains("never-opened") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "attack script did not finish: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = std::fs::read_to_string(&report).unwrap_or_default();
    let after = std::fs::read(&bin).expect("read runtime binary");
    assert!(
        before == after,
        "runtime binary {} was modified from a container: {r}",
        bin.display()
    );
    assert!(
        !r.contains("wrote"),
        "container could write to a runtime process's exe: {r}"
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
