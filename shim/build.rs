//! Generates Rust code for containerd's cgroup v2 metrics message and for the
//! `runtimeoptions.v1.Options` CRI sends to non-runc shims.
//!
//! containerd-shim-protos 0.10 (the last release speaking task v2 for containerd 1.6)
//! ships only `io.containerd.cgroups.v1.Metrics`. The v2 message is generated here
//! rather than checked in: protobuf-codegen's pure-Rust parser is already built for
//! containerd-shim-protos's own build script (same 3.7.2 release as the `protobuf`
//! runtime it links), so this costs no new dependency and no `protoc`, and the
//! generated code can never drift from the runtime crate it is compiled against.

use std::path::Path;

const PROTOS: [(&str, &str); 2] = [
    ("proto/cgroup2_metrics.proto", "cgroup2"),
    ("proto/runtimeoptions.proto", "runtimeoptions"),
];

fn main() {
    for (proto, _) in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    // The static shim's link reads the symbol ordering file (Makefile SHIM_LINK),
    // which cargo does not know about: a new list must relink the shim.
    println!("cargo:rerun-if-changed=symbol-order.txt");
    for (proto, dir) in PROTOS {
        protobuf_codegen::Codegen::new()
            .pure()
            .include("proto")
            .input(proto)
            .cargo_out_dir(dir)
            .run_from_script();
        // `include!` rejects inner attributes (`#![allow(...)]`) and inner doc
        // comments; drop them (the including module carries its own allows).
        let stem = Path::new(proto).file_stem().expect("a file name");
        let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
            .join(dir)
            .join(stem)
            .with_extension("rs");
        let text = std::fs::read_to_string(&out).expect("read generated code");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("#!") && !l.starts_with("//!"))
            .collect();
        std::fs::write(&out, kept.join("\n")).expect("write generated code");
    }
}
