//! Host ports reserved while a container publishes them: a socket bound (not listening) to
//! host_ip:port keeps any other process, and any other container, from taking it.

use crate::nat::Proto;
use crate::{Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
    _fd: std::os::fd::OwnedFd,
}

fn in_use(ip: Ipv4Addr, port: impl std::fmt::Display) -> Error {
    Error::Conflict(format!(
        "Bind for {ip}:{port} failed: port is already allocated"
    ))
}

/// Reserves `port` (0: one the kernel picks from its ephemeral range) on `host_ip`
/// (None: 0.0.0.0). A port in use: Conflict with docker's text
/// `Bind for 0.0.0.0:8080 failed: port is already allocated`.
///
/// TCP binds with `SO_REUSEADDR` (so a port whose old connections sit in TIME_WAIT can be
/// taken again) and clears it once bound: Linux lets two non-listening sockets that both
/// have `SO_REUSEADDR` share a port, and a reservation must keep every later binder out.
pub fn reserve(proto: Proto, host_ip: Option<Ipv4Addr>, port: u16) -> Result<Reservation> {
    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(std::io::Error::from)?;
    if proto == Proto::Tcp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(std::io::Error::from)?;
    }
    let addr = SockaddrIn::from(SocketAddrV4::new(ip, port));
    match socket::bind(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => return Err(in_use(ip, port)),
        Err(Errno::EADDRNOTAVAIL) => {
            return Err(Error::InvalidParameter(format!(
                "Bind for {ip}:{port} failed: cannot assign requested address"
            )))
        }
        Err(e) => {
            return Err(Error::Io(std::io::Error::other(format!(
                "Bind for {ip}:{port} failed: {e}"
            ))))
        }
    }
    if proto == Proto::Tcp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &false).map_err(std::io::Error::from)?;
    }
    let port = if port == 0 {
        let bound: SockaddrIn =
            socket::getsockname(fd.as_raw_fd()).map_err(std::io::Error::from)?;
        bound.port()
    } else {
        port
    };
    tracing::debug!(proto = proto.as_str(), %ip, port, "port reserved");
    Ok(Reservation {
        proto,
        host_ip,
        port,
        _fd: fd,
    })
}

/// The first free port of `start..=end` (`-p 8000-8010:80`), same errors.
pub fn reserve_in_range(
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    start: u16,
    end: u16,
) -> Result<Reservation> {
    if start == 0 || start > end {
        return Err(Error::InvalidParameter(format!(
            "invalid port range {start}-{end}"
        )));
    }
    for port in start..=end {
        match reserve(proto, host_ip, port) {
            Err(Error::Conflict(_)) => continue,
            other => return other,
        }
    }
    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    if start == end {
        Err(in_use(ip, start))
    } else {
        Err(in_use(ip, format!("{start}-{end}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: Option<Ipv4Addr> = Some(Ipv4Addr::LOCALHOST);

    /// Reserves a fresh port, drops it and takes it again; other processes on the host may
    /// grab a freed port in between, so a few tries are allowed.
    fn freed_port_can_be_taken_again(proto: Proto) -> bool {
        (0..5).any(|_| {
            let Ok(a) = reserve(proto, LO, 0) else {
                return false;
            };
            let port = a.port;
            drop(a);
            reserve(proto, LO, port).is_ok_and(|b| b.port == port)
        })
    }

    #[test]
    fn second_reservation_of_a_port_conflicts() {
        for proto in [Proto::Tcp, Proto::Udp] {
            let a = reserve(proto, LO, 0).unwrap();
            assert_ne!(a.port, 0);
            let err = reserve(proto, LO, a.port).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "Bind for 127.0.0.1:{} failed: port is already allocated",
                    a.port
                )
            );
            assert!(matches!(err, Error::Conflict(_)));
            // 0.0.0.0 covers 127.0.0.1
            let err = reserve(proto, None, a.port).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "Bind for 0.0.0.0:{} failed: port is already allocated",
                    a.port
                )
            );
            assert!(freed_port_can_be_taken_again(proto));
        }
    }

    #[test]
    fn a_listener_blocks_a_reservation_and_a_reservation_blocks_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(matches!(
            reserve(Proto::Tcp, LO, port),
            Err(Error::Conflict(_))
        ));
        let r = reserve(Proto::Tcp, LO, 0).unwrap();
        // std's listener sets SO_REUSEADDR too: the reservation must still keep it out
        assert!(std::net::TcpListener::bind(("127.0.0.1", r.port)).is_err());
        let u = reserve(Proto::Udp, LO, 0).unwrap();
        assert!(std::net::UdpSocket::bind(("127.0.0.1", u.port)).is_err());
    }

    #[test]
    fn range_skips_taken_ports() {
        let a = reserve(Proto::Tcp, LO, 0).unwrap();
        let p = a.port;
        if p == u16::MAX {
            return;
        }
        let r = reserve_in_range(Proto::Tcp, LO, p, p + 1);
        match r {
            Ok(b) => assert_eq!(b.port, p + 1),
            Err(e) => assert!(matches!(e, Error::Conflict(_)), "{e}"),
        }
        let e = reserve_in_range(Proto::Tcp, LO, p, p).unwrap_err();
        assert!(e.to_string().contains("port is already allocated"));
        assert!(matches!(
            reserve_in_range(Proto::Tcp, LO, 10, 9),
            Err(Error::InvalidParameter(_))
        ));
    }

    #[test]
    fn not_a_local_address() {
        // 198.18.0.0/15 is the benchmark range: never on this host's interfaces
        let e = reserve(Proto::Tcp, Some(Ipv4Addr::new(198, 18, 255, 254)), 0).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter(_)), "{e}");
    }
}
