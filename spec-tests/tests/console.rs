//! `terminal: true`: the runtime makes a pty, sends its master over
//! `--console-socket`, and the container's stdio is the pty slave.

use spec_tests::console::read_master;
use spec_tests::{Bundle, ConsoleSocket, Runtime};
use std::time::Duration;

#[test]
fn console_socket_receives_a_pty_master_carrying_the_output() {
    let mut b = Bundle::busybox();
    b.terminal(true).sh("echo hello-from-tty; sleep 1");
    let rt = Runtime::new();
    let c = rt.container(&b);
    let mut sock = ConsoleSocket::listen(Duration::from_secs(20));
    c.create_with(&["--console-socket", sock.path().to_str().unwrap()])
        .ok("create with console");
    let master = sock.master().expect("pty master received");
    c.start().ok("start");
    let out = read_master(master, "hello-from-tty", Duration::from_secs(10));
    assert!(out.contains("hello-from-tty"), "pty output was {out:?}");
}

#[test]
fn the_container_sees_a_terminal_on_stdio() {
    let mut b = Bundle::busybox();
    b.terminal(true)
        .sh("test -t 0 && test -t 1 && echo is-a-tty; readlink /proc/self/fd/1; sleep 1");
    let rt = Runtime::new();
    let c = rt.container(&b);
    let mut sock = ConsoleSocket::listen(Duration::from_secs(20));
    c.create_with(&["--console-socket", sock.path().to_str().unwrap()])
        .ok("create with console");
    let master = sock.master().expect("pty master received");
    c.start().ok("start");
    let out = read_master(master, "/dev/", Duration::from_secs(10));
    assert!(out.contains("is-a-tty"), "stdio is not a terminal: {out:?}");
    assert!(out.contains("/dev/pts/"), "stdout is not a pts: {out:?}");
}

#[test]
fn input_written_to_the_master_reaches_the_container() {
    let mut b = Bundle::busybox();
    b.terminal(true).sh("read line; echo got-$line");
    let rt = Runtime::new();
    let c = rt.container(&b);
    let mut sock = ConsoleSocket::listen(Duration::from_secs(20));
    c.create_with(&["--console-socket", sock.path().to_str().unwrap()])
        .ok("create with console");
    let master = sock.master().expect("pty master received");
    c.start().ok("start");
    let mut file = std::fs::File::from(master.try_clone().unwrap());
    std::io::Write::write_all(&mut file, b"ping\n").unwrap();
    let out = read_master(master, "got-ping", Duration::from_secs(10));
    assert!(out.contains("got-ping"), "{out:?}");
}

#[test]
fn terminal_without_console_socket_fails_create_clearly() {
    let mut b = Bundle::busybox();
    b.terminal(true).args(&["true"]);
    let rt = Runtime::new();
    let c = rt.container(&b);
    let out = c
        .create()
        .failed("create with terminal but no console socket");
    assert!(
        out.stderr.contains("console"),
        "error should mention the console socket: {out:#?}"
    );
    assert!(!c.state_dir_exists());
    assert!(spec_tests::host::test_cgroups(&c.id).is_empty());
}

#[test]
fn console_socket_without_terminal_fails() {
    let mut b = Bundle::busybox();
    b.terminal(false).args(&["true"]);
    let rt = Runtime::new();
    let c = rt.container(&b);
    let sock = ConsoleSocket::listen(Duration::from_secs(2));
    let out = c
        .create_with(&["--console-socket", sock.path().to_str().unwrap()])
        .failed("create with console socket but terminal false");
    assert!(out.stderr.contains("console"), "{out:#?}");
    assert!(!c.state_dir_exists());
}

#[test]
fn dev_console_is_the_containers_pty() {
    let mut b = Bundle::busybox();
    b.terminal(true)
        .sh("echo tty=$(tty); echo console=$(stat -c %t:%T /dev/console) slave=$(stat -c %t:%T $(tty)); sleep 1");
    let rt = Runtime::new();
    let c = rt.container(&b);
    let mut sock = ConsoleSocket::listen(Duration::from_secs(20));
    c.create_with(&["--console-socket", sock.path().to_str().unwrap()])
        .ok("create with console");
    let master = sock.master().expect("pty master received");
    c.start().ok("start");
    let out = read_master(master, "slave=", Duration::from_secs(10));
    let out = read_rest(out);
    let console = field(&out, "console=");
    let slave = field(&out, "slave=");
    assert!(field(&out, "tty=").starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(console, slave, "/dev/console is not the pty slave: {out:?}");
}

fn read_rest(out: String) -> String {
    out.replace('\r', "")
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
}
