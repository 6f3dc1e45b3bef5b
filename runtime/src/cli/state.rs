//! `husk state`: the container's OCI state as JSON.

use super::Globals;

/// Print the state of a container as JSON (ociVersion, id, pid, status, bundle, rootfs,
/// created, annotations, owner).
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    let s = husk::container::state(&g.store, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}
