//! IPv6 (issue 12 point 8): `network create --ipv6 --subnet <v6>`, `--ip6`, the daemon's
//! `--ipv6 --fixed-cidr-v6`, addresses and default routes on the veths, inspect fields, v6
//! published ports and the embedded DNS's AAAA answers. Traffic goes only to loopback and to
//! addresses inside the namespaces this test's daemon made; subnets are ULA (fd00::/8).

mod common;
use common::{stdout, Daemon};

fn sh(d: &Daemon, ctr: &str, script: &str) -> String {
    d.ok(&["exec", ctr, "sh", "-c", script])
}

fn sh_ok(d: &Daemon, ctr: &str, script: &str) -> bool {
    d.berth(&["exec", ctr, "sh", "-c", script]).status.success()
}

/// A random ULA /64: fdXX:XXXX:XXXX:1::/64.
fn ula64() -> String {
    // each group without leading zeros, as addresses are printed
    let r = rand_hex(10);
    let g = |h: &str| u16::from_str_radix(h, 16).expect("hex");
    format!("fd{}:{:x}:{:x}:1::", &r[..2], g(&r[2..6]), g(&r[6..10]))
}

#[test]
fn user_network_dual_stack() {
    let d = Daemon::start();
    d.load_busybox();
    let p = ula64();
    let subnet = format!("{p}/64");
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "198.18.77.0/24",
        "--subnet",
        &subnet,
        "v6net",
    ]);
    // network inspect: EnableIPv6 and both IPAM configs, gateways ::1 and .1
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "v6net"])).expect("json");
    assert_eq!(n[0]["EnableIPv6"], true);
    let cfg = n[0]["IPAM"]["Config"].as_array().expect("config").clone();
    assert_eq!(cfg.len(), 2, "{cfg:?}");
    assert_eq!(cfg[0]["Subnet"], "198.18.77.0/24");
    assert_eq!(cfg[1]["Subnet"], subnet.as_str());
    // dockerd lists a gateway only when one was given
    assert_eq!(cfg[1].get("Gateway"), None, "{cfg:?}");

    d.ok(&[
        "run",
        "-d",
        "--name",
        "v6a",
        "--network",
        "v6net",
        "busybox",
        "sleep",
        "300",
    ]);
    let fixed = format!("{p}99");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "v6b",
        "--network",
        "v6net",
        "--ip6",
        &fixed,
        "busybox",
        "sleep",
        "300",
    ]);
    let ia = d.inspect("v6a");
    let ea = &ia["NetworkSettings"]["Networks"]["v6net"];
    assert_eq!(ea["GlobalIPv6Address"], format!("{p}2").as_str(), "{ea}");
    assert_eq!(ea["GlobalIPv6PrefixLen"], 64);
    assert_eq!(ea["IPv6Gateway"], format!("{p}1").as_str());
    assert_eq!(ea["IPAMConfig"], serde_json::Value::Null);
    let ib = d.inspect("v6b");
    let eb = &ib["NetworkSettings"]["Networks"]["v6net"];
    assert_eq!(eb["GlobalIPv6Address"], fixed.as_str());
    assert_eq!(eb["IPAMConfig"]["IPv6Address"], fixed.as_str());
    // the network lists the containers with their v6 addresses
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "v6net"])).expect("json");
    let v6s: Vec<String> = n[0]["Containers"]
        .as_object()
        .expect("containers")
        .values()
        .map(|c| c["IPv6Address"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(v6s.contains(&format!("{fixed}/64")), "{v6s:?}");

    // inside: the address, the default route via the gateway, v6 on
    let addrs = sh(&d, "v6a", "ip -6 addr show dev eth0");
    assert!(addrs.contains(&format!("{p}2/64")), "{addrs}");
    let routes = sh(&d, "v6a", "ip -6 route");
    assert!(
        routes.contains(&format!("default via {p}1 dev eth0")),
        "{routes}"
    );
    // dockerd 20.10's switches: all/default off, lo and the v6 interface on
    assert_eq!(
        sh(
            &d,
            "v6a",
            "cd /proc/sys/net/ipv6/conf && for i in all default lo eth0; do echo $i=$(cat $i/disable_ipv6); done"
        )
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["all=1", "default=1", "lo=0", "eth0=0"]
    );
    assert!(sh(&d, "v6a", "ip -6 addr show dev lo").contains("::1/128"));
    // container → container and container → gateway over IPv6
    assert!(
        sh_ok(&d, "v6a", &format!("ping -6 -c1 -W3 {fixed}")),
        "a cannot ping b over v6"
    );
    assert!(
        sh_ok(&d, "v6b", &format!("ping -6 -c1 -W3 {p}2")),
        "b cannot ping a over v6"
    );
    assert!(
        sh_ok(&d, "v6a", &format!("ping -6 -c1 -W3 {p}1")),
        "a cannot ping its gateway over v6"
    );
    // a running container connected later gets its v6 address on the new interface
    d.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "v6net", "late"]);
    let il = d.inspect("late");
    let late6 = il["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(late6.starts_with(&p), "{il}");
    assert!(sh(&d, "late", "ip -6 addr show dev eth1").contains(&late6));
    assert!(
        sh_ok(&d, "late", &format!("ping -6 -c1 -W3 {fixed}")),
        "a later connected container cannot ping over v6"
    );
    // a fixed address outside the subnet is refused, as dockerd does
    let o = d.berth(&[
        "run",
        "-d",
        "--network",
        "v6net",
        "--ip6",
        "fd00:dead::5",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o)
            .contains("no configured subnet or ip-range contain the IP address fd00:dead::5"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn ipv6_stays_off_without_ipv6() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&["network", "create", "v4only"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "v4c",
        "--network",
        "v4only",
        "busybox",
        "sleep",
        "300",
    ]);
    // docker turns IPv6 off on an interface that has no IPv6 address: no link-local either
    assert_eq!(
        sh(&d, "v4c", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6").trim(),
        "1"
    );
    assert!(!sh(&d, "v4c", "ip -6 addr show dev eth0").contains("inet6"));
    let i = d.inspect("v4c");
    assert_eq!(
        i["NetworkSettings"]["Networks"]["v4only"]["GlobalIPv6Address"],
        ""
    );
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "v4only"])).expect("json");
    assert_eq!(n[0]["EnableIPv6"], false);
    // --ipv6 without an IPv6 subnet: dockerd 20.10 has no default IPv6 pool either
    let o = d.berth(&["network", "create", "--ipv6", "nopool"]);
    assert!(!o.status.success(), "{}", stdout(&o));
}

fn rand_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s[..n].to_string()
}

/// GET / over TCP from the host; the answer or "" on failure.
fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &addr.parse().expect("socket address"),
        std::time::Duration::from_secs(3),
    ) else {
        return String::new();
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .ok();
    let _ = write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn published_ports_over_ipv6_and_aaaa() {
    let mut d = Daemon::start();
    d.load_busybox();
    let p = ula64();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &format!("{p}/64"),
        "v6web",
    ]);
    let (any, lo6) = run_web6(&d, "web6", "v6web");
    // the port column as docker 28 prints it, through the docker CLI
    if let Some(o) = d.docker(&["ps", "--format", "{{.Ports}}", "--filter", "name=web6"]) {
        let ports = stdout(&o);
        assert!(
            ports.contains(&format!("0.0.0.0:{any}->80/tcp"))
                && ports.contains(&format!("[::]:{any}->80/tcp"))
                && ports.contains(&format!("[::1]:{lo6}->81/tcp")),
            "{ports}"
        );
    }
    let port = d.ok(&["port", "web6", "80/tcp"]);
    assert!(port.contains(&format!("[::]:{any}")), "{port}");
    // reached over IPv6 from the host: [::1] → the container's v6 address
    assert!(
        common::eventually(5, || http_get(&format!("[::1]:{lo6}")).contains("hello6")),
        "[::1]:{lo6} does not reach the container"
    );
    assert!(
        http_get(&format!("[::1]:{any}")).contains("hello6"),
        "[::1]:{any} does not reach the container"
    );
    // through the nftables ip6 DNAT: the bridge's own IPv6 address is a local one
    assert!(
        http_get(&format!("[{p}1]:{any}")).contains("hello6"),
        "[{p}1]:{any} does not reach the container"
    );
    let rules = ip6_rules(&d);
    assert!(rules.contains(&format!("dnat to [{p}2]:80")), "{rules}");
    // the embedded DNS answers AAAA for the container's name on the v6 network
    d.ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "v6web",
        "busybox",
        "sleep",
        "300",
    ]);
    let ans = sh(&d, "asker", "nslookup -type=AAAA web6 127.0.0.11");
    assert!(ans.contains(&format!("{p}2")), "{ans}");
    let ans4 = sh(&d, "asker", "nslookup -type=A web6 127.0.0.11");
    assert!(
        ans4.contains("Address") && !ans4.contains(&format!("{p}2")),
        "{ans4}"
    );

    // a daemon killed and started again serves the IPv6 side again: rules and [::1] proxy
    let before = ip6_rules(&d);
    d.kill9();
    let d2 = d.restarted(&[]);
    assert!(
        common::eventually(10, || http_get(&format!("[::1]:{lo6}")).contains("hello6")),
        "[::1]:{lo6} after a restart"
    );
    assert!(http_get(&format!("[{p}1]:{any}")).contains("hello6"));
    assert_eq!(ip6_rules(&d2), before, "ip6 rules rebuilt differently");
}

#[test]
fn default_bridge_with_fixed_cidr_v6() {
    let p = ula64();
    let d = Daemon::start_args(&["--ipv6", "--fixed-cidr-v6", &format!("{p}/64")]);
    d.load_busybox();
    d.ok(&["run", "-d", "--name", "onbr", "busybox", "sleep", "300"]);
    let i = d.inspect("onbr");
    let ns = &i["NetworkSettings"];
    // as dockerd 20.10: on the default bridge the MAC is the host part of a /64 address
    let mac = ns["MacAddress"].as_str().expect("mac").to_string();
    let m: Vec<u16> = mac
        .split(':')
        .map(|x| u16::from_str_radix(x, 16).expect("hex"))
        .collect();
    let want: std::net::Ipv6Addr = format!(
        "{p}{:x}:{:x}:{:x}",
        (m[0] << 8) | m[1],
        (m[2] << 8) | m[3],
        (m[4] << 8) | m[5]
    )
    .parse()
    .expect("v6");
    assert_eq!(ns["GlobalIPv6Address"], want.to_string().as_str(), "{ns}");
    assert_eq!(ns["GlobalIPv6PrefixLen"], 64);
    assert_eq!(ns["IPv6Gateway"], format!("{p}1").as_str());
    assert_eq!(
        ns["Networks"]["bridge"]["GlobalIPv6Address"],
        ns["GlobalIPv6Address"]
    );
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).expect("json");
    assert_eq!(n[0]["EnableIPv6"], true);
    assert_eq!(
        n[0]["IPAM"]["Config"][1]["Subnet"],
        format!("{p}/64").as_str()
    );
    // the bridge holds the gateway; the container reaches it over IPv6
    let br = common::bridge_name(&d.root);
    let o = std::process::Command::new("ip")
        .args(["-6", "addr", "show", "dev", &br])
        .output()
        .expect("ip");
    assert!(stdout(&o).contains(&format!("{p}1/64")), "{}", stdout(&o));
    assert!(
        sh_ok(&d, "onbr", &format!("ping -6 -c1 -W3 {p}1")),
        "no IPv6 to the default bridge's gateway"
    );
}

/// What a container sees and shows on a dual-stack network, with the network's ULA prefix
/// `p` replaced by `P:` so two daemons' answers compare.
fn v6_view(
    inspect: &serde_json::Value,
    net_inspect: &serde_json::Value,
    inside: &str,
    p: &str,
) -> String {
    let ep = &inspect["NetworkSettings"]["Networks"]["n6"];
    let view = serde_json::json!({
        "GlobalIPv6Address": ep["GlobalIPv6Address"],
        "GlobalIPv6PrefixLen": ep["GlobalIPv6PrefixLen"],
        "IPv6Gateway": ep["IPv6Gateway"],
        "IPAMConfig": ep["IPAMConfig"],
        "EnableIPv6": net_inspect[0]["EnableIPv6"],
        "V6Config": net_inspect[0]["IPAM"]["Config"][1],
        "inside": inside,
    });
    view.to_string().replace(p, "P:")
}

const INSIDE: &str = "cd /proc/sys/net/ipv6/conf && for i in all default lo eth0; do echo $i=$(cat $i/disable_ipv6); done; ip -6 route show default | cut -d' ' -f1-5";

#[test]
fn same_as_dockerd() {
    let d = Daemon::start();
    let Some(dk) = common::dockerd::Dockerd::start_args(&d.root, &["--ip6tables=false"]) else {
        return;
    };
    d.load_busybox();
    let tar = common::busybox_tar().to_str().expect("utf8").to_string();
    assert!(dk.docker(&["load", "-i", &tar]).status.success());
    let mut views = Vec::new();
    for (which, v4) in [("berth", "198.18.231.0/24"), ("dockerd", "198.18.232.0/24")] {
        let p = ula64();
        let run = |args: &[&str]| -> String {
            let o = if which == "berth" {
                d.berth(args)
            } else {
                dk.docker(args)
            };
            assert!(
                o.status.success(),
                "{which} {args:?}: {}",
                common::stderr(&o)
            );
            stdout(&o)
        };
        run(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            v4,
            "--subnet",
            &format!("{p}/64"),
            "n6",
        ]);
        run(&[
            "run",
            "-d",
            "--name",
            "fx",
            "--network",
            "n6",
            "--ip6",
            &format!("{p}77"),
            "busybox",
            "sleep",
            "300",
        ]);
        let inspect: serde_json::Value =
            serde_json::from_str(&run(&["inspect", "fx"])).expect("json");
        let net: serde_json::Value =
            serde_json::from_str(&run(&["network", "inspect", "n6"])).expect("json");
        let inside = run(&["exec", "fx", "sh", "-c", INSIDE]);
        views.push(v6_view(&inspect[0], &net, &inside, &p));
        run(&["rm", "-f", "fx"]);
        run(&["network", "rm", "n6"]);
    }
    eprintln!("berth:   {}\ndockerd: {}", views[0], views[1]);
    assert_eq!(
        views[0], views[1],
        "berth (left) and dockerd (right) differ"
    );
}

/// A dual-stack container's way out moving to its other network (the first one
/// disconnected): the IPv6 default route, the ip6 DNAT rule and the `[::1]` proxies follow
/// its address there, as the IPv4 side does; still so after a SIGKILL of berthd.
#[test]
fn ipv6_published_ports_follow_the_way_out() {
    let mut d = Daemon::start();
    d.load_busybox();
    let (p, q) = (ula64(), ula64());
    for (net, v4, v6) in [
        ("v6ma", "198.18.45.0/24", &p),
        ("v6mb", "198.18.46.0/24", &q),
    ] {
        d.ok(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            v4,
            "--subnet",
            &format!("{v6}/64"),
            net,
        ]);
    }
    let (any, lo6) = run_web6(&d, "mv6", "v6ma");
    assert!(common::eventually(10, || http_get(&format!("[::1]:{lo6}")).contains("hello6")));
    d.ok(&["network", "connect", "v6mb", "mv6"]);
    d.ok(&["network", "disconnect", "v6ma", "mv6"]);
    let ip6 = d.inspect("mv6")["NetworkSettings"]["Networks"]["v6mb"]["GlobalIPv6Address"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(ip6.starts_with(&q), "{ip6}");
    let check = |d: &Daemon, when: &str| {
        let r6 = sh(d, "mv6", "ip -6 route");
        assert!(
            r6.contains(&format!("default via {q}1 dev eth1")),
            "{when}: {r6}"
        );
        let r4 = sh(d, "mv6", "ip route");
        assert!(
            r4.contains("default via 198.18.46.1 dev eth1"),
            "{when}: {r4}"
        );
        let rules = ip6_rules(d);
        assert!(
            rules.contains(&format!("dnat to [{ip6}]:80")) && !rules.contains(&format!("[{p}")),
            "{when}: {rules}"
        );
        for addr in [
            format!("[::1]:{lo6}"),
            format!("[::1]:{any}"),
            format!("[{q}1]:{any}"),
            format!("127.0.0.1:{any}"),
        ] {
            assert!(
                common::eventually(10, || http_get(&addr).contains("hello6")),
                "{when}: {addr}"
            );
        }
        let port = d.ok(&["port", "mv6", "80/tcp"]);
        assert!(port.contains(&format!("[::]:{any}")), "{when}: {port}");
    };
    check(&d, "v6ma disconnected");
    d.kill9();
    let d2 = d.restarted(&[]);
    check(&d2, "after kill -9");

    // to a network without IPv6: the IPv4 side moves, the IPv6 side is given back
    d2.ok(&["network", "create", "--subnet", "198.18.47.0/24", "v4mc"]);
    d2.ok(&["network", "connect", "v4mc", "mv6"]);
    d2.ok(&["network", "disconnect", "v6mb", "mv6"]);
    let r4 = sh(&d2, "mv6", "ip route");
    assert!(r4.contains("default via 198.18.47.1 dev eth"), "{r4}");
    assert!(common::eventually(10, || http_get(&format!(
        "127.0.0.1:{any}"
    ))
    .contains("hello6")));
    assert!(!ip6_rules(&d2).contains("dnat"), "{}", ip6_rules(&d2));
    // (the proxy's task ends on the runtime's next turn)
    assert!(common::eventually(5, || http_get(&format!("[::1]:{lo6}")).is_empty()));
    let port = d2.ok(&["port", "mv6"]);
    assert!(!port.contains("[::"), "{port}");
    assert!(port.contains(&format!("0.0.0.0:{any}")), "{port}");
    d2.ok(&["rm", "-f", "mv6"]);
    d2.ok(&["network", "rm", "v6ma", "v6mb", "v4mc"]);
}

/// The ip6 nft table of the daemon's default bridge.
fn ip6_rules(d: &Daemon) -> String {
    let t = format!(
        "berth_{}",
        common::bridge_name(&d.root).replace(['-', '.'], "_")
    );
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip6", &t])
        .output()
        .expect("nft");
    stdout(&o)
}

/// Runs `name` on network `net` with httpd serving "hello6" on 80 (published on a free port
/// of every address) and on 81 (published on `[::1]` only): those two host ports.
fn run_web6(d: &Daemon, name: &str, net: &str) -> (u16, u16) {
    let (any, lo6) = (free_port(), free_port());
    d.ok(&[
        "run", "-d", "--name", name, "--network", net,
        "-p", &format!("{any}:80"),
        "-p", &format!("[::1]:{lo6}:81"),
        "busybox", "sh", "-c",
        "mkdir -p /w && echo hello6 > /w/index.html && httpd -p 80 -h /w && httpd -p 81 -h /w && sleep 300",
    ]);
    (any, lo6)
}
