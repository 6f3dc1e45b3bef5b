//! Broken bundles and commands: every one must fail with a non-zero exit,
//! an error naming what was wrong (on stderr and as the last error line of
//! the JSON log), no panic, and nothing left behind (state dir, cgroups,
//! host mounts, processes).
//!
//! The expected substrings are husk's wording (its errors name the JSON
//! field or path). runc words things differently, so they are only checked
//! when `strict_messages()` is on (default unless the binary is named runc).

use serde_json::{json, Value};
use spec_tests::host::{host_mountpoints, new_mounts_mentioning, test_cgroups};
use spec_tests::runtime::{strict_messages, Opts};
use spec_tests::{Bundle, Runtime};
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

/// What to run against the broken bundle.
enum Action {
    /// `create --bundle <bundle> <bundle.id>`
    Create,
    /// `create --bundle <bundle> <id>` with a given id.
    CreateId(&'static str),
    /// `create --bundle <path> <id>` with a given bundle path.
    CreateBundle(&'static str),
    /// A valid container is created first, then a second `create` reuses its id.
    CreateTwice,
    /// A valid container is created first, then `kill <id> <signal>`.
    KillWith(&'static str),
    /// `<command> <nonexistent id>`.
    OnMissing(&'static str),
}

fn raw_config(b: &mut Bundle, text: &str) {
    *b.config_mut() = Value::Null;
    fs::write(b.path().join("config.json"), text).unwrap();
}

fn check(setup: impl FnOnce(&mut Bundle), action: Action, expect: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "30"]);
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("log.json");
    let bundle = b.path().to_str().unwrap().to_string();
    let id = b.id.clone();

    // Containers made on purpose before the bad command (guarded).
    let mut pre = Vec::new();
    if matches!(action, Action::CreateTwice | Action::KillWith(_)) {
        let good = rt.container(&b);
        good.create().ok("create the pre-existing container");
        pre.push(good);
    }
    setup(&mut b);
    b.save();

    let root_before: BTreeSet<_> = fs::read_dir(rt.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let cgroups_before = test_cgroups(&id);
    let procs_before: BTreeSet<i32> = rt.processes_of(&id).into_iter().collect();
    let mounts_before = host_mountpoints();

    let args: Vec<String> = match &action {
        Action::Create | Action::CreateTwice => vec![
            "create".into(),
            "--bundle".into(),
            bundle.clone(),
            id.clone(),
        ],
        Action::CreateId(other) => vec![
            "create".into(),
            "--bundle".into(),
            bundle.clone(),
            (*other).into(),
        ],
        Action::CreateBundle(path) => vec![
            "create".into(),
            "--bundle".into(),
            (*path).into(),
            id.clone(),
        ],
        Action::KillWith(sig) => vec!["kill".into(), id.clone(), (*sig).into()],
        Action::OnMissing(cmd) => vec![(*cmd).into(), format!("{id}-missing")],
    };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // Guard whatever the bad command might have created under this id.
    let _guard = if pre.is_empty() {
        Some(rt.container_with_id(&b, &id))
    } else {
        None
    };
    let out = rt
        .cmd_with(
            &argv,
            Opts {
                log: Some(&log),
                ..Opts::default()
            },
        )
        .failed(&format!("{argv:?}"));

    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let last_error = log_text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["level"] == "error")
        .unwrap_or_else(|| {
            panic!("no \"level\":\"error\" line in the JSON log:\n{log_text}\n{out:#?}")
        });
    if strict_messages() {
        // `a|b`: either spelling names the fault well enough.
        let mentions = |text: &str| {
            let text = text.to_lowercase();
            expect.split('|').any(|w| text.contains(&w.to_lowercase()))
        };
        assert!(
            mentions(&out.stderr),
            "stderr should mention {expect:?}: {out:#?}"
        );
        let msg = last_error["msg"].as_str().unwrap_or_default();
        assert!(
            mentions(msg),
            "last log error should mention {expect:?}: {last_error}"
        );
    }
    assert!(
        !log_text.contains("panicked"),
        "log shows a panic: {log_text}"
    );

    let root_after: BTreeSet<_> = fs::read_dir(rt.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(root_after, root_before, "state left under --root");
    assert_eq!(test_cgroups(&id), cgroups_before, "cgroup dirs left behind");
    let leaked = new_mounts_mentioning(&mounts_before, &[&bundle, &id]);
    assert!(leaked.is_empty(), "host mounts left behind: {leaked:?}");
    // Checked before the guard's `delete --force` could clean up for it;
    // a process that is still exiting gets a moment.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let procs_after: BTreeSet<i32> = rt.processes_of(&id).into_iter().collect();
        if procs_after.is_subset(&procs_before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runtime processes left running: {procs_after:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

macro_rules! bad_input {
    ($($name:ident: $setup:expr, $action:expr, $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check($setup, $action, $expect);
            }
        )*
    };
}

bad_input! {
    missing_config_json_is_rejected:
        |b: &mut Bundle| { *b.config_mut() = Value::Null; let _ = fs::remove_file(b.path().join("config.json")); },
        Action::Create, "config.json";
    invalid_json_is_rejected:
        |b: &mut Bundle| raw_config(b, "{\"ociVersion\": \"1.0.2\", \"process\": "),
        Action::Create, "config.json";
    json_of_the_wrong_shape_is_rejected:
        |b: &mut Bundle| raw_config(b, "[1, 2, 3]"),
        Action::Create, "config.json";
    ancient_oci_version_is_rejected:
        |b: &mut Bundle| { b.set("/ociVersion", json!("0.1.0")); },
        Action::Create, "ociVersion";
    future_major_oci_version_is_rejected:
        |b: &mut Bundle| { b.set("/ociVersion", json!("9.9.9")); },
        Action::Create, "ociVersion";
    missing_rootfs_dir_is_rejected:
        |b: &mut Bundle| { fs::rename(b.rootfs(), b.path().join("elsewhere")).unwrap(); },
        Action::Create, "rootfs";
    missing_root_is_rejected:
        |b: &mut Bundle| { b.remove("/root"); },
        Action::Create, "root";
    missing_process_is_rejected:
        |b: &mut Bundle| { b.remove("/process"); },
        Action::Create, "process";
    relative_mount_destination_is_rejected:
        |b: &mut Bundle| { b.mount(json!({ "destination": "relative/dir", "type": "tmpfs", "source": "tmpfs" })); },
        Action::Create, "destination";
    dot_dot_mount_destination_is_rejected:
        |b: &mut Bundle| {
            let dest = format!("/tmp/../../../../husk-dotdot-{}", b.id);
            b.mount(json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" }));
        },
        Action::Create, "destination";
    unknown_mount_type_is_rejected:
        |b: &mut Bundle| { b.mount(json!({ "destination": "/x", "type": "nosuchfs", "source": "none" })); },
        Action::Create, "nosuchfs|mounts[7]";
    missing_bind_source_is_rejected:
        |b: &mut Bundle| { b.mount(json!({ "destination": "/x", "type": "bind", "source": "/nonexistent-husk-src", "options": ["rbind"] })); },
        Action::Create, "/nonexistent-husk-src";
    unknown_namespace_type_is_rejected:
        |b: &mut Bundle| { b.namespace("foo", None); },
        Action::Create, "foo";
    duplicate_namespace_type_is_rejected:
        |b: &mut Bundle| { b.push("/linux/namespaces", json!({ "type": "network" })); },
        Action::Create, "namespaces";
    nonexistent_namespace_path_is_rejected:
        |b: &mut Bundle| { b.namespace("network", Some("/nonexistent-husk-ns")); },
        Action::Create, "/nonexistent-husk-ns";
    user_namespace_without_mappings_is_rejected:
        |b: &mut Bundle| { b.namespace("user", None); },
        Action::Create, "uidMappings";
    zero_size_uid_mapping_is_rejected:
        |b: &mut Bundle| { b.namespace("user", None).uid_mapping(0, 100000, 0).gid_mapping(0, 100000, 65536); },
        Action::Create, "uidMappings";
    overlapping_uid_mappings_are_rejected:
        |b: &mut Bundle| { b.namespace("user", None).uid_mapping(0, 100000, 1000).uid_mapping(500, 300000, 1000).gid_mapping(0, 100000, 65536); },
        Action::Create, "uidMappings";
    duplicate_id_is_rejected:
        |_b: &mut Bundle| {},
        Action::CreateTwice, "already exists";
    empty_id_is_rejected:
        |_b: &mut Bundle| {},
        Action::CreateId(""), "id";
    id_with_a_slash_is_rejected:
        |_b: &mut Bundle| {},
        Action::CreateId("a/b"), "id";
    dot_dot_id_is_rejected:
        |_b: &mut Bundle| {},
        Action::CreateId(".."), "id";
    nonexistent_bundle_dir_is_rejected:
        |_b: &mut Bundle| {},
        Action::CreateBundle("/nonexistent-husk-bundle"), "/nonexistent-husk-bundle";
    unknown_signal_name_is_rejected:
        |_b: &mut Bundle| {},
        Action::KillWith("SIGFOO"), "SIGFOO";
    out_of_range_signal_number_is_rejected:
        |_b: &mut Bundle| {},
        Action::KillWith("99"), "99";
    kill_of_a_missing_container_fails:
        |_b: &mut Bundle| {},
        Action::OnMissing("kill"), "does not exist";
    start_of_a_missing_container_fails:
        |_b: &mut Bundle| {},
        Action::OnMissing("start"), "does not exist";
    unknown_capability_is_rejected:
        |b: &mut Bundle| { b.cap_set("bounding", &["CAP_KILL", "CAP_FOO"]); },
        Action::Create, "CAP_FOO";
    terminal_without_console_socket_is_rejected:
        |b: &mut Bundle| { b.terminal(true); },
        Action::Create, "console";
    missing_prestart_hook_binary_is_rejected:
        |b: &mut Bundle| { b.hook("prestart", json!({ "path": "/nonexistent-husk-hook" })); },
        Action::Create, "/nonexistent-husk-hook";
    missing_create_runtime_hook_binary_is_rejected:
        |b: &mut Bundle| { b.hook("createRuntime", json!({ "path": "/nonexistent-husk-hook2" })); },
        Action::Create, "/nonexistent-husk-hook2";
    empty_args_are_rejected:
        |b: &mut Bundle| { b.set("/process/args", json!([])); },
        Action::Create, "args";
    args_naming_a_missing_binary_are_rejected:
        |b: &mut Bundle| { b.args(&["nosuchbinary-husk"]); },
        Action::Create, "nosuchbinary-husk";
    relative_cwd_is_rejected:
        |b: &mut Bundle| { b.cwd("tmp"); },
        Action::Create, "cwd";
    unknown_rlimit_type_is_rejected:
        |b: &mut Bundle| { b.rlimit("RLIMIT_FOO", 1, 1); },
        Action::Create, "RLIMIT_FOO";
    rlimit_soft_above_hard_is_rejected:
        |b: &mut Bundle| { b.rlimit("RLIMIT_NOFILE", 2048, 1024); },
        Action::Create, "rlimits";
    unknown_seccomp_action_is_rejected:
        |b: &mut Bundle| { b.seccomp(json!({ "defaultAction": "SCMP_ACT_FOO" })); },
        Action::Create, "SCMP_ACT_FOO";
    unknown_syscall_name_with_errno_is_rejected:
        |b: &mut Bundle| { b.seccomp(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ { "names": ["no_such_syscall_husk"], "action": "SCMP_ACT_BOGUS" } ] })); },
        Action::Create, "SCMP_ACT_BOGUS";
    hostname_without_uts_namespace_is_rejected:
        |b: &mut Bundle| { b.remove_namespace("uts"); },
        Action::Create, "hostname";
    uid_of_the_wrong_type_is_rejected:
        |b: &mut Bundle| { b.set("/process/user/uid", json!("root")); },
        Action::Create, "uid";
    out_of_range_oom_score_adj_is_rejected:
        |b: &mut Bundle| { b.oom_score_adj(5000); },
        Action::Create, "oomScoreAdj";
    unknown_sysctl_is_rejected:
        |b: &mut Bundle| { b.set("/linux/sysctl", json!({ "kernel.no_such_husk_knob": "1" })); },
        Action::Create, "kernel.no_such_husk_knob";
}
