//! Path resolution *inside* the container's rootfs.
//!
//! Every path from the spec (mount destinations, devices, masked/read-only paths) is resolved
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to an `O_PATH` descriptor of
//! the rootfs: the kernel treats that directory as `/`, so an image symlink such as
//! `etc -> /`, `x -> ../../..` or `y -> /tmp/outside` resolves to a place inside the rootfs, and
//! `/proc/self/root`-style magic links are refused. Missing components are created one at a
//! time relative to the descriptor of their (already resolved) parent, with `O_NOFOLLOW`/
//! `mkdirat` semantics, so creation can't be redirected either. Dangling symlinks are followed
//! (inside the root) and their target is created, like runc's `securejoin` + `MkdirAll`.
//! Mounts then target the descriptor through `/proc/self/fd/N`, as runc does.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::Mode;

use crate::sys::mount::openat2;

/// Maximum symlinks followed while creating a path (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 40;

/// What to create when the path (or part of it) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing path is `ENOENT`.
    Nothing,
    /// Directories (mode 0755) for every missing component.
    Dir,
    /// Directories for the missing parents, an empty regular file (0644) for the last one.
    File,
}

/// The rootfs as a directory descriptor plus its canonical host path.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    host_path: PathBuf,
}

const IN_ROOT: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// `/proc/self/fd/N` for a descriptor: how `mount(2)` is pointed at a resolved object.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Components of a container path, without the leading `/` and `.` entries.
fn components(path: &Path) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

impl Root {
    /// Opens `path` (a host directory) as the root for later resolutions.
    pub fn open(path: &Path) -> Result<Root, Errno> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let fd = OwnedFd::from(file);
        let host_path = PathBuf::from(nix::fcntl::readlink(&proc_fd_path(fd.as_fd()))?);
        Ok(Root { fd, host_path })
    }

    /// The canonical host path of the root (symlinks in the configured path resolved).
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn open_in_root(&self, path: &Path) -> Result<OwnedFd, Errno> {
        openat2(self.fd.as_fd(), path, OFlag::O_PATH, Mode::empty(), IN_ROOT)
    }

    /// Resolves the container path `path` to an `O_PATH` descriptor inside the root, creating
    /// missing components as `create` says. Never leaves the root.
    pub fn resolve(&self, path: &Path, create: Create) -> Result<OwnedFd, Errno> {
        match self.open_in_root(path) {
            Err(Errno::ENOENT) if create != Create::Nothing => {}
            other => return other,
        }
        let mut pending: VecDeque<OsString> = components(path).collect();
        let mut done = PathBuf::from("/");
        let mut cur = self.open_in_root(&done)?;
        let mut links = 0;
        let mut just_created: Option<OsString> = None;
        while let Some(name) = pending.pop_front() {
            let next = done.join(&name);
            match self.open_in_root(&next) {
                Ok(fd) => {
                    cur = fd;
                    done = next;
                    just_created = None;
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
            if just_created.as_ref() == Some(&name) {
                // We created it a moment ago and it is still missing: give up instead of looping.
                return Err(Errno::ENOENT);
            }
            // `name` is missing from `cur`, or is a dangling symlink there.
            match nix::fcntl::readlinkat(Some(cur.as_raw_fd()), name.as_os_str()) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        done = PathBuf::from("/");
                        cur = self.open_in_root(&done)?;
                    }
                    for c in components(&target).rev() {
                        pending.push_front(c);
                    }
                }
                Err(Errno::ENOENT) => {
                    let result = if pending.is_empty() && create == Create::File {
                        openat2(
                            cur.as_fd(),
                            Path::new(&name),
                            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
                            Mode::from_bits_truncate(0o644),
                            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
                        )
                        .map(drop)
                    } else {
                        nix::sys::stat::mkdirat(
                            Some(cur.as_raw_fd()),
                            name.as_os_str(),
                            Mode::from_bits_truncate(0o755),
                        )
                    };
                    match result {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    just_created = Some(name.clone());
                    pending.push_front(name);
                }
                // EINVAL: it exists and is not a symlink, yet the lookup said ENOENT.
                Err(Errno::EINVAL) => return Err(Errno::ENOENT),
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }

    /// Resolves (creating as needed) the parent directory of `path` and returns it with the
    /// last component, for `mknodat`/`symlinkat`/`unlinkat`.
    pub fn resolve_parent(&self, path: &Path) -> Result<(OwnedFd, OsString), Errno> {
        let name = match path.components().next_back() {
            Some(Component::Normal(name)) => name.to_os_string(),
            _ => return Err(Errno::EINVAL),
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        Ok((self.resolve(parent, Create::Dir)?, name))
    }

    /// The container path (`/`-rooted) of a descriptor from [`Root::resolve`]; fails with
    /// `EXDEV` if the object is not below the root (which resolution should make impossible:
    /// this is the "verify the fd" step before mounting on it).
    pub fn container_path(&self, fd: BorrowedFd<'_>) -> Result<PathBuf, Errno> {
        let host = PathBuf::from(nix::fcntl::readlink(&proc_fd_path(fd))?);
        let rel = host
            .strip_prefix(&self.host_path)
            .map_err(|_| Errno::EXDEV)?;
        Ok(Path::new("/").join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A rootfs with hostile symlinks, plus a directory outside it that they try to reach.
    struct Hostile {
        rootfs: tempfile::TempDir,
        outside: tempfile::TempDir,
    }

    fn hostile() -> Hostile {
        let rootfs = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = rootfs.path();
        symlink("/", r.join("etc")).unwrap();
        symlink("../../..", r.join("x")).unwrap();
        symlink(outside.path(), r.join("abs")).unwrap();
        symlink("/nonexistent/deeper", r.join("dangling")).unwrap();
        symlink("../../../../outside-rel", r.join("dangling-rel")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        std::fs::create_dir(r.join("real")).unwrap();
        Hostile { rootfs, outside }
    }

    fn host_path_of(root: &Root, fd: &OwnedFd) -> PathBuf {
        PathBuf::from(nix::fcntl::readlink(&proc_fd_path(fd.as_fd())).unwrap())
            .strip_prefix(root.host_path())
            .unwrap()
            .to_path_buf()
    }

    fn outside_is_empty(h: &Hostile) -> bool {
        std::fs::read_dir(h.outside.path())
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn symlink_to_slash_creates_inside_the_root() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        let fd = root
            .resolve(Path::new("/etc/husk-test-file"), Create::File)
            .unwrap();
        assert_eq!(
            root.container_path(fd.as_fd()).unwrap(),
            Path::new("/husk-test-file")
        );
        assert!(h.rootfs.path().join("husk-test-file").is_file());
        assert!(!Path::new("/husk-test-file").exists());
    }

    #[test]
    fn dot_dot_symlinks_are_clamped_at_the_root() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        let fd = root
            .resolve(Path::new("/x/escape/dir"), Create::Dir)
            .unwrap();
        assert_eq!(host_path_of(&root, &fd), Path::new("escape/dir"));
        let fd = root
            .resolve(Path::new("../../../real"), Create::Nothing)
            .unwrap();
        assert_eq!(root.container_path(fd.as_fd()).unwrap(), Path::new("/real"));
        let fd = root
            .resolve(Path::new("real/../../.."), Create::Nothing)
            .unwrap();
        assert_eq!(root.container_path(fd.as_fd()).unwrap(), Path::new("/"));
    }

    #[test]
    fn absolute_symlink_to_a_host_dir_is_reinterpreted_inside_the_root() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        let fd = root.resolve(Path::new("/abs/mnt"), Create::Dir).unwrap();
        let inside = root.container_path(fd.as_fd()).unwrap();
        assert_eq!(inside, h.outside.path().join("mnt"));
        assert!(h
            .rootfs
            .path()
            .join(h.outside.path().strip_prefix("/").unwrap())
            .join("mnt")
            .is_dir());
        assert!(
            outside_is_empty(&h),
            "something was created in the real outside directory"
        );
    }

    #[test]
    fn dangling_symlinks_have_their_target_created_inside_the_root() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        let fd = root
            .resolve(Path::new("/dangling/file"), Create::File)
            .unwrap();
        assert_eq!(
            root.container_path(fd.as_fd()).unwrap(),
            Path::new("/nonexistent/deeper/file")
        );
        assert!(h.rootfs.path().join("nonexistent/deeper/file").is_file());
        let fd = root
            .resolve(Path::new("/dangling-rel"), Create::Dir)
            .unwrap();
        assert_eq!(
            root.container_path(fd.as_fd()).unwrap(),
            Path::new("/outside-rel")
        );
        assert!(!h
            .rootfs
            .path()
            .parent()
            .unwrap()
            .join("outside-rel")
            .exists());
    }

    #[test]
    fn symlink_loops_fail_with_eloop() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        assert_eq!(
            root.resolve(Path::new("/loop1/x"), Create::Dir)
                .unwrap_err(),
            Errno::ELOOP
        );
    }

    #[test]
    fn missing_paths_are_enoent_without_create_and_nothing_is_made() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        assert_eq!(
            root.resolve(Path::new("/no/such"), Create::Nothing)
                .unwrap_err(),
            Errno::ENOENT
        );
        assert!(!h.rootfs.path().join("no").exists());
    }

    #[test]
    fn a_file_in_the_middle_of_a_path_is_enotdir() {
        let h = hostile();
        std::fs::write(h.rootfs.path().join("real/file"), b"").unwrap();
        let root = Root::open(h.rootfs.path()).unwrap();
        assert_eq!(
            root.resolve(Path::new("/real/file/sub"), Create::Dir)
                .unwrap_err(),
            Errno::ENOTDIR
        );
    }

    #[test]
    fn resolve_parent_splits_off_the_last_component() {
        let h = hostile();
        let root = Root::open(h.rootfs.path()).unwrap();
        let (dir, name) = root.resolve_parent(Path::new("/etc/dev/null")).unwrap();
        assert_eq!(root.container_path(dir.as_fd()).unwrap(), Path::new("/dev"));
        assert_eq!(name, "null");
        assert_eq!(
            root.resolve_parent(Path::new("/")).unwrap_err(),
            Errno::EINVAL
        );
    }
}
