//! `type: cgroup` mounts (runc's `mountCgroupV1`/`mountCgroupV2`): what the container sees of
//! its cgroup. v1: a tmpfs with one entry per hierarchy, each a fresh read-only-able cgroup
//! mount when the container has its own cgroup namespace or a bind of its host cgroup dir
//! otherwise, plus `cpu -> cpu,cpuacct` style links; v2: a cgroup2 mount or a bind.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::mounts::{
    check_proc_mount, mount_bind, mount_propagate, mount_tmpfs, target, Entry, DEFAULT_MOUNT_FLAGS,
};
use super::options::MountOptions;
use super::resolve::{proc_fd_path, Create, Root};
use super::{RootfsContext, RootfsError};
use crate::cgroups::ContainerCgroupMount;

const NONE: Option<&str> = None;

pub(super) fn mount_cgroup(
    ctx: &RootfsContext<'_>,
    root: &Root,
    e: &Entry,
) -> Result<(), RootfsError> {
    let Some(cg) = &ctx.cgroup_mount else {
        return Err(RootfsError::NoCgroupInfo {
            field: e.field.clone(),
        });
    };
    let readonly = e.options.flags.contains(MsFlags::MS_RDONLY);
    match cg {
        ContainerCgroupMount::V2 { host_dir } => {
            let (_, inside) = target(root, &e.field, &e.destination, Create::Dir)?;
            check_proc_mount(e, &inside, None)?;
            if ctx.in_new_cgroupns {
                let src = e
                    .source
                    .as_ref()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "cgroup".into());
                match mount_propagate(root, e, &src, "cgroup2", e.options.flags, &e.options.data) {
                    Err(RootfsError::Mount {
                        source: Errno::EPERM | Errno::EBUSY,
                        ..
                    }) => {}
                    other => return other,
                }
            }
            // No cgroup namespace (or cgroup2 refused): bind the container's own cgroup.
            let mut bind = e.clone();
            bind.fs_type = "bind".into();
            bind.source = Some(host_dir.clone());
            bind.options.flags |= MsFlags::MS_BIND;
            bind.options.data.clear();
            mount_bind(root, &bind)
        }
        ContainerCgroupMount::V1 { hierarchies } => {
            let tmpfs = Entry {
                field: e.field.clone(),
                destination: e.destination.clone(),
                source: Some(PathBuf::from("tmpfs")),
                fs_type: "tmpfs".into(),
                options: MountOptions {
                    flags: DEFAULT_MOUNT_FLAGS,
                    data: "mode=755".into(),
                    propagation: e.options.propagation.clone(),
                    ..MountOptions::default()
                },
            };
            mount_tmpfs(root, &tmpfs)?;
            for h in hierarchies {
                let sub = e.destination.join(&h.name);
                let field = format!("{} ({})", e.field, h.name);
                if ctx.in_new_cgroupns {
                    target(root, &field, &sub, Create::Dir)?;
                    let mut flags = DEFAULT_MOUNT_FLAGS;
                    if readonly {
                        flags |= MsFlags::MS_RDONLY;
                    }
                    let source = h.options.strip_prefix("name=").unwrap_or("cgroup");
                    let sub_entry = Entry {
                        field,
                        destination: sub,
                        source: None,
                        fs_type: "cgroup".into(),
                        options: MountOptions::default(),
                    };
                    mount_propagate(root, &sub_entry, source, "cgroup", flags, &h.options)?;
                } else {
                    let bind = Entry {
                        field,
                        destination: sub,
                        source: Some(h.host_dir.clone()),
                        fs_type: "bind".into(),
                        options: MountOptions {
                            flags: MsFlags::MS_BIND | MsFlags::MS_REC | e.options.flags,
                            cleared: e.options.cleared,
                            propagation: e.options.propagation.clone(),
                            ..MountOptions::default()
                        },
                    };
                    mount_bind(root, &bind)?;
                }
            }
            // Combined hierarchies get one symlink per controller: cpu -> cpu,cpuacct.
            let (dir, _) = target(root, &e.field, &e.destination, Create::Nothing)?;
            for h in hierarchies.iter().filter(|h| h.name.contains(',')) {
                for part in h.name.split(',') {
                    match nix::unistd::symlinkat(h.name.as_str(), Some(dir.as_raw_fd()), part) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(err) => {
                            return Err(RootfsError::syscall(
                                &e.field,
                                "symlink",
                                &e.destination.join(part),
                                err,
                            ))
                        }
                    }
                }
            }
            if readonly {
                let path = proc_fd_path(dir.as_fd());
                let flags = DEFAULT_MOUNT_FLAGS
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT;
                mount(NONE, &path, NONE, flags, NONE).map_err(|err| {
                    RootfsError::mount(&e.field, "remount read-only", &e.destination, err)
                })?;
            }
            Ok(())
        }
    }
}
