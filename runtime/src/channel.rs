//! The parent/child handshake of `create` (and `exec`): one `SOCK_SEQPACKET` socketpair, one
//! JSON message per packet, fds passed with `SCM_RIGHTS`.
//!
//! ```text
//!  parent (husk create)                              child (container init)
//!  ────────────────────                              ──────────────────────
//!  clone3(CLONE_NEW*) ────────────────────────────▶  wait_for(Go)
//!   [intermediate: joins namespaces by path,
//!    clones the init, sends InitPid, exits]
//!  write uid_map / gid_map, oom_score_adj,
//!  v2 via intermediate: put the pid in its
//!  cgroup (else CLONE_INTO_CGROUP did)
//!  send Go ───────────────────────────────────────▶  v1: join the cgroup itself (SelfJoin),
//!                                                    cgroup ns, hostname, rootfs::prepare
//!                       ◀────────────────────────── send RunHooks
//!  prestart + createRuntime hooks
//!  send HooksDone ────────────────────────────────▶  createContainer hooks, pivot_root,
//!                                                    console, masked/ro paths, sysctl,
//!                                                    rlimits, user, capabilities,
//!                                                    no_new_privs, seccomp
//!                       ◀────────────────────────── [send SeccompFd + fd]  (notify only)
//!                       ◀────────────────────────── send Ready
//!  write state.json and --pid-file, exit             open exec.fifo for writing: blocks
//!                                                    until `husk start` opens it, then
//!                                                    startContainer hooks, execve
//!  any step failing:    ◀────────────────────────── send Error(msg), _exit(1)
//! ```
//!
//! Every `wait_for_*` names the message it expected, so a child dying early or a protocol slip
//! is an error that says where the handshake stopped.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// intermediate → parent: the init's pid (in the parent's pid namespace).
    InitPid(i32),
    /// parent → child: id maps written (v2: cgroup joined); go on.
    Go,
    /// child → parent: mounts are done; run prestart and createRuntime hooks now.
    RunHooks,
    /// parent → child: those hooks ran.
    HooksDone,
    /// child → parent: a seccomp notify listener fd rides along with this message.
    SeccompFd,
    /// child → parent: set up and waiting on exec.fifo (create) or about to exec (exec).
    Ready,
    /// child → parent: a step failed; the child exits after sending this.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("create handshake socketpair")]
    Socketpair(#[source] nix::errno::Errno),
    #[error("send {what:?} to the other side")]
    Send {
        what: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("receive from the other side while waiting for {expected}")]
    Recv {
        expected: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("the other side exited before sending {expected}")]
    Closed { expected: &'static str },
    #[error("expected {expected} but got {got:?}")]
    Unexpected {
        expected: &'static str,
        got: Message,
    },
    #[error("{0}")]
    Child(String),
    #[error("malformed handshake message")]
    Malformed(#[source] serde_json::Error),
}

/// One end of the socketpair.
#[derive(Debug)]
pub struct Endpoint {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Endpoint, Endpoint), ChannelError> {
    let (a, b) = socket::socketpair(
        socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ChannelError::Socketpair)?;
    Ok((Endpoint { fd: a }, Endpoint { fd: b }))
}

fn name(m: &Message) -> &'static str {
    match m {
        Message::InitPid(_) => "InitPid",
        Message::Go => "Go",
        Message::RunHooks => "RunHooks",
        Message::HooksDone => "HooksDone",
        Message::SeccompFd => "SeccompFd",
        Message::Ready => "Ready",
        Message::Error(_) => "Error",
    }
}

impl Endpoint {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Message, fd: Option<RawFd>) -> Result<(), ChannelError> {
        let data = serde_json::to_vec(msg).map_err(ChannelError::Malformed)?;
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        socket::sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| ChannelError::Send {
            what: name(msg),
            source,
        })?;
        Ok(())
    }

    /// Receive one message (and the fd that came with it, if any).
    pub fn recv(&self, expected: &'static str) -> Result<(Message, Option<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r
                        .cmsgs()
                        .map_err(|source| ChannelError::Recv { expected, source })?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                fd = Some(own(f));
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => return Err(ChannelError::Recv { expected, source }),
            }
        };
        if len == 0 {
            return Err(ChannelError::Closed { expected });
        }
        let msg: Message = serde_json::from_slice(&buf[..len]).map_err(ChannelError::Malformed)?;
        if let Message::Error(e) = msg {
            return Err(ChannelError::Child(e));
        }
        Ok((msg, fd))
    }

    /// Wait for exactly `want`; anything else is a named protocol error.
    pub fn wait_for(&self, want: Message) -> Result<(), ChannelError> {
        let expected = name(&want);
        let (got, _) = self.recv(expected)?;
        if got == want {
            Ok(())
        } else {
            Err(ChannelError::Unexpected { expected, got })
        }
    }

    pub fn wait_for_init_pid(&self) -> Result<i32, ChannelError> {
        match self.recv("InitPid")? {
            (Message::InitPid(p), _) => Ok(p),
            (got, _) => Err(ChannelError::Unexpected {
                expected: "InitPid",
                got,
            }),
        }
    }

    /// Wait for `Ready`, collecting a seccomp listener fd sent before it.
    pub fn wait_for_ready(&self) -> Result<Option<OwnedFd>, ChannelError> {
        let mut listener = None;
        loop {
            match self.recv("Ready")? {
                (Message::Ready, _) => return Ok(listener),
                (Message::SeccompFd, Some(fd)) => listener = Some(fd),
                (got, _) => {
                    return Err(ChannelError::Unexpected {
                        expected: "Ready",
                        got,
                    })
                }
            }
        }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

fn own(fd: RawFd) -> OwnedFd {
    crate::sys::fd::own(fd)
}
