//! Mounting the container's rootfs from the mounts containerd passes in Create.
//!
//! containerd's snapshotter hands the shim `{type, source, options}` triples (an
//! overlay with lowerdir/upperdir/workdir for the default snapshotter, a bind for
//! native); the shim mounts them in order on `<bundle>/rootfs` with mount(2),
//! splitting the options into MS_* flags and filesystem data as mount(8) does.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::ShimError;

/// One mount as containerd describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Splits mount(8)-style options into flags and the data string.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "defaults" | "async" => (MsFlags::empty(), MsFlags::empty()),
            _ => {
                data.push(o.as_str());
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Mounts `mounts` in order on `target`.
pub fn mount_all(mounts: &[MountSpec], target: &Path) -> Result<(), ShimError> {
    let page = 4096;
    for (i, m) in mounts.iter().enumerate() {
        let (flags, data) = parse_options(&m.options);
        if data.len() >= page {
            return Err(ShimError::Mount(format!(
                "{} mount options are {} bytes, over one page: not supported by this shim",
                m.fstype,
                data.len()
            )));
        }
        let fstype = (!m.fstype.is_empty()).then_some(m.fstype.as_str());
        let res = mount(
            Some(m.source.as_str()),
            target,
            fstype,
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        if let Err(e) = res {
            // Undo the mounts already made so the bundle is left as it came.
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(ShimError::Mount(format!(
                "mount {} ({}) on {} with {:?}: {e}",
                m.source,
                m.fstype,
                target.display(),
                m.options
            )));
        }
        if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
            let _ = mount(
                None::<&str>,
                target,
                None::<&str>,
                flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            );
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (no error if nothing is mounted).
pub fn unmount_all(target: &Path) -> Result<(), ShimError> {
    for _ in 0..32 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            Err(e) => {
                return Err(ShimError::Mount(format!(
                    "unmount {}: {e}",
                    target.display()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_data_and_ro_is_a_flag() {
        let opts: Vec<String> = ["ro", "index=off", "lowerdir=/a:/b", "nosuid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (flags, data) = parse_options(&opts);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(data, "index=off,lowerdir=/a:/b");
    }

    #[test]
    fn rbind_means_recursive_bind() {
        let (flags, data) = parse_options(&["rbind".to_string(), "rw".to_string()]);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(data.is_empty());
    }
}
