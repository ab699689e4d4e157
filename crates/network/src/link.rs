//! Bridges, veth pairs, addresses and routes through rtnetlink, synchronously.
//!
//! Work inside a container's network namespace is done on a short-lived thread that
//! `setns`es into it (or through a netlink socket opened there), so the caller's thread
//! never changes namespace.

use crate::Result;
use std::net::Ipv4Addr;
use std::path::Path;

/// A bridge as a network wants it.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    pub name: String,
    /// the gateway address given to the bridge
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u32,
}

/// Creates the bridge if it is missing, gives it `addr/prefix` (keeping no other IPv4
/// address), sets the MTU and brings it up. Idempotent: a daemon restart calls it again.
pub fn ensure_bridge(spec: &BridgeSpec) -> Result<()> {
    let _ = spec;
    todo!()
}

/// Deletes a link by name; a link that is not there is not an error.
pub fn delete_link(name: &str) -> Result<()> {
    let _ = name;
    todo!()
}

pub fn link_exists(name: &str) -> bool {
    let _ = name;
    todo!()
}

/// The first IPv4 address (and prefix) of a link, if it has one.
pub fn link_ipv4(name: &str) -> Result<Option<(Ipv4Addr, u8)>> {
    let _ = name;
    todo!()
}

/// One end of a container on a bridge.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// host side, ≤ 15 bytes (e.g. `veth` + 7 hex)
    pub host_name: String,
    /// bridge the host side joins
    pub bridge: String,
    /// the container's network namespace, e.g. `/proc/<pid>/ns/net`
    pub netns: std::path::PathBuf,
    /// name inside the container: eth0, eth1 …
    pub ifname: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// default route through this gateway (None: no default route, e.g. a second network)
    pub gateway: Option<Ipv4Addr>,
    pub mac: [u8; 6],
    pub mtu: u32,
}

/// Creates the veth pair with its peer already in the namespace, attaches the host side to
/// the bridge and brings it up; inside: renames the peer to `ifname`, sets MAC, MTU and
/// address, brings it and `lo` up, adds the default route. On failure nothing is left.
pub fn attach_veth(spec: &VethSpec) -> Result<()> {
    let _ = spec;
    todo!()
}

/// Deletes `ifname` inside a namespace (its host peer goes with it).
pub fn remove_in_netns(netns: &Path, ifname: &str) -> Result<()> {
    let _ = (netns, ifname);
    todo!()
}

/// Names of the links inside a namespace (tests, `network connect` picking eth<N>).
pub fn links_in_netns(netns: &Path) -> Result<Vec<String>> {
    let _ = netns;
    todo!()
}
