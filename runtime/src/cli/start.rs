//! `husk start`: let a created container's process exec its program.

use super::Globals;

/// Start a created container: its process execs the configured program.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    husk::container::start(&g.store, &a.id)?;
    Ok(0)
}
