//! The shim's only `unsafe`: the pty window-size ioctl and adopting a received fd.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::io::AsRawFd;

use nix::pty::Winsize;

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, Winsize);

/// TIOCSWINSZ on a pty master: the container's terminal gets the new size.
pub fn set_winsize(master: &File, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `master` is an open fd owned by `File` for the whole call, and `ws` is a
    // valid, initialised Winsize that outlives it; TIOCSWINSZ only reads it.
    unsafe { tiocswinsz(master.as_raw_fd(), &ws) }.map(drop)
}

/// Takes ownership of an fd that arrived in an SCM_RIGHTS message.
pub fn adopt_received_fd(fd: RawFd) -> File {
    // SAFETY: the kernel installed `fd` in this process for this message only; nothing
    // else in the shim knows it, so the File becomes its single owner.
    unsafe { File::from_raw_fd(fd) }
}
