//! `husk delete`: remove a stopped (or, with --force, any) container and its cgroup.

use super::Globals;

/// Delete a container: remove its cgroup and state and run its poststop hooks.
///
/// A running or paused container is refused unless --force, which kills it first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill the container if it is still running.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    husk::container::delete(&g.store, &a.id, a.force)?;
    Ok(0)
}
