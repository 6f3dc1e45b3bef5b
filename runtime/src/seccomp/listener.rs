//! Hands the seccomp notify listener to the agent at `linux.seccomp.listenerPath`.
//!
//! Same wire format as runc's `sendContainerProcessState`: one `sendmsg(2)` on a connected unix
//! stream socket whose data is the JSON `specs.ContainerProcessState` and whose `SCM_RIGHTS`
//! control message carries the listener; `fds[0] == "seccompFd"` names that descriptor.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::{json, Value};

use super::{Program, SeccompError};

/// The name runtime-spec gives the listener in `ContainerProcessState.fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// `ociVersion` used when `state_json` has none.
const FALLBACK_OCI_VERSION: &str = "1.2.0";

/// Builds runc's `ContainerProcessState`: `{ociVersion, fds, pid, metadata?, state}`.
/// `metadata` is left out when empty (`omitempty` in runtime-spec's Go types).
pub fn process_state(program: &Program, pid: i32, state_json: &Value) -> Value {
    let version = state_json
        .get("ociVersion")
        .and_then(Value::as_str)
        .unwrap_or(FALLBACK_OCI_VERSION);
    let mut msg = json!({
        "ociVersion": version,
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "state": state_json,
    });
    if let Some(metadata) = program
        .listener_metadata
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        msg["metadata"] = Value::from(metadata);
    }
    msg
}

pub(crate) fn send(
    program: &Program,
    fd: &OwnedFd,
    pid: i32,
    state_json: &Value,
) -> Result<(), SeccompError> {
    let path = program
        .listener_path
        .as_deref()
        .ok_or(SeccompError::MissingListenerPath)?;
    let payload =
        serde_json::to_vec(&process_state(program, pid, state_json)).map_err(|source| {
            SeccompError::StateJson {
                path: path.to_owned(),
                source,
            }
        })?;
    let stream = UnixStream::connect(path).map_err(|source| SeccompError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let iov = [IoSlice::new(&payload)];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|source| SeccompError::Send {
        path: path.to_owned(),
        source,
    })?;
    if sent != payload.len() {
        return Err(SeccompError::ShortSend {
            path: path.to_owned(),
            sent,
            len: payload.len(),
        });
    }
    Ok(())
}
