//! `husk pause` / `husk resume`: freeze and thaw every process of a container.

use super::Globals;

/// Suspend every process in the container (cgroup freezer); state shows "paused".
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    pub id: String,
}

/// Resume a paused container.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    pub id: String,
}

pub fn pause(g: &Globals, a: PauseArgs) -> anyhow::Result<i32> {
    husk::control::pause(&g.store, &a.id)?;
    Ok(0)
}

pub fn resume(g: &Globals, a: ResumeArgs) -> anyhow::Result<i32> {
    husk::control::resume(&g.store, &a.id)?;
    Ok(0)
}
