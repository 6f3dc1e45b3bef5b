#!/usr/bin/env bash
# Run a command as root on a pure cgroup v2 host: Debian's kernel booted under
# qemu (TCG) with cgroup_no_v1=all, from an initramfs built here.
#
#   hack/v2guest/run.sh [options] -- CMD [ARGS...]
#
# Options:
#   --include SRC[:DEST]  copy a file or directory into the guest at DEST
#                         (default: SRC's absolute path, so host paths keep working);
#                         the shared libraries of every dynamic ELF in it come along
#   --husk PATH           husk binary to include (default: $HUSK_BIN, else
#                         target/release/husk if it exists); it lands at its own path and at /usr/local/bin/husk
#   --no-husk             do not include husk
#   --module NAME         load kernel module NAME (and its dependencies) at boot;
#                         overlay is always loaded
#   --timeout SECONDS     kill the guest after this long (default 120, or $V2GUEST_TIMEOUT)
#   --log FILE            also write the console output to FILE
#
# The guest console is printed as it comes. The exit status is CMD's exit
# status inside the guest, read from the "HUSK-V2-RESULT rc=N" line that the
# guest's init prints; if that line never comes (no boot, crash, timeout) this
# script says so and exits 124 (timeout) or 125.
#
# V2GUEST_QEMU_EXTRA adds qemu arguments (e.g. "-s" for a gdb stub).
#
# Needs: hack/install-deps.sh --v2 (qemu-system-x86, cpio), busybox-static.
set -euo pipefail
trap 'echo "v2guest: FAILED preparing the guest: line $LINENO: $BASH_COMMAND" >&2' ERR

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() { sed -n '2,27p' "$0" >&2; exit 2; }

includes=()
modules=(overlay)
husk="${HUSK_BIN:-$repo/target/release/husk}"
husk_explicit=0
timeout_s="${V2GUEST_TIMEOUT:-120}"
log=''
while [ $# -gt 0 ]; do
    case "$1" in
        --include) includes+=("${2?--include needs a value}"); shift 2 ;;
        --husk) husk="${2?--husk needs a value}"; husk_explicit=1; shift 2 ;;
        --no-husk) husk=''; shift ;;
        --module) modules+=("${2?--module needs a value}"); shift 2 ;;
        --timeout) timeout_s="${2?--timeout needs a value}"; shift 2 ;;
        --log) log="${2?--log needs a value}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "v2guest: unknown argument $1 (the command goes after --)" >&2; usage ;;
    esac
done
[ $# -ge 1 ] || usage

for tool in qemu-system-x86_64 cpio /bin/busybox; do
    if ! command -v "$tool" >/dev/null; then
        echo "v2guest: $tool missing: run hack/install-deps.sh --v2" >&2
        exit 125
    fi
done

kdir="$("$here/kernel.sh")"
vmlinuz="$(ls "$kdir"/boot/vmlinuz-* | head -n1)"
kver="${vmlinuz##*/vmlinuz-}"

stage="$(mktemp -d /tmp/husk-v2guest.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,dev,proc,sys,tmp,root,husk-v2}

# busybox and its applets (as symlinks, like `busybox --install -s`).
cp /bin/busybox "$root/bin/busybox"
"$repo/hack/busybox-links.py" "$root"
install -m755 "$here/init" "$root/init"
install -m755 "$here/init2" "$root/init2"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$root/etc/group"

# Copy one file to DEST in the guest, keeping symlinks that point inside
# the copy working is not attempted: files are dereferenced.
add_file() { # SRC DEST
    mkdir -p "$root$(dirname "$2")"
    # An applet symlink may already sit at DEST (it points at /bin/busybox, an absolute
    # path): replace the link, never write through it.
    rm -f "$root$2"
    cp -L --preserve=mode,timestamps "$1" "$root$2"
}

# The dynamic libraries an ELF file needs, at the paths the host's ldd
# resolves them to (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2).
add_libs_of() { # FILE
    local lib
    [ "$(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] || return 0
    # ldd exits 1 for static binaries ("not a dynamic executable").
    { ldd "$1" 2>/dev/null || true; } | awk '
        $2 == "=>" && $3 ~ /^\// { print $3 }
        $1 ~ /^\// { print $1 }' | while read -r lib; do
        [ -e "$root$lib" ] || add_file "$lib" "$lib"
    done
}

add_tree() { # SRC DEST
    local src="$1" dest="$2" f
    if [ -d "$src" ]; then
        mkdir -p "$root$dest"
        cp -a "$src/." "$root$dest/"
        while IFS= read -r -d '' f; do
            add_libs_of "$f"
        done < <(find "$src" -type f -perm -u+x -print0)
    elif [ -e "$src" ]; then
        add_file "$src" "$dest"
        add_libs_of "$src"
    else
        echo "v2guest: --include $src: no such file or directory" >&2
        exit 125
    fi
}

if [ -n "$husk" ]; then
    if [ -x "$husk" ]; then
        husk="$(realpath "$husk")"
        add_tree "$husk" "$husk"
        ln -sfn "$husk" "$root/usr/local/bin/husk"
    elif [ "$husk_explicit" = 1 ]; then
        echo "v2guest: --husk $husk: not an executable" >&2
        exit 125
    fi
fi

for inc in "${includes[@]}"; do
    case "$inc" in
        *:*) src="${inc%%:*}"; dest="${inc#*:}" ;;
        *) src="$inc"; dest="$(realpath -m "$inc")" ;;
    esac
    case "$dest" in
        /*) ;;
        *) echo "v2guest: --include $inc: destination must be absolute" >&2; exit 125 ;;
    esac
    add_tree "$src" "$dest"
done

# Kernel modules, dependencies first (from each .ko's .modinfo "depends=";
# the Debian package ships no modules.dep: depmod runs at install time).
python3 - "$kdir/lib/modules/$kver" "${modules[@]}" > "$stage/modules" <<'PY'
import os, re, sys

moddir, wanted = sys.argv[1], sys.argv[2:]
index = {}
for top, _, files in os.walk(moddir):
    for name in files:
        if name.endswith(".ko"):
            index[name[:-3].replace("-", "_")] = os.path.join(top, name)

order, seen = [], set()
def visit(name):
    name = name.replace("-", "_")
    if name in seen:
        return
    seen.add(name)
    path = index.get(name)
    if path is None:
        builtin = open(os.path.join(moddir, "modules.builtin")).read()
        if re.search(r"/%s\.ko$" % re.escape(name).replace("_", "[-_]"), builtin, re.M):
            return  # built into the kernel: nothing to load
        sys.exit("v2guest: kernel module %s: not found in %s" % (name, moddir))
    data = open(path, "rb").read()
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    for dep in (m.group(1).decode().split(",") if m else []):
        if dep:
            visit(dep)
    order.append(path)

for w in wanted:
    visit(w)
print("\n".join(order))
PY
: > "$root/husk-v2/modules"
while read -r ko; do
    [ -n "$ko" ] || continue
    rel="/lib/modules/$kver/${ko#"$kdir/lib/modules/$kver/"}"
    add_file "$ko" "$rel"
    echo "$rel" >> "$root/husk-v2/modules"
done < "$stage/modules"

# The command, one single-quoted word per argument.
{
    printf 'exec'
    for arg in "$@"; do
        printf " '%s'" "${arg//\'/\'\\\'\'}"
    done
    printf '\n'
} > "$root/husk-v2/payload"

(cd "$root" && find . -print0 | cpio --null --quiet -o -H newc) > "$stage/initrd.cpio"
echo "v2guest: kernel $kver, initramfs $(du -h "$stage/initrd.cpio" | cut -f1)" >&2

console="$stage/console.log"
start=$(date +%s.%N)
trap - ERR
set +e
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
    -accel tcg -cpu max -m 2048 -smp 2 ${V2GUEST_QEMU_EXTRA:-} \
    -nographic -no-reboot -nic none -no-user-config \
    -kernel "$kdir/vmlinux" -initrd "$stage/initrd.cpio" \
    -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet" \
    </dev/null 2>&1 | tee "$console"
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
[ -z "$log" ] || cp "$console" "$log"

rc="$(tr -d '\r' < "$console" | sed -n 's/^HUSK-V2-RESULT rc=\([0-9]*\).*/\1/p' | tail -n1)"
if [ -n "$rc" ]; then
    echo "v2guest: payload exited $rc (guest ran ${elapsed}s)" >&2
    exit "$rc"
fi
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    echo "v2guest: FAILED: guest timed out after ${timeout_s}s without a HUSK-V2-RESULT line" >&2
    exit 124
fi
echo "v2guest: FAILED: guest stopped (qemu exit $qemu_rc after ${elapsed}s) without a HUSK-V2-RESULT line" >&2
exit 125
