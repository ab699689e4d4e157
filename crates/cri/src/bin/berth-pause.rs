//! berth-pause: the process that holds a CRI pod sandbox's namespaces.
//!
//! `berth-pause [--net] [--ipc] [--uts] [--hostname NAME]`: unshares the namespaces asked
//! for, sets the host name (in a new UTS namespace), brings `lo` up (in a new network
//! namespace), says `READY` on stdout and then sleeps until SIGTERM, SIGINT or SIGKILL. It
//! needs no image: it never execs anything and its root is an empty directory.

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use std::io::Write;

fn fail(msg: String) -> ! {
    println!("ERROR {msg}");
    std::process::exit(1);
}

/// `ip link set lo up` through the SIOCSIFFLAGS ioctl.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain datagram socket; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a zeroed ifreq is valid; the name fits its 16 bytes; fd is ours.
    let r = unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        r
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if r != 0 {
        return Err(err);
    }
    Ok(())
}

fn main() {
    let mut flags = CloneFlags::empty();
    let mut hostname = String::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--net" => flags |= CloneFlags::CLONE_NEWNET,
            "--ipc" => flags |= CloneFlags::CLONE_NEWIPC,
            "--uts" => flags |= CloneFlags::CLONE_NEWUTS,
            "--hostname" => hostname = it.next().unwrap_or_default(),
            other => fail(format!("unknown flag {other:?}")),
        }
    }
    if let Err(e) = unshare(flags) {
        fail(format!("unshare: {e}"));
    }
    if flags.contains(CloneFlags::CLONE_NEWUTS) && !hostname.is_empty() {
        if let Err(e) = nix::unistd::sethostname(&hostname) {
            fail(format!("sethostname {hostname:?}: {e}"));
        }
    }
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        if let Err(e) = loopback_up() {
            fail(format!("bringing lo up: {e}"));
        }
    }
    let _ = nix::unistd::setsid();
    let mut wait = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        wait.add(s);
    }
    if let Err(e) = wait.thread_block() {
        fail(format!("sigprocmask: {e}"));
    }
    // nothing of the host's file system is needed any more
    let _ = std::env::set_current_dir("/");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "READY {}", std::process::id());
    let _ = out.flush();
    // SAFETY: closing our own stdio: nothing else uses them.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
    loop {
        match wait.wait() {
            Ok(Signal::SIGHUP) => continue,
            Ok(_) => std::process::exit(0),
            Err(_) => continue,
        }
    }
}
