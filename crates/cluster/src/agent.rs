//! A host joining the cluster: its subnet lease (taken with a create-if-absent txn, attached
//! to an etcd lease renewed by keepalive), its VXLAN device, and the other hosts' leases
//! followed through a watch and turned into routes, neighbours and FDB entries.

use crate::etcd::{Client, Event, Kv};
use crate::flannel::{self, NetworkConfig, SubnetLease};
use crate::{Error, Result};
use berth_network::vxlan::{self, Peer, VtepSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The VXLAN device's name (flannel's, VNI 1).
pub const VTEP: &str = "flannel.1";

#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// `etcd://host:port[,…]`
    pub store: String,
    /// an IPv4 address of this host, or an interface name
    pub advertise: String,
    /// seconds a lease lives without renewal
    pub ttl: i64,
    /// this daemon's identity (kept in its data root): tells a restart of this host from
    /// another host advertising the same address
    pub host_id: String,
    /// the subnet this host had last time (its containers still use it): taken again when
    /// it is free
    pub prefer: Option<Ipv4Addr>,
}

/// `/berth/hosts/<PublicIP>`: which daemon holds an advertise address (attached to the same
/// etcd lease as the subnet, so both expire together). Outside flannel's prefix.
pub fn host_key(ip: Ipv4Addr) -> String {
    format!("/berth/hosts/{ip}")
}

/// What the host got.
#[derive(Debug, Clone)]
pub struct Joined {
    pub client: Client,
    pub config: NetworkConfig,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub public_ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub lease_id: i64,
    pub ttl: i64,
    /// the underlay's MTU less VXLAN's overhead
    pub mtu: u32,
    pub host_id: String,
    /// the interface holding `public_ip`
    pub underlay: u32,
    /// the etcd lease in force (`lease_id` at first; a new one after it expired while
    /// etcd was away): keys that live with this host go on it
    pub lease: Arc<AtomicI64>,
}

impl Joined {
    /// The default bridge's address, as `--bip` takes it (the subnet's .1).
    pub fn bip(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(u32::from(self.subnet) + 1),
            self.prefix
        )
    }

    pub fn key(&self) -> String {
        flannel::subnet_key(self.subnet, self.prefix)
    }

    /// A line for `info`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} (PublicIP {}, VtepMAC {}, lease {:x}, TTL {}s)",
            self.subnet,
            self.prefix,
            self.public_ip,
            flannel::format_mac(&self.mac),
            self.lease_id,
            self.ttl
        )
    }

    fn document(&self) -> Vec<u8> {
        SubnetLease::vxlan(self.public_ip, &self.mac).to_json()
    }
}

/// Reads the cluster's network config, writing flannel's default if there is none.
async fn network_config(c: &Client) -> Result<NetworkConfig> {
    if c.get(flannel::CONFIG_KEY).await?.is_none() {
        let def = serde_json::to_vec(&NetworkConfig::default()).unwrap_or_default();
        c.create(flannel::CONFIG_KEY, &def, 0).await?;
    }
    let kv = c
        .get(flannel::CONFIG_KEY)
        .await?
        .ok_or_else(|| Error::Etcd("network config vanished".into()))?;
    NetworkConfig::parse(&kv.value)
}

/// Joins: config, VTEP, lease. Fails (clearly, within seconds) when etcd is unreachable or
/// another host already advertises this address.
pub async fn join(cfg: &JoinConfig) -> Result<Joined> {
    let client = Client::new(&cfg.store)?;
    let (public_ip, underlay, under_mtu) = vxlan::resolve_advertise(&cfg.advertise)
        .map_err(|e| Error::InvalidParameter(e.to_string()))?;
    let config = network_config(&client).await?;
    let prefix = config.subnet_len;
    let mtu = under_mtu.saturating_sub(flannel::VXLAN_OVERHEAD);

    let (leases, _) = client.get_prefix(flannel::SUBNETS).await?;
    let holder = client.get(&host_key(public_ip)).await?;
    let is_us = holder.as_ref().map(|kv| kv.value.as_slice()) == Some(cfg.host_id.as_bytes());
    let mut taken = BTreeSet::new();
    let mut mine = None;
    for kv in &leases {
        let Some((net, _)) = flannel::parse_subnet_key(&kv.key) else {
            continue;
        };
        taken.insert(net);
        if let Ok(l) = SubnetLease::parse(&kv.value) {
            if l.public_ip == public_ip {
                // ours from an earlier run (its lease not expired yet), or another host's
                if is_us {
                    mine = Some((net, kv.clone()));
                } else {
                    return Err(Error::Conflict(format!(
                        "cluster-advertise {public_ip} is already used by another host (lease {})",
                        kv.key
                    )));
                }
            }
        }
    }

    if holder.is_some() && !is_us {
        return Err(Error::Conflict(format!(
            "cluster-advertise {public_ip} is already used by another host"
        )));
    }
    let ttl = cfg.ttl.max(1);
    let lease_id = client.grant(ttl).await?;
    // claim the address (a txn: of two hosts starting together with one address, one wins)
    if let Some(kv) = &holder {
        let _ = client.delete_if(&kv.key, kv.mod_revision).await?;
    }
    if !client
        .create(&host_key(public_ip), cfg.host_id.as_bytes(), lease_id)
        .await?
    {
        let _ = client.revoke(lease_id).await;
        return Err(Error::Conflict(format!(
            "cluster-advertise {public_ip} is already used by another host"
        )));
    }
    let mut joined = Joined {
        client: client.clone(),
        config: config.clone(),
        subnet: Ipv4Addr::UNSPECIFIED,
        prefix,
        public_ip,
        mac: [0; 6],
        lease_id,
        ttl,
        mtu,
        host_id: cfg.host_id.clone(),
        underlay,
        lease: Arc::new(AtomicI64::new(lease_id)),
    };

    // the subnet: our old one again, else the first free one from a place of our own
    let subnet = match mine {
        Some((net, kv)) => {
            // re-attach the old key to the new lease (the old lease may still be alive)
            joined.subnet = net;
            let _ = client.delete_if(&kv.key, kv.mod_revision).await?;
            net
        }
        None if cfg.prefer.is_some_and(|p| {
            !taken.contains(&p) && config.subnets().is_ok_and(|a| a.contains(&p))
        }) =>
        {
            cfg.prefer.unwrap_or(Ipv4Addr::UNSPECIFIED)
        }
        None => {
            let all = config.subnets()?;
            let start = (u32::from(public_ip) as usize).wrapping_mul(2654435761) % all.len().max(1);
            config.pick(&taken, start)?
        }
    };
    let mut subnet = subnet;
    loop {
        joined.subnet = subnet;
        joined.mac = vxlan::ensure_vtep(&VtepSpec {
            name: VTEP.into(),
            vni: config.backend.vni,
            local: public_ip,
            underlay,
            port: flannel::VXLAN_PORT,
            mtu,
            addr: subnet,
        })
        .map_err(|e| Error::Etcd(format!("VXLAN device: {e}")))?;
        if client
            .create(&joined.key(), &joined.document(), lease_id)
            .await?
        {
            break;
        }
        // another host took it meanwhile: pick again
        tracing::debug!(%subnet, "subnet taken by another host; picking another");
        taken.insert(subnet);
        subnet = config.pick(&taken, 0)?;
    }
    tracing::info!(lease = %joined.describe(), "joined the cluster");
    Ok(joined)
}

/// The peer a lease describes (none for ours or a bad document).
pub fn peer_of(kv: &Kv, own: Ipv4Addr) -> Option<Peer> {
    let (subnet, prefix) = flannel::parse_subnet_key(&kv.key)?;
    if subnet == own {
        return None;
    }
    let l = SubnetLease::parse(&kv.value).ok()?;
    if l.backend_type != "vxlan" {
        return None;
    }
    Some(Peer {
        subnet,
        prefix,
        mac: l.mac()?,
        public_ip: l.public_ip,
    })
}

/// Keeps the lease alive and the peers in the kernel until the process ends.
pub async fn run(j: Joined) {
    let lease = j.lease.clone();
    let keep = j.clone();
    let l = lease.clone();
    tokio::spawn(async move { keepalive(keep, l).await });
    follow(j, lease).await;
}

/// Puts this host's subnet lease and address claim back (after a lease expired, or when
/// someone deleted our key).
async fn retake(j: &Joined, id: i64) {
    match j.client.create(&j.key(), &j.document(), id).await {
        Ok(true) => tracing::info!(subnet = %j.subnet, "subnet lease taken again"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "re-taking the subnet lease"),
    }
    let _ = j
        .client
        .put(&host_key(j.public_ip), j.host_id.as_bytes(), id)
        .await;
}

async fn keepalive(j: Joined, lease: Arc<AtomicI64>) {
    let every = Duration::from_millis((j.ttl as u64 * 1000 / 3).max(300));
    loop {
        tokio::time::sleep(every).await;
        match j.client.keepalive(lease.load(Ordering::Relaxed)).await {
            Ok(ttl) if ttl > 0 => {}
            Ok(_) => {
                // the lease expired (etcd was away longer than the TTL): take it again
                tracing::warn!(subnet = %j.subnet, "cluster lease expired; re-taking it");
                match j.client.grant(j.ttl).await {
                    Ok(id) => {
                        lease.store(id, Ordering::Relaxed);
                        retake(&j, id).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "new cluster lease"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "renewing the cluster lease"),
        }
    }
}

/// Where peers go: the kernel (`flannel.1` over netlink), or a recorder in tests.
pub trait Dataplane {
    fn add_peer(&self, p: &Peer) -> berth_network::Result<()>;
    fn del_peer(&self, p: &Peer) -> berth_network::Result<()>;
}

/// The VXLAN device through rtnetlink.
pub struct Kernel;

impl Dataplane for Kernel {
    fn add_peer(&self, p: &Peer) -> berth_network::Result<()> {
        vxlan::add_peer(VTEP, p)
    }
    fn del_peer(&self, p: &Peer) -> berth_network::Result<()> {
        vxlan::del_peer(VTEP, p)
    }
}

/// Applies the difference between the peers in place (`have`) and `want`: a peer that
/// changed (new VTEP MAC or address) is removed then added; a failed step is left for the
/// next pass (it stays out of `have`, or in it).
pub fn apply(dp: &dyn Dataplane, have: &mut BTreeMap<String, Peer>, want: &BTreeMap<String, Peer>) {
    for (k, p) in have.clone() {
        if want.get(&k) != Some(&p) {
            match dp.del_peer(&p) {
                Ok(()) => {
                    tracing::info!(subnet = %p.subnet, host = %p.public_ip, "peer removed");
                    have.remove(&k);
                }
                Err(e) => tracing::warn!(error = %e, "removing peer"),
            }
        }
    }
    for (k, p) in want {
        if have.get(k) != Some(p) {
            match dp.add_peer(p) {
                Ok(()) => {
                    tracing::info!(subnet = %p.subnet, host = %p.public_ip, "peer added");
                    have.insert(k.clone(), p.clone());
                }
                Err(e) => tracing::warn!(error = %e, "adding peer"),
            }
        }
    }
}

async fn follow(j: Joined, lease: Arc<AtomicI64>) {
    let mut have: BTreeMap<String, Peer> = BTreeMap::new();
    loop {
        // a full read, then a watch from just after it; any error: read again
        let (kvs, rev) = match j.client.get_prefix(flannel::SUBNETS).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading the cluster's leases");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut want: BTreeMap<String, Peer> = kvs
            .iter()
            .filter_map(|kv| peer_of(kv, j.subnet).map(|p| (kv.key.clone(), p)))
            .collect();
        apply(&Kernel, &mut have, &want);
        let mut w = match j.client.watch(flannel::SUBNETS, rev + 1).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "watching the cluster's leases");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match w.next().await {
                Ok(evs) => {
                    for e in evs {
                        match e {
                            Event::Put(kv) => match peer_of(&kv, j.subnet) {
                                Some(p) => {
                                    want.insert(kv.key, p);
                                }
                                None => {
                                    want.remove(&kv.key);
                                }
                            },
                            Event::Delete(kv) if kv.key == j.key() => {
                                tracing::warn!(key = %kv.key, "our subnet lease was deleted");
                                retake(&j, lease.load(Ordering::Relaxed)).await;
                            }
                            Event::Delete(kv) => {
                                want.remove(&kv.key);
                            }
                        }
                    }
                    apply(&Kernel, &mut have, &want);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster watch ended; reading again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Rec {
        log: RefCell<Vec<String>>,
        fail_add: Option<Ipv4Addr>,
    }

    impl Dataplane for Rec {
        fn add_peer(&self, p: &Peer) -> berth_network::Result<()> {
            if self.fail_add == Some(p.subnet) {
                return Err(berth_network::Error::Netlink("refused".into()));
            }
            self.log
                .borrow_mut()
                .push(format!("add {} {}", p.subnet, p.public_ip));
            Ok(())
        }
        fn del_peer(&self, p: &Peer) -> berth_network::Result<()> {
            self.log
                .borrow_mut()
                .push(format!("del {} {}", p.subnet, p.public_ip));
            Ok(())
        }
    }

    fn peer(n: u8, host: u8) -> (String, Peer) {
        let subnet = Ipv4Addr::new(10, 250, n, 0);
        (
            flannel::subnet_key(subnet, 24),
            Peer {
                subnet,
                prefix: 24,
                mac: [2, 0, 0, 0, 0, host],
                public_ip: Ipv4Addr::new(10, 99, 0, host),
            },
        )
    }

    #[test]
    fn apply_adds_removes_and_replaces_changed_peers() {
        let dp = Rec::default();
        let mut have = BTreeMap::new();
        let want: BTreeMap<_, _> = [peer(1, 1), peer(2, 2)].into_iter().collect();
        apply(&dp, &mut have, &want);
        assert_eq!(
            *dp.log.borrow(),
            ["add 10.250.1.0 10.99.0.1", "add 10.250.2.0 10.99.0.2"]
        );
        assert_eq!(have, want);

        // nothing changed: nothing done
        dp.log.borrow_mut().clear();
        apply(&dp, &mut have, &want);
        assert!(dp.log.borrow().is_empty());

        // host 1 gone, host 2 came back from another address, host 3 new
        let want: BTreeMap<_, _> = [peer(2, 7), peer(3, 3)].into_iter().collect();
        apply(&dp, &mut have, &want);
        assert_eq!(
            *dp.log.borrow(),
            [
                "del 10.250.1.0 10.99.0.1",
                "del 10.250.2.0 10.99.0.2",
                "add 10.250.2.0 10.99.0.7",
                "add 10.250.3.0 10.99.0.3"
            ]
        );
        assert_eq!(have, want);
    }

    #[test]
    fn a_failed_add_is_retried_on_the_next_pass() {
        let mut dp = Rec {
            fail_add: Some(Ipv4Addr::new(10, 250, 1, 0)),
            ..Default::default()
        };
        let mut have = BTreeMap::new();
        let want: BTreeMap<_, _> = [peer(1, 1)].into_iter().collect();
        apply(&dp, &mut have, &want);
        assert!(have.is_empty());
        dp.fail_add = None;
        apply(&dp, &mut have, &want);
        assert_eq!(have, want);
    }

    #[test]
    fn peers_from_leases() {
        let l = SubnetLease::vxlan(Ipv4Addr::new(10, 99, 0, 2), &[2, 0, 0, 0, 0, 9]);
        let kv = Kv {
            key: "/coreos.com/network/subnets/10.250.7.0-24".into(),
            value: l.to_json(),
            create_revision: 1,
            mod_revision: 1,
            lease: 5,
        };
        let p = peer_of(&kv, Ipv4Addr::new(10, 250, 1, 0)).unwrap();
        assert_eq!(p.subnet, Ipv4Addr::new(10, 250, 7, 0));
        assert_eq!(p.prefix, 24);
        assert_eq!(p.public_ip, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(p.mac, [2, 0, 0, 0, 0, 9]);
        // our own lease is no peer; nor is garbage
        assert!(peer_of(&kv, Ipv4Addr::new(10, 250, 7, 0)).is_none());
        let bad = Kv {
            value: b"{}".to_vec(),
            ..kv.clone()
        };
        assert!(peer_of(&bad, Ipv4Addr::new(10, 250, 1, 0)).is_none());
    }

    #[test]
    fn bip_is_the_subnets_first_address() {
        let j = Joined {
            client: Client::new("etcd://127.0.0.1:1").unwrap(),
            config: NetworkConfig::default(),
            subnet: Ipv4Addr::new(10, 250, 3, 0),
            prefix: 24,
            public_ip: Ipv4Addr::new(10, 99, 0, 1),
            mac: [0; 6],
            lease_id: 1,
            ttl: 10,
            mtu: 1450,
            host_id: "x".into(),
            underlay: 1,
            lease: Arc::new(AtomicI64::new(1)),
        };
        assert_eq!(j.bip(), "10.250.3.1/24");
        assert_eq!(j.key(), "/coreos.com/network/subnets/10.250.3.0-24");
    }
}
