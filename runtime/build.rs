//! Gives the seccomp cache (src/seccomp/cache.rs) an id of the code that compiles profiles, so
//! a rebuilt husk never uses a program an older build compiled.

use std::hash::{Hash, Hasher};

fn main() {
    let dir = std::path::Path::new("src/seccomp");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/seccomp")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        f.file_name().hash(&mut h);
        std::fs::read(f)
            .expect("read a seccomp source")
            .hash(&mut h);
    }
    env!("CARGO_PKG_VERSION").hash(&mut h);
    println!("cargo:rustc-env=HUSK_SECCOMP_CODE_ID={:016x}", h.finish());
}
