//! OOM notifications from a container's memory cgroup.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` against
//! `memory.oom_control` fires on every OOM (and once more when the cgroup is
//! removed, which ends the watch). cgroup v2: inotify on `memory.events`, and an
//! OOM is a rise of its `oom_kill` counter. The cgroup is found from the init's
//! `/proc/<pid>/cgroup`, so the shim needs no knowledge of husk's path rules.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::eventfd::EventFd;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryCgroup {
    V1(PathBuf),
    V2(PathBuf),
}

/// The memory cgroup of `pid`: v1's `memory` hierarchy if mounted, else the
/// unified hierarchy when it has `memory.events`.
pub fn memory_cgroup_of(proc_root: &Path, cgroup_root: &Path, pid: u32) -> Option<MemoryCgroup> {
    let table = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let mut unified = None;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "memory") {
            let dir = cgroup_root.join("memory").join(rel);
            if dir.join("memory.oom_control").exists() {
                return Some(MemoryCgroup::V1(dir));
            }
        } else if ctrls.is_empty() {
            let dir = cgroup_root.join(rel);
            if dir.join("memory.events").exists() {
                unified = Some(MemoryCgroup::V2(dir));
            }
        }
    }
    unified
}

/// The `oom_kill` counter of a v2 `memory.events` file.
pub fn oom_kills(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Calls `on_oom` for each OOM in `cg` until the cgroup goes away.
pub fn watch(cg: MemoryCgroup, on_oom: Box<dyn Fn() + Send>) -> std::io::Result<()> {
    match cg {
        MemoryCgroup::V1(dir) => {
            let efd = EventFd::new()?;
            let control = File::open(dir.join("memory.oom_control"))?;
            let mut reg = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.event_control"))?;
            reg.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())?;
            std::thread::Builder::new()
                .name("oom".into())
                .spawn(move || {
                    let _control = control;
                    while efd.read().is_ok() {
                        if !dir.exists() {
                            break;
                        }
                        on_oom();
                    }
                })?;
        }
        MemoryCgroup::V2(dir) => {
            let file = dir.join("memory.events");
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
            inotify.add_watch(&file, AddWatchFlags::IN_MODIFY)?;
            let mut seen = oom_kills(&std::fs::read_to_string(&file)?);
            std::thread::Builder::new()
                .name("oom".into())
                .spawn(move || {
                    while let Ok(events) = inotify.read_events() {
                        if events
                            .iter()
                            .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                        {
                            break;
                        }
                        let Ok(text) = std::fs::read_to_string(&file) else {
                            break;
                        };
                        let now = oom_kills(&text);
                        if now > seen {
                            seen = now;
                            on_oom();
                        }
                    }
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str, lines: &str, files: &[&str]) -> (PathBuf, PathBuf) {
        let base =
            std::env::temp_dir().join(format!("husk-shim-oom-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let proc_root = base.join("proc");
        std::fs::create_dir_all(proc_root.join("42")).unwrap();
        std::fs::write(proc_root.join("42/cgroup"), lines).unwrap();
        let cg = base.join("cg");
        for f in files {
            let p = cg.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        (proc_root, cg)
    }

    #[test]
    fn v1_memory_hierarchy_wins_on_a_hybrid_host() {
        let (p, cg) = tree(
            "hybrid",
            "12:memory:/husk-test/c1\n0::/husk-test/c1\n",
            &[
                "memory/husk-test/c1/memory.oom_control",
                "husk-test/c1/memory.events",
            ],
        );
        assert_eq!(
            memory_cgroup_of(&p, &cg, 42),
            Some(MemoryCgroup::V1(cg.join("memory/husk-test/c1")))
        );
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn pure_v2_uses_the_unified_path() {
        let (p, cg) = tree("v2", "0::/pod/c2\n", &["pod/c2/memory.events", "x"]);
        assert_eq!(
            memory_cgroup_of(&p, &cg, 42),
            Some(MemoryCgroup::V2(cg.join("pod/c2")))
        );
        assert_eq!(memory_cgroup_of(&p, &cg, 43), None);
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn oom_kill_counter_is_read_from_memory_events() {
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 2);
        assert_eq!(oom_kills(""), 0);
    }
}
