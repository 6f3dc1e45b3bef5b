#!/usr/bin/env bash
# Install the Debian packages husk's build, demo and tests need.
#
# Idempotent: asks dpkg which packages are missing and only then runs
# `apt-get update` (once) and `apt-get install`, so repeated runs are fast.
#
#   hack/install-deps.sh        base set: busybox-static libseccomp-dev pkg-config runc crun
#   hack/install-deps.sh --v2   also what the cgroup v2 guest needs: qemu-system-x86 cpio
#   hack/install-deps.sh --e2e  also the daemons hack/e2e drives: docker.io containerd
set -euo pipefail

packages=(busybox-static libseccomp-dev pkg-config runc crun)
for arg in "$@"; do
    case "$arg" in
        --v2) packages+=(qemu-system-x86 cpio) ;;
        --e2e) packages+=(docker.io containerd) ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    # dpkg -s succeeds for removed-but-configured packages too; check the status line.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}) and not root" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
