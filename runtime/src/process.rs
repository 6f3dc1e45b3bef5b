//! The user process itself: credentials (uid, gid, supplementary groups, umask), environment,
//! working directory, LSM labels, personality, I/O priority, and the final `execve`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain, Process};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("setgroups({0:?}) for process.user.additionalGids")]
    Groups(Vec<u32>, #[source] nix::errno::Errno),
    #[error("setresgid({0}) for process.user.gid")]
    Gid(u32, #[source] nix::errno::Errno),
    #[error("setresuid({0}) for process.user.uid")]
    Uid(u32, #[source] nix::errno::Errno),
    #[error("prctl(PR_SET_KEEPCAPS)")]
    KeepCaps(#[source] nix::errno::Errno),
    #[error("prctl(PR_SET_NO_NEW_PRIVS) for process.noNewPrivileges")]
    NoNewPrivs(#[source] nix::errno::Errno),
    #[error("process.cwd {path:?}")]
    Cwd {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("process.cwd {0:?} resolves outside the container's root")]
    CwdOutside(PathBuf),
    #[error("process.cwd {0:?} resolved to another directory after the seccomp filter was loaded")]
    CwdChanged(PathBuf),
    #[error("process.args[0] {0:?}: executable file not found in $PATH")]
    NotFound(String),
    // runc's (Go's exec.LookPath) wording: containerd and docker look for these words to
    // map the failure to exit status 127 (not found) or 126 (permission denied).
    #[error("process.args[0] {0:?}: stat {0}: no such file or directory")]
    Missing(String),
    #[error("process.args[0] {0:?}: permission denied (not an executable file)")]
    NotExecutable(String),
    #[error("process.args[0] {path:?}: stat")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("process.args contains a NUL byte")]
    Nul,
    #[error("exec {path:?}")]
    Exec {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("process.apparmorProfile {profile:?}: write {path:?}")]
    AppArmor {
        profile: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("process.selinuxLabel {label:?}: write /proc/self/attr/exec")]
    SeLinux {
        label: String,
        #[source]
        source: std::io::Error,
    },
    #[error("linux.personality: set {0:#x}")]
    Personality(u64, #[source] nix::errno::Errno),
    #[error("linux.personality.domain {0:?} is not supported")]
    PersonalityDomain(String),
    #[error("process.ioPriority: ioprio_set(class {class}, priority {priority})")]
    IoPriority {
        class: String,
        priority: i64,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("process.oomScoreAdj: write {path:?}")]
    OomScore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Supplementary groups, gid then uid; capabilities are kept across the uid change with
/// PR_SET_KEEPCAPS so the capability step can set exactly the configured sets afterwards.
/// `setgroups_allowed` is false in a user namespace whose setgroups file says "deny".
pub fn switch_user(p: &Process, setgroups_allowed: bool) -> Result<(), ProcessError> {
    let user = p.user();
    if setgroups_allowed {
        let gids: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
        let groups: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).map_err(|e| ProcessError::Groups(gids, e))?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(ProcessError::KeepCaps)?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| ProcessError::Gid(user.gid(), e))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| ProcessError::Uid(user.uid(), e))?;
    nix::sys::prctl::set_keepcaps(false).map_err(ProcessError::KeepCaps)?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<(), ProcessError> {
    nix::sys::prctl::set_no_new_privs().map_err(ProcessError::NoNewPrivs)
}

/// The process environment; HOME is added from the rootfs' /etc/passwd when absent (runc).
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// chdir into `process.cwd` (inside the new root), and check the result is reachable from the
/// root: a cwd that resolves through a leaked host fd would show up as "(unreachable)"
/// (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    nix::unistd::chdir(cwd).map_err(|source| ProcessError::Cwd {
        path: cwd.to_path_buf(),
        source,
    })?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdOutside(cwd.to_path_buf())),
    }
}

/// The directory `process.cwd` was verified to be (device, inode), for [`reenter_cwd`].
pub type VerifiedCwd = (u64, u64);

/// [`enter_cwd`] and remember which directory that was: used before a seccomp filter that may
/// deny getcwd(2) is loaded (runtime-tools' linux_seccomp denies it).
pub fn verify_cwd(cwd: &Path) -> Result<VerifiedCwd, ProcessError> {
    enter_cwd(cwd)?;
    let st = nix::sys::stat::stat(".").map_err(|source| ProcessError::Cwd {
        path: cwd.to_path_buf(),
        source,
    })?;
    Ok((st.st_dev, st.st_ino))
}

/// chdir into `process.cwd` again (now as the process user) and check, with stat(2) instead of
/// getcwd(2), that it is the directory [`verify_cwd`] checked.
pub fn reenter_cwd(cwd: &Path, verified: VerifiedCwd) -> Result<(), ProcessError> {
    nix::unistd::chdir(cwd).map_err(|source| ProcessError::Cwd {
        path: cwd.to_path_buf(),
        source,
    })?;
    match nix::sys::stat::stat(".") {
        Ok(st) if (st.st_dev, st.st_ino) == verified => Ok(()),
        _ => Err(ProcessError::CwdChanged(cwd.to_path_buf())),
    }
}

/// Resolve `args[0]` against PATH from the process environment (as the shell would).
/// A name with a slash is used as it is (relative to the cwd) but must be an executable
/// file, so a missing binary fails `create` as with runc, not the later execve.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if arg0.contains('/') {
        use std::os::unix::fs::PermissionsExt;
        return match std::fs::metadata(arg0) {
            Ok(md) if !md.is_dir() && md.permissions().mode() & 0o111 != 0 => {
                Ok(PathBuf::from(arg0))
            }
            Ok(_) => Err(ProcessError::NotExecutable(arg0.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ProcessError::Missing(arg0.to_string()))
            }
            Err(source) => Err(ProcessError::Stat {
                path: PathBuf::from(arg0),
                source,
            }),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(md) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(ProcessError::NotFound(arg0.to_string()))
}

/// The argv and envp for execve, converted before the last steps so exec itself allocates
/// nothing after seccomp is loaded.
#[derive(Debug)]
pub struct ExecPlan {
    pub path: CString,
    pub path_display: PathBuf,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

impl ExecPlan {
    pub fn new(path: &Path, args: &[String], env: &[String]) -> Result<ExecPlan, ProcessError> {
        let c = |s: &str| CString::new(s).map_err(|_| ProcessError::Nul);
        Ok(ExecPlan {
            path: CString::new(path.as_os_str().as_bytes()).map_err(|_| ProcessError::Nul)?,
            path_display: path.to_path_buf(),
            args: args.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
            env: env.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
        })
    }

    pub fn exec(&self) -> ProcessError {
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Ok(never) => match never {},
            Err(source) => ProcessError::Exec {
                path: self.path_display.clone(),
                source,
            },
        }
    }
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Ask AppArmor to confine the next exec with `profile` (the spec validated it is enabled).
pub fn apply_apparmor(profile: &str) -> Result<(), ProcessError> {
    let newer = Path::new("/proc/self/attr/apparmor/exec");
    let path = if newer.exists() {
        newer.to_path_buf()
    } else {
        PathBuf::from("/proc/self/attr/exec")
    };
    std::fs::write(&path, format!("exec {profile}")).map_err(|source| ProcessError::AppArmor {
        profile: profile.into(),
        path,
        source,
    })
}

/// SELinux exec label; a no-op on hosts without SELinux, as runc's `selinux.SetExecLabel`.
pub fn apply_selinux(label: &str) -> Result<(), ProcessError> {
    if !selinux_enabled() {
        return Ok(());
    }
    std::fs::write("/proc/self/attr/exec", label).map_err(|source| ProcessError::SeLinux {
        label: label.into(),
        source,
    })
}

pub fn apply_personality(p: &LinuxPersonality) -> Result<(), ProcessError> {
    const PER_LINUX: u64 = 0x0000;
    const PER_LINUX32: u64 = 0x0008;
    let base = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    crate::sys::process::set_personality(base as libc::c_ulong)
        .map_err(|e| ProcessError::Personality(base, e))
}

pub fn apply_io_priority(p: &Process) -> Result<(), ProcessError> {
    use oci_spec::runtime::IOPriorityClass as C;
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class = match io.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    crate::sys::process::set_io_priority(class, io.priority().clamp(0, 7) as u16).map_err(
        |source| ProcessError::IoPriority {
            class: format!("{:?}", io.class()),
            priority: io.priority(),
            source,
        },
    )
}

/// Written by the parent into /proc/<pid>/oom_score_adj: lowering it needs privileges the
/// child may have given up in its user namespace.
pub fn write_oom_score_adj(proc_root: &Path, pid: i32, value: i32) -> Result<(), ProcessError> {
    let path = proc_root.join(pid.to_string()).join("oom_score_adj");
    std::fs::write(&path, value.to_string())
        .map_err(|source| ProcessError::OomScore { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_on_the_process_path_not_huskss() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", dir.path().display())];
        assert_eq!(find_executable("tool", &env).unwrap(), bin);
        assert!(matches!(
            find_executable("nope", &env),
            Err(ProcessError::NotFound(_))
        ));
        let abs = bin.to_str().unwrap();
        assert_eq!(find_executable(abs, &env).unwrap(), bin);
    }

    #[test]
    fn a_path_to_a_missing_or_non_executable_file_is_refused_with_runcs_words() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = find_executable(missing.to_str().unwrap(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("no such file or directory"),
            "{err}"
        );
        let plain = dir.path().join("data");
        std::fs::write(&plain, "x").unwrap();
        let err = find_executable(plain.to_str().unwrap(), &[]).unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{err}");
        let err = find_executable(dir.path().to_str().unwrap(), &[]).unwrap_err();
        assert!(matches!(err, ProcessError::NotExecutable(_)), "{err}");
    }
}
