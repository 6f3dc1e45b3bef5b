//! Host-side observations: cgroup directories, mount tables, namespace
//! inodes and processes, used to check what a container left behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where cgroup v1 hierarchies (and the unified one) are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A pure cgroup v2 host (the test guest), as opposed to v1 or hybrid.
pub fn cgroup_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// The host path of a container's cgroup file. `v1_controller` names the v1 hierarchy the
/// file lives in; on v2 every file is in the one directory.
pub fn cgroup_file(v1_controller: &str, id: &str, file: &str) -> PathBuf {
    if cgroup_v2() {
        PathBuf::from(format!("{CGROUP_ROOT}/husk-test/{id}/{file}"))
    } else {
        PathBuf::from(format!(
            "{CGROUP_ROOT}/{v1_controller}/husk-test/{id}/{file}"
        ))
    }
}

/// Existing `/sys/fs/cgroup/<hierarchy>/husk-test/<id>` directories.
pub fn test_cgroups(id: &str) -> Vec<PathBuf> {
    // Ids that can't name a single directory under /husk-test own no cgroup.
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir(CGROUP_ROOT) else {
        return Vec::new();
    };
    // v1: one directory per hierarchy; v2: the single tree at the root.
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join("husk-test").join(id))
        .chain(std::iter::once(
            Path::new(CGROUP_ROOT).join("husk-test").join(id),
        ))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Removes the test's cgroup directories (rmdir only, children first). If a
/// cgroup still holds processes, they were started by this test's container,
/// so they are SIGKILLed by pid first.
pub fn remove_test_cgroups(id: &str) {
    for dir in test_cgroups(id) {
        for _ in 0..50 {
            if rmdir_tree(&dir) {
                break;
            }
            kill_cgroup_members(&dir);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn rmdir_tree(dir: &Path) -> bool {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    fs::remove_dir(dir).is_ok() || !dir.exists()
}

fn kill_cgroup_members(dir: &Path) {
    let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if pid > 1 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Mount points listed in a mountinfo text (field 5, octal escapes decoded).
pub fn mountpoints(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_octal)
        .collect()
}

/// `(mount point, mount options, fs type, super options)` per mountinfo line.
pub fn mount_entries(mountinfo: &str) -> Vec<(String, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            Some((
                unescape_octal(fields.get(4)?),
                fields.get(5)?.to_string(),
                fields.get(sep + 1)?.to_string(),
                fields.get(sep + 3).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host's mount points right now.
pub fn host_mountpoints() -> BTreeSet<String> {
    mountpoints(&fs::read_to_string("/proc/self/mountinfo").expect("read host mountinfo"))
        .into_iter()
        .collect()
}

/// Host mount points present now but not in `before` that mention `needle`
/// (a bundle path or container id), so parallel tests don't interfere.
pub fn new_mounts_mentioning(before: &BTreeSet<String>, needles: &[&str]) -> Vec<String> {
    host_mountpoints()
        .difference(before)
        .filter(|m| needles.iter().any(|n| m.contains(n)))
        .cloned()
        .collect()
}

/// `readlink /proc/<pid>/ns/<ns>`, e.g. `net:[4026531840]`.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Pids of live (non-zombie) processes, other than this one, whose
/// environment contains any of `env_needles` as a substring (a marker
/// variable, or a runtime's state dir that its init helper is told about),
/// or whose cgroup file mentions `/husk-test/<cgroup_id>`.
pub fn processes_matching(env_needles: &[&str], cgroup_id: Option<&str>) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let cgroup = cgroup_id.map(|id| format!("/husk-test/{id}\n"));
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).map(|p| p != me).unwrap_or(false))
        .filter(|pid| !is_zombie(*pid))
        .filter(|pid| {
            let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let env = String::from_utf8_lossy(&env);
            let in_cgroup = cgroup.as_ref().is_some_and(|c| {
                fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .map(|s| s.contains(c.as_str()))
                    .unwrap_or(false)
            });
            in_cgroup || env_needles.iter().any(|n| !n.is_empty() && env.contains(n))
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /with\\040space rw,nosuid - tmpfs tmpfs rw,size=1024k,mode=1770
";

    #[test]
    fn mountinfo_points_are_unescaped() {
        assert_eq!(mountpoints(INFO), vec!["/", "/with space"]);
    }

    #[test]
    fn mount_entries_split_options_type_and_super_options() {
        let e = mount_entries(INFO);
        assert_eq!(e[1].1, "rw,nosuid");
        assert_eq!(e[1].2, "tmpfs");
        assert_eq!(e[1].3, "rw,size=1024k,mode=1770");
        assert_eq!(e[0].2, "ext4");
    }

    #[test]
    fn ids_that_are_not_one_path_component_own_no_cgroups() {
        assert!(test_cgroups("").is_empty());
        assert!(test_cgroups("..").is_empty());
        assert!(test_cgroups("a/b").is_empty());
    }
}
