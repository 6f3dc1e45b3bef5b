//! `husk create`: set up a container from a bundle; its process waits for `husk start`.

use std::path::PathBuf;

use husk::container::{self, CreateOptions};

use super::Globals;

/// Create a container: namespaces, mounts, cgroup and process set up, blocked before exec.
///
/// The container's process runs its configured program only once `husk start ID` is called.
/// `husk state ID` reports "created" until then.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CreateFlags,
    /// Container id: letters, digits and _ + - . only; unique under --root.
    pub id: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateFlags {
    /// Path to the bundle directory (containing config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the container process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a ramdisk root): move-mount and chroot instead.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) into the container, plus LISTEN_FDS ones.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateFlags {
    pub fn options(&self, id: &str) -> CreateOptions {
        CreateOptions {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            listen_fds: listen_fds(),
        }
    }
}

/// systemd socket activation: LISTEN_FDS fds (from 3) are passed through as runc does.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    super::ensure_sealed_copy(g)?;
    container::create(&g.store, &a.common.options(&a.id))?;
    Ok(0)
}
