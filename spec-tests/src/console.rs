//! The receiving end of `--console-socket`: a unix socket on which the
//! runtime sends the pty master as an SCM_RIGHTS control message.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A listening console socket. Accepting happens on a background thread
/// because `create` blocks until it has handed over the pty master.
pub struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    receiver: Option<JoinHandle<Result<OwnedFd, String>>>,
}

impl ConsoleSocket {
    /// Binds the socket and starts waiting (up to `timeout`) for one sender.
    pub fn listen(timeout: Duration) -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("husk-console-")
            .tempdir()
            .expect("tmp dir");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let receiver = std::thread::spawn(move || receive_master(&listener, timeout));
        ConsoleSocket {
            _dir: dir,
            path,
            receiver: Some(receiver),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent.
    pub fn master(&mut self) -> Result<OwnedFd, String> {
        self.receiver
            .take()
            .ok_or("master already taken")?
            .join()
            .map_err(|_| "console receiver thread panicked".to_string())?
    }
}

fn receive_master(listener: &UnixListener, timeout: Duration) -> Result<OwnedFd, String> {
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("nobody connected to the console socket".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept on console socket: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg on console socket: {e}"))?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed `fd` in this process and
                // nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("console socket message carried no SCM_RIGHTS fd".into())
}

/// Reads from a pty master until the slave side is gone (EIO), EOF,
/// `until` appears in the output, or `timeout` passes.
pub fn read_master(master: OwnedFd, until: &str, timeout: Duration) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if !until.is_empty() && String::from_utf8_lossy(&out).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
