//! Unit tests: compile profiles and run the resulting BPF on synthetic `seccomp_data` with a
//! small classic-BPF interpreter, so every assertion is about what the kernel would decide.

use libseccomp::{ScmpArch, ScmpSyscall};
use serde_json::{json, Value};

use super::*;

#[path = "../../tests/fixtures/seccomp/docker_profile.rs"]
mod docker_profile;

const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_NOTIFY: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const X32_BIT: i32 = 0x4000_0000;

/// Runs `prog` on a `struct seccomp_data` {nr, arch, ip = 0, args} and returns its verdict.
fn run(prog: &[libc::sock_filter], nr: i32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        let k = i.k as usize;
        let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
        match i.code {
            0x20 => a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap()),
            0x00 => a = i.k,
            0x01 => x = i.k,
            0x60 => a = mem[k],
            0x61 => x = mem[k],
            0x02 => mem[k] = a,
            0x03 => mem[k] = x,
            0x54 => a &= i.k,
            0x5c => a &= x,
            0x07 => x = a,
            0x87 => a = x,
            0x05 => pc += k,
            0x15 => pc += jump(a == i.k),
            0x25 => pc += jump(a > i.k),
            0x35 => pc += jump(a >= i.k),
            0x45 => pc += jump(a & i.k != 0),
            0x1d => pc += jump(a == x),
            0x2d => pc += jump(a > x),
            0x3d => pc += jump(a >= x),
            0x4d => pc += jump(a & x != 0),
            0x06 => return i.k,
            0x16 => return a,
            code => panic!("opcode {code:#x} not handled by the test interpreter"),
        }
    }
}

fn nr(name: &str) -> i32 {
    i32::from(ScmpSyscall::from_name(name).expect("syscall known to libseccomp"))
}

/// Verdict of `prog` for syscall `name` on the host architecture (x86_64 here).
fn verdict(p: &Program, name: &str, args: [u64; 6]) -> u32 {
    run(&p.filter, nr(name), AUDIT_X86_64, args)
}

fn compile_ok(profile: Value) -> Program {
    compile_json(&profile).unwrap_or_else(|e| panic!("profile should compile: {e}"))
}

fn error_of(profile: Value) -> String {
    match compile_json(&profile) {
        Ok(_) => panic!("profile should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn host_is_x86_64() {
    // The verdict helpers assume the x86_64 audit architecture.
    assert_eq!(ScmpArch::native(), ScmpArch::X8664);
}

#[test]
fn each_action_maps_to_its_seccomp_return_value() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {"names": ["gettid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["chdir"], "action": "SCMP_ACT_TRAP"},
            {"names": ["fchdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getcwd"], "action": "SCMP_ACT_TRACE"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"},
            {"names": ["getuid"], "action": "SCMP_ACT_NOTIFY"},
        ]
    }));
    let none = [0; 6];
    assert_eq!(verdict(&p, "mkdir", none), RET_ERRNO | 38);
    assert_eq!(verdict(&p, "rmdir", none), RET_ERRNO | libc::EPERM as u32);
    assert_eq!(verdict(&p, "getpid", none), RET_KILL_THREAD);
    assert_eq!(verdict(&p, "gettid", none), RET_KILL_THREAD);
    assert_eq!(verdict(&p, "getppid", none), RET_KILL_PROCESS);
    assert_eq!(verdict(&p, "chdir", none), RET_TRAP);
    assert_eq!(verdict(&p, "fchdir", none), RET_TRACE | 7);
    assert_eq!(verdict(&p, "getcwd", none), RET_TRACE | libc::EPERM as u32);
    assert_eq!(verdict(&p, "uname", none), RET_LOG);
    assert_eq!(verdict(&p, "getuid", none), RET_NOTIFY);
    assert_eq!(verdict(&p, "read", none), RET_ALLOW);
    assert!(p.uses_notify);
    assert_eq!(p.flags, sys::FLAG_NEW_LISTENER);
    assert_eq!(
        p.listener_path.as_deref(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
}

#[test]
fn default_action_uses_default_errno_ret() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(verdict(&p, "read", [0; 6]), RET_ALLOW);
    assert_eq!(verdict(&p, "write", [0; 6]), RET_ERRNO | 13);
    assert!(!p.uses_notify);
    assert_eq!(p.flags, 0);
}

/// `personality` gets EPERM when `arg0 <op> value` holds; returns which of `probes` matched.
fn matches(op: &str, value: u64, value_two: Option<u64>, probes: &[u64]) -> Vec<bool> {
    let mut arg = json!({"index": 0, "value": value, "op": op});
    if let Some(two) = value_two {
        arg["valueTwo"] = json!(two);
    }
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [arg]}]
    }));
    probes
        .iter()
        .map(|&a| verdict(&p, "personality", [a, 0, 0, 0, 0, 0]) == RET_ERRNO | 1)
        .collect()
}

#[test]
fn argument_operators_compare_full_64_bit_values() {
    let big = 0x1_0000_0000u64;
    let probes = [7, 8, 9, big - 1, big, big + 1];
    assert_eq!(
        matches("SCMP_CMP_EQ", 8, None, &probes),
        [false, true, false, false, false, false]
    );
    assert_eq!(
        matches("SCMP_CMP_NE", 8, None, &probes),
        [true, false, true, true, true, true]
    );
    assert_eq!(
        matches("SCMP_CMP_LT", 8, None, &probes),
        [true, false, false, false, false, false]
    );
    assert_eq!(
        matches("SCMP_CMP_LE", 8, None, &probes),
        [true, true, false, false, false, false]
    );
    assert_eq!(
        matches("SCMP_CMP_GE", 8, None, &probes),
        [false, true, true, true, true, true]
    );
    assert_eq!(
        matches("SCMP_CMP_GT", 8, None, &probes),
        [false, false, true, true, true, true]
    );
    assert_eq!(
        matches("SCMP_CMP_EQ", big, None, &probes),
        [false, false, false, false, true, false]
    );
    assert_eq!(
        matches("SCMP_CMP_GT", big, None, &probes),
        [false, false, false, false, false, true]
    );
}

#[test]
fn masked_eq_uses_value_as_mask_and_value_two_as_result() {
    let probes = [0x1234, 0x12ff, 0x1334, 0x0034];
    assert_eq!(
        matches("SCMP_CMP_MASKED_EQ", 0xff00, Some(0x1200), &probes),
        [true, true, false, false]
    );
    // Without valueTwo the expected result is 0 (Docker's clone rule relies on it).
    assert_eq!(
        matches("SCMP_CMP_MASKED_EQ", 0xff00, None, &probes),
        [false, false, false, true]
    );
}

#[test]
fn conditions_on_distinct_arguments_are_anded() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}
        ]}]
    }));
    assert_eq!(verdict(&p, "socket", [2, 1, 0, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(verdict(&p, "socket", [2, 2, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict(&p, "socket", [1, 1, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn conditions_repeating_an_argument_become_separate_rules_like_runc() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}
        ]}]
    }));
    assert_eq!(verdict(&p, "socket", [2, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(verdict(&p, "socket", [10, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(verdict(&p, "socket", [1, 0, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn rule_with_the_default_action_is_skipped_instead_of_failing() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    assert_eq!(verdict(&p, "mkdir", [0; 6]), RET_ERRNO | 1);
    // Same action, other errno: a different action for libseccomp, so it is kept.
    assert_eq!(verdict(&p, "rmdir", [0; 6]), RET_ERRNO | 38);
    assert_eq!(verdict(&p, "read", [0; 6]), RET_ALLOW);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_in_any_kernel", "mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(verdict(&p, "mkdir", [0; 6]), RET_ERRNO | 1);
}

#[test]
fn errors_name_the_offending_field() {
    let base = |syscalls: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls});
    assert_eq!(
        error_of(base(json!([
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir"], "action": "SCMP_ACT_FOO"}
        ]))),
        r#"linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO""#
    );
    assert_eq!(
        error_of(base(
            json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": 1, "op": "SCMP_CMP_ALMOST"}]}])
        )),
        r#"linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ALMOST""#
    );
    assert_eq!(
        error_of(base(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]))),
        "linux.seccomp.syscalls[0].args[0].index: argument index 6 is out of range (syscalls take at most 6)"
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]})),
        r#"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX""#
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]})),
        r#"linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FAST""#
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_DENY"})),
        r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_DENY""#
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000})),
        "linux.seccomp.defaultErrnoRet: 70000 does not fit in the 16 bits seccomp returns"
    );
    assert_eq!(
        error_of(base(
            json!([{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}])
        )),
        "linux.seccomp.syscalls[0].names[1]: empty syscall name"
    );
}

#[test]
fn notify_rules_follow_runcs_restrictions() {
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"})),
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    assert_eq!(
        error_of(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]})
        ),
        "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})),
        "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY"
    );
    assert_eq!(
        error_of(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})),
        "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule"
    );
}

#[test]
fn flags_become_seccomp_flag_bits_and_tsync_is_ignored() {
    let p = compile_ok(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}));
    assert_eq!(p.flags, sys::FLAG_LOG | sys::FLAG_SPEC_ALLOW);
    let p = compile_ok(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        p.flags,
        sys::FLAG_WAIT_KILLABLE_RECV | sys::FLAG_NEW_LISTENER
    );
}

#[test]
fn enosys_stub_answers_syscalls_newer_than_the_profile() {
    let p = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "mkdir", "openat"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    let none = [0; 6];
    assert_eq!(run(&p.filter, nr("openat"), AUDIT_X86_64, none), RET_ALLOW);
    // Below the largest listed syscall but not listed: the default action.
    assert_eq!(
        run(&p.filter, nr("getpid"), AUDIT_X86_64, none),
        RET_ERRNO | 1
    );
    // Above it: ENOSYS, on every declared architecture and on x32.
    assert_eq!(run(&p.filter, 1000, AUDIT_X86_64, none), enosys);
    assert_eq!(run(&p.filter, X32_BIT | 1000, AUDIT_X86_64, none), enosys);
    assert_eq!(run(&p.filter, X32_BIT, AUDIT_X86_64, none), RET_ALLOW); // x32 read
    assert_eq!(run(&p.filter, 1000, AUDIT_I386, none), enosys);
    assert_eq!(run(&p.filter, 3, AUDIT_I386, none), RET_ALLOW); // i386 read
}

#[test]
fn no_enosys_stub_for_permissive_defaults_or_undeclared_architectures() {
    let allow = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(run(&allow.filter, 1000, AUDIT_X86_64, [0; 6]), RET_ALLOW);
    // runc only patches the architectures the profile lists.
    let undeclared = compile_ok(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(
        run(&undeclared.filter, 1000, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 1
    );
}

#[test]
fn typed_oci_spec_profile_compiles_like_its_json() {
    let json = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["read", "write", "mkdir"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    });
    let typed: LinuxSeccomp = serde_json::from_value(json.clone()).unwrap();
    let a = compile(&typed).unwrap();
    let b = compile_ok(json);
    let insns = |p: &Program| {
        p.filter
            .iter()
            .map(|i| (i.code, i.jt, i.jf, i.k))
            .collect::<Vec<_>>()
    };
    assert_eq!(insns(&a), insns(&b));
    assert_eq!(a.flags, sys::FLAG_SPEC_ALLOW);
}

#[test]
fn docker_default_profile_compiles_and_behaves_like_docker() {
    let host = docker_profile::amd64_default_caps((6, 1));
    let oci = docker_profile::to_oci(&docker_profile::docker_default(), &host);
    assert_eq!(
        oci["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let p = compile_ok(oci);
    assert!(p.filter.len() < sys::MAX_INSTRUCTIONS);
    let eperm = RET_ERRNO | 1;
    assert_eq!(verdict(&p, "mkdir", [0; 6]), RET_ALLOW);
    assert_eq!(verdict(&p, "ptrace", [0; 6]), RET_ALLOW); // minKernel 4.8
    assert_eq!(
        verdict(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(verdict(&p, "personality", [0x1, 0, 0, 0, 0, 0]), eperm);
    // clone without namespace flags is fine, CLONE_NEWUSER needs CAP_SYS_ADMIN.
    assert_eq!(
        verdict(&p, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict(&p, "clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        verdict(&p, "clone3", [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
    assert_eq!(verdict(&p, "reboot", [0; 6]), eperm);
    assert_eq!(verdict(&p, "mount", [0; 6]), eperm);
    assert_eq!(verdict(&p, "chroot", [0; 6]), RET_ALLOW); // CAP_SYS_CHROOT is a default cap
                                                          // A syscall number no kernel has yet: ENOSYS from the stub, so libc falls back.
    assert_eq!(
        run(&p.filter, 1000, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
}

#[test]
fn container_process_state_has_runcs_fields() {
    let mut p = compile_ok(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "listenerMetadata": "hello",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let state = json!({"ociVersion": "1.2.0", "id": "c1", "status": "created", "pid": 42,
        "bundle": "/b"});
    assert_eq!(
        process_state(&p, 42, &state),
        json!({"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 42, "metadata": "hello",
               "state": state})
    );
    p.listener_metadata = None;
    assert!(process_state(&p, 42, &state).get("metadata").is_none());
}

#[test]
fn send_listener_fd_names_the_listener_path_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-agent.sock");
    let p = compile_ok(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let err = send_listener_fd(&p, &fd, 1, &json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("connecting to the seccomp agent at linux.seccomp.listenerPath {path:?}")
    );
}
