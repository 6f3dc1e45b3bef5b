//! `husk run`: create + start, and in the foreground wait and exit with the container's code.

use super::create::CreateFlags;
use super::Globals;

/// Create and start a container. In the foreground husk waits for the container's process,
/// forwards signals to it, deletes the container afterwards (unless --keep) and exits with
/// the process's exit code (128+N when killed by signal N).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CreateFlags,
    /// Detach from the container's process (it keeps running; delete it later).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the stopped container's state after it exits (foreground only).
    #[arg(long)]
    pub keep: bool,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    super::ensure_sealed_copy(g)?;
    let opts = a.common.options(&a.id);
    if !a.detach {
        // The init may be a grandchild (namespaces joined by path): adopt it when its parent exits.
        nix::sys::prctl::set_child_subreaper(true)?;
    }
    let created = husk::container::create(&g.store, &opts)?;
    if let Err(e) = husk::container::start(&g.store, &a.id) {
        let _ = husk::container::delete(&g.store, &a.id, true);
        return Err(e.into());
    }
    husk::logging::phase("run: started");
    if a.detach {
        return Ok(0);
    }
    let code = husk::container::wait_foreground(created.pid);
    husk::logging::phase("run: exited");
    if !a.keep {
        husk::container::delete(&g.store, &a.id, true)?;
        husk::logging::phase("run: deleted");
    }
    Ok(code?)
}
