//! IPv6 subnets and address pools (networks created with `--ipv6`).
//!
//! Addresses are handed out in order from the subnet's start (the gateway is `::1` unless
//! given), as docker's default IPAM does for user networks.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv6Addr;

/// An IPv6 subnet, held with the host bits cleared. Serialises as "fd00:1::/64".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

fn mask6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

impl Subnet6 {
    /// Parses "fd00:1::/64" (host bits cleared). Errors: `invalid CIDR address: x`.
    pub fn parse(s: &str) -> Result<Subnet6> {
        let bad = || Error::InvalidParameter(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        Ok(Subnet6::new(addr, prefix))
    }
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Subnet6 {
        let prefix = prefix.min(128);
        Subnet6 {
            addr: Ipv6Addr::from(u128::from(addr) & mask6(prefix)),
            prefix,
        }
    }
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask6(self.prefix) == u128::from(self.addr)
    }
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = mask6(self.prefix.min(other.prefix));
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }
    /// `::1` of the subnet (docker's default gateway)
    pub fn first_host(&self) -> Ipv6Addr {
        if self.prefix >= 127 {
            self.addr
        } else {
            Ipv6Addr::from(u128::from(self.addr) + 1)
        }
    }
    fn last(&self) -> u128 {
        u128::from(self.addr) | !mask6(self.prefix)
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
impl Serialize for Subnet6 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Subnet6 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet6::parse(&s).map_err(serde::de::Error::custom)
    }
}

const NO_ADDRESSES6: &str = "no available IPv6 addresses on this network's address pools";

/// The IPv6 addresses of one network.
#[derive(Debug, Clone)]
pub struct Pool6 {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    /// `--ip-range` / `--fixed-cidr-v6`: dynamic addresses come only from here
    pub range: Option<Subnet6>,
    used: BTreeSet<u128>,
    last: Option<u128>,
}

impl Pool6 {
    /// The gateway is reserved; the subnet's own address (`::`) is never handed out.
    pub fn new(subnet: Subnet6, gateway: Ipv6Addr, range: Option<Subnet6>) -> Result<Pool6> {
        if !subnet.contains(gateway) {
            return Err(Error::InvalidParameter(format!(
                "no matching subnet for gateway {gateway}"
            )));
        }
        if let Some(r) = range {
            if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
                return Err(Error::InvalidParameter(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        let mut used = BTreeSet::new();
        used.insert(u128::from(gateway));
        Ok(Pool6 {
            subnet,
            gateway,
            range,
            used,
            last: None,
        })
    }
    /// Takes a given address (`--ip6`, or one read back at daemon start).
    pub fn reserve(&mut self, ip: Ipv6Addr) -> Result<()> {
        if !self.subnet.contains(ip) {
            return Err(Error::InvalidParameter(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        if ip == self.subnet.addr || !self.used.insert(u128::from(ip)) {
            return Err(Error::Conflict("Address already in use".into()));
        }
        Ok(())
    }
    /// The next free address after the last one handed out, from `range` if set.
    pub fn allocate(&mut self) -> Result<Ipv6Addr> {
        let r = self.range.unwrap_or(self.subnet);
        let lo = u128::from(r.addr).max(u128::from(self.subnet.addr) + 1);
        let hi = r.last();
        if lo > hi {
            return Err(Error::Conflict(NO_ADDRESSES6.into()));
        }
        let start = match self.last {
            Some(l) if l >= lo && l < hi => l + 1,
            _ => lo,
        };
        let found = self.first_free(start, hi).or_else(|| {
            (start > lo)
                .then(|| self.first_free(lo, start - 1))
                .flatten()
        });
        match found {
            Some(ip) => {
                self.used.insert(ip);
                self.last = Some(ip);
                Ok(Ipv6Addr::from(ip))
            }
            None => Err(Error::Conflict(NO_ADDRESSES6.into())),
        }
    }
    fn first_free(&self, from: u128, to: u128) -> Option<u128> {
        let mut want = from;
        for ip in self.used.range(from..=to) {
            if *ip != want {
                break;
            }
            if want == to {
                return None;
            }
            want += 1;
        }
        Some(want)
    }
    pub fn release(&mut self, ip: Ipv6Addr) {
        if ip != self.gateway {
            self.used.remove(&u128::from(ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_print() {
        let s = Subnet6::parse("fd00:12:34::5/64").unwrap();
        assert_eq!(s.to_string(), "fd00:12:34::/64");
        assert!(s.contains("fd00:12:34::99".parse().unwrap()));
        assert!(!s.contains("fd00:12:35::1".parse().unwrap()));
        assert_eq!(s.first_host(), "fd00:12:34::1".parse::<Ipv6Addr>().unwrap());
        for bad in ["fd00::", "fd00::/129", "x/64", "fd00::/", "10.0.0.0/8"] {
            assert!(Subnet6::parse(bad).is_err(), "{bad}");
        }
        assert!(s.overlaps(&Subnet6::parse("fd00:12::/32").unwrap()));
        assert!(!s.overlaps(&Subnet6::parse("fd00:13::/32").unwrap()));
    }

    #[test]
    fn pool_hands_out_in_order() {
        let s = Subnet6::parse("fd00:1::/64").unwrap();
        let mut p = Pool6::new(s, s.first_host(), None).unwrap();
        assert_eq!(p.allocate().unwrap().to_string(), "fd00:1::2");
        p.reserve("fd00:1::3".parse().unwrap()).unwrap();
        assert_eq!(p.allocate().unwrap().to_string(), "fd00:1::4");
        assert!(p.reserve("fd00:1::1".parse().unwrap()).is_err());
        assert!(p.reserve("fd00:2::1".parse().unwrap()).is_err());
        p.release("fd00:1::2".parse().unwrap());
        assert_eq!(p.allocate().unwrap().to_string(), "fd00:1::5");
        let tiny = Subnet6::parse("fd00:1::/126").unwrap();
        let mut t = Pool6::new(tiny, tiny.first_host(), None).unwrap();
        t.allocate().unwrap();
        t.allocate().unwrap();
        assert!(t.allocate().is_err());
    }
}
