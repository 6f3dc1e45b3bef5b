//! The one place where shim failures become ttrpc status codes.
//!
//! containerd decides what to do from the code (NotFound lets `ctr task rm` go on,
//! FailedPrecondition tells the user the task is in the wrong state), so every
//! RPC returns a [`ShimError`] and [`From<ShimError> for ttrpc::Error`] picks the code.

use containerd_shim_protos::ttrpc;

use crate::process::Status;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("container {0} does not exist in this shim")]
    NoContainer(String),
    #[error("container {id} already exists in this shim")]
    ContainerExists { id: String },
    #[error("process {exec_id} does not exist in container {id}")]
    NoProcess { id: String, exec_id: String },
    #[error("exec process {exec_id} already exists in container {id}")]
    ExecExists { id: String, exec_id: String },
    #[error("cannot {action} process {exec_id:?}: it is {status}")]
    BadState {
        action: &'static str,
        exec_id: String,
        status: Status,
    },
    #[error("cannot delete container {id}: it still has exec processes")]
    ExecsRunning { id: String },
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("runtime options: {0}")]
    Options(String),
    #[error("mount rootfs: {0}")]
    Mount(String),
    #[error("stdio: {step}: {path}")]
    Stdio {
        step: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("console: {0}")]
    Console(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Failures of the container engine (the husk binary), classified like go-runc.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("run {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} failed: {msg}")]
    Failed { op: &'static str, msg: String },
    #[error("{op}: process already finished")]
    ProcessFinished { op: &'static str },
    #[error("{op}: no such container")]
    NoSuchContainer { op: &'static str },
    #[error("{op}: read {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: parse output: {msg}")]
    Output { op: &'static str, msg: String },
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        use ttrpc::Code;
        let code = match &e {
            ShimError::NoContainer(_) | ShimError::NoProcess { .. } => Code::NOT_FOUND,
            ShimError::Engine(EngineError::NoSuchContainer { .. }) => Code::NOT_FOUND,
            ShimError::Engine(EngineError::ProcessFinished { .. }) => Code::NOT_FOUND,
            ShimError::ContainerExists { .. } | ShimError::ExecExists { .. } => {
                Code::ALREADY_EXISTS
            }
            ShimError::BadState { .. } | ShimError::ExecsRunning { .. } => {
                Code::FAILED_PRECONDITION
            }
            ShimError::InvalidArgument(_) | ShimError::Options(_) => Code::INVALID_ARGUMENT,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            _ => Code::UNKNOWN,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, full_message(&e)))
    }
}

/// `e` and its sources joined with ": ", as containerd shows one line to the user.
pub fn full_message(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        src = s.source();
    }
    msg
}
