//! `spec` writes a config that the runtime itself can run once the test
//! points it at a busybox command and a test-owned cgroup.

use serde_json::{json, Value};
use spec_tests::bundle::{cgroups_path, default_spec};
use spec_tests::runtime::Opts;
use spec_tests::{Bundle, Runtime};
use std::fs;

fn generated_spec(b: &Bundle, rt: &Runtime) -> Value {
    rt.cmd_with(
        &["spec"],
        Opts {
            cwd: Some(b.path()),
            ..Opts::default()
        },
    )
    .ok("spec");
    let text = fs::read_to_string(b.path().join("config.json")).expect("spec wrote config.json");
    serde_json::from_str(&text).expect("spec output is JSON")
}

#[test]
fn spec_output_runs_after_setting_args_and_cgroups_path() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox_rootfs_only();
    let mut cfg = generated_spec(&b, &rt);
    cfg["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    // A terminal needs a console socket for a detached runtime; the test's
    // stdin is not a tty, so run it without one.
    cfg["process"]["terminal"] = json!(false);
    cfg["linux"]["cgroupsPath"] = json!(cgroups_path(&b.id));
    *b.config_mut() = cfg;
    let c = rt.container(&b);
    let out = c.run_ok();
    let name = generated_spec(&Bundle::busybox_rootfs_only(), &rt)["hostname"].clone();
    assert_eq!(
        out,
        format!("spec-ok\n{}\n", name.as_str().unwrap_or_default())
    );
}

#[test]
fn spec_output_matches_runcs_default_config() {
    let rt = Runtime::new();
    let b = Bundle::busybox_rootfs_only();
    let mut cfg = generated_spec(&b, &rt);
    let mut want = default_spec();
    // The only field Bundle changes from runc's output is the terminal flag.
    want["process"]["terminal"] = json!(true);
    // ociVersion is the runtime's own supported version.
    assert!(
        cfg["ociVersion"].as_str().unwrap_or("").starts_with("1."),
        "{cfg}"
    );
    cfg["ociVersion"] = want["ociVersion"].clone();
    // The hostname is the runtime's own name ("runc", "husk"); everything else is runc's.
    assert!(cfg["hostname"].is_string(), "{cfg}");
    cfg["hostname"] = want["hostname"].clone();
    assert_eq!(cfg, want);
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let before = fs::read_to_string(b.path().join("config.json")).unwrap();
    let out = rt.cmd_with(
        &["spec"],
        Opts {
            cwd: Some(b.path()),
            ..Opts::default()
        },
    );
    out.failed("spec over an existing config.json");
    assert_eq!(
        fs::read_to_string(b.path().join("config.json")).unwrap(),
        before
    );
}

#[test]
fn spec_bundle_flag_writes_into_that_directory() {
    let rt = Runtime::new();
    let b = Bundle::busybox_rootfs_only();
    rt.cmd(&["spec", "--bundle", b.path().to_str().unwrap()])
        .ok("spec --bundle");
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(b.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], "rootfs");
}

#[test]
fn spec_rootless_drops_the_network_namespace_and_adds_user_mappings() {
    let rt = Runtime::new();
    let b = Bundle::busybox_rootfs_only();
    rt.cmd_with(
        &["spec", "--rootless"],
        Opts {
            cwd: Some(b.path()),
            ..Opts::default()
        },
    )
    .ok("spec --rootless");
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(b.path().join("config.json")).unwrap()).unwrap();
    let types: Vec<&str> = cfg["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"user"), "{types:?}");
    assert!(!types.contains(&"network"), "{types:?}");
    assert_eq!(cfg["linux"]["uidMappings"][0]["containerID"], 0);
    assert_eq!(
        cfg["linux"]["uidMappings"][0]["hostID"], 0,
        "current uid (root) mapped to 0"
    );
}
