//! A container's networking: which networks it is on (decided at create), addresses, ports,
//! hosts and resolv.conf (before the shim starts), veths and DNS (between READY and START),
//! and the release of all of it when the container exits.

use crate::container::{Container, Record, Status};
use crate::network::{
    hosts_file, net_err, parse_port_key, parse_port_range, random_id, Endpoint, PortMap,
};
use crate::{Engine, Error, Result};
use berth_network::dns::{self, Lookup};
use berth_network::nat::{PortRule, PortRule6, Proto};
use berth_network::{link, ports};
use berth_types::CreateRequest;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

/// How the container's network namespace is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetNs {
    /// a new namespace (bridge networks, `none`)
    New,
    /// the host's (`--network host`)
    Host,
    /// another container's (`container:<x>`): its `/proc/<pid>/ns/net`
    Join(String),
}

/// What `spec::build` needs to know of the network.
#[derive(Debug, Clone)]
pub(crate) struct NetPlan {
    pub ns: NetNs,
    /// the directory whose `hosts`, `hostname` and `resolv.conf` are bind-mounted
    pub files: PathBuf,
    /// docker's variables for legacy `--link`s (`DB_PORT_5432_TCP_ADDR=…`)
    pub link_env: Vec<String>,
}

fn hc_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn has_entries(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    }
}

/// `HostConfig.NetworkMode` read as docker does.
pub(crate) enum Mode<'a> {
    Bridge,
    Host,
    None,
    Container(&'a str),
    User(&'a str),
}

pub(crate) fn mode_of(m: &str) -> Mode<'_> {
    match m {
        "" | "default" | "bridge" => Mode::Bridge,
        "host" => Mode::Host,
        "none" => Mode::None,
        _ => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c),
            None => Mode::User(m),
        },
    }
}

/// Writes `text` in place (the container's bind mount sees the same inode) unless the file
/// already holds it: a write on this ext4 costs far more than the read.
fn write_if_changed(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, text)
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Engine {
    /// Checks the network options of a create request as docker does and returns the
    /// container's endpoints, keyed by network name. May set the hostname (host mode).
    pub(crate) fn plan_networks(
        &self,
        req: &mut CreateRequest,
        hostname_given: bool,
    ) -> Result<BTreeMap<String, Endpoint>> {
        let hc = &req.host_config;
        let x = &hc.extra;
        let mode = hc.network_mode.clone();
        let published = has_entries(x.get("PortBindings"))
            || x.get("PublishAllPorts")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
        let conflict = |m: &str| Err(Error::InvalidParameter(format!("conflicting options: {m}")));
        match mode_of(&mode) {
            Mode::Container(_) => {
                if hostname_given {
                    return conflict("hostname and the network mode");
                }
                if has_entries(x.get("Links")) {
                    return conflict("container type network can't be used with links. This would result in undefined behavior");
                }
                if has_entries(x.get("Dns")) {
                    return conflict("dns and the network mode");
                }
                if has_entries(x.get("ExtraHosts")) {
                    return conflict("custom host-to-IP mapping and the network mode");
                }
                if published {
                    return conflict("port publishing and the container type network mode");
                }
                if has_entries(req.config.extra.get("ExposedPorts")) {
                    return conflict("port exposing and the container type network mode");
                }
            }
            Mode::Host => {
                if has_entries(x.get("Links")) {
                    return conflict("host type networking can't be used with links. This would result in undefined behavior");
                }
                if !hostname_given {
                    req.config.hostname = host_hostname();
                }
            }
            _ => {}
        }
        if matches!(mode_of(&mode), Mode::Container(_) | Mode::Host)
            && req
                .config
                .extra
                .get("MacAddress")
                .and_then(|v| v.as_str())
                .is_some_and(|m| !m.is_empty())
        {
            return conflict("mac-address and the network mode");
        }
        // check port keys early: a bad one is a 400 at create, as docker
        for key in ["ExposedPorts"] {
            if let Some(Value::Object(m)) = req.config.extra.get(key) {
                for k in m.keys() {
                    parse_port_key(k)?;
                }
            }
        }
        if let Some(Value::Object(m)) = x.get("PortBindings") {
            for (k, v) in m {
                parse_port_key(k)?;
                for b in v.as_array().into_iter().flatten() {
                    let hp = b.get("HostPort").and_then(|p| p.as_str()).unwrap_or("");
                    // "0" is any free port, as an empty one (dockerd)
                    if !hp.is_empty() && hp != "0" && parse_port_range(hp).is_none() {
                        return Err(Error::InvalidParameter(format!(
                            "invalid port specification: \"{hp}\""
                        )));
                    }
                    let hip = b.get("HostIp").and_then(|p| p.as_str()).unwrap_or("");
                    if !hip.is_empty() && hip.parse::<std::net::IpAddr>().is_err() {
                        return Err(Error::InvalidParameter(format!(
                            "invalid IP address: {hip}"
                        )));
                    }
                }
            }
        }

        let configs: BTreeMap<String, Value> = req
            .networking_config
            .as_ref()
            .and_then(|n| n.get("EndpointsConfig"))
            .and_then(|e| e.as_object())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let primary = match mode_of(&mode) {
            Mode::Container(_) => return Ok(BTreeMap::new()),
            Mode::Bridge => "bridge".to_string(),
            Mode::Host => "host".to_string(),
            Mode::None => "none".to_string(),
            Mode::User(n) => n.to_string(),
        };
        let mut names: Vec<String> = vec![primary.clone()];
        for k in configs.keys() {
            let k = if k == "default" { "bridge" } else { k.as_str() };
            if !names.iter().any(|n| n == k) {
                names.push(k.to_string());
            }
        }
        let mut out = BTreeMap::new();
        for name in names {
            let net = self.net().get(&name)?;
            let cfg = configs
                .get(&name)
                .or_else(|| configs.get(&net.rec.id))
                .or_else(|| (name == primary).then(|| configs.get("default")).flatten())
                .cloned()
                .unwrap_or(Value::Null);
            // host/none/container networks cannot be an extra network
            if !net.rec.has_veths() && name != primary {
                return Err(Error::InvalidParameter(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ));
            }
            let mut ep = self.endpoint_from(&net.rec, &cfg)?;
            // the container's own `MacAddress` is its primary endpoint's, as docker's
            if name == primary && ep.mac_request.is_empty() {
                if let Some(m) = req.config.extra.get("MacAddress").and_then(|m| m.as_str()) {
                    ep.mac_request = m.to_string();
                }
            }
            out.insert(net.rec.name.clone(), ep);
        }
        if out.len() > 1 && out.keys().any(|k| k == "host" || k == "none") {
            return Err(Error::InvalidParameter(
                "container cannot be connected to host or none network together with other networks".into(),
            ));
        }
        Ok(out)
    }

    /// An endpoint from an `EndpointSettings` body (create or `network connect`).
    pub(crate) fn endpoint_from(
        &self,
        net: &crate::network::NetworkRecord,
        cfg: &Value,
    ) -> Result<Endpoint> {
        let static_ip = match cfg
            .get("IPAMConfig")
            .and_then(|i| i.get("IPv4Address"))
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            Some(a) => Some(
                a.parse::<Ipv4Addr>()
                    .map_err(|_| Error::InvalidParameter(format!("invalid IPv4 address: {a}")))?,
            ),
            None => None,
        };
        let static_ip6 = match cfg
            .get("IPAMConfig")
            .and_then(|i| i.get("IPv6Address"))
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            Some(a) => Some(
                a.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| Error::InvalidParameter(format!("invalid IPv6 address: {a}")))?,
            ),
            None => None,
        };
        let aliases = hc_list(cfg.get("Aliases"));
        if !net.is_user() {
            if static_ip.is_some() || static_ip6.is_some() {
                return Err(Error::InvalidParameter(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            if !aliases.is_empty() {
                return Err(Error::InvalidParameter(
                    "network-scoped alias is supported only for containers in user defined networks".into(),
                ));
            }
        }
        if let (Some(ip), Some(subnet)) = (static_ip, net.subnet) {
            if !subnet.contains(ip) {
                return Err(Error::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
        }
        if let Some(ip) = static_ip6 {
            if !net
                .subnet6
                .is_some_and(|s| net.enable_ipv6 && s.contains(ip))
            {
                return Err(Error::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
        }
        Ok(Endpoint {
            network_id: net.id.clone(),
            static_ip,
            static_ip6,
            aliases,
            links: hc_list(cfg.get("Links")),
            ipam_config: ipam_config_of(cfg.get("IPAMConfig")),
            mac_request: cfg
                .get("MacAddress")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string(),
            driver_opts: cfg
                .get("DriverOpts")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default(),
            ..Default::default()
        })
    }

    /// The endpoints of a record in interface order: the network of `NetworkMode` first.
    pub(crate) fn ordered_endpoints(&self, rec: &Record) -> Vec<String> {
        let primary = match mode_of(&rec.host_config.network_mode) {
            // NetworkMode may name the network by ID or prefix; endpoints are keyed by name
            Mode::User(n) => self
                .net()
                .get(n)
                .map(|net| net.rec.name.clone())
                .unwrap_or_else(|_| n.to_string()),
            Mode::Host => "host".into(),
            Mode::None => "none".into(),
            _ => "bridge".into(),
        };
        let mut names: Vec<String> = rec.networks.keys().cloned().collect();
        names.sort_by_key(|n| (n != &primary, n.clone()));
        names
    }

    /// Before the shim is spawned: addresses, host ports, `/etc/hosts` and `resolv.conf`.
    /// On error everything taken is given back.
    pub(crate) fn net_prepare(self: &Arc<Self>, c: &Arc<Container>) -> Result<NetPlan> {
        let rec = c.record();
        let dir = self.container_dir(&c.id);
        let mode = rec.host_config.network_mode.clone();
        if let Some(pod) = &rec.pod {
            // a CRI container: the sandbox's namespace and files (`berth-cri` wrote them)
            return Ok(NetPlan {
                ns: pod.net.clone().map_or(NetNs::Host, NetNs::Join),
                files: pod.files.clone(),
                link_env: Vec::new(),
            });
        }
        if let Mode::Container(other) = mode_of(&mode) {
            let o = self.get_container(other)?;
            let ost = o.state();
            if !ost.status.is_running() || ost.pid <= 0 {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    o.id
                )));
            }
            // docker: a container in another's network namespace takes its host and domain
            // names (its /etc/hosts and /etc/hostname are the other's)
            let orec = o.record();
            c.update(|r| {
                r.config.hostname = orec.config.hostname.clone();
                r.config.domainname = orec.config.domainname.clone();
            });
            return Ok(NetPlan {
                ns: NetNs::Join(format!("/proc/{}/ns/net", ost.pid)),
                files: self.container_dir(&o.id),
                link_env: Vec::new(),
            });
        }
        let hc = &rec.host_config.extra;
        let host_resolv = dns::parse_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        );
        let dns_servers = hc_list(hc.get("Dns"));
        // the daemon's `dns-search` / `dns-opts` when the container names none
        let or_daemon = |l: Vec<String>, d: &Vec<String>| if l.is_empty() { d.clone() } else { l };
        let dns_search = or_daemon(hc_list(hc.get("DnsSearch")), &self.net().cfg.dns_search);
        let dns_opts = or_daemon(hc_list(hc.get("DnsOptions")), &self.net().cfg.dns_opts);
        if matches!(mode_of(&mode), Mode::Host) {
            let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            write_if_changed(&dir.join("hosts"), &hosts)?;
            let resolv = if dns_servers.is_empty() && dns_search.is_empty() && dns_opts.is_empty() {
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
            } else {
                dns::container_resolv_conf(
                    &host_resolv,
                    &dns_servers,
                    &dns_search,
                    &dns_opts,
                    false,
                )
            };
            write_if_changed(&dir.join("resolv.conf"), &resolv)?;
            return Ok(NetPlan {
                ns: NetNs::Host,
                files: dir,
                link_env: Vec::new(),
            });
        }
        match self.net_allocate(c) {
            Ok(()) => {}
            Err(e) => {
                self.net_release(c, false);
                return Err(e);
            }
        }
        let rec = c.record();
        let mut own = Vec::new();
        let mut user = false;
        for name in self.ordered_endpoints(&rec) {
            let ep = &rec.networks[&name];
            if let (Some(ip), false) = (ep.ip, ep.gwbridge) {
                own.push(ip);
            }
            if let Ok(n) = self.net().get(&ep.network_id) {
                user |= n.rec.is_user();
            }
        }
        let mut extra: Vec<(String, String)> = Vec::new();
        for h in hc_list(hc.get("ExtraHosts")) {
            let (host, ip) = match h.split_once(':').or_else(|| h.split_once('=')) {
                Some(p) => p,
                None => {
                    return Err(Error::InvalidParameter(format!(
                        "invalid argument {h:?} for add-host"
                    )))
                }
            };
            let ip = if ip == "host-gateway" {
                self.net()
                    .default_bridge()
                    .and_then(|b| b.rec.gateway)
                    .map(|g| g.to_string())
                    .unwrap_or_default()
            } else {
                ip.to_string()
            };
            extra.push((host.to_string(), ip));
        }
        let mut link_env = Vec::new();
        // legacy links write hosts entries and variables on the default bridge only; on a
        // user network they are names in the embedded DNS for this container (as docker's)
        let legacy = matches!(mode.as_str(), "" | "default" | "bridge");
        for (names, ip, env) in self.link_entries(&rec)? {
            if !legacy {
                continue;
            }
            extra.push((names, ip));
            link_env.extend(env);
        }
        write_if_changed(
            &dir.join("hosts"),
            &hosts_file(
                &crate::network::own_hosts_names(&rec.config.hostname, &rec.config.domainname),
                &own,
                &extra,
            ),
        )?;
        let mut upstream_dns = dns_servers.clone();
        if upstream_dns.is_empty() && !user {
            upstream_dns = self.net().cfg.dns.clone();
        }
        write_if_changed(
            &dir.join("resolv.conf"),
            &dns::container_resolv_conf(
                &host_resolv,
                if user { &[] } else { &upstream_dns },
                &dns_search,
                &dns_opts,
                user,
            ),
        )?;
        Ok(NetPlan {
            ns: NetNs::New,
            files: dir,
            link_env,
        })
    }

    /// A running container connected to a user network: its resolv.conf switches to the
    /// embedded DNS (the servers it had become that server's upstreams) and /etc/hosts gets
    /// its address there, as docker updates them. Files written in place: they are bound
    /// into the container.
    pub(crate) fn net_files_on_connect(&self, rec: &Record, ip: Ipv4Addr) -> Result<()> {
        let dir = self.container_dir(&rec.id);
        let hc = &rec.host_config.extra;
        let host_resolv = dns::parse_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        );
        write_if_changed(
            &dir.join("resolv.conf"),
            &dns::container_resolv_conf(
                &host_resolv,
                &[],
                &hc_list(hc.get("DnsSearch")),
                &hc_list(hc.get("DnsOptions")),
                true,
            ),
        )?;
        let hosts_path = dir.join("hosts");
        let mut hosts = std::fs::read_to_string(&hosts_path).unwrap_or_default();
        let line = format!(
            "{ip}\t{}\n",
            crate::network::own_hosts_names(&rec.config.hostname, &rec.config.domainname)
        );
        if !hosts.contains(&line) {
            hosts.push_str(&line);
            write_if_changed(&hosts_path, &hosts)?;
        }
        Ok(())
    }

    /// `--link name:alias` → hosts entries `ip\talias id12 name` and docker's link variables
    /// (running targets only).
    fn link_entries(&self, rec: &Record) -> Result<Vec<(String, String, Vec<String>)>> {
        let mut out = Vec::new();
        for l in hc_list(rec.host_config.extra.get("Links")) {
            let (target, alias) = match l.split_once(':') {
                Some((t, a)) => (t.trim_start_matches('/'), a.rsplit('/').next().unwrap_or(a)),
                None => (l.trim_start_matches('/'), l.trim_start_matches('/')),
            };
            let t = self.get_container(target).map_err(|_| {
                Error::InvalidParameter(format!("could not get container for {target}"))
            })?;
            let trec = t.record();
            if !trec.state.status.is_running() {
                return Err(Error::InvalidParameter(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    trec.name, rec.name
                )));
            }
            let ip = trec.networks.get("bridge").and_then(|e| e.ip).or_else(|| {
                trec.networks
                    .values()
                    .filter(|e| !e.gwbridge)
                    .find_map(|e| e.ip)
            });
            if let Some(ip) = ip {
                let mut names = alias.to_string();
                names.push(' ');
                names.push_str(&trec.id[..12]);
                if trec.name != alias {
                    names.push(' ');
                    names.push_str(&trec.name);
                }
                let env = link_env(alias, &rec.name, ip, &trec);
                out.push((names, ip.to_string(), env));
            }
        }
        Ok(out)
    }

    /// Takes the addresses and host ports of every bridge endpoint.
    fn net_allocate(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        self.gwbridge_plan(c)?;
        let rec = c.record();
        let order = self.ordered_endpoints(&rec);
        let mut updated = rec.networks.clone();
        let mut primary: Option<(Ipv4Addr, String)> = None;
        let mut primary6: Option<std::net::Ipv6Addr> = None;
        let mut primary_internal = false;
        for (i, name) in order.iter().enumerate() {
            let ep = updated.get_mut(name).expect("endpoint by name");
            let net = self
                .net()
                .get(&ep.network_id)
                .or_else(|_| self.net().get(name))
                .map_err(|_| Error::NotFound(format!("network {name} not found")))?;
            ep.network_id = net.rec.id.clone();
            if !net.rec.has_veths() {
                continue;
            }
            let (Some(subnet), Some(gw)) = (net.rec.subnet, net.rec.gateway) else {
                continue;
            };
            let overlay = net.rec.is_overlay();
            let ip = if overlay {
                // taken from etcd by `overlay_allocate` before
                ep.ip.ok_or_else(|| {
                    Error::Internal(format!("no address taken on overlay network {name}"))
                })?
            } else {
                let mut pool = net.pool.lock().expect("pool lock");
                let pool = pool
                    .as_mut()
                    .ok_or_else(|| Error::Internal(format!("network {name} has no pool")))?;
                match ep.static_ip {
                    Some(ip) => {
                        pool.reserve(ip).map_err(net_err)?;
                        ip
                    }
                    None => pool.allocate().map_err(|e| match e {
                        berth_network::Error::Conflict(_) => Error::Conflict(format!(
                            "no available IPv4 addresses on this network's address pools: {name} ({})",
                            net.rec.id
                        )),
                        e => net_err(e),
                    })?,
                }
            };
            ep.ip = Some(ip);
            ep.prefix = subnet.prefix;
            // an overlay bridge has no address on the host: no gateway through it
            ep.gateway = (!overlay).then_some(gw);
            ep.mac = if ep.mac_request.is_empty() {
                berth_network::format_mac(&berth_network::mac_for(ip))
            } else {
                ep.mac_request.clone()
            };
            let mac = parse_mac(&ep.mac).unwrap_or_else(|| berth_network::mac_for(ip));
            // written before the IPv6 step, so a failure there releases the IPv4 address
            c.update(|r| r.networks = updated.clone());
            let ep = updated.get_mut(name).expect("endpoint by name");
            ep.ip6 = net.take_ip6(ep.static_ip6, &mac)?;
            let v6 = net.rec.v6().filter(|_| ep.ip6.is_some());
            ep.prefix6 = v6.map(|v| v.1).unwrap_or(0);
            ep.gateway6 = v6.map(|v| v.0);
            ep.endpoint_id = random_id();
            ep.ifname = format!("eth{i}");
            // the published ports' endpoint: the first bridge one, not internal if there is
            // one (the way out, where `net_attach` puts the default route)
            if !overlay && (primary.is_none() || (primary_internal && !net.rec.internal)) {
                primary = Some((ip, net.rec.bridge.clone()));
                primary6 = ep.ip6;
                primary_internal = net.rec.internal;
            }
            // written as we go, so a failure part-way releases what was taken
            c.update(|r| r.networks = updated.clone());
        }
        c.update(|r| r.networks = updated.clone());
        let Some((ctr_ip, bridge)) = primary else {
            return Ok(());
        };
        let wanted = published_ports(&rec)?;
        let mut reservations = Vec::new();
        let mut rules = Vec::new();
        let mut rules6 = Vec::new();
        let mut maps = Vec::new();
        for w in wanted {
            if let Some(hip6) = w.host_ip6 {
                // an IPv6 host address: published only when the container has IPv6
                let Some(ctr_ip6) = primary6 else { continue };
                let port = match w.host_range {
                    Some((a, _)) => a,
                    None => continue,
                };
                rules6.push(PortRule6 {
                    proto: w.proto,
                    host_ip: Some(hip6),
                    host_port: port,
                    ctr_ip: ctr_ip6,
                    ctr_port: w.ctr_port,
                    bridge: bridge.clone(),
                });
                maps.push(PortMap {
                    proto: w.proto.as_str().to_string(),
                    ctr_port: w.ctr_port,
                    host_ip: hip6.to_string(),
                    host_port: port,
                });
                continue;
            }
            let r = match w.host_range {
                Some((a, b)) if a != b => ports::reserve_in_range(w.proto, w.host_ip, a, b),
                Some((a, _)) => ports::reserve(w.proto, w.host_ip, a),
                None => ports::reserve(w.proto, w.host_ip, 0),
            }
            .map_err(net_err)?;
            rules.push(PortRule {
                proto: w.proto,
                host_ip: w.host_ip,
                host_port: r.port,
                ctr_ip,
                ctr_port: w.ctr_port,
                bridge: bridge.clone(),
            });
            maps.push(PortMap {
                proto: w.proto.as_str().to_string(),
                ctr_port: w.ctr_port,
                host_ip: w
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                host_port: r.port,
            });
            // any address: over IPv6 too when the container has it, listed as `::`
            if let (None, Some(ctr_ip6)) = (w.host_ip, primary6) {
                rules6.push(PortRule6 {
                    proto: w.proto,
                    host_ip: None,
                    host_port: r.port,
                    ctr_ip: ctr_ip6,
                    ctr_port: w.ctr_port,
                    bridge: bridge.clone(),
                });
                maps.push(PortMap {
                    proto: w.proto.as_str().to_string(),
                    ctr_port: w.ctr_port,
                    host_ip: "::".into(),
                    host_port: r.port,
                });
            }
            // dropped (so freed) if a later port fails
            reservations.push(r);
        }
        let mut proxies = Vec::new();
        for r6 in &rules6 {
            let loopback = r6
                .host_ip
                .is_none_or(|ip| ip.is_unspecified() || ip.is_loopback());
            if loopback && r6.proto == Proto::Tcp {
                let target = SocketAddr::new(r6.ctr_ip.into(), r6.ctr_port);
                proxies.push(ports_proxy(r6.host_port, target)?);
            }
        }
        c.update(|r| r.ports = maps);
        if !rules6.is_empty() {
            self.net()
                .published6
                .lock()
                .expect("published6 lock")
                .insert(c.id.clone(), (rules6, proxies));
        }
        if !rules.is_empty() {
            self.net()
                .published
                .lock()
                .expect("published lock")
                .insert(c.id.clone(), (reservations, rules));
        }
        Ok(())
    }

    /// Between READY and START: veths into the container's namespace, its DNS server, NAT.
    pub(crate) async fn net_attach(self: &Arc<Self>, c: &Arc<Container>, pid: i32) -> Result<()> {
        let rec = c.record();
        if rec.pod.is_some()
            || matches!(
                mode_of(&rec.host_config.network_mode),
                Mode::Host | Mode::Container(_)
            )
        {
            return Ok(());
        }
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let mut user = false;
        let mut specs = Vec::new();
        let mut overlays = Vec::new();
        // the default route: through the first endpoint with a gateway (an overlay one has
        // none; the gateway bridge's comes after it), not an internal network's if another
        // has one (docker's sandbox takes an internal network's gateway last)
        let order = self.ordered_endpoints(&rec);
        let with_gw = |internal: bool| {
            order.iter().find(|name| {
                rec.networks[name.as_str()].gateway.is_some()
                    && self
                        .net()
                        .get(&rec.networks[name.as_str()].network_id)
                        .is_ok_and(|n| n.rec.internal == internal)
            })
        };
        let route_via = with_gw(false).or_else(|| with_gw(true)).cloned();
        for name in order.iter() {
            let ep = &rec.networks[name];
            let Ok(net) = self.net().get(&ep.network_id) else {
                continue;
            };
            let Some(ip) = ep.ip else { continue };
            let default_route = route_via.as_ref() == Some(name);
            user |= net.rec.is_user();
            if net.rec.is_overlay() {
                overlays.push(net.rec.clone());
            }
            specs.push(link::VethSpec {
                host_name: format!("veth{}", &random_id()[..7]),
                bridge: net.rec.bridge.clone(),
                netns: netns.clone(),
                ifname: ep.ifname.clone(),
                addr: ip,
                prefix: ep.prefix,
                gateway: if default_route { ep.gateway } else { None },
                mac: parse_mac(&ep.mac).unwrap_or_else(|| berth_network::mac_for(ip)),
                mtu: if net.rec.mtu > 0 { net.rec.mtu } else { 1500 },
                addr6: ep.ip6.map(|a| (a, ep.prefix6)),
                gateway6: if default_route { ep.gateway6 } else { None },
            });
        }
        let has_ports = self
            .net()
            .published
            .lock()
            .expect("published lock")
            .contains_key(&c.id)
            || self
                .net()
                .published6
                .lock()
                .expect("published6 lock")
                .contains_key(&c.id);
        let engine = self.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            for n in &overlays {
                engine.overlay_plane_up(n)?;
            }
            for s in &specs {
                link::attach_veth(s).map_err(net_err)?;
            }
            if has_ports {
                engine.net().sync_nat()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("network set-up task: {e}")))??;
        if user {
            self.serve_dns(&c.id, pid)?;
        }
        self.overlay_publish(c).await;
        for name in rec.networks.keys() {
            if let Ok(n) = self.net().get(name) {
                self.emit_network(&n.rec, "connect", Some(&c.id));
            }
        }
        Ok(())
    }

    /// Gives back what the container held: DNS server, host ports and rules, addresses.
    /// The veths went with the namespace. `events`: emit `disconnect` (a real exit).
    pub(crate) fn net_release(&self, c: &Container, events: bool) {
        self.net().dns.lock().expect("dns lock").remove(&c.id);
        self.net_unpublish(c);
        let rec = c.record();
        let mut overlay_eps = Vec::new();
        for ep in rec.networks.values() {
            let Ok(net) = self.net().get(&ep.network_id) else {
                continue;
            };
            if let (true, Some(ip)) = (net.rec.is_overlay(), ep.ip) {
                overlay_eps.push((net.rec.id.clone(), ip));
            }
            net.release_ip6(ep.ip6);
            if let Some(ip) = ep.ip {
                if let Some(p) = net.pool.lock().expect("pool lock").as_mut() {
                    p.release(ip);
                }
                if events {
                    self.emit_network(&net.rec, "disconnect", Some(&c.id));
                }
            }
        }
        c.update(|r| {
            for ep in r.networks.values_mut() {
                ep.ip = None;
                ep.prefix = 0;
                ep.gateway = None;
                ep.ip6 = None;
                ep.prefix6 = 0;
                ep.gateway6 = None;
                ep.mac.clear();
                ep.endpoint_id.clear();
                ep.ifname.clear();
            }
            r.networks.retain(|_, ep| !ep.gwbridge);
            r.ports.clear();
        });
        self.overlay_release(&c.id, overlay_eps);
    }

    /// The container's published ports given back: host ports, DNAT rules (NAT synced when
    /// it had any), `[::1]` proxies, the bindings of its record.
    pub(crate) fn net_unpublish(&self, c: &Container) {
        let had_ports = self
            .net()
            .published
            .lock()
            .expect("published lock")
            .remove(&c.id)
            .is_some();
        let had_ports6 = self
            .net()
            .published6
            .lock()
            .expect("published6 lock")
            .remove(&c.id)
            .is_some();
        if had_ports || had_ports6 {
            if let Err(e) = self.net().sync_nat_in_task() {
                tracing::warn!(id = %c.id, "removing port rules: {e}");
            }
        }
        c.update(|r| r.ports.clear());
    }

    /// The container's published ports DNATed to `ctr_ip` (and `ctr_ip6`) on `bridge` from
    /// now on (the endpoint that took its way out over); same host ports, so the record's
    /// bindings stay. The IPv6 side (DNAT rules, `[::1]` proxies) follows when the new
    /// endpoint has IPv6, and is given back (with its bindings) when it has none.
    pub(crate) fn net_move_ports(
        &self,
        c: &Container,
        ctr_ip: Ipv4Addr,
        ctr_ip6: Option<std::net::Ipv6Addr>,
        bridge: &str,
    ) {
        let moved = match self
            .net()
            .published
            .lock()
            .expect("published lock")
            .get_mut(&c.id)
        {
            Some((_, rules)) => {
                for r in rules.iter_mut() {
                    r.ctr_ip = ctr_ip;
                    r.bridge = bridge.to_string();
                }
                true
            }
            None => false,
        };
        let (moved6, dropped6) = {
            let mut published6 = self.net().published6.lock().expect("published6 lock");
            match (ctr_ip6, published6.get_mut(&c.id)) {
                (Some(ip6), Some((rules6, proxies))) => {
                    for r in rules6.iter_mut() {
                        r.ctr_ip = ip6;
                        r.bridge = bridge.to_string();
                    }
                    for p in proxies.iter() {
                        p.retarget(ip6.into());
                    }
                    (true, false)
                }
                (None, Some(_)) => (published6.remove(&c.id).is_some(), true),
                (_, None) => (false, false),
            }
        };
        if dropped6 {
            c.update(|r| r.ports.retain(|m| !m.host_ip.contains(':')));
        }
        if moved || moved6 {
            if let Err(e) = self.net().sync_nat_in_task() {
                tracing::warn!(id = %c.id, "moving port rules: {e}");
            }
        }
    }

    /// Daemon start, for a container that is still running: take its addresses and ports
    /// back and serve its DNS again. The kernel kept its veths; NAT is synced once after.
    pub(crate) fn net_restore(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        let mut user = false;
        let mut primary: Option<(Ipv4Addr, String)> = None;
        let mut primary6: Option<std::net::Ipv6Addr> = None;
        // the way out the kernel kept (it moves with `network connect`/`disconnect`): its
        // endpoint first, so the published ports go back to it (asked only when it has some)
        let route_dev = (rec.state.pid > 0 && !rec.ports.is_empty())
            .then(|| {
                let netns = PathBuf::from(format!("/proc/{}/ns/net", rec.state.pid));
                link::default_route_dev_in_netns(&netns)
                    .inspect_err(|e| tracing::debug!(id = %c.id, "default route: {e}"))
                    .ok()
                    .flatten()
            })
            .flatten();
        let order = crate::gwbridge::route_first(
            self.ordered_endpoints(&rec),
            &rec.networks,
            route_dev.as_deref(),
        );
        for name in order {
            let ep = &rec.networks[&name];
            let (Some(ip), Ok(net)) = (ep.ip, self.net().get(&ep.network_id)) else {
                continue;
            };
            user |= net.rec.is_user();
            if let Some(p) = net.pool.lock().expect("pool lock").as_mut() {
                if let Err(e) = p.reserve(ip) {
                    tracing::warn!(id = %c.id, "address {ip} on {name}: {e}");
                }
            }
            if let (Some(ip6), Some(p)) = (ep.ip6, net.pool6.lock().expect("pool6 lock").as_mut()) {
                if let Err(e) = p.reserve(ip6) {
                    tracing::warn!(id = %c.id, "address {ip6} on {name}: {e}");
                }
            }
            // published ports go to the first endpoint whose bridge the host routes to
            if primary.is_none() && !net.rec.is_overlay() {
                primary = Some((ip, net.rec.bridge.clone()));
                primary6 = ep.ip6;
            }
        }
        if let (Some((_, bridge)), Some(ctr_ip6)) = (&primary, primary6) {
            self.restore_ports6(c, &rec, bridge, ctr_ip6);
        }
        if let (Some((ctr_ip, bridge)), false) = (primary, rec.ports.is_empty()) {
            let mut res = Vec::new();
            let mut rules = Vec::new();
            // the IPv6 bindings (`::`, `::1`) are restore_ports6's
            for m in rec.ports.iter().filter(|m| !m.host_ip.contains(':')) {
                let proto = if m.proto == "udp" {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                let host_ip = m
                    .host_ip
                    .parse::<Ipv4Addr>()
                    .ok()
                    .filter(|i| !i.is_unspecified());
                match ports::reserve(proto, host_ip, m.host_port) {
                    Ok(r) => res.push(r),
                    Err(e) => tracing::warn!(id = %c.id, "port {}: {e}", m.host_port),
                }
                rules.push(PortRule {
                    proto,
                    host_ip,
                    host_port: m.host_port,
                    ctr_ip,
                    ctr_port: m.ctr_port,
                    bridge: bridge.clone(),
                });
            }
            self.net()
                .published
                .lock()
                .expect("published lock")
                .insert(c.id.clone(), (res, rules));
        }
        if user && rec.state.pid > 0 {
            if let Err(e) = self.serve_dns(&c.id, rec.state.pid) {
                tracing::warn!(id = %c.id, "DNS server: {e}");
            }
        }
    }

    /// Daemon start: the IPv6 side of a running container's published ports (DNAT rules
    /// and `[::1]` proxies), from the bindings its record lists.
    fn restore_ports6(
        &self,
        c: &Container,
        rec: &Record,
        bridge: &str,
        ctr_ip6: std::net::Ipv6Addr,
    ) {
        let mut rules6 = Vec::new();
        let mut proxies = Vec::new();
        for m in rec.ports.iter().filter(|m| m.host_ip.contains(':')) {
            let Ok(host) = m.host_ip.parse::<std::net::Ipv6Addr>() else {
                continue;
            };
            let proto = if m.proto == "udp" {
                Proto::Udp
            } else {
                Proto::Tcp
            };
            rules6.push(PortRule6 {
                proto,
                host_ip: if host.is_unspecified() {
                    None
                } else {
                    Some(host)
                },
                host_port: m.host_port,
                ctr_ip: ctr_ip6,
                ctr_port: m.ctr_port,
                bridge: bridge.to_string(),
            });
            if proto == Proto::Tcp && (host.is_unspecified() || host.is_loopback()) {
                match ports_proxy(m.host_port, SocketAddr::new(ctr_ip6.into(), m.ctr_port)) {
                    Ok(p) => proxies.push(p),
                    Err(e) => tracing::warn!(id = %c.id, "[::1]:{}: {e}", m.host_port),
                }
            }
        }
        if !rules6.is_empty() {
            self.net()
                .published6
                .lock()
                .expect("published6 lock")
                .insert(c.id.clone(), (rules6, proxies));
        }
    }

    /// Starts the embedded DNS server in the namespace of `pid` for container `id`, unless
    /// it already has one.
    pub(crate) fn serve_dns(self: &Arc<Self>, id: &str, pid: i32) -> Result<()> {
        let mut servers = self.net().dns.lock().expect("dns lock");
        if servers.contains_key(id) {
            return Ok(());
        }
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let lookup: Arc<dyn Lookup> = Arc::new(EngineLookup(Arc::downgrade(self)));
        let h = dns::serve(id, &netns, lookup).map_err(net_err)?;
        servers.insert(id.to_string(), h);
        Ok(())
    }

    /// `NetworkSettings` of inspect.
    pub(crate) fn network_settings(&self, rec: &Record) -> Value {
        let mut networks = serde_json::Map::new();
        let running = rec.state.status.is_running();
        for (name, ep) in rec.networks.iter().filter(|(_, ep)| !ep.gwbridge) {
            let user = self
                .net()
                .get(&ep.network_id)
                .map(|n| n.rec.is_user())
                .unwrap_or(false);
            let mut aliases: Vec<String> = ep.aliases.clone();
            let short = &rec.id[..12];
            if user && running && !aliases.iter().any(|a| a == short) {
                aliases.push(short.to_string());
            }
            // docker adds the container's own host name on user networks (it resolves there)
            let host = rec.config.hostname.as_str();
            if user && running && !host.is_empty() && !aliases.iter().any(|a| a == host) {
                aliases.push(host.to_string());
            }
            networks.insert(
                name.clone(),
                json!({
                    "IPAMConfig": if ep.ipam_config.is_null() { ipam_config(ep) } else { ep.ipam_config.clone() },
                    "Links": if ep.links.is_empty() { Value::Null } else { json!(ep.links) },
                    "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
                    "NetworkID": ep.network_id,
                    "EndpointID": ep.endpoint_id,
                    "Gateway": ep.gateway.map(|g| g.to_string()).unwrap_or_default(),
                    "IPAddress": ep.ip.map(|g| g.to_string()).unwrap_or_default(),
                    "IPPrefixLen": ep.prefix,
                    "IPv6Gateway": ep.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                    "GlobalIPv6Address": ep.ip6.map(|g| g.to_string()).unwrap_or_default(),
                    "GlobalIPv6PrefixLen": ep.prefix6,
                    "MacAddress": ep.mac,
                    "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) }
                }),
            );
        }
        let bridge = rec.networks.get("bridge");
        let g = |f: &dyn Fn(&Endpoint) -> Value, zero: Value| bridge.map(f).unwrap_or(zero);
        json!({
            "Bridge": "",
            "SandboxID": if running { rec.id.clone() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": self.ports_json(rec),
            "SandboxKey": if rec.state.pid > 0 && running { format!("/proc/{}/ns/net", rec.state.pid) } else { String::new() },
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": g(&|e| json!(e.endpoint_id), json!("")),
            "Gateway": g(&|e| json!(e.gateway.map(|x| x.to_string()).unwrap_or_default()), json!("")),
            "GlobalIPv6Address": g(&|e| json!(e.ip6.map(|x| x.to_string()).unwrap_or_default()), json!("")),
            "GlobalIPv6PrefixLen": g(&|e| json!(e.prefix6), json!(0)),
            "IPAddress": g(&|e| json!(e.ip.map(|x| x.to_string()).unwrap_or_default()), json!("")),
            "IPPrefixLen": g(&|e| json!(e.prefix), json!(0)),
            "IPv6Gateway": g(&|e| json!(e.gateway6.map(|x| x.to_string()).unwrap_or_default()), json!("")),
            "MacAddress": g(&|e| json!(e.mac), json!("")),
            "Networks": networks
        })
    }

    /// `{"80/tcp": [{"HostIp":"0.0.0.0","HostPort":"8080"}], "81/tcp": null}` while running.
    pub(crate) fn ports_json(&self, rec: &Record) -> Value {
        let mut m = serde_json::Map::new();
        if !rec.state.status.is_running() {
            return Value::Object(m);
        }
        if let Some(Value::Object(e)) = rec.config.extra.get("ExposedPorts") {
            for k in e.keys() {
                m.insert(normal_port_key(k), Value::Null);
            }
        }
        for p in &rec.ports {
            let k = format!("{}/{}", p.ctr_port, p.proto);
            let entry = m.entry(k).or_insert(Value::Null);
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Value::Array(a) = entry {
                a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
        Value::Object(m)
    }

    /// `Ports` of `/containers/json`.
    pub(crate) fn ports_list(&self, rec: &Record) -> Value {
        let mut out = Vec::new();
        let mut published: std::collections::BTreeSet<(u16, String)> = Default::default();
        if rec.state.status.is_running() {
            for p in &rec.ports {
                published.insert((p.ctr_port, p.proto.clone()));
                out.push(json!({"IP": p.host_ip, "PrivatePort": p.ctr_port, "PublicPort": p.host_port, "Type": p.proto}));
            }
        }
        if let Some(Value::Object(e)) = rec.config.extra.get("ExposedPorts") {
            for k in e.keys() {
                if let Ok((a, b, proto)) = parse_port_key(k) {
                    for port in a..=b {
                        if !published.contains(&(port, proto.as_str().to_string())) {
                            out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
                        }
                    }
                }
            }
        }
        Value::Array(out)
    }

    /// `NetworkSettings.Networks` of `/containers/json` (same objects as inspect).
    pub(crate) fn networks_list(&self, rec: &Record) -> Value {
        self.network_settings(rec)["Networks"].clone()
    }
}

/// docker's variables for a link to `target` as `alias` from container `me`.
fn link_env(alias: &str, me: &str, ip: Ipv4Addr, target: &Record) -> Vec<String> {
    let a: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut env = vec![format!("{a}_NAME=/{me}/{alias}")];
    let mut ports: Vec<(u16, String)> = Vec::new();
    if let Some(Value::Object(m)) = target.config.extra.get("ExposedPorts") {
        for k in m.keys() {
            if let Ok((lo, hi, proto)) = parse_port_key(k) {
                ports.extend((lo..=hi).map(|p| (p, proto.as_str().to_string())));
            }
        }
    }
    ports.sort();
    if let Some((p, proto)) = ports.first() {
        env.push(format!("{a}_PORT={proto}://{ip}:{p}"));
    }
    for (p, proto) in &ports {
        let k = format!("{a}_PORT_{p}_{}", proto.to_ascii_uppercase());
        env.push(format!("{k}={proto}://{ip}:{p}"));
        env.push(format!("{k}_ADDR={ip}"));
        env.push(format!("{k}_PORT={p}"));
        env.push(format!("{k}_PROTO={proto}"));
    }
    for e in target.config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            if !matches!(k, "HOME" | "PATH" | "HOSTNAME") {
                env.push(format!("{a}_ENV_{k}={v}"));
            }
        }
    }
    env
}

/// The `[::1]` side of a port published over IPv6 (see `berth_network::proxy`).
fn ports_proxy(port: u16, target: SocketAddr) -> Result<berth_network::proxy::ProxyHandle> {
    berth_network::proxy::tcp_loopback6(port, target).map_err(net_err)
}

/// `IPAMConfig` of an endpoint: the fixed addresses asked for, null without any.
fn ipam_config(ep: &Endpoint) -> Value {
    if ep.static_ip.is_none() && ep.static_ip6.is_none() {
        return Value::Null;
    }
    let mut m = serde_json::Map::new();
    if let Some(ip) = ep.static_ip {
        m.insert("IPv4Address".into(), json!(ip.to_string()));
    }
    if let Some(ip) = ep.static_ip6 {
        m.insert("IPv6Address".into(), json!(ip.to_string()));
    }
    Value::Object(m)
}

fn normal_port_key(k: &str) -> String {
    if k.contains('/') {
        k.to_string()
    } else {
        format!("{k}/tcp")
    }
}

/// The `IPAMConfig` of an endpoint request as docker keeps it: its set fields only (`null`
/// when none was sent).
fn ipam_config_of(v: Option<&Value>) -> Value {
    let Some(Value::Object(m)) = v else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for k in ["IPv4Address", "IPv6Address"] {
        if let Some(a) = m.get(k).and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
            out.insert(k.into(), json!(a));
        }
    }
    let ll = hc_list(m.get("LinkLocalIPs"));
    if !ll.is_empty() {
        out.insert("LinkLocalIPs".into(), json!(ll));
    }
    Value::Object(out)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

/// One port a container wants published.
#[derive(Debug, PartialEq)]
struct Wanted {
    proto: Proto,
    ctr_port: u16,
    host_ip: Option<Ipv4Addr>,
    /// an IPv6 host address (`-p [::1]:8080:80`): published over IPv6 only
    host_ip6: Option<std::net::Ipv6Addr>,
    /// None: any free port
    host_range: Option<(u16, u16)>,
}

/// `PortBindings` (+ `PublishAllPorts` over `ExposedPorts`) as a list of ports to bind.
fn published_ports(rec: &Record) -> Result<Vec<Wanted>> {
    let hc = &rec.host_config.extra;
    let mut out = Vec::new();
    let mut bound: std::collections::BTreeSet<(u16, Proto)> = Default::default();
    if let Some(Value::Object(m)) = hc.get("PortBindings") {
        for (k, v) in m {
            let (a, b, proto) = parse_port_key(k)?;
            let list = v.as_array().cloned().unwrap_or_default();
            let list = if list.is_empty() {
                vec![json!({})]
            } else {
                list
            };
            for bnd in list {
                let hip = bnd.get("HostIp").and_then(|x| x.as_str()).unwrap_or("");
                let mut host_ip6 = None;
                let host_ip = match hip.trim_start_matches('[').trim_end_matches(']') {
                    "" | "0.0.0.0" => None,
                    s => match s.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(ip)) => Some(ip),
                        Ok(std::net::IpAddr::V6(ip)) => {
                            host_ip6 = Some(ip);
                            None
                        }
                        Err(_) => {
                            return Err(Error::InvalidParameter(format!("invalid IP address: {s}")))
                        }
                    },
                };
                let hp = bnd.get("HostPort").and_then(|x| x.as_str()).unwrap_or("");
                let hrange = if hp.is_empty() || hp == "0" {
                    None
                } else {
                    Some(parse_port_range(hp).ok_or_else(|| {
                        Error::InvalidParameter(format!("invalid port specification: \"{hp}\""))
                    })?)
                };
                let n = b - a + 1;
                for (i, ctr_port) in (a..=b).enumerate() {
                    let host_range = match hrange {
                        // 8000-8010:80-90 maps one to one; 8000-8010:80 picks one in range
                        Some((ha, hb)) if hb - ha + 1 == n && n > 1 => {
                            Some((ha + i as u16, ha + i as u16))
                        }
                        other => other,
                    };
                    bound.insert((ctr_port, proto));
                    out.push(Wanted {
                        proto,
                        ctr_port,
                        host_ip,
                        host_ip6,
                        host_range,
                    });
                }
            }
        }
    }
    if hc
        .get("PublishAllPorts")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    {
        if let Some(Value::Object(e)) = rec.config.extra.get("ExposedPorts") {
            for k in e.keys() {
                let (a, b, proto) = parse_port_key(k)?;
                for ctr_port in a..=b {
                    if bound.insert((ctr_port, proto)) {
                        out.push(Wanted {
                            proto,
                            ctr_port,
                            host_ip: None,
                            host_ip6: None,
                            host_range: None,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The engine as the DNS server sees it.
struct EngineLookup(Weak<Engine>);

impl Lookup for EngineLookup {
    fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr> {
        let Some(engine) = self.0.upgrade() else {
            return Vec::new();
        };
        let Ok(me) = engine.get_container(container_id) else {
            return Vec::new();
        };
        let mine: Vec<String> = me
            .record()
            .networks
            .values()
            .filter(|e| e.ip.is_some() && !e.gwbridge)
            .map(|e| e.network_id.clone())
            .filter(|id| {
                engine
                    .net()
                    .get(id)
                    .map(|n| n.rec.is_user())
                    .unwrap_or(false)
            })
            .collect();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // the asker's own links (`--link target:alias`, HostConfig's and its endpoints'):
        // on a user network their aliases resolve for it alone, as docker's do
        let me_rec = me.record();
        let link_targets: Vec<String> = hc_list(me_rec.host_config.extra.get("Links"))
            .into_iter()
            .chain(me_rec.networks.values().flat_map(|e| e.links.clone()))
            .filter_map(|l| {
                let (target, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                (alias.to_ascii_lowercase() == name)
                    .then(|| target.trim_start_matches('/').to_string())
            })
            .collect();
        let mut out = Vec::new();
        for c in engine.all_containers() {
            let rec = c.record();
            if !matches!(rec.state.status, Status::Running | Status::Paused) {
                continue;
            }
            for ep in rec.networks.values().filter(|e| !e.gwbridge) {
                let Some(ip) = ep.ip else { continue };
                if !mine.contains(&ep.network_id) {
                    continue;
                }
                let hit = rec.name.to_ascii_lowercase() == name
                    || rec.config.hostname.to_ascii_lowercase() == name
                    || ep.aliases.iter().any(|a| a.to_ascii_lowercase() == name)
                    || link_targets.iter().any(|t| {
                        *t == rec.name || (t.len() >= 12 && rec.id.starts_with(t.as_str()))
                    })
                    || (name.len() == 12 && rec.id.starts_with(&name));
                if hit && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        // other hosts' endpoints on the overlay networks the asker is on
        for net in &mine {
            for ip in engine.overlay_lookup(net, &name) {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        out
    }

    fn lookup6(&self, container_id: &str, name: &str) -> Vec<std::net::Ipv6Addr> {
        let Some(engine) = self.0.upgrade() else {
            return Vec::new();
        };
        // the names answered for A, and their addresses on the same networks
        let v4 = self.lookup(container_id, name);
        if v4.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in engine.all_containers() {
            let rec = c.record();
            for ep in rec.networks.values().filter(|e| !e.gwbridge) {
                if let (Some(ip), Some(ip6)) = (ep.ip, ep.ip6) {
                    if v4.contains(&ip) && !out.contains(&ip6) {
                        out.push(ip6);
                    }
                }
            }
        }
        out
    }

    /// `<name>.<network>` for the address of a running container on a user network the asker
    /// is on, as docker's embedded DNS answers a PTR query.
    fn reverse(&self, container_id: &str, ip: Ipv4Addr) -> Option<String> {
        let engine = self.0.upgrade()?;
        let me = engine.get_container(container_id).ok()?.record();
        let mine: Vec<String> = me
            .networks
            .values()
            .filter(|e| e.ip.is_some() && !e.gwbridge)
            .map(|e| e.network_id.clone())
            .collect();
        for c in engine.all_containers() {
            let rec = c.record();
            if !matches!(rec.state.status, Status::Running | Status::Paused) {
                continue;
            }
            for (net_name, ep) in &rec.networks {
                if ep.ip != Some(ip) || !mine.contains(&ep.network_id) {
                    continue;
                }
                let user = engine
                    .net()
                    .get(&ep.network_id)
                    .map(|n| n.rec.is_user())
                    .unwrap_or(false);
                if user {
                    return Some(format!("{}.{net_name}", rec.name));
                }
            }
        }
        None
    }

    fn upstreams(&self, container_id: &str) -> Vec<SocketAddr> {
        let Some(engine) = self.0.upgrade() else {
            return Vec::new();
        };
        let mut servers = engine
            .get_container(container_id)
            .map(|c| hc_list(c.record().host_config.extra.get("Dns")))
            .unwrap_or_default();
        if servers.is_empty() {
            servers = engine.net().cfg.dns.clone();
        }
        if servers.is_empty() {
            servers = dns::parse_resolv_conf(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
            .nameservers;
        }
        servers
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec_with(hc: Value, exposed: Value) -> Record {
        let mut r: Record = serde_json::from_value(json!({
            "id": "0123456789abcdef", "name": "t", "created": 0, "image_id": "", "path": "sh",
            "args": [], "config": {}, "host_config": {}, "layer_parent": null,
            "state": {"status": "created", "pid": 0, "exit_code": 0, "error": "", "started_at": null, "finished_at": null}
        }))
        .unwrap();
        if let Value::Object(m) = hc {
            r.host_config.extra = m;
        }
        r.config.extra.insert("ExposedPorts".into(), exposed);
        r
    }

    #[test]
    fn published_port_forms() {
        let r = rec_with(
            json!({"PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "90-91/tcp": [{"HostIp": "", "HostPort": "9000-9001"}],
                "100/tcp": [{"HostIp": "::", "HostPort": "100"}]
            }, "PublishAllPorts": true}),
            json!({"80/tcp": {}, "7000/tcp": {}}),
        );
        let w = published_ports(&r).unwrap();
        assert!(w.contains(&Wanted {
            proto: Proto::Tcp,
            ctr_port: 80,
            host_ip: None,
            host_ip6: None,
            host_range: Some((8080, 8080))
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Udp,
            ctr_port: 53,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ip6: None,
            host_range: None
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Tcp,
            ctr_port: 91,
            host_ip: None,
            host_ip6: None,
            host_range: Some((9001, 9001))
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Tcp,
            ctr_port: 7000,
            host_ip: None,
            host_ip6: None,
            host_range: None
        }));
        assert!(
            w.contains(&Wanted {
                proto: Proto::Tcp,
                ctr_port: 100,
                host_ip: None,
                host_ip6: Some(std::net::Ipv6Addr::UNSPECIFIED),
                host_range: Some((100, 100))
            }),
            "an IPv6 host address is published over IPv6 only"
        );
        assert_eq!(
            w.iter().filter(|x| x.ctr_port == 80).count(),
            1,
            "-P does not publish 80 twice"
        );
    }

    #[test]
    fn link_variables_as_docker() {
        let mut t = rec_with(json!({}), json!({"5432/tcp": {}, "53/udp": {}}));
        t.config.env = Some(vec!["PATH=/bin".into(), "PGDATA=/data".into()]);
        let env = link_env("my-db", "web", "172.17.0.3".parse().unwrap(), &t);
        assert_eq!(env[0], "MY_DB_NAME=/web/my-db");
        assert!(
            env.contains(&"MY_DB_PORT=udp://172.17.0.3:53".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432".to_string()));
        assert!(env.contains(&"MY_DB_PORT_5432_TCP_ADDR=172.17.0.3".to_string()));
        assert!(env.contains(&"MY_DB_PORT_53_UDP_PROTO=udp".to_string()));
        assert!(env.contains(&"MY_DB_ENV_PGDATA=/data".to_string()));
        assert!(!env.iter().any(|e| e.contains("_ENV_PATH")));
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("zz"), None);
    }
}
