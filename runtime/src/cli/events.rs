//! `husk events`: container stats and OOM notifications as JSON lines.

use std::io::Write;
use std::time::Duration;

use super::Globals;

/// Print container events as JSON, one object per line.
///
/// With --stats, print one `{"type":"stats","id":...,"data":{cpu,memory,pids,blkio,hugetlb}}`
/// and exit. Otherwise print stats every --interval and an `{"type":"oom"}` event whenever the
/// kernel OOM-kills a process of the container, until the container stops.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the current stats once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events, e.g. 5s, 500ms, 1m.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(
        t.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--interval {s:?}: use e.g. 5s, 500ms, 1m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("--interval {s:?}: unknown unit {unit:?}"),
    };
    if secs <= 0.0 {
        anyhow::bail!("--interval {s:?} must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    if a.stats {
        println!("{}", husk::control::stats_event(&g.store, &a.id)?);
        return Ok(0);
    }
    let interval = parse_interval(&a.interval)?;
    let mut out = std::io::stdout();
    husk::control::events(&g.store, &a.id, interval, |ev| {
        writeln!(out, "{ev}").and_then(|()| out.flush()).is_ok()
    })?;
    Ok(0)
}
