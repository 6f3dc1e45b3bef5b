//! The task service against a fake engine: state machine, Wait fan-out, events.
//! No containerd, no husk, no kernel features needed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::api::*;
use containerd_shim_protos::events::task::{TaskExecStarted, TaskExit};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::Options;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::task::Status as ApiStatus;
use husk_shim::engine::{CreateOpts, Engine, ExecOpts};
use husk_shim::error::{EngineError, ShimError};
use husk_shim::events::{Event, EventSender};
use husk_shim::options::RuntimeOptions;
use husk_shim::service::{EngineFactory, TaskService};

#[derive(Default)]
struct FakeEngine {
    next_pid: AtomicU32,
    calls: Mutex<Vec<String>>,
}

impl FakeEngine {
    fn record(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
}

impl Engine for FakeEngine {
    fn create(&self, o: CreateOpts<'_>) -> Result<u32, EngineError> {
        self.record(format!("create {}", o.id));
        Ok(1000 + self.next_pid.fetch_add(1, Ordering::SeqCst))
    }
    fn start(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("start {id}"));
        Ok(())
    }
    fn exec(&self, o: ExecOpts<'_>) -> Result<u32, EngineError> {
        self.record(format!("exec {} {}", o.id, o.exec_id));
        Ok(1000 + self.next_pid.fetch_add(1, Ordering::SeqCst))
    }
    fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), EngineError> {
        self.record(format!("kill {id} {signal} {all}"));
        Ok(())
    }
    fn delete(&self, id: &str, force: bool) -> Result<(), EngineError> {
        self.record(format!("delete {id} {force}"));
        Ok(())
    }
    fn ps(&self, _id: &str) -> Result<Vec<u32>, EngineError> {
        Ok(vec![1000, 1001])
    }
    fn pause(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("pause {id}"));
        Ok(())
    }
    fn resume(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("resume {id}"));
        Ok(())
    }
    fn update(&self, id: &str, r: &[u8]) -> Result<(), EngineError> {
        self.record(format!("update {id} {}", String::from_utf8_lossy(r)));
        Ok(())
    }
    fn stats(&self, _id: &str) -> Result<serde_json::Value, EngineError> {
        Ok(serde_json::json!({"type":"stats","data":{"pids":{"current":1}}}))
    }
}

struct Factory(Arc<FakeEngine>);
impl EngineFactory for Factory {
    fn engine(&self, _: &Path, _: &RuntimeOptions) -> Result<Arc<dyn Engine>, ShimError> {
        Ok(self.0.clone())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, Event)>>);
impl EventSender for Recorder {
    fn send(&self, topic: &'static str, event: Event) {
        self.0.lock().unwrap().push((topic, event));
    }
}
impl Recorder {
    fn topics(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
    fn wait_for(&self, topic: &str) {
        for _ in 0..200 {
            if self.topics().contains(&topic) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no {topic} event; got {:?}", self.topics());
    }
}

struct Harness {
    svc: Arc<TaskService>,
    engine: Arc<FakeEngine>,
    events: Arc<Recorder>,
    shut_down: Arc<AtomicBool>,
}

fn harness() -> Harness {
    let engine = Arc::new(FakeEngine::default());
    let events = Arc::new(Recorder::default());
    let shut_down = Arc::new(AtomicBool::new(false));
    let flag = shut_down.clone();
    let svc = Arc::new(TaskService::new(
        Box::new(Factory(engine.clone())),
        events.clone(),
        Box::new(move || flag.store(true, Ordering::SeqCst)),
    ));
    Harness {
        svc,
        engine,
        events,
        shut_down,
    }
}

fn create(h: &Harness, id: &str) -> u32 {
    h.svc
        .create(CreateTaskRequest {
            id: id.into(),
            bundle: "/nonexistent/bundle".into(),
            ..Default::default()
        })
        .unwrap()
        .pid
}

fn code(e: ShimError) -> ttrpc::Code {
    match ttrpc::Error::from(e) {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("not a status: {other:?}"),
    }
}

fn state(h: &Harness, id: &str, exec_id: &str) -> StateResponse {
    h.svc
        .state(StateRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn container_lifecycle_publishes_create_start_exit_delete_in_order() {
    let h = harness();
    let pid = create(&h, "c1");
    assert_eq!(
        state(&h, "c1", "").status.enum_value(),
        Ok(ApiStatus::CREATED)
    );
    h.svc
        .start(StartRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        state(&h, "c1", "").status.enum_value(),
        Ok(ApiStatus::RUNNING)
    );
    h.svc.on_exit(pid, 7);
    let w = h
        .svc
        .wait(WaitRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(w.exit_status, 7);
    h.events.wait_for("/tasks/exit");
    let st = state(&h, "c1", "");
    assert_eq!(
        (st.status.enum_value(), st.exit_status),
        (Ok(ApiStatus::STOPPED), 7)
    );
    let d = h
        .svc
        .delete(DeleteRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((d.pid, d.exit_status), (pid, 7));
    assert_eq!(
        h.events.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    let err = h
        .svc
        .state(StateRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(code(err), ttrpc::Code::NOT_FOUND);
    // No readable config.json: like containerd, the rest of the container is
    // killed when its init exits.
    assert_eq!(
        *h.engine.calls.lock().unwrap(),
        ["create c1", "start c1", "kill c1 9 true", "delete c1 false"]
    );
}

/// A bundle dir with a config.json holding `namespaces`; removed on drop.
struct Bundle(std::path::PathBuf);
impl Bundle {
    fn new(name: &str, namespaces: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("husk-shim-ts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!("{{\"ociVersion\":\"1.0.2\",\"linux\":{{\"namespaces\":{namespaces}}}}}"),
        )
        .unwrap();
        Bundle(dir)
    }
}
impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates and starts `id` in `bundle`, runs an exec in it, lets the init exit;
/// returns the engine calls once TaskExit is out.
fn init_exit_calls(id: &str, bundle: &Bundle) -> Vec<String> {
    let h = harness();
    let pid = h
        .svc
        .create(CreateTaskRequest {
            id: id.into(),
            bundle: bundle.0.display().to_string(),
            ..Default::default()
        })
        .unwrap()
        .pid;
    h.svc
        .start(StartRequest {
            id: id.into(),
            ..Default::default()
        })
        .unwrap();
    h.svc
        .exec(ExecProcessRequest {
            id: id.into(),
            exec_id: "e1".into(),
            spec: MessageField::some(Any {
                value: b"{\"args\":[\"sleep\",\"100\"]}".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    let exec_pid = h
        .svc
        .start(StartRequest {
            id: id.into(),
            exec_id: "e1".into(),
            ..Default::default()
        })
        .unwrap()
        .pid;
    h.svc.on_exit(exec_pid, 0);
    h.events.wait_for("/tasks/exit");
    assert!(
        !h.engine
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("kill")),
        "an exec's exit kills nothing"
    );
    h.svc.on_exit(pid, 0);
    h.svc
        .wait(WaitRequest {
            id: id.into(),
            ..Default::default()
        })
        .unwrap();
    let calls = h.engine.calls.lock().unwrap().clone();
    calls
}

#[test]
fn init_exit_kills_the_rest_when_the_pid_namespace_is_shared() {
    let host = Bundle::new("host-pid", r#"[{"type":"mount"},{"type":"network"}]"#);
    let joined = Bundle::new(
        "joined-pid",
        r#"[{"type":"mount"},{"type":"pid","path":"/proc/1/ns/pid"}]"#,
    );
    for (id, bundle) in [("k1", &host), ("k2", &joined)] {
        let calls = init_exit_calls(id, bundle);
        // Before Wait returned (the kill precedes the recorded exit).
        assert_eq!(
            calls,
            [
                format!("create {id}"),
                format!("start {id}"),
                format!("exec {id} e1"),
                format!("kill {id} 9 true")
            ]
        );
    }
}

#[test]
fn init_exit_leaves_its_own_pid_namespace_to_the_kernel() {
    let own = Bundle::new("own-pid", r#"[{"type":"pid"},{"type":"mount"}]"#);
    let calls = init_exit_calls("k3", &own);
    assert_eq!(calls, ["create k3", "start k3", "exec k3 e1"]);
}

#[test]
fn every_wait_caller_gets_the_exit_and_the_event_carries_it() {
    let h = harness();
    let pid = create(&h, "c2");
    h.svc
        .start(StartRequest {
            id: "c2".into(),
            ..Default::default()
        })
        .unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let svc = h.svc.clone();
            std::thread::spawn(move || {
                svc.wait(WaitRequest {
                    id: "c2".into(),
                    ..Default::default()
                })
                .unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    h.svc.on_exit(pid, 128 + 9);
    for w in waiters {
        assert_eq!(w.join().unwrap().exit_status, 137);
    }
    h.events.wait_for("/tasks/exit");
    let ev = h.events.0.lock().unwrap();
    let exit = ev.iter().find_map(|(_, e)| e.decode::<TaskExit>()).unwrap();
    assert_eq!(
        (
            exit.container_id.as_str(),
            exit.id.as_str(),
            exit.pid,
            exit.exit_status
        ),
        ("c2", "c2", pid, 137)
    );
}

#[test]
fn exit_reaped_before_create_returned_is_not_lost() {
    let h = harness();
    // The fake hands out 1000 first; the reaper reports it before the service knows it.
    h.svc.on_exit(1000, 3);
    let pid = create(&h, "c3");
    assert_eq!(pid, 1000);
    let w = h
        .svc
        .wait(WaitRequest {
            id: "c3".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(w.exit_status, 3);
}

#[test]
fn exec_process_has_its_own_state_events_and_exit() {
    let h = harness();
    create(&h, "c4");
    h.svc
        .start(StartRequest {
            id: "c4".into(),
            ..Default::default()
        })
        .unwrap();
    let spec = Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
        value: b"{\"args\":[\"true\"]}".to_vec(),
        ..Default::default()
    };
    let req = ExecProcessRequest {
        id: "c4".into(),
        exec_id: "e1".into(),
        spec: MessageField::some(spec),
        ..Default::default()
    };
    h.svc.exec(req.clone()).unwrap();
    assert_eq!(
        code(h.svc.exec(req).unwrap_err()),
        ttrpc::Code::ALREADY_EXISTS
    );
    let pid = h
        .svc
        .start(StartRequest {
            id: "c4".into(),
            exec_id: "e1".into(),
            ..Default::default()
        })
        .unwrap()
        .pid;
    assert_eq!(
        state(&h, "c4", "e1").status.enum_value(),
        Ok(ApiStatus::RUNNING)
    );
    assert_eq!(
        state(&h, "c4", "").status.enum_value(),
        Ok(ApiStatus::RUNNING)
    );
    h.svc.on_exit(pid, 0);
    let w = h
        .svc
        .wait(WaitRequest {
            id: "c4".into(),
            exec_id: "e1".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(w.exit_status, 0);
    assert_eq!(
        state(&h, "c4", "").status.enum_value(),
        Ok(ApiStatus::RUNNING),
        "init unaffected"
    );
    h.events.wait_for("/tasks/exit");
    {
        let ev = h.events.0.lock().unwrap();
        let started = ev
            .iter()
            .find_map(|(_, e)| e.decode::<TaskExecStarted>())
            .unwrap();
        assert_eq!((started.exec_id.as_str(), started.pid), ("e1", pid));
        let exit = ev.iter().find_map(|(_, e)| e.decode::<TaskExit>()).unwrap();
        assert_eq!(exit.id, "e1");
    }
    h.svc
        .delete(DeleteRequest {
            id: "c4".into(),
            exec_id: "e1".into(),
            ..Default::default()
        })
        .unwrap();
    let err = h
        .svc
        .state(StateRequest {
            id: "c4".into(),
            exec_id: "e1".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(code(err), ttrpc::Code::NOT_FOUND);
    assert_eq!(
        h.events.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit"
        ]
    );
}

#[test]
fn illegal_transitions_are_failed_precondition_and_leave_the_engine_alone() {
    let h = harness();
    create(&h, "c5");
    assert_eq!(
        code(
            h.svc
                .pause(PauseRequest {
                    id: "c5".into(),
                    ..Default::default()
                })
                .unwrap_err()
        ),
        ttrpc::Code::FAILED_PRECONDITION
    );
    h.svc
        .start(StartRequest {
            id: "c5".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        code(
            h.svc
                .start(StartRequest {
                    id: "c5".into(),
                    ..Default::default()
                })
                .unwrap_err()
        ),
        ttrpc::Code::FAILED_PRECONDITION
    );
    assert_eq!(
        code(
            h.svc
                .delete(DeleteRequest {
                    id: "c5".into(),
                    ..Default::default()
                })
                .unwrap_err()
        ),
        ttrpc::Code::FAILED_PRECONDITION
    );
    assert_eq!(
        code(
            h.svc
                .resume(ResumeRequest {
                    id: "c5".into(),
                    ..Default::default()
                })
                .unwrap_err()
        ),
        ttrpc::Code::FAILED_PRECONDITION
    );
    assert_eq!(*h.engine.calls.lock().unwrap(), ["create c5", "start c5"]);
}

#[test]
fn pause_and_resume_change_state_and_publish() {
    let h = harness();
    create(&h, "c6");
    h.svc
        .start(StartRequest {
            id: "c6".into(),
            ..Default::default()
        })
        .unwrap();
    h.svc
        .pause(PauseRequest {
            id: "c6".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        state(&h, "c6", "").status.enum_value(),
        Ok(ApiStatus::PAUSED)
    );
    h.svc
        .resume(ResumeRequest {
            id: "c6".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        state(&h, "c6", "").status.enum_value(),
        Ok(ApiStatus::RUNNING)
    );
    assert_eq!(
        h.events.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/paused",
            "/tasks/resumed"
        ]
    );
}

#[test]
fn kill_pids_update_and_stats_go_to_the_engine() {
    let h = harness();
    create(&h, "c7");
    h.svc
        .kill(KillRequest {
            id: "c7".into(),
            signal: 15,
            all: true,
            ..Default::default()
        })
        .unwrap();
    let pids = h
        .svc
        .pids(PidsRequest {
            id: "c7".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        pids.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [1000, 1001]
    );
    let res = Any {
        type_url: "x".into(),
        value: b"{\"pids\":{\"limit\":5}}".to_vec(),
        ..Default::default()
    };
    h.svc
        .update(UpdateTaskRequest {
            id: "c7".into(),
            resources: MessageField::some(res),
            ..Default::default()
        })
        .unwrap();
    let stats = h
        .svc
        .stats(StatsRequest {
            id: "c7".into(),
            ..Default::default()
        })
        .unwrap();
    // The message follows the host's cgroup mode (this also runs in the v2 guest).
    let expected = match husk_shim::metrics::hierarchy_at(std::path::Path::new("/sys/fs/cgroup")) {
        husk_shim::metrics::Hierarchy::Unified => "io.containerd.cgroups.v2.Metrics",
        husk_shim::metrics::Hierarchy::Legacy => "io.containerd.cgroups.v1.Metrics",
    };
    assert_eq!(stats.stats.type_url, expected);
    assert_eq!(
        *h.engine.calls.lock().unwrap(),
        [
            "create c7",
            "kill c7 15 true",
            "update c7 {\"pids\":{\"limit\":5}}"
        ]
    );
}

#[test]
fn systemd_cgroup_option_is_refused_before_anything_runs() {
    let h = harness();
    let opts = Options {
        systemd_cgroup: true,
        ..Default::default()
    };
    let any = Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: opts.write_to_bytes().unwrap(),
        ..Default::default()
    };
    let err = h
        .svc
        .create(CreateTaskRequest {
            id: "c8".into(),
            options: MessageField::some(any),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("SystemdCgroup"), "{err}");
    assert_eq!(code(err), ttrpc::Code::INVALID_ARGUMENT);
    assert!(h.engine.calls.lock().unwrap().is_empty());
    assert!(h.events.topics().is_empty());
}

#[test]
fn shutdown_waits_until_the_last_container_is_deleted() {
    let h = harness();
    let pid = create(&h, "c9");
    h.svc.shutdown(ShutdownRequest::default()).unwrap();
    assert!(!h.shut_down.load(Ordering::SeqCst));
    h.svc.on_exit(pid, 0);
    h.svc
        .wait(WaitRequest {
            id: "c9".into(),
            ..Default::default()
        })
        .unwrap();
    h.svc
        .delete(DeleteRequest {
            id: "c9".into(),
            ..Default::default()
        })
        .unwrap();
    h.svc.shutdown(ShutdownRequest::default()).unwrap();
    assert!(h.shut_down.load(Ordering::SeqCst));
}

#[test]
fn checkpoint_restore_is_unimplemented_with_a_reason() {
    let h = harness();
    let err = h
        .svc
        .create(CreateTaskRequest {
            id: "c10".into(),
            checkpoint: "/ckpt".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(code(err), ttrpc::Code::UNIMPLEMENTED);
}
