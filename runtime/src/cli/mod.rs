//! runc-compatible command line: global flags, one file per subcommand, exit codes and the
//! `--log`/`--log-format json` error contract containerd's runc shim relies on.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use husk::state::Store;

/// `husk --version` prints runc's layout ("NAME version X", then "spec: ..."), which Docker's
/// `info` and go-runc's `Version()` parse.
const VERSION: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0");

const LONG_ABOUT: &str = "husk is a low-level OCI container runtime with runc's command line.

It takes an OCI bundle (a directory with config.json and a root filesystem) and runs it as an
isolated container: namespaces, mounts and pivot_root, cgroups, capabilities, rlimits, seccomp,
hooks and a console socket, as the OCI runtime specification describes. State lives under
--root (default /run/husk), one directory per container.";

#[derive(Debug, Parser)]
#[command(name = "husk", version = VERSION, about = "A low-level OCI container runtime (runc-compatible)", long_about = LONG_ABOUT)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = husk::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Also write errors (and --debug messages) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the --log file: text or json (one JSON object per line).
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages, including the time spent in each create step.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported yet: refused with an error).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (only false/auto are supported). Given before the
    /// subcommand, as go-runc does (`husk --rootless=false create ...`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = false)]
    rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Create(create::Args),
    Start(start::Args),
    Run(run::Args),
    State(state::Args),
    Kill(kill::Args),
    Delete(delete::Args),
    Exec(exec::Args),
    List(list::Args),
    Spec(spec::Args),
    Features(features::Args),
    Pause(pause::PauseArgs),
    Resume(pause::ResumeArgs),
    Ps(ps::Args),
    Update(update::Args),
    Events(events::Args),
}

pub struct Globals {
    pub store: Store,
}

/// Parse, set up logging, run the verb; print any error as runc does and return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let format = match husk::logging::parse_format(&cli.log_format) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if let Err(e) = husk::logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("{}", husk::init::chain(&e));
        return 1;
    }
    match run_command(cli) {
        Ok(code) => code,
        Err(e) => {
            husk::logging::error(&format_error(&e));
            1
        }
    }
}

/// The whole anyhow chain on one line, without repeating a cause already in the message.
fn format_error(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if s.is_empty() {
            s = t;
        } else if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
    }
    s
}

fn run_command(cli: Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup is not supported yet: this build of husk drives cgroupfs directly (omit the flag)");
    }
    if matches!(cli.rootless.as_deref(), Some("true")) {
        anyhow::bail!("--rootless=true is not supported yet: run husk as root");
    }
    let g = Globals {
        store: Store::new(&cli.root),
    };
    match cli.command {
        Command::Create(a) => create::run(&g, a),
        Command::Start(a) => start::run(&g, a),
        Command::Run(a) => run::run(&g, a),
        Command::State(a) => state::run(&g, a),
        Command::Kill(a) => kill::run(&g, a),
        Command::Delete(a) => delete::run(&g, a),
        Command::Exec(a) => exec::run(&g, a),
        Command::List(a) => list::run(&g, a),
        Command::Spec(a) => spec::run(a),
        Command::Features(a) => features::run(a),
        Command::Pause(a) => pause::pause(&g, a),
        Command::Resume(a) => pause::resume(&g, a),
        Command::Ps(a) => ps::run(&g, a),
        Command::Update(a) => update::run(&g, a),
        Command::Events(a) => events::run(&g, a),
    }
}

/// CVE-2019-5736: verbs that put a husk process into a container first re-exec husk from an
/// immutable copy of itself (`husk::exeseal`).
pub fn ensure_sealed_copy(g: &Globals) -> anyhow::Result<()> {
    g.store.ensure_root()?;
    husk::exeseal::ensure_sealed(g.store.root())?;
    Ok(())
}
