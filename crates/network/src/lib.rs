//! berth-network: what a container's networking is made of on this host.
//!
//! - `ipam`: subnets, docker's default address pools, per-network address pools.
//! - `link`: bridges, veth pairs, addresses and routes through rtnetlink (synchronous; a
//!   namespace is entered on a short-lived thread, never on the caller's).
//! - `nat`: the daemon's nftables table (masquerade, isolation, published ports), rendered
//!   whole from a description and applied in one atomic `nft -f -` transaction.
//! - `ports`: host ports held by bound sockets while a container publishes them.
//! - `dns`: the embedded DNS server a container on a user network reaches at 127.0.0.11.
//! - `sysctl`: the few kernel switches the data plane needs.
//!
//! The crate keeps no state on disk: the engine owns network records and endpoints, and
//! asks this crate to make the kernel match them. A container's network namespace is named
//! by a path (`/proc/<pid>/ns/net` of its init), so the kernel removes its veth when the
//! container dies.

pub mod dns;
pub mod ipam;
pub mod ipam6;
pub mod link;
pub mod nat;
pub mod overlay;
pub mod ports;
pub mod proxy;
pub mod sysctl;
pub mod vxlan;

pub use ipam::{Pool, Subnet};
pub use ipam6::{Pool6, Subnet6};

/// Errors of the network layer; the engine maps them to API errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// bad subnet, address outside its subnet, bad port spec (400)
    #[error("{0}")]
    InvalidParameter(String),
    /// address or port taken, pools exhausted, overlapping subnet (409 in docker's texts)
    #[error("{0}")]
    Conflict(String),
    /// a link or namespace that is not there
    #[error("{0}")]
    NotFound(String),
    /// the kernel refused a netlink request
    #[error("netlink: {0}")]
    Netlink(String),
    /// `nft` failed (its stderr)
    #[error("nftables: {0}")]
    Nft(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
pub type Result<T> = std::result::Result<T, Error>;

/// docker's MAC for an address: 02:42 followed by the four bytes of the IPv4 address.
pub fn mac_for(ip: std::net::Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `02:42:ac:11:00:02`
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
