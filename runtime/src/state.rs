//! The state store: one directory per container under `--root` (default `/run/husk`).
//!
//! `<root>/<id>/state.json` is written atomically (temp file + rename), and every command that
//! changes a container holds an exclusive `flock` on `<root>/<id>` for its duration, so two
//! concurrent `husk` calls never see half a state. `exec.fifo` lives beside it from `create`
//! until `start` (its existence is what "created" means, as in runc).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupsPath;

pub const DEFAULT_ROOT: &str = "/run/husk";
const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {0:?}: use letters, digits and _ + - . only")]
    InvalidId(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotExist(String),
    #[error("create state root {path:?}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock {path:?}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("corrupt state file {path:?}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The OCI status, plus runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What husk remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub init_pid: i32,
    /// Field 22 of /proc/<pid>/stat at create time: tells a recycled pid from our init.
    pub init_start_time: u64,
    pub created: String,
    pub owner: String,
    pub cgroup: CgroupsPath,
    pub spec: Spec,
}

/// runc's `state` JSON (also each element of `list --format json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

impl Record {
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.spec.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
            owner: self.owner.clone(),
        }
    }
}

/// The `--root` directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A container directory held under an exclusive lock for the life of this value.
#[derive(Debug)]
pub struct Locked {
    pub dir: PathBuf,
    pub id: String,
    _lock: Flock<File>,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make the state root (mode 0700, as runc) if it does not exist.
    pub fn ensure_root(&self) -> Result<(), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|source| StateError::Root {
                path: self.root.clone(),
                source,
            })
    }

    /// Make `<root>/<id>` (fails if it exists) and lock it.
    pub fn create(&self, id: &str) -> Result<Locked, StateError> {
        crate::spec::validate_id(id)?;
        self.ensure_root()?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.into()))
            }
            Err(source) => {
                return Err(StateError::Io {
                    op: "create state dir",
                    path: dir,
                    source,
                })
            }
        }
        lock(dir, id)
    }

    /// Lock an existing container's directory.
    pub fn open(&self, id: &str) -> Result<Locked, StateError> {
        crate::spec::validate_id(id)?;
        let dir = self.dir(id);
        if !dir.join(STATE_FILE).exists() {
            return Err(StateError::NotExist(id.into()));
        }
        lock(dir, id)
    }

    /// Read a container's record without locking (for `state` and `list`).
    pub fn peek(&self, id: &str) -> Result<Record, StateError> {
        crate::spec::validate_id(id)?;
        read_record(&self.dir(id), id)
    }

    /// Every container id under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    op: "read state root",
                    path: self.root.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock(dir: PathBuf, id: &str) -> Result<Locked, StateError> {
    let f = File::open(&dir).map_err(|source| StateError::Io {
        op: "open state dir",
        path: dir.clone(),
        source,
    })?;
    let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, source)| StateError::Lock {
        path: dir.clone(),
        source,
    })?;
    Ok(Locked {
        dir,
        id: id.to_string(),
        _lock: lock,
    })
}

fn read_record(dir: &Path, id: &str) -> Result<Record, StateError> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotExist(id.into()))
        }
        Err(source) => {
            return Err(StateError::Io {
                op: "read",
                path,
                source,
            })
        }
    };
    serde_json::from_slice(&text).map_err(|source| StateError::Corrupt { path, source })
}

impl Locked {
    pub fn read(&self) -> Result<Record, StateError> {
        read_record(&self.dir, &self.id)
    }

    /// Write state.json atomically: a reader sees the old or the new record, never a mix.
    /// No fsync: the rename alone gives readers atomicity, and the state root is runtime
    /// state (tmpfs /run in practice) that does not outlive a reboot; runc does not sync either.
    /// On a disk-backed root an fdatasync cost 1 ms per create, 15 ms under write load.
    pub fn write(&self, record: &Record) -> Result<(), StateError> {
        let tmp = self.dir.join(".state.json.tmp");
        let path = self.dir.join(STATE_FILE);
        fn io<'p>(op: &'static str, p: &'p Path) -> impl FnOnce(std::io::Error) -> StateError + 'p {
            move |source| StateError::Io {
                op,
                path: p.to_path_buf(),
                source,
            }
        }
        let data = serde_json::to_vec(record).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&data).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename into", &path))?;
        Ok(())
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// Remove the container's directory and everything in it.
    pub fn remove(self) -> Result<(), StateError> {
        let dir = self.dir.clone();
        let _ = self._lock.as_fd();
        fs::remove_dir_all(&dir).map_err(|source| StateError::Io {
            op: "remove state dir",
            path: dir,
            source,
        })
    }
}

/// Field 22 (starttime) of /proc/<pid>/stat, and whether the process is a zombie.
pub fn process_start_time(proc_root: &Path, pid: i32) -> Option<(u64, bool)> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ") " field 3 (state) is index 0; starttime (field 22) is index 19.
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_past_a_command_name_with_spaces_and_parens() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("42")).unwrap();
        let stat = "42 (a) b)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        fs::write(dir.path().join("42/stat"), stat).unwrap();
        assert_eq!(process_start_time(dir.path(), 42), Some((987654, false)));
    }

    #[test]
    fn a_second_create_with_the_same_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let first = store.create("c1").unwrap();
        assert!(matches!(store.create("c1"), Err(StateError::Exists(_))));
        first.remove().unwrap();
        assert!(!dir.path().join("c1").exists());
    }
}
