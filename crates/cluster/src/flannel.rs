//! flannel's picture in etcd, so a flanneld could share the cluster:
//!
//! - `/coreos.com/network/config`: `{"Network":"10.250.0.0/16","SubnetLen":24,
//!   "Backend":{"Type":"vxlan","VNI":1}}` — the cluster-wide range, written once;
//! - `/coreos.com/network/subnets/10.250.3.0-24`: one host's lease, attached to an etcd lease
//!   (TTL), holding `{"PublicIP":"10.99.0.1","BackendType":"vxlan",
//!   "BackendData":{"VtepMAC":"…"}}`.
//!
//! Like flanneld, the first subnet of the range (the one holding the network address) is
//! never leased.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub const PREFIX: &str = "/coreos.com/network";
pub const CONFIG_KEY: &str = "/coreos.com/network/config";
pub const SUBNETS: &str = "/coreos.com/network/subnets/";
/// VXLAN's overhead on an IPv4 underlay (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)
pub const VXLAN_OVERHEAD: u32 = 50;
/// the UDP port flannel's vxlan backend uses (the Linux default, not IANA's 4789)
pub const VXLAN_PORT: u16 = 8472;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "VNI", default = "one")]
    pub vni: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    #[serde(rename = "Network")]
    pub network: String,
    #[serde(rename = "SubnetLen", default)]
    pub subnet_len: u8,
    #[serde(rename = "Backend")]
    pub backend: Backend,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            network: "10.250.0.0/16".into(),
            subnet_len: 24,
            backend: Backend {
                kind: "vxlan".into(),
                vni: 1,
            },
        }
    }
}

/// `a.b.c.d/n` → (network address, prefix length), the host bits cleared.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::InvalidParameter(format!("invalid IPv4 subnet {s:?}"));
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let p: u8 = p.parse().map_err(|_| bad())?;
    if p > 32 {
        return Err(bad());
    }
    Ok((Ipv4Addr::from(u32::from(a) & mask(p)), p))
}

fn mask(p: u8) -> u32 {
    if p == 0 {
        0
    } else {
        u32::MAX << (32 - p)
    }
}

impl NetworkConfig {
    /// Parses and checks a stored config (flannel's defaults for missing fields).
    pub fn parse(data: &[u8]) -> Result<NetworkConfig> {
        let mut c: NetworkConfig = serde_json::from_slice(data)
            .map_err(|e| Error::InvalidParameter(format!("bad network config in etcd: {e}")))?;
        let (_, p) = parse_cidr(&c.network)?;
        if c.subnet_len == 0 {
            c.subnet_len = if p <= 16 { 24 } else { p + 2 }.min(30);
        }
        if c.subnet_len <= p || c.subnet_len > 30 {
            return Err(Error::InvalidParameter(format!(
                "network config: SubnetLen {} does not fit in {}",
                c.subnet_len, c.network
            )));
        }
        if c.backend.kind != "vxlan" {
            return Err(Error::InvalidParameter(format!(
                "network config: backend {:?} is not supported (only vxlan)",
                c.backend.kind
            )));
        }
        Ok(c)
    }

    /// Every subnet that may be leased, in order (the first one is skipped, as flannel does).
    pub fn subnets(&self) -> Result<Vec<Ipv4Addr>> {
        let (net, p) = parse_cidr(&self.network)?;
        let count = 1u64 << (self.subnet_len - p);
        let step = 1u64 << (32 - self.subnet_len);
        Ok((1..count)
            .map(|i| Ipv4Addr::from((u64::from(u32::from(net)) + i * step) as u32))
            .collect())
    }

    /// The first subnet not in `taken`, starting at `start` (hosts start at different places
    /// so that they rarely race for the same one; the txn settles races anyway).
    pub fn pick(&self, taken: &BTreeSet<Ipv4Addr>, start: usize) -> Result<Ipv4Addr> {
        let all = self.subnets()?;
        let n = all.len();
        (0..n)
            .map(|i| all[(start + i) % n])
            .find(|s| !taken.contains(s))
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "no free subnet left in cluster network {}",
                    self.network
                ))
            })
    }
}

/// `/coreos.com/network/subnets/10.250.3.0-24`
pub fn subnet_key(net: Ipv4Addr, len: u8) -> String {
    format!("{SUBNETS}{net}-{len}")
}

/// The subnet a lease key names.
pub fn parse_subnet_key(key: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = key.strip_prefix(SUBNETS)?.split_once('-')?;
    Some((a.parse().ok()?, l.parse().ok().filter(|l| *l <= 32)?))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendData {
    #[serde(rename = "VtepMAC")]
    pub vtep_mac: String,
}

/// A host's lease document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetLease {
    #[serde(rename = "PublicIP")]
    pub public_ip: Ipv4Addr,
    #[serde(rename = "BackendType")]
    pub backend_type: String,
    #[serde(rename = "BackendData")]
    pub backend_data: BackendData,
}

impl SubnetLease {
    pub fn vxlan(public_ip: Ipv4Addr, mac: &[u8; 6]) -> SubnetLease {
        SubnetLease {
            public_ip,
            backend_type: "vxlan".into(),
            backend_data: BackendData {
                vtep_mac: format_mac(mac),
            },
        }
    }

    pub fn parse(data: &[u8]) -> Result<SubnetLease> {
        serde_json::from_slice(data)
            .map_err(|e| Error::InvalidParameter(format!("bad subnet lease: {e}")))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The VTEP's MAC.
    pub fn mac(&self) -> Option<[u8; 6]> {
        parse_mac(&self.backend_data.vtep_mac)
    }
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_matches_flannels_json() {
        let c = NetworkConfig::default();
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"Network":"10.250.0.0/16","SubnetLen":24,
                               "Backend":{"Type":"vxlan","VNI":1}})
        );
        assert_eq!(
            NetworkConfig::parse(&serde_json::to_vec(&c).unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = NetworkConfig::parse(br#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}"#)
            .unwrap();
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.backend.vni, 1);
        assert!(NetworkConfig::parse(
            br#"{"Network":"10.1.0.0/16","SubnetLen":8,"Backend":{"Type":"vxlan"}}"#
        )
        .is_err());
        assert!(
            NetworkConfig::parse(br#"{"Network":"10.1.0.0/16","Backend":{"Type":"udp"}}"#).is_err()
        );
        assert!(NetworkConfig::parse(br#"{"Network":"nope","Backend":{"Type":"vxlan"}}"#).is_err());
        assert!(NetworkConfig::parse(b"not json").is_err());
    }

    #[test]
    fn subnets_skip_the_first_and_pick_around_taken_ones() {
        let c = NetworkConfig {
            network: "10.250.0.0/22".into(),
            subnet_len: 24,
            ..Default::default()
        };
        let s = c.subnets().unwrap();
        assert_eq!(
            s,
            vec![
                Ipv4Addr::new(10, 250, 1, 0),
                Ipv4Addr::new(10, 250, 2, 0),
                Ipv4Addr::new(10, 250, 3, 0)
            ]
        );
        let mut taken = BTreeSet::new();
        taken.insert(Ipv4Addr::new(10, 250, 2, 0));
        assert_eq!(c.pick(&taken, 1).unwrap(), Ipv4Addr::new(10, 250, 3, 0));
        assert_eq!(c.pick(&taken, 2).unwrap(), Ipv4Addr::new(10, 250, 3, 0));
        assert_eq!(c.pick(&taken, 0).unwrap(), Ipv4Addr::new(10, 250, 1, 0));
        taken.extend(s);
        assert!(matches!(c.pick(&taken, 0), Err(Error::Conflict(_))));
    }

    #[test]
    fn lease_keys_and_documents() {
        let k = subnet_key(Ipv4Addr::new(10, 250, 3, 0), 24);
        assert_eq!(k, "/coreos.com/network/subnets/10.250.3.0-24");
        assert_eq!(
            parse_subnet_key(&k),
            Some((Ipv4Addr::new(10, 250, 3, 0), 24))
        );
        assert_eq!(parse_subnet_key("/coreos.com/network/config"), None);
        assert_eq!(parse_subnet_key("/coreos.com/network/subnets/x-24"), None);

        let l = SubnetLease::vxlan(Ipv4Addr::new(10, 99, 0, 1), &[0x0e, 1, 2, 3, 4, 0xff]);
        let j: serde_json::Value = serde_json::from_slice(&l.to_json()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"PublicIP":"10.99.0.1","BackendType":"vxlan",
                               "BackendData":{"VtepMAC":"0e:01:02:03:04:ff"}})
        );
        assert_eq!(SubnetLease::parse(&l.to_json()).unwrap(), l);
        assert_eq!(l.mac(), Some([0x0e, 1, 2, 3, 4, 0xff]));
        assert_eq!(parse_mac("0e:01:02"), None);
        assert_eq!(parse_mac("0e:01:02:03:04:05:06"), None);
    }
}
