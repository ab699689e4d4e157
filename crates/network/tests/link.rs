//! Root tests of `link`: a bridge and veth pairs into namespaces the test makes.

mod common;

use berth_network::link::{self, BridgeSpec, VethSpec};
use berth_network::{format_mac, mac_for, Error};
use common::{sys_read, LinkGuard, Netns};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn veth(
    host: &str,
    bridge: &str,
    ns: &Netns,
    ifname: &str,
    ip: Ipv4Addr,
    gw: Option<Ipv4Addr>,
) -> VethSpec {
    VethSpec {
        host_name: host.into(),
        bridge: bridge.into(),
        netns: ns.path.clone(),
        ifname: ifname.into(),
        addr: ip,
        prefix: 24,
        gateway: gw,
        mac: mac_for(ip),
        mtu: 1400,
        addr6: None,
        gateway6: None,
    }
}

#[test]
fn bridge_is_made_and_kept_as_asked() {
    need_root!();
    let name = format!("btst{}", common::rand_hex(8));
    let _g = LinkGuard(name.clone());
    let [a, b, c] = common::test_net(18);
    let gw = Ipv4Addr::new(a, b, c, 1);
    let spec = BridgeSpec {
        name: name.clone(),
        addr: gw,
        prefix: 24,
        mtu: 1500,
        addr6: None,
    };
    assert!(!link::link_exists(&name));
    assert!(matches!(link::link_ipv4(&name), Err(Error::NotFound(_))));
    link::ensure_bridge(&spec).unwrap();
    assert!(link::link_exists(&name));
    assert_eq!(link::link_ipv4(&name).unwrap(), Some((gw, 24)));
    assert_eq!(sys_read(&format!("/sys/class/net/{name}/mtu")), "1500");
    assert_eq!(sys_read(&format!("/sys/class/net/{name}/flags")), "0x1003"); // UP|BROADCAST|MULTICAST
    assert!(std::path::Path::new(&format!("/sys/class/net/{name}/bridge")).exists());
    // its MAC was set (3 = NET_ADDR_SET), so ports joining and leaving do not change it
    assert_eq!(
        sys_read(&format!("/sys/class/net/{name}/addr_assign_type")),
        "3"
    );

    // again: nothing changes, no error
    link::ensure_bridge(&spec).unwrap();
    assert_eq!(link::link_ipv4(&name).unwrap(), Some((gw, 24)));

    // a stray address goes, the MTU follows the spec, a downed bridge comes back up
    let stray = format!("{a}.{b}.{c}.200/24");
    assert!(std::process::Command::new("ip")
        .args(["addr", "add", &stray, "dev", &name])
        .status()
        .unwrap()
        .success());
    assert!(std::process::Command::new("ip")
        .args(["link", "set", &name, "down"])
        .status()
        .unwrap()
        .success());
    let spec2 = BridgeSpec {
        mtu: 1400,
        ..spec.clone()
    };
    link::ensure_bridge(&spec2).unwrap();
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &name])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout);
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    assert!(
        addrs.contains(&format!("inet {gw}/24 brd {a}.{b}.{c}.255")),
        "{addrs}"
    );
    assert_eq!(sys_read(&format!("/sys/class/net/{name}/mtu")), "1400");
    assert_eq!(sys_read(&format!("/sys/class/net/{name}/flags")), "0x1003");

    // a link of that name that is not a bridge (a veth: its peer goes with it)
    let dummy = format!("btst{}", common::rand_hex(8));
    let _d = LinkGuard(dummy.clone());
    assert!(std::process::Command::new("ip")
        .args(["link", "add", &dummy, "type", "veth"])
        .status()
        .unwrap()
        .success());
    let e = link::ensure_bridge(&BridgeSpec {
        name: dummy.clone(),
        ..spec.clone()
    })
    .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");

    link::delete_link(&name).unwrap();
    assert!(!link::link_exists(&name));
    link::delete_link(&name).unwrap(); // missing: fine
    assert!(matches!(
        link::delete_link("bad/name"),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn veth_into_a_namespace() {
    need_root!();
    let br = format!("btst{}", common::rand_hex(8));
    let _g = LinkGuard(br.clone());
    let [a, b, c] = common::test_net(18);
    let gw = Ipv4Addr::new(a, b, c, 1);
    link::ensure_bridge(&BridgeSpec {
        name: br.clone(),
        addr: gw,
        prefix: 24,
        mtu: 1400,
        addr6: None,
    })
    .unwrap();
    let ns = Netns::new();
    let host = format!("veth{}", common::rand_hex(7));
    let _h = LinkGuard(host.clone());
    let ip = Ipv4Addr::new(a, b, c, 2);
    let spec = veth(&host, &br, &ns, "eth0", ip, Some(gw));

    let t = Instant::now();
    link::attach_veth(&spec).unwrap();
    eprintln!("attach_veth: {:?}", t.elapsed());

    // host side: on the bridge, up
    assert_eq!(
        std::fs::read_link(format!("/sys/class/net/{host}/master"))
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        br
    );
    assert_eq!(
        sys_read(&format!("/sys/class/net/{host}/brport/hairpin_mode")),
        "1"
    );
    assert_eq!(sys_read(&format!("/sys/class/net/{host}/mtu")), "1400");
    let flags = u32::from_str_radix(
        sys_read(&format!("/sys/class/net/{host}/flags")).trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(flags & 1, 1, "host side up");

    // inside
    let mut names = link::links_in_netns(&ns.path).unwrap();
    names.sort();
    assert_eq!(names, ["eth0", "lo"]);
    let l = ns.ip(&["-o", "link", "show", "eth0"]);
    assert!(l.contains("mtu 1400"), "{l}");
    assert!(
        l.contains(&format!("link/ether {}", format_mac(&mac_for(ip)))),
        "{l}"
    );
    assert!(l.contains(",UP"), "{l}");
    let lo = ns.ip(&["-o", "link", "show", "lo"]);
    assert!(lo.contains(",UP"), "{lo}");
    let addr = ns.ip(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        addr.contains(&format!("inet {ip}/24 brd {a}.{b}.{c}.255")),
        "{addr}"
    );
    let route = ns.ip(&["-4", "route", "show", "default"]);
    assert!(
        route.contains(&format!("default via {gw} dev eth0")),
        "{route}"
    );
    // the gateway (the test's own bridge) answers (up to 3 echoes within 6 s: the first can
    // be lost while the new bridge port and the neighbour entry settle on a loaded machine)
    assert!(ns.exec_ok(&["busybox", "ping", "-c", "3", "-w", "6", &gw.to_string()]));

    // the same names again: Conflict, and nothing new left behind
    let e = link::attach_veth(&spec).unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    // a free host name but eth0 taken inside: error, no host side left
    let host2 = format!("veth{}", common::rand_hex(7));
    let _h2 = LinkGuard(host2.clone());
    assert!(link::attach_veth(&veth(
        &host2,
        &br,
        &ns,
        "eth0",
        Ipv4Addr::new(a, b, c, 3),
        None
    ))
    .is_err());
    assert!(!link::link_exists(&host2));
    // failing inside the namespace (a gateway it cannot reach): everything undone
    let bad = veth(
        &host2,
        &br,
        &ns,
        "eth1",
        Ipv4Addr::new(a, b, c, 3),
        Some(Ipv4Addr::new(198, 19, 254, 1)),
    );
    let e = link::attach_veth(&bad).unwrap_err();
    assert!(matches!(e, Error::Netlink(_)), "{e}");
    eprintln!("unreachable gateway: {e}");
    assert!(!link::link_exists(&host2));
    let mut names = link::links_in_netns(&ns.path).unwrap();
    names.sort();
    assert_eq!(names, ["eth0", "lo"]);
    // no such bridge, no such namespace
    let nobr = VethSpec {
        bridge: "btstnosuch0".into(),
        ..bad.clone()
    };
    assert!(matches!(link::attach_veth(&nobr), Err(Error::NotFound(_))));
    let nons = VethSpec {
        netns: "/run/netns/berthtest-nosuch".into(),
        ..bad.clone()
    };
    assert!(matches!(link::attach_veth(&nons), Err(Error::NotFound(_))));
    assert!(!link::link_exists(&host2));

    // a second network without a default route
    let host3 = format!("veth{}", common::rand_hex(7));
    let _h3 = LinkGuard(host3.clone());
    link::attach_veth(&veth(
        &host3,
        &br,
        &ns,
        "eth1",
        Ipv4Addr::new(a, b, c, 4),
        None,
    ))
    .unwrap();
    let mut names = link::links_in_netns(&ns.path).unwrap();
    names.sort();
    assert_eq!(names, ["eth0", "eth1", "lo"]);

    // removal from inside takes the host side with it
    link::remove_in_netns(&ns.path, "eth1").unwrap();
    link::remove_in_netns(&ns.path, "eth1").unwrap(); // missing: fine
    assert!(!link::link_exists(&host3));
    link::remove_in_netns(&ns.path, "eth0").unwrap();
    assert!(!link::link_exists(&host));
    assert_eq!(link::links_in_netns(&ns.path).unwrap(), ["lo"]);
}

/// Not an assertion on time (benchmarks measure speed): prints what attach/remove cost here.
#[test]
fn attach_veth_timing() {
    need_root!();
    let br = format!("btst{}", common::rand_hex(8));
    let _g = LinkGuard(br.clone());
    let [a, b, c] = common::test_net(19);
    link::ensure_bridge(&BridgeSpec {
        name: br.clone(),
        addr: Ipv4Addr::new(a, b, c, 1),
        prefix: 24,
        mtu: 1500,
        addr6: None,
    })
    .unwrap();
    let ns = Netns::new();
    let host = format!("veth{}", common::rand_hex(7));
    let _h = LinkGuard(host.clone());
    let spec = veth(
        &host,
        &br,
        &ns,
        "eth0",
        Ipv4Addr::new(a, b, c, 2),
        Some(Ipv4Addr::new(a, b, c, 1)),
    );
    let n = 20;
    let (mut att, mut rem) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        link::attach_veth(&spec).unwrap();
        att += t.elapsed();
        let t = Instant::now();
        link::remove_in_netns(&ns.path, "eth0").unwrap();
        rem += t.elapsed();
    }
    eprintln!(
        "attach_veth: {:?} avg, remove_in_netns: {:?} avg ({n} runs)",
        att / n,
        rem / n
    );
}

#[test]
fn racing_ensure_bridge_calls_all_succeed() {
    need_root!();
    let name = format!("btst{}", common::rand_hex(8));
    let _g = LinkGuard(name.clone());
    let [a, b, c] = common::test_net(19);
    let spec = BridgeSpec {
        name: name.clone(),
        addr: Ipv4Addr::new(a, b, c, 1),
        prefix: 24,
        mtu: 1500,
        addr6: None,
    };
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| link::ensure_bridge(&spec)))
            .collect();
        for h in hs {
            h.join().unwrap().unwrap();
        }
    });
    assert_eq!(
        link::link_ipv4(&name).unwrap(),
        Some((Ipv4Addr::new(a, b, c, 1), 24))
    );
}
