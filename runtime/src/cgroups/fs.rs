//! Reading and writing cgroupfs files, shared by the v1 and v2 managers.
//!
//! Writes follow runc's `cgroups.WriteFile`: open the existing file write-only with O_TRUNC
//! (never create it: a missing file means a missing controller or kernel feature) and write the
//! value in one call, retrying on EINTR. Every error names the file and the value.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use super::CgroupError;

/// Writes `value` to `dir/file`, returning the raw I/O error so callers can react to errno
/// (EBUSY, EINVAL, ENOENT) the way runc does.
pub(crate) fn try_write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    #[cfg(test)]
    record::push(&path, value);
    loop {
        let result = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        match result {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes `value` to `dir/file`; the error names both.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    try_write(dir, file, value).map_err(|source| write_error(dir, file, value, source))
}

/// Opens the existing `dir/file` write-only (close-on-exec), for a write that happens later,
/// possibly in another process.
pub(crate) fn open_for_write(dir: &Path, file: &str) -> Result<std::os::fd::OwnedFd, CgroupError> {
    let path = dir.join(file);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .map(Into::into)
        .map_err(|source| CgroupError::OpenForWrite { path, source })
}

pub(crate) fn write_error(dir: &Path, file: &str, value: &str, source: io::Error) -> CgroupError {
    CgroupError::Write {
        path: dir.join(file),
        value: value.to_string(),
        source,
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Like [`read`], but a missing file is `None`.
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Parses a single unsigned number; "max" reads as `u64::MAX` (runc's `ParseUint` does the same).
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().or_else(|e| {
        // v1 reports "unlimited" as a huge signed value on some files; negative is 0 for runc.
        match t.parse::<i64>() {
            Ok(v) if v < 0 => Ok(0),
            _ => Err(CgroupError::Parse {
                path: path.to_path_buf(),
                reason: format!("{t:?} is not a number: {e}"),
            }),
        }
    })
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    parse_u64(&dir.join(file), &text)
}

pub(crate) fn read_u64_optional(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_optional(dir, file)? {
        Some(text) => parse_u64(&dir.join(file), &text).map(Some),
        None => Ok(None),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events, ...).
pub(crate) fn parse_key_values(path: &Path, text: &str) -> Result<Vec<(String, u64)>, CgroupError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut it = line.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some(k), Some(v), None) => Ok((k.to_string(), parse_u64(path, v)?)),
                _ => Err(CgroupError::Parse {
                    path: path.to_path_buf(),
                    reason: format!("line {line:?} is not \"key value\""),
                }),
            }
        })
        .collect()
}

/// Reads `key value` lines and returns the value of `key`, if present.
pub(crate) fn read_key(dir: &Path, file: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    let path = dir.join(file);
    let text = read(dir, file)?;
    Ok(parse_key_values(&path, &text)?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

/// Moves `pid` into the cgroup `dir`, retrying on EINVAL like runc's `WriteCgroupProc` (a task
/// that is still being forked, TASK_NEW, is refused for a short while).
pub(crate) fn write_procs(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let value = pid.to_string();
    let mut tries = 0;
    loop {
        match try_write(dir, "cgroup.procs", &value) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && tries < 5 => {
                tries += 1;
                sleep(Duration::from_millis(30));
            }
            Err(source) => return Err(write_error(dir, "cgroup.procs", &value, source)),
        }
    }
}

/// Every pid in `dir` and in all cgroups below it (runc's `GetAllPids`), sorted.
pub(crate) fn all_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    collect_pids(dir, &mut pids)?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // The cgroup vanished (or never existed): nothing lives in it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    for word in text.split_whitespace() {
        let pid = word.parse::<i32>().map_err(|e| CgroupError::Parse {
            path: path.clone(),
            reason: format!("{word:?} is not a pid: {e}"),
        })?;
        out.push(pid);
    }
    for child in subdirs(dir)? {
        collect_pids(&child, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the cgroup `dir` and any cgroups below it (runc's `RemovePath`): try a plain rmdir,
/// else remove children first and retry rmdir with backoff while the kernel reports EBUSY
/// (tasks that were just killed can take a moment to leave). A missing dir is success.
pub(crate) fn remove_cgroup(dir: &Path) -> Result<(), CgroupError> {
    if rmdir(dir, false).is_ok() {
        return Ok(());
    }
    for child in subdirs(dir)? {
        remove_cgroup(&child)?;
    }
    rmdir(dir, true)
}

fn rmdir(dir: &Path, retry: bool) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    let mut tries = 10;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && retry && tries > 0 => {
                sleep(delay);
                delay *= 2;
                tries -= 1;
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Test-only log of every write, in order, so tests can check sequences (memory before swap,
/// several lines to `io.max`, `devices.deny` before `devices.allow`) that a plain file in a
/// temp dir cannot show because each write truncates it.
#[cfg(test)]
pub(crate) mod record {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static WRITES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn push(path: &Path, value: &str) {
        WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_string())));
    }

    /// Returns and clears the writes made so far on this thread, as (file relative to `base`, value).
    pub(crate) fn take(base: &Path) -> Vec<(String, String)> {
        WRITES.with(|w| {
            w.borrow_mut()
                .drain(..)
                .map(|(p, v)| (p.strip_prefix(base).unwrap_or(&p).display().to_string(), v))
                .collect()
        })
    }
}
