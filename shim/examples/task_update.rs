//! Calls a running shim's `Update` RPC the way containerd does: the new `LinuxResources` as
//! JSON in an `Any` with containerd's type URL. `ctr` 1.6 has no `task update`, so
//! hack/shim-e2e.sh uses this to check the RPC end to end.
//!
//! Usage: task_update ADDRESS ID RESOURCES_JSON
//!        (ADDRESS as in the bundle's `address` file, e.g. unix:///run/containerd/s/…)

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::shim::UpdateTaskRequest;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::TaskClient;

/// What containerd registers `specs.LinuxResources` under (typeurl).
const RESOURCES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, id, resources] = args.as_slice() else {
        eprintln!("usage: task_update ADDRESS ID RESOURCES_JSON");
        std::process::exit(2);
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(resources) {
        eprintln!("task_update: RESOURCES_JSON is not JSON: {e}");
        std::process::exit(2);
    }
    let client = match ttrpc::Client::connect(address) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("task_update: connect to {address}: {e}");
            std::process::exit(1);
        }
    };
    let req = UpdateTaskRequest {
        id: id.clone(),
        resources: MessageField::some(Any {
            type_url: RESOURCES_TYPE.into(),
            value: resources.as_bytes().to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Err(e) =
        TaskClient::new(client).update(ttrpc::context::with_timeout(10_000_000_000), &req)
    {
        eprintln!("task_update: Update({id}): {e}");
        std::process::exit(1);
    }
}
