#!/usr/bin/env python3
"""Writes the shim's symbol ordering file: the functions that run until it is idle.

Usage: hack/shim-symbol-order.py SHIM HUSK OUT   (`make shim-symbol-order` runs it)

SHIM must be the static shim linked without `strip` (its symbol table names the
functions). It runs under valgrind's callgrind in bench/shimbench.py's private
containerd: `ctr run -d ... sleep`, then a callgrind dump of the serving process once
the container is idle. OUT lists, in this order, every function the serving process
ran until then and those only the `start` process ran; rust-lld
(--symbol-ordering-file) lays them out first, so the pages an idle shim touches are
contiguous instead of spread over its whole text (see shim/README.md, "Memory").

valgrind's CPU has no AVX-512, so glibc picks other string-function variants under
it than on such hosts: every variant of a string function that ran is listed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import shimbench  # noqa: E402

VARIANT = re.compile(r"_(sse2|ssse3|sse4_1|sse4_2|sse42|avx2|avx|evex|avx512|erms|rtm|unaligned)")


def functions(callgrind_out):
    """Mangled names of the functions a callgrind profile saw run, first seen first."""
    seen, out = set(), []
    with open(callgrind_out) as f:
        for line in f:
            m = re.match(r"^c?fn=\(\d+\) (\S.*)$", line.strip())
            # callgrind marks recursion levels as name'2, name'3, ...
            name = re.sub(r"'\d+$", "", m.group(1)) if m else ""
            if name and not name.startswith("0x") and name not in seen:
                seen.add(name)
                out.append(name)
    return out


def command(callgrind_out):
    """The traced command line (the profile's `cmd:` header)."""
    with open(callgrind_out) as f:
        for line in f:
            if line.startswith("cmd:"):
                return line[4:].strip()
            if line.startswith("fn="):
                break
    return ""


def text_symbols(binary):
    nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
    return [p[2] for p in (line.split() for line in nm.stdout.splitlines())
            if len(p) == 3 and p[1] in "tTwWi"]


def with_variants(names, symbols):
    """`names` plus, for each glibc string-function variant among them, all its variants."""
    known = set(symbols)
    out, seen = [], set()
    for n in names:
        group = [n]
        m = VARIANT.search(n)
        if n.startswith("__") and m:
            prefix = n[:m.start()] + "_"
            group += [s for s in symbols if s.startswith(prefix) and VARIANT.search(s)]
        for g in group:
            if g in known and g not in seen:
                seen.add(g)
                out.append(g)
    return out


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    shim, husk, out_path = (os.path.abspath(a) for a in sys.argv[1:])
    if not text_symbols(shim):
        raise SystemExit(f"{shim} has no symbols: link it with -C strip=none")
    if not shutil.which("valgrind"):
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=True,
                       stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="husk-symbol-order.")
    try:
        traces = os.path.join(work, "cg")
        os.makedirs(traces)
        bindir = os.path.join(work, "bin")
        os.makedirs(bindir)
        # containerd finds the shim by name: a wrapper that runs it under callgrind,
        # following the serving process the shim spawns (a copy without "husk" in its
        # path) but not husk (its re-exec from a memfd included) or the container.
        traced = os.path.join(work, "traced-shim")
        shutil.copy2(shim, traced)
        wrapper = os.path.join(bindir, "containerd-shim-husk-v2")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind --demangle=no --trace-children=yes "
                    "--trace-children-skip='*/husk,/proc/*,/bin/*,/usr/*' "
                    f"--callgrind-out-file={traces}/cg.%p {traced} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        shutil.copy2(husk, os.path.join(bindir, "husk"))
        bundle = os.path.join(work, "bundle")
        subprocess.run([os.path.join(HERE, "mkbundle.sh"), bundle, "order"], check=True,
                       stdout=subprocess.DEVNULL)
        image = os.path.join(work, "image.tar")
        shimbench.build_image(os.path.join(bundle, "rootfs"), image)
        d = shimbench.Containerd(bindir, work)
        cid = f"symbol-order-{os.getpid()}"
        try:
            d.ctr("images", "import", image)
            d.ctr("run", "-d", "--runtime", "io.containerd.husk.v2", shimbench.IMAGE, cid,
                  "/bin/sleep", "100000")
            time.sleep(3)
            # Every callgrind process dumps what ran so far: the server's idle profile.
            subprocess.run(["callgrind_control", "-d"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            time.sleep(1)
        finally:
            d.cleanup(cid)
            d.stop()
        idle = glob.glob(os.path.join(traces, "cg.*.1"))
        if len(idle) != 1:
            raise SystemExit(f"expected one idle dump of the serving process, found {idle}")
        server = idle[0][:-2]
        starts = [p for p in glob.glob(os.path.join(traces, "cg.*"))
                  if not p.startswith(server) and command(p).split()[-1:] == ["start"]]
        symbols = text_symbols(shim)
        served = with_variants(functions(idle[0]), symbols)
        started = []
        for p in starts:
            started += [n for n in with_variants(functions(p), symbols) if n not in set(served) | set(started)]
        with open(out_path, "w") as f:
            f.write("\n".join(served + started) + "\n")
        print(f"{out_path}: {len(served)} functions of the serving process, "
              f"{len(started)} more of `start`")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
