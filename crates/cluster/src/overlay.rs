//! Overlay networks' shared state in etcd (issue 14, point 3). Every claim is a
//! create-if-absent txn, so two hosts acting at the same moment never get the same thing:
//!
//! - `/berth/overlay/networks/<id>`: the network's record (the engine's JSON), mirrored by
//!   every host through a watch;
//! - `/berth/overlay/names/<name>` → id: a name is cluster-wide unique;
//! - `/berth/overlay/vni/<vni>` → id: one VXLAN VNI per network, from 4096 up;
//! - `/berth/overlay/subnets/<a.b.c.d-len>` → id: no two overlay networks share a subnet;
//! - `/berth/overlay/ipam/<id>/<ip>` → `<container id> <host>`: one key per address;
//! - `/berth/overlay/endpoints/<id>/<container id>`: a running endpoint (name, aliases,
//!   address, host), attached to the host's etcd lease, read by the others' embedded DNS.
//!
//! The other hosts are the keys under `/berth/hosts/` (one per advertise address).

use crate::etcd::Client;
use crate::{Error, Result};
use berth_network::{Pool, Subnet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub const ROOT: &str = "/berth/overlay/";
pub const NETWORKS: &str = "/berth/overlay/networks/";
pub const NAMES: &str = "/berth/overlay/names/";
pub const VNIS: &str = "/berth/overlay/vni/";
pub const SUBNETS: &str = "/berth/overlay/subnets/";
pub const IPAM: &str = "/berth/overlay/ipam/";
pub const ENDPOINTS: &str = "/berth/overlay/endpoints/";
pub const HOSTS: &str = "/berth/hosts/";
/// VNIs below this are left to others (flannel.1 is VNI 1)
pub const FIRST_VNI: u32 = 4096;
pub const LAST_VNI: u32 = (1 << 24) - 1;
/// where overlay networks without `--subnet` get theirs (docker's overlay default: /24s
/// of 10.0.0.0/8)
pub const DEFAULT_POOL: &str = "10.0.0.0/8";
pub const DEFAULT_SIZE: u8 = 24;

pub fn network_key(id: &str) -> String {
    format!("{NETWORKS}{id}")
}
pub fn name_key(name: &str) -> String {
    format!("{NAMES}{name}")
}
pub fn vni_key(vni: u32) -> String {
    format!("{VNIS}{vni}")
}
pub fn subnet_key(s: &Subnet) -> String {
    format!("{SUBNETS}{}-{}", s.addr, s.prefix)
}
pub fn ipam_prefix(net: &str) -> String {
    format!("{IPAM}{net}/")
}
pub fn ipam_key(net: &str, ip: Ipv4Addr) -> String {
    format!("{IPAM}{net}/{ip}")
}
pub fn endpoints_prefix(net: &str) -> String {
    format!("{ENDPOINTS}{net}/")
}
pub fn endpoint_key(net: &str, container: &str) -> String {
    format!("{ENDPOINTS}{net}/{container}")
}

/// `/berth/overlay/endpoints/<net>/<ctr>` → (net, ctr)
pub fn parse_endpoint_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(ENDPOINTS)?;
    let (net, ctr) = rest.split_once('/')?;
    (!net.is_empty() && !ctr.is_empty()).then(|| (net.to_string(), ctr.to_string()))
}

/// `/berth/hosts/<ip>` → ip
pub fn parse_host_key(key: &str) -> Option<Ipv4Addr> {
    key.strip_prefix(HOSTS)?.parse().ok()
}

/// A running endpoint as the other hosts see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoteEndpoint {
    pub name: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(rename = "IP")]
    pub ip: Ipv4Addr,
    /// the host's advertise address
    pub host: Ipv4Addr,
}

/// The lowest VNI from `FIRST_VNI` not in `taken`.
pub fn pick_vni(taken: &BTreeSet<u32>) -> Option<u32> {
    (FIRST_VNI..=LAST_VNI).find(|v| !taken.contains(v))
}

/// Claims a name for network `id`; false when another network has it.
pub async fn claim_name(c: &Client, name: &str, id: &str) -> Result<bool> {
    c.create(&name_key(name), id.as_bytes(), 0).await
}

/// Takes a VNI for network `id` (a txn per try: a VNI lost to another host is skipped).
pub async fn alloc_vni(c: &Client, id: &str) -> Result<u32> {
    let mut lost = BTreeSet::new();
    for _ in 0..32 {
        let (kvs, _) = c.get_prefix(VNIS).await?;
        let mut taken: BTreeSet<u32> = kvs
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(VNIS)?.parse().ok())
            .collect();
        taken.extend(&lost);
        let vni = pick_vni(&taken).ok_or_else(|| Error::Conflict("no free VNI".into()))?;
        if c.create(&vni_key(vni), id.as_bytes(), 0).await? {
            return Ok(vni);
        }
        lost.insert(vni);
    }
    Err(Error::Conflict(
        "could not take a VNI (too many races)".into(),
    ))
}

/// Overlay subnets already claimed in the cluster.
pub async fn claimed_subnets(c: &Client) -> Result<Vec<Subnet>> {
    let (kvs, _) = c.get_prefix(SUBNETS).await?;
    Ok(kvs
        .iter()
        .filter_map(|kv| {
            let s = kv.key.strip_prefix(SUBNETS)?.replacen('-', "/", 1);
            Subnet::parse(&s).ok()
        })
        .collect())
}

/// Claims `s` for network `id`; false when another overlay network has it.
pub async fn claim_subnet(c: &Client, s: &Subnet, id: &str) -> Result<bool> {
    c.create(&subnet_key(s), id.as_bytes(), 0).await
}

/// Takes an address on network `net` for `owner` (`<container> <host>`): `want` if given
/// (Conflict "Address already in use" when another has it), else the first free one of
/// `pool` (the pool's own reservations, e.g. the gateway, are kept out).
pub async fn alloc_ip(
    c: &Client,
    net: &str,
    pool: &Pool,
    want: Option<Ipv4Addr>,
    owner: &str,
) -> Result<Ipv4Addr> {
    if let Some(ip) = want {
        let mut p = pool.clone();
        p.reserve(ip).map_err(|e| match e {
            berth_network::Error::InvalidParameter(m) => Error::InvalidParameter(m),
            other => Error::Conflict(other.to_string()),
        })?;
        if c.create(&ipam_key(net, ip), owner.as_bytes(), 0).await? {
            return Ok(ip);
        }
        return Err(Error::Conflict("Address already in use".into()));
    }
    let mut lost: BTreeSet<Ipv4Addr> = BTreeSet::new();
    for _ in 0..64 {
        let (kvs, _) = c.get_prefix(&ipam_prefix(net)).await?;
        let mut p = pool.clone();
        for ip in kvs
            .iter()
            .filter_map(|kv| kv.key.rsplit('/').next()?.parse::<Ipv4Addr>().ok())
            .chain(lost.iter().copied())
        {
            let _ = p.reserve(ip);
        }
        let ip = p.allocate().map_err(|e| Error::Conflict(e.to_string()))?;
        if c.create(&ipam_key(net, ip), owner.as_bytes(), 0).await? {
            return Ok(ip);
        }
        // another host took it between the read and the txn
        lost.insert(ip);
    }
    Err(Error::Conflict(
        "could not take an address (too many races)".into(),
    ))
}

/// Gives an address back, if `owner` still holds it.
pub async fn release_ip(c: &Client, net: &str, ip: Ipv4Addr, owner: &str) -> Result<()> {
    if let Some(kv) = c.get(&ipam_key(net, ip)).await? {
        if kv.value == owner.as_bytes() {
            c.delete_if(&kv.key, kv.mod_revision).await?;
        }
    }
    Ok(())
}

/// Removes everything of network `id` (its record last but one: the watchers see the record
/// go; claims follow so that nobody takes the name before the record is gone).
pub async fn remove_network(
    c: &Client,
    id: &str,
    name: &str,
    vni: u32,
    subnet: Option<&Subnet>,
) -> Result<()> {
    c.delete(&network_key(id)).await?;
    if let Some(kv) = c.get(&name_key(name)).await? {
        if kv.value == id.as_bytes() {
            c.delete_if(&kv.key, kv.mod_revision).await?;
        }
    }
    if vni != 0 {
        c.delete(&vni_key(vni)).await?;
    }
    if let Some(s) = subnet {
        c.delete(&subnet_key(s)).await?;
    }
    delete_prefix(c, &ipam_prefix(id)).await?;
    delete_prefix(c, &endpoints_prefix(id)).await?;
    Ok(())
}

async fn delete_prefix(c: &Client, prefix: &str) -> Result<()> {
    let (kvs, _) = c.get_prefix(prefix).await?;
    for kv in kvs {
        c.delete(&kv.key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            parse_endpoint_key(&endpoint_key("n1", "c1")),
            Some(("n1".into(), "c1".into()))
        );
        assert_eq!(parse_endpoint_key("/berth/overlay/endpoints/n1/"), None);
        assert_eq!(
            parse_host_key("/berth/hosts/10.99.0.2"),
            Some(Ipv4Addr::new(10, 99, 0, 2))
        );
        assert_eq!(
            subnet_key(&Subnet::parse("10.0.3.0/24").unwrap()),
            "/berth/overlay/subnets/10.0.3.0-24"
        );
    }

    #[test]
    fn vnis_start_at_4096() {
        assert_eq!(pick_vni(&BTreeSet::new()), Some(4096));
        let t: BTreeSet<u32> = [4096, 4097, 4099].into_iter().collect();
        assert_eq!(pick_vni(&t), Some(4098));
    }

    #[test]
    fn remote_endpoints_as_json() {
        let e = RemoteEndpoint {
            name: "web".into(),
            hostname: "abc".into(),
            aliases: vec!["www".into()],
            ip: Ipv4Addr::new(10, 0, 0, 2),
            host: Ipv4Addr::new(10, 99, 0, 1),
        };
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["IP"], "10.0.0.2");
        assert_eq!(j["Aliases"][0], "www");
        let back: RemoteEndpoint = serde_json::from_value(j).unwrap();
        assert_eq!(back, e);
    }
}
