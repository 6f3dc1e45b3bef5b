//! Stats RPC payload: `husk events --stats` JSON → containerd's cgroup metrics,
//! packed in an `Any` whose type URL tells `ctr task metrics` (and the CRI plugin)
//! which message to decode.
//!
//! Like containerd's runc shim, the message follows the host's cgroup mode: a pure
//! cgroup v2 host (`/sys/fs/cgroup` is cgroup2) gets `io.containerd.cgroups.v2.Metrics`
//! ([`v2`]), a v1 or hybrid host `io.containerd.cgroups.v1.Metrics` ([`v1`]).

pub mod v1;
pub mod v2;

use std::path::Path;
use std::sync::OnceLock;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use serde_json::Value;

use crate::error::{EngineError, ShimError};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup mode of the host, as containerd's `cgroups.Mode()` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1, alone or beside a unified hierarchy (hybrid).
    Legacy,
    /// `/sys/fs/cgroup` itself is cgroup2.
    Unified,
}

/// Which hierarchy is mounted at `root` (a statfs of the mount point).
pub fn hierarchy_at(root: &Path) -> Hierarchy {
    match nix::sys::statfs::statfs(root) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => {
            Hierarchy::Unified
        }
        _ => Hierarchy::Legacy,
    }
}

fn host_hierarchy() -> Hierarchy {
    static MODE: OnceLock<Hierarchy> = OnceLock::new();
    *MODE.get_or_init(|| hierarchy_at(Path::new(CGROUP_ROOT)))
}

/// A number at `path` in husk's JSON, 0 when absent (runc omits zero counters).
pub(crate) fn u(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Encodes `m` into an `Any` named `type_url` (the message's full protobuf name,
/// which is what containerd's typeurl registry matches).
pub fn pack<M: Message>(m: &M, type_url: &str) -> Result<Any, ShimError> {
    let value = m.write_to_bytes().map_err(|e| EngineError::Output {
        op: "encode metrics",
        msg: e.to_string(),
    })?;
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

/// The Stats reply for one `husk events --stats` sample of the container whose
/// init is `init_pid` (v2 reads the few counters runc's JSON has no place for
/// from that process's cgroup).
pub fn to_any(sample: &Value, init_pid: u32) -> Result<Any, ShimError> {
    match host_hierarchy() {
        Hierarchy::Legacy => pack(&v1::from_husk(sample), v1::TYPE_URL),
        Hierarchy::Unified => {
            let extras = v2::cgroup_of(Path::new("/proc"), Path::new(CGROUP_ROOT), init_pid)
                .map(|dir| v2::Extras::read(&dir))
                .unwrap_or_default();
            pack(&v2::from_husk(sample, &extras), v2::TYPE_URL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cgroup2_mount_is_a_unified_hierarchy() {
        assert_eq!(hierarchy_at(&std::env::temp_dir()), Hierarchy::Legacy);
        assert_eq!(
            hierarchy_at(Path::new("/nonexistent/husk-shim")),
            Hierarchy::Legacy
        );
        // A cgroup2 root has cgroup.controllers; v1's tmpfs of hierarchies has
        // none (this runs on the v1 host and in the pure v2 guest).
        let unified = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
        assert_eq!(
            hierarchy_at(Path::new(CGROUP_ROOT)) == Hierarchy::Unified,
            unified
        );
    }
}
