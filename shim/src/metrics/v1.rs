//! `husk events --stats` JSON → containerd's `io.containerd.cgroups.v1.Metrics`
//! (cgroup v1 and hybrid hosts, like containerd's runc shim).
//!
//! husk reports runc's stats shape (cpu/memory/pids/blkio/hugetlb with the raw
//! memory.stat map), which is v1's own vocabulary: every field maps one to one.

use containerd_shim_protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use containerd_shim_protos::protobuf::MessageField;
use serde_json::Value;

use super::u;

pub const TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

fn entry(v: &Value, key: &str) -> MessageField<MemoryEntry> {
    let e = &v[key];
    MessageField::some(MemoryEntry {
        limit: u(e, &["limit"]),
        usage: u(e, &["usage"]),
        max: u(e, &["max"]),
        failcnt: u(e, &["failcnt"]),
        ..Default::default()
    })
}

fn blkio(v: &Value, key: &str) -> Vec<BlkIOEntry> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| BlkIOEntry {
                    op: e["op"].as_str().unwrap_or_default().to_string(),
                    major: u(e, &["major"]),
                    minor: u(e, &["minor"]),
                    value: u(e, &["value"]),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Fills Metrics from the `data` object of one stats event.
pub fn from_husk(sample: &Value) -> Metrics {
    let d = sample.get("data").unwrap_or(sample);
    let cpu = &d["cpu"];
    let mem = &d["memory"];
    let raw = &mem["raw"];
    let r = |k: &str| u(raw, &[k]);
    Metrics {
        hugetlb: d["hugetlb"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(size, h)| HugetlbStat {
                        usage: u(h, &["usage"]),
                        max: u(h, &["max"]),
                        failcnt: u(h, &["failcnt"]),
                        pagesize: size.clone(),
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        pids: MessageField::some(PidsStat {
            current: u(d, &["pids", "current"]),
            limit: u(d, &["pids", "limit"]),
            ..Default::default()
        }),
        cpu: MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: u(cpu, &["usage", "total"]),
                kernel: u(cpu, &["usage", "kernel"]),
                user: u(cpu, &["usage", "user"]),
                per_cpu: cpu["usage"]["percpu"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            throttling: MessageField::some(Throttle {
                periods: u(cpu, &["throttling", "periods"]),
                throttled_periods: u(cpu, &["throttling", "throttledPeriods"]),
                throttled_time: u(cpu, &["throttling", "throttledTime"]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(MemoryStat {
            cache: u(mem, &["cache"]),
            rss: r("rss"),
            rss_huge: r("rss_huge"),
            mapped_file: r("mapped_file"),
            dirty: r("dirty"),
            writeback: r("writeback"),
            pg_pg_in: r("pgpgin"),
            pg_pg_out: r("pgpgout"),
            pg_fault: r("pgfault"),
            pg_maj_fault: r("pgmajfault"),
            inactive_anon: r("inactive_anon"),
            active_anon: r("active_anon"),
            inactive_file: r("inactive_file"),
            active_file: r("active_file"),
            unevictable: r("unevictable"),
            hierarchical_memory_limit: r("hierarchical_memory_limit"),
            hierarchical_swap_limit: r("hierarchical_memsw_limit"),
            total_cache: r("total_cache"),
            total_rss: r("total_rss"),
            total_rss_huge: r("total_rss_huge"),
            total_mapped_file: r("total_mapped_file"),
            total_dirty: r("total_dirty"),
            total_writeback: r("total_writeback"),
            total_pg_pg_in: r("total_pgpgin"),
            total_pg_pg_out: r("total_pgpgout"),
            total_pg_fault: r("total_pgfault"),
            total_pg_maj_fault: r("total_pgmajfault"),
            total_inactive_anon: r("total_inactive_anon"),
            total_active_anon: r("total_active_anon"),
            total_inactive_file: r("total_inactive_file"),
            total_active_file: r("total_active_file"),
            total_unevictable: r("total_unevictable"),
            usage: entry(mem, "usage"),
            swap: entry(mem, "swap"),
            kernel: entry(mem, "kernel"),
            kernel_tcp: entry(mem, "kernelTCP"),
            ..Default::default()
        }),
        blkio: MessageField::some(BlkIOStat {
            io_service_bytes_recursive: blkio(&d["blkio"], "ioServiceBytesRecursive"),
            io_serviced_recursive: blkio(&d["blkio"], "ioServicedRecursive"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    #[test]
    fn husk_stats_fields_land_in_the_v1_metrics_message() {
        let sample = serde_json::json!({"type":"stats","id":"c1","data":{
            "cpu":{"usage":{"total":123,"percpu":[100,23],"kernel":3,"user":120},
                   "throttling":{"periods":5,"throttledPeriods":2,"throttledTime":9}},
            "memory":{"cache":4096,"usage":{"limit":1048576,"usage":2048,"max":4096,"failcnt":1},
                      "swap":{"usage":1},"kernel":{},"kernelTCP":{},"raw":{"rss":777,"pgfault":12}},
            "pids":{"current":2,"limit":10},
            "blkio":{"ioServiceBytesRecursive":[{"major":8,"minor":0,"op":"Read","value":512}]},
            "hugetlb":{"2MB":{"usage":0,"max":0,"failcnt":0}}}});
        let any = crate::metrics::pack(&from_husk(&sample), TYPE_URL).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage.total, 123);
        assert_eq!(m.cpu.usage.per_cpu, vec![100, 23]);
        assert_eq!(m.cpu.throttling.throttled_periods, 2);
        assert_eq!(m.memory.usage.limit, 1048576);
        assert_eq!(m.memory.rss, 777);
        assert_eq!(m.memory.pg_fault, 12);
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
    }
}
