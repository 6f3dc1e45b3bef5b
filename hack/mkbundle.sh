#!/usr/bin/env bash
# Make an OCI bundle whose rootfs is Debian's static busybox.
#
#   hack/mkbundle.sh [options] DIR [ID]
#
#   DIR   bundle directory to create (must not exist or be empty)
#   ID    container id, used for linux.cgroupsPath=/husk-demo/ID (default: basename DIR)
#
# Options:
#   --cmd 'SHELL COMMAND'  process.args becomes ["sh","-c",CMD] (default: a hello line)
#   --cgroups-path PATH    absolute linux.cgroupsPath (default: /husk-demo/ID)
#   --hostname NAME        (default: husk)
#   --rw                   root.readonly=false (runc's spec default is true)
#   --busybox PATH         static busybox binary to copy (default: /bin/busybox)
#
# config.json is what `runc spec` writes, except terminal=false, the args,
# hostname and cgroupsPath. The rootfs is built on the host: busybox plus one
# symlink per applet from `busybox --list-full` (what `busybox --install -s`
# would make), /etc/{passwd,group,hostname} and dev proc sys tmp root.
set -euo pipefail

usage() { sed -n '2,18p' "$0" >&2; exit 2; }

cmd='echo hello from husk'
cgroups_path=''
hostname='husk'
readonly_root=true
busybox=/bin/busybox
while [ $# -gt 0 ]; do
    case "$1" in
        --cmd) cmd="${2?--cmd needs a value}"; shift 2 ;;
        --cgroups-path) cgroups_path="${2?--cgroups-path needs a value}"; shift 2 ;;
        --hostname) hostname="${2?--hostname needs a value}"; shift 2 ;;
        --rw) readonly_root=false; shift ;;
        --busybox) busybox="${2?--busybox needs a value}"; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "mkbundle: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
dir="$1"
id="${2:-$(basename "$dir")}"
[ -n "$cgroups_path" ] || cgroups_path="/husk-demo/$id"
case "$cgroups_path" in
    /*) ;;
    *) echo "mkbundle: --cgroups-path must be absolute: $cgroups_path" >&2; exit 2 ;;
esac
if [ ! -x "$busybox" ]; then
    echo "mkbundle: $busybox missing (hack/install-deps.sh installs busybox-static)" >&2
    exit 1
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "mkbundle: $dir exists and is not empty" >&2
    exit 1
fi

rootfs="$dir/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root}
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
chmod 755 "$rootfs/bin/busybox"
"$(dirname "$0")/busybox-links.py" "$rootfs" "$busybox"

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo "$hostname" > "$rootfs/etc/hostname"

# Values go through the environment so quotes in --cmd need no escaping here.
MKB_CMD="$cmd" MKB_HOSTNAME="$hostname" MKB_CGROUPS_PATH="$cgroups_path" \
MKB_READONLY="$readonly_root" python3 - "$dir/config.json" <<'PY'
import json, os, sys

config = json.loads(r'''
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/",
    "capabilities": {
      "bounding":  ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient":   ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}
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
}
''')
config["process"]["args"] = ["sh", "-c", os.environ["MKB_CMD"]]
config["hostname"] = os.environ["MKB_HOSTNAME"]
config["root"]["readonly"] = os.environ["MKB_READONLY"] == "true"
config["linux"]["cgroupsPath"] = os.environ["MKB_CGROUPS_PATH"]
with open(sys.argv[1], "w") as f:
    json.dump(config, f, indent="\t")
    f.write("\n")
PY
