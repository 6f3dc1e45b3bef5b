#!/bin/bash
# Builds runtime-tools' OCI validation suite (validation/*.t + a static
# runtimetest) with Debian's golang-go in GOPATH mode, from Debian's SOURCE
# package golang-github-opencontainers-runtime-tools (the -dev binary package
# leaves out validation/, cmd/runtimetest and the rootfs tarball).
#
# The source is fetched with a private apt configuration (own sources list,
# state and cache under .cache/conformance/apt); the system's apt sources are
# not touched. Go dependencies come from Debian's -dev packages in
# /usr/share/gocode, except github.com/mndrix/tap-go, which is not packaged:
# hack/conformance/tap-go provides the part of it the suite calls.
#
# Output: .cache/conformance/bin/{runtimetest,rootfs-amd64.tar.gz,<test>.t}
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C=$ROOT/.cache/conformance
BIN=$C/bin
PKG=golang-github-opencontainers-runtime-tools
VER=0.9.0.109.ge931285-1
ORIG=${PKG}_0.9.0.109.ge931285.orig.tar.xz
# From Debian's Sources index (the .dsc itself is missing on the mirror).
ORIG_SHA256=203989a1ea98cf2aaced79155bbda09270b20db19b03376dde91ab12e5e6a0fe
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p;s/^deb \(http[^ ]*\/debian\) .*/\1/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

stamp=$BIN/.built-$VER
newest=$(ls -t "$0" "$ROOT"/hack/conformance/tap-go/tap.go "$ROOT"/hack/conformance/patches/*.patch | head -1)
if [[ -f $stamp && $stamp -nt $newest ]]; then
    exit 0
fi

need=()
command -v go >/dev/null || need+=(golang-go)
for p in golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
    echo "conformance: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

# --- fetch the source package through a private apt configuration ---
A=$C/apt
mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/etc" "$C/src"
cat >"$A/etc/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR sid main
SRC
APT=(-o "Dir::State=$A/state" -o "Dir::Cache=$A/cache" -o "Dir::Etc::SourceList=$A/etc/sources.list"
     -o "Dir::Etc::SourceParts=$A/etc/none" -o "APT::Sandbox::User=root")
if [[ ! -f $C/src/$ORIG ]] || ! echo "$ORIG_SHA256  $C/src/$ORIG" | sha256sum -c --quiet - 2>/dev/null; then
    apt-get "${APT[@]}" update >&2
    index_sha=$(apt-cache "${APT[@]}" showsrc "$PKG" | awk -v f="$ORIG" '$3 == f && length($1) == 64 {print $1; exit}')
    if [[ $index_sha != "$ORIG_SHA256" ]]; then
        echo "conformance: $ORIG: Sources index says sha256 '$index_sha', expected $ORIG_SHA256" >&2
        exit 1
    fi
    (cd "$C/src" && apt-get "${APT[@]}" source --download-only --tar-only "$PKG=$VER" >&2) || true
    echo "$ORIG_SHA256  $C/src/$ORIG" | sha256sum -c - >&2
fi

# --- private GOPATH: the suite's source, plus the tap-go subset ---
GP=$C/gopath
RT=$GP/src/github.com/opencontainers/runtime-tools
rm -rf "$GP"
mkdir -p "$RT" "$GP/src/github.com/mndrix/tap-go"
tar -xJf "$C/src/$ORIG" -C "$RT" --strip-components=1
cp "$ROOT/hack/conformance/tap-go/tap.go" "$GP/src/github.com/mndrix/tap-go/"
# The suite puts its "absolute" cgroups at the root of each hierarchy
# (/cgrouptest); the patches let the runner keep them under its own parent.
for p in "$ROOT"/hack/conformance/patches/*.patch; do
    patch -s -d "$RT" -p1 <"$p"
done

export GO111MODULE=off GOPATH=$GP:/usr/share/gocode GOCACHE=$C/gocache GOFLAGS=
rm -rf "$BIN"
mkdir -p "$BIN"
cd "$RT"
echo "conformance: building runtimetest (static)" >&2
CGO_ENABLED=0 go build -tags "netgo osusergo" -o "$BIN/runtimetest" ./cmd/runtimetest
n=0
for d in validation/*/; do
    t=$(basename "$d")
    [[ $t == util ]] && continue
    go build -o "$BIN/$t.t" "./$d"
    n=$((n + 1))
done
cp rootfs-amd64.tar.gz "$BIN/"
echo "conformance: built runtimetest and $n validation tests in $BIN" >&2
touch "$stamp"
