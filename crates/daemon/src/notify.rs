//! systemd's service notifications (`Type=notify`): `READY=1` once the API answers,
//! `RELOADING=1` / `READY=1` around a configuration reload, `STOPPING=1` at shutdown. The
//! socket named by `NOTIFY_SOCKET` is read once at start and taken out of the environment,
//! so no shim or container ever inherits it (systemd would take their messages as ours).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

static SOCKET: OnceLock<Option<String>> = OnceLock::new();

/// Takes `NOTIFY_SOCKET` from the environment; call first thing in `main` (one thread).
pub fn init() {
    let v = std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty());
    std::env::remove_var("NOTIFY_SOCKET");
    let _ = SOCKET.set(v);
}

/// Sends `state` (newline-separated `KEY=value` lines) to the service manager; nothing
/// without one.
pub fn notify(state: &str) {
    if let Some(Some(path)) = SOCKET.get() {
        if let Err(e) = send(path, state) {
            tracing::warn!("notifying systemd ({path}): {e}");
        }
    }
}

/// `RELOADING=1` with the monotonic time systemd (253+) wants with it.
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// One datagram to `path`: a filesystem socket, or an abstract one written `@name`.
pub fn send(path: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("berth-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("n.sock");
        let _ = std::fs::remove_file(&p);
        let rx = UnixDatagram::bind(&p).expect("bind");
        send(p.to_str().expect("utf8"), "READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("berth-notify-test-{}", std::process::id());
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let rx = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        send(&format!("@{name}"), "STOPPING=1").expect("send abstract");
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
