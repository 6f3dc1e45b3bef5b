//! v1 memory controller: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` (memory+swap,
//! written in the order the kernel accepts), kmem, soft limit, OOM killer, swappiness.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::V1Manager;
use crate::cgroups::{fs, CgroupError};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn set_memory(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit == 0 {
        return Ok(());
    }
    let value = limit.to_string();
    match fs::try_write(dir, LIMIT, &value) {
        Ok(()) => Ok(()),
        // EBUSY: the new limit is below what the cgroup already uses.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::MemoryBelowUsage {
            path: dir.join(LIMIT),
            limit,
            usage: fs::read_u64(dir, "memory.usage_in_bytes")?,
            peak: fs::read_u64(dir, "memory.max_usage_in_bytes")?,
        }),
        Err(source) => Err(fs::write_error(dir, LIMIT, &value, source)),
    }
}

fn set_swap(dir: &Path, swap: i64) -> Result<(), CgroupError> {
    if swap == 0 {
        return Ok(());
    }
    fs::write(dir, MEMSW, &swap.to_string())
}

pub(super) fn apply(m: &V1Manager, mem: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    let kernel = mem.kernel().unwrap_or(0);
    let kernel_tcp = mem.kernel_tcp().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    let anything = limit != 0
        || swap != 0
        || kernel != 0
        || kernel_tcp != 0
        || reservation != 0
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true)
        || mem.use_hierarchy().is_some();
    if !anything {
        return Ok(());
    }
    let dir = m.need("memory", "linux.resources.memory")?;

    // runc's setMemoryAndSwap. Unlimited memory with no swap setting means unlimited swap
    // too, if the kernel accounts swap at all.
    if limit == -1 && swap == 0 && fs::exists(dir, MEMSW) {
        swap = -1;
    }
    // memsw must stay >= limit at every step: raise memsw first when growing, lower the limit
    // first when shrinking.
    let swap_first = if limit != 0 && swap != 0 {
        let current = fs::read_u64(dir, LIMIT)?;
        swap == -1 || current < swap as u64
    } else {
        false
    };
    if swap_first {
        set_swap(dir, swap)?;
        set_memory(dir, limit)?;
    } else {
        set_memory(dir, limit)?;
        set_swap(dir, swap)?;
    }

    // runc ignores kernel memory; husk writes it where the kernel still has the file. Since
    // Linux 6.1 `memory.kmem.limit_in_bytes` exists but refuses writes (EOPNOTSUPP): skipped.
    if kernel != 0 && fs::exists(dir, "memory.kmem.limit_in_bytes") {
        let value = kernel.to_string();
        match fs::try_write(dir, "memory.kmem.limit_in_bytes", &value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(source) => {
                return Err(fs::write_error(
                    dir,
                    "memory.kmem.limit_in_bytes",
                    &value,
                    source,
                ))
            }
        }
    }
    if kernel_tcp != 0 && fs::exists(dir, "memory.kmem.tcp.limit_in_bytes") {
        fs::write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &kernel_tcp.to_string(),
        )?;
    }
    if reservation != 0 {
        fs::write(dir, "memory.soft_limit_in_bytes", &reservation.to_string())?;
    }
    if mem.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", "1")?;
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.memory.swappiness".into(),
                reason: format!("invalid value {s}; valid memory swappiness range is 0-100"),
            });
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(h) = mem.use_hierarchy() {
        fs::write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}
