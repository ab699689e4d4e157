//! berth-pause: the process that holds a CRI pod sandbox's namespaces.
//!
//! `berth-pause [--net] [--ipc] [--uts] [--pid] [--hostname NAME] [--pod-dir DIR]`: unshares the namespaces
//! asked for, sets the host name (in a new UTS namespace), brings `lo` up (in a new network
//! namespace), says `READY <pid>` on stdout and then sleeps until SIGTERM, SIGINT or SIGKILL.
//! With `--pid` it forks into a new PID namespace: the child is that namespace's PID 1 (it
//! reaps the orphans of the pod's processes) and the pid said is the child's. It needs no
//! image: it never execs anything.

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
    let mut pid_ns = false;
    let mut hostname = String::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--net" => flags |= CloneFlags::CLONE_NEWNET,
            "--ipc" => flags |= CloneFlags::CLONE_NEWIPC,
            "--uts" => flags |= CloneFlags::CLONE_NEWUTS,
            "--pid" => pid_ns = true,
            "--hostname" => hostname = it.next().unwrap_or_default(),
            // the pod's directory: only to name the process (`ps`, clean-ups match it)
            "--pod-dir" => {
                let _ = it.next();
            }
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
    let mut wait = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        wait.add(s);
    }
    if let Err(e) = wait.thread_block() {
        fail(format!("sigprocmask: {e}"));
    }
    let mut out = std::io::stdout();
    if pid_ns {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
            fail(format!("unshare pid: {e}"));
        }
        // SAFETY: single-threaded here; the child only makes async-signal-safe calls and
        // plain Rust without allocation locks held by other threads (there are none).
        match unsafe { nix::unistd::fork() } {
            Err(e) => fail(format!("fork: {e}")),
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let _ = writeln!(out, "READY {child}");
                let _ = out.flush();
                std::process::exit(0);
            }
            Ok(nix::unistd::ForkResult::Child) => {}
        }
    } else {
        let _ = writeln!(out, "READY {}", std::process::id());
        let _ = out.flush();
    }
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    // SAFETY: closing our own stdio: nothing else uses them.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
    loop {
        match wait.wait() {
            Ok(Signal::SIGCHLD) => {
                // PID 1 of the pod: reap whatever was orphaned to us
                while let Ok(s) = nix::sys::wait::waitpid(
                    nix::unistd::Pid::from_raw(-1),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                ) {
                    if s == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(Signal::SIGHUP) => continue,
            Ok(_) => std::process::exit(0),
            Err(_) => continue,
        }
    }
}
