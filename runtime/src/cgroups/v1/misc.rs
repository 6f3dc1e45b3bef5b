//! v1 controllers with one or two files each: devices, pids, hugetlb, net_cls, net_prio,
//! rdma, and the freezer.

use std::collections::HashMap;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxHugepageLimit, LinuxNetwork, LinuxPids, LinuxRdma,
};

use super::V1Manager;
use crate::cgroups::devices::{from_spec, Emulator};
use crate::cgroups::{fs, CgroupError, FreezerState};

/// Moves the devices cgroup from what `devices.list` shows to the spec's rules with the fewest
/// disruptive writes (a fresh cgroup: `a` to `devices.deny`, then each allowed device).
pub(super) fn apply_devices(m: &V1Manager, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let target = Emulator::from_rules(&from_spec(rules)?)?;
    let dir = m.need("devices", "linux.resources.devices")?;
    let list = fs::read(dir, "devices.list")?;
    let current = Emulator::from_list(&list).map_err(|reason| CgroupError::Parse {
        path: dir.join("devices.list"),
        reason,
    })?;
    for rule in current.transition(&target) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(dir, file, &rule.cgroup_string())?;
    }
    // Final safety check, as runc does (and, like runc, not in unit tests, whose fake
    // devices.list is a plain file the writes above do not change): an allow-list must now
    // be exactly the target; an allow-all cgroup can only be checked for its mode.
    #[cfg(not(test))]
    {
        let after = fs::read(dir, "devices.list")?;
        let after = Emulator::from_list(&after).map_err(|reason| CgroupError::Parse {
            path: dir.join("devices.list"),
            reason,
        })?;
        let matches = if target.default_allow {
            after.default_allow
        } else {
            after == target
        };
        if !matches {
            return Err(CgroupError::DevicesMismatch {
                path: dir.join("devices.list"),
            });
        }
    }
    Ok(())
}

pub(super) fn apply_pids(m: &V1Manager, p: &LinuxPids) -> Result<(), CgroupError> {
    let limit = p.limit();
    if limit == 0 {
        return Ok(());
    }
    let value = if limit < 0 {
        "max".to_string()
    } else {
        limit.to_string()
    };
    fs::write(
        m.need("pids", "linux.resources.pids.limit")?,
        "pids.max",
        &value,
    )
}

pub(super) fn apply_hugetlb(
    m: &V1Manager,
    limits: &[LinuxHugepageLimit],
) -> Result<(), CgroupError> {
    let mut skip_rsvd = false;
    for l in limits {
        let dir = m.need("hugetlb", "linux.resources.hugepageLimits")?;
        let value = l.limit().to_string();
        fs::write(
            dir,
            &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
            &value,
        )?;
        // Reservation limits (Linux 5.7+) get the same value, as runc does.
        if !skip_rsvd {
            let file = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
            match fs::try_write(dir, &file, &value) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => skip_rsvd = true,
                Err(e) => return Err(fs::write_error(dir, &file, &value, e)),
            }
        }
    }
    Ok(())
}

pub(super) fn apply_network(m: &V1Manager, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id().filter(|id| *id != 0) {
        fs::write(
            m.need("net_cls", "linux.resources.network.classID")?,
            "net_cls.classid",
            &id.to_string(),
        )?;
    }
    for p in n.priorities().as_deref().unwrap_or_default() {
        let dir = m.need("net_prio", "linux.resources.network.priorities")?;
        fs::write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// The line written to `rdma.max` for one device (shared with v2).
pub(crate) fn rdma_line(device: &str, l: &LinuxRdma) -> String {
    let mut s = device.to_string();
    if let Some(h) = l.hca_handles() {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        s.push_str(&format!(" hca_object={o}"));
    }
    s
}

pub(super) fn apply_rdma(
    m: &V1Manager,
    rdma: &HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limits) in devices {
        fs::write(
            m.need("rdma", "linux.resources.rdma")?,
            "rdma.max",
            &rdma_line(device, limits),
        )?;
    }
    Ok(())
}

/// runc's v1 freeze: write FROZEN until `freezer.state` reads FROZEN. The kernel may stay in
/// FREEZING while tasks keep forking, so every 50 tries it thaws briefly and starts over.
pub(super) fn freeze(dir: &Path, state: FreezerState) -> Result<(), CgroupError> {
    const FILE: &str = "freezer.state";
    let wanted = match state {
        FreezerState::Frozen => "FROZEN",
        FreezerState::Thawed => "THAWED",
    };
    let mut last = String::new();
    for i in 0..1000 {
        if state == FreezerState::Frozen && i % 50 == 49 {
            let _ = fs::try_write(dir, FILE, "THAWED");
            sleep(Duration::from_millis(10));
        }
        fs::write(dir, FILE, wanted)?;
        if i % 25 == 24 {
            sleep(Duration::from_micros(10));
        }
        last = fs::read(dir, FILE)?.trim().to_string();
        if last == wanted {
            return Ok(());
        }
        if state == FreezerState::Thawed && last != "FREEZING" && last != "FROZEN" {
            break;
        }
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.join(FILE),
        wanted,
        last,
    })
}
