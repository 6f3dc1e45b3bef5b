//! `husk kill`: send a signal to the container's process (or, with --all, every process).

use super::Globals;

/// Send a signal (default SIGTERM) to the container's init process.
///
/// SIGNAL is a name (KILL, SIGKILL, sigterm) or a number (9). With --all every process in the
/// container's cgroup gets it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Send the signal to every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    let sig = husk::signal::parse(&a.signal)?;
    husk::container::kill(&g.store, &a.id, sig, a.all)?;
    Ok(0)
}
