//! OCI bundles for tests: a busybox rootfs plus a `config.json` that starts as
//! `runc spec`'s default and is edited per test through [`Bundle`]'s setters.

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::runtime::unique_id;

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into every test rootfs.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "hostname", "mount", "mkdir", "touch", "sleep", "true",
    "false", "stat", "grep", "ps", "env", "pwd", "readlink", "wc", "head", "test", "[", "usleep",
    "tr", "sed", "sort", "rm", "ln", "uname", "printf", "cut", "dd", "tail", "kill", "mknod",
    "tty",
];

/// The default configuration `runc spec` writes (runc 1.1), with `terminal` off.
pub fn default_spec() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The cgroup path (relative to each hierarchy's root) a container with `id` uses.
pub fn cgroups_path(id: &str) -> String {
    format!("/husk-test/{id}")
}

/// Bitmask of capability numbers, as `/proc/<pid>/status` prints it (16 hex digits).
pub fn cap_mask(caps: &[&str]) -> String {
    let mask = caps.iter().fold(0u64, |m, c| m | (1u64 << cap_number(c)));
    format!("{mask:016x}")
}

/// The kernel's number for a `CAP_*` name (see capability.h).
pub fn cap_number(name: &str) -> u32 {
    const NAMES: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability name {name} in test"))
        .try_into()
        .expect("capability number fits u32")
}

/// A bundle directory (removed on drop) holding `rootfs/` and a config that
/// is written to `config.json` by [`Bundle::save`] (the runtime helpers save
/// before every command that reads it).
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The container id tests should use with this bundle; the config's
    /// `linux.cgroupsPath` is already `/husk-test/<id>`.
    pub id: String,
    config: Value,
}

impl Bundle {
    /// A bundle whose rootfs holds busybox, its applets, `/etc/passwd` and
    /// `/etc/group`, and whose config is `runc spec`'s with `terminal: false`.
    pub fn busybox() -> Bundle {
        let mut b = Bundle::busybox_rootfs_only();
        let cg = cgroups_path(&b.id);
        b.config = default_spec();
        b.set("/linux/cgroupsPath", json!(cg));
        b.save();
        b
    }

    /// Just the bundle directory and its busybox rootfs: no `config.json`.
    pub fn busybox_rootfs_only() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("husk-bundle-")
            .tempdir()
            .expect("create bundle temp dir");
        // Mapped users in user-namespace tests must be able to traverse it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod bundle dir");
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "proc",
            "sys",
            "dev",
            "tmp",
            "etc",
            "root",
            "home/user",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("create rootfs dir");
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod rootfs/tmp");
        fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
            .unwrap_or_else(|e| panic!("copy {BUSYBOX} (install busybox-static): {e}"));
        for applet in APPLETS {
            symlink("busybox", rootfs.join("bin").join(applet)).expect("link busybox applet");
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .expect("write /etc/passwd");
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ntty:x:5:\nuser:x:1000:\n",
        )
        .expect("write /etc/group");
        Bundle {
            dir,
            id: unique_id(),
            config: Value::Null,
        }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The config as it will be written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Mutable access to the whole config.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Writes the config to `config.json` (no-op for rootfs-only bundles).
    pub fn save(&self) {
        if self.config.is_null() {
            return;
        }
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.path().join("config.json"), text).expect("write config.json");
    }

    /// Sets the value at a JSON pointer, creating missing parent objects.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<&str> = pointer.split('/').skip(1).collect();
        for (i, part) in parts.iter().enumerate() {
            if cur.is_null() {
                *cur = json!({});
            }
            let last = i + 1 == parts.len();
            cur = match cur {
                Value::Object(map) => {
                    if last {
                        map.insert((*part).to_string(), value);
                        return self;
                    }
                    map.entry((*part).to_string()).or_insert(Value::Null)
                }
                Value::Array(arr) => {
                    let idx: usize = part.parse().expect("array index in pointer");
                    if last {
                        arr[idx] = value;
                        return self;
                    }
                    &mut arr[idx]
                }
                other => panic!("cannot descend into {other} at {part} of {pointer}"),
            };
        }
        self.config = value;
        self
    }

    /// Removes the value at a JSON pointer (if present).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a slash");
        match self.config.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(key);
            }
            Some(Value::Array(arr)) => {
                arr.remove(key.parse::<usize>().expect("array index"));
            }
            _ => {}
        }
        self
    }

    /// Appends a value to the array at `pointer` (created if missing).
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        if !matches!(self.config.pointer(pointer), Some(Value::Array(_))) {
            self.set(pointer, json!([]));
        }
        if let Some(Value::Array(arr)) = self.config.pointer_mut(pointer) {
            arr.push(value);
        }
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `sh -c <script>`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn env(&mut self, env: &[&str]) -> &mut Self {
        self.set("/process/env", json!(env))
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set("/process/cwd", json!(cwd))
    }

    pub fn user(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> &mut Self {
        self.set("/process/user", json!({ "uid": uid, "gid": gid }));
        if !additional_gids.is_empty() {
            self.set("/process/user/additionalGids", json!(additional_gids));
        }
        self
    }

    pub fn umask(&mut self, umask: u32) -> &mut Self {
        self.set("/process/user/umask", json!(umask))
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }

    /// Sets all five capability sets to `caps`.
    pub fn caps(&mut self, caps: &[&str]) -> &mut Self {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            self.cap_set(set, caps);
        }
        self
    }

    /// Sets one capability set (`bounding`, `effective`, ...).
    pub fn cap_set(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.set(&format!("/process/capabilities/{set}"), json!(caps))
    }

    /// Adds or replaces one rlimit.
    pub fn rlimit(&mut self, kind: &str, soft: u64, hard: u64) -> &mut Self {
        let entry = json!({ "type": kind, "soft": soft, "hard": hard });
        if let Some(Value::Array(arr)) = self.config.pointer_mut("/process/rlimits") {
            arr.retain(|r| r["type"] != kind);
        }
        self.push("/process/rlimits", entry)
    }

    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.set("/process/noNewPrivileges", json!(on))
    }

    pub fn oom_score_adj(&mut self, adj: i32) -> &mut Self {
        self.set("/process/oomScoreAdj", json!(adj))
    }

    /// Appends a mount entry.
    pub fn mount(&mut self, mount: Value) -> &mut Self {
        self.push("/mounts", mount)
    }

    pub fn masked_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.set("/linux/maskedPaths", json!(paths))
    }

    pub fn readonly_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.set("/linux/readonlyPaths", json!(paths))
    }

    /// Replaces the namespace list with fresh namespaces of these types.
    pub fn namespaces(&mut self, types: &[&str]) -> &mut Self {
        let list: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        self.set("/linux/namespaces", Value::Array(list))
    }

    /// Adds a namespace, joining `path` if given (replacing one of the same type).
    pub fn namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(kind);
        let mut ns = json!({ "type": kind });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.push("/linux/namespaces", ns)
    }

    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        if let Some(Value::Array(arr)) = self.config.pointer_mut("/linux/namespaces") {
            arr.retain(|n| n["type"] != kind);
        }
        self
    }

    pub fn uid_mapping(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        self.push(
            "/linux/uidMappings",
            json!({ "containerID": container, "hostID": host, "size": size }),
        )
    }

    pub fn gid_mapping(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        self.push(
            "/linux/gidMappings",
            json!({ "containerID": container, "hostID": host, "size": size }),
        )
    }

    /// Appends a hook (`kind` is `prestart`, `createRuntime`, ...).
    pub fn hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        self.push(&format!("/hooks/{kind}"), hook)
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.set("/hostname", json!(name))
    }

    pub fn root_readonly(&mut self, on: bool) -> &mut Self {
        self.set("/root/readonly", json!(on))
    }

    pub fn devices(&mut self, devices: Value) -> &mut Self {
        self.set("/linux/devices", devices)
    }

    pub fn seccomp(&mut self, seccomp: Value) -> &mut Self {
        self.set("/linux/seccomp", seccomp)
    }

    pub fn annotation(&mut self, key: &str, value: &str) -> &mut Self {
        self.set(&format!("/annotations/{key}"), json!(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_mask_sets_the_bits_of_the_named_capabilities() {
        assert_eq!(cap_mask(&[]), "0000000000000000");
        assert_eq!(cap_mask(&["CAP_CHOWN"]), "0000000000000001");
        assert_eq!(
            cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]),
            "0000000020000420"
        );
        assert_eq!(cap_mask(&["CAP_CHECKPOINT_RESTORE"]), "0000010000000000");
    }

    #[test]
    fn set_creates_missing_parents_and_push_appends() {
        let mut b = Bundle::busybox();
        b.set("/linux/resources/pids", json!({ "limit": 3 }))
            .annotation("a.b", "c")
            .hook("prestart", json!({ "path": "/x" }))
            .hook("prestart", json!({ "path": "/y" }));
        let cfg = b.config();
        assert_eq!(cfg["linux"]["resources"]["pids"]["limit"], 3);
        assert_eq!(cfg["annotations"]["a.b"], "c");
        assert_eq!(cfg["hooks"]["prestart"][1]["path"], "/y");
        assert_eq!(cfg["linux"]["cgroupsPath"], cgroups_path(&b.id));
        b.remove("/hooks");
        assert!(b.config().get("hooks").is_none());
    }

    #[test]
    fn namespace_replaces_an_entry_of_the_same_type() {
        let mut b = Bundle::busybox();
        b.namespace("network", Some("/proc/1/ns/net"));
        let ns = b.config()["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .clone();
        let nets: Vec<_> = ns.iter().filter(|n| n["type"] == "network").collect();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0]["path"], "/proc/1/ns/net");
    }

    #[test]
    fn busybox_bundle_has_the_applets_and_users() {
        let b = Bundle::busybox();
        for applet in ["sh", "ls", "cat", "id", "stat"] {
            let link = std::fs::read_link(b.rootfs().join("bin").join(applet)).unwrap();
            assert_eq!(link, Path::new("busybox"));
        }
        let passwd = std::fs::read_to_string(b.rootfs().join("etc/passwd")).unwrap();
        assert!(passwd.contains("user:x:1000:1000:"));
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(b.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(saved["process"]["terminal"], false);
    }
}
