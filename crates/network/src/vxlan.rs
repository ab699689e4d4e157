//! A VXLAN tunnel endpoint (flannel's `flannel.1`) and the per-peer state that makes another
//! host's subnet reachable through it, over rtnetlink:
//!
//! - a route `10.250.Y.0/24 via 10.250.Y.0 dev flannel.1 onlink`,
//! - a neighbour `10.250.Y.0 lladdr <peer VtepMAC> dev flannel.1 nud permanent`,
//! - an FDB entry `<peer VtepMAC> dst <peer PublicIP> dev flannel.1 self permanent`.
//!
//! The device has learning off: every remote MAC is given, none is learnt from traffic.

use crate::link::{link_kind, link_mtu, random_mac, Nl, NlError};
use crate::{Error, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::Ipv4Addr;

/// The VTEP as a host wants it.
#[derive(Debug, Clone)]
pub struct VtepSpec {
    pub name: String,
    pub vni: u32,
    /// the advertise address (source of the encapsulated packets)
    pub local: Ipv4Addr,
    /// the underlay interface holding `local`
    pub underlay: u32,
    pub port: u16,
    pub mtu: u32,
    /// the host's subnet's network address, given to the device as a /32 (as flannel does)
    pub addr: Ipv4Addr,
}

/// Another host as seen through its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    pub public_ip: Ipv4Addr,
}

/// The underlay for an advertise value (an IPv4 address held by an interface here, or an
/// interface name): its address, interface index and MTU.
pub fn resolve_advertise(value: &str) -> Result<(Ipv4Addr, u32, u32)> {
    let mut nl = Nl::open()?;
    let addrs = nl.ipv4_addrs(None)?;
    let (ip, index) = if let Ok(ip) = value.parse::<Ipv4Addr>() {
        let (_, _, msg) = addrs.iter().find(|(a, _, _)| *a == ip).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "cluster-advertise {value}: no interface of this host has that address"
            ))
        })?;
        (ip, msg.header.index)
    } else {
        let link = nl.get_link(value)?.ok_or_else(|| {
            Error::InvalidParameter(format!(
                "cluster-advertise {value}: no such address or interface"
            ))
        })?;
        let index = link.header.index;
        let (a, _, _) = addrs
            .iter()
            .find(|(_, _, m)| m.header.index == index)
            .ok_or_else(|| {
                Error::InvalidParameter(format!(
                    "cluster-advertise {value}: the interface has no IPv4 address"
                ))
            })?;
        (*a, index)
    };
    let mtu = nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if l.header.index == index => link_mtu(&l),
            _ => None,
        })
        .unwrap_or(1500);
    Ok((ip, index, mtu))
}

fn link_mac(l: &LinkMessage) -> Option<[u8; 6]> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) if m.len() == 6 => {
            let mut out = [0u8; 6];
            out.copy_from_slice(m);
            Some(out)
        }
        _ => None,
    })
}

fn vxlan_info(l: &LinkMessage) -> Vec<InfoVxlan> {
    l.attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => Some(infos),
            _ => None,
        })
        .flatten()
        .filter_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(v)) => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Creates the VTEP if it is missing (or recreates it when its VNI, local address or port
/// differ), gives it `addr/32`, the MTU, and brings it up. A device left by an earlier run
/// is kept, so its MAC (published in the lease) stays the same. Answers the device's MAC.
pub fn ensure_vtep(spec: &VtepSpec) -> Result<[u8; 6]> {
    crate::link::check_name(&spec.name)?;
    let mut nl = Nl::open()?;
    if let Some(l) = nl.get_link(&spec.name)? {
        let info = vxlan_info(&l);
        let same = link_kind(&l) == Some(InfoKind::Vxlan)
            && info.contains(&InfoVxlan::Id(spec.vni))
            && info.contains(&InfoVxlan::Local(spec.local))
            && info.contains(&InfoVxlan::Port(spec.port));
        if !same {
            tracing::info!(dev = %spec.name, "VXLAN device differs from the wanted one: recreating");
            nl.del_link(&spec.name)?;
        }
    }
    if nl.get_link(&spec.name)?.is_none() {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        msg.attributes
            .push(LinkAttribute::Address(random_mac().to_vec()));
        if spec.mtu > 0 {
            msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(spec.vni),
                InfoVxlan::Local(spec.local),
                InfoVxlan::Link(spec.underlay),
                InfoVxlan::Port(spec.port),
                InfoVxlan::Learning(false),
            ])),
        ]));
        nl.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| e.into_error(&format!("create VXLAN device {}", spec.name)))?;
    }
    let link = nl
        .get_link(&spec.name)?
        .ok_or_else(|| Error::Netlink(format!("{} vanished after creation", spec.name)))?;
    let index = link.header.index;
    for (a, p, msg) in nl.ipv4_addrs(Some(index))? {
        if a != spec.addr || p != 32 {
            nl.ack(RouteNetlinkMessage::DelAddress(msg), 0)
                .map_err(|e| e.into_error(&format!("delete {a}/{p} from {}", spec.name)))?;
        }
    }
    match nl.add_addr(index, spec.addr, 32) {
        Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
        Err(e) => return Err(e.into_error(&format!("add {}/32 to {}", spec.addr, spec.name))),
    }
    if spec.mtu > 0 && link_mtu(&link) != Some(spec.mtu) {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Mtu(spec.mtu));
        nl.ack(RouteNetlinkMessage::SetLink(m), 0)
            .map_err(|e| e.into_error(&format!("set MTU of {}", spec.name)))?;
    }
    nl.set_up(&spec.name)?;
    link_mac(&link).ok_or_else(|| Error::Netlink(format!("{} has no MAC", spec.name)))
}

fn route_msg(index: u32, p: &Peer) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = p.prefix;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    msg.header.flags = RouteFlags::Onlink;
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(p.subnet)));
    msg.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(p.subnet)));
    msg.attributes.push(RouteAttribute::Oif(index));
    msg
}

fn neigh_msg(index: u32, p: &Peer) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            p.subnet,
        )));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(p.mac.to_vec()));
    msg
}

fn fdb_msg(index: u32, p: &Peer) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(p.mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            p.public_ip,
        )));
    msg
}

fn vtep_index(nl: &mut Nl, dev: &str) -> Result<u32> {
    Ok(nl
        .get_link(dev)?
        .ok_or_else(|| Error::NotFound(format!("VXLAN device {dev} not found")))?
        .header
        .index)
}

/// Makes `p`'s subnet reachable through `dev` (idempotent: entries are replaced).
pub fn add_peer(dev: &str, p: &Peer) -> Result<()> {
    let mut nl = Nl::open()?;
    let index = vtep_index(&mut nl, dev)?;
    let what = format!("peer {}/{} at {}", p.subnet, p.prefix, p.public_ip);
    nl.ack(
        RouteNetlinkMessage::NewNeighbour(fdb_msg(index, p)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
    .map_err(|e| e.into_error(&format!("{what}: fdb")))?;
    nl.ack(
        RouteNetlinkMessage::NewNeighbour(neigh_msg(index, p)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
    .map_err(|e| e.into_error(&format!("{what}: neighbour")))?;
    nl.ack(
        RouteNetlinkMessage::NewRoute(route_msg(index, p)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
    .map_err(|e| e.into_error(&format!("{what}: route")))?;
    Ok(())
}

/// Removes what `add_peer` made (entries already gone are fine).
pub fn del_peer(dev: &str, p: &Peer) -> Result<()> {
    let mut nl = Nl::open()?;
    let index = vtep_index(&mut nl, dev)?;
    let gone = |r: std::result::Result<(), NlError>, what: &str| match r {
        Ok(()) | Err(NlError::Os(libc::ESRCH, _)) | Err(NlError::Os(libc::ENOENT, _)) => Ok(()),
        Err(e) => Err(e.into_error(what)),
    };
    gone(
        nl.ack(RouteNetlinkMessage::DelRoute(route_msg(index, p)), 0),
        "delete peer route",
    )?;
    gone(
        nl.ack(RouteNetlinkMessage::DelNeighbour(neigh_msg(index, p)), 0),
        "delete peer neighbour",
    )?;
    gone(
        nl.ack(RouteNetlinkMessage::DelNeighbour(fdb_msg(index, p)), 0),
        "delete peer fdb entry",
    )?;
    Ok(())
}

/// The MAC of link `name`, if it exists.
pub fn device_mac(name: &str) -> Option<[u8; 6]> {
    Nl::open()
        .ok()?
        .get_link(name)
        .ok()?
        .as_ref()
        .and_then(link_mac)
}
