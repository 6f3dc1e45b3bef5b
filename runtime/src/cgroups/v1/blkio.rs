//! v1 blkio controller: proportional weights (CFQ's `blkio.weight` or, on newer kernels,
//! BFQ's `blkio.bfq.weight`) and throttling limits.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::V1Manager;
use crate::cgroups::{fs, CgroupError};

pub(super) fn apply(m: &V1Manager, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().unwrap_or(0);
    let leaf = b.leaf_weight().unwrap_or(0);
    let devices = b.weight_device().as_deref().unwrap_or_default();
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    let anything = weight != 0
        || leaf != 0
        || !devices.is_empty()
        || throttles
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|t| !t.is_empty()));
    if !anything {
        return Ok(());
    }
    let dir = m.need("blkio", "linux.resources.blockIO")?;
    // runc: the CFQ names when the kernel has them, else BFQ's.
    let (weight_file, weight_device_file) = if fs::exists(dir, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if weight != 0 {
        fs::write(dir, weight_file, &weight.to_string())?;
    }
    if leaf != 0 {
        fs::write(dir, "blkio.leaf_weight", &leaf.to_string())?;
    }
    for d in devices {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            fs::write(
                dir,
                weight_device_file,
                &format!("{}:{} {}", d.major(), d.minor(), w),
            )?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {}", d.major(), d.minor(), w),
            )?;
        }
    }
    for (file, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            fs::write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}
