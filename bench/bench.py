#!/usr/bin/env python3
"""husk vs runc vs crun: start-up latency, throughput and footprint on this machine.

    bench/bench.py [--rounds N] [--exec-rounds N] [--csd-rounds N] [--parallel N] [--batches N]
                   [--quick] [--only SECTION,...]

Writes bench/results.md (the report), bench/lifecycle.svg (distributions) and the raw
samples to bench/out/results.json. Run as root from the repository (`make bench`).

Method (details in the report): every runtime command is started with posix_spawn and
reaped by this script, so the timings of all runtimes come from the same code path (peak
RSS: GNU time around `create`). Repetitions are interleaved (husk, runc, crun, husk, runc,
…) so drifting load from other processes hits every runtime alike; each round in a new
seeded random order, and each timed command after --settle-ms of quiet, so no runtime
inherits what the previous command left running in the kernel.

crun 1.8 refuses hybrid cgroup hosts; its commands run in a worker process (this script in
--worker mode) that lives in a private mount namespace (`unshare -m`) where
/sys/fs/cgroup/unified is unmounted. The host's mounts are never touched.
"""

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)

import report  # noqa: E402  (bench/report.py)
import shimbench  # noqa: E402  (bench/shimbench.py)

CG_PARENT = "husk-bench"  # every container cgroup is /husk-bench/<id>
STATE_PARENT = "/run/husk-bench"
SECCOMP_FIXTURE = os.path.join(REPO, "runtime/tests/fixtures/seccomp/docker-default.json")
DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


# ─── process spawning: the one code path every measurement goes through ────────────────────

def spawn(argv, stdout=None, stderr=None):
    """posix_spawn argv with stdin/stdout at /dev/null (or stdout to a file); return the pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout or "/dev/null", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr or "/dev/null", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)


def read_tail(path, limit=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


def become_subreaper():
    """Orphaned container inits (their runtime exited) become our children, so we reap them
    instead of leaving zombies to this VM's pid 1, which reaps slowly; see reap()."""
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("bench: prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap():
    """Reap every exited child without blocking (adopted container inits)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_timed(argv, capture=False):
    """Run argv to completion. Returns {ns, rc, err, out}."""
    reap()
    err_path = os.path.join(OUT, f"stderr.{os.getpid()}")
    out_path = os.path.join(OUT, f"stdout.{os.getpid()}") if capture else None
    t0 = time.perf_counter_ns()
    pid = spawn(argv, out_path, err_path)
    _, status = os.waitpid(pid, 0)
    ns = time.perf_counter_ns() - t0
    rc = os.waitstatus_to_exitcode(status)
    res = {"ns": ns, "rc": rc}
    if rc != 0:
        res["err"] = read_tail(err_path)
    if capture:
        res["out"] = read_tail(out_path, 100000)
    return res


def proc_memory_kb(pid):
    """VmRSS and Pss (kB) of a live process."""
    rss = pss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def run_sampled(argv, after_s):
    """Start argv, sample its memory after `after_s` seconds, wait for it. {rc, rss_kb, pss_kb}."""
    reap()
    pid = spawn(argv, None, os.path.join(OUT, f"stderr.{os.getpid()}"))
    time.sleep(after_s)
    try:
        rss, pss = proc_memory_kb(pid)
    except OSError:
        rss = pss = None
    _, status = os.waitpid(pid, 0)
    return {"rc": os.waitstatus_to_exitcode(status), "rss_kb": rss, "pss_kb": pss}


def run_parallel(argvs):
    """Start every argv at once, wait for all. Returns {ns (wall), rcs, errs}."""
    pids = {}
    t0 = time.perf_counter_ns()
    for i, argv in enumerate(argvs):
        pids[spawn(argv, None, os.path.join(OUT, f"stderr.{os.getpid()}.{i}"))] = i
    rcs = [None] * len(argvs)
    while pids:
        pid, status = os.wait()
        if pid in pids:
            rcs[pids.pop(pid)] = os.waitstatus_to_exitcode(status)
    ns = time.perf_counter_ns() - t0
    errs = {i: read_tail(os.path.join(OUT, f"stderr.{os.getpid()}.{i}"))
            for i, rc in enumerate(rcs) if rc != 0}
    for i in range(len(argvs)):
        try:
            os.unlink(os.path.join(OUT, f"stderr.{os.getpid()}.{i}"))
        except OSError:
            pass
    return {"ns": ns, "rcs": rcs, "errs": errs}


class Local:
    """Runs commands in this process's namespaces."""
    where = "host mount namespace"

    def timed(self, argv, capture=False):
        return run_timed(argv, capture)

    def parallel(self, argvs):
        return run_parallel(argvs)

    def sampled(self, argv, after_s):
        return run_sampled(argv, after_s)

    def close(self):
        pass


class Worker:
    """This script in --worker mode inside `unshare -m` with /sys/fs/cgroup/unified unmounted."""
    where = "private mount namespace without /sys/fs/cgroup/unified"

    def __init__(self):
        host_ns = os.readlink("/proc/self/ns/mnt")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable,
             os.path.abspath(__file__), "--worker", host_ns],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self.proc.stdout.readline())
        if not hello.get("ready"):
            raise SystemExit(f"bench: crun worker failed: {hello}")

    def _call(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: crun worker died")
        return json.loads(line)

    def timed(self, argv, capture=False):
        return self._call({"op": "timed", "argv": argv, "capture": capture})

    def parallel(self, argvs):
        return self._call({"op": "parallel", "argvs": argvs})

    def sampled(self, argv, after_s):
        return self._call({"op": "sampled", "argv": argv, "after_s": after_s})

    def close(self):
        if self.proc.poll() is None:
            self._call({"op": "quit"})
            self.proc.wait()


def worker_main(host_ns):
    """--worker: unmount the cgroup2 'unified' mount in our private mount namespace only."""
    if os.readlink("/proc/self/ns/mnt") == host_ns:
        print(json.dumps({"ready": False, "error": "not in a private mount namespace"}), flush=True)
        return 1
    if os.path.ismount("/sys/fs/cgroup/unified"):
        r = subprocess.run(["umount", "/sys/fs/cgroup/unified"], capture_output=True, text=True)
        if r.returncode != 0:
            print(json.dumps({"ready": False, "error": r.stderr}), flush=True)
            return 1
    become_subreaper()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            print("{}", flush=True)
            return 0
        if req["op"] == "timed":
            res = run_timed(req["argv"], req.get("capture", False))
        elif req["op"] == "sampled":
            res = run_sampled(req["argv"], req["after_s"])
        else:
            res = run_parallel(req["argvs"])
        print(json.dumps(res), flush=True)
    return 0


# ─── runtimes and bundles ───────────────────────────────────────────────────────────────────

class Runtime:
    def __init__(self, name, binary, executor, argv0=None):
        self.name = name
        self.binary = binary
        self.ex = executor
        self.argv0 = argv0 or binary
        self.root = os.path.join(STATE_PARENT, name)

    def cmd(self, *args):
        return [self.argv0, "--root", self.root, *args]

    def timed(self, *args, capture=False):
        return self.ex.timed(self.cmd(*args), capture)

    def must(self, *args, capture=False):
        r = self.timed(*args, capture=capture)
        if r["rc"] != 0:
            raise SystemExit(f"bench: {self.name} {' '.join(args)}: exit {r['rc']}: {r.get('err', '')}")
        return r

    def status(self, cid):
        r = self.timed("state", cid, capture=True)
        if r["rc"] != 0:
            return None
        return json.loads(r["out"])["status"]

    def wait_status(self, cid, want, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.status(cid) == want:
                return
            time.sleep(0.002)
        raise SystemExit(f"bench: {self.name}: container {cid} never reached {want}")

    def force_delete(self, cid):
        self.timed("delete", "--force", cid)


class Bundles:
    """One busybox rootfs (read-only in every container), one config.json per container."""

    def __init__(self):
        self.dir = os.path.join(OUT, "bundles")
        self.rootfs = os.path.join(OUT, "rootfs")
        shutil.rmtree(self.dir, ignore_errors=True)
        if not os.path.exists(os.path.join(self.rootfs, "bin/busybox")):
            shutil.rmtree(self.rootfs + ".tmp", ignore_errors=True)
            subprocess.run([os.path.join(REPO, "hack/mkbundle.sh"), self.rootfs + ".tmp", "bench"],
                           check=True, stdout=subprocess.DEVNULL)
            os.rename(os.path.join(self.rootfs + ".tmp", "rootfs"), self.rootfs)
            base = os.path.join(self.rootfs + ".tmp", "config.json")
            os.rename(base, os.path.join(OUT, "base-config.json"))
            shutil.rmtree(self.rootfs + ".tmp")
        with open(os.path.join(OUT, "base-config.json")) as f:
            self.base = json.load(f)
        self.seccomp = docker_profile_to_oci(SECCOMP_FIXTURE, DOCKER_DEFAULT_CAPS)

    def make(self, cid, args=("/bin/true",), seccomp=False):
        d = os.path.join(self.dir, cid)
        os.makedirs(d, exist_ok=True)
        c = json.loads(json.dumps(self.base))
        c["process"]["args"] = list(args)
        c["root"]["path"] = self.rootfs
        c["linux"]["cgroupsPath"] = f"/{CG_PARENT}/{cid}"
        if seccomp:
            c["linux"]["seccomp"] = self.seccomp
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f)
        return d


def docker_profile_to_oci(path, caps):
    """moby's setupSeccomp (profiles/seccomp/seccomp_linux.go): Docker's profile format to the
    OCI linux.seccomp object, filtered for x86_64, this kernel and the given capabilities.
    Same logic as runtime/tests/fixtures/seccomp/docker_profile.rs."""
    with open(path) as f:
        docker = json.load(f)
    arch, scmp_arch = "amd64", "SCMP_ARCH_X86_64"
    kernel = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])

    def kver(s):
        return tuple(int(x) for x in s.split(".")[:2])

    archs = []
    for e in docker.get("archMap") or []:
        if e["architecture"] == scmp_arch:
            archs = [e["architecture"], *(e.get("subArchitectures") or [])]
            break
    syscalls = []
    for call in docker["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        excluded = (arch in (exc.get("arches") or [])
                    or any(c in caps for c in exc.get("caps") or [])
                    or ("minKernel" in exc and kernel >= kver(exc["minKernel"])))
        included = ((not inc.get("arches") or arch in inc["arches"])
                    and all(c in caps for c in inc.get("caps") or [])
                    and ("minKernel" not in inc or kernel >= kver(inc["minKernel"])))
        if excluded or not included:
            continue
        out = {"names": [call["name"]] if call.get("name") else call["names"], "action": call["action"]}
        if call.get("errnoRet") is not None:
            out["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            out["args"] = call["args"]
        syscalls.append(out)
    oci = {"defaultAction": docker["defaultAction"], "architectures": archs, "syscalls": syscalls}
    if "defaultErrnoRet" in docker:
        oci["defaultErrnoRet"] = docker["defaultErrnoRet"]
    return oci


# ─── hygiene: leaks and cleanup ─────────────────────────────────────────────────────────────

def cgroup_leftovers():
    """Container cgroups still under /husk-bench in any hierarchy."""
    left = []
    for ctrl in sorted(os.listdir("/sys/fs/cgroup")):
        parent = os.path.join("/sys/fs/cgroup", ctrl, CG_PARENT)
        if os.path.isdir(parent):
            for dirpath, dirnames, _ in os.walk(parent):
                left += [os.path.join(dirpath, d) for d in dirnames]
    return left


def bench_processes():
    """Pids of processes in a /husk-bench cgroup or whose argv names a bench state root."""
    pids = []
    me = os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open(f"/proc/{p}/cgroup") as f:
                cg = f.read()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        in_cg = any(line.split(":", 2)[2].startswith(f"/{CG_PARENT}/") for line in cg.splitlines() if line.count(":") >= 2)
        if in_cg or (STATE_PARENT in cmd and "--worker" not in cmd):
            pids.append((int(p), cmd.strip()))
    return pids


def state_leftovers(runtimes):
    left = []
    for rt in runtimes:
        if os.path.isdir(rt.root):
            left += [os.path.join(rt.root, e) for e in os.listdir(rt.root)]
    return left


def leak_report(runtimes):
    reap()
    return {"state": state_leftovers(runtimes), "cgroups": cgroup_leftovers(),
            "processes": [f"{p} {c}" for p, c in bench_processes()]}


def cleanup(runtimes):
    """Force-delete what is left in our state roots, then remove our (empty) cgroup parents."""
    for rt in runtimes:
        if os.path.isdir(rt.root):
            for cid in os.listdir(rt.root):
                try:
                    rt.force_delete(cid)
                except SystemExit:
                    pass
    for ctrl in os.listdir("/sys/fs/cgroup"):
        parent = os.path.join("/sys/fs/cgroup", ctrl, CG_PARENT)
        if os.path.isdir(parent):
            for dirpath, dirnames, _ in os.walk(parent, topdown=False):
                for d in dirnames:
                    try:
                        os.rmdir(os.path.join(dirpath, d))
                    except OSError:
                        pass
            try:
                os.rmdir(parent)
            except OSError:
                pass


# ─── measurements ───────────────────────────────────────────────────────────────────────────

# Every timed command starts after SETTLE seconds of quiet, and every round runs the series
# in a new (seeded) random order, so that what a command leaves running in the kernel (RCU
# callbacks, deferred teardown, cgroup v1's migration lock still in its slow mode) lands in
# nobody's time, and no runtime always follows the same one. Set by main().
SETTLE = 0.03
RNG = random.Random(1)


def settle():
    if SETTLE:
        time.sleep(SETTLE)


class _FixedOrder:
    def shuffle(self, _):
        pass


@contextlib.contextmanager
def back_to_back():
    """The other method, reported beside it: a fixed order and no quiet time, so each
    command runs in whatever the previous one left behind."""
    global SETTLE, RNG
    saved = SETTLE, RNG
    SETTLE, RNG = 0, _FixedOrder()
    try:
        yield
    finally:
        SETTLE, RNG = saved


def interleave(rounds, warmup, series, step, groups=None):
    """rounds × (for each series: step(series)); keeps the non-warmup samples. Each round
    shuffles the order; series with the same `groups[name]` stay together, in their order."""
    samples = {name: [] for name, _ in series}
    blocks = {}
    for name, s in series:
        blocks.setdefault((groups or {}).get(name, name), []).append((name, s))
    blocks = list(blocks.values())
    for i in range(warmup + rounds):
        RNG.shuffle(blocks)
        for block in blocks:
            for name, s in block:
                settle()
                v = step(s)
                if i >= warmup:
                    samples[name].append(v)
    return samples


def lifecycle(rts, floor_argv, bundles, rounds, seccomp=False):
    """`run` (foreground run deletes the container on exit, in all three runtimes). With
    `seccomp`, each runtime runs twice per round, without and with Docker's profile, so the
    cost of the profile is a paired difference taken under the same load."""
    series = []
    groups = {}
    for rt in rts:
        series.append((rt.name, (rt, f"{rt.name}-life", bundles.make(f"{rt.name}-life"))))
        if seccomp:
            cid = f"{rt.name}-sc"
            series.append((f"{rt.name}+seccomp", (rt, cid, bundles.make(cid, seccomp=True))))
            groups[f"{rt.name}+seccomp"] = rt.name
    if floor_argv:
        series.append(("floor", None))

    def step(s):
        if s is None:
            r = Local().timed(floor_argv)
            if r["rc"] != 0:
                raise SystemExit(f"bench: floor {floor_argv}: {r.get('err')}")
            return r["ns"]
        rt, cid, bundle = s
        r = rt.must("run", "--bundle", bundle, cid)
        if os.path.exists(os.path.join(rt.root, cid)):
            raise SystemExit(f"bench: {rt.name} run left state behind for {cid}")
        return r["ns"]

    return interleave(rounds, 2, series, step, groups)


def create_start_delete(rts, bundles, rounds):
    dirs = {rt.name: bundles.make(f"{rt.name}-csd") for rt in rts}
    out = {rt.name: {"create": [], "start": [], "delete": []} for rt in rts}
    order = list(rts)
    for i in range(rounds + 2):
        RNG.shuffle(order)
        for rt in order:
            cid = f"{rt.name}-csd"
            settle()
            c = rt.must("create", "--bundle", dirs[rt.name], cid)
            settle()
            s = rt.must("start", cid)
            rt.wait_status(cid, "stopped")
            settle()
            d = rt.must("delete", cid)
            if i >= 2:
                o = out[rt.name]
                o["create"].append(c["ns"])
                o["start"].append(s["ns"])
                o["delete"].append(d["ns"])
    return out


def exec_bench(husk, husk_sealed, runc, crun, bundles, rounds):
    """exec into one running container per runtime; husk-presealed execs into husk's."""
    rts = [husk, runc, crun]
    dirs = {rt.name: bundles.make(f"{rt.name}-exec", args=("/bin/sleep", "100000")) for rt in rts}
    for rt in rts:
        rt.must("run", "--detach", "--bundle", dirs[rt.name], f"{rt.name}-exec")
    target = {"husk": "husk-exec", "husk-presealed": "husk-exec", "runc": "runc-exec", "crun": "crun-exec"}
    try:
        series = [(rt.name, rt) for rt in (husk, husk_sealed, runc, crun)]
        return interleave(rounds, 2, series,
                          lambda rt: rt.must("exec", target[rt.name], "/bin/true")["ns"])
    finally:
        for rt in rts:
            rt.force_delete(f"{rt.name}-exec")


def parallel_bench(rts, bundles, n, batches):
    for rt in rts:
        for i in range(n):
            bundles.make(f"{rt.name}-p{i}")
    out = {rt.name: {"wall_ns": [], "failures": 0, "errors": [], "leaks": []} for rt in rts}
    for _ in range(batches):
        for rt in rts:
            argvs = [rt.cmd("run", "--bundle", os.path.join(bundles.dir, f"{rt.name}-p{i}"), f"{rt.name}-p{i}")
                     for i in range(n)]
            r = rt.ex.parallel(argvs)
            o = out[rt.name]
            o["wall_ns"].append(r["ns"])
            o["failures"] += sum(1 for rc in r["rcs"] if rc != 0)
            o["errors"] += list(r["errs"].values())[:3]
            time.sleep(0.2)  # let the last inits be reaped by init(1) before looking for leaks
            leaks = leak_report([rt])
            leaks = {k: v for k, v in leaks.items() if v}
            if leaks:
                o["leaks"].append(leaks)
                cleanup([rt])
    return out


def rss_bench(rts, bundles, rounds, seccomp):
    """Peak RSS of `create` by GNU time (-f %M: ru_maxrss of the runtime process, or of its
    largest reaped descendant). Python's posix_spawn would report the Python parent's own
    high-water mark (vfork + exec keeps it), hence the small C wrapper."""
    tag = "rss-sc" if seccomp else "rss"
    dirs = {rt.name: bundles.make(f"{rt.name}-{tag}", seccomp=seccomp) for rt in rts}
    out = {rt.name: [] for rt in rts}
    kb_file = os.path.join(OUT, "maxrss")
    for i in range(rounds):
        for rt in rts:
            cid = f"{rt.name}-{tag}"
            argv = ["/usr/bin/time", "-f", "%M", "-o", kb_file, *rt.cmd("create", "--bundle", dirs[rt.name], cid)]
            r = rt.ex.timed(argv)
            if r["rc"] != 0:
                raise SystemExit(f"bench: {rt.name} create under /usr/bin/time: {r.get('err')}")
            with open(kb_file) as f:
                out[rt.name].append(int(f.read().split()[-1]))
            rt.must("delete", "--force", cid)
    return out


def foreground_memory(rts, bundles, rounds):
    """RSS and PSS of the runtime process while `run` waits in the foreground for a container
    (what stays resident for the container's lifetime when a runtime is used that way)."""
    dirs = {rt.name: bundles.make(f"{rt.name}-fg", args=("/bin/sleep", "1.5")) for rt in rts}
    out = {rt.name: {"rss_kb": [], "pss_kb": []} for rt in rts}
    for _ in range(rounds):
        for rt in rts:
            r = rt.ex.sampled(rt.cmd("run", "--bundle", dirs[rt.name], f"{rt.name}-fg"), 1.0)
            if r["rc"] != 0 or r["rss_kb"] is None:
                raise SystemExit(f"bench: {rt.name} foreground run for the memory sample failed: {r}")
            out[rt.name]["rss_kb"].append(r["rss_kb"])
            out[rt.name]["pss_kb"].append(r["pss_kb"])
    return out


def reexec_bench(husk, rounds):
    """The CVE-2019-5736 re-exec in isolation (bench/reexec.c): exec of `husk --version`
    plainly, from a sealed memfd copy (husk's fallback), from a detached read-only bind mount
    and from a detached read-only overlayfs (husk today);
    plus what an attacker can do through /proc/PID/exe in each mode (on a copy of sleep)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return {"measured": False, "reason": "no C compiler"}
    exe = os.path.join(OUT, "reexec")
    r = subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "reexec.c")], capture_output=True, text=True)
    if r.returncode != 0:
        return {"measured": False, "reason": f"cc failed: {r.stderr.strip()[-300:]}"}
    victim = os.path.join(OUT, "victim-sleep")
    shutil.copy2("/bin/sleep", victim)
    modes = ("plain", "memfd", "bind", "overlay")
    out = {"measured": True, "ms": {m: [] for m in modes}, "probe": {}}
    for _ in range(rounds):
        for m in modes:
            p = subprocess.run([exe, "time", m, husk, "20"], capture_output=True, text=True)
            if p.returncode != 0:
                return {"measured": False, "reason": f"{m}: {p.stderr.strip()[-300:]}"}
            out["ms"][m].append(float(p.stdout))
    for m in modes:
        p = subprocess.run([exe, "probe", m, victim], capture_output=True, text=True)
        out["probe"][m] = p.stdout.strip().splitlines()
    return out


# ─── machine description ───────────────────────────────────────────────────────────────────

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
    mem_kb = int(sh("awk '/MemTotal/ {print $2}' /proc/meminfo") or 0)
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "cgroups": "v1 hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)"
        if os.path.ismount("/sys/fs/cgroup/unified") else sh("stat -f -c %T /sys/fs/cgroup"),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
    }


def versions(husk):
    return {
        "husk": sh(f"{husk} --version | head -1") + " (" + sh(f"git -C {REPO} rev-parse --short HEAD") + ")",
        "runc": sh("runc --version | head -1"),
        "crun": sh("crun --version | head -1"),
        "unshare": sh("unshare --version"),
        "libseccomp": sh("dpkg-query -W -f='${Version}' libseccomp2"),
        "python": platform.python_version(),
    }


def binary_info(path):
    real = os.path.realpath(path)
    libs = [line.split()[0] for line in sh(f"ldd {real} 2>/dev/null").splitlines() if "=>" in line]
    return {"path": path, "bytes": os.path.getsize(real), "libs": libs}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ─── main ───────────────────────────────────────────────────────────────────────────────────

def check_busybox():
    r = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True)
    if r.returncode != 0 or b"bin/sh" not in r.stdout:
        raise SystemExit("bench: /bin/busybox is not Debian's busybox-static (something overwrote it?): "
                         "reinstall it with `apt-get install --reinstall busybox-static`")


def presealed_husk(husk):
    """A sealed memfd copy of husk, made once: husk started from it finds itself already
    sealed and skips its per-call re-exec, which isolates the cost of that re-exec."""
    import fcntl
    fd = os.memfd_create("husk-bench-presealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with open(husk, "rb") as src:
        data = src.read()
    os.write(fd, data)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd, f"/proc/{os.getpid()}/fd/{fd}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", metavar="HOST_MNT_NS", help=argparse.SUPPRESS)
    ap.add_argument("--husk", default=os.path.join(REPO, "target/release/husk"))
    ap.add_argument("--rounds", type=int, default=100, help="interleaved rounds for lifecycle, exec (100)")
    ap.add_argument("--exec-rounds", type=int, default=100)
    ap.add_argument("--csd-rounds", type=int, default=50, help="create/start/delete and seccomp rounds (50)")
    ap.add_argument("--parallel", type=int, default=100, help="containers per parallel batch (100)")
    ap.add_argument("--batches", type=int, default=5, help="parallel batches per runtime (5)")
    ap.add_argument("--settle-ms", type=float, default=30,
                    help="quiet time before every timed command (30; 0 = back to back)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the per-round order (1)")
    ap.add_argument("--quick", action="store_true", help="few rounds: check the script works")
    ap.add_argument("--report", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--only", default="", help="comma list of sections (debugging)")
    ap.add_argument("--render", metavar="JSON", help="only rewrite the report from a results.json")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if a.render:
        with open(a.render) as f:
            res = json.load(f)
        report.write(res, a.report, os.path.join(os.path.dirname(os.path.abspath(a.report)), "lifecycle.svg"))
        return 0
    if a.worker:
        return worker_main(a.worker)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root")
    global SETTLE, RNG
    SETTLE, RNG = a.settle_ms / 1000, random.Random(a.seed)
    if a.quick:
        a.rounds, a.exec_rounds, a.csd_rounds, a.parallel, a.batches = 4, 4, 4, 10, 1
    check_busybox()
    for b in (a.husk, "/usr/sbin/runc", "/usr/bin/crun", "/usr/bin/unshare"):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"bench: {b} missing (make build / hack/install-deps.sh)")
    only = set(filter(None, a.only.split(",")))

    def want(s):
        return not only or s in only

    started = time.time()
    become_subreaper()
    local = Local()
    worker = Worker()
    _, sealed_path = presealed_husk(a.husk)
    husk = Runtime("husk", a.husk, local)
    husk_sealed = Runtime("husk-presealed", a.husk, local, argv0=sealed_path)
    husk_sealed.root = husk.root  # same state root: it is the same program
    runc = Runtime("runc", "/usr/sbin/runc", local)
    crun = Runtime("crun", "/usr/bin/crun", worker)
    rts = [husk, runc, crun]
    every = [husk, runc, crun]
    for rt in every:
        os.makedirs(rt.root, exist_ok=True)
    cleanup(every)
    bundles = Bundles()
    floor = ["/usr/bin/unshare", "--pid", "--net", "--ipc", "--uts", "--mount", "--fork",
             "chroot", bundles.rootfs, "/bin/true"]

    res = {"machine": machine(), "versions": versions(a.husk), "load": {"start": loadavg()},
           "uptime_start": sh("uptime"), "args": vars(a), "crun_where": worker.where,
           "binaries": {rt.name: binary_info(rt.binary) for rt in rts},
           "seccomp_rules": len(bundles.seccomp["syscalls"]),
           "seccomp_names": sum(len(s["names"]) for s in bundles.seccomp["syscalls"])}
    try:
        if want("lifecycle"):
            print(f"bench: lifecycle, {a.rounds} interleaved rounds", flush=True)
            res["lifecycle"] = lifecycle([husk, husk_sealed, runc, crun], floor, bundles, a.rounds)
            print(f"bench: lifecycle back to back, {a.rounds} rounds", flush=True)
            with back_to_back():
                res["lifecycle_b2b"] = lifecycle([husk, runc, crun], None, bundles, a.rounds)
            res["load"]["lifecycle"] = loadavg()
        if want("csd"):
            print(f"bench: create/start/delete, {a.csd_rounds} rounds", flush=True)
            res["csd"] = create_start_delete(rts, bundles, a.csd_rounds)
            res["load"]["csd"] = loadavg()
        if want("exec"):
            print(f"bench: exec, {a.exec_rounds} rounds", flush=True)
            res["exec"] = exec_bench(husk, husk_sealed, runc, crun, bundles, a.exec_rounds)
            print(f"bench: exec back to back, {a.exec_rounds} rounds", flush=True)
            with back_to_back():
                res["exec_b2b"] = exec_bench(husk, husk_sealed, runc, crun, bundles, a.exec_rounds)
            res["load"]["exec"] = loadavg()
        if want("seccomp"):
            print(f"bench: lifecycle with Docker's seccomp profile, {a.csd_rounds} rounds", flush=True)
            res["seccomp"] = lifecycle(rts, None, bundles, a.csd_rounds, seccomp=True)
            res["load"]["seccomp"] = loadavg()
        if want("rss"):
            print("bench: peak RSS of create", flush=True)
            res["rss"] = rss_bench([husk, husk_sealed, runc, crun], bundles, 9, seccomp=False)
            res["rss_seccomp"] = rss_bench(rts, bundles, 9, seccomp=True)
            res["rss_foreground"] = foreground_memory(rts, bundles, 3 if not a.quick else 1)
        if want("reexec"):
            print("bench: re-exec mechanisms", flush=True)
            res["reexec"] = reexec_bench(a.husk, 10 if not a.quick else 2)
        if want("parallel"):
            print(f"bench: {a.parallel} containers in parallel × {a.batches}", flush=True)
            res["parallel"] = parallel_bench(rts, bundles, a.parallel, a.batches)
            res["parallel_n"] = a.parallel
            res["load"]["parallel"] = loadavg()
        if want("shim"):
            print("bench: shims", flush=True)
            res["shim"] = shimbench.run(REPO, OUT, a.husk, CG_PARENT, rounds=2 if a.quick else 10)
    finally:
        worker.close()
        cleanup(every)
        res["leaks_final"] = leak_report(every)
    res["uptime_end"] = sh("uptime")
    res["load"]["end"] = loadavg()
    res["duration_s"] = round(time.time() - started, 1)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    report.write(res, a.report, os.path.join(os.path.dirname(os.path.abspath(a.report)), "lifecycle.svg"))
    print(f"bench: done in {res['duration_s']} s: {a.report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
