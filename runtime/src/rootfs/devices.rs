//! Device nodes in the container's `/dev` (runc's `createDevices`, `setupPtmx`,
//! `setupDevSymlinks`, `reOpenDevNull`).
//!
//! Without a user namespace each node is `mknod`ed (mode, owner from the spec); inside one the
//! kernel forbids `mknod`, so an empty file is created and the host's node is bind-mounted onto
//! it (`bindMountDeviceNode`). All paths are resolved inside the rootfs.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fchmodat, fstat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::mounts::clean;
use super::resolve::{proc_fd_path, Create, Root};
use super::RootfsError;

/// A node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub field: String,
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices (specconv `AllowedDevices` with a path): all 0666 root:root.
const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/random", 1, 8),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/zero", 1, 5),
    ("/dev/urandom", 1, 9),
];

/// `/dev` is set up unless the spec bind-mounts something onto `/dev` (runc's `needsSetupDev`).
pub fn needs_setup_dev(spec: &Spec) -> bool {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    !mounts.iter().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "bind" || o == "rbind");
        bind && clean(&Path::new("/").join(m.destination())) == Path::new("/dev")
    })
}

/// The default devices not overridden by `linux.devices`, then `linux.devices` in order
/// (`/dev/ptmx` is left to [`setup_ptmx`]).
pub fn devices_to_create(spec: &Spec) -> Result<Vec<Device>, RootfsError> {
    let spec_devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (path, major, minor) in DEFAULTS {
        if spec_devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        out.push(Device {
            field: format!("default device {path}"),
            path: PathBuf::from(path),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    for (i, d) in spec_devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::BadDeviceType {
                    field,
                    path: d.path().clone(),
                })
            }
        };
        out.push(Device {
            field,
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    out.retain(|d| clean(&d.path) != Path::new("/dev/ptmx"));
    Ok(out)
}

/// Whether we run in a user namespace other than the initial one (runc's
/// `RunningInUserNS`): the initial one maps all 2^32-1 ids starting at 0.
pub fn running_in_userns(proc_root: &Path) -> bool {
    match std::fs::read_to_string(proc_root.join("self/uid_map")) {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

pub fn create_devices(ctx: &super::RootfsContext<'_>, root: &Root) -> Result<(), RootfsError> {
    let bind = ctx.in_new_userns || running_in_userns(Path::new("/proc"));
    for dev in devices_to_create(ctx.spec)? {
        create_device(root, &dev, bind)?;
    }
    Ok(())
}

fn create_device(root: &Root, dev: &Device, bind: bool) -> Result<(), RootfsError> {
    if bind {
        return bind_device(root, dev);
    }
    let (dir, name) = root
        .resolve_parent(&dev.path)
        .map_err(|e| RootfsError::resolve(&dev.field, &dev.path, e))?;
    let dirfd = Some(dir.as_raw_fd());
    let perm = Mode::from_bits_truncate(dev.mode);
    let rdev = if dev.kind == SFlag::S_IFIFO {
        0
    } else {
        makedev(dev.major, dev.minor)
    };
    match mknodat(dirfd, name.as_os_str(), dev.kind, perm, rdev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::EPERM) => return bind_device(root, dev),
        Err(e) => return Err(RootfsError::syscall(&dev.field, "mknod", &dev.path, e)),
    }
    // The umask may have trimmed the mode; the node was just created by us, so following
    // (fchmodat can't not-follow on older kernels) reaches the node itself.
    fchmodat(dirfd, name.as_os_str(), perm, FchmodatFlags::FollowSymlink)
        .map_err(|e| RootfsError::syscall(&dev.field, "chmod", &dev.path, e))?;
    fchownat(
        dirfd,
        name.as_os_str(),
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| RootfsError::syscall(&dev.field, "chown", &dev.path, e))
}

/// runc's `bindMountDeviceNode`: an empty file in the container, the host node bound on it.
fn bind_device(root: &Root, dev: &Device) -> Result<(), RootfsError> {
    let fd = root
        .resolve(&dev.path, Create::File)
        .map_err(|e| RootfsError::resolve(&dev.field, &dev.path, e))?;
    root.container_path(fd.as_fd())
        .map_err(|e| RootfsError::resolve(&dev.field, &dev.path, e))?;
    mount(
        Some(&dev.path),
        &proc_fd_path(fd.as_fd()),
        Some("bind"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| RootfsError::mount(&dev.field, &dev.path.to_string_lossy(), &dev.path, e))
}

/// `/dev/ptmx` becomes a symlink to the devpts instance's `pts/ptmx`.
pub fn setup_ptmx(root: &Root) -> Result<(), RootfsError> {
    let field = "/dev/ptmx";
    let path = Path::new("/dev/ptmx");
    let (dir, name) = root
        .resolve_parent(path)
        .map_err(|e| RootfsError::resolve(field, path, e))?;
    match unlinkat(
        Some(dir.as_raw_fd()),
        name.as_os_str(),
        UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(RootfsError::syscall(field, "unlink", path, e)),
    }
    symlinkat("pts/ptmx", Some(dir.as_raw_fd()), name.as_os_str())
        .map_err(|e| RootfsError::syscall(field, "symlink", path, e))
}

/// `/dev/fd`, `/dev/std{in,out,err}` and (if the host has it) `/dev/core`.
pub fn setup_dev_symlinks(root: &Root, proc_root: &Path) -> Result<(), RootfsError> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if proc_root.join("kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let dev = Path::new("/dev");
    let field = "/dev symlinks";
    let dir = root
        .resolve(dev, Create::Dir)
        .map_err(|e| RootfsError::resolve(field, dev, e))?;
    for (target, name) in links {
        match symlinkat(target, Some(dir.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootfsError::syscall(field, "symlink", &dev.join(name), e)),
        }
    }
    Ok(())
}

/// After the pivot: stdio descriptors that are the host's `/dev/null` are replaced by the
/// container's (runc's `reOpenDevNull`).
pub fn reopen_dev_null() -> Result<(), RootfsError> {
    let field = "/dev/null";
    let path = Path::new("/dev/null");
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| {
            RootfsError::syscall(
                field,
                "open",
                path,
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
    let null_st =
        fstat(null.as_raw_fd()).map_err(|e| RootfsError::syscall(field, "fstat", path, e))?;
    for fd in 0..3 {
        let Ok(st) = fstat(fd) else { continue };
        if st.st_rdev == null_st.st_rdev
            && SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
        {
            nix::unistd::dup2(null.as_fd().as_raw_fd(), fd)
                .map_err(|e| RootfsError::syscall(field, "dup2 onto stdio", path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn dev_is_set_up_unless_something_is_bound_onto_it() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs"}]}"#,
        );
        assert!(needs_setup_dev(&s));
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev/","type":"none","source":"/dev","options":["rbind"]}]}"#,
        );
        assert!(!needs_setup_dev(&s));
        let s = spec(r#"{"ociVersion":"1.0.2"}"#);
        assert!(needs_setup_dev(&s));
    }

    #[test]
    fn spec_devices_override_defaults_and_ptmx_is_skipped() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[
                {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":8630,"uid":5,"gid":6},
                {"path":"/dev/fuse","type":"u","major":10,"minor":229},
                {"path":"/dev/sda","type":"b","major":8,"minor":0},
                {"path":"/dev/pipe","type":"p","major":0,"minor":0},
                {"path":"/dev/ptmx","type":"c","major":5,"minor":2}]}}"#,
        );
        let devs = devices_to_create(&s).unwrap();
        let paths: Vec<_> = devs.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/dev/random",
                "/dev/full",
                "/dev/tty",
                "/dev/zero",
                "/dev/urandom",
                "/dev/null",
                "/dev/fuse",
                "/dev/sda",
                "/dev/pipe"
            ]
        );
        let null = &devs[5];
        assert_eq!(
            (null.mode, null.uid, null.gid, null.field.as_str()),
            (0o666, 5, 6, "linux.devices[0]")
        );
        assert_eq!(devs[6].kind, SFlag::S_IFCHR);
        assert_eq!(devs[7].kind, SFlag::S_IFBLK);
        assert_eq!(devs[8].kind, SFlag::S_IFIFO);
        assert_eq!(devs[0].mode, 0o666);
    }

    #[test]
    fn device_type_all_is_an_error_naming_the_entry() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[{"path":"/dev/x","type":"a","major":1,"minor":1}]}}"#,
        );
        let err = devices_to_create(&s).unwrap_err().to_string();
        assert!(err.contains("linux.devices[0]"), "{err}");
    }

    #[test]
    fn userns_detection_reads_the_uid_map() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("self")).unwrap();
        std::fs::write(
            dir.path().join("self/uid_map"),
            "         0          0 4294967295\n",
        )
        .unwrap();
        assert!(!running_in_userns(dir.path()));
        std::fs::write(
            dir.path().join("self/uid_map"),
            "         0       1000          1\n",
        )
        .unwrap();
        assert!(running_in_userns(dir.path()));
    }
}
