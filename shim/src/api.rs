//! The ttrpc `Task` service: each RPC delegates to [`TaskService`] and maps its
//! error to a ttrpc status in one place (`From<ShimError> for ttrpc::Error`).

use std::sync::Arc;

use containerd_shim::api::*;
use containerd_shim::{Task, TtrpcContext, TtrpcResult};

use crate::error::ShimError;
use crate::service::TaskService;

pub struct TaskApi(pub Arc<TaskService>);

fn map<T>(r: Result<T, ShimError>) -> TtrpcResult<T> {
    r.map_err(Into::into)
}

fn empty(r: Result<(), ShimError>) -> TtrpcResult<Empty> {
    map(r).map(|()| Empty::new())
}

impl Task for TaskApi {
    fn state(&self, _: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        map(self.0.state(req))
    }
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> TtrpcResult<CreateTaskResponse> {
        map(self.0.create(req))
    }
    fn start(&self, _: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        map(self.0.start(req))
    }
    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        map(self.0.delete(req))
    }
    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        map(self.0.pids(req))
    }
    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        empty(self.0.pause(req))
    }
    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        empty(self.0.resume(req))
    }
    fn checkpoint(&self, _: &TtrpcContext, _req: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        empty(Err(ShimError::Unimplemented(
            "checkpoint is not supported by the husk shim: husk has no CRIU integration".into(),
        )))
    }
    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        empty(self.0.kill(req))
    }
    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        empty(self.0.exec(req))
    }
    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        empty(self.0.resize_pty(req))
    }
    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        empty(self.0.close_io(req))
    }
    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        empty(self.0.update(req))
    }
    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        map(self.0.wait(req))
    }
    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        map(self.0.stats(req))
    }
    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        map(self.0.connect(req))
    }
    fn shutdown(&self, _: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        empty(self.0.shutdown(req))
    }
}
