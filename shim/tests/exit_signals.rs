//! The serving shim exits on SIGTERM and SIGINT like containerd's Go shims, and
//! removes its socket as it does after Shutdown. Runs the real binary in serve
//! mode against a stand-in for containerd's ttrpc socket (events are never sent:
//! no container is created).

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn serve_then_signal(name: &str, signal: nix::sys::signal::Signal) {
    let dir =
        Dir(std::env::temp_dir().join(format!("husk-shim-sig-{}-{name}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    // containerd's side: its ttrpc socket (the shim connects for events) and the
    // `log` FIFO the shim writes to (a plain file will do).
    let ctrd = dir.0.join("containerd.sock.ttrpc");
    let listener = UnixListener::bind(&ctrd).unwrap();
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept() {
            conns.push(c);
        }
    });
    std::fs::write(dir.0.join("log"), b"").unwrap();
    let socket = dir.0.join("shim.sock");
    let address = format!("unix://{}", socket.display());
    std::fs::write(dir.0.join("address"), &address).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_containerd-shim-husk-v2"))
        .args(["-namespace", "sig-test", "-id", name, "-address"])
        .arg(&ctrd)
        .args(["-socket", &address])
        .current_dir(&dir.0)
        .env("TTRPC_ADDRESS", &ctrd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !is_socket(&socket) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(is_socket(&socket), "the shim never listened on {socket:?}");
    // Give the server a moment past bind to install its handlers and start.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the shim exited by itself"
    );

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = status.unwrap_or_else(|| panic!("the shim ignored {signal}"));
    assert!(status.success(), "exit after {signal}: {status}");
    assert!(!is_socket(&socket), "{socket:?} left behind after {signal}");
}

#[test]
fn sigterm_stops_the_server_and_removes_its_socket() {
    serve_then_signal("term", nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigint_stops_the_server_and_removes_its_socket() {
    serve_then_signal("int", nix::sys::signal::Signal::SIGINT);
}
