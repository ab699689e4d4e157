//! The network verbs: create, inspect, list, remove, prune, connect, disconnect.

use crate::container::now_nanos;
use crate::container_network::{mode_of, Mode};
use crate::gwbridge::WayOut;
use crate::network::{net_err, random_id, Net, NetworkRecord};
use crate::timefmt::{format_rfc3339_nanos, from_unix_nanos};
use crate::{Engine, Error, Result};
use berth_network::ipam::Cidr;
use berth_network::{ipam, link, Pool, Subnet, Subnet6};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Body of `POST /networks/create` (the parts berth uses).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamBody>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub check_duplicate: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamBody {
    pub driver: String,
    pub config: Option<Vec<IpamConfig>>,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    pub subnet: String,
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    pub gateway: String,
}

/// Whether the IPv6 IPAM config of a create request names its gateway.
fn ipv6_gateway_given(req: &NetworkCreate) -> bool {
    req.ipam
        .as_ref()
        .and_then(|i| i.config.as_ref())
        .and_then(|c| c.iter().find(|c| c.subnet.contains(':')))
        .is_some_and(|c| !c.gateway.is_empty())
}

/// dockerd 20.10 takes any network name (`my net`, `a b/c`); control characters, which no
/// client can send in a path, are refused.
fn valid_name(n: &str) -> bool {
    !n.is_empty() && !n.chars().any(char::is_control)
}

fn check_name(req: &NetworkCreate) -> Result<String> {
    let name = req.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::InvalidParameter(
            "network name must not be empty".into(),
        ));
    }
    if !valid_name(&name) {
        return Err(Error::InvalidParameter(format!(
            "invalid network name \"{name}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if let Some(ipam) = &req.ipam {
        if !ipam.driver.is_empty() && ipam.driver != "default" {
            return Err(Error::NotFound(format!(
                "plugin \"{}\" not found",
                ipam.driver
            )));
        }
    }
    Ok(name)
}

impl Engine {
    /// `POST /networks/create`: overlay networks (cluster mode) go through etcd, the others
    /// are made here.
    pub async fn network_create_any(self: &Arc<Self>, req: NetworkCreate) -> Result<Value> {
        if req.driver == "overlay" {
            check_name(&req)?;
            return self.overlay_create(req).await;
        }
        self.network_create(req)
    }

    /// `DELETE /networks/{id}`: an overlay network is removed from the whole cluster.
    pub async fn network_remove_any(self: &Arc<Self>, name_or_id: &str) -> Result<()> {
        let n = self.net().get(name_or_id)?;
        if n.rec.is_overlay() {
            return self.overlay_remove(&n).await;
        }
        self.network_remove(name_or_id)
    }

    pub fn network_create(&self, req: NetworkCreate) -> Result<Value> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::InvalidParameter(
                "network name must not be empty".into(),
            ));
        }
        if !valid_name(&name) {
            return Err(Error::InvalidParameter(format!(
                "invalid network name \"{name}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        match driver.as_str() {
            "bridge" => {}
            "overlay" => {
                return Err(Error::Internal(
                    "overlay networks are created by network_create_any".into(),
                ))
            }
            "host" | "null" => {
                return Err(Error::Conflict(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            other => {
                return Err(Error::NotFound(format!("plugin \"{other}\" not found")));
            }
        }
        if let Some(ipam) = &req.ipam {
            if !ipam.driver.is_empty() && ipam.driver != "default" {
                return Err(Error::NotFound(format!(
                    "plugin \"{}\" not found",
                    ipam.driver
                )));
            }
        }
        let _lock = ipam::host_lock().map_err(net_err)?;
        if self.net().all().iter().any(|n| n.rec.name == name) {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let v6 = if req.enable_ipv6 {
            self.ipv6_config(&req)?
        } else {
            None
        };
        // the first IPv4 config
        let v4 = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.iter().find(|c| !c.subnet.contains(':')));
        let taken = self.net().taken_subnets();
        let (subnet, gateway, range) = match v4 {
            Some(c) if !c.subnet.is_empty() => {
                let s = Subnet::parse(&c.subnet).map_err(net_err)?;
                checked_pool(s, &c.gateway, &c.ip_range, &taken)?
            }
            Some(c) if !c.gateway.is_empty() || !c.ip_range.is_empty() => {
                return Err(Error::InvalidParameter(
                    "gateway or ip-range given without a subnet".into(),
                ))
            }
            _ => {
                let pools = self.net().cfg.pools();
                let s = ipam::pick_subnet_in(&pools, &taken).map_err(net_err)?;
                (s, s.first_host(), None)
            }
        };
        let pool = Pool::new(subnet, gateway, range).map_err(net_err)?;
        let id = random_id();
        let options = req.options.clone().unwrap_or_default();
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.len() > 15 {
            return Err(Error::InvalidParameter(format!(
                "bridge name {bridge} is longer than 15 characters"
            )));
        }
        if self.net().all().iter().any(|n| n.rec.bridge == bridge) {
            return Err(Error::Conflict(format!(
                "bridge name {bridge} is in use by another network"
            )));
        }
        let mtu = options
            .get("com.docker.network.driver.mtu")
            .map(|m| {
                m.parse::<u32>()
                    .map_err(|_| Error::InvalidParameter(format!("invalid MTU: {m}")))
            })
            .transpose()?
            // berthd --mtu is the default bridge's, as docker's; user networks say their own
            .unwrap_or(1500);
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: now_nanos(),
            subnet: Some(subnet),
            gateway: Some(gateway),
            ip_range: range,
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            subnet6: v6.map(|v| v.0),
            gateway6: v6.map(|v| v.1),
            ip_range6: v6.and_then(|v| v.2),
            gateway6_given: v6.is_some() && ipv6_gateway_given(&req),
            bridge: bridge.clone(),
            mtu,
            options,
            labels: req.labels.clone().unwrap_or_default(),
            ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()),
            predefined: false,
            vni: 0,
        };
        link::ensure_bridge(&link::BridgeSpec {
            name: bridge.clone(),
            addr: gateway,
            prefix: subnet.prefix,
            mtu,
            addr6: rec.v6(),
        })
        .map_err(net_err)?;
        if let Err(e) = self.save_network(&rec) {
            let _ = link::delete_link(&bridge);
            return Err(e);
        }
        self.net().nets.write().expect("nets lock").insert(
            id.clone(),
            Arc::new(Net {
                rec: rec.clone(),
                pool: Mutex::new(Some(pool)),
                pool6: Mutex::new(rec.pool6()?),
            }),
        );
        drop(_lock);
        if let Err(e) = self.net().sync_nat_in_task() {
            tracing::warn!(network = %name, "nftables: {e}");
        }
        self.emit_network(&rec, "create", None);
        Ok(json!({"Id": id, "Warning": ""}))
    }

    /// The IPv6 pool of an `--ipv6` network: (subnet, gateway, range) of its IPv6 IPAM
    /// config; without one, an error as dockerd 20.10's (it has no default IPv6 pools).
    fn ipv6_config(
        &self,
        req: &NetworkCreate,
    ) -> Result<Option<(Subnet6, Ipv6Addr, Option<Subnet6>)>> {
        let c = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.iter().find(|c| c.subnet.contains(':')));
        let Some(c) = c else {
            return Err(Error::InvalidParameter(
                "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
            ));
        };
        let s = Subnet6::parse(&c.subnet).map_err(net_err)?;
        let taken: Vec<Subnet6> = self
            .net()
            .all()
            .iter()
            .filter_map(|n| n.rec.subnet6)
            .collect();
        checked_pool(s, &c.gateway, &c.ip_range, &taken).map(Some)
    }

    /// Running containers with an address on `net`: (id, name, endpoint).
    fn network_users(&self, net_id: &str) -> Vec<(String, String, crate::network::Endpoint)> {
        let mut out = Vec::new();
        for c in self.all_containers() {
            let rec = c.record();
            for ep in rec.networks.values() {
                if ep.network_id == net_id && (ep.ip.is_some() || rec.state.status.is_running()) {
                    out.push((rec.id.clone(), rec.name.clone(), ep.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    fn network_json(&self, n: &Net) -> Value {
        let r = &n.rec;
        let mut containers = serde_json::Map::new();
        for (id, name, ep) in self.network_users(&r.id) {
            // a container's way out of its overlays shows as docker lists it on
            // docker_gwbridge: `gateway_<sandbox id>`
            let name = if ep.gwbridge {
                format!("gateway_{}", id.get(..12).unwrap_or(&id))
            } else {
                name
            };
            containers.insert(
                id,
                json!({
                    "Name": name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac,
                    "IPv4Address": ep.ip.map(|ip| format!("{ip}/{}", ep.prefix)).unwrap_or_default(),
                    "IPv6Address": ep.ip6.map(|ip| format!("{ip}/{}", ep.prefix6)).unwrap_or_default()
                }),
            );
        }
        let mut config: Vec<Value> = match r.subnet {
            Some(s) => {
                let mut c = json!({"Subnet": s.to_string()});
                if let Some(g) = r.gateway {
                    c["Gateway"] = json!(g.to_string());
                }
                if let Some(rg) = r.ip_range {
                    c["IPRange"] = json!(rg.to_string());
                }
                vec![c]
            }
            None => vec![],
        };
        if let (true, Some(s)) = (r.enable_ipv6, r.subnet6) {
            let mut c = json!({"Subnet": s.to_string()});
            if let (Some(g), true) = (r.gateway6, r.gateway6_given) {
                c["Gateway"] = json!(g.to_string());
            }
            if let Some(rg) = r.ip_range6 {
                c["IPRange"] = json!(rg.to_string());
            }
            config.push(c);
        }
        json!({
            "Name": r.name,
            "Id": r.id,
            "Created": format_rfc3339_nanos(Some(from_unix_nanos(r.created))),
            "Scope": if r.is_overlay() { "global" } else { "local" },
            "Driver": r.driver,
            "EnableIPv6": r.enable_ipv6,
            "IPAM": {
                "Driver": "default",
                "Options": if r.predefined { Value::Null } else { json!(r.ipam_options) },
                "Config": config
            },
            "Internal": r.internal,
            "Attachable": r.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": r.options,
            "Labels": r.labels
        })
    }

    pub fn network_inspect(&self, name_or_id: &str) -> Result<Value> {
        let n = self.net().get(name_or_id)?;
        Ok(self.network_json(&n))
    }

    fn network_matches(&self, n: &Net, filters: &HashMap<String, Vec<String>>) -> Result<bool> {
        let r = &n.rec;
        for (k, vals) in filters {
            let ok = match k.as_str() {
                "name" => vals.iter().any(|v| r.name.contains(v.as_str())),
                "id" => vals.iter().any(|v| r.id.starts_with(v.as_str())),
                "driver" => vals.iter().any(|v| &r.driver == v),
                "scope" => vals
                    .iter()
                    .any(|v| v == if r.is_overlay() { "global" } else { "local" }),
                "type" => vals.iter().any(|v| match v.as_str() {
                    "custom" => !r.predefined,
                    "builtin" => r.predefined,
                    _ => false,
                }),
                "label" => berth_util::filters::labels_match(vals, &r.labels),
                "dangling" => vals.iter().any(|v| {
                    let dangling = !r.predefined && self.network_users(&r.id).is_empty();
                    matches!(v.as_str(), "true" | "1") == dangling
                }),
                "until" => true,
                other => return Err(Error::InvalidParameter(format!("Invalid filter '{other}'"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn network_list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Value> {
        let mut nets = self.net().all();
        nets.sort_by(|a, b| a.rec.name.cmp(&b.rec.name));
        let mut out = Vec::new();
        for n in nets {
            if self.network_matches(&n, filters)? {
                // the list names no containers (dockerd fills them in inspect only)
                let mut v = self.network_json(&n);
                v["Containers"] = serde_json::json!({});
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    }

    pub fn network_remove(&self, name_or_id: &str) -> Result<()> {
        let n = self.net().get(name_or_id)?;
        if n.rec.predefined {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.rec.name
            )));
        }
        if n.rec.is_overlay() {
            return Err(Error::Internal(
                "overlay networks are removed by network_remove_any".into(),
            ));
        }
        let users = self.network_users(&n.rec.id);
        if !users.is_empty() {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.rec.name, n.rec.id
            )));
        }
        link::delete_link(&n.rec.bridge).map_err(net_err)?;
        let _ = std::fs::remove_file(self.networks_dir().join(format!("{}.json", n.rec.id)));
        self.net()
            .nets
            .write()
            .expect("nets lock")
            .remove(&n.rec.id);
        if let Err(e) = self.net().sync_nat_in_task() {
            tracing::warn!(network = %n.rec.name, "nftables: {e}");
        }
        self.emit_network(&n.rec, "destroy", None);
        Ok(())
    }

    /// Removes user networks no running container is on; returns their names.
    pub fn network_prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let until = filters
            .get("until")
            .and_then(|v| v.first())
            .and_then(|s| s.parse::<u128>().ok())
            .map(|secs| secs * 1_000_000_000);
        let mut f = filters.clone();
        f.remove("until");
        for n in self.net().all() {
            // overlay networks are the cluster's: `network rm` them by name
            if n.rec.predefined || n.rec.is_overlay() || !self.network_users(&n.rec.id).is_empty() {
                continue;
            }
            if !self.network_matches(&n, &f)? {
                continue;
            }
            if until.is_some_and(|u| n.rec.created >= u) {
                continue;
            }
            if self.network_remove(&n.rec.id).is_ok() {
                removed.push(n.rec.name.clone());
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// `POST /networks/{id}/connect`: recorded for a stopped container; a running one gets
    /// its interface now.
    pub async fn network_connect(
        self: &Arc<Self>,
        net: &str,
        container: &str,
        endpoint: &Value,
    ) -> Result<()> {
        let n = self.net().get(net)?;
        let c = self.get_container(container)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        match mode_of(&rec.host_config.network_mode) {
            Mode::Host | Mode::Container(_) | Mode::None => {
                return Err(Error::Forbidden(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ))
            }
            _ => {}
        }
        if !n.rec.has_veths() {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if rec.networks.contains_key(&n.rec.name) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.rec.name
            )));
        }
        let mut ep = self.endpoint_from(&n.rec, endpoint)?;
        let running = rec.state.status.is_running();
        // a bridge network connected to a running container that went out through the
        // gateway bridge: its way out moves to the new network at once (docker's move of a
        // sandbox's external connectivity): the gateway bridge endpoint goes, the default
        // route and the published ports follow the new endpoint
        // (an internal network is no way out: the gateway bridge stays, as docker's does)
        let takes_over = running
            && n.rec.is_bridge()
            && !n.rec.internal
            && rec.networks.values().any(|e| e.gwbridge);
        if takes_over {
            self.gwbridge_take_down(&c).await;
        }
        if running {
            if let Err(e) = self
                .connect_running(&c, &n, &mut ep, rec.state.pid, takes_over)
                .await
            {
                if takes_over {
                    self.gwbridge_bring_back(&c, rec.state.pid).await;
                    c.save(&self.container_dir(&c.id))?;
                }
                return Err(e);
            }
        }
        c.update(|r| {
            r.networks.insert(n.rec.name.clone(), ep);
        });
        if running && n.rec.is_overlay() {
            // an overlay connected to a running container with no way out (all its networks
            // were disconnected): the gateway bridge gives it one, as at start
            self.gwbridge_bring_back(&c, rec.state.pid).await;
        }
        c.save(&self.container_dir(&c.id))?;
        if running && n.rec.is_overlay() {
            self.overlay_publish(&c).await;
        }
        if running {
            self.emit_network(&n.rec, "connect", Some(&c.id));
        }
        Ok(())
    }

    /// A running container's new endpoint `ep` on `n`: address, veth, DNS and files.
    /// `way_out`: it takes the default route and the published ports over.
    pub(crate) async fn connect_running(
        self: &Arc<Self>,
        c: &Arc<crate::Container>,
        n: &Arc<Net>,
        ep: &mut crate::network::Endpoint,
        pid: i32,
        way_out: bool,
    ) -> Result<()> {
        let (Some(subnet), Some(gw)) = (n.rec.subnet, n.rec.gateway) else {
            return Err(Error::Internal(format!(
                "network {} has no subnet",
                n.rec.name
            )));
        };
        let overlay = n.rec.is_overlay();
        let ip = if overlay {
            self.overlay_take_ip(n, ep.static_ip, &c.id).await?
        } else {
            let mut pool = n.pool.lock().expect("pool lock");
            let pool = pool
                .as_mut()
                .ok_or_else(|| Error::Internal("network has no pool".into()))?;
            match ep.static_ip {
                Some(ip) => {
                    pool.reserve(ip).map_err(net_err)?;
                    ip
                }
                None => pool.allocate().map_err(net_err)?,
            }
        };
        let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
        let existing = {
            let ns = netns.clone();
            tokio::task::spawn_blocking(move || link::links_in_netns(&ns))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .unwrap_or_default()
        };
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !existing.contains(n))
            .unwrap_or_else(|| "eth9".into());
        let mac = if ep.mac_request.is_empty() {
            berth_network::mac_for(ip)
        } else {
            parse_mac_or(&ep.mac_request, ip)
        };
        let ip6 = match n.take_ip6(ep.static_ip6, &mac) {
            Ok(v) => v,
            Err(e) => {
                if let Some(p) = n.pool.lock().expect("pool lock").as_mut() {
                    p.release(ip);
                }
                return Err(e);
            }
        };
        let v6 = n.rec.v6();
        let spec = link::VethSpec {
            host_name: format!("veth{}", &random_id()[..7]),
            bridge: n.rec.bridge.clone(),
            netns,
            ifname: ifname.clone(),
            addr: ip,
            prefix: subnet.prefix,
            gateway: (way_out && !overlay).then_some(gw),
            mac,
            mtu: if n.rec.mtu > 0 { n.rec.mtu } else { 1500 },
            addr6: ip6.zip(v6.map(|v| v.1)),
            gateway6: if way_out && !overlay && ip6.is_some() {
                v6.map(|v| v.0)
            } else {
                None
            },
        };
        let engine = self.clone();
        let rec_n = n.rec.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<()> {
            if rec_n.is_overlay() {
                engine.overlay_plane_up(&rec_n)?;
            }
            link::attach_veth(&spec).map_err(net_err)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        if let Err(e) = res {
            if overlay {
                self.overlay_release(&c.id, vec![(n.rec.id.clone(), ip)]);
            } else if let Some(p) = n.pool.lock().expect("pool lock").as_mut() {
                p.release(ip);
            }
            n.release_ip6(ip6);
            return Err(e);
        }
        if way_out && !overlay {
            self.net_move_ports(c, ip, ip6, &n.rec.bridge);
        }
        ep.ip6 = ip6;
        ep.prefix6 = if ip6.is_some() {
            v6.map(|v| v.1).unwrap_or(0)
        } else {
            0
        };
        ep.gateway6 = if ip6.is_some() { v6.map(|v| v.0) } else { None };
        ep.ip = Some(ip);
        ep.prefix = subnet.prefix;
        ep.gateway = (!overlay).then_some(gw);
        ep.mac = berth_network::format_mac(&mac);
        ep.endpoint_id = random_id();
        ep.ifname = ifname;
        // (the gateway bridge endpoint is in no name service nor file)
        if n.rec.is_user() && !ep.gwbridge {
            if let Err(e) = self.serve_dns(&c.id, pid) {
                tracing::warn!(id = %c.id, "DNS server: {e}");
            }
            if let Err(e) = self.net_files_on_connect(&c.record(), ip) {
                tracing::warn!(id = %c.id, "resolv.conf / hosts on connect: {e}");
            }
        }
        Ok(())
    }

    pub async fn network_disconnect(
        self: &Arc<Self>,
        net: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let n = self.net().get(net)?;
        let c = match self.get_container(container) {
            Ok(c) => c,
            Err(e) if force => {
                tracing::debug!("disconnect -f of a missing container: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let _op = c.op.lock().await;
        let rec = c.record();
        // (the gateway bridge endpoint is not one the container was connected to)
        let Some(ep) = rec
            .networks
            .get(&n.rec.name)
            .filter(|e| !e.gwbridge)
            .cloned()
        else {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, n.rec.name
            )));
        };
        if !n.rec.has_veths() {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if let (Some(ip), true) = (ep.ip, rec.state.status.is_running()) {
            let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", rec.state.pid));
            let ifname = ep.ifname.clone();
            let _ =
                tokio::task::spawn_blocking(move || link::remove_in_netns(&netns, &ifname)).await;
            if let Some(p) = n.pool.lock().expect("pool lock").as_mut() {
                p.release(ip);
            }
            n.release_ip6(ep.ip6);
            self.emit_network(&n.rec, "disconnect", Some(&c.id));
        }
        c.update(|r| {
            r.networks.remove(&n.rec.name);
        });
        if let (Some(ip), true) = (ep.ip, n.rec.is_overlay()) {
            // after the record lost the endpoint: the devices go if nobody else is on it
            self.overlay_release(&c.id, vec![(n.rec.id.clone(), ip)]);
            if rec.state.status.is_running() {
                self.gwbridge_leave_if_unneeded(&c).await;
            }
        } else if ep.ip.is_some() && n.rec.is_bridge() && rec.state.status.is_running() {
            self.way_out_after_disconnect(&c, rec.state.pid).await;
        }
        c.save(&self.container_dir(&c.id))?;
        Ok(())
    }
}

impl Engine {
    /// After a running container left a bridge network: if that endpoint was its way out
    /// (no default route is left in its namespace), the way out moves as docker moves a
    /// sandbox's gateway: to its next non-internal bridge endpoint in interface order
    /// (default route, published ports), else, on overlays, to a new gateway bridge
    /// endpoint, else to an internal bridge endpoint; with none, its published ports are
    /// given back.
    async fn way_out_after_disconnect(self: &Arc<Self>, c: &Arc<crate::Container>, pid: i32) {
        let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
        let ns = netns.clone();
        match tokio::task::spawn_blocking(move || link::default_route_dev_in_netns(&ns)).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(_))) => return,
            Ok(Err(e)) => {
                tracing::warn!(id = %c.id, "default route: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(id = %c.id, "default route: {e}");
                return;
            }
        }
        let rec = c.record();
        let eps: Vec<(&crate::network::Endpoint, Option<Arc<Net>>)> = self
            .ordered_endpoints(&rec)
            .iter()
            .filter_map(|name| rec.networks.get(name))
            .map(|ep| (ep, self.net().get(&ep.network_id).ok()))
            .collect();
        let next = |internal| {
            crate::gwbridge::next_way_out(eps.iter().map(|(e, n)| (*e, n.as_deref())), internal)
        };
        // a bridge network that is not internal; else, on overlays, the gateway bridge;
        // else an internal one (docker's sandbox takes its gateway last)
        let mut next_out = next(false);
        if next_out.is_none() {
            if self.gwbridge_bring_back(c, pid).await {
                return;
            }
            next_out = next(true);
        }
        if let Some(WayOut {
            ifname,
            ip,
            gw,
            ip6,
            gw6,
            bridge,
        }) = next_out
        {
            let res = tokio::task::spawn_blocking(move || {
                link::add_default_route_in_netns(&netns, &ifname, gw, gw6)
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(id = %c.id, "default route via {gw}: {e}"),
                Err(e) => tracing::warn!(id = %c.id, "default route via {gw}: {e}"),
            }
            self.net_move_ports(c, ip, ip6, &bridge);
        } else {
            self.net_unpublish(c);
        }
    }
}

fn parse_mac_or(s: &str, ip: Ipv4Addr) -> [u8; 6] {
    let parts: Option<Vec<u8>> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    parts
        .and_then(|p| p.try_into().ok())
        .unwrap_or_else(|| berth_network::mac_for(ip))
}

/// A network's subnet of either family checked against its IPAM config as dockerd checks it:
/// no overlap with another network's, its gateway (the first host when none is given) and its
/// `ip-range` inside it. (subnet, gateway, range)
fn checked_pool<S: Cidr>(
    subnet: S,
    gateway: &str,
    ip_range: &str,
    taken: &[S],
) -> Result<(S, S::Addr, Option<S>)> {
    if taken.iter().any(|t| t.overlaps_with(&subnet)) {
        return Err(Error::Conflict(
            "Pool overlaps with other one on this address space".into(),
        ));
    }
    let gw = if gateway.is_empty() {
        subnet.gateway_default()
    } else {
        gateway
            .parse::<S::Addr>()
            .map_err(|_| Error::InvalidParameter(format!("invalid gateway address: {gateway}")))?
    };
    if !subnet.holds(gw) {
        return Err(Error::InvalidParameter(format!(
            "no matching subnet for gateway {gw}"
        )));
    }
    let range = if ip_range.is_empty() {
        None
    } else {
        let r = S::parse_cidr(ip_range).map_err(net_err)?;
        if !subnet.holds(r.base_addr()) || r.prefix_len() < subnet.prefix_len() {
            return Err(Error::InvalidParameter(format!(
                "no matching subnet for range {ip_range}"
            )));
        }
        Some(r)
    };
    Ok((subnet, gw, range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names() {
        assert!(valid_name("ac-n1"));
        assert!(valid_name("a.b_c"));
        assert!(valid_name("my net"));
        assert!(valid_name("a b/c"));
        assert!(!valid_name("a\nb"));
        assert!(!valid_name(""));
    }

    #[test]
    fn create_body_parses_docker_cli_28() {
        let b: NetworkCreate = serde_json::from_str(r#"{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.30.0.0/16"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"ac-n1"}"#).unwrap();
        assert_eq!(b.name, "ac-n1");
        assert_eq!(b.ipam.unwrap().config.unwrap()[0].subnet, "172.30.0.0/16");
    }

    /// checked_pool's error text for a pool of either family
    fn pool_err<S: Cidr>(s: S, gateway: &str, range: &str, taken: &[S]) -> String {
        checked_pool(s, gateway, range, taken)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn pools_of_both_families_are_checked_alike() {
        let v4 = Subnet::parse("172.30.0.0/16").unwrap();
        let (s, gw, range) = checked_pool(v4, "", "", &[]).unwrap();
        assert_eq!((s, gw, range), (v4, Ipv4Addr::new(172, 30, 0, 1), None));
        let (_, gw, range) = checked_pool(v4, "172.30.9.9", "172.30.1.0/24", &[]).unwrap();
        assert_eq!(gw, Ipv4Addr::new(172, 30, 9, 9));
        assert_eq!(range, Some(Subnet::parse("172.30.1.0/24").unwrap()));
        let v6 = Subnet6::parse("fd00:1::/64").unwrap();
        let (_, gw, _) = checked_pool(v6, "", "", &[]).unwrap();
        assert_eq!(gw, "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        let taken4 = [Subnet::parse("172.30.5.0/24").unwrap()];
        let taken6 = [Subnet6::parse("fd00:1::/48").unwrap()];
        for (e, want) in [
            (
                pool_err(v4, "", "", &taken4),
                "Pool overlaps with other one",
            ),
            (
                pool_err(v4, "10.0.0.1", "", &[]),
                "no matching subnet for gateway 10.0.0.1",
            ),
            (
                pool_err(v4, "nope", "", &[]),
                "invalid gateway address: nope",
            ),
            (
                pool_err(v4, "", "172.0.0.0/8", &[]),
                "no matching subnet for range 172.0.0.0/8",
            ),
            (
                pool_err(v6, "", "", &taken6),
                "Pool overlaps with other one",
            ),
            (
                pool_err(v6, "fd00:2::1", "", &[]),
                "no matching subnet for gateway fd00:2::1",
            ),
            (
                pool_err(v6, "", "fd00:1::/56", &[]),
                "no matching subnet for range fd00:1::/56",
            ),
        ] {
            assert!(e.contains(want), "{e}");
        }
    }
}
