//! Networking (issue 5): the default bridge, host/none/container modes, user networks with
//! subnets, fixed addresses, aliases and DNS, published ports, clean-up and daemon restarts.
//! Traffic goes only to loopback and to addresses inside namespaces this test's daemon made;
//! explicit subnets come from 198.18.0.0/15 (the benchmarking range).

mod common;
use common::{eventually, stderr, stdout, Daemon};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

fn sh(d: &Daemon, ctr: &str, script: &str) -> String {
    d.ok(&["exec", ctr, "sh", "-c", script])
}

fn sh_status(d: &Daemon, ctr: &str, script: &str) -> bool {
    d.berth(&["exec", ctr, "sh", "-c", script]).status.success()
}

fn ip_of(d: &Daemon, ctr: &str, net: &str) -> String {
    d.inspect(ctr)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Links enslaved to a bridge (the host ends of its containers' veths).
fn ports_of_bridge(bridge: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET / on 127.0.0.1:port; the body, or "" on failure.
fn http_get(addr: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(
        &addr.parse().expect("socket address"),
        Duration::from_secs(3),
    ) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let _ = write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn nft_table(d: &Daemon) -> String {
    let table = format!(
        "berth_{}",
        common::bridge_name(&d.root).replace(['-', '.'], "_")
    );
    let o = Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .expect("nft");
    stdout(&o)
}

/// A web container: busybox httpd serving `text` on port 80.
fn web(d: &Daemon, args: &[&str], name: &str, text: &str) {
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.ok(&a);
}

#[test]
fn default_bridge_addresses_routes_files_and_cleanup() {
    let d = Daemon::start();
    d.load_busybox();
    let bridge = common::bridge_name(&d.root);
    d.ok(&["run", "-d", "--name", "ca", "busybox", "sleep", "300"]);
    d.ok(&[
        "run", "-d", "--name", "cb", "-h", "bee", "busybox", "sleep", "300",
    ]);
    let net = d.ok(&["network", "inspect", "bridge"]);
    let net: serde_json::Value = serde_json::from_str(&net).expect("network json");
    let subnet = net[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let gw = net[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        net[0]["Options"]["com.docker.network.bridge.name"],
        bridge.as_str()
    );
    assert_eq!(
        net[0]["Containers"].as_object().map(|m| m.len()),
        Some(2),
        "{net}"
    );
    let ipa = ip_of(&d, "ca", "bridge");
    let ipb = ip_of(&d, "cb", "bridge");
    assert!(!ipa.is_empty() && ipa != ipb, "{ipa} {ipb}");
    let prefix = subnet.split('/').next().unwrap();
    let net16: Vec<&str> = prefix.split('.').take(2).collect();
    assert!(ipa.starts_with(&net16.join(".")), "{ipa} in {subnet}");
    assert_eq!(
        d.inspect("ca")["NetworkSettings"]["IPAddress"],
        ipa.as_str()
    );
    assert_eq!(d.inspect("ca")["NetworkSettings"]["Gateway"], gw.as_str());
    // eth0 with the address and docker's MAC, the default route through the gateway
    let addr = sh(
        &d,
        "ca",
        "ip -4 addr show eth0; ip link show eth0; ip route",
    );
    assert!(addr.contains(&format!("inet {ipa}/")), "{addr}");
    assert!(addr.contains("link/ether 02:42:"), "{addr}");
    assert!(addr.contains(&format!("default via {gw}")), "{addr}");
    // the files docker writes
    let hosts = sh(&d, "cb", "cat /etc/hosts");
    assert!(hosts.contains(&format!("{ipb}\tbee")), "{hosts}");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    let resolv = sh(&d, "cb", "cat /etc/resolv.conf");
    assert!(
        !resolv.contains("127.0.0.11"),
        "no embedded DNS on the default bridge: {resolv}"
    );
    assert!(resolv.contains("nameserver"), "{resolv}");
    // containers reach each other and the host's end of the bridge
    assert!(sh_status(&d, "ca", &format!("ping -c1 -W2 {ipb}")), "a → b");
    assert!(
        sh_status(&d, "cb", &format!("ping -c1 -W2 {gw}")),
        "b → gateway"
    );
    assert_eq!(ports_of_bridge(&bridge), 2);
    // masquerade for the subnet leaving by another interface
    let table = nft_table(&d);
    assert!(
        table.contains(&subnet) && table.contains("masquerade"),
        "{table}"
    );

    // stop: the address goes back, the veth goes with the namespace
    d.ok(&["rm", "-f", "ca"]);
    assert!(
        eventually(10, || ports_of_bridge(&bridge) == 1),
        "veth of a left behind"
    );
    let net: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(net[0]["Containers"].as_object().map(|m| m.len()), Some(1));
    // a new container gets an address again (sequential, never b's)
    d.ok(&["run", "-d", "--name", "cc", "busybox", "sleep", "300"]);
    let ipc = ip_of(&d, "cc", "bridge");
    assert!(!ipc.is_empty() && ipc != ipb);
    // the bridge is not removable, and not re-creatable
    let o = d.berth(&["network", "rm", "bridge"]);
    assert!(
        !o.status.success() && stderr(&o).contains("pre-defined network"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"]);
    assert!(
        stderr(&o).contains("user specified IP address is supported on user defined networks only"),
        "{}",
        stderr(&o)
    );
    // run --rm on the bridge leaves nothing behind
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0 | grep -c inet",
    ]);
    assert_eq!(out.trim(), "1");
    d.ok(&["rm", "-f", "cb", "cc"]);
    assert!(
        eventually(10, || ports_of_bridge(&bridge) == 0),
        "veths left behind"
    );
}

#[test]
fn host_none_and_container_modes() {
    let d = Daemon::start();
    d.load_busybox();
    let bridge = common::bridge_name(&d.root);
    // host: the host's interfaces (our bridge among them) and hostname
    let links = d.ok(&["run", "--rm", "--network", "host", "busybox", "ip", "link"]);
    assert!(links.contains(&bridge), "{links}");
    let host = nix_hostname();
    let h = d.ok(&["run", "--rm", "--network", "host", "busybox", "hostname"]);
    assert_eq!(h.trim(), host);
    // none: loopback only
    let links = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"), "{links}");
    // container:<name>: the other's namespace, same address
    d.ok(&["run", "-d", "--name", "base", "busybox", "sleep", "300"]);
    let ip = ip_of(&d, "base", "bridge");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "-p",
        "8080:80",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("conflicting options: port publishing and the container type network mode"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert!(
        stderr(&o).contains("network nosuch not found"),
        "{}",
        stderr(&o)
    );
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn user_networks_fixed_ips_aliases_dns_isolation() {
    let d = Daemon::start();
    d.load_busybox();
    let id1 = d.ok(&[
        "network",
        "create",
        "--subnet",
        "198.18.10.0/24",
        "--label",
        "k=v",
        "n1",
    ]);
    assert_eq!(id1.trim().len(), 64, "{id1}");
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "198.18.11.0/24",
        "--gateway",
        "198.18.11.254",
        "n2",
    ]);
    let o = d.berth(&["network", "create", "n1"]);
    assert!(
        stderr(&o).contains("network with name n1 already exists"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["network", "create", "--subnet", "198.18.10.128/25", "n3"]);
    assert!(!o.status.success(), "overlapping subnet accepted");
    let ls = d.ok(&["network", "ls"]);
    for n in ["bridge", "host", "none", "n1", "n2"] {
        assert!(
            ls.lines().any(|l| l.split_whitespace().nth(1) == Some(n)),
            "{ls}"
        );
    }
    let ls = d.ok(&["network", "ls", "-q", "-f", "label=k=v"]);
    assert_eq!(ls.trim(), &id1.trim()[..12]);

    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        "--ip",
        "198.18.10.5",
        "--network-alias",
        "www",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "n1",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "n2",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(ip_of(&d, "web", "n1"), "198.18.10.5");
    assert_eq!(
        d.inspect("other")["NetworkSettings"]["Networks"]["n2"]["Gateway"],
        "198.18.11.254"
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "--ip",
        "198.18.10.5",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "a taken address was given twice");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "--ip",
        "198.18.99.5",
        "busybox",
        "true",
    ]);
    assert!(
        !o.status.success(),
        "an address outside the subnet was accepted"
    );

    // names through the embedded DNS: name, alias, short ID
    let resolv = sh(&d, "cli", "cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    let web_id = d.inspect("web")["Id"].as_str().unwrap()[..12].to_string();
    for name in ["web", "www", web_id.as_str()] {
        let out = sh(&d, "cli", &format!("nslookup {name} 127.0.0.11 || true"));
        assert!(out.contains("198.18.10.5"), "{name}: {out}");
    }
    assert!(sh_status(&d, "cli", "ping -c1 -W2 web"), "ping by name");
    // a name on another network does not resolve, and its address is not reachable
    let out = sh(&d, "cli", "nslookup other 127.0.0.11 2>&1 || true");
    assert!(!out.contains("198.18.11."), "{out}");
    let other_ip = ip_of(&d, "other", "n2");
    assert!(
        !sh_status(&d, "cli", &format!("ping -c1 -W1 {other_ip}")),
        "n1 reached n2"
    );

    // connect / disconnect on a running container
    d.ok(&[
        "network",
        "connect",
        "--ip",
        "198.18.11.9",
        "--alias",
        "bridgeman",
        "n2",
        "cli",
    ]);
    let out = sh(&d, "cli", "ip -4 addr show eth1");
    assert!(out.contains("inet 198.18.11.9/24"), "{out}");
    assert!(
        sh_status(&d, "cli", &format!("ping -c1 -W2 {other_ip}")),
        "connected to n2"
    );
    let out = sh(&d, "other", "nslookup bridgeman 127.0.0.11 || true");
    assert!(out.contains("198.18.11.9"), "{out}");
    let o = d.berth(&["network", "connect", "n2", "cli"]);
    assert!(!o.status.success(), "connected twice");
    d.ok(&["network", "disconnect", "n2", "cli"]);
    let out = sh(&d, "cli", "ip -o link");
    assert!(!out.contains("eth1"), "{out}");
    let net: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "n2"])).unwrap();
    let cs = net[0]["Containers"].as_object().unwrap();
    assert_eq!(cs.len(), 1, "{net}");

    // removing a network in use is refused; once empty it goes, bridge and all
    let o = d.berth(&["network", "rm", "n1"]);
    assert!(
        stderr(&o).contains("has active endpoints"),
        "{}",
        stderr(&o)
    );
    let bridge1 = net_bridge(&d, "n1");
    assert!(std::path::Path::new(&format!("/sys/class/net/{bridge1}")).exists());
    d.ok(&["rm", "-f", "web", "cli"]);
    d.ok(&["network", "rm", "n1"]);
    assert!(!std::path::Path::new(&format!("/sys/class/net/{bridge1}")).exists());
    assert!(!nft_table(&d).contains(&bridge1), "rules of n1 left behind");
    // prune takes the unused n2 only once its container is gone
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(!out.contains("n2"), "{out}");
    d.ok(&["rm", "-f", "other"]);
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(out.contains("n2"), "{out}");
}

fn net_bridge(d: &Daemon, net: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", net])).expect("json");
    let id = v[0]["Id"].as_str().unwrap_or("").to_string();
    v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("br-{}", &id[..12]))
}

#[test]
fn internal_network_has_no_way_out() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "198.18.20.0/24",
        "inside",
    ]);
    d.ok(&["run", "-d", "--name", "out", "busybox", "sleep", "300"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "in",
        "--network",
        "inside",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "in2",
        "--network",
        "inside",
        "busybox",
        "sleep",
        "300",
    ]);
    let out_ip = ip_of(&d, "out", "bridge");
    assert!(
        sh_status(&d, "in", "ping -c1 -W2 in2"),
        "inside the internal network"
    );
    assert!(
        !sh_status(&d, "in", &format!("ping -c1 -W1 {out_ip}")),
        "internal reached the bridge"
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "inside"])).unwrap();
    assert_eq!(v[0]["Internal"], true);
    d.ok(&["rm", "-f", "in", "in2", "out"]);
    d.ok(&["network", "rm", "inside"]);
}

#[test]
fn dns_forwards_other_names_to_the_daemons_upstream() {
    // an upstream resolver of our own on loopback, answering every A query with 198.51.100.7
    let up = UdpSocket::bind("127.0.0.77:53").expect("bind 127.0.0.77:53");
    up.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((n, from)) = up.recv_from(&mut buf) else {
                continue;
            };
            if n < 12 {
                continue;
            }
            let mut r = buf[..n].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[7] = 1; // one answer
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7]);
            let _ = up.send_to(&r, from);
        }
    });
    let d = Daemon::start_args(&["--dns", "127.0.0.77"]);
    d.load_busybox();
    d.ok(&["network", "create", "--subnet", "198.18.30.0/24", "fw"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "qq",
        "--network",
        "fw",
        "busybox",
        "sleep",
        "300",
    ]);
    let out = sh(&d, "qq", "nslookup somewhere.example 127.0.0.11 || true");
    assert!(out.contains("198.51.100.7"), "{out}");
    // its own name still comes from the daemon
    let ip = ip_of(&d, "qq", "fw");
    let out = sh(&d, "qq", "nslookup qq 127.0.0.11 || true");
    assert!(out.contains(&ip), "{out}");
    d.ok(&["rm", "-f", "qq"]);
    d.ok(&["network", "rm", "fw"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = server.join();
}

#[test]
fn published_ports_from_the_host_and_their_clean_up() {
    let d = Daemon::start();
    d.load_busybox();
    let p1 = free_port();
    let p2 = free_port();
    web(&d, &["-p", &format!("127.0.0.1:{p1}:80")], "w1", "one");
    web(
        &d,
        &["-p", &format!("{p2}:80"), "--expose", "81"],
        "w2",
        "two",
    );
    assert!(
        eventually(10, || http_get(&format!("127.0.0.1:{p1}")).contains("one")),
        "127.0.0.1:{p1}"
    );
    assert!(
        eventually(10, || http_get(&format!("127.0.0.1:{p2}")).contains("two")),
        "0.0.0.0:{p2}"
    );
    // inspect and ps show them as docker does
    let ports = &d.inspect("w2")["NetworkSettings"]["Ports"];
    assert_eq!(ports["80/tcp"][0]["HostPort"], p2.to_string(), "{ports}");
    assert_eq!(ports["80/tcp"][0]["HostIp"], "0.0.0.0");
    assert!(ports["81/tcp"].is_null(), "{ports}");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains(&format!("0.0.0.0:{p2}->80/tcp")), "{ps}");
    let port = d.ok(&["port", "w1"]);
    assert_eq!(port.trim(), format!("80/tcp -> 127.0.0.1:{p1}"));
    // a clash
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "w3",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "busybox",
        "sleep",
        "9",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    // random host ports: -p 80 and -P with the image's and --expose'd ports
    web(&d, &["-p", "80"], "w4", "four");
    let hp = d.inspect("w4")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(10, || http_get(&format!("127.0.0.1:{hp}")).contains("four")),
        "random {hp}"
    );
    web(&d, &["-P", "--expose", "80"], "w5", "five");
    let hp5 = d.inspect("w5")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(eventually(10, || http_get(&format!("127.0.0.1:{hp5}"))
        .contains("five")));
    // another container reaches a published port through the host's address on the bridge
    let gw = d.inspect("w1")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{p2}/"),
    ]);
    assert!(out.contains("two"), "{out}");
    // stopping frees the port and removes its rule
    d.ok(&["stop", "-t", "1", "w2"]);
    assert!(
        eventually(10, || !nft_table(&d).contains(&format!("dport {p2}"))),
        "rule of w2 left"
    );
    assert!(
        TcpListener::bind(("0.0.0.0", p2)).is_ok(),
        "port {p2} still held"
    );
    // and starting again publishes it again
    d.ok(&["start", "w2"]);
    assert!(eventually(10, || http_get(&format!("127.0.0.1:{p2}")).contains("two")));
    d.ok(&["rm", "-f", "w1", "w2", "w4", "w5"]);
    // the table is re-applied off the API's workers once the exits are handled
    assert!(
        eventually(10, || !nft_table(&d).contains("dnat")),
        "{}",
        nft_table(&d)
    );
}

#[test]
fn networking_survives_a_daemon_kill() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.ok(&["network", "create", "--subnet", "198.18.40.0/24", "keep"]);
    let p = free_port();
    web(
        &d,
        &["--network", "keep", "-p", &format!("127.0.0.1:{p}:80")],
        "kw",
        "kept",
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "kc",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(eventually(10, || http_get(&format!("127.0.0.1:{p}")).contains("kept")));
    let before = nft_table(&d);
    let ip = ip_of(&d, "kw", "keep");
    d.kill9();
    let d2 = d.restarted(&[]);
    assert!(
        eventually(10, || http_get(&format!("127.0.0.1:{p}")).contains("kept")),
        "port after restart"
    );
    assert_eq!(ip_of(&d2, "kw", "keep"), ip);
    let out = sh(&d2, "kc", "nslookup kw 127.0.0.11 || true");
    assert!(out.contains(&ip), "DNS after restart: {out}");
    assert_eq!(nft_table(&d2), before, "rules rebuilt differently");
    // the address is still taken, the port still held
    let o = d2.berth(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "address given twice after restart");
    let o = d2.berth(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{p}:80"),
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    d2.ok(&["rm", "-f", "kw", "kc"]);
    d2.ok(&["network", "rm", "keep"]);
}

#[test]
fn legacy_links_and_extra_hosts() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&[
        "run", "-d", "--name", "db", "--expose", "80", "-e", "DBVAR=x1", "busybox", "sleep", "300",
    ]);
    let dbip = ip_of(&d, "db", "bridge");
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--link",
        "db:database",
        "--add-host",
        "extra.example:198.18.50.1",
        "--dns",
        "198.18.50.53",
        "--dns-search",
        "corp.example",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; env",
    ]);
    assert!(hosts.contains(&format!("{dbip}\tdatabase ")), "{hosts}");
    assert!(hosts.contains("198.18.50.1\textra.example"), "{hosts}");
    assert!(hosts.contains("nameserver 198.18.50.53"), "{hosts}");
    assert!(hosts.contains("search corp.example"), "{hosts}");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("DATABASE_NAME=/") && l.ends_with("/database")),
        "{hosts}"
    );
    assert!(
        hosts.contains(&format!("DATABASE_PORT_80_TCP_ADDR={dbip}")),
        "{hosts}"
    );
    assert!(
        hosts.contains(&format!("DATABASE_PORT=tcp://{dbip}:80")),
        "{hosts}"
    );
    assert!(hosts.contains("DATABASE_ENV_DBVAR=x1"), "{hosts}");
    let o = d.berth(&["run", "--rm", "--network-alias", "x", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("only supported for user-defined networks"),
        "{}",
        stderr(&o)
    );
    // the daemon refuses it too, whatever the client checked
    let (code, _, body) = d.http(
        "POST",
        "/v1.41/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["x"]}}}}"#),
    );
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains(
        "network-scoped alias is supported only for containers in user defined networks"
    ));
}

#[test]
fn networks_through_the_docker_cli() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = common::docker_ok(
        &d,
        &["network", "create", "--subnet", "198.18.60.0/24", "dn"],
    ) else {
        return;
    };
    let p = free_port();
    let dock = |args: &[&str]| common::docker_ok(&d, args).expect("docker CLI");
    dock(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dn",
        "--ip",
        "198.18.60.7",
        "-p",
        &format!("127.0.0.1:{p}:80"),
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo via-docker > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    assert!(eventually(10, || http_get(&format!("127.0.0.1:{p}"))
        .contains("via-docker")));
    assert_eq!(
        dock(&["port", "dweb", "80"]).trim(),
        format!("127.0.0.1:{p}")
    );
    let ps = dock(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{p}->80/tcp")), "{ps}");
    let ip = dock(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"dn\").IPAddress}}",
        "dweb",
    ]);
    assert_eq!(ip.trim(), "198.18.60.7");
    let out = dock(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "busybox",
        "wget",
        "-qO-",
        "http://dweb/",
    ]);
    assert!(out.contains("via-docker"), "{out}");
    let ls = dock(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert!(ls.lines().any(|l| l == "dn bridge local"), "{ls}");
    dock(&["network", "connect", "bridge", "dweb"]);
    let nets = dock(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "dweb"]);
    assert_eq!(nets.trim(), "2");
    dock(&["network", "disconnect", "bridge", "dweb"]);
    let o = d.docker(&["network", "rm", "dn"]).expect("docker");
    assert!(
        !o.status.success() && stderr(&o).contains("active endpoints"),
        "{}",
        stderr(&o)
    );
    dock(&["rm", "-f", "dweb"]);
    dock(&["network", "rm", "dn"]);
}

#[test]
fn compose_two_services_on_a_user_network() {
    let compose = std::path::Path::new("/usr/bin/docker-compose");
    if !compose.exists() {
        eprintln!("skipping: /usr/bin/docker-compose is not installed");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let p = free_port();
    let dir = d.root.join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"
    ports: ["127.0.0.1:{p}:80"]
    networks: [appnet]
  client:
    image: busybox
    command: sh -c "while true; do wget -qO- http://web/ || echo fetch-failed; sleep 1; done"
    networks: [appnet]
    depends_on: [web]
networks:
  appnet: {{}}
"#
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(compose)
            .current_dir(&dir)
            .env("DOCKER_HOST", d.host())
            .args(["-p", "btc"])
            .args(args)
            .output()
            .expect("docker-compose")
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o) + &stderr(&o)
    };
    ok(&["up", "-d"]);
    assert!(
        eventually(15, || http_get(&format!("127.0.0.1:{p}"))
            .contains("hello-from-web")),
        "published port"
    );
    let ps = ok(&["ps"]);
    assert!(
        ps.contains("btc_web_1") && ps.contains("btc_client_1"),
        "{ps}"
    );
    assert!(ps.contains(&format!("127.0.0.1:{p}->80/tcp")), "{ps}");
    assert!(
        eventually(15, || ok(&["logs", "client"]).contains("hello-from-web")),
        "client reached web by service name: {}",
        ok(&["logs", "client"])
    );
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|l| l == "btc_appnet"), "{nets}");
    ok(&["down", "-v"]);
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("btc_appnet"), "{nets}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn daemon_bip_fixed_cidr_mtu_and_network_options() {
    // how flannel hands a host its subnet: --bip and --mtu from subnet.env
    let d = Daemon::start_args(&[
        "--bip",
        "198.18.70.1/24",
        "--fixed-cidr",
        "198.18.70.128/25",
        "--mtu",
        "1400",
    ]);
    d.load_busybox();
    let bridge = common::bridge_name(&d.root);
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip link show eth0",
    ]);
    assert!(
        out.contains("inet 198.18.70.128/24") || out.contains("inet 198.18.70.129/24"),
        "{out}"
    );
    assert!(out.contains("mtu 1400"), "{out}");
    // with a port attached the bridge follows (an empty bridge's MTU is the kernel's choice)
    d.ok(&["run", "-d", "--name", "mtu", "busybox", "sleep", "300"]);
    let br = std::fs::read_to_string(format!("/sys/class/net/{bridge}/mtu")).unwrap_or_default();
    assert_eq!(br.trim(), "1400");
    d.ok(&["rm", "-f", "mtu"]);
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "198.18.70.0/24");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "198.18.70.1");

    // --ip-range and the bridge name option of a user network
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "198.18.71.0/24",
        "--ip-range",
        "198.18.71.64/26",
        "-o",
        "com.docker.network.bridge.name=btnamed",
        "ranged",
    ]);
    assert!(std::path::Path::new("/sys/class/net/btnamed").exists());
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    // the range's first address comes first (docker hands out a range's .0 too)
    assert!(out.contains("inet 198.18.71.64/24"), "{out}");
    assert!(
        out.contains("mtu 1500"),
        "--mtu is the default bridge's only: {out}"
    );

    // a UDP port: held on the host and DNATed (Debian's busybox nc has no -u, so the datagram
    // path itself is checked by berth-network's own root tests)
    let p = free_port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{p}:53/udp"),
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(
        UdpSocket::bind(("127.0.0.1", p)).is_err(),
        "udp port {p} not held"
    );
    let ip = ip_of(&d, "udp", "bridge");
    assert!(
        nft_table(&d).contains(&format!("udp dport {p} dnat to {ip}:53")),
        "{}",
        nft_table(&d)
    );
    let (a, b) = (free_port(), free_port());
    let (lo, hi) = (a.min(b), a.min(b) + 1);
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "rng",
        "-p",
        &format!("127.0.0.1:{lo}-{hi}:80-81"),
        "busybox",
        "sleep",
        "300",
    ]);
    if o.status.success() {
        let ports = &d.inspect("rng")["NetworkSettings"]["Ports"];
        assert_eq!(ports["80/tcp"][0]["HostPort"], lo.to_string(), "{ports}");
        assert_eq!(ports["81/tcp"][0]["HostPort"], hi.to_string(), "{ports}");
    } else {
        // hi was not free on this host: then it must be docker's clash error
        assert!(
            stderr(&o).contains("port is already allocated"),
            "{}",
            stderr(&o)
        );
    }

    // system prune: stopped containers, then their unused networks and bridges go
    d.ok(&["rm", "-f", "udp"]);
    let _ = d.berth(&["rm", "-f", "rng"]);
    d.ok(&[
        "run",
        "--name",
        "stopped",
        "--network",
        "ranged",
        "busybox",
        "true",
    ]);
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("ranged"), "{out}");
    assert!(
        !std::path::Path::new("/sys/class/net/btnamed").exists(),
        "bridge left after prune"
    );
    assert!(
        eventually(10, || ports_of_bridge(&bridge) == 0),
        "veths left after prune"
    );
    assert!(!nft_table(&d).contains("dnat"), "{}", nft_table(&d));
}

/// The way out of a running container moves when the network that carried it is
/// disconnected, as docker's sandbox moves its gateway: the default route goes through the
/// network left, the published port is DNATed to the container's address there (and
/// still after a SIGKILL of berthd); with no network left the port's rules go.
#[test]
fn the_way_out_moves_when_its_network_is_disconnected() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.ok(&["network", "create", "--subnet", "198.18.43.0/24", "wx"]);
    d.ok(&["network", "create", "--subnet", "198.18.44.0/24", "wy"]);
    let p = free_port();
    web(
        &d,
        &["--network", "wx", "-p", &format!("127.0.0.1:{p}:80")],
        "wo",
        "out",
    );
    let routes = |d: &Daemon| d.ok(&["exec", "wo", "ip", "route"]);
    let dnat = |d: &Daemon| -> Vec<String> {
        nft_table(d)
            .lines()
            .filter(|l| l.contains(&format!("dport {p}")))
            .map(String::from)
            .collect()
    };
    assert!(eventually(10, || http_get(&format!("127.0.0.1:{p}")).contains("out")));
    assert!(routes(&d).contains("default via 198.18.43.1 dev eth0"));
    // a second network (whose name sorts after: docker keeps its gateway too) takes nothing
    d.ok(&["network", "connect", "wy", "wo"]);
    let r = routes(&d);
    assert!(r.contains("default via 198.18.43.1 dev eth0"), "{r}");
    assert_eq!(r.matches("default").count(), 1, "{r}");
    let y_ip = ip_of(&d, "wo", "wy");
    assert!(y_ip.starts_with("198.18.44."), "{y_ip}");

    d.ok(&["network", "disconnect", "wx", "wo"]);
    let check = |d: &Daemon, when: &str| {
        let r = routes(d);
        assert!(
            r.contains("default via 198.18.44.1 dev eth1"),
            "{when}: {r}"
        );
        let rules = dnat(d);
        assert!(
            !rules.is_empty() && rules.iter().all(|l| l.contains(&format!("{y_ip}:80"))),
            "{when}: {rules:?}"
        );
        assert!(
            eventually(10, || http_get(&format!("127.0.0.1:{p}")).contains("out")),
            "{when}: 127.0.0.1:{p}"
        );
        let port = d.ok(&["port", "wo"]);
        assert_eq!(port.trim(), format!("80/tcp -> 127.0.0.1:{p}"), "{when}");
    };
    check(&d, "wx disconnected");
    d.kill9();
    let d2 = d.restarted(&[]);
    check(&d2, "after kill -9");

    // the last network: no way out, no port
    d2.ok(&["network", "disconnect", "wy", "wo"]);
    assert!(dnat(&d2).is_empty(), "{}", nft_table(&d2));
    let v = d2.inspect("wo");
    assert!(
        v["NetworkSettings"]["Ports"]["80/tcp"].is_null(),
        "{}",
        v["NetworkSettings"]["Ports"]
    );
    assert!(http_get(&format!("127.0.0.1:{p}")).is_empty());
    d2.ok(&["rm", "-f", "wo"]);
    d2.ok(&["network", "rm", "wx", "wy"]);
}
