//! `terminal: true`: a pty allocated from the container's own devpts, its master sent to the
//! `--console-socket` (as runc does, with the pty's name as payload), its slave made the
//! process's stdio and controlling terminal and bound onto `/dev/console`.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("process.terminal is true but no --console-socket was given")]
    NoSocket,
    #[error("--console-socket was given but process.terminal is false")]
    SocketWithoutTerminal,
    #[error("connect to console socket {path:?}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open /dev/ptmx in the container")]
    OpenPtmx(#[source] nix::errno::Errno),
    #[error("unlock pty / read its number")]
    Unlock(#[source] nix::errno::Errno),
    #[error("open pty slave {path:?}")]
    OpenSlave {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("send pty master over the console socket")]
    Send(#[source] nix::errno::Errno),
    #[error("make the pty the controlling terminal and stdio")]
    Stdio(#[source] nix::errno::Errno),
}

/// Connect to the console socket in the parent, so a bad path fails early and the child only
/// inherits a connected fd.
pub fn connect(path: &Path) -> Result<UnixStream, TtyError> {
    UnixStream::connect(path).map_err(|source| TtyError::Connect {
        path: path.to_path_buf(),
        source,
    })
}

/// A pty whose master has been handed over; the slave is still ours.
#[derive(Debug)]
pub struct Pty {
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

/// Allocate a pty from `/dev/ptmx` (after pivot_root: the container's devpts) and send the
/// master to `socket`.
pub fn setup(socket: &UnixStream, size: Option<(u16, u16)>) -> Result<Pty, TtyError> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(TtyError::OpenPtmx)?;
    let master = crate::sys::fd::own(master);
    let n = crate::sys::process::unlock_pty(master.as_fd()).map_err(TtyError::Unlock)?;
    let slave_path = PathBuf::from(format!("/dev/pts/{n}"));
    let slave = nix::fcntl::open(
        &slave_path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| TtyError::OpenSlave {
        path: slave_path.clone(),
        source,
    })?;
    let slave = crate::sys::fd::own(slave);
    if let Some((rows, cols)) = size {
        let _ = crate::sys::process::set_winsize(slave.as_fd(), rows, cols);
    }
    let name = slave_path.to_string_lossy().into_owned();
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(TtyError::Send)?;
    drop(master);
    Ok(Pty { slave, slave_path })
}

/// Make the slave the controlling terminal and fds 0-2 (the caller has already called setsid).
pub fn attach(pty: &Pty) -> Result<(), TtyError> {
    crate::sys::process::set_controlling_tty(pty.slave.as_fd()).map_err(TtyError::Stdio)?;
    for fd in 0..3 {
        nix::unistd::dup2(pty.slave.as_raw_fd(), fd).map_err(TtyError::Stdio)?;
    }
    Ok(())
}
