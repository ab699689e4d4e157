//! `berth_gwbridge` (issue 14, point 3): the way out of a container whose networks are all
//! overlays, as docker's `docker_gwbridge`. An overlay bridge has no address on the host, so
//! such a container would have no default route, no outbound NAT and nowhere to publish its
//! ports. While it runs it gets one more endpoint, on a host-local bridge network made on
//! first need (an ordinary bridge network: listed by `network ls` as docker lists
//! `docker_gwbridge`, masqueraded, isolated from the other bridges by the same nftables
//! rules, and with `enable_icc=false` as docker's: its containers do not reach each other
//! through it, only through their overlays). That endpoint carries the default route, and the published ports DNAT to its
//! address: the bridge code's allocation, veth, NAT, port and restore paths serve it
//! unchanged. It is marked `gwbridge` in the record: inspect's `Networks` and the embedded
//! DNS leave it out (as docker's do), and it is dropped when the container stops. A bridge
//! network connected to the running container takes the way out over at once (the endpoint
//! goes; the default route and the published ports follow the new endpoint); disconnecting
//! it while only overlays remain gives the container a gateway bridge endpoint again.

use crate::container::Container;
use crate::network::{Endpoint, Net};
use crate::network_ops::NetworkCreate;
use crate::{Engine, Error, Result};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// The network's name and its bridge's kernel name (14 characters: within IFNAMSIZ).
pub const GWBRIDGE: &str = "berth_gwbridge";

/// Whether a container on these endpoints needs the gateway bridge: it is on an overlay
/// network and on no bridge network that is not internal (which would give it a way out
/// already; an internal one does not count, as docker's sandbox skips internal networks
/// when it decides whether it needs a default gateway).
pub(crate) fn needs_gwbridge<'a>(
    nets: impl Iterator<Item = (&'a Endpoint, Option<&'a Net>)>,
) -> bool {
    let mut overlay = false;
    for (ep, net) in nets {
        if ep.gwbridge {
            return false;
        }
        match net {
            Some(n) if n.rec.is_overlay() => overlay = true,
            Some(n) if n.rec.is_bridge() && !n.rec.internal => return false,
            _ => {}
        }
    }
    overlay
}

/// A bridge endpoint that can be a container's way out: default route, published ports.
#[derive(Debug, PartialEq)]
pub(crate) struct WayOut {
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub gw: Ipv4Addr,
    /// its IPv6 address and gateway, when it has IPv6
    pub ip6: Option<std::net::Ipv6Addr>,
    pub gw6: Option<std::net::Ipv6Addr>,
    pub bridge: String,
}

/// The first of these endpoints (in interface order) that can be the way out: one on a
/// bridge network, internal or not as asked, with an address and a gateway.
pub(crate) fn next_way_out<'a>(
    nets: impl Iterator<Item = (&'a Endpoint, Option<&'a Net>)>,
    internal: bool,
) -> Option<WayOut> {
    nets.filter_map(|(ep, n)| {
        let n = n?;
        match (
            n.rec.is_bridge() && n.rec.internal == internal,
            ep.ip,
            ep.gateway,
        ) {
            (true, Some(ip), Some(gw)) => Some(WayOut {
                ifname: ep.ifname.clone(),
                ip,
                gw,
                ip6: ep.ip6,
                gw6: ep.ip6.and(ep.gateway6),
                bridge: n.rec.bridge.clone(),
            }),
            _ => None,
        }
    })
    .next()
}

/// Endpoint names in interface order, the one whose interface the default route leaves by
/// (`route_dev`, as the kernel kept it) first: where a restart puts the published ports.
pub(crate) fn route_first(
    mut order: Vec<String>,
    networks: &BTreeMap<String, Endpoint>,
    route_dev: Option<&str>,
) -> Vec<String> {
    order.sort_by_key(|name| {
        route_dev.is_none() || networks.get(name).map(|e| e.ifname.as_str()) != route_dev
    });
    order
}

impl Engine {
    /// The gateway bridge network, made if missing (another start making it at the same
    /// moment is fine).
    fn gwbridge_net(&self) -> Result<Arc<Net>> {
        if let Ok(n) = self.net().get(GWBRIDGE) {
            if n.rec.is_bridge() {
                return Ok(n);
            }
        }
        let options: BTreeMap<String, String> = [
            ("com.docker.network.bridge.name", GWBRIDGE),
            ("com.docker.network.bridge.enable_icc", "false"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match self.network_create(NetworkCreate {
            name: GWBRIDGE.into(),
            driver: "bridge".into(),
            options: Some(options),
            ..Default::default()
        }) {
            Ok(_) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let n = self.net().get(GWBRIDGE)?;
        if !n.rec.is_bridge() {
            return Err(Error::Conflict(format!(
                "network {GWBRIDGE} exists and is not a bridge network"
            )));
        }
        Ok(n)
    }

    /// [`needs_gwbridge`] of a container's record, its networks looked up.
    fn record_needs_gwbridge(&self, rec: &crate::container::Record) -> bool {
        let nets: Vec<(&Endpoint, Option<Arc<Net>>)> = rec
            .networks
            .values()
            .map(|ep| (ep, self.net().get(&ep.network_id).ok()))
            .collect();
        needs_gwbridge(nets.iter().map(|(e, n)| (*e, n.as_deref())))
    }

    /// Before the addresses are taken: the gateway bridge endpoint of a container that
    /// needs one (see [`needs_gwbridge`]).
    pub(crate) fn gwbridge_plan(&self, c: &Container) -> Result<()> {
        let rec = c.record();
        if !self.record_needs_gwbridge(&rec) {
            return Ok(());
        }
        let n = self.gwbridge_net()?;
        c.update(|r| {
            r.networks.insert(
                n.rec.name.clone(),
                Endpoint {
                    network_id: n.rec.id.clone(),
                    gwbridge: true,
                    ..Default::default()
                },
            );
        });
        Ok(())
    }

    /// A running container that lost its last overlay (`network disconnect`): its gateway
    /// bridge endpoint goes too, with its veth, its address and the ports published through
    /// it, as docker clears the gateway of a sandbox that no longer needs one.
    pub(crate) async fn gwbridge_leave_if_unneeded(&self, c: &Container) {
        let rec = c.record();
        let overlay_left = rec.networks.values().filter(|e| !e.gwbridge).any(|e| {
            self.net()
                .get(&e.network_id)
                .is_ok_and(|n| n.rec.is_overlay())
        });
        if !overlay_left && self.gwbridge_take_down(c).await {
            self.net_unpublish(c);
        }
    }

    /// A running container's gateway bridge endpoint out: its veth (with the default route
    /// through it), its address, its place in the record. The ports published through it
    /// stay for the caller to move ([`Engine::net_move_ports`]) or give back. Answers
    /// whether there was one.
    pub(crate) async fn gwbridge_take_down(&self, c: &Container) -> bool {
        let rec = c.record();
        let Some((name, ep)) = rec.networks.iter().find(|(_, e)| e.gwbridge) else {
            return false;
        };
        if rec.state.pid > 0 && !ep.ifname.is_empty() {
            let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", rec.state.pid));
            let ifname = ep.ifname.clone();
            let _ = tokio::task::spawn_blocking(move || {
                berth_network::link::remove_in_netns(&netns, &ifname)
            })
            .await;
        }
        if let Ok(n) = self.net().get(&ep.network_id) {
            if let (Some(ip), Some(p)) = (ep.ip, n.pool.lock().expect("pool lock").as_mut()) {
                p.release(ip);
            }
            self.emit_network(&n.rec, "disconnect", Some(&c.id));
        }
        let name = name.clone();
        c.update(|r| {
            r.networks.remove(&name);
        });
        true
    }

    /// A running container that needs the gateway bridge again (the bridge network that had
    /// taken its way out over was disconnected, or connecting one failed): a new endpoint
    /// there, with the default route, and its published ports DNATed to it. If that fails
    /// it has no way out: its ports are given back. Answers whether it needed one.
    pub(crate) async fn gwbridge_bring_back(
        self: &Arc<Self>,
        c: &Arc<Container>,
        pid: i32,
    ) -> bool {
        let rec = c.record();
        if !self.record_needs_gwbridge(&rec) {
            return false;
        }
        let res: Result<()> = async {
            let n = self.gwbridge_net()?;
            let mut ep = Endpoint {
                network_id: n.rec.id.clone(),
                gwbridge: true,
                ..Default::default()
            };
            self.connect_running(c, &n, &mut ep, pid, true).await?;
            c.update(|r| {
                r.networks.insert(n.rec.name.clone(), ep);
            });
            self.emit_network(&n.rec, "connect", Some(&c.id));
            Ok(())
        }
        .await;
        if let Err(e) = res {
            tracing::warn!(id = %c.id, "gateway bridge endpoint: {e}");
            self.net_unpublish(c);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkRecord;
    use std::sync::Mutex;

    fn net(driver: &str, predefined: bool) -> Net {
        let rec: NetworkRecord = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "x", "driver": driver, "created": 0, "predefined": predefined
        }))
        .unwrap();
        Net {
            rec,
            pool: Mutex::new(None),
            pool6: Mutex::new(None),
        }
    }

    #[test]
    fn only_overlay_only_containers_get_the_gateway_bridge() {
        let ep = Endpoint::default();
        let gw = Endpoint {
            gwbridge: true,
            ..Default::default()
        };
        let (ov, br, host) = (
            net("overlay", false),
            net("bridge", false),
            net("host", true),
        );
        assert!(needs_gwbridge([(&ep, Some(&ov))].into_iter()));
        assert!(!needs_gwbridge(
            [(&ep, Some(&ov)), (&ep, Some(&br))].into_iter()
        ));
        assert!(!needs_gwbridge(
            [(&ep, Some(&ov)), (&gw, Some(&br))].into_iter()
        ));
        assert!(!needs_gwbridge([(&ep, Some(&br))].into_iter()));
        assert!(!needs_gwbridge([(&ep, Some(&host))].into_iter()));
        let mut inner = net("bridge", false);
        inner.rec.internal = true;
        assert!(needs_gwbridge(
            [(&ep, Some(&ov)), (&ep, Some(&inner))].into_iter()
        ));
        assert!(!needs_gwbridge([(&ep, Some(&inner))].into_iter()));
        assert!(!needs_gwbridge([(&ep, None)].into_iter()));
    }

    fn ep(ifname: &str, ip: Option<[u8; 4]>, gw: Option<[u8; 4]>) -> Endpoint {
        Endpoint {
            ifname: ifname.into(),
            ip: ip.map(Ipv4Addr::from),
            gateway: gw.map(Ipv4Addr::from),
            ..Default::default()
        }
    }

    #[test]
    fn the_way_out_is_the_first_bridge_endpoint_with_a_gateway() {
        let (mut ov, mut br) = (net("overlay", false), net("bridge", false));
        ov.rec.bridge = "ov-x".into();
        br.rec.bridge = "br-y".into();
        let o = ep("eth0", Some([10, 0, 0, 2]), None);
        let b = ep("eth2", Some([10, 1, 0, 2]), Some([10, 1, 0, 1]));
        let unaddressed = ep("eth1", None, Some([10, 2, 0, 1]));
        let mut inner = net("bridge", false);
        inner.rec.internal = true;
        let i = ep("eth3", Some([10, 3, 0, 2]), Some([10, 3, 0, 1]));
        assert_eq!(
            next_way_out(
                [
                    (&o, Some(&ov)),
                    (&i, Some(&inner)),
                    (&unaddressed, Some(&br)),
                    (&b, Some(&br))
                ]
                .into_iter(),
                false
            ),
            Some(WayOut {
                ifname: "eth2".into(),
                ip: [10, 1, 0, 2].into(),
                gw: [10, 1, 0, 1].into(),
                ip6: None,
                gw6: None,
                bridge: "br-y".into(),
            })
        );
        assert_eq!(
            next_way_out([(&o, Some(&ov)), (&b, None)].into_iter(), false),
            None
        );
        assert_eq!(next_way_out([(&o, Some(&ov))].into_iter(), false), None);
        assert_eq!(
            next_way_out([(&o, Some(&ov)), (&i, Some(&inner))].into_iter(), true).map(|w| w.ifname),
            Some("eth3".to_string())
        );
        assert_eq!(
            next_way_out([(&o, Some(&ov)), (&i, Some(&inner))].into_iter(), false),
            None
        );
    }

    #[test]
    fn a_restart_puts_the_endpoint_with_the_default_route_first() {
        let networks: BTreeMap<String, Endpoint> = [
            ("ov", ep("eth0", Some([10, 0, 0, 2]), None)),
            (
                "bridge",
                ep("eth2", Some([10, 1, 0, 2]), Some([10, 1, 0, 1])),
            ),
            ("ubr", ep("eth1", Some([10, 2, 0, 2]), Some([10, 2, 0, 1]))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let order = || vec!["ov".to_string(), "bridge".into(), "ubr".into()];
        assert_eq!(
            route_first(order(), &networks, Some("eth1")),
            ["ubr", "ov", "bridge"]
        );
        assert_eq!(route_first(order(), &networks, None), order());
        assert_eq!(route_first(order(), &networks, Some("eth7")), order());
    }
}
