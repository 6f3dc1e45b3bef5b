//! Process stdio: containerd's FIFOs on one side, pipes or a pty on the other.
//!
//! The container never gets the FIFOs themselves: the shim hands it pipes and
//! copies, so a slow or absent reader cannot lose output and the shim knows when
//! the output is drained (EOF on the pipe) before it reports the exit. With a
//! terminal the container's pty master arrives on a console socket the shim
//! listens on (SCM_RIGHTS), and the same copy loops run on the master.

use std::fs::{File, OpenOptions};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::engine::ProcessIo;
use crate::error::ShimError;
use crate::process::{IoHandles, StdioPaths};

fn pipe() -> Result<(File, File), ShimError> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ShimError::Stdio {
            step: "create pipe",
            path: String::new(),
            source: e.into(),
        })?;
    Ok((File::from(r), File::from(w)))
}

/// Copies `src` into the FIFO at `path` (opened for writing when the first byte
/// is ready to go), until EOF on `src`. If the FIFO cannot be opened the data is
/// still drained so the process never blocks on a full pipe.
fn copy_out(mut src: File, path: String) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut dst = OpenOptions::new().write(true).open(&path).ok();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(d) = dst.as_mut() {
                        if d.write_all(&buf[..n]).is_err() {
                            dst = None;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

/// Copies the stdin FIFO into `sink` until EOF, then closes `sink` (stdin EOF for
/// the process). CloseIO closes it earlier by taking it out of the mutex.
fn copy_in(path: String, sink: Arc<Mutex<Option<File>>>) {
    std::thread::spawn(move || {
        let Ok(mut src) = File::open(&path) else {
            return;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
                    let written = guard.as_mut().map(|w| w.write_all(&buf[..n]).is_ok());
                    if written != Some(true) {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        sink.lock().unwrap_or_else(|p| p.into_inner()).take();
    });
}

/// Pipes for a process without a terminal; the copy threads start at once.
pub fn pipes(paths: &StdioPaths) -> Result<(ProcessIo, IoHandles), ShimError> {
    let mut io = ProcessIo::default();
    let mut handles = IoHandles::default();
    if !paths.stdin.is_empty() {
        let (r, w) = pipe()?;
        io.stdin = Some(r);
        *handles.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
        copy_in(paths.stdin.clone(), handles.stdin.clone());
    }
    for (path, slot) in [
        (&paths.stdout, &mut io.stdout),
        (&paths.stderr, &mut io.stderr),
    ] {
        if !path.is_empty() {
            let (r, w) = pipe()?;
            *slot = Some(w);
            handles.copiers.push(copy_out(r, path.clone()));
        }
    }
    Ok((io, handles))
}

/// A unix socket husk sends the pty master to (`--console-socket`).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

static NEXT_SOCKET: AtomicU32 = AtomicU32::new(0);

impl ConsoleSocket {
    pub fn new() -> Result<Self, ShimError> {
        let n = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("husk-shim-pty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|source| ShimError::Stdio {
            step: "bind console socket",
            path: path.display().to_string(),
            source,
        })?;
        Ok(ConsoleSocket { path, listener })
    }

    /// After husk returned: take the connection it left and the master fd in it.
    pub fn receive_master(&self) -> Result<File, ShimError> {
        self.listener
            .set_nonblocking(true)
            .map_err(|e| ShimError::Console(format!("{}: {e}", self.path.display())))?;
        let (stream, _) = self.listener.accept().map_err(|e| {
            ShimError::Console(format!("no connection on {}: {e}", self.path.display()))
        })?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| ShimError::Console(format!("recvmsg on {}: {e}", self.path.display())))?;
        let cmsgs = msg
            .cmsgs()
            .map_err(|e| ShimError::Console(format!("control message: {e}")))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    return Ok(crate::sys::adopt_received_fd(fd));
                }
            }
        }
        Err(ShimError::Console(format!(
            "no pty fd arrived on {}",
            self.path.display()
        )))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copy loops on a pty master: stdout FIFO ← master ← stdin FIFO.
pub fn terminal(paths: &StdioPaths, master: File) -> Result<IoHandles, ShimError> {
    let dup = |f: &File| {
        f.try_clone().map_err(|source| ShimError::Stdio {
            step: "dup pty master",
            path: String::new(),
            source,
        })
    };
    let mut handles = IoHandles::default();
    if !paths.stdin.is_empty() {
        *handles.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(dup(&master)?);
        copy_in(paths.stdin.clone(), handles.stdin.clone());
    }
    if !paths.stdout.is_empty() {
        // EIO on the master after the last slave fd closes ends this copy.
        handles
            .copiers
            .push(copy_out(dup(&master)?, paths.stdout.clone()));
    }
    handles.console = Some(master);
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_written_to_the_pipe_reaches_the_fifo_file_whole() {
        let dir = std::env::temp_dir().join(format!("husk-shim-stdio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        std::fs::write(&out, b"").unwrap();
        let paths = StdioPaths {
            stdout: out.display().to_string(),
            ..Default::default()
        };
        let (mut io, handles) = pipes(&paths).unwrap();
        let data = vec![b'x'; 1 << 20];
        io.stdout.take().unwrap().write_all(&data).unwrap();
        for c in handles.copiers {
            c.join().unwrap();
        }
        assert_eq!(std::fs::read(&out).unwrap().len(), data.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
