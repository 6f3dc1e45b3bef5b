//! `containerd-shim-husk-v2`: containerd's entry point; the work is in the library.

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use std::io::Write;

const RUNTIME_ID: &str = "io.containerd.husk.v2";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|a| a == "-v" || a == "--v" || a == "-version" || a == "--version")
    {
        println!(
            "{}:\n  Version:  {}\n  Runtime:  husk",
            env!("CARGO_BIN_NAME"),
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    if args.iter().any(|a| a == "-info" || a == "--info") {
        let info = RuntimeInfo {
            name: RUNTIME_ID.to_string(),
            version: Some(RuntimeVersion {
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let bytes = info.write_to_bytes().unwrap_or_default();
        let _ = std::io::stdout().write_all(&bytes);
        return;
    }
    containerd_shim::run::<husk_shim::shim::HuskShim>(RUNTIME_ID, None);
}
