//! The data plane of an overlay network on one host (issue 14, point 3): a Linux bridge of
//! its own with no address on the host, and a VXLAN device with the network's VNI enslaved to
//! it (learning on, so remote container MACs are learnt from traffic), flooding unknown and
//! broadcast frames (ARP) to every other host through all-zeros FDB entries
//! (`00:00:00:00:00:00 dst <peer> self permanent`, one per peer, appended).
//! Containers get veths on the bridge (`link::attach_veth`). All over rtnetlink.

use crate::link::{check_name, link_kind, random_mac, Nl, NlError};
use crate::{Error, Result};
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::Ipv4Addr;

/// VXLAN's IANA port (docker's overlay driver uses it too; flannel.1 is on 8472).
pub const VXLAN_PORT: u16 = 4789;

/// One overlay network's devices on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec {
    pub bridge: String,
    pub vxlan: String,
    pub vni: u32,
    /// the advertise address (source of the encapsulated packets)
    pub local: Ipv4Addr,
    /// the underlay interface holding `local`
    pub underlay: u32,
    pub mtu: u32,
}

/// `ov-<12 hex>` and `vx-<12 hex>` for a network ID (15 characters, the kernel's limit).
pub fn device_names(net_id: &str) -> (String, String) {
    let short: String = net_id.chars().take(12).collect();
    (format!("ov-{short}"), format!("vx-{short}"))
}

fn set_up_mtu(nl: &mut Nl, index: u32, mtu: u32, what: &str) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    if mtu > 0 {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    nl.ack(RouteNetlinkMessage::SetLink(m), 0)
        .map_err(|e| e.into_error(&format!("set {what} up (mtu {mtu})")))
}

/// Creates the bridge and the VXLAN device if missing (idempotent), enslaves the device,
/// sets MTUs and brings both up. The bridge has no IPv4 address on the host.
pub fn ensure(spec: &OverlaySpec) -> Result<()> {
    check_name(&spec.bridge)?;
    check_name(&spec.vxlan)?;
    let mut nl = Nl::open()?;
    if nl.get_link(&spec.bridge)?.is_none() {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.bridge.clone()));
        msg.attributes
            .push(LinkAttribute::Address(random_mac().to_vec()));
        if spec.mtu > 0 {
            msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        match nl.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
            Err(e) => return Err(e.into_error(&format!("create bridge {}", spec.bridge))),
        }
    }
    let br = nl
        .get_link(&spec.bridge)?
        .ok_or_else(|| Error::Netlink(format!("bridge {} vanished", spec.bridge)))?;
    if link_kind(&br) != Some(InfoKind::Bridge) {
        return Err(Error::Conflict(format!(
            "{} exists and is not a bridge",
            spec.bridge
        )));
    }
    let br_index = br.header.index;
    set_up_mtu(&mut nl, br_index, spec.mtu, &spec.bridge)?;

    if let Some(l) = nl.get_link(&spec.vxlan)? {
        if link_kind(&l) != Some(InfoKind::Vxlan) {
            nl.del_link(&spec.vxlan)?;
        }
    }
    if nl.get_link(&spec.vxlan)?.is_none() {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.vxlan.clone()));
        if spec.mtu > 0 {
            msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(spec.vni),
                InfoVxlan::Local(spec.local),
                InfoVxlan::Link(spec.underlay),
                InfoVxlan::Port(VXLAN_PORT),
                InfoVxlan::Learning(true),
            ])),
        ]));
        match nl.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
            Err(e) => {
                return Err(e.into_error(&format!(
                    "create VXLAN device {} (VNI {})",
                    spec.vxlan, spec.vni
                )))
            }
        }
    }
    let vx = nl
        .get_link(&spec.vxlan)?
        .ok_or_else(|| Error::Netlink(format!("{} vanished", spec.vxlan)))?;
    let mut m = LinkMessage::default();
    m.header.index = vx.header.index;
    m.attributes.push(LinkAttribute::Controller(br_index));
    nl.ack(RouteNetlinkMessage::SetLink(m), 0)
        .map_err(|e| e.into_error(&format!("enslave {} to {}", spec.vxlan, spec.bridge)))?;
    set_up_mtu(&mut nl, vx.header.index, spec.mtu, &spec.vxlan)?;
    Ok(())
}

/// Removes both devices (those not there are fine).
pub fn remove(bridge: &str, vxlan: &str) -> Result<()> {
    check_name(bridge)?;
    check_name(vxlan)?;
    let mut nl = Nl::open()?;
    nl.del_link(vxlan)?;
    nl.del_link(bridge)
}

fn flood_msg(index: u32, peer: Ipv4Addr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(vec![0; 6]));
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            peer,
        )));
    msg
}

/// Adds `00:00:00:00:00:00 dst <peer>` to `vxlan` (appended beside the other peers';
/// one already there is fine).
pub fn add_flood(vxlan: &str, peer: Ipv4Addr) -> Result<()> {
    let mut nl = Nl::open()?;
    let index = nl
        .get_link(vxlan)?
        .ok_or_else(|| Error::NotFound(format!("VXLAN device {vxlan} not found")))?
        .header
        .index;
    match nl.ack(
        RouteNetlinkMessage::NewNeighbour(flood_msg(index, peer)),
        NLM_F_CREATE | NLM_F_APPEND,
    ) {
        Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => Ok(()),
        Err(e) => Err(e.into_error(&format!("{vxlan}: flood entry to {peer}"))),
    }
}

/// Removes the flood entry to `peer` (gone already is fine).
pub fn del_flood(vxlan: &str, peer: Ipv4Addr) -> Result<()> {
    let mut nl = Nl::open()?;
    let Some(l) = nl.get_link(vxlan)? else {
        return Ok(());
    };
    match nl.ack(
        RouteNetlinkMessage::DelNeighbour(flood_msg(l.header.index, peer)),
        0,
    ) {
        Ok(()) | Err(NlError::Os(libc::ENOENT, _)) | Err(NlError::Os(libc::ESRCH, _)) => Ok(()),
        Err(e) => Err(e.into_error(&format!("{vxlan}: delete flood entry to {peer}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limit() {
        let (b, v) = device_names("0123456789abcdef0123");
        assert_eq!(b, "ov-0123456789ab");
        assert_eq!(v, "vx-0123456789ab");
        assert!(b.len() <= 15 && v.len() <= 15);
    }

    #[test]
    fn flood_entries_are_all_zeros_to_the_peer() {
        let m = flood_msg(7, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(m.header.family, AddressFamily::Bridge);
        assert!(m
            .attributes
            .contains(&NeighbourAttribute::LinkLayerAddress(vec![0; 6])));
        assert!(m
            .attributes
            .contains(&NeighbourAttribute::Destination(NeighbourAddress::Inet(
                Ipv4Addr::new(10, 99, 0, 2)
            ))));
    }
}
