//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! INTERFACE CONTRACT (called from `init.rs` in the child, in this order; keep the signatures):
//! 1. [`prepare`]: already inside the new mount namespace. Sets `/` propagation
//!    (`rootfsPropagation`, default rslave), binds the rootfs onto itself, performs every
//!    `mounts` entry in order (each destination resolved *inside* the rootfs, never following a
//!    symlink out of it), creates default devices + `linux.devices` and the `/dev` symlinks.
//! 2. (init.rs runs createContainer hooks here: cwd is the rootfs, nothing pivoted yet)
//! 3. [`pivot`]: `pivot_root` into the rootfs (or `chroot`-style move with `--no-pivot`),
//!    detaching the old root.
//! 4. [`mount_console`]: (only with `terminal: true`) bind the pty slave onto `/dev/console`.
//! 5. [`finalize`]: `root.readonly`, then `readonlyPaths`, then `maskedPaths` (masked files are
//!    bound from a verified `/dev/null`: CVE-2025-31133).

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::cgroups::ContainerCgroupMount;

/// Everything the rootfs steps need, computed in the parent before the clone.
#[derive(Debug)]
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs (bundle-relative `root.path` already resolved).
    pub rootfs: &'a Path,
    /// The bundle directory: relative bind-mount sources are relative to it.
    pub bundle: &'a Path,
    /// The container has a new user namespace: devices are bind-mounted from the host instead
    /// of mknod'ed, and some mount flags must be kept as the host has them.
    pub in_new_userns: bool,
    /// The container has a new cgroup namespace: `type: cgroup` mounts can be fresh mounts.
    pub in_new_cgroupns: bool,
    /// What a `type: cgroup` mount shows (from `cgroups::Manager::mounts_for_container`).
    pub cgroup_mount: Option<ContainerCgroupMount>,
    /// `--no-pivot`.
    pub no_pivot: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: (filled in by the owner of this module)")]
    Placeholder,
}

pub fn prepare(_ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    todo!("rootfs owner")
}

pub fn pivot(_ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    todo!("rootfs owner")
}

pub fn mount_console(_slave: &Path) -> Result<(), RootfsError> {
    todo!("rootfs owner")
}

pub fn finalize(_ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    todo!("rootfs owner")
}
