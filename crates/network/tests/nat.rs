//! Root tests of `nat` and `ports`: a table of the test's own loads, and a published port
//! of a listener inside a test-made namespace answers on 127.0.0.1.

mod common;

use berth_network::link::{self, BridgeSpec, VethSpec};
use berth_network::nat::{Nat, NetRules, PortRule, Proto, Ruleset};
use berth_network::{mac_for, ports, sysctl, Error, Subnet};
use common::{LinkGuard, Netns, TableGuard};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn nft_list(table: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn apply_replaces_and_remove_deletes() {
    need_root!();
    let table = format!("berthtest_{}", common::rand_hex(8));
    let nat = TableGuard(Nat::new(&table));
    let subnet = Subnet {
        addr: Ipv4Addr::new(198, 18, 200, 0),
        prefix: 24,
    };
    let mut rs = Ruleset {
        networks: vec![
            NetRules {
                bridge: "btstnone0".into(),
                subnet,
                internal: false,
            },
            NetRules {
                bridge: "btstnone1".into(),
                subnet: Subnet {
                    addr: Ipv4Addr::new(198, 18, 201, 0),
                    prefix: 24,
                },
                internal: true,
            },
        ],
        ports: vec![],
        ..Default::default()
    };
    let t = Instant::now();
    nat.0.apply(&rs).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    nat.0.apply(&rs).unwrap(); // same text: nft is not run
    let again = t.elapsed();
    eprintln!("Nat::apply: {first:?} first, {again:?} unchanged");
    assert_eq!(sysctl::get("net.ipv4.ip_forward").unwrap(), "1");
    let listed = nft_list(&table).expect("table loaded");
    assert!(
        listed.contains("ip saddr 198.18.200.0/24 oifname != \"btstnone0\" masquerade"),
        "{listed}"
    );
    assert!(
        listed.contains("iifname \"btstnone1\" oifname != \"btstnone1\" drop"),
        "{listed}"
    );

    // a changed ruleset replaces the whole table
    rs.networks.truncate(1);
    let t = Instant::now();
    nat.0.apply(&rs).unwrap();
    eprintln!("Nat::apply: {:?} changed", t.elapsed());
    let listed = nft_list(&table).unwrap();
    assert!(!listed.contains("btstnone1"), "{listed}");
    assert_eq!(listed.matches("chain postrouting").count(), 1);

    // deleted behind its back: the same text is not loaded again until invalidated
    assert!(Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .status()
        .unwrap()
        .success());
    nat.0.apply(&rs).unwrap();
    assert!(nft_list(&table).is_none());
    nat.0.invalidate();
    nat.0.apply(&rs).unwrap();
    assert!(nft_list(&table).is_some());

    nat.0.remove().unwrap();
    assert!(nft_list(&table).is_none());
    nat.0.remove().unwrap(); // missing: fine
    assert!(matches!(
        Nat::new("bad name").apply(&rs),
        Err(Error::InvalidParameter(_))
    ));
}

/// Serves `n` connections inside the namespace at `ip:port`: answers each with `reply`.
fn serve_in_netns(
    ns: &std::path::Path,
    ip: Ipv4Addr,
    port: u16,
    n: usize,
    reply: &'static [u8],
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let f = std::fs::File::open(ns).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || -> std::io::Result<()> {
        let r = nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|_| TcpListener::bind((ip, port)));
        let l = match r {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Err(e);
            }
        };
        l.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < n && Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false)?;
                    s.write_all(reply)?;
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    rx.recv().unwrap().expect("listener in the namespace");
    h
}

/// Answers one datagram inside the namespace at `ip:port` with `pong:<what it got>`.
fn udp_echo_in_netns(
    ns: &std::path::Path,
    ip: Ipv4Addr,
    port: u16,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let f = std::fs::File::open(ns).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || -> std::io::Result<()> {
        let r = nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|_| std::net::UdpSocket::bind((ip, port)));
        let s = match r {
            Ok(s) => {
                let _ = tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Err(e);
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = [0u8; 64];
        let (n, peer) = s.recv_from(&mut buf)?;
        let mut answer = b"pong:".to_vec();
        answer.extend_from_slice(&buf[..n]);
        s.send_to(&answer, peer)?;
        Ok(())
    });
    rx.recv().unwrap().expect("udp socket in the namespace");
    h
}

fn fetch(port: u16) -> std::io::Result<Vec<u8>> {
    let mut s =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(got)
}

#[test]
fn published_port_answers_on_localhost() {
    need_root!();
    let br = format!("btst{}", common::rand_hex(8));
    let _g = LinkGuard(br.clone());
    let [a, b, c] = common::test_net(19);
    let gw = Ipv4Addr::new(a, b, c, 1);
    let ctr = Ipv4Addr::new(a, b, c, 2);
    link::ensure_bridge(&BridgeSpec {
        name: br.clone(),
        addr: gw,
        prefix: 24,
        mtu: 1500,
        addr6: None,
    })
    .unwrap();
    let ns = Netns::new();
    let host = format!("veth{}", common::rand_hex(7));
    let _h = LinkGuard(host.clone());
    link::attach_veth(&VethSpec {
        host_name: host.clone(),
        bridge: br.clone(),
        netns: ns.path.clone(),
        ifname: "eth0".into(),
        addr: ctr,
        prefix: 24,
        gateway: Some(gw),
        mac: mac_for(ctr),
        mtu: 1500,
        addr6: None,
        gateway6: None,
    })
    .unwrap();
    let server = serve_in_netns(&ns.path, ctr, 80, 2, b"hello from the namespace\n");
    let udp_server = udp_echo_in_netns(&ns.path, ctr, 53);

    // the host ports, held like the engine holds them
    let r1 = ports::reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), 0).unwrap();
    let r2 = ports::reserve(Proto::Tcp, None, 0).unwrap();
    let r3 = ports::reserve(Proto::Udp, Some(Ipv4Addr::LOCALHOST), 0).unwrap();
    assert!(matches!(
        ports::reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), r2.port),
        Err(Error::Conflict(_))
    ));

    let table = format!("berthtest_{}", common::rand_hex(8));
    let nat = TableGuard(Nat::new(&table));
    let rule = |host_ip, host_port| PortRule {
        proto: Proto::Tcp,
        host_ip,
        host_port,
        ctr_ip: ctr,
        ctr_port: 80,
        bridge: br.clone(),
    };
    let rs = Ruleset {
        networks: vec![NetRules {
            bridge: br.clone(),
            subnet: Subnet {
                addr: Ipv4Addr::new(a, b, c, 0),
                prefix: 24,
            },
            internal: false,
        }],
        ports: vec![
            rule(Some(Ipv4Addr::LOCALHOST), r1.port),
            rule(None, r2.port),
            PortRule {
                proto: Proto::Udp,
                ctr_port: 53,
                ..rule(Some(Ipv4Addr::LOCALHOST), r3.port)
            },
        ],
        ..Default::default()
    };
    let t = Instant::now();
    nat.0.apply(&rs).unwrap();
    eprintln!("Nat::apply with ports: {:?}", t.elapsed());
    assert_eq!(
        sysctl::get(&format!("net.ipv4.conf.{br}.route_localnet")).unwrap(),
        "1"
    );

    let got1 = fetch(r1.port);
    let got2 = fetch(r2.port);
    let served = server.join().unwrap();
    assert_eq!(got1.unwrap(), b"hello from the namespace\n");
    assert_eq!(got2.unwrap(), b"hello from the namespace\n");
    served.unwrap();

    // UDP: a datagram to 127.0.0.1:<r3> reaches the namespace and the answer comes back
    let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    u.send_to(b"ping", (Ipv4Addr::LOCALHOST, r3.port)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = u.recv_from(&mut buf).expect("udp answer");
    assert_eq!(&buf[..n], b"pong:ping");
    assert_eq!(from, (Ipv4Addr::LOCALHOST, r3.port).into());
    udp_server.join().unwrap().unwrap();

    // without the table the reserved port is just a bound socket: refused
    nat.0.remove().unwrap();
    assert!(fetch(r1.port).is_err());
    drop((r1, r2, r3));
}
