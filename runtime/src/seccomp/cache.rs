//! A cache of compiled filters.
//!
//! Building and exporting a large profile with libseccomp is slow: Docker's default profile
//! (every container Docker starts) costs 10–20 ms per `create` here (bench/results.md), more
//! than the rest of `create`. The result depends only on the profile and on the code that
//! compiles it, so husk keeps the exported program, as crun does.
//!
//! * Where: `/run/husk/cache/seccomp/` (tmpfs: gone at reboot), or the directory named by
//!   `HUSK_SECCOMP_CACHE` (empty: no cache). The directory must be ours and not writable by
//!   anyone else, or it is not used.
//! * Key: the `linux.seccomp` JSON, the libseccomp version, the kernel release and machine, and
//!   an id of this build's seccomp code (`build.rs` hashes `src/seccomp/`). The entry stores
//!   the whole key and a hit needs it byte for byte; the hash only names the file.
//! * Entries are written whole (temporary file + rename). A missing, unreadable, corrupt or
//!   stale entry is a miss; no cache error ever fails a `create`.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys::seccomp::MAX_INSTRUCTIONS;

const DEFAULT_DIR: &str = "/run/husk/cache/seccomp";
const MAGIC: &[u8] = b"husk-seccomp-bpf 1\n";
const INSN_SIZE: usize = 8;

/// The compiled program for `linux_seccomp`, from the cache or from `compile` (then stored).
pub(crate) fn get_or_compile<E>(
    linux_seccomp: &serde_json::Value,
    compile: impl FnOnce() -> Result<Vec<libc::sock_filter>, E>,
) -> Result<Vec<libc::sock_filter>, E> {
    let Some(dir) = usable_dir() else {
        return compile();
    };
    let key = key(linux_seccomp);
    let path = dir.join(file_name(&key));
    if let Some(program) = fs::read(&path).ok().and_then(|b| decode(&b, &key)) {
        return Ok(program);
    }
    let program = compile()?;
    store(&dir, &path, &key, &program);
    Ok(program)
}

fn usable_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HUSK_SECCOMP_CACHE") {
        Some(d) if d.is_empty() => return None,
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(DEFAULT_DIR),
    };
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    let meta = fs::symlink_metadata(&dir).ok()?;
    let ours = meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw();
    (ours && meta.mode() & 0o022 == 0).then_some(dir)
}

/// Everything the compiled program depends on.
fn key(linux_seccomp: &serde_json::Value) -> Vec<u8> {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let uts = nix::sys::utsname::uname().ok();
    let kernel = uts
        .as_ref()
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.machine().to_string_lossy()
            )
        })
        .unwrap_or_default();
    format!(
        "code {}\nlibseccomp {lib}\nkernel {kernel}\nprofile {linux_seccomp}\n",
        env!("HUSK_SECCOMP_CODE_ID")
    )
    .into_bytes()
}

fn file_name(key: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}.bpf", h.finish())
}

/// `MAGIC`, key length (u32 LE), key, then the instructions (`u16 code, u8 jt, u8 jf, u32 k`).
fn encode(key: &[u8], program: &[libc::sock_filter]) -> Vec<u8> {
    let mut b = Vec::with_capacity(MAGIC.len() + 4 + key.len() + program.len() * INSN_SIZE);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&(key.len() as u32).to_le_bytes());
    b.extend_from_slice(key);
    for i in program {
        b.extend_from_slice(&i.code.to_le_bytes());
        b.extend_from_slice(&[i.jt, i.jf]);
        b.extend_from_slice(&i.k.to_le_bytes());
    }
    b
}

fn decode(b: &[u8], key: &[u8]) -> Option<Vec<libc::sock_filter>> {
    let rest = b.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (stored, insns) = rest.split_at_checked(u32::from_le_bytes(*len) as usize)?;
    if stored != key || insns.is_empty() || insns.len() % INSN_SIZE != 0 {
        return None;
    }
    if insns.len() / INSN_SIZE > MAX_INSTRUCTIONS {
        return None;
    }
    Some(
        insns
            .chunks_exact(INSN_SIZE)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn store(dir: &Path, path: &Path, key: &[u8], program: &[libc::sock_filter]) {
    let tmp = dir.join(format!(".{}.{}", std::process::id(), file_name(key)));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&encode(key, program)))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code,
            jt: 1,
            jf: 2,
            k,
        }
    }

    fn same(a: &[libc::sock_filter], b: &[libc::sock_filter]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    }

    #[test]
    fn an_entry_is_used_only_for_exactly_its_key() {
        let program = vec![insn(0x20, 4), insn(0x06, 0x7fff_0000)];
        let bytes = encode(b"key one", &program);
        assert!(same(&decode(&bytes, b"key one").unwrap(), &program));
        assert!(decode(&bytes, b"key two").is_none());
        assert!(decode(&bytes, b"key on").is_none());
        assert!(decode(&bytes[..bytes.len() - 1], b"key one").is_none());
        assert!(decode(b"garbage", b"key one").is_none());
    }

    #[test]
    fn the_key_covers_the_profile() {
        let a = key(&serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        let b = key(&serde_json::json!({"defaultAction": "SCMP_ACT_KILL"}));
        assert_ne!(a, b);
        assert_ne!(file_name(&a), file_name(&b));
    }
}
