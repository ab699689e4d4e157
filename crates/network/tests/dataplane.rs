//! The rules at work, with real traffic, all inside namespaces the test makes.
//!
//! The test's "host" is a fresh network namespace: the test body runs on a thread that
//! entered it, so the bridges, the nft table (nft runs as a child of that thread) and the
//! sysctls are that namespace's, and the real host's firewall plays no part. Containers
//! and an "outside" machine are namespaces joined to it by veth pairs. Traffic goes only
//! between those namespaces, to addresses of 198.18.0.0/15.

mod common;

use berth_network::link::{self, BridgeSpec, VethSpec};
use berth_network::nat::{Nat, NetRules, PortRule, Proto, Ruleset};
use berth_network::{mac_for, sysctl, Subnet};
use common::Netns;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn enter(ns: &Path) {
    let f = std::fs::File::open(ns).unwrap();
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// A TCP server inside `ns` that answers each connection with the peer's address.
struct PeerServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeerServer {
    fn start(ns: &Path, ip: Ipv4Addr, port: u16) -> PeerServer {
        let ns = ns.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let l = TcpListener::bind((ip, port)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv().expect("server listening");
        PeerServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` (None: the calling thread's namespace) to `to`; what the
/// server said (the address it saw us come from), or the error.
fn connect_from(ns: Option<&Path>, to: (Ipv4Addr, u16)) -> std::io::Result<String> {
    connect_within(ns, to, Duration::from_secs(3))
}

/// True when a connection from `ns` to `to` does not get through (dropped or refused);
/// a short wait, since only a silent drop makes it wait at all.
fn blocked(ns: Option<&Path>, to: (Ipv4Addr, u16)) -> bool {
    connect_within(ns, to, Duration::from_millis(600)).is_err()
}

fn connect_within(
    ns: Option<&Path>,
    to: (Ipv4Addr, u16),
    timeout: Duration,
) -> std::io::Result<String> {
    let ns: Option<PathBuf> = ns.map(Path::to_path_buf);
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = ns {
                enter(&ns);
            }
            let addr = SocketAddr::from(to);
            let mut c = TcpStream::connect_timeout(&addr, timeout)?;
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut out = String::new();
            c.read_to_string(&mut out)?;
            Ok(out)
        })
        .join()
        .unwrap()
    })
}

fn net24(a: [u8; 3]) -> Subnet {
    Subnet {
        addr: Ipv4Addr::new(a[0], a[1], a[2], 0),
        prefix: 24,
    }
}

fn ip(a: [u8; 3], d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a[0], a[1], a[2], d)
}

#[test]
fn masquerade_isolation_internal_hairpin_and_published_ports() {
    need_root!();
    let host = Netns::new();
    let c1 = Netns::new();
    let c2 = Netns::new();
    let c3 = Netns::new();
    let c4 = Netns::new();
    let outside = Netns::new();
    host.ip(&["link", "set", "lo", "up"]);

    // all addresses are private to these namespaces: any third octets will do
    let n1 = [198, 18, 1];
    let n2 = [198, 18, 2];
    let n3 = [198, 18, 3]; // internal
    let up = [198, 19, 9]; // the "outside" link

    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&host.path);
            let bridge = |name: &str, net: [u8; 3]| {
                link::ensure_bridge(&BridgeSpec {
                    name: name.into(),
                    addr: ip(net, 1),
                    prefix: 24,
                    mtu: 1500,
                    addr6: None,
                })
                .unwrap();
            };
            bridge("br1", n1);
            bridge("br2", n2);
            bridge("br3", n3);
            bridge("uplink", up);
            let attach = |host_name: &str, br: &str, ns: &Netns, net: [u8; 3], gw: bool| {
                link::attach_veth(&VethSpec {
                    host_name: host_name.into(),
                    bridge: br.into(),
                    netns: ns.path.clone(),
                    ifname: "eth0".into(),
                    addr: ip(net, 2),
                    prefix: 24,
                    gateway: gw.then(|| ip(net, 1)),
                    mac: mac_for(ip(net, 2)),
                    mtu: 1500,
                    addr6: None,
                    gateway6: None,
                })
                .unwrap();
            };
            attach("veth1", "br1", &c1, n1, true);
            attach("veth2", "br2", &c2, n2, true);
            attach("veth3", "br3", &c3, n3, true);
            link::attach_veth(&VethSpec {
                host_name: "veth4".into(),
                bridge: "br3".into(),
                netns: c4.path.clone(),
                ifname: "eth0".into(),
                addr: ip(n3, 4),
                prefix: 24,
                gateway: Some(ip(n3, 1)),
                mac: mac_for(ip(n3, 4)),
                mtu: 1500,
                addr6: None,
                gateway6: None,
            })
            .unwrap();
            // the outside machine has no route to the containers: it only ever sees the
            // host's own address, thanks to masquerade
            attach("vethx", "uplink", &outside, up, false);

            let _srv1 = PeerServer::start(&c1.path, ip(n1, 2), 80);
            let _srv2 = PeerServer::start(&c2.path, ip(n2, 2), 80);
            let _srvx = PeerServer::start(&outside.path, ip(up, 2), 9000);
            let _srv4 = PeerServer::start(&c4.path, ip(n3, 4), 80);

            // before any rules, with forwarding on: c1 reaches c2 with its own address
            sysctl::set("net.ipv4.ip_forward", "1").unwrap();
            assert_eq!(
                connect_from(Some(&c1.path), (ip(n2, 2), 80)).unwrap(),
                ip(n1, 2).to_string()
            );

            let nat = Nat::new("berth");
            let rs = Ruleset {
                networks: vec![
                    NetRules {
                        bridge: "br1".into(),
                        subnet: net24(n1),
                        internal: false,
                    },
                    NetRules {
                        bridge: "br2".into(),
                        subnet: net24(n2),
                        internal: false,
                    },
                    NetRules {
                        bridge: "br3".into(),
                        subnet: net24(n3),
                        internal: true,
                    },
                ],
                ports: vec![PortRule {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: ip(n1, 2),
                    ctr_port: 80,
                    bridge: "br1".into(),
                }],
                ..Default::default()
            };
            nat.apply(&rs).unwrap();
            assert_eq!(
                sysctl::get("net.ipv4.conf.br1.route_localnet").unwrap(),
                "1"
            );

            // masquerade: the outside sees the host's uplink address
            assert_eq!(
                connect_from(Some(&c1.path), (ip(up, 2), 9000)).unwrap(),
                ip(up, 1).to_string()
            );
            assert_eq!(
                connect_from(Some(&c2.path), (ip(up, 2), 9000)).unwrap(),
                ip(up, 1).to_string()
            );
            // isolation: c1 and c2 no longer reach each other
            assert!(blocked(Some(&c1.path), (ip(n2, 2), 80)));
            assert!(blocked(Some(&c2.path), (ip(n1, 2), 80)));
            // internal: c3 reaches neither the outside nor other networks
            assert!(blocked(Some(&c3.path), (ip(up, 2), 9000)));
            assert!(blocked(Some(&c3.path), (ip(n1, 2), 80)));
            // … but containers on it reach each other
            assert_eq!(
                connect_from(Some(&c3.path), (ip(n3, 4), 80)).unwrap(),
                ip(n3, 2).to_string()
            );

            // published port, from the outside to the host's address
            assert_eq!(
                connect_from(Some(&outside.path), (ip(up, 1), 8080)).unwrap(),
                ip(up, 2).to_string()
            );
            // from the host itself, through 127.0.0.1 and through a bridge address
            assert_eq!(
                connect_from(None, (Ipv4Addr::LOCALHOST, 8080)).unwrap(),
                ip(n1, 1).to_string()
            );
            assert!(connect_from(None, (ip(n2, 1), 8080)).is_ok());
            // hairpin: c1 reaches its own published port through its gateway, and the
            // answer comes back through the host (masqueraded to the gateway)
            assert_eq!(
                connect_from(Some(&c1.path), (ip(n1, 1), 8080)).unwrap(),
                ip(n1, 1).to_string()
            );

            // the table goes, and with it the isolation
            nat.remove().unwrap();
            assert!(connect_from(Some(&c1.path), (ip(n2, 2), 80)).is_ok());
            assert!(blocked(None, (Ipv4Addr::LOCALHOST, 8080)));
        })
        .join()
        .unwrap();
    });
    // the namespaces (and the bridges, veths and table in them) go with the guards
}
