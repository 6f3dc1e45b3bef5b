//! Writing `linux.resources` to cgroup v2 files, converting the spec's v1-style values the way
//! runc does (shares → `cpu.weight`, memory+swap → `memory.swap.max`, blkio weight →
//! `io.weight`, ...). Settings that have no v2 file (swappiness, kernel memory, OOM-killer
//! switch, useHierarchy, leaf weights, realtime budgets, net_cls/net_prio) are ignored, as runc's
//! fs2 manager ignores them.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use super::{devices, V2Manager};
use crate::cgroups::v1::rdma_line;
use crate::cgroups::{fs, CgroupError};

/// runc's `ConvertCPUSharesToCgroupV2Value`: [2, 262144] → [1, 10000].
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's `ConvertBlkIOToIOWeightValue`: [10, 1000] → [1, 10000].
pub(crate) fn io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// runc's `ConvertMemorySwapToCgroupV2Value`: v1's memory+swap to v2's swap-only value.
pub(crate) fn swap_max(swap: i64, memory: i64) -> Result<i64, CgroupError> {
    let bad = |reason: &str| CgroupError::InvalidResource {
        field: "linux.resources.memory.swap".into(),
        reason: reason.into(),
    };
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err(bad("unable to set swap limit without memory limit"));
    }
    if memory < 0 {
        return Err(bad(&format!("invalid memory value: {memory}")));
    }
    if swap < memory {
        return Err(bad("memory+swap limit should be >= memory limit"));
    }
    Ok(swap - memory)
}

/// `-1` → "max", `0` → unset, else the number (runc's `numToStr`).
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// runc's fs2 `Set` order: pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, unified.
pub(super) fn apply(m: &V2Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    let dir = m.dir();
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let value = if p.limit() < 0 {
                "max".to_string()
            } else {
                p.limit().to_string()
            };
            fs::write(dir, "pids.max", &value)?;
        }
    }
    if let Some(mem) = r.memory() {
        memory(dir, mem)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(d) = r.devices() {
        devices::apply(dir, d)?;
    }
    if let Some(c) = r.cpu() {
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.mems", mems)?;
        }
    }
    let mut skip_rsvd = false;
    for l in r.hugepage_limits().as_deref().unwrap_or_default() {
        let value = l.limit().to_string();
        fs::write(dir, &format!("hugetlb.{}.max", l.page_size()), &value)?;
        if !skip_rsvd {
            let file = format!("hugetlb.{}.rsvd.max", l.page_size());
            match fs::try_write(dir, &file, &value) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => skip_rsvd = true,
                Err(e) => return Err(fs::write_error(dir, &file, &value, e)),
            }
        }
    }
    if let Some(rdma) = r.rdma() {
        let mut devices: Vec<_> = rdma.iter().collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (device, limits) in devices {
            fs::write(dir, "rdma.max", &rdma_line(device, limits))?;
        }
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

fn memory(dir: &Path, mem: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = mem.limit().unwrap_or(0);
    let swap = mem.swap().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    if mem.check_before_update() == Some(true) && (limit > 0 || swap > 0) {
        // Best effort, like runc: no usage figure, no check.
        if let Ok(usage) = fs::read_u64(dir, "memory.current") {
            for (what, v) in [("memory+swap", swap), ("memory", limit)] {
                if v > 0 && (v as u64) <= usage {
                    return Err(CgroupError::InvalidResource {
                        field: "linux.resources.memory".into(),
                        reason: format!(
                            "rejecting {what} limit {v} <= usage {usage} (checkBeforeUpdate)"
                        ),
                    });
                }
            }
        }
    }
    let converted = swap_max(swap, limit)?;
    let mut swap_value = num(converted);
    if swap_value.is_none() && converted == 0 && swap > 0 {
        // memory and memory+swap set to the same value: no swap at all.
        swap_value = Some("0".into());
    }
    if let Some(v) = swap_value {
        if let Err(e) = fs::try_write(dir, "memory.swap.max", &v) {
            // Without swap accounting there is no file; "max" or "0" is then moot.
            let moot = e.kind() == std::io::ErrorKind::NotFound && (v == "max" || v == "0");
            if !moot {
                return Err(fs::write_error(dir, "memory.swap.max", &v, e));
            }
        }
    }
    if let Some(v) = num(limit) {
        fs::write(dir, "memory.max", &v)?;
    }
    if let Some(v) = num(reservation) {
        fs::write(dir, "memory.low", &v)?;
    }
    Ok(())
}

/// BFQ's `io.bfq.weight` takes the v1 weight as is; otherwise `io.weight` gets the converted
/// value. Per-device weights need BFQ with per-device support; throttles go to `io.max`.
fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().unwrap_or(0);
    let devices = b.weight_device().as_deref().unwrap_or_default();
    let bfq = (weight != 0 || !devices.is_empty()) && fs::exists(dir, "io.bfq.weight");
    if weight != 0 {
        if bfq {
            fs::write(dir, "io.bfq.weight", &weight.to_string())?;
        } else {
            fs::write(dir, "io.weight", &io_weight(weight).to_string())?;
        }
    }
    // A kernel with per-device BFQ weights (5.4+) shows "default N" lines instead of a number.
    let per_device = bfq
        && fs::read(dir, "io.bfq.weight")?
            .trim()
            .parse::<i64>()
            .is_err();
    if per_device {
        for d in devices {
            if let Some(w) = d.weight() {
                fs::write(
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {}", d.major(), d.minor(), w),
                )?;
            }
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {}={}", t.major(), t.minor(), key, t.rate()),
            )?;
        }
    }
    Ok(())
}

/// runc's fs2 `setCPU`: idle, weight (from shares), burst, then "quota period" to cpu.max.
fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    let weight = cpu_weight(c.shares().unwrap_or(0));
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    if weight != 0 {
        fs::write(dir, "cpu.weight", &weight.to_string())?;
    }
    let mut retry_burst = None;
    if let Some(burst) = c.burst() {
        let value = burst.to_string();
        if let Err(e) = fs::try_write(dir, "cpu.max.burst", &value) {
            if e.raw_os_error() != Some(libc::EINVAL) || quota == 0 {
                return Err(fs::write_error(dir, "cpu.max.burst", &value, e));
            }
            retry_burst = Some(value);
        }
    }
    if quota != 0 || period != 0 {
        let q = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        let p = if period == 0 { 100_000 } else { period };
        fs::write(dir, "cpu.max", &format!("{q} {p}"))?;
        if let Some(value) = retry_burst {
            fs::write(dir, "cpu.max.burst", &value)?;
        }
    }
    Ok(())
}

/// Raw v2 keys, one write per line (runc's `WriteFileByLine`); a missing file gets a message
/// saying whether the controller is unavailable.
fn unified(dir: &Path, u: &std::collections::HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in keys {
        let field = || format!("linux.resources.unified[{key:?}]");
        if key.contains('/') {
            return Err(CgroupError::InvalidResource {
                field: field(),
                reason: "must be a file name (no slashes)".into(),
            });
        }
        let lines: Vec<&str> = if value.is_empty() {
            vec![""]
        } else {
            value.lines().filter(|l| !l.is_empty()).collect()
        };
        for line in lines {
            if let Err(e) = fs::try_write(dir, key, line) {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) {
                    let Some((controller, _)) = key.split_once('.') else {
                        return Err(CgroupError::InvalidResource {
                            field: field(),
                            reason: "must be in the form CONTROLLER.PARAMETER".into(),
                        });
                    };
                    let available =
                        fs::read_optional(dir, "cgroup.controllers")?.unwrap_or_default();
                    if controller != "cgroup"
                        && !available.split_whitespace().any(|c| c == controller)
                    {
                        return Err(CgroupError::InvalidResource {
                            field: field(),
                            reason: format!(
                                "can't be set: controller {controller:?} not available in {}",
                                dir.display()
                            ),
                        });
                    }
                }
                return Err(fs::write_error(dir, key, line, e));
            }
        }
    }
    Ok(())
}
