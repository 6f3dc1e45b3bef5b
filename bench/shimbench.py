"""containerd shims: RSS of an idle shim that holds a `sleep` container, and `ctr run --rm`
latency, containerd-shim-husk-v2 vs containerd-shim-runc-v2.

Runs only when the shim is built: HUSK_BENCH_SHIM, else the static build `make build` makes
(target/<host triple>/release/containerd-shim-husk-v2), else target/release/. Starts a private containerd (own config, root, state and socket under
/run/husk-bench-containerd and /var/lib/husk-bench-containerd; the CRI plugin disabled), imports
a one-layer busybox image built here (no registry needed) and runs containers in the
containerd namespace `husk-bench`, so their cgroups are /husk-bench/<id> like the rest of the
benchmark. containerd is stopped (by its pid) at the end.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

NS = "husk-bench"
STATE = "/run/husk-bench-containerd"
ROOT = "/var/lib/husk-bench-containerd"
SOCK = f"{STATE}/containerd.sock"
IMAGE = "docker.io/library/husk-bench-busybox:latest"


def run(repo, out, husk, cg_parent, rounds):
    shim = os.environ.get("HUSK_BENCH_SHIM") or default_shim(repo)
    if not shim or not os.access(shim, os.X_OK):
        return {"measured": False, "reason": "shim not built (no containerd-shim-husk-v2 under target/)"}
    missing = [b for b in ("containerd", "ctr", "containerd-shim-runc-v2") if not shutil.which(b)]
    if missing:
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "containerd"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            return {"measured": False, "reason": f"containerd not installable: {r.stderr.strip()[-300:]}"}
    bindir = os.path.join(out, "shimbin")
    shutil.rmtree(bindir, ignore_errors=True)
    os.makedirs(bindir)
    # Copies, not symlinks: containerd finds shims by name on its PATH, and a copy keeps the
    # name in `ps`. husk beside the shim, for a shim that looks for `husk` on PATH.
    shutil.copy2(shim, os.path.join(bindir, "containerd-shim-husk-v2"))
    shutil.copy2(husk, os.path.join(bindir, "husk"))
    image_tar = os.path.join(out, "busybox-image.tar")
    build_image(os.path.join(out, "rootfs"), image_tar)
    d = Containerd(bindir, out)
    try:
        d.ctr("images", "import", image_tar)
        return measure(d, rounds)
    finally:
        d.stop()


def default_shim(repo):
    """The static shim `make build` links (target/<triple>/release), else cargo's default one."""
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout
    triple = next((line.split(": ", 1)[1] for line in host.splitlines() if line.startswith("host: ")), "")
    for rel in ([f"target/{triple}/release"] if triple else []) + ["target/release"]:
        path = os.path.join(repo, rel, "containerd-shim-husk-v2")
        if os.access(path, os.X_OK):
            return path
    return None


def measure(d, rounds):
    runtimes = {"husk": "io.containerd.husk.v2", "runc": "io.containerd.runc.v2"}
    shim_bin = {"husk": "containerd-shim-husk-v2", "runc": "containerd-shim-runc-v2"}
    res = {"measured": True, "ctr_run_ns": {k: [] for k in runtimes},
           "rss_kb": {k: [] for k in runtimes}, "pss_kb": {k: [] for k in runtimes}, "errors": []}
    # ctr run --rm, interleaved, after one warm-up each.
    for i in range(rounds + 1):
        for name, rt in runtimes.items():
            cid = f"ctr-{name}-{i}"
            t0 = time.perf_counter_ns()
            r = d.ctr("run", "--rm", "--runtime", rt, IMAGE, cid, "/bin/true", check=False)
            ns = time.perf_counter_ns() - t0
            if r.returncode != 0:
                res["errors"].append(f"{name}: ctr run: {r.stderr.strip()[-300:]}")
                d.cleanup(cid)
                continue
            if i > 0:
                res["ctr_run_ns"][name].append(ns)
    # Idle shim with a sleep container: RSS and PSS after it settled.
    for i in range(3):
        for name, rt in runtimes.items():
            cid = f"idle-{name}-{i}"
            r = d.ctr("run", "-d", "--runtime", rt, IMAGE, cid, "/bin/sleep", "100000", check=False)
            if r.returncode != 0:
                res["errors"].append(f"{name}: ctr run -d: {r.stderr.strip()[-300:]}")
                d.cleanup(cid)
                continue
            time.sleep(1.0)
            pid = shim_pid(shim_bin[name], cid)
            if pid:
                rss, pss = memory_kb(pid)
                if i == 0:
                    res.setdefault("breakdown", {})[name] = rss_breakdown(pid)
                res["rss_kb"][name].append(rss)
                res["pss_kb"][name].append(pss)
            else:
                res["errors"].append(f"{name}: no shim process found for {cid}")
            d.cleanup(cid)
    ok = all(res["rss_kb"][k] and res["ctr_run_ns"][k] for k in runtimes)
    if not ok:
        return {"measured": False, "reason": "shim runs failed: " + "; ".join(res["errors"][:3])}
    res["notes"] = (f"Private containerd {d.version}; `ctr run` of a one-layer busybox image built by "
                    f"the script; {rounds} interleaved `ctr run --rm` rounds; RSS/PSS from "
                    f"/proc/<shim>/status and smaps_rollup one second after `ctr run -d ... sleep`, "
                    f"median of 3.")
    return res


def shim_pid(binary, cid):
    """The shim serving `cid` (runc's v2 shim may group containers, so match -id or the bundle)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0].decode(errors="replace")) == binary:
            if cid.encode() in argv and NS.encode() in argv:
                return int(p)
    return None


def rss_breakdown(pid):
    """Threads and the largest RSS contributors (kB per mapped file or [heap]/[anon])."""
    by = {}
    cur = "[anon]"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            p = line.split()
            if p and "-" in p[0] and not p[0].endswith(":"):
                cur = os.path.basename(p[5]) if len(p) > 5 and p[5].startswith("/") else (p[5] if len(p) > 5 else "[anon]")
            elif p and p[0] == "Rss:":
                by[cur] = by.get(cur, 0) + int(p[1])
    with open(f"/proc/{pid}/status") as f:
        threads = next((int(line.split()[1]) for line in f if line.startswith("Threads:")), None)
    top = sorted(by.items(), key=lambda kv: -kv[1])[:6]
    return {"threads": threads, "top_kb": top}


def memory_kb(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


class Containerd:
    def __init__(self, bindir, out):
        os.makedirs(STATE, exist_ok=True)
        os.makedirs(ROOT, exist_ok=True)
        cfg = os.path.join(out, "containerd.toml")
        with open(cfg, "w") as f:
            f.write(f'version = 2\nroot = "{ROOT}"\nstate = "{STATE}"\n'
                    f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{SOCK}"\n'
                    f'[ttrpc]\n  address = "{SOCK}.ttrpc"\n'
                    f'[debug]\n  address = ""\n'
                    f'[metrics]\n  address = ""\n')
        env = dict(os.environ, PATH=f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self.log = open(os.path.join(out, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", cfg], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(SOCK) and self.ctr("version", check=False).returncode == 0:
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise SystemExit("bench: private containerd did not come up (bench/out/containerd.log)")
        self.version = subprocess.run(["containerd", "--version"], capture_output=True, text=True).stdout.split()[2]

    def ctr(self, *args, check=True):
        r = subprocess.run(["ctr", "--address", SOCK, "--namespace", NS, *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise SystemExit(f"bench: ctr {' '.join(args)}: {r.stderr.strip()}")
        return r

    def cleanup(self, cid):
        self.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        for _ in range(50):
            self.ctr("task", "delete", cid, check=False)
            if cid not in self.ctr("task", "ls", "-q", check=False).stdout.split():
                break
            time.sleep(0.1)
        self.ctr("container", "delete", cid, check=False)

    def stop(self):
        if self.proc.poll() is None:
            for line in self.ctr("task", "ls", "-q", check=False).stdout.split():
                self.cleanup(line)
            for cid in self.ctr("container", "ls", "-q", check=False).stdout.split():
                self.ctr("container", "delete", cid, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        for root in ("runc", "husk"):  # the shims' state roots for our namespace, once empty
            try:
                os.rmdir(f"/run/containerd/{root}/{NS}")
            except OSError:
                pass


def build_image(rootfs, path):
    """An OCI image archive with one gzip layer holding `rootfs` (busybox + applet links)."""
    layer_raw = io.BytesIO()
    with tarfile.open(fileobj=layer_raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    raw = layer_raw.getvalue()
    gz = gzip.compress(raw, mtime=0)

    def blob(data):
        return "sha256:" + hashlib.sha256(data).hexdigest(), data

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }).encode()
    cfg_d, cfg = blob(config)
    lay_d, lay = blob(gz)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d, "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": lay_d, "size": len(lay)}],
    }).encode()
    man_d, man = blob(manifest)
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_d,
                       "size": len(man), "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": IMAGE,
                                       "org.opencontainers.image.ref.name": "latest"}}],
    }).encode()
    with tarfile.open(path, "w") as t:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for d, data in ((cfg_d, cfg), (lay_d, lay), (man_d, man)):
            add("blobs/sha256/" + d.split(":")[1], data)

