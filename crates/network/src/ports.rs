//! Host ports reserved while a container publishes them: a socket bound (not listening) to
//! host_ip:port keeps any other process, and any other container, from taking it.

use crate::nat::Proto;
use crate::Result;
use std::net::Ipv4Addr;

/// Dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
    _fd: std::os::fd::OwnedFd,
}

/// Reserves `port` (0: one the kernel picks from its ephemeral range) on `host_ip`
/// (None: 0.0.0.0). A port in use: Conflict with docker's text
/// `Bind for 0.0.0.0:8080 failed: port is already allocated`.
pub fn reserve(proto: Proto, host_ip: Option<Ipv4Addr>, port: u16) -> Result<Reservation> {
    let _ = (proto, host_ip, port);
    todo!()
}

/// The first free port of `start..=end` (`-p 8000-8010:80`), same errors.
pub fn reserve_in_range(
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    start: u16,
    end: u16,
) -> Result<Reservation> {
    let _ = (proto, host_ip, start, end);
    todo!()
}
