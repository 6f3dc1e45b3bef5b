//! v1 usage counters: cpuacct, cpu.stat, memory.*, pids, blkio, hugetlb.

use std::path::Path;

use super::V1Manager;
use crate::cgroups::stats::parse_blkio;
use crate::cgroups::{fs, BlkioStats, CgroupError, HugetlbStats, MemoryEntry, Stats};

pub(super) fn read(m: &V1Manager) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(dir) = m.dir("cpuacct") {
        s.cpu.usage.total = fs::read_u64_optional(dir, "cpuacct.usage")?.unwrap_or(0);
        if let Some(text) = fs::read_optional(dir, "cpuacct.usage_percpu")? {
            let path = dir.join("cpuacct.usage_percpu");
            s.cpu.usage.percpu = text
                .split_whitespace()
                .map(|w| fs::parse_u64(&path, w))
                .collect::<Result<_, _>>()?;
        }
        if let Some(text) = fs::read_optional(dir, "cpuacct.stat")? {
            // USER_HZ ticks to nanoseconds.
            let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .filter(|v| *v > 0)
                .unwrap_or(100) as u64;
            for (k, v) in fs::parse_key_values(&dir.join("cpuacct.stat"), &text)? {
                match k.as_str() {
                    "user" => s.cpu.usage.user = v * 1_000_000_000 / hz,
                    "system" => s.cpu.usage.kernel = v * 1_000_000_000 / hz,
                    _ => {}
                }
            }
        }
    }
    if let Some(dir) = m.dir("cpu") {
        if let Some(text) = fs::read_optional(dir, "cpu.stat")? {
            for (k, v) in fs::parse_key_values(&dir.join("cpu.stat"), &text)? {
                match k.as_str() {
                    "nr_periods" => s.cpu.throttling.periods = v,
                    "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                    "throttled_time" => s.cpu.throttling.throttled_time = v,
                    _ => {}
                }
            }
        }
    }
    if let Some(dir) = m.dir("memory") {
        let text = fs::read(dir, "memory.stat")?;
        s.memory.raw = fs::parse_key_values(&dir.join("memory.stat"), &text)?
            .into_iter()
            .collect();
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        s.memory.usage = memory_entry(dir, "memory")?.unwrap_or_default();
        s.memory.swap = memory_entry(dir, "memory.memsw")?.unwrap_or_default();
        s.memory.kernel = memory_entry(dir, "memory.kmem")?.unwrap_or_default();
        s.memory.kernel_tcp = memory_entry(dir, "memory.kmem.tcp")?.unwrap_or_default();
    }
    if let Some(dir) = m.dir("pids") {
        s.pids.current = fs::read_u64_optional(dir, "pids.current")?.unwrap_or(0);
        s.pids.limit = fs::read_u64_optional(dir, "pids.max")?
            .filter(|v| *v != u64::MAX)
            .unwrap_or(0);
    }
    if let Some(dir) = m.dir("blkio") {
        s.blkio = blkio(dir)?;
    }
    if let Some(dir) = m.dir("hugetlb") {
        for size in page_sizes(dir)? {
            let f = |what: &str| format!("hugetlb.{size}.{what}");
            let entry = HugetlbStats {
                usage: fs::read_u64(dir, &f("usage_in_bytes"))?,
                max: fs::read_u64(dir, &f("max_usage_in_bytes"))?,
                failcnt: fs::read_u64(dir, &f("failcnt"))?,
            };
            s.hugetlb.insert(size, entry);
        }
    }
    Ok(s)
}

/// usage/max/failcnt/limit of `prefix` (memory, memory.memsw, ...); `None` when the kernel
/// lacks that counter (swap accounting off, no kmem).
fn memory_entry(dir: &Path, prefix: &str) -> Result<Option<MemoryEntry>, CgroupError> {
    let Some(usage) = fs::read_u64_optional(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    Ok(Some(MemoryEntry {
        usage,
        max: fs::read_u64(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: fs::read_u64(dir, &format!("{prefix}.failcnt"))?,
        limit: fs::read_u64(dir, &format!("{prefix}.limit_in_bytes"))?,
    }))
}

/// runc's order of preference: BFQ, CFQ, then the throttling counters.
fn blkio(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let groups = [
        (
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.bfq.io_serviced_recursive",
        ),
        (
            "blkio.io_service_bytes_recursive",
            "blkio.io_serviced_recursive",
        ),
        (
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_serviced_recursive",
        ),
        (
            "blkio.throttle.io_service_bytes",
            "blkio.throttle.io_serviced",
        ),
    ];
    for (bytes, ios) in groups {
        let Some(text) = fs::read_optional(dir, bytes)? else {
            continue;
        };
        let bytes_entries = parse_blkio(&dir.join(bytes), &text)?;
        if bytes_entries.is_empty() {
            continue;
        }
        let ios_text = fs::read(dir, ios)?;
        return Ok(BlkioStats {
            io_service_bytes_recursive: bytes_entries,
            io_serviced_recursive: parse_blkio(&dir.join(ios), &ios_text)?,
        });
    }
    Ok(BlkioStats::default())
}

/// Page sizes with a hugetlb limit file in `dir` ("2MB", "1GB").
fn page_sizes(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(".limit_in_bytes")?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    out.sort();
    Ok(out)
}
