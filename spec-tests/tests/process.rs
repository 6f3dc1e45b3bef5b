//! The container process: pid 1, hostname, env, cwd, user, umask,
//! capabilities, no_new_privs, rlimits and oom_score_adj, as seen from inside.

use spec_tests::{cap_mask, Bundle, Runtime};

/// Runs `script` in a default busybox container after `edit`, returns stdout.
fn run_sh(edit: impl FnOnce(&mut Bundle), script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh(script);
    edit(&mut b);
    let c = rt.container(&b);
    c.run_ok()
}

/// The value of `key:` in a /proc/<pid>/status text.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"))
        .trim()
}

#[test]
fn the_configured_process_is_pid_1() {
    assert_eq!(run_sh(|_| {}, "echo $$"), "1\n");
}

#[test]
fn only_the_container_processes_are_visible() {
    let out = run_sh(
        |_| {},
        "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '",
    );
    // sh, ls, grep, sort, tr: all children of pid 1, nothing from the host.
    let pids: Vec<u32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.first(), Some(&1), "{out}");
    assert!(
        pids.len() <= 6,
        "host processes visible in the pid namespace: {out}"
    );
}

#[test]
fn hostname_is_set_from_the_config() {
    assert_eq!(
        run_sh(
            |b| {
                b.hostname("husk-host");
            },
            "hostname"
        ),
        "husk-host\n"
    );
}

#[test]
fn env_is_exactly_the_configured_list() {
    let out = run_sh(
        |b| {
            b.env(&["PATH=/bin", "FOO=bar baz", "EMPTY="]);
        },
        "env | sort",
    );
    let mut lines: Vec<&str> = out.lines().collect();
    // The shell itself adds PWD and SHLVL (busybox ash does that).
    lines.retain(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="));
    // HOME is added from /etc/passwd when the config doesn't set it (as runc does).
    assert_eq!(
        lines,
        vec!["EMPTY=", "FOO=bar baz", "HOME=/root", "PATH=/bin"],
        "{out}"
    );
}

#[test]
fn home_comes_from_etc_passwd_unless_configured() {
    let out = run_sh(
        |b| {
            b.user(1000, 1000, &[]);
            b.env(&["PATH=/bin"]);
        },
        "echo $HOME",
    );
    assert_eq!(out, "/home/user\n");
    let out = run_sh(
        |b| {
            b.env(&["PATH=/bin", "HOME=/custom"]);
        },
        "echo $HOME",
    );
    assert_eq!(out, "/custom\n");
}

#[test]
fn cwd_is_the_configured_directory() {
    assert_eq!(
        run_sh(
            |b| {
                b.cwd("/tmp");
            },
            "pwd"
        ),
        "/tmp\n"
    );
}

#[test]
fn a_missing_cwd_is_created() {
    assert_eq!(
        run_sh(
            |b| {
                b.cwd("/home/user/work");
                b.root_readonly(false);
            },
            "pwd"
        ),
        "/home/user/work\n"
    );
}

#[test]
fn user_uid_gid_and_additional_gids_are_applied() {
    let out = run_sh(
        |b| {
            b.user(1000, 1000, &[10, 20]);
        },
        "cat /proc/self/status; echo id=$(id -u):$(id -g)",
    );
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1000\t1000\t1000\t1000");
    let mut groups: Vec<&str> = status_field(&out, "Groups").split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, vec!["10", "20"], "{out}");
    assert!(out.contains("id=1000:1000"), "{out}");
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    let out = run_sh(|_| {}, "cat /proc/self/status");
    assert_eq!(status_field(&out, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_field(&out, "Groups"), "");
}

#[test]
fn umask_is_applied() {
    let out = run_sh(
        |b| {
            b.umask(0o027);
            b.root_readonly(false);
        },
        "umask; touch /tmp/f; stat -c %a /tmp/f",
    );
    assert_eq!(out, "0027\n640\n");
}

#[test]
fn capability_sets_match_the_config_exactly() {
    let caps = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
    ];
    let out = run_sh(
        |b| {
            b.caps(&caps);
        },
        "cat /proc/self/status",
    );
    let mask = cap_mask(&caps);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&out, set), mask, "{set} in\n{out}");
    }
}

#[test]
fn default_spec_capabilities_have_an_empty_inheritable_set() {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let out = run_sh(|_| {}, "cat /proc/self/status");
    let mask = cap_mask(&caps);
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status_field(&out, set), mask, "{set} in\n{out}");
    }
    assert_eq!(status_field(&out, "CapInh"), cap_mask(&[]));
    // Ambient caps need the inheritable bit, which the default spec lacks.
    assert_eq!(status_field(&out, "CapAmb"), cap_mask(&[]));
}

#[test]
fn a_non_root_user_keeps_configured_capabilities() {
    let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let out = run_sh(
        |b| {
            b.user(1000, 1000, &[]);
            b.caps(&caps);
        },
        "cat /proc/self/status",
    );
    let mask = cap_mask(&caps);
    for set in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&out, set), mask, "{set} in\n{out}");
    }
}

#[test]
fn empty_capabilities_drop_everything() {
    let out = run_sh(
        |b| {
            b.caps(&[]);
        },
        "cat /proc/self/status",
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&out, set), cap_mask(&[]), "{set} in\n{out}");
    }
}

#[test]
fn no_new_privileges_is_set() {
    let out = run_sh(
        |b| {
            b.no_new_privileges(true);
        },
        "cat /proc/self/status",
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
}

#[test]
fn no_new_privileges_false_leaves_it_unset() {
    let out = run_sh(
        |b| {
            b.no_new_privileges(false);
        },
        "cat /proc/self/status",
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
}

#[test]
fn rlimits_nofile_and_nproc_are_applied() {
    let out = run_sh(
        |b| {
            b.rlimit("RLIMIT_NOFILE", 1234, 2345)
                .rlimit("RLIMIT_NPROC", 111, 222);
        },
        "cat /proc/self/limits; ulimit -n",
    );
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("Max open files"), "Max open files 1234 2345 files");
    assert_eq!(line("Max processes"), "Max processes 111 222 processes");
    assert_eq!(out.lines().last(), Some("1234"));
}

#[test]
fn oom_score_adj_is_applied() {
    assert_eq!(
        run_sh(
            |b| {
                b.oom_score_adj(123);
            },
            "cat /proc/self/oom_score_adj"
        ),
        "123\n"
    );
}

#[test]
fn args_are_passed_without_a_shell() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["echo", "a  b", "$HOME", "*"]);
    let c = rt.container(&b);
    assert_eq!(c.run_ok(), "a  b $HOME *\n");
}

#[test]
fn args_are_resolved_through_the_configured_path() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["busybox", "echo", "via-path"]).env(&["PATH=/bin"]);
    let c = rt.container(&b);
    assert_eq!(c.run_ok(), "via-path\n");
}

#[test]
fn the_container_runs_in_its_own_cgroup_under_husk_test() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("cat /proc/self/cgroup");
    let c = rt.container(&b);
    let out = c.run_ok();
    let want = format!("/husk-test/{}", c.id);
    let memory = out
        .lines()
        .find(|l| {
            // v1: the memory hierarchy's line; v2: the single "0::" line.
            let ctrl = l.split(':').nth(1);
            ctrl == Some("memory") || (spec_tests::host::cgroup_v2() && l.starts_with("0::"))
        })
        .unwrap_or_else(|| panic!("no memory line in {out}"));
    assert!(
        memory.ends_with(&want),
        "memory cgroup is {memory}, want {want}"
    );
}

#[test]
fn sysctls_are_applied_inside_the_namespaces() {
    let out = run_sh(
        |b| {
            b.set(
                "/linux/sysctl",
                serde_json::json!({ "net.ipv4.ip_forward": "1", "kernel.msgmax": "4096" }),
            );
        },
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
    );
    assert_eq!(out, "1\n4096\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    assert_ne!(
        host.trim(),
        "4096",
        "sysctl leaked to the host's ipc namespace"
    );
}

#[test]
fn an_absolute_args0_is_executed_directly() {
    assert_eq!(
        run_sh(
            |b| {
                b.args(&["/bin/echo", "abs"]).env(&[]);
            },
            ""
        ),
        "abs\n"
    );
}

#[test]
fn domainname_is_set_from_the_config() {
    let out = run_sh(
        |b| {
            b.set("/domainname", serde_json::json!("husk.example"));
        },
        "cat /proc/sys/kernel/domainname",
    );
    assert_eq!(out, "husk.example\n");
}
