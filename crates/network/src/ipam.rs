//! Subnets and address pools (IPv4).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// An IPv4 subnet, always held normalised (host bits cleared). Serialises as "a.b.c.d/n".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses "172.18.0.0/16" (host bits are cleared: "172.18.0.1/16" is 172.18.0.0/16);
    /// a bare address is a /32. Errors: `invalid subnet 'x'` style InvalidParameter.
    pub fn parse(s: &str) -> Result<Subnet> {
        let _ = s;
        todo!()
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let _ = ip;
        todo!()
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let _ = other;
        todo!()
    }
    /// the first host address (docker's default gateway): .1 of a /16
    pub fn first_host(&self) -> Ipv4Addr {
        todo!()
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        todo!()
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
impl std::str::FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        Subnet::parse(s)
    }
}
impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// docker's default address pools, in order: 172.17.0.0/16 … 172.31.0.0/16, then
/// 192.168.0.0/20, 192.168.16.0/20 … 192.168.240.0/20.
pub fn default_pools() -> Vec<Subnet> {
    todo!()
}

/// The IPv4 subnets in use on the host: every route of the main table and every address's
/// subnet (read through netlink or /proc/net/route + addresses). The default route is not
/// counted.
pub fn host_subnets() -> Result<Vec<Subnet>> {
    todo!()
}

/// The first default pool that overlaps neither `taken` (other networks of this daemon)
/// nor any subnet in use on the host. Error when all are used:
/// `could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network`.
pub fn pick_subnet(taken: &[Subnet]) -> Result<Subnet> {
    let _ = taken;
    todo!()
}

/// Holds a process-wide (all berth daemons on this host) exclusive lock while subnets are
/// picked and bridges created, so two daemons never take the same pool. Dropped = released.
pub struct HostLock {
    _file: std::fs::File,
}
/// flock on `/run/lock/berth-network.lock` (created if missing).
pub fn host_lock() -> Result<HostLock> {
    todo!()
}

/// The addresses of one network: which are taken, which comes next.
#[derive(Debug, Clone)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// `--ip-range` / `--fixed-cidr`: dynamic addresses come only from here
    pub range: Option<Subnet>,
    used: BTreeSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
}

impl Pool {
    /// The gateway is reserved; the network and broadcast addresses are never handed out.
    /// Errors if the gateway or range is outside the subnet.
    pub fn new(subnet: Subnet, gateway: Ipv4Addr, range: Option<Subnet>) -> Result<Pool> {
        let _ = (subnet, gateway, range);
        let _ = (BTreeSet::<Ipv4Addr>::new(), Option::<Ipv4Addr>::None);
        todo!()
    }
    /// Takes a given address (`--ip`, or one read back from a record at daemon start).
    /// Conflict `Address already in use` when taken; InvalidParameter
    /// `no configured subnet or ip-range contain the IP address 10.0.0.5` when outside.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<()> {
        let _ = ip;
        todo!()
    }
    /// The next free address after the last one handed out (docker's sequential order,
    /// wrapping around), from `range` if set. Conflict `no available IPv4 addresses on this network's address pools: NAME` style when full
    /// (the caller adds the network name).
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        todo!()
    }
    pub fn release(&mut self, ip: Ipv4Addr) {
        let _ = ip;
        todo!()
    }
    pub fn in_use(&self, ip: Ipv4Addr) -> bool {
        let _ = ip;
        todo!()
    }
}
