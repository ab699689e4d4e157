//! Networks as the engine sees them: records under `<data-root>/network/<id>.json`, one
//! address pool each, the daemon's nftables table, and what each running container holds
//! (port reservations, its DNS server). The kernel side is `berth-network`'s.
//!
//! A container's network namespace is its init's (`/proc/<pid>/ns/net`): veths are made
//! between the shim's READY and START, and vanish with the namespace when the container dies.

use crate::container::now_nanos;
use crate::{Engine, Error, Result};
use berth_network::nat::{NetRules, PortRule, Proto, Ruleset};
use berth_network::{ipam, link, Pool, Pool6, Subnet, Subnet6};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// Daemon-wide network settings (`berthd --bridge --bip --fixed-cidr --mtu --dns`).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// the default bridge's kernel name
    pub bridge: String,
    /// `--bip`: the default bridge's address with prefix, e.g. `172.30.0.1/16`
    pub bip: Option<String>,
    /// `--fixed-cidr`: containers on the default bridge get addresses from here
    pub fixed_cidr: Option<String>,
    /// `--ipv6`: IPv6 on the default bridge
    pub ipv6: bool,
    /// `--fixed-cidr-v6`: the default bridge's IPv6 subnet
    pub fixed_cidr_v6: Option<String>,
    pub mtu: u32,
    /// upstream servers of the embedded DNS (and the default bridge's resolv.conf)
    pub dns: Vec<String>,
    /// `dns-search`: containers' search domains when they name none
    pub dns_search: Vec<String>,
    /// `dns-opts`: containers' resolver options when they name none
    pub dns_opts: Vec<String>,
    /// `default-address-pools` (`base`, `size`): where networks without a subnet get one
    pub address_pools: Vec<(String, u8)>,
    /// cluster mode: the cluster-wide range, routed between hosts (not masqueraded)
    pub cluster_network: Option<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: "berth0".into(),
            bip: None,
            fixed_cidr: None,
            ipv6: false,
            fixed_cidr_v6: None,
            mtu: 1500,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_opts: Vec::new(),
            address_pools: Vec::new(),
            cluster_network: None,
        }
    }
}

impl NetConfig {
    /// `address_pools` parsed (checked at start; a bad entry is skipped).
    pub fn pools(&self) -> Vec<(ipam::Subnet, u8)> {
        self.address_pools
            .iter()
            .filter_map(|(b, n)| ipam::Subnet::parse(b).ok().map(|s| (s, *n)))
            .collect()
    }

    /// The nftables table of this daemon: `berth` for the default bridge, else one per bridge
    /// name, so daemons side by side never touch each other's rules.
    pub fn nft_table(&self) -> String {
        if self.bridge == "berth0" {
            "berth".into()
        } else {
            format!("berth_{}", self.bridge.replace(['-', '.'], "_"))
        }
    }
}

/// A network's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`
    pub driver: String,
    pub created: u128,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    /// the IPv6 subnet of an `--ipv6` network
    #[serde(default)]
    pub subnet6: Option<Subnet6>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    #[serde(default)]
    pub ip_range6: Option<Subnet6>,
    /// the IPv6 gateway was given (`--gateway`): listed in the IPAM config, as dockerd does
    #[serde(default)]
    pub gateway6_given: bool,
    /// the kernel bridge (empty for host/none)
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `IPAM.Options` as sent (`None`: none, shown as `null` as dockerd does)
    #[serde(default)]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `bridge`, `host`, `none`: made by the daemon, not removable
    #[serde(default)]
    pub predefined: bool,
    /// an overlay network's VXLAN VNI (cluster mode)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vni: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl NetworkRecord {
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }
    /// user-defined bridge and overlay networks have the embedded DNS and aliases
    pub fn is_user(&self) -> bool {
        (self.is_bridge() || self.driver == "overlay") && !self.predefined
    }
    /// containers get a veth on a bridge of this network (bridge and overlay drivers)
    pub fn has_veths(&self) -> bool {
        self.is_bridge() || self.driver == "overlay"
    }
    /// the bridge's IPv6 gateway and prefix, when the network has IPv6
    pub fn v6(&self) -> Option<(Ipv6Addr, u8)> {
        match (self.enable_ipv6, self.subnet6, self.gateway6) {
            (true, Some(s), Some(g)) => Some((g, s.prefix)),
            _ => None,
        }
    }
    pub(crate) fn pool6(&self) -> Result<Option<Pool6>> {
        match (self.enable_ipv6, self.subnet6, self.gateway6) {
            (true, Some(s), Some(g)) => {
                Ok(Some(Pool6::new(s, g, self.ip_range6).map_err(net_err)?))
            }
            _ => Ok(None),
        }
    }
}

pub(crate) struct Net {
    pub rec: NetworkRecord,
    pub pool: Mutex<Option<Pool>>,
    pub pool6: Mutex<Option<Pool6>>,
}

impl Net {
    /// An IPv6 address for an endpoint of an `--ipv6` network (None without IPv6): the
    /// fixed one asked for, else on the default bridge the subnet's prefix with the MAC as
    /// the host part (docker's, for a prefix of /80 or shorter), else the next free one.
    pub(crate) fn take_ip6(
        &self,
        want: Option<Ipv6Addr>,
        mac: &[u8; 6],
    ) -> Result<Option<Ipv6Addr>> {
        let mut pool = self.pool6.lock().expect("pool6 lock");
        let Some(pool) = pool.as_mut() else {
            if let Some(ip) = want {
                return Err(Error::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
            return Ok(None);
        };
        if let Some(ip) = want {
            pool.reserve(ip).map_err(net_err)?;
            return Ok(Some(ip));
        }
        if self.rec.predefined && pool.subnet.prefix <= 80 {
            let mut host = [0u8; 16];
            host[10..].copy_from_slice(mac);
            let ip = Ipv6Addr::from(u128::from(pool.subnet.addr) | u128::from_be_bytes(host));
            if pool.reserve(ip).is_ok() {
                return Ok(Some(ip));
            }
        }
        Ok(Some(pool.allocate().map_err(net_err)?))
    }

    pub(crate) fn release_ip6(&self, ip: Option<Ipv6Addr>) {
        if let (Some(ip), Some(p)) = (ip, self.pool6.lock().expect("pool6 lock").as_mut()) {
            p.release(ip);
        }
    }
}

/// A container's attachment to one network, kept in its record (keyed by network name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    /// `IPAMConfig.IPv4Address`: a fixed address
    #[serde(default)]
    pub static_ip: Option<Ipv4Addr>,
    /// `IPAMConfig.IPv6Address`: a fixed IPv6 address (`--ip6`)
    #[serde(default)]
    pub static_ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    /// `MacAddress` asked for
    #[serde(default)]
    pub mac_request: String,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// `IPAMConfig` as asked (its non-empty `IPv4Address`/`IPv6Address`/`LinkLocalIPs`),
    /// shown back by inspect as docker keeps it
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub ipam_config: serde_json::Value,
    /// the endpoint on `berth_gwbridge` an overlay-only container gets while it runs (its
    /// default route, outbound NAT and published ports; see `gwbridge.rs`): not listed in
    /// inspect's `Networks`, not in the embedded DNS, dropped when the container stops
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gwbridge: bool,
    // --- set while the container runs
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix: u8,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub ifname: String,
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// One published port, as bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub proto: String,
    pub ctr_port: u16,
    /// `0.0.0.0` or the address asked for
    pub host_ip: String,
    pub host_port: u16,
}

/// A container's published ports: the sockets holding the host ports, and their DNAT rules.
pub(crate) type Published = (Vec<berth_network::ports::Reservation>, Vec<PortRule>);

/// A container's IPv6 published ports: their DNAT rules and the `[::1]` proxies.
pub(crate) type Published6 = (
    Vec<berth_network::nat::PortRule6>,
    Vec<berth_network::proxy::ProxyHandle>,
);

/// What the network layer holds in memory for the daemon.
pub(crate) struct NetState {
    pub nets: RwLock<BTreeMap<String, Arc<Net>>>,
    pub nat: berth_network::nat::Nat,
    /// held by `sync_nat` from reading the state to applying it: two syncs at once (two
    /// containers exiting) could otherwise apply an older reading after a newer one
    nat_sync: Mutex<()>,
    /// per container: reserved host ports and the rules that publish them
    pub published: Mutex<HashMap<String, Published>>,
    /// per container: its ports published over IPv6 (primary network with `--ipv6`)
    /// (and the userland proxies serving their `[::1]` side)
    pub published6: Mutex<HashMap<String, Published6>>,
    pub dns: Mutex<HashMap<String, berth_network::dns::DnsHandle>>,
    pub cfg: NetConfig,
}

pub(crate) fn net_err(e: berth_network::Error) -> Error {
    use berth_network::Error as E;
    match e {
        E::InvalidParameter(m) => Error::InvalidParameter(m),
        E::Conflict(m) => Error::Conflict(m),
        E::NotFound(m) => Error::NotFound(m),
        other => Error::Internal(other.to_string()),
    }
}

pub(crate) fn random_id() -> String {
    let b: [u8; 32] = rand::random();
    hex::encode(b)
}

fn write_record(dir: &Path, rec: &NetworkRecord) -> Result<()> {
    let data = serde_json::to_vec_pretty(rec)?;
    crate::fsutil::write_atomic(&dir.join(format!("{}.json", rec.id)), &data)?;
    Ok(())
}

impl NetState {
    /// Reads the records back, makes the three predefined networks, sets up the default
    /// bridge (its subnet: `--bip`, else what the bridge already has, else the first free
    /// default pool) and every user bridge.
    pub fn open(dir: &Path, cfg: NetConfig) -> Result<NetState> {
        std::fs::create_dir_all(dir)?;
        let mut recs: Vec<NetworkRecord> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
            {
                Ok(r) => recs.push(r),
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
        let st = NetState {
            nets: RwLock::new(BTreeMap::new()),
            nat: berth_network::nat::Nat::new(&cfg.nft_table()),
            nat_sync: Mutex::new(()),
            published: Mutex::new(HashMap::new()),
            published6: Mutex::new(HashMap::new()),
            dns: Mutex::new(HashMap::new()),
            cfg,
        };
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if !recs.iter().any(|r| r.predefined && r.name == name) {
                let rec = NetworkRecord {
                    id: random_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: now_nanos(),
                    subnet: None,
                    gateway: None,
                    ip_range: None,
                    internal: false,
                    attachable: false,
                    enable_ipv6: false,
                    subnet6: None,
                    gateway6: None,
                    ip_range6: None,
                    gateway6_given: false,
                    bridge: String::new(),
                    mtu: 0,
                    options: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    ipam_options: None,
                    predefined: true,
                    vni: 0,
                };
                write_record(dir, &rec)?;
                recs.push(rec);
            }
        }
        let _lock = ipam::host_lock().map_err(net_err)?;
        for mut rec in recs {
            if rec.predefined && rec.name == "bridge" {
                st.setup_default_bridge(&mut rec)?;
                write_record(dir, &rec)?;
            } else if rec.is_bridge() {
                if let Err(e) = st.ensure_bridge(&rec) {
                    tracing::warn!(network = %rec.name, "cannot set up bridge {}: {e}", rec.bridge);
                }
            }
            let pool = match (rec.subnet, rec.gateway) {
                (Some(s), Some(g)) => Some(Pool::new(s, g, rec.ip_range).map_err(net_err)?),
                _ => None,
            };
            let pool6 = rec.pool6()?;
            st.nets.write().expect("nets lock").insert(
                rec.id.clone(),
                Arc::new(Net {
                    rec,
                    pool: Mutex::new(pool),
                    pool6: Mutex::new(pool6),
                }),
            );
        }
        Ok(st)
    }

    fn setup_default_bridge(&self, rec: &mut NetworkRecord) -> Result<()> {
        let cfg = &self.cfg;
        let (subnet, gateway) = if let Some(bip) = &cfg.bip {
            let (addr, prefix) = parse_cidr_addr(bip)?;
            (
                Subnet::parse(&format!("{addr}/{prefix}")).map_err(net_err)?,
                addr,
            )
        } else if let Some((addr, prefix)) = link::link_ipv4(&cfg.bridge).ok().flatten() {
            (
                Subnet::parse(&format!("{addr}/{prefix}")).map_err(net_err)?,
                addr,
            )
        } else {
            let taken = self.taken_subnets();
            let s = ipam::pick_subnet_in(&cfg.pools(), &taken).map_err(net_err)?;
            (s, s.first_host())
        };
        let range = match &cfg.fixed_cidr {
            Some(c) => {
                let r = Subnet::parse(c).map_err(net_err)?;
                if !subnet.contains(r.addr) {
                    return Err(Error::InvalidParameter(format!(
                        "fixed-cidr {c} is not inside the bridge's subnet {subnet}"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        rec.subnet = Some(subnet);
        rec.gateway = Some(gateway);
        rec.ip_range = range;
        rec.enable_ipv6 = false;
        rec.subnet6 = None;
        rec.gateway6 = None;
        if cfg.ipv6 {
            if let Some(c6) = &cfg.fixed_cidr_v6 {
                let s6 = Subnet6::parse(c6).map_err(net_err)?;
                rec.enable_ipv6 = true;
                rec.subnet6 = Some(s6);
                rec.gateway6 = Some(s6.first_host());
            } else {
                tracing::warn!(
                    "--ipv6 without --fixed-cidr-v6: the default bridge stays IPv4-only"
                );
            }
        }
        rec.bridge = cfg.bridge.clone();
        rec.mtu = cfg.mtu;
        rec.options = [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.bridge.name", cfg.bridge.as_str()),
            ("com.docker.network.driver.mtu", &cfg.mtu.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.ensure_bridge(rec)
    }

    fn ensure_bridge(&self, rec: &NetworkRecord) -> Result<()> {
        let (Some(subnet), Some(gw)) = (rec.subnet, rec.gateway) else {
            return Ok(());
        };
        link::ensure_bridge(&link::BridgeSpec {
            name: rec.bridge.clone(),
            addr: gw,
            prefix: subnet.prefix,
            mtu: if rec.mtu > 0 { rec.mtu } else { 1500 },
            addr6: rec.v6(),
        })
        .map_err(net_err)
    }

    pub fn taken_subnets(&self) -> Vec<Subnet> {
        self.nets
            .read()
            .expect("nets lock")
            .values()
            .filter_map(|n| n.rec.subnet)
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<Net>> {
        self.nets
            .read()
            .expect("nets lock")
            .values()
            .cloned()
            .collect()
    }

    /// By full ID, name, or unique ID prefix (docker's order).
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Net>> {
        let nets = self.nets.read().expect("nets lock");
        if let Some(n) = nets.get(name_or_id) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.values().find(|n| n.rec.name == name_or_id) {
            return Ok(n.clone());
        }
        let found: Vec<_> = nets
            .values()
            .filter(|n| !name_or_id.is_empty() && n.rec.id.starts_with(name_or_id))
            .collect();
        match found.len() {
            1 => Ok(found[0].clone()),
            0 => Err(Error::NotFound(format!("network {name_or_id} not found"))),
            _ => Err(Error::NotFound(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                found.len()
            ))),
        }
    }

    pub fn default_bridge(&self) -> Option<Arc<Net>> {
        self.all()
            .into_iter()
            .find(|n| n.rec.predefined && n.rec.name == "bridge")
    }

    /// [`NetState::sync_nat`] from async code: `nft` runs for 10-40 ms, so the worker thread
    /// is handed over to the runtime's other tasks meanwhile.
    pub fn sync_nat_in_task(&self) -> Result<()> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.sync_nat())
            }
            _ => self.sync_nat(),
        }
    }

    /// Makes the nftables table match every bridge and every published port.
    pub fn sync_nat(&self) -> Result<()> {
        let _sync = self.nat_sync.lock().unwrap_or_else(|p| p.into_inner());
        let mut rs = Ruleset::default();
        if let Some(net) = &self.cfg.cluster_network {
            match berth_network::Subnet::parse(net) {
                Ok(s) => rs.routed.push(s),
                Err(e) => tracing::warn!(error = %e, "cluster network"),
            }
        }
        for n in self.all() {
            if let (true, Some(subnet)) = (n.rec.is_bridge(), n.rec.subnet) {
                rs.networks.push(NetRules {
                    bridge: n.rec.bridge.clone(),
                    subnet,
                    internal: n.rec.internal,
                });
                if n.rec.options.get("com.docker.network.bridge.enable_icc")
                    == Some(&"false".to_string())
                {
                    rs.no_icc.push(n.rec.bridge.clone());
                }
            }
        }
        for (_, rules) in self.published.lock().expect("published lock").values() {
            rs.ports.extend(rules.iter().cloned());
        }
        for n in self.all() {
            if let (true, true, Some(subnet)) =
                (n.rec.is_bridge(), n.rec.enable_ipv6, n.rec.subnet6)
            {
                rs.networks6.push(berth_network::nat::NetRules6 {
                    bridge: n.rec.bridge.clone(),
                    subnet,
                    internal: n.rec.internal,
                });
            }
        }
        for (rules, _) in self.published6.lock().expect("published6 lock").values() {
            rs.ports6.extend(rules.iter().cloned());
        }
        rs.networks.sort_by(|a, b| a.bridge.cmp(&b.bridge));
        rs.ports.sort_by_key(|p| (p.host_port, p.proto, p.host_ip));
        self.nat.apply(&rs).map_err(net_err)
    }
}

/// `172.30.0.1/16` → (172.30.0.1, 16)
pub(crate) fn parse_cidr_addr(s: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::InvalidParameter(format!("invalid CIDR address: {s}"));
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// A port key of `ExposedPorts`/`PortBindings`: `80/tcp`, `53/udp`, `80` (tcp).
pub(crate) fn parse_port_key(k: &str) -> Result<(u16, u16, Proto)> {
    let (ports, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => {
            return Err(Error::InvalidParameter(
                "sctp ports are not supported by berth".into(),
            ))
        }
        other => return Err(Error::InvalidParameter(format!("invalid proto: {other}"))),
    };
    let (a, b) = parse_port_range(ports).ok_or_else(|| {
        Error::InvalidParameter(format!("invalid port specification: \"{ports}\""))
    })?;
    Ok((a, b, proto))
}

/// `80` → (80, 80); `8000-8010` → (8000, 8010); 0 or reversed ranges are refused.
pub(crate) fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let p = s.trim().parse().ok()?;
            (p, p)
        }
    };
    (a > 0 && a <= b).then_some((a, b))
}

/// `/etc/hosts` as docker writes it for a container with addresses `own`.
/// The names of the container's own line in /etc/hosts, as docker writes them: the FQDN
/// (hostname, plus `.domainname` when set) and, when that has a dot, the bare host name.
pub(crate) fn own_hosts_names(hostname: &str, domainname: &str) -> String {
    let fqdn = if domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{domainname}")
    };
    match fqdn.split_once('.') {
        Some((short, _)) => format!("{fqdn} {short}"),
        None => fqdn,
    }
}

pub(crate) fn hosts_file(hostname: &str, own: &[Ipv4Addr], extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (host, ip) in extra {
        s.push_str(&format!("{ip}\t{host}\n"));
    }
    for ip in own {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

impl Engine {
    pub(crate) fn net(&self) -> &NetState {
        &self.net
    }

    pub(crate) fn networks_dir(&self) -> std::path::PathBuf {
        self.cfg.data_root.join("network")
    }

    /// Emits a network event (`create`, `destroy`, `connect`, `disconnect`).
    pub(crate) fn emit_network(&self, n: &NetworkRecord, action: &str, container: Option<&str>) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), n.name.clone());
        attrs.insert("type".to_string(), n.driver.clone());
        if let Some(c) = container {
            attrs.insert("container".to_string(), c.to_string());
        }
        self.events.emit("network", action, &n.id, attrs);
    }

    pub(crate) fn save_network(&self, rec: &NetworkRecord) -> Result<()> {
        write_record(&self.networks_dir(), rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_keys_and_ranges() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, 80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, 53, Proto::Udp));
        assert_eq!(
            parse_port_key("8000-8010/tcp").unwrap(),
            (8000, 8010, Proto::Tcp)
        );
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("90-80/tcp").is_err());
        assert!(parse_port_key("80/xyz").is_err());
        assert!(parse_port_key("http/tcp").is_err());
    }

    #[test]
    fn hosts_file_has_own_and_extra_entries() {
        let h = hosts_file(
            "abc",
            &["172.18.0.2".parse().unwrap()],
            &[("db".into(), "10.1.2.3".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.1.2.3\tdb\n"));
        assert!(h.ends_with("172.18.0.2\tabc\n"));
    }

    #[test]
    fn own_names_as_docker_writes_them() {
        assert_eq!(own_hosts_names("h1", ""), "h1");
        assert_eq!(own_hosts_names("h1", "example.org"), "h1.example.org h1");
        assert_eq!(own_hosts_names("h2.foo.bar", ""), "h2.foo.bar h2");
    }

    #[test]
    fn nft_table_names() {
        let mut c = NetConfig::default();
        assert_eq!(c.nft_table(), "berth");
        c.bridge = "bt-12ab".into();
        assert_eq!(c.nft_table(), "berth_bt_12ab");
    }
}
