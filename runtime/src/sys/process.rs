//! Raw process creation and the few process-attribute calls nix does not wrap safely:
//! `clone3(2)` (fork into new namespaces, optionally straight into a cgroup), `ioprio_set(2)`,
//! closing every inherited fd, and the re-exec primitives of the CVE-2019-5736 defence
//! ([`crate::exeseal`]).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// `clone3(2)` without a new stack: like fork(2), but the child starts in the namespaces named
/// by `flags` (CLONE_NEW*) and, with `cgroup`, directly in that cgroup (CLONE_INTO_CGROUP).
///
/// Callers must be single-threaded: the child gets a copy of this thread only, and must not
/// touch locks another thread might have held (husk never starts threads before a clone).
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a fully initialised clone_args of the size we pass. With stack == 0 the
    // child runs on a copy-on-write copy of this thread's stack, exactly like fork(2); the
    // documented precondition (single-threaded caller) makes that copy consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid as i32 }),
    }
}

/// Like [`clone3`], falling back to plain `fork` semantics via clone3 without CLONE_INTO_CGROUP
/// when the kernel refuses the cgroup (old kernels, or v1 hosts where the fd is no v2 dir).
pub fn fork() -> Result<Forked, Errno> {
    clone3(0, None)
}

/// Terminate the calling process immediately, without running atexit handlers or flushing
/// stdio buffers inherited from the parent (a forked child must not flush them twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority)` for the calling process.
pub fn set_io_priority(class: u16, priority: u16) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = ((class as libc::c_long) << 13) | priority as libc::c_long;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}

/// Mark every open fd >= `from` close-on-exec (`close_range(2)` with CLOSE_RANGE_CLOEXEC).
/// Used right before exec so no host fd leaks into the container (CVE-2024-21626).
pub fn cloexec_from(from: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags in our fd table; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    Errno::result(ret).map(drop)
}

/// Close every fd except those in `keep` (`close_range(2)` over the gaps between them).
pub fn close_all_but(keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<libc::c_uint> = keep.iter().map(|&fd| fd as libc::c_uint).collect();
    keep.sort_unstable();
    let mut from: libc::c_uint = 0;
    for fd in keep.into_iter().chain([libc::c_uint::MAX]) {
        if fd > from {
            // SAFETY: close_range only closes fds of our own table; no memory is passed. The
            // caller owns the process (a freshly forked child) and uses no other fd afterwards.
            Errno::result(unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) })?;
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// `personality(2)`.
pub fn set_personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes one integer.
    let ret = unsafe { libc::personality(persona) };
    Errno::result(ret).map(drop)
}

/// `setsid(2)` + `ioctl(TIOCSCTTY)` on `tty`: make `tty` the controlling terminal.
pub fn set_controlling_tty(tty: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

/// Open a new pty master through `ptmx` (already opened O_RDWR|O_NOCTTY), unlock it and return
/// the slave's number (TIOCGPTN).
pub fn unlock_pty(master: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int from the pointer, which is valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    Errno::result(ret)?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    Errno::result(ret)?;
    Ok(n)
}

/// Set the window size of a tty (TIOCSWINSZ).
pub fn set_winsize(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(drop)
}

/// CVE-2019-5736 defence: is our own executable immutable, i.e. one of the copies that
/// [`crate::exeseal`] makes: a sealed memfd, or a file on a read-only overlayfs superblock?
/// A container process that reaches `/proc/<pid>/exe` of such a process can never open the
/// host's husk file for writing.
pub fn running_from_sealed_copy() -> bool {
    std::fs::File::open("/proc/self/exe").is_ok_and(|f| is_sealed_copy(f.as_fd()))
}

/// Is `file` (any fd, `O_PATH` included) a sealed memfd or on a read-only overlayfs?
/// Overlayfs without an upper layer is read-only at the superblock, so every open for writing
/// fails with EROFS in `inode_permission`, before any other check.
pub fn is_sealed_copy(file: BorrowedFd<'_>) -> bool {
    use nix::sys::statvfs::FsFlags;
    // SAFETY: F_GET_SEALS takes no argument and only reads the fd's seals.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & REQUIRED_SEALS == REQUIRED_SEALS {
        return true;
    }
    let overlay = nix::sys::statfs::fstatfs(file)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    overlay
        && nix::sys::statvfs::fstatvfs(file).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

const REQUIRED_SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Copy `/proc/self/exe` into a fresh memfd and seal it against any change.
pub fn sealed_memfd_copy() -> Result<OwnedFd, Errno> {
    let name = c"husk:[CVE-2019-5736]";
    // SAFETY: name is a valid NUL-terminated string; flags are plain integers.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let src = std::fs::File::open("/proc/self/exe").map_err(io)?;
    let len = src.metadata().map_err(io)?.len() as usize;
    let mut copied = 0usize;
    while copied < len {
        // SAFETY: both fds are open for the duration; a null offset uses the file positions.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                len - copied,
            )
        };
        if n <= 0 {
            return Err(if n < 0 { Errno::last() } else { Errno::EIO });
        }
        copied += n as usize;
    }
    // SAFETY: F_ADD_SEALS takes an int of seal bits.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, REQUIRED_SEALS) } < 0 {
        return Err(Errno::last());
    }
    Ok(memfd)
}

/// Exec the program `exe` refers to (any fd, `O_PATH` included) with our own argv and
/// environment. Returns only on failure.
pub fn reexec(exe: BorrowedFd<'_>) -> Errno {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    match nix::unistd::fexecve(exe.as_raw_fd(), &args, &env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Borrow a raw fd number that the caller knows is open for the duration of the borrow.
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: used only for the process-wide fds 0-2 and fds this process keeps open until exec.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `setdomainname(2)` (nix has no wrapper).
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// kill(2) with a raw signal number (real-time signals have no `nix::Signal` variant).
pub fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill takes two integers and touches no memory.
    let ret = unsafe { libc::kill(pid, signal) };
    Errno::result(ret).map(drop)
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: give the container its own session keyring
/// (runc does this unless --no-new-keyring), then `KEYCTL_SETPERM` it as runc does so the
/// container's processes can use but not leak it.
pub fn join_session_keyring(name: &str) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SETPERM: libc::c_long = 5;
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the name pointer is a valid NUL-terminated string for the duration of the call.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    if id < 0 {
        return Err(Errno::last());
    }
    // runc's ModKeyringPerm(id, 0xffffffff, 0x080000): possessor all, user view/read/search…
    const PERM: libc::c_long = 0x3f3f0000 | 0x080000;
    // SAFETY: KEYCTL_SETPERM takes two integers.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, PERM) };
    Errno::result(ret).map(drop)
}
