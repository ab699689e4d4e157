//! berth-shim: one per container. Double-forks away from the daemon, asks berth-runtime to
//! create the container, holds its stdio, writes the json-file log, serves the shim protocol
//! (docs/ARCHITECTURE.md, "The shim protocol") on a unix socket, reaps, records the exit.

mod args;
mod jsonlog;
mod server;
mod stdio;

use std::io::Write;

/// write(2) all of `buf` to a raw fd (used for the READY/ERROR line on the daemon's pipe).
pub(crate) fn stdio_write(fd: i32, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn fail(msg: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ERROR {}", msg.replace('\n', " "));
    let _ = out.flush();
    std::process::exit(1)
}

fn main() {
    // Only stdio may come from the daemon: a descriptor it leaked would otherwise reach every
    // process the shim forks into the container.
    // SAFETY: nothing is open yet besides what we inherited; plain syscall.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => fail(&e),
    };
    let config = args.bundle.join("config.json");
    let spec: oci_spec::runtime::Spec = match std::fs::read(&config)
        .map_err(|e| format!("read {}: {e}", config.display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("invalid spec: {e}")))
    {
        Ok(s) => s,
        Err(e) => fail(&e),
    };

    // SAFETY: single-threaded; fork/setsid/_exit/waitpid are used as in any daemonizer.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            fail(&format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid > 0 {
            let mut st = 0;
            while libc::waitpid(pid, &mut st, 0) < 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            std::process::exit(0);
        }
        libc::setsid();
        let pid = libc::fork();
        if pid < 0 {
            fail(&format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid > 0 {
            libc::_exit(0);
        }
    }
    std::process::exit(server::run(args, spec))
}
