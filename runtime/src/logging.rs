//! runc's logging contract: `--log FILE --log-format text|json`.
//!
//! containerd's runc shim reads `log.json` line by line and reports the last
//! `{"level":"error","msg":...,"time":...}` entry as the reason a call failed, so every fatal
//! error goes there as well as to stderr, and `--debug` adds `debug` lines (phase timings).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log file {path:?}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown --log-format {0:?} (expected text or json)")]
    Format(String),
}

struct Sink {
    file: Option<File>,
    format: Format,
    debug: bool,
    started: Instant,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

pub fn parse_format(s: &str) -> Result<Format, LogError> {
    match s {
        "text" | "" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        other => Err(LogError::Format(other.to_string())),
    }
}

/// Set up the process-wide log sink. Without `path`, only stderr gets messages.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<(), LogError> {
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| LogError::Open {
                    path: p.to_path_buf(),
                    source,
                })?,
        ),
        None => None,
    };
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink {
        file,
        format,
        debug,
        started: Instant::now(),
    });
    Ok(())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn write(level: &str, msg: &str) {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sink) = guard.as_mut() else { return };
    if let Some(file) = sink.file.as_mut() {
        let line = match sink.format {
            Format::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": now_rfc3339()}).to_string()
            }
            Format::Text => format!("time=\"{}\" level={} msg={:?}", now_rfc3339(), level, msg),
        };
        let _ = writeln!(file, "{line}");
    }
}

/// A fatal error: to the log file (if any) and to stderr, as runc does.
pub fn error(msg: &str) {
    write("error", msg);
    let _ = writeln!(std::io::stderr(), "{msg}");
}

pub fn warn(msg: &str) {
    write("warning", msg);
    if !has_file() {
        let _ = writeln!(std::io::stderr(), "warning: {msg}");
    }
}

fn has_file() -> bool {
    SINK.lock()
        .map(|s| s.as_ref().is_some_and(|s| s.file.is_some()))
        .unwrap_or(false)
}

pub fn debug_enabled() -> bool {
    SINK.lock()
        .map(|s| s.as_ref().is_some_and(|s| s.debug))
        .unwrap_or(false)
}

/// A `--debug` message: to the log file, or stderr without one.
pub fn debug(msg: &str) {
    if !debug_enabled() {
        return;
    }
    write("debug", msg);
    if !has_file() {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}

/// `--debug` phase trace: "phase NAME at +1.234ms". Goes to the log file, or stderr without one.
pub fn phase(name: &str) {
    let (enabled, elapsed, file) = {
        let g = SINK.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(s) if s.debug => (true, s.started.elapsed(), s.file.is_some()),
            _ => (false, Default::default(), false),
        }
    };
    if !enabled {
        return;
    }
    let msg = format!("phase {name} at +{:.3}ms", elapsed.as_secs_f64() * 1000.0);
    write("debug", &msg);
    if !file {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}
