//! `husk update`: change a running container's resource limits.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::Globals;

/// Update the resource limits of a container.
///
/// With --resources FILE (or `-` for stdin) the file holds OCI `linux.resources` JSON, as
/// containerd sends it; the other flags are then ignored. Values not given keep their
/// current setting. Sizes accept k, m, g suffixes (e.g. --memory 512m).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// LinuxResources JSON file, or `-` for standard input.
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema", hide = true)]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema", hide = true)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

/// "512m" → 536870912; "-1" stays -1 (unlimited).
pub fn parse_size(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("--{flag} {s:?}: not a size (bytes, or with k/m/g suffix)"))?;
    Ok((n * mult as f64) as i64)
}

fn from_flags(a: &Args) -> anyhow::Result<Value> {
    let mut memory = Map::new();
    if let Some(m) = &a.memory {
        memory.insert("limit".into(), json!(parse_size("memory", m)?));
    }
    if let Some(m) = &a.memory_reservation {
        memory.insert(
            "reservation".into(),
            json!(parse_size("memory-reservation", m)?),
        );
    }
    if let Some(m) = &a.memory_swap {
        memory.insert("swap".into(), json!(parse_size("memory-swap", m)?));
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.clone().map(Value::from));
    put("mems", a.cpuset_mems.clone().map(Value::from));
    let mut out = Map::new();
    if !memory.is_empty() {
        out.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(w) = a.blkio_weight {
        out.insert("blockIO".into(), json!({"weight": w}));
    }
    if let Some(p) = a.pids_limit {
        out.insert("pids".into(), json!({"limit": p}));
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        anyhow::bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by husk");
    }
    Ok(Value::Object(out))
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    let patch = match &a.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("read --resources {}", path.display()))?;
            }
            let v: Value =
                serde_json::from_str(&text).context("parse --resources JSON (LinuxResources)")?;
            // Validate the shape before touching anything.
            let _: oci_spec::runtime::LinuxResources = serde_path_to_error::deserialize(v.clone())
                .map_err(|e| anyhow::anyhow!("--resources: field `{}`: {}", e.path(), e.inner()))?;
            v
        }
        None => from_flags(&a)?,
    };
    husk::control::update(&g.store, &a.id, &patch)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "1000").unwrap(), 1000);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "lots").is_err());
    }
}
