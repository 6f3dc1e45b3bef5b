//! v1 cpu and cpuset controllers: CFS shares/quota/period/burst, `cpu.idle`, realtime
//! budgets, and the cpuset's cpus/mems.

use oci_spec::runtime::LinuxCpu;

use super::V1Manager;
use crate::cgroups::{fs, CgroupError};

pub(super) fn apply_cpuset(m: &V1Manager, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(
            m.need("cpuset", "linux.resources.cpu.cpus")?,
            "cpuset.cpus",
            cpus,
        )?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(
            m.need("cpuset", "linux.resources.cpu.mems")?,
            "cpuset.mems",
            mems,
        )?;
    }
    Ok(())
}

/// runc's `CpuGroup.Set`.
pub(super) fn apply_cpu(m: &V1Manager, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let shares = cpu.shares().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    let quota = cpu.quota().unwrap_or(0);
    let rt_period = cpu.realtime_period().unwrap_or(0);
    let rt_runtime = cpu.realtime_runtime().unwrap_or(0);
    let anything = shares != 0
        || period != 0
        || quota != 0
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || rt_period != 0
        || rt_runtime != 0;
    if !anything {
        return Ok(());
    }
    let dir = m.need("cpu", "linux.resources.cpu")?;

    if shares != 0 {
        fs::write(dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps shares to [2, 262144]; say so instead of silently differing.
        let got = fs::read_u64(dir, "cpu.shares")?;
        if got != shares {
            let bound = if shares > got { "maximum" } else { "minimum" };
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.cpu.shares".into(),
                reason: format!(
                    "{shares} is out of range: the {bound} allowed cpu-shares is {got}"
                ),
            });
        }
    }

    // A smaller period can be refused (EINVAL) while the old quota is in place; retry after
    // the quota is written. Same for the burst.
    let mut retry_period = None;
    if period != 0 {
        let value = period.to_string();
        if let Err(e) = fs::try_write(dir, "cpu.cfs_period_us", &value) {
            if e.raw_os_error() != Some(libc::EINVAL) || quota == 0 {
                return Err(fs::write_error(dir, "cpu.cfs_period_us", &value, e));
            }
            retry_period = Some(value);
        }
    }
    let mut retry_burst = None;
    if let Some(burst) = cpu.burst() {
        let value = burst.to_string();
        match fs::try_write(dir, "cpu.cfs_burst_us", &value) {
            Ok(()) => {}
            // No burst knob on this kernel: ignored, like runc.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 => {
                retry_burst = Some(value)
            }
            Err(e) => return Err(fs::write_error(dir, "cpu.cfs_burst_us", &value, e)),
        }
    }
    if quota != 0 {
        fs::write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(value) = retry_period {
            fs::write(dir, "cpu.cfs_period_us", &value)?;
        }
        if let Some(value) = retry_burst {
            fs::write(dir, "cpu.cfs_burst_us", &value)?;
        }
    }
    if let Some(idle) = cpu.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    if rt_period != 0 {
        fs::write(dir, "cpu.rt_period_us", &rt_period.to_string())?;
    }
    if rt_runtime != 0 {
        fs::write(dir, "cpu.rt_runtime_us", &rt_runtime.to_string())?;
    }
    Ok(())
}
