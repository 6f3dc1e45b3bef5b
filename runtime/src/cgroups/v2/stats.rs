//! v2 usage counters: cpu.stat, memory.*, pids, io.stat, hugetlb, reported with runc's v1
//! compatible meaning (nanoseconds, swap as memory+swap).

use std::path::Path;

use crate::cgroups::{fs, BlkioEntry, CgroupError, HugetlbStats, MemoryEntry, Stats};

pub(super) fn read(dir: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(text) = fs::read_optional(dir, "cpu.stat")? {
        for (k, v) in fs::parse_key_values(&dir.join("cpu.stat"), &text)? {
            match k.as_str() {
                "usage_usec" => s.cpu.usage.total = v * 1000,
                "user_usec" => s.cpu.usage.user = v * 1000,
                "system_usec" => s.cpu.usage.kernel = v * 1000,
                "nr_periods" => s.cpu.throttling.periods = v,
                "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                "throttled_usec" => s.cpu.throttling.throttled_time = v * 1000,
                _ => {}
            }
        }
    }
    if let Some(text) = fs::read_optional(dir, "memory.stat")? {
        s.memory.raw = fs::parse_key_values(&dir.join("memory.stat"), &text)?
            .into_iter()
            .collect();
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        let usage = fs::read_u64(dir, "memory.current")?;
        let limit = fs::read_u64(dir, "memory.max")?;
        let failcnt = match fs::read_optional(dir, "memory.events")? {
            Some(t) => fs::parse_key_values(&dir.join("memory.events"), &t)?
                .into_iter()
                .find(|(k, _)| k == "max")
                .map_or(0, |(_, v)| v),
            None => 0,
        };
        let max = fs::read_u64_optional(dir, "memory.peak")?.unwrap_or(0);
        s.memory.usage = MemoryEntry {
            limit,
            usage,
            max,
            failcnt,
        };
        if let Some(swap) = fs::read_u64_optional(dir, "memory.swap.current")? {
            let swap_limit = fs::read_u64(dir, "memory.swap.max")?;
            // v1 reported memory+swap; keep that meaning.
            let limit = if swap_limit == u64::MAX || limit == u64::MAX {
                u64::MAX
            } else {
                swap_limit + limit
            };
            s.memory.swap = MemoryEntry {
                limit,
                usage: swap + usage,
                max: 0,
                failcnt: 0,
            };
        }
    }
    s.pids.current = fs::read_u64_optional(dir, "pids.current")?.unwrap_or(0);
    s.pids.limit = fs::read_u64_optional(dir, "pids.max")?
        .filter(|v| *v != u64::MAX)
        .unwrap_or(0);
    if let Some(text) = fs::read_optional(dir, "io.stat")? {
        io_stat(dir, &text, &mut s)?;
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(".max")?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    for size in sizes {
        let usage = fs::read_u64(dir, &format!("hugetlb.{size}.current"))?;
        let failcnt = fs::read_key(dir, &format!("hugetlb.{size}.events"), "max")?.unwrap_or(0);
        s.hugetlb.insert(
            size,
            HugetlbStats {
                usage,
                max: 0,
                failcnt,
            },
        );
    }
    Ok(s)
}

/// "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." lines, mapped to v1's tables.
fn io_stat(dir: &Path, text: &str, s: &mut Stats) -> Result<(), CgroupError> {
    let path = dir.join("io.stat");
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some((major, minor)) = words.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let parse = |v: &str| fs::parse_u64(&path, v);
        let (major, minor) = (parse(major)?, parse(minor)?);
        for item in words {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (op, table) = match key {
                "rbytes" => ("Read", &mut s.blkio.io_service_bytes_recursive),
                "wbytes" => ("Write", &mut s.blkio.io_service_bytes_recursive),
                "rios" => ("Read", &mut s.blkio.io_serviced_recursive),
                "wios" => ("Write", &mut s.blkio.io_serviced_recursive),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: parse(value)?,
            });
        }
    }
    Ok(())
}
