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
    // containerd runs `start` and `delete` with the action as an argument and the
    // server without one: the server is husk_shim::serve's, the rest the crate's.
    if let Ok(flags) = containerd_shim::parse(&std::env::args_os().skip(1).collect::<Vec<_>>()) {
        if flags.action.is_empty() {
            if let Err(e) = husk_shim::serve::serve(RUNTIME_ID, flags) {
                eprintln!("{RUNTIME_ID}: {e}");
                std::process::exit(1);
            }
            return;
        }
    }
    containerd_shim::run::<husk_shim::shim::HuskShim>(RUNTIME_ID, None);
}
