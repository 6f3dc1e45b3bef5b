//! The bundle's `config.json`: parsed and validated once, in the parent, before anything is
//! created. Every error names the JSON field or path at fault, so a user can fix the bundle
//! without reading husk's source; nothing later in `create` re-checks what is checked here.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {0:?} is not a directory")]
    BundleMissing(PathBuf),
    #[error("open bundle config {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path:?}: field `{field}`: {message}")]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("ociVersion {0:?} is not supported: husk runs 1.x bundles")]
    Version(String),
    #[error("root.path {path:?}: {reason}")]
    Root { path: PathBuf, reason: &'static str },
    #[error("process is required to create a container")]
    NoProcess,
    #[error("process.args must not be empty")]
    NoArgs,
    #[error("process.cwd {0:?} must be an absolute path")]
    RelativeCwd(PathBuf),
    #[error("mounts[{index}].destination {dest:?}: {reason}")]
    MountDestination {
        index: usize,
        dest: PathBuf,
        reason: &'static str,
    },
    #[error("linux.namespaces: type {0:?} is listed twice")]
    DuplicateNamespace(String),
    #[error("linux.namespaces[{index}].path {path:?}: {reason}")]
    NamespacePath {
        index: usize,
        path: PathBuf,
        reason: String,
    },
    #[error("linux.{field}: {reason}")]
    IdMapping { field: &'static str, reason: String },
    #[error("hostname {0:?} needs a uts namespace (linux.namespaces has no \"uts\" entry)")]
    HostnameWithoutUts(String),
    #[error("domainname {0:?} needs a uts namespace (linux.namespaces has no \"uts\" entry)")]
    DomainnameWithoutUts(String),
    #[error("process.rlimits: {0:?} is listed twice")]
    DuplicateRlimit(String),
    #[error("process.rlimits[{index}] {typ}: soft limit {soft} is above hard limit {hard}")]
    RlimitOrder {
        index: usize,
        typ: String,
        soft: u64,
        hard: u64,
    },
    #[error("linux.sysctl {key:?}: {reason}")]
    Sysctl { key: String, reason: &'static str },
    #[error("hooks.{kind}[{index}].path {path:?} must be an absolute path")]
    HookPath {
        kind: &'static str,
        index: usize,
        path: PathBuf,
    },
    #[error("linux.devices[{index}].path {path:?} must be an absolute path under /dev")]
    DevicePath { index: usize, path: PathBuf },
    #[error("process.apparmorProfile {0:?} is set but AppArmor is not enabled on this host")]
    AppArmorDisabled(String),
}

/// A validated bundle: the spec plus the resolved paths every later step uses.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
}

impl Bundle {
    pub fn namespace_path(&self, typ: LinuxNamespaceType) -> Option<&Path> {
        namespaces(&self.spec)
            .iter()
            .find(|n| n.typ() == typ)
            .and_then(|n| n.path().as_deref())
    }

    /// The namespace type is listed (new when it has no path, joined when it has one).
    pub fn has_namespace(&self, typ: LinuxNamespaceType) -> bool {
        namespaces(&self.spec).iter().any(|n| n.typ() == typ)
    }

    pub fn new_namespace(&self, typ: LinuxNamespaceType) -> bool {
        namespaces(&self.spec)
            .iter()
            .any(|n| n.typ() == typ && n.path().is_none())
    }
}

pub fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// Read `<bundle>/config.json`, parse it and validate it.
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    let dir = std::fs::canonicalize(bundle)
        .map_err(|_| SpecError::BundleMissing(bundle.to_path_buf()))?;
    if !dir.is_dir() {
        return Err(SpecError::BundleMissing(bundle.to_path_buf()));
    }
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|source| SpecError::Open {
        path: path.clone(),
        source,
    })?;
    let spec = parse(&path, &text)?;
    let rootfs = resolve_rootfs(&dir, &spec)?;
    let bundle = Bundle { dir, spec, rootfs };
    validate(&bundle)?;
    Ok(bundle)
}

/// Parse config.json text; errors carry the JSON path of the bad field (`linux.namespaces[2].type`).
pub fn parse(path: &Path, text: &[u8]) -> Result<Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        SpecError::Parse {
            path: path.to_path_buf(),
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            message: inner.to_string(),
        }
    })
}

fn resolve_rootfs(dir: &Path, spec: &Spec) -> Result<PathBuf, SpecError> {
    let root = spec.root().as_ref().ok_or(SpecError::Root {
        path: PathBuf::new(),
        reason: "root is required",
    })?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(SpecError::Root {
            path: p.clone(),
            reason: "must not be empty",
        });
    }
    let joined = if p.is_absolute() {
        p.clone()
    } else {
        dir.join(p)
    };
    let canon = std::fs::canonicalize(&joined).map_err(|_| SpecError::Root {
        path: joined.clone(),
        reason: "does not exist",
    })?;
    if !canon.is_dir() {
        return Err(SpecError::Root {
            path: joined,
            reason: "is not a directory",
        });
    }
    Ok(canon)
}

fn validate(b: &Bundle) -> Result<(), SpecError> {
    let spec = &b.spec;
    validate_version(spec.version())?;
    validate_process(spec)?;
    validate_mounts(spec)?;
    validate_namespaces(b)?;
    validate_id_mappings(b)?;
    validate_uts(b)?;
    validate_sysctl(b)?;
    validate_hooks(spec)?;
    validate_devices(spec)?;
    Ok(())
}

fn validate_version(v: &str) -> Result<(), SpecError> {
    let mut parts = v.split('.');
    let ok = parts.next() == Some("1")
        && parts.next().is_some_and(|m| m.parse::<u32>().is_ok())
        && parts.next().is_some_and(|p| {
            p.split(['-', '+'])
                .next()
                .is_some_and(|p| p.parse::<u32>().is_ok())
        });
    if ok {
        Ok(())
    } else {
        Err(SpecError::Version(v.to_string()))
    }
}

fn validate_process(spec: &Spec) -> Result<(), SpecError> {
    let p = spec.process().as_ref().ok_or(SpecError::NoProcess)?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoArgs);
    }
    if !p.cwd().is_absolute() {
        return Err(SpecError::RelativeCwd(p.cwd().clone()));
    }
    let mut seen = HashSet::new();
    for (index, r) in p.rlimits().as_deref().unwrap_or(&[]).iter().enumerate() {
        let typ = format!("{:?}", r.typ());
        if !seen.insert(typ.clone()) {
            return Err(SpecError::DuplicateRlimit(typ));
        }
        if r.soft() > r.hard() {
            return Err(SpecError::RlimitOrder {
                index,
                typ,
                soft: r.soft(),
                hard: r.hard(),
            });
        }
    }
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        if !crate::process::apparmor_enabled() {
            return Err(SpecError::AppArmorDisabled(profile.to_string()));
        }
    }
    Ok(())
}

/// Mount destinations must be absolute and must not climb with `..`; whether a symlink in the
/// image climbs out is the rootfs module's concern (it resolves inside the root).
fn validate_mounts(spec: &Spec) -> Result<(), SpecError> {
    for (index, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let dest = m.destination();
        let err = |reason| SpecError::MountDestination {
            index,
            dest: dest.clone(),
            reason,
        };
        if !dest.is_absolute() {
            return Err(err("must be an absolute path"));
        }
        if dest.components().any(|c| c == Component::ParentDir) {
            return Err(err("must not contain \"..\""));
        }
    }
    Ok(())
}

fn ns_name(t: LinuxNamespaceType) -> String {
    t.to_string()
}

fn validate_namespaces(b: &Bundle) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for (index, ns) in namespaces(&b.spec).iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::DuplicateNamespace(ns_name(ns.typ())));
        }
        if let Some(path) = ns.path() {
            let err = |reason: String| SpecError::NamespacePath {
                index,
                path: path.clone(),
                reason,
            };
            if !path.is_absolute() {
                return Err(err("must be an absolute path".into()));
            }
            std::fs::metadata(path).map_err(|e| err(format!("cannot be opened: {e}")))?;
        }
    }
    Ok(())
}

fn validate_id_mappings(b: &Bundle) -> Result<(), SpecError> {
    let linux = b.spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or(&[]);
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or(&[]);
    let new_user = b.new_namespace(LinuxNamespaceType::User);
    if !b.has_namespace(LinuxNamespaceType::User) {
        if !uid.is_empty() || !gid.is_empty() {
            return Err(SpecError::IdMapping {
                field: if uid.is_empty() {
                    "gidMappings"
                } else {
                    "uidMappings"
                },
                reason: "id mappings need a user namespace in linux.namespaces".into(),
            });
        }
        return Ok(());
    }
    if new_user {
        if uid.is_empty() {
            return Err(SpecError::IdMapping {
                field: "uidMappings",
                reason: "a new user namespace needs at least one mapping".into(),
            });
        }
        if gid.is_empty() {
            return Err(SpecError::IdMapping {
                field: "gidMappings",
                reason: "a new user namespace needs at least one mapping".into(),
            });
        }
    }
    for (field, maps) in [("uidMappings", uid), ("gidMappings", gid)] {
        let mut ranges: Vec<(u64, u64, u64, u64)> = Vec::new();
        for (i, m) in maps.iter().enumerate() {
            if m.size() == 0 {
                return Err(SpecError::IdMapping {
                    field,
                    reason: format!("[{i}] has size 0"),
                });
            }
            let c = (
                m.container_id() as u64,
                m.container_id() as u64 + m.size() as u64,
            );
            let h = (m.host_id() as u64, m.host_id() as u64 + m.size() as u64);
            if c.1 > 1 << 32 || h.1 > 1 << 32 {
                return Err(SpecError::IdMapping {
                    field,
                    reason: format!("[{i}] runs past id 4294967295"),
                });
            }
            for (j, r) in ranges.iter().enumerate() {
                if c.0 < r.1 && r.0 < c.1 {
                    return Err(SpecError::IdMapping {
                        field,
                        reason: format!("[{i}] overlaps [{j}] in container ids"),
                    });
                }
                if h.0 < r.3 && r.2 < h.1 {
                    return Err(SpecError::IdMapping {
                        field,
                        reason: format!("[{i}] overlaps [{j}] in host ids"),
                    });
                }
            }
            ranges.push((c.0, c.1, h.0, h.1));
        }
        if maps.len() > 340 {
            return Err(SpecError::IdMapping {
                field,
                reason: "more than 340 mappings".into(),
            });
        }
    }
    Ok(())
}

/// As runc: a hostname/domainname needs a "uts" entry, new or joined by path (then the
/// joined namespace's name is set).
fn validate_uts(b: &Bundle) -> Result<(), SpecError> {
    let new_uts = b.has_namespace(LinuxNamespaceType::Uts);
    if let Some(h) = b.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !new_uts {
            return Err(SpecError::HostnameWithoutUts(h.to_string()));
        }
    }
    if let Some(d) = b.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        if !new_uts {
            return Err(SpecError::DomainnameWithoutUts(d.to_string()));
        }
    }
    Ok(())
}

/// runc's rules: IPC sysctls need a new ipc ns, net.* a new net ns, kernel.{host,domain}name
/// a new uts ns; anything else is refused as it would change the host.
fn validate_sysctl(b: &Bundle) -> Result<(), SpecError> {
    let Some(map) = b.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for key in map.keys() {
        let err = |reason| SpecError::Sysctl {
            key: key.clone(),
            reason,
        };
        if key.contains("..") || key.contains('/') && key.contains('.') {
            return Err(err("is not a valid sysctl name"));
        }
        let k = key.replace('/', ".");
        let ipc = matches!(
            k.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || k.starts_with("fs.mqueue.");
        if ipc {
            if !b.new_namespace(LinuxNamespaceType::Ipc) {
                return Err(err("needs a new ipc namespace"));
            }
        } else if k.starts_with("net.") {
            if !b.has_namespace(LinuxNamespaceType::Network) {
                return Err(err("needs a network namespace"));
            }
        } else if k == "kernel.hostname" || k == "kernel.domainname" {
            if !b.new_namespace(LinuxNamespaceType::Uts) {
                return Err(err("needs a new uts namespace"));
            }
        } else {
            return Err(err("is not namespaced: it would change the host"));
        }
    }
    Ok(())
}

fn validate_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(h) = spec.hooks().as_ref() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let kinds: [(&'static str, &Option<Vec<oci_spec::runtime::Hook>>); 6] = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (index, hook) in list.as_deref().unwrap_or(&[]).iter().enumerate() {
            if !hook.path().is_absolute() {
                return Err(SpecError::HookPath {
                    kind,
                    index,
                    path: hook.path().clone(),
                });
            }
        }
    }
    Ok(())
}

fn validate_devices(spec: &Spec) -> Result<(), SpecError> {
    let devs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for (index, d) in devs.iter().enumerate() {
        let p = d.path();
        if !p.is_absolute()
            || !p.starts_with("/dev")
            || p.components().any(|c| c == Component::ParentDir)
        {
            return Err(SpecError::DevicePath {
                index,
                path: p.clone(),
            });
        }
    }
    Ok(())
}

/// A container id as runc accepts it: `^[\w+-.]+$`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), crate::state::StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::state::StateError::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_outside_1_x_are_refused() {
        assert!(validate_version("1.0.2").is_ok());
        assert!(validate_version("1.2.0-rc.1").is_ok());
        for bad in ["0.1.0", "2.0.0", "1.0", "", "banana"] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_errors_name_the_json_field() {
        let text =
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse(Path::new("/b/config.json"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.namespaces[1].type"), "{err}");
        let text = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","capabilities":{"bounding":["CAP_FOO"]}}}"#;
        let err = parse(Path::new("/b/config.json"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.capabilities.bounding"), "{err}");
    }

    #[test]
    fn container_ids_follow_runcs_pattern() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
