#!/usr/bin/env python3
"""Create busybox's applet symlinks under a root directory, on the host.

    hack/busybox-links.py ROOT [BUSYBOX]

Does what `busybox --install -s` does inside a chroot, without running
anything in one: for each path from `BUSYBOX --list-full` (bin/sh,
usr/sbin/chroot, ...) make ROOT/<path> a symlink to /bin/busybox. The busybox
binary itself must be copied to ROOT/bin/busybox by the caller.
"""
import os
import subprocess
import sys

root = sys.argv[1]
busybox = sys.argv[2] if len(sys.argv) > 2 else "/bin/busybox"
applets = subprocess.run(
    [busybox, "--list-full"], check=True, capture_output=True, text=True
).stdout.split()
for applet in applets:
    if applet in ("bin/busybox", "linuxrc"):
        continue
    link = os.path.join(root, applet)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("/bin/busybox", link)
