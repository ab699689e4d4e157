//! Overlay networks in cluster mode (issue 14, point 3): the engine's side.
//!
//! The shared state lives in etcd (`berth_cluster::overlay`: records, names, VNIs, subnets,
//! addresses, endpoints). Every host mirrors the network records into its own network list
//! through a watch (so `network ls`/`inspect` agree everywhere), follows the other hosts
//! (`/berth/hosts/`) to keep each local VXLAN device's flood entries, and follows the
//! endpoints to answer remote names in the embedded DNS. A host has an overlay network's
//! devices (`berth_network::overlay`) only while one of its containers is on it.

use crate::container::now_nanos;
use crate::network::{net_err, random_id, Net, NetworkRecord};
use crate::network_ops::NetworkCreate;
use crate::{Container, Engine, Error, Result};
use berth_cluster::etcd::{Client, Event, Kv};
use berth_cluster::overlay::{self as ov, RemoteEndpoint};
use berth_network::overlay::{self as dp, OverlaySpec};
use berth_network::{ipam, Pool, Subnet};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What the daemon gives the engine when it joined a cluster.
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    pub client: Client,
    /// this host's advertise address
    pub local: Ipv4Addr,
    /// the interface holding it
    pub underlay: u32,
    /// the cluster MTU (underlay less VXLAN's overhead)
    pub mtu: u32,
    /// the host's etcd lease (renewed by the cluster agent; endpoints are attached to it)
    pub lease: Arc<AtomicI64>,
}

pub(crate) struct Overlay {
    pub cfg: OverlayConfig,
    /// the other hosts' advertise addresses
    peers: Mutex<BTreeSet<Ipv4Addr>>,
    /// overlay networks whose devices exist here → the peers they flood to
    planes: Mutex<BTreeMap<String, BTreeSet<Ipv4Addr>>>,
    /// net id → container id → endpoint, of the other hosts
    remote: RwLock<BTreeMap<String, BTreeMap<String, RemoteEndpoint>>>,
    engine: std::sync::Weak<Engine>,
}

fn cl_err(e: berth_cluster::Error) -> Error {
    use berth_cluster::Error as E;
    match e {
        E::InvalidParameter(m) => Error::InvalidParameter(m),
        E::Conflict(m) => Error::Conflict(m),
        other => Error::Internal(other.to_string()),
    }
}

/// The owner recorded with an address: `<container id> <host>`.
fn owner(ctr: &str, host: Ipv4Addr) -> String {
    format!("{ctr} {host}")
}

impl NetworkRecord {
    pub fn is_overlay(&self) -> bool {
        self.driver == "overlay"
    }
}

impl Engine {
    pub(crate) fn overlay(&self) -> Option<&Arc<Overlay>> {
        self.overlay.get()
    }

    fn overlay_or_refuse(&self) -> Result<&Arc<Overlay>> {
        self.overlay().ok_or_else(|| {
            Error::Forbidden(
                "overlay networks need cluster mode: start berthd with --cluster-store etcd://HOST:PORT and --cluster-advertise ADDRESS".into(),
            )
        })
    }

    /// Cluster mode: reads the overlay networks, hosts and endpoints from etcd and follows
    /// them from then on. Called once by the daemon after joining.
    pub async fn overlay_start(self: &Arc<Self>, cfg: OverlayConfig) -> Result<()> {
        let o = Arc::new(Overlay {
            cfg,
            peers: Mutex::new(BTreeSet::new()),
            planes: Mutex::new(BTreeMap::new()),
            remote: RwLock::new(BTreeMap::new()),
            engine: Arc::downgrade(self),
        });
        if self.overlay.set(o).is_err() {
            return Err(Error::Internal("overlay already started".into()));
        }
        // the first full reads before the API answers: `network ls` is right at once
        let rev = self.overlay_sync_networks().await?;
        // containers that kept running across a daemon restart: devices and endpoints again
        let mut nets = BTreeSet::new();
        for c in self.all_containers() {
            if !c.record().state.status.is_running() {
                continue;
            }
            for ep in c.record().networks.values() {
                if let (Some(_), Ok(n)) = (ep.ip, self.net().get(&ep.network_id)) {
                    if n.rec.is_overlay() {
                        nets.insert(n.rec.id.clone());
                    }
                }
            }
        }
        for id in nets {
            if let Ok(n) = self.net().get(&id) {
                if let Err(e) = self.overlay_plane_up(&n.rec) {
                    tracing::warn!(network = %n.rec.name, "overlay devices: {e}");
                }
            }
        }
        self.overlay_republish().await;
        let w = Arc::downgrade(self);
        tokio::spawn(follow(w.clone(), ov::NETWORKS, Some(rev)));
        tokio::spawn(follow(w.clone(), ov::HOSTS, None));
        tokio::spawn(follow(w, ov::ENDPOINTS, None));
        Ok(())
    }

    /// A full read of the records: adds the missing, drops those gone. Answers the revision.
    async fn overlay_sync_networks(self: &Arc<Self>) -> Result<i64> {
        let o = self.overlay_or_refuse()?.clone();
        let (kvs, rev) = o
            .cfg
            .client
            .get_prefix(ov::NETWORKS)
            .await
            .map_err(cl_err)?;
        let mut ids = BTreeSet::new();
        for kv in &kvs {
            if let Some(id) = self.overlay_record_put(kv) {
                ids.insert(id);
            }
        }
        for n in self.net().all() {
            if n.rec.is_overlay() && !ids.contains(&n.rec.id) {
                self.overlay_record_gone(&n.rec.id);
            }
        }
        Ok(rev)
    }

    /// A record seen in etcd: into the local list (and the local records dir, so containers
    /// find it at the next start), unless already there.
    fn overlay_record_put(&self, kv: &Kv) -> Option<String> {
        let rec: NetworkRecord = match serde_json::from_slice(&kv.value) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(key = %kv.key, "bad overlay network record: {e}");
                return None;
            }
        };
        if !rec.is_overlay() {
            return None;
        }
        let id = rec.id.clone();
        if self.net().nets.read().expect("nets lock").contains_key(&id) {
            return Some(id);
        }
        let pool = match (rec.subnet, rec.gateway) {
            (Some(s), Some(g)) => Pool::new(s, g, rec.ip_range).ok(),
            _ => None,
        };
        if let Err(e) = self.save_network(&rec) {
            tracing::warn!(network = %rec.name, "saving overlay record: {e}");
        }
        self.net().nets.write().expect("nets lock").insert(
            id.clone(),
            Arc::new(Net {
                rec: rec.clone(),
                pool: Mutex::new(pool),
                pool6: Mutex::new(None),
            }),
        );
        tracing::info!(network = %rec.name, id = %id, "overlay network seen");
        self.emit_network(&rec, "create", None);
        Some(id)
    }

    /// A record gone from etcd: out of the list, its devices removed here.
    fn overlay_record_gone(&self, id: &str) {
        let n = self.net().nets.write().expect("nets lock").remove(id);
        let Some(n) = n else { return };
        let _ = std::fs::remove_file(self.networks_dir().join(format!("{id}.json")));
        self.overlay_plane_down(id);
        tracing::info!(network = %n.rec.name, "overlay network removed");
        self.emit_network(&n.rec, "destroy", None);
    }

    /// `network create -d overlay`.
    pub(crate) async fn overlay_create(self: &Arc<Self>, req: NetworkCreate) -> Result<Value> {
        let o = self.overlay_or_refuse()?.clone();
        let c = &o.cfg.client;
        let name = req.name.trim().to_string();
        if req.enable_ipv6 {
            return Err(Error::InvalidParameter(
                "IPv6 on overlay networks is not supported by berth".into(),
            ));
        }
        if self.net().all().iter().any(|n| n.rec.name == name) {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let v4 = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.iter().find(|c| !c.subnet.contains(':')));
        let id = random_id();
        if !ov::claim_name(c, &name, &id).await.map_err(cl_err)? {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let mut claimed_subnet = None;
        let mut vni = 0;
        let res: Result<NetworkRecord> = async {
            let local_taken: Vec<Subnet> = self
                .net()
                .all()
                .iter()
                .filter(|n| !n.rec.is_overlay())
                .filter_map(|n| n.rec.subnet)
                .chain(
                    self.net()
                        .cfg
                        .cluster_network
                        .as_deref()
                        .and_then(|s| Subnet::parse(s).ok()),
                )
                .collect();
            let (subnet, gateway, range) = match v4 {
                Some(cfg) if !cfg.subnet.is_empty() => {
                    let s = Subnet::parse(&cfg.subnet).map_err(net_err)?;
                    let gw = if cfg.gateway.is_empty() {
                        s.first_host()
                    } else {
                        cfg.gateway.parse::<Ipv4Addr>().map_err(|_| {
                            Error::InvalidParameter(format!(
                                "invalid gateway address: {}",
                                cfg.gateway
                            ))
                        })?
                    };
                    let range = if cfg.ip_range.is_empty() {
                        None
                    } else {
                        Some(Subnet::parse(&cfg.ip_range).map_err(net_err)?)
                    };
                    Pool::new(s, gw, range).map_err(net_err)?;
                    let taken = ov::claimed_subnets(c).await.map_err(cl_err)?;
                    if taken.iter().any(|t| t.overlaps(&s)) {
                        return Err(Error::Conflict(
                            "Pool overlaps with other one on this address space".into(),
                        ));
                    }
                    if !ov::claim_subnet(c, &s, &id).await.map_err(cl_err)? {
                        return Err(Error::Conflict(
                            "Pool overlaps with other one on this address space".into(),
                        ));
                    }
                    (s, gw, range)
                }
                _ => {
                    let base = Subnet::parse(ov::DEFAULT_POOL).map_err(net_err)?;
                    let mut got = None;
                    for _ in 0..16 {
                        let mut taken = ov::claimed_subnets(c).await.map_err(cl_err)?;
                        taken.extend(local_taken.iter().copied());
                        let s = ipam::pick_split_from(&[(base, ov::DEFAULT_SIZE)], &taken, &[])
                            .map_err(net_err)?;
                        if ov::claim_subnet(c, &s, &id).await.map_err(cl_err)? {
                            got = Some(s);
                            break;
                        }
                    }
                    let s = got.ok_or_else(|| {
                        Error::Conflict("could not claim an overlay subnet".into())
                    })?;
                    (s, s.first_host(), None)
                }
            };
            claimed_subnet = Some(subnet);
            vni = ov::alloc_vni(c, &id).await.map_err(cl_err)?;
            let (bridge, _) = dp::device_names(&id);
            let mut options = req.options.clone().unwrap_or_default();
            options.insert(
                "com.docker.network.driver.overlay.vxlanid_list".into(),
                vni.to_string(),
            );
            let rec = NetworkRecord {
                id: id.clone(),
                name: name.clone(),
                driver: "overlay".into(),
                created: now_nanos(),
                subnet: Some(subnet),
                gateway: Some(gateway),
                ip_range: range,
                internal: req.internal,
                attachable: req.attachable,
                enable_ipv6: false,
                subnet6: None,
                gateway6: None,
                ip_range6: None,
                gateway6_given: false,
                bridge,
                mtu: o.cfg.mtu,
                options,
                labels: req.labels.clone().unwrap_or_default(),
                ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()),
                predefined: false,
                vni,
            };
            let data = serde_json::to_vec(&rec)?;
            c.put(&ov::network_key(&id), &data, 0)
                .await
                .map_err(cl_err)?;
            Ok(rec)
        }
        .await;
        let rec = match res {
            Ok(r) => r,
            Err(e) => {
                let _ = ov::remove_network(c, &id, &name, vni, claimed_subnet.as_ref()).await;
                return Err(e);
            }
        };
        // into the local list now (the watch will find it there)
        let kv = Kv {
            key: ov::network_key(&id),
            value: serde_json::to_vec(&rec)?,
            create_revision: 0,
            mod_revision: 0,
            lease: 0,
        };
        self.overlay_record_put(&kv);
        Ok(json!({"Id": id, "Warning": ""}))
    }

    /// `network rm` of an overlay network: refused while any host has an endpoint on it.
    pub(crate) async fn overlay_remove(self: &Arc<Self>, n: &Arc<Net>) -> Result<()> {
        let o = self.overlay_or_refuse()?.clone();
        let c = &o.cfg.client;
        let (eps, _) = c
            .get_prefix(&ov::endpoints_prefix(&n.rec.id))
            .await
            .map_err(cl_err)?;
        if !eps.is_empty() || !self.network_users_of(&n.rec.id).is_empty() {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.rec.name, n.rec.id
            )));
        }
        ov::remove_network(c, &n.rec.id, &n.rec.name, n.rec.vni, n.rec.subnet.as_ref())
            .await
            .map_err(cl_err)?;
        self.overlay_record_gone(&n.rec.id);
        Ok(())
    }

    /// Before `net_prepare`: an address from etcd for every overlay endpoint of `c`.
    pub(crate) async fn overlay_allocate(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let rec = c.record();
        for (name, ep) in &rec.networks {
            if ep.ip.is_some() {
                continue;
            }
            let Ok(n) = self.net().get(&ep.network_id) else {
                continue;
            };
            if !n.rec.is_overlay() {
                continue;
            }
            let ip = self.overlay_take_ip(&n, ep.static_ip, &c.id).await?;
            let subnet_prefix = n.rec.subnet.map(|s| s.prefix).unwrap_or(24);
            c.update(|r| {
                if let Some(e) = r.networks.get_mut(name) {
                    e.ip = Some(ip);
                    e.prefix = subnet_prefix;
                }
            });
        }
        Ok(())
    }

    pub(crate) async fn overlay_take_ip(
        &self,
        n: &Net,
        want: Option<Ipv4Addr>,
        ctr: &str,
    ) -> Result<Ipv4Addr> {
        let o = self.overlay_or_refuse()?;
        let pool = match (n.rec.subnet, n.rec.gateway) {
            (Some(s), Some(g)) => Pool::new(s, g, n.rec.ip_range).map_err(net_err)?,
            _ => {
                return Err(Error::Internal(format!(
                    "network {} has no subnet",
                    n.rec.name
                )))
            }
        };
        ov::alloc_ip(
            &o.cfg.client,
            &n.rec.id,
            &pool,
            want,
            &owner(ctr, o.cfg.local),
        )
        .await
        .map_err(|e| match e {
            berth_cluster::Error::Conflict(m) if m.starts_with("no available") => {
                Error::Conflict(format!("{m}: {} ({})", n.rec.name, n.rec.id))
            }
            e => cl_err(e),
        })
    }

    /// The devices of overlay network `n` here (made if missing), flooding to every peer.
    pub(crate) fn overlay_plane_up(&self, n: &NetworkRecord) -> Result<()> {
        let Some(o) = self.overlay() else {
            return Err(Error::Internal("not in cluster mode".into()));
        };
        let (bridge, vxlan) = dp::device_names(&n.id);
        let mut planes = o.planes.lock().expect("planes lock");
        if !planes.contains_key(&n.id) || !berth_network::link::link_exists(&bridge) {
            dp::ensure(&OverlaySpec {
                bridge,
                vxlan: vxlan.clone(),
                vni: n.vni,
                local: o.cfg.local,
                underlay: o.cfg.underlay,
                mtu: if n.mtu > 0 { n.mtu } else { o.cfg.mtu },
            })
            .map_err(net_err)?;
            planes.insert(n.id.clone(), BTreeSet::new());
        }
        let peers = o.peers.lock().expect("peers lock").clone();
        if let Some(have) = planes.get_mut(&n.id) {
            sync_flood(&vxlan, have, &peers);
        }
        Ok(())
    }

    /// Removes the devices of network `id` here (if any).
    fn overlay_plane_down(&self, id: &str) {
        let Some(o) = self.overlay() else { return };
        let mut planes = o.planes.lock().expect("planes lock");
        if planes.remove(id).is_some() {
            let (bridge, vxlan) = dp::device_names(id);
            if let Err(e) = dp::remove(&bridge, &vxlan) {
                tracing::warn!(network = %id, "removing overlay devices: {e}");
            }
        }
    }

    /// Removes the devices of network `id` when no local container is on it any more.
    pub(crate) fn overlay_plane_maybe_down(&self, id: &str) {
        if self.network_users_of(id).is_empty() {
            self.overlay_plane_down(id);
        }
    }

    /// Local containers with an address on `net`.
    fn network_users_of(&self, net: &str) -> Vec<String> {
        self.all_containers()
            .into_iter()
            .filter(|c| {
                c.record()
                    .networks
                    .values()
                    .any(|e| e.network_id == net && e.ip.is_some())
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// After the veths: this container's overlay endpoints, for the other hosts' DNS.
    pub(crate) async fn overlay_publish(&self, c: &Container) {
        let Some(o) = self.overlay() else { return };
        let rec = c.record();
        for ep in rec.networks.values() {
            let (Some(ip), Ok(n)) = (ep.ip, self.net().get(&ep.network_id)) else {
                continue;
            };
            if !n.rec.is_overlay() {
                continue;
            }
            let doc = RemoteEndpoint {
                name: rec.name.clone(),
                hostname: rec.config.hostname.clone(),
                aliases: ep.aliases.clone(),
                ip,
                host: o.cfg.local,
            };
            let data = serde_json::to_vec(&doc).unwrap_or_default();
            let key = ov::endpoint_key(&n.rec.id, &c.id);
            let lease = o.cfg.lease.load(Ordering::Relaxed);
            if let Err(e) = o.cfg.client.put(&key, &data, lease).await {
                tracing::warn!(id = %c.id, network = %n.rec.name, "publishing endpoint: {e}");
            }
        }
    }

    /// Publishes the endpoints of every running container again.
    async fn overlay_republish(&self) {
        for c in self.all_containers() {
            if c.record().state.status.is_running() {
                self.overlay_publish(&c).await;
            }
        }
    }

    /// Gives back (in the background) what overlay endpoints `eps` held: the address, the
    /// published endpoint, and the devices when nobody else here uses the network.
    /// `eps`: (network id, address).
    pub(crate) fn overlay_release(&self, ctr: &str, eps: Vec<(String, Ipv4Addr)>) {
        let Some(o) = self.overlay().cloned() else {
            return;
        };
        let Some(engine) = o.engine.upgrade() else {
            return;
        };
        if eps.is_empty() {
            return;
        }
        let Ok(h) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ctr = ctr.to_string();
        h.spawn(async move {
            let c = &o.cfg.client;
            for (net, ip) in eps {
                if let Err(e) = c.delete(&ov::endpoint_key(&net, &ctr)).await {
                    tracing::warn!(network = %net, "unpublishing endpoint: {e}");
                }
                if let Err(e) = ov::release_ip(c, &net, ip, &owner(&ctr, o.cfg.local)).await {
                    tracing::warn!(network = %net, %ip, "releasing overlay address: {e}");
                }
                let e2 = engine.clone();
                let _ =
                    tokio::task::spawn_blocking(move || e2.overlay_plane_maybe_down(&net)).await;
            }
        });
    }

    /// The addresses of other hosts' endpoints on `net` matching `name` (name, host name or
    /// alias), for the embedded DNS.
    pub(crate) fn overlay_lookup(&self, net: &str, name: &str) -> Vec<Ipv4Addr> {
        let Some(o) = self.overlay() else {
            return Vec::new();
        };
        let remote = o.remote.read().expect("remote lock");
        let Some(eps) = remote.get(net) else {
            return Vec::new();
        };
        eps.iter()
            .filter(|(id, e)| {
                e.name.eq_ignore_ascii_case(name)
                    || e.hostname.eq_ignore_ascii_case(name)
                    || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() == 12 && id.starts_with(name))
            })
            .map(|(_, e)| e.ip)
            .collect()
    }

    fn overlay_event(self: &Arc<Self>, prefix: &str, ev: &Event) {
        let Some(o) = self.overlay().cloned() else {
            return;
        };
        match prefix {
            ov::NETWORKS => match ev {
                Event::Put(kv) => {
                    self.overlay_record_put(kv);
                }
                Event::Delete(kv) => {
                    if let Some(id) = kv.key.strip_prefix(ov::NETWORKS) {
                        self.overlay_record_gone(id);
                    }
                }
            },
            ov::HOSTS => {
                let (kv, put) = match ev {
                    Event::Put(kv) => (kv, true),
                    Event::Delete(kv) => (kv, false),
                };
                let Some(ip) = ov::parse_host_key(&kv.key) else {
                    return;
                };
                if ip == o.cfg.local {
                    // our claim put back (a new lease after an outage): endpoints again
                    if put {
                        if let Ok(h) = tokio::runtime::Handle::try_current() {
                            let e = self.clone();
                            h.spawn(async move { e.overlay_republish().await });
                        }
                    }
                    return;
                }
                let changed = {
                    let mut p = o.peers.lock().expect("peers lock");
                    if put {
                        p.insert(ip)
                    } else {
                        p.remove(&ip)
                    }
                };
                if changed {
                    self.overlay_resync_floods();
                }
            }
            ov::ENDPOINTS => match ev {
                Event::Put(kv) => {
                    let Some((net, ctr)) = ov::parse_endpoint_key(&kv.key) else {
                        return;
                    };
                    match serde_json::from_slice::<RemoteEndpoint>(&kv.value) {
                        Ok(e) if e.host != o.cfg.local => {
                            o.remote
                                .write()
                                .expect("remote lock")
                                .entry(net)
                                .or_default()
                                .insert(ctr, e);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(key = %kv.key, "bad endpoint: {e}"),
                    }
                }
                Event::Delete(kv) => {
                    if let Some((net, ctr)) = ov::parse_endpoint_key(&kv.key) {
                        if let Some(m) = o.remote.write().expect("remote lock").get_mut(&net) {
                            m.remove(&ctr);
                        }
                    }
                }
            },
            _ => {}
        }
    }

    /// Every local overlay device floods to exactly the current peers.
    fn overlay_resync_floods(&self) {
        let Some(o) = self.overlay() else { return };
        let peers = o.peers.lock().expect("peers lock").clone();
        let mut planes = o.planes.lock().expect("planes lock");
        for (id, have) in planes.iter_mut() {
            let (_, vxlan) = dp::device_names(id);
            sync_flood(&vxlan, have, &peers);
        }
    }

    /// A full read of `prefix` replaces what was known from it.
    async fn overlay_full_read(self: &Arc<Self>, prefix: &str) -> Result<i64> {
        let Some(o) = self.overlay().cloned() else {
            return Ok(0);
        };
        if prefix == ov::NETWORKS {
            return self.overlay_sync_networks().await;
        }
        let (kvs, rev) = o.cfg.client.get_prefix(prefix).await.map_err(cl_err)?;
        match prefix {
            ov::HOSTS => {
                let ips: BTreeSet<Ipv4Addr> = kvs
                    .iter()
                    .filter_map(|kv| ov::parse_host_key(&kv.key))
                    .filter(|ip| *ip != o.cfg.local)
                    .collect();
                *o.peers.lock().expect("peers lock") = ips;
                let e = self.clone();
                let _ = tokio::task::spawn_blocking(move || e.overlay_resync_floods()).await;
            }
            ov::ENDPOINTS => {
                o.remote.write().expect("remote lock").clear();
                for kv in &kvs {
                    self.overlay_event(prefix, &Event::Put(kv.clone()));
                }
            }
            _ => {}
        }
        Ok(rev)
    }
}

/// Makes `vxlan`'s flood entries match `want` (`have` tracks what is in place).
fn sync_flood(vxlan: &str, have: &mut BTreeSet<Ipv4Addr>, want: &BTreeSet<Ipv4Addr>) {
    for ip in have.clone() {
        if !want.contains(&ip) {
            match dp::del_flood(vxlan, ip) {
                Ok(()) => {
                    have.remove(&ip);
                }
                Err(e) => tracing::warn!(%vxlan, peer = %ip, "removing flood entry: {e}"),
            }
        }
    }
    for ip in want {
        if !have.contains(ip) {
            match dp::add_flood(vxlan, *ip) {
                Ok(()) => {
                    have.insert(*ip);
                }
                Err(e) => tracing::warn!(%vxlan, peer = %ip, "adding flood entry: {e}"),
            }
        }
    }
}

/// Follows one prefix: a full read (unless `first_rev` says one was just made), then a watch
/// from the next revision; any error: read again.
async fn follow(engine: std::sync::Weak<Engine>, prefix: &'static str, first_rev: Option<i64>) {
    let mut rev = first_rev;
    loop {
        let Some(e) = engine.upgrade() else { return };
        let start = match rev.take() {
            Some(r) => r,
            None => match e.overlay_full_read(prefix).await {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(prefix, "reading the overlay state: {err}");
                    drop(e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Some(o) = e.overlay().cloned() else {
            return;
        };
        drop(e);
        let mut w = match o.cfg.client.watch(prefix, start + 1).await {
            Ok(w) => w,
            Err(err) => {
                tracing::warn!(prefix, "watching the overlay state: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match w.next().await {
                Ok(evs) => {
                    let Some(e) = engine.upgrade() else { return };
                    let e2 = e.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        for ev in &evs {
                            e2.overlay_event(prefix, ev);
                        }
                    })
                    .await;
                }
                Err(err) => {
                    tracing::warn!(prefix, "overlay watch ended: {err}; reading again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}
