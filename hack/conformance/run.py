#!/usr/bin/env python3
"""Run runtime-tools' OCI validation suite against one or more runtimes.

Every test in validation/ (built by hack/conformance/build.sh) runs once per
runtime, each with its own:
  - private state dir (`--root`, via a wrapper script passed as RUNTIME),
  - TMPDIR (where the suite unpacks its bundles),
  - cgroup: /husk-conformance/<run>/<runtime>/<test> in every v1 hierarchy
    (or under the cgroup2 mount on a pure v2 host). The test process sits in
    the leaf `runner`, so relative cgroupsPath values nest under it; the
    suite's "absolute" cgroup (patched, see patches/) is <test>/cgrouptest.
and a timeout. Afterwards the runner deletes leftover containers, kills what
is left in the test's cgroups (only processes the test started live there),
and removes the cgroups and temp dirs.

crun refuses hybrid cgroup hosts, so on such a host its tests run inside a
private mount namespace (unshare -m) where /sys/fs/cgroup/unified is
unmounted; the global mount table is never changed.

Output: a per-test table, one column per runtime; TAP and stderr of every run
under --results. With --expect FILE --check NAME, exits 1 when a test the
file expects to pass (for this host's cgroup mode) does not pass for NAME.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, ".cache", "conformance")
CGROUP_FS = "/sys/fs/cgroup"
PARENT = "husk-conformance"


def cgroup_mounts():
    """(mode, [hierarchy mount points]) from /proc/self/mountinfo.

    mode is "v1" when any v1 hierarchy is mounted (hybrid hosts included),
    else "v2"."""
    v1, v2 = [], []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fstype = post.split()[0]
            mnt = pre.split()[4]
            if fstype == "cgroup":
                v1.append(mnt)
            elif fstype == "cgroup2":
                v2.append(mnt)
    if v1:
        return "v1", v1, v2
    return "v2", v2[:1], v2


def write(path, data):
    with open(path, "w") as f:
        f.write(data)


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


class Cgroups:
    """The test-owned cgroup tree of one test in every hierarchy."""

    def __init__(self, mode, hierarchies, rel):
        self.mode = mode
        self.hierarchies = hierarchies
        self.rel = rel  # e.g. husk-conformance/<run>/husk/create

    def dirs(self, leaf=""):
        return [os.path.join(h, self.rel, leaf) for h in self.hierarchies]

    def create(self):
        for h in self.hierarchies:
            parts = (self.rel + "/runner").split("/")
            cur = h
            for p in parts:
                parent, cur = cur, os.path.join(cur, p)
                os.makedirs(cur, exist_ok=True)
                self._inherit(parent, cur)
                if self.mode == "v2" and p != "runner":
                    self._enable_controllers(parent)
            if self.mode == "v2":
                self._enable_controllers(os.path.join(h, self.rel))

    @staticmethod
    def _inherit(parent, child):
        # v1 cpuset: a new cgroup starts with no cpus/mems; copy the parent's.
        for f in ("cpuset.cpus", "cpuset.mems"):
            p = os.path.join(parent, f)
            if os.path.exists(p) and not read(os.path.join(child, f)).strip():
                write(os.path.join(child, f), read(p).strip())

    @staticmethod
    def _enable_controllers(path):
        ctrls = read(os.path.join(path, "cgroup.controllers")).split()
        enabled = read(os.path.join(path, "cgroup.subtree_control")).split()
        for c in ctrls:
            if c not in enabled:
                try:
                    write(os.path.join(path, "cgroup.subtree_control"), "+" + c)
                except OSError:
                    pass

    def enter_cmd(self, cmd):
        """cmd prefixed by a shell that moves itself into the runner leaf of
        every hierarchy, then execs cmd (no preexec_fn: the runner is threaded)."""
        procs = [os.path.join(d, "cgroup.procs") for d in self.dirs("runner")]
        script = ('while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; '
                  'shift; exec "$@"')
        return ["sh", "-c", script, "sh"] + procs + ["--"] + cmd

    def pids(self):
        found = set()
        for top in self.dirs():
            for dirpath, _, files in os.walk(top):
                if "cgroup.procs" in files:
                    for line in read(os.path.join(dirpath, "cgroup.procs")).split():
                        found.add(int(line))
        return found

    def destroy(self):
        """Kill what is left in the tree (started by this test), then rmdir."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # thaw a frozen leftover so SIGKILL can land
            for top in self.dirs():
                for dirpath, _, files in os.walk(top):
                    if "freezer.state" in files:
                        try:
                            write(os.path.join(dirpath, "freezer.state"), "THAWED")
                        except OSError:
                            pass
                    if "cgroup.freeze" in files:
                        try:
                            write(os.path.join(dirpath, "cgroup.freeze"), "0")
                        except OSError:
                            pass
            time.sleep(0.1)
        left = []
        for top in self.dirs():
            for _ in range(20):
                for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
                if not os.path.exists(top):
                    break
                time.sleep(0.1)
            if os.path.exists(top):
                left.append(top)
        return left


def parse_tap(out):
    """Each TAP stream in out (some tests print two): plan, ok, not ok,
    skipped, whether a YAML diagnostic block appeared."""
    streams = []
    cur = None
    for line in out.splitlines():
        if line.startswith("TAP version") or cur is None:
            cur = dict(plan=None, ok=0, notok=0, skip=0, yaml=False)
            streams.append(cur)
            if line.startswith("TAP version"):
                continue
        if line.startswith("1.."):
            try:
                cur["plan"] = int(line[3:].split()[0])
            except (ValueError, IndexError):
                pass
        elif line.startswith("not ok"):
            cur["notok"] += 1
        elif line.startswith("ok"):
            if "# SKIP" in line or "# skip" in line:
                cur["skip"] += 1
            else:
                cur["ok"] += 1
        elif line.strip() == "---":
            cur["yaml"] = True
    return streams


def classify(rc, timed_out, out):
    """pass: exit 0, every stream has its plan, no `not ok`, and at least one
    point that is not a SKIP (or only empty streams). A stream planned
    `1..0` that carries a YAML block is a failure: the lifecycle tests
    (hooks, prestart, ...) report their error only that way, with exit 0.
    skip: only SKIP points. Anything else is fail (or timeout).
    The *_fail tests (process_capabilities_fail, process_rlimits_fail) print
    nothing and exit 0 when the runtime refuses the bad config as required:
    empty output with exit 0 is a pass."""
    if rc == 0 and not timed_out and not out.strip():
        return "pass", "0/0"
    streams = parse_tap(out)
    ok = sum(s["ok"] for s in streams)
    skip = sum(s["skip"] for s in streams)
    total = sum(s["ok"] + s["notok"] + s["skip"] for s in streams)
    shown = f"{ok}/{total}"
    if timed_out:
        return "timeout", shown
    bad = rc != 0 or not streams
    for s in streams:
        n = s["ok"] + s["notok"] + s["skip"]
        if s["notok"] or s["plan"] is None or s["plan"] != n or (n == 0 and s["yaml"]):
            bad = True
    if bad:
        return "fail", shown
    if skip and not ok:
        return "skip", shown
    return "pass", shown


def jail_prefix(args, cg, rt_name, mode):
    """Command prefix that keeps runc's and crun's cgroups under the test's own.

    runc 1.1 on a hybrid host creates a relative cgroupsPath at the ROOT of
    the cgroup2 hierarchy (its v1 paths nest under its own cgroup), so runc
    runs in a private mount namespace where the test's runner cgroup is
    bind-mounted over the cgroup2 mount point.

    crun refuses hybrid hosts, so /sys/fs/cgroup/unified is unmounted in a
    private mount namespace. crun also resolves a relative cgroupsPath against
    the hierarchy root (not its own cgroup as runc does), so each v1 hierarchy
    is bind-mounted from the test's runner cgroup onto its mount point and a
    new cgroup namespace rooted there keeps /proc/<pid>/cgroup consistent with
    that view: everything crun creates stays under the test-owned parent."""
    if mode != "v1":
        return []
    script = ""
    if rt_name == "runc" and args.hybrid_unified:
        d = cg.dirs("runner")[cg.hierarchies.index(args.hybrid_unified)]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f'mount --bind {d} {args.hybrid_unified} || exit 125; exec "$@"', "sh"]
    if rt_name != "crun":
        return []
    if args.hybrid_unified:
        script += f"umount {args.hybrid_unified} || exit 125; "
    for h, d in zip(cg.hierarchies, cg.dirs("runner")):
        if h != args.hybrid_unified:
            script += f"mount --bind {d} {h} || exit 125; "
    return ["unshare", "-m", "-C", "--propagation", "private", "sh", "-c",
            script + 'exec "$@"', "sh"]


def run_one(args, mode, hierarchies, run_id, rt_name, rt_path, test):
    work = tempfile.mkdtemp(prefix=f"{rt_name}-{test}-", dir=args.tmp)
    state = os.path.join(work, "root")
    tmp = os.path.join(work, "tmp")
    os.makedirs(state)
    os.makedirs(tmp)
    wrapper = os.path.join(work, rt_name)
    write(wrapper, f'#!/bin/sh\nexec {rt_path} --root {state} "$@"\n')
    os.chmod(wrapper, 0o755)

    rel = f"{PARENT}/{run_id}/{rt_name}/{test}"
    cg = Cgroups(mode, hierarchies, rel)
    cg.create()

    env = dict(os.environ)
    env.update(RUNTIME=wrapper, TMPDIR=tmp,
               OCI_CONFORMANCE_ABS_CGROUP=f"/{rel}/cgrouptest")
    cmd = [os.path.join(args.bin, test + ".t")]
    jail = jail_prefix(args, cg, rt_name, mode)
    cmd = jail + cmd
    if rt_name == "crun" and mode == "v1":
        env["OCI_CONFORMANCE_ABS_CGROUP"] = "/cgrouptest"

    start = time.monotonic()
    timed_out = False
    with open(os.path.join(work, "out"), "w+") as out, open(os.path.join(work, "err"), "w+") as err:
        p = subprocess.Popen(cg.enter_cmd(cmd), cwd=args.bin, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err, start_new_session=True)
        try:
            rc = p.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
        secs = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()

    # Leftover containers (a failed or timed-out test does not clean up).
    lst = subprocess.run([wrapper, "list", "-q"], capture_output=True, text=True, timeout=30)
    for cid in lst.stdout.split():
        dcmd = [wrapper, "delete", "-f", cid]
        if jail:
            dcmd = cg.enter_cmd(jail + dcmd)
        subprocess.run(dcmd, capture_output=True, timeout=30)
    left = cg.destroy()
    subprocess.run(["rm", "-rf", "--one-file-system", work])

    status, shown = classify(rc, timed_out, stdout)
    res_dir = os.path.join(args.results, rt_name)
    os.makedirs(res_dir, exist_ok=True)
    write(os.path.join(res_dir, test + ".tap"), stdout)
    write(os.path.join(res_dir, test + ".err"), stderr)
    if left:
        print(f"warning: could not remove cgroups {left}", file=sys.stderr)
    return dict(runtime=rt_name, test=test, status=status, points=shown,
                rc=rc, seconds=round(secs, 1))


def load_expect(path):
    """expected.tsv: test<TAB>v1<TAB>v2<TAB>reason; '#' comments."""
    exp = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 3:
                sys.exit(f"{path}:{n}: want test<TAB>v1<TAB>v2<TAB>reason, got {line!r}")
            exp[cols[0]] = dict(v1=cols[1], v2=cols[2], reason=cols[3] if len(cols) > 3 else "")
    return exp


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", action="append", metavar="NAME=PATH",
                    help="runtime to test (repeatable); default husk=target/release/husk")
    ap.add_argument("--tests", help="comma-separated subset of tests")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("-j", "--jobs", type=int, default=4)
    ap.add_argument("--bin", default=os.path.join(CACHE, "bin"))
    ap.add_argument("--results", default=os.path.join(CACHE, "results"))
    ap.add_argument("--expect", help="expectation file (expected.tsv)")
    ap.add_argument("--check", metavar="NAME", help="runtime checked against --expect")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--from-v2-log", metavar="LOG",
                    help="do not run: report husk's results from a v2 guest console log (v2.sh)")
    args = ap.parse_args()
    if args.from_v2_log:
        return report_v2_log(args)

    if os.geteuid() != 0:
        sys.exit("run.py: must run as root (creates cgroups and containers)")
    rts = []
    for spec in args.runtime or [f"husk={ROOT}/target/release/husk"]:
        name, _, path = spec.partition("=")
        path = shutil.which(path or name)
        if not path:
            sys.exit(f"run.py: runtime {spec!r} not found")
        rts.append((name, os.path.abspath(path)))

    tests = sorted(f[:-2] for f in os.listdir(args.bin) if f.endswith(".t"))
    if not tests:
        sys.exit(f"run.py: no tests in {args.bin}; run hack/conformance/build.sh")
    if args.tests:
        want = args.tests.split(",")
        missing = [t for t in want if t not in tests]
        if missing:
            sys.exit(f"run.py: unknown tests {missing}")
        tests = want

    mode, hierarchies, v2mounts = cgroup_mounts()
    # On a hybrid host the runner also moves tests in the cgroup2 hierarchy
    # (runc creates a relative cgroupsPath there too).
    args.hybrid_unified = v2mounts[0] if mode == "v1" and v2mounts else None
    if args.hybrid_unified:
        hierarchies = hierarchies + [args.hybrid_unified]
    run_id = f"{os.getpid()}-{int(time.time())}"
    os.makedirs(CACHE, exist_ok=True)
    args.tmp = tempfile.mkdtemp(prefix="husk-conformance-")
    shutil.rmtree(args.results, ignore_errors=True)

    print(f"cgroup {mode} host; {len(tests)} tests x {[n for n, _ in rts]}; "
          f"timeout {args.timeout:g}s; {args.jobs} jobs", file=sys.stderr)
    results = {}
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futs = [pool.submit(run_one, args, mode, hierarchies, run_id, n, p, t)
                    for t in tests for n, p in rts]
            for fut in concurrent.futures.as_completed(futs):
                r = fut.result()
                results[(r["runtime"], r["test"])] = r
                print(f"  {r['runtime']:6} {r['test']:34} {r['status']:7} "
                      f"{r['points']:>6} {r['seconds']:5.1f}s", file=sys.stderr)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
        for h in hierarchies:
            for d in (os.path.join(h, PARENT, run_id), os.path.join(h, PARENT)):
                for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass

    return report(args, tests, [n for n, _ in rts], results, mode, time.monotonic() - started)


def report_v2_log(args):
    """Results of the v2 guest's shell runner, from its console log."""
    text = open(args.from_v2_log, errors="replace").read().replace("\r", "")
    results, cur, lines, rc, secs = {}, None, [], 0, 0.0
    for line in text.splitlines():
        if line.startswith("=== CONFORMANCE-BEGIN "):
            f = line.split()
            cur, lines = f[2], []
            rc = int(f[3].split("=")[1])
            secs = float(f[4].split("=")[1]) if len(f) > 4 else 0.0
        elif line.startswith("=== CONFORMANCE-END ") and cur:
            out = "\n".join(lines) + ("\n" if lines else "")
            status, shown = classify(rc, rc in (124, 137), out)
            results[("husk", cur)] = dict(runtime="husk", test=cur, status=status,
                                          points=shown, rc=rc, seconds=secs)
            res_dir = os.path.join(args.results + "-v2", "husk")
            os.makedirs(res_dir, exist_ok=True)
            write(os.path.join(res_dir, cur + ".tap"), out)
            cur = None
        elif cur:
            lines.append(line)
    if "=== CONFORMANCE-DONE" not in text:
        print(f"run.py: the v2 guest did not finish (see {args.from_v2_log})", file=sys.stderr)
    tests = sorted(t for _, t in results)
    if not tests:
        sys.exit(f"run.py: no results in {args.from_v2_log}")
    args.results += "-v2"
    return report(args, tests, ["husk"], results, "v2", 0.0)


def report(args, tests, names, results, mode, elapsed):
    exp = load_expect(args.expect) if args.expect else {}
    width = max(len(t) for t in tests)
    head = f"{'test':{width}}  " + "  ".join(f"{n:13}" for n in names)
    if exp:
        head += f"  expected({mode})"
    print(head)
    print("-" * len(head))
    for t in tests:
        row = f"{t:{width}}  "
        row += "  ".join(f"{results[(n, t)]['status'] + ' ' + results[(n, t)]['points']:13}"
                         for n in names)
        if exp:
            row += f"  {exp.get(t, {}).get(mode, '?')}"
        print(row)
    print("-" * len(head))
    counts = f"{'passed':{width}}  " + "  ".join(
        f"{sum(results[(n, t)]['status'] == 'pass' for t in tests):<3} of {len(tests):<6}"
        for n in names)
    print(counts)
    print(f"wall time {elapsed:.0f}s; TAP output in {args.results}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(sorted(results.values(), key=lambda r: (r["test"], r["runtime"])), f, indent=1)

    if not args.check:
        return 0
    bad = []
    for t in tests:
        if t not in exp:
            bad.append(f"{t}: not listed in {args.expect}")
            continue
        want = exp[t][mode]
        got = results[(args.check, t)]["status"]
        if want in ("flaky", "-"):
            continue
        if want == "pass" and got != "pass":
            bad.append(f"{t}: expected pass, got {got} (see {args.results}/{args.check}/{t}.tap)")
        elif want != "pass" and got == "pass":
            print(f"note: {t} now passes for {args.check} on {mode} "
                  f"(expected {want}: {exp[t]['reason']}); update {args.expect}")
    if not args.tests:
        for t in exp:
            if t not in tests:
                bad.append(f"{t}: listed in {args.expect} but not built")
    for b in bad:
        print("REGRESSION " + b)
    print(f"{args.check}: {len(bad)} unexpected results" if bad else
          f"{args.check}: all results as expected ({mode})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
