//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! INTERFACE CONTRACT (called from `init.rs` in the child, in this order; keep the signatures):
//! 1. [`prepare`]: already inside the new mount namespace. Sets `/` propagation
//!    (`rootfsPropagation`, default rslave), binds the rootfs onto itself, performs every
//!    `mounts` entry in order (each destination resolved *inside* the rootfs, never following a
//!    symlink out of it), creates default devices + `linux.devices` and the `/dev` symlinks.
//!    Returns with the working directory set to the rootfs.
//! 2. (init.rs runs createContainer hooks here: cwd is the rootfs, nothing pivoted yet)
//! 3. [`pivot`]: `pivot_root` into the rootfs (or `chroot`-style move with `--no-pivot`),
//!    detaching the old root; re-applies an explicit `rootfsPropagation` to the new `/`,
//!    points stdio descriptors that were the host's `/dev/null` at the container's, and
//!    creates `process.cwd` (mode 0755) if missing, as runc does.
//! 4. [`mount_console`]: (only with `terminal: true`) bind the pty slave onto `/dev/console`.
//! 5. (init.rs writes `linux.sysctl` here: `/proc/sys` is still writable)
//! 6. [`finalize`]: read-only tmpfs mounts, `root.readonly`, then `readonlyPaths`, then
//!    `maskedPaths` (masked files are bound from a verified `/dev/null`: CVE-2025-31133),
//!    then the umask (`process.user.umask`, default 0022) as runc's `finalizeRootfs` does.
//!
//! The mechanisms: `mount(2)` onto `/proc/self/fd/N` of a descriptor resolved with
//! `openat2(RESOLVE_IN_ROOT)` (see [`resolve`]) before the pivot, and the descriptor-only mount
//! API (`open_tree`/`move_mount`/`mount_setattr`/`fsmount`) after it.

mod cgroupfs;
mod devices;
mod mounts;
pub mod options;
mod paths;
mod pivot;
mod propagation;
pub mod resolve;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
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

/// Errors of the rootfs steps. `field` names the spec entry (`mounts[2]`, `linux.devices[0]`,
/// `linux.maskedPaths[1]`, `root.readonly`...) or the built-in step (`default device /dev/null`).
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("linux.rootfsPropagation: {value:?} is not a propagation mode (shared, slave, private, unbindable or their r* forms)")]
    BadRootPropagation { value: String },

    #[error("{field}: destination {destination:?} {reason}")]
    BadDestination {
        field: String,
        destination: PathBuf,
        reason: &'static str,
    },

    #[error("{field}: bind mount of {destination:?} has no source")]
    MissingSource { field: String, destination: PathBuf },

    #[error("{field}: option {option:?} is not supported: {reason}")]
    UnsupportedOption {
        field: String,
        option: &'static str,
        reason: &'static str,
    },

    #[error("{field}: a type \"cgroup\" mount needs the container's cgroup information, but none was computed")]
    NoCgroupInfo { field: String },

    #[error("{field}: device type \"a\" (all) cannot be created as a node at {path:?}")]
    BadDeviceType { field: String, path: PathBuf },

    #[error("resolve {path:?} inside the rootfs ({field}): {source}")]
    Resolve {
        field: String,
        path: PathBuf,
        #[source]
        source: Errno,
    },

    #[error("mount {what:?} on {target:?} ({field}): {source}")]
    Mount {
        field: String,
        what: String,
        target: PathBuf,
        #[source]
        source: Errno,
    },

    #[error("{step} {path:?} ({field}): {source}")]
    Syscall {
        field: String,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },

    #[error("read {path:?}: {source}")]
    ReadMountinfo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{field}: {path:?} is {found}, not the character device 1:3 (/dev/null); refusing to use it (CVE-2025-31133)")]
    FakeDevNull {
        field: String,
        path: PathBuf,
        found: String,
    },
}

impl RootfsError {
    pub(crate) fn syscall(field: &str, step: &'static str, path: &Path, source: Errno) -> Self {
        RootfsError::Syscall {
            field: field.to_string(),
            step,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn resolve(field: &str, path: &Path, source: Errno) -> Self {
        RootfsError::Resolve {
            field: field.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn mount(field: &str, what: &str, target: &Path, source: Errno) -> Self {
        RootfsError::Mount {
            field: field.to_string(),
            what: what.to_string(),
            target: target.to_path_buf(),
            source,
        }
    }
}

/// Step 1: propagation, rootfs self-bind, `mounts[]`, devices, `/dev` symlinks; ends with the
/// working directory at the rootfs (for createContainer hooks and [`pivot`]).
pub fn prepare(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    propagation::prepare_root(ctx)?;
    let root = resolve::Root::open(ctx.rootfs)
        .map_err(|e| RootfsError::syscall("root.path", "open", ctx.rootfs, e))?;
    mounts::mount_all(ctx, &root)?;
    if devices::needs_setup_dev(ctx.spec) {
        devices::create_devices(ctx, &root)?;
        devices::setup_ptmx(&root)?;
        devices::setup_dev_symlinks(&root, Path::new("/proc"))?;
    }
    nix::unistd::chdir(ctx.rootfs)
        .map_err(|e| RootfsError::syscall("root.path", "chdir", ctx.rootfs, e))?;
    Ok(())
}

/// Step 3: make the rootfs `/` (pivot_root, or move + chroot with `--no-pivot`).
pub fn pivot(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    if ctx.no_pivot {
        pivot::move_root(ctx.rootfs)?;
    } else {
        pivot::pivot_root(ctx.rootfs)?;
    }
    propagation::reapply_root_propagation(ctx)?;
    if devices::needs_setup_dev(ctx.spec) {
        devices::reopen_dev_null()?;
    }
    // runc creates `process.cwd` here (before any read-only remount); being inside the new
    // root, a hostile path can't reach out of it.
    if let Some(process) = ctx.spec.process() {
        let cwd = Path::new("/").join(process.cwd());
        std::fs::create_dir_all(&cwd).map_err(|e| {
            RootfsError::syscall(
                "process.cwd",
                "mkdir",
                &cwd,
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
    }
    Ok(())
}

/// Step 4: bind the console's pty slave (a path valid after the pivot, e.g. `/dev/pts/0`)
/// onto `/dev/console`, creating it as an empty file if missing.
pub fn mount_console(slave: &Path) -> Result<(), RootfsError> {
    paths::mount_console(slave)
}

/// Step 6: remount read-only tmpfs and `/dev` mounts, `root.readonly`, `readonlyPaths`,
/// `maskedPaths`. Runs after the pivot, so `/` is the container's root.
pub fn finalize(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    paths::finalize(ctx.spec)?;
    // Like runc's finalizeRootfs: the process umask is `process.user.umask`, default 0022.
    let umask = ctx
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.user().umask())
        .unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask & 0o777));
    Ok(())
}
