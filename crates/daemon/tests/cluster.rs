//! Multi-host networking (issue 14) on a cluster of network namespaces: see
//! tests/common/cluster.rs for the harness.

mod common;

use common::cluster::{netns_left, Cluster, ETCD_IP};
use common::{stderr, stdout};

/// The harness itself: hosts reach each other and etcd over the LAN, a daemon runs a
/// container inside its host namespace, and everything is gone after Drop.
#[test]
fn harness_lan_etcd_and_cleanup() {
    let tag;
    let roots;
    {
        let mut c = Cluster::new(2);
        tag = c.tag.clone();
        roots = c.hosts.iter().map(|h| h.root.clone()).collect::<Vec<_>>();
        let o = c.hosts[0].run(&["busybox", "ping", "-c1", "-W2", &c.hosts[1].ip]);
        assert!(o.status.success(), "host ping: {}", stdout(&o));
        let o = c.hosts[1].run(&["busybox", "ping", "-c1", "-W2", ETCD_IP]);
        assert!(o.status.success(), "etcd ping: {}", stdout(&o));
        let o = c.etcdctl(&["put", "/t/k", "v"]);
        assert!(o.status.success(), "etcdctl put: {}", stderr(&o));
        let o = c.etcdctl(&["get", "--print-value-only", "/t/k"]);
        assert_eq!(stdout(&o).trim(), "v");

        c.start_all(&[]);
        let d = c.hosts[0].d();
        d.load_busybox();
        // the daemon's bridge is in the host namespace, not in the caller's
        let br = common::bridge_name(&c.hosts[0].root);
        assert!(c.hosts[0].ip(&["link", "show", &br]).contains(&br));
        let o = d.berth(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
        assert!(o.status.success(), "run: {}", stderr(&o));
        assert!(stdout(&o).contains("172."), "{}", stdout(&o));
    }
    assert!(netns_left(&tag).is_empty(), "{:?}", netns_left(&tag));
    for r in roots {
        assert!(!r.exists(), "{} left", r.display());
    }
}

fn info(d: &common::Daemon) -> serde_json::Value {
    let (st, _, body) = d.http("GET", "/info", None);
    assert_eq!(st, 200);
    serde_json::from_slice(&body).expect("info json")
}

/// Three hosts: each leases a subnet from etcd (flannel's layout), its bridge takes the .1
/// with the MTU lowered by 50, flannel.1 carries a route/neighbour/FDB entry per other host;
/// a container on host A pings a container on host B by IP; a second host with the same
/// advertise address is refused; a host killed with SIGKILL loses its lease and the others
/// remove its entries.
#[test]
fn three_hosts_flannel_vxlan_and_lease_expiry() {
    let mut c = Cluster::new(3);
    let store = c.store_url();
    // all three at once: the create-if-absent txn keeps their subnets apart
    std::thread::scope(|sc| {
        for h in c.hosts.iter_mut() {
            let store = store.clone();
            sc.spawn(move || {
                let ip = h.ip.clone();
                h.start(&[
                    "--cluster-store",
                    &store,
                    "--cluster-advertise",
                    &ip,
                    "--cluster-lease-ttl",
                    "3",
                ]);
            });
        }
    });
    for h in &c.hosts {
        let (st, _, body) = h.d().http("GET", "/info", None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert!(
            st == 200 && v["ClusterLease"].as_str().is_some_and(|l| !l.is_empty()),
            "{} did not join: {}",
            h.ip,
            h.d().log()
        );
    }
    // flannel's config, written by the first host
    let o = c.etcdctl(&["get", "--print-value-only", "/coreos.com/network/config"]);
    let cfg: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("config json");
    assert_eq!(cfg["Network"], "10.250.0.0/16");
    assert_eq!(cfg["Backend"]["Type"], "vxlan");

    // three leases, one per host, distinct subnets, flannel's JSON
    let o = c.etcdctl(&["get", "--prefix", "/coreos.com/network/subnets/"]);
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    let mut subnets = std::collections::BTreeMap::new();
    for kv in lines.chunks(2) {
        let net = kv[0]
            .strip_prefix("/coreos.com/network/subnets/")
            .expect("key")
            .replace("-24", "");
        let l: serde_json::Value = serde_json::from_str(&kv[1]).expect("lease json");
        assert_eq!(l["BackendType"], "vxlan");
        assert!(l["BackendData"]["VtepMAC"].as_str().is_some());
        subnets.insert(l["PublicIP"].as_str().expect("ip").to_string(), net);
    }
    assert_eq!(subnets.len(), 3, "{subnets:?}");

    for h in &c.hosts {
        let net = &subnets[&h.ip];
        let gw = net.trim_end_matches(".0").to_string() + ".1";
        let br = common::bridge_name(&h.root);
        let show = h.ip(&["-4", "addr", "show", &br]);
        assert!(
            show.contains(&format!("{gw}/24")),
            "{} {br} {gw}: {show} {}",
            h.ip,
            h.ip(&["-4", "addr"])
        );
        assert!(h.ip(&["link", "show", &br]).contains("mtu 1450"));
        let vx = h.ip(&["-d", "link", "show", "flannel.1"]);
        assert!(vx.contains("vxlan id 1"), "{vx}");
        assert!(vx.contains(&format!("local {}", h.ip)), "{vx}");
        assert!(vx.contains("dstport 8472"), "{vx}");
        assert!(vx.contains("nolearning"), "{vx}");
        // a route per other host (the watch delivers the later hosts' leases)
        let mut routes = String::new();
        let all = common::eventually(5, || {
            routes = h.ip(&["route", "show", "dev", "flannel.1"]);
            subnets
                .iter()
                .filter(|(other, _)| **other != h.ip)
                .all(|(_, onet)| routes.contains(&format!("{onet}/24 via {onet}")))
        });
        assert!(all, "{}: {routes}", h.ip);
        let inf = info(h.d());
        assert_eq!(inf["ClusterStore"], store.as_str());
        let text = stdout(&h.d().berth(&["info"]));
        assert!(
            text.contains(&format!(" Cluster Store: {store}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(" Cluster Advertise: {}\n", h.ip)),
            "{text}"
        );
        assert!(
            text.contains(&format!(" Cluster Lease: {net}/24 (PublicIP {}", h.ip)),
            "{text}"
        );
        assert!(inf["ClusterLease"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{net}/24")));
    }

    // a container on host 1 pings one on host 0 by IP
    c.hosts[0].d().load_busybox();
    c.hosts[1].d().load_busybox();
    let o = c.hosts[0]
        .d()
        .berth(&["run", "-d", "--name", "srv", "busybox", "sleep", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ip0 = c.hosts[0].d().inspect("srv")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        ip0.starts_with(subnets[&c.hosts[0].ip].trim_end_matches('0')),
        "{ip0}"
    );
    let o = c.hosts[1]
        .d()
        .berth(&["run", "--rm", "busybox", "ping", "-c", "3", "-W", "2", &ip0]);
    let out = stdout(&o);
    assert!(o.status.success(), "cross-host ping: {out} {}", stderr(&o));
    println!("cross-host ping:\n{out}");
    let o = c.hosts[0]
        .d()
        .berth(&["run", "--rm", "busybox", "ping", "-c", "3", "-W", "2", &ip0]);
    println!("same-host ping:\n{}", stdout(&o));

    // between hosts the cluster range is routed, not masqueraded: the server sees the
    // client container's own address
    let o = c.hosts[0].d().berth(&[
        "run",
        "-d",
        "--name",
        "tcp",
        "busybox",
        "sh",
        "-c",
        "sleep 30 | nc -l -p 7000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ip_tcp = c.hosts[0].d().inspect("tcp")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let o = c.hosts[1].d().berth(&[
        "run",
        "-d",
        "--name",
        "cli",
        "busybox",
        "sh",
        "-c",
        &format!("sleep 30 | nc {ip_tcp} 7000"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ip_cli = c.hosts[1].d().inspect("cli")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut seen = String::new();
    assert!(
        common::eventually(10, || {
            let o = c.hosts[0].d().berth(&["exec", "tcp", "netstat", "-tn"]);
            seen = format!("{}{}", stdout(&o), stderr(&o));
            seen.contains(&format!("{ip_cli}:"))
        }),
        "server should see {ip_cli}: {seen}"
    );

    // our lease deleted behind our back: host 0 puts it back, the others keep their route
    let key0 = format!("/coreos.com/network/subnets/{}-24", subnets[&c.hosts[0].ip]);
    let o = c.etcdctl(&["del", &key0]);
    assert!(o.status.success());
    assert!(
        common::eventually(5, || {
            stdout(&c.etcdctl(&["get", "--keys-only", &key0])).contains(&key0)
        }),
        "host 0 did not re-take its lease"
    );
    assert!(common::eventually(5, || {
        c.hosts[1]
            .ip(&["route", "show", "dev", "flannel.1"])
            .contains(&subnets[&c.hosts[0].ip])
    }));
    let o = c.hosts[1]
        .d()
        .berth(&["run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", &ip0]);
    assert!(o.status.success(), "ping after the lease came back");

    // the same advertise address again: refused
    let dup = common::cluster::Host {
        ns: c.hosts[2].ns.clone(),
        ip: c.hosts[2].ip.clone(),
        root: std::path::PathBuf::from(format!("/tmp/bt-{}dp", &c.tag[..6])),
        daemon: None,
    };
    std::fs::create_dir_all(&dup.root).expect("mkdir");
    let o = dup.start_expect_failure(&[
        "--cluster-store",
        &store,
        "--cluster-advertise",
        &c.hosts[2].ip.clone(),
    ]);
    assert!(o.contains("already used by another host"), "{o}");
    common::cleanup_root(&dup.root);

    // kill -9 host 2: its lease expires, the others drop its route, neighbour and FDB entry
    let gone_net = subnets[&c.hosts[2].ip].clone();
    c.hosts[2].d_mut().kill9();
    let t0 = std::time::Instant::now();
    assert!(common::eventually(15, || {
        !c.hosts[0]
            .ip(&["route", "show", "dev", "flannel.1"])
            .contains(&gone_net)
    }));
    println!("route of the killed host removed after {:?}", t0.elapsed());
    for h in &c.hosts[..2] {
        assert!(common::eventually(5, || {
            !h.ip(&["route", "show", "dev", "flannel.1"])
                .contains(&gone_net)
                && !h
                    .ip(&["neigh", "show", "dev", "flannel.1"])
                    .contains(&gone_net)
                && !h
                    .run(&["bridge", "fdb", "show", "dev", "flannel.1"])
                    .stdout
                    .windows(c.hosts[2].ip.len())
                    .any(|w| w == c.hosts[2].ip.as_bytes())
        }));
    }
    let o = c.etcdctl(&[
        "get",
        "--prefix",
        "--keys-only",
        "/coreos.com/network/subnets/",
    ]);
    assert!(!stdout(&o).contains(&gone_net), "{}", stdout(&o));
    let _ = ETCD_IP;
}

fn lease_of(d: &common::Daemon) -> String {
    info(d)["ClusterLease"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

/// etcd away: running containers keep talking across hosts, and a daemon that cannot reach
/// the store refuses to start within seconds with a clear error. A host killed with SIGKILL
/// and restarted gets its subnet back (before and after its lease expired), so its running
/// containers keep their addresses and stay reachable.
#[test]
fn etcd_outage_restart_and_rejoin() {
    let mut c = Cluster::new(2);
    let store = c.store_url();
    let flags = |ip: &str| -> Vec<String> {
        [
            "--cluster-store",
            &store,
            "--cluster-advertise",
            ip,
            "--cluster-lease-ttl",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // host 0 takes the cluster keys from daemon.json, host 1 from flags
    std::fs::write(
        c.hosts[0].root.join("daemon.json"),
        serde_json::json!({"cluster-store": store, "cluster-advertise": c.hosts[0].ip}).to_string(),
    )
    .expect("daemon.json");
    c.hosts[0].start(&["--cluster-lease-ttl", "2"]);
    assert!(lease_of(c.hosts[0].d()).starts_with("10.250."));
    assert_eq!(
        info(c.hosts[0].d())["ClusterAdvertise"],
        c.hosts[0].ip.as_str()
    );
    // host 1 advertises an interface name: its address is taken from it
    let f = flags("eth0");
    let f: Vec<&str> = f.iter().map(String::as_str).collect();
    c.hosts[1].start(&f);
    let lease1 = lease_of(c.hosts[1].d());
    let full = info(c.hosts[1].d())["ClusterLease"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        full.contains(&format!("PublicIP {}", c.hosts[1].ip)),
        "{full}"
    );
    assert!(lease1.starts_with("10.250."), "{lease1}");
    c.hosts[1].d().load_busybox();
    c.hosts[0].d().load_busybox();
    let o = c.hosts[1]
        .d()
        .berth(&["run", "-d", "--name", "srv", "busybox", "sleep", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ip = c.hosts[1].d().inspect("srv")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let o = c.hosts[0]
        .d()
        .berth(&["run", "-d", "--name", "cli", "busybox", "sleep", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ping = |c: &Cluster| {
        c.hosts[0]
            .d()
            .berth(&["exec", "cli", "ping", "-c", "1", "-W", "2", &ip])
            .status
            .success()
    };
    assert!(common::eventually(5, || ping(&c)), "ping before");

    // host 1 restarted at once (its lease still alive): same subnet, the container reachable
    c.hosts[1].kill9();
    c.hosts[1].start(&f);
    assert_eq!(lease_of(c.hosts[1].d()), lease1);
    assert!(
        common::eventually(5, || ping(&c)),
        "ping after a quick restart"
    );

    // host 1 down longer than its TTL: the lease goes, then it comes back on the same subnet
    c.hosts[1].kill9();
    let net = lease1.trim_end_matches("/24").to_string();
    assert!(common::eventually(10, || {
        !stdout(&c.etcdctl(&[
            "get",
            "--prefix",
            "--keys-only",
            "/coreos.com/network/subnets/",
        ]))
        .contains(&net)
    }));
    c.hosts[1].start(&f);
    assert_eq!(lease_of(c.hosts[1].d()), lease1);
    assert!(
        common::eventually(5, || ping(&c)),
        "ping after the lease expired and came back"
    );

    // etcd gone: the data plane stays
    c.kill_etcd();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(ping(&c), "ping with etcd down");

    // a new host cannot join without etcd: a clear error within seconds
    let t0 = std::time::Instant::now();
    let h = &c.hosts[0];
    let extra = common::cluster::Host {
        ns: h.ns.clone(),
        ip: h.ip.clone(),
        root: std::path::PathBuf::from(format!("/tmp/bt-{}nx", &c.tag[..6])),
        daemon: None,
    };
    std::fs::create_dir_all(&extra.root).expect("mkdir");
    let log =
        extra.start_expect_failure(&["--cluster-store", &store, "--cluster-advertise", &h.ip]);
    common::cleanup_root(&extra.root);
    assert!(log.contains("cluster store unreachable"), "{log}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
    println!("refused without etcd after {:?}", t0.elapsed());
    let _ = ETCD_IP;
}

/// The average of busybox ping's `round-trip min/avg/max = a/b/c ms` line.
fn ping_avg(out: &str) -> f64 {
    out.lines()
        .find(|l| l.contains("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Two hosts in cluster mode with the default lease TTL (20 s), busybox on both: the
/// benchmarks' cluster.
fn two_hosts_with_busybox() -> Cluster {
    let mut c = Cluster::new(2);
    c.start_all_in_cluster("20");
    for h in &c.hosts {
        h.d().load_busybox();
    }
    c
}

/// bench/cluster.sh: ping latency and TCP throughput (busybox nc, 256 MiB) between two
/// containers on two hosts (through flannel.1) and on one host (through the bridge).
#[test]
#[ignore = "benchmark: bench/cluster.sh"]
fn bench_cross_host_vs_same_host() {
    let c = two_hosts_with_busybox();
    let run = |h: usize, args: &[&str]| {
        let o = c.hosts[h].d().berth(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(
        0,
        &["run", "-d", "--name", "srv", "busybox", "sleep", "3600"],
    );
    let ip = c.hosts[0].d().inspect("srv")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    run(
        0,
        &["run", "-d", "--name", "near", "busybox", "sleep", "3600"],
    );
    run(
        1,
        &["run", "-d", "--name", "far", "busybox", "sleep", "3600"],
    );
    let mut results = Vec::new();
    for (label, h, ctr) in [("same host", 0, "near"), ("cross host", 1, "far")] {
        // warm up ARP/neighbour entries, then measure
        let _ = c.hosts[h].d().berth(&["exec", ctr, "ping", "-c", "2", &ip]);
        let out = run(h, &["exec", ctr, "ping", "-c", "50", "-i", "0.05", &ip]);
        let lat = ping_avg(&out);
        let mut rates = Vec::new();
        for round in 0..3 {
            let srv = c.hosts[0].d().berth(&[
                "exec",
                "-d",
                "srv",
                "sh",
                "-c",
                &format!("sleep 3600 | nc -l -p 7100 | wc -c > /tmp/n{round}"),
            ]);
            assert!(srv.status.success());
            std::thread::sleep(std::time::Duration::from_millis(300));
            // the exec's own cost, measured alone and taken off
            let t0 = std::time::Instant::now();
            run(h, &["exec", ctr, "true"]);
            let overhead = t0.elapsed();
            let t0 = std::time::Instant::now();
            run(
                h,
                &[
                    "exec",
                    ctr,
                    "sh",
                    "-c",
                    &format!("head -c 268435456 /dev/zero | nc {ip} 7100"),
                ],
            );
            let secs = (t0.elapsed().saturating_sub(overhead)).as_secs_f64();
            let mut got = String::new();
            assert!(
                common::eventually(5, || {
                    got = run(0, &["exec", "srv", "cat", &format!("/tmp/n{round}")]);
                    got.trim() == "268435456"
                }),
                "server got {got:?}"
            );
            rates.push(268435456.0 * 8.0 / 1e6 / secs);
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let iperf = iperf3_mbit(&c, h, ctr, &ip);
        results.push((label, lat, rates[1], iperf));
    }
    for (label, lat, rate, iperf) in &results {
        println!(
            "{label}: ping avg {lat:.3} ms, TCP (nc, 256 MiB, median of 3) {rate:.0} Mbit/s, iperf3 (3 s) {}",
            iperf.map_or("not installed".to_string(), |r| format!("{r:.0} Mbit/s"))
        );
    }
    if let (Some(a), Some(b)) = (results[0].3, results[1].3) {
        println!(
            "VXLAN cost (iperf3): {:.1}% throughput",
            (b - a) / a * 100.0
        );
    }
    let (_, l0, r0, _) = results[0];
    let (_, l1, r1, _) = results[1];
    println!(
        "VXLAN cost: +{:.3} ms latency, {:.1}% throughput",
        l1 - l0,
        (r1 - r0) / r0 * 100.0
    );
}

/// Debian's iperf3 run in the containers' network namespaces (the host's binary through
/// `nsenter --net`; busybox has none): server in `srv` on host 0, client in `ctr` on host `h`,
/// 3 s; the receiver's rate in Mbit/s. None without iperf3.
fn iperf3_mbit(c: &Cluster, h: usize, ctr: &str, ip: &str) -> Option<f64> {
    if !std::path::Path::new("/usr/bin/iperf3").exists() {
        return None;
    }
    let pid = |host: usize, name: &str| {
        c.hosts[host].d().inspect(name)["State"]["Pid"]
            .as_i64()
            .unwrap_or(0)
    };
    let mut srv = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", pid(0, "srv")))
        .args(["/usr/bin/iperf3", "-s", "-1", "-p", "5201"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", pid(h, ctr)))
        .args(["/usr/bin/iperf3", "-c", ip, "-p", "5201", "-t", "3", "-J"])
        .output()
        .ok()?;
    let _ = srv.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e6)
}

/// `network create -d overlay` needs cluster mode: a plain daemon refuses it clearly.
#[test]
fn overlay_refused_without_cluster_mode() {
    let d = common::Daemon::start();
    let o = d.berth(&["network", "create", "-d", "overlay", "ov-nocluster"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("overlay networks need cluster mode"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!stdout(&o).contains("ov-nocluster"));
}

fn ctr_ip(d: &common::Daemon, name: &str, net: &str) -> String {
    d.inspect(name)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn net_inspect(d: &common::Daemon, name: &str) -> serde_json::Value {
    let (st, _, body) = d.http("GET", &format!("/networks/{name}"), None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("network json")
}

fn ok(o: std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {} {}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Overlay networks on three hosts: created on A, seen alike on B and C; one VXLAN (own VNI)
/// per network on the hosts that run containers on it, flooding to the other hosts;
/// containers on A and B reach each other by IP, name and alias (the embedded DNS learns the
/// remote endpoints from etcd); `--ip`; two hosts starting containers at once get distinct
/// addresses; connect/disconnect; `network rm` refused while any host is on it, then gone
/// everywhere with its devices and keys.
#[test]
fn overlay_networks_across_three_hosts() {
    let mut c = Cluster::new(3);
    c.start_all_in_cluster("3");
    let (a, b, cc) = (&c.hosts[0], &c.hosts[1], &c.hosts[2]);
    let id = ok(
        a.d().berth(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            "--subnet",
            "10.77.0.0/24",
            "ov1",
        ]),
        "create ov1",
    )
    .trim()
    .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // every host lists and inspects it alike
    for h in [a, b, cc] {
        let mut seen = String::new();
        assert!(
            common::eventually(5, || {
                seen = stdout(&h.d().berth(&[
                    "network",
                    "ls",
                    "--no-trunc",
                    "--format",
                    "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}",
                ]));
                seen.contains(&format!("{id} ov1 overlay global"))
            }),
            "{}: {seen}",
            h.ip
        );
        let v = net_inspect(h.d(), "ov1");
        assert_eq!(v["Id"], id.as_str());
        assert_eq!(v["Driver"], "overlay");
        assert_eq!(v["Scope"], "global");
        assert_eq!(v["Attachable"], true);
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
        assert_eq!(
            v["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
            "4096"
        );
    }
    // names are cluster-wide; a second network gets a default subnet and the next VNI
    let o = b.d().berth(&["network", "create", "-d", "overlay", "ov1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    ok(
        b.d().berth(&["network", "create", "-d", "overlay", "ov2"]),
        "create ov2",
    );
    let v2 = net_inspect(b.d(), "ov2");
    assert_eq!(v2["IPAM"]["Config"][0]["Subnet"], "10.0.0.0/24");
    assert_eq!(
        v2["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4097"
    );

    for h in [a, b, cc] {
        h.d().load_busybox();
    }
    ok(
        a.d().berth(&[
            "run",
            "-d",
            "--name",
            "ca",
            "--network",
            "ov1",
            "--network-alias",
            "alpha",
            "busybox",
            "sleep",
            "600",
        ]),
        "run ca",
    );
    ok(
        b.d().berth(&[
            "run",
            "-d",
            "--name",
            "cb",
            "--network",
            "ov1",
            "--ip",
            "10.77.0.50",
            "busybox",
            "sleep",
            "600",
        ]),
        "run cb",
    );
    let ip_a = ctr_ip(a.d(), "ca", "ov1");
    assert!(ip_a.starts_with("10.77.0."), "{ip_a}");
    assert_eq!(ctr_ip(b.d(), "cb", "ov1"), "10.77.0.50");

    // the data plane on A: a bridge without address, a VXLAN port with the VNI, flooding
    // to both other hosts
    let short = &id[..12];
    let (br, vx) = (format!("ov-{short}"), format!("vx-{short}"));
    let link = a.ip(&["-d", "link", "show", &vx]);
    assert!(link.contains("vxlan id 4096"), "{link}");
    assert!(link.contains("dstport 4789"), "{link}");
    assert!(link.contains(&format!("local {}", a.ip)), "{link}");
    assert!(link.contains(&format!("master {br}")), "{link}");
    assert!(!link.contains("nolearning"), "{link}");
    assert!(link.contains("mtu 1450"), "{link}");
    assert!(a.ip(&["link", "show", &br]).contains("mtu 1450"));
    assert!(!a.ip(&["-4", "addr", "show", &br]).contains("inet "));
    let mut fdb = String::new();
    assert!(
        common::eventually(5, || {
            fdb = String::from_utf8_lossy(&a.run(&["bridge", "fdb", "show", "dev", &vx]).stdout)
                .into_owned();
            [&b.ip, &cc.ip]
                .iter()
                .all(|p| fdb.contains(&format!("00:00:00:00:00:00 dst {p} ")))
        }),
        "{fdb}"
    );
    // host C runs nothing on ov1: no devices there
    assert!(!cc.ip(&["link", "show"]).contains(&vx));

    // by IP both ways, then by name and alias through the embedded DNS
    ok(
        b.d()
            .berth(&["exec", "cb", "ping", "-c", "2", "-W", "2", &ip_a]),
        "B → A by IP",
    );
    ok(
        a.d()
            .berth(&["exec", "ca", "ping", "-c", "2", "-W", "2", "10.77.0.50"]),
        "A → B by IP",
    );
    for (h, ctr, name) in [(b, "cb", "ca"), (b, "cb", "alpha"), (a, "ca", "cb")] {
        let mut out = String::new();
        assert!(
            common::eventually(10, || {
                let o = h
                    .d()
                    .berth(&["exec", ctr, "ping", "-c", "1", "-W", "2", name]);
                out = format!("{}{}", stdout(&o), stderr(&o));
                o.status.success()
            }),
            "{ctr} → {name}: {out}"
        );
    }
    let o = b
        .d()
        .berth(&["exec", "cb", "nslookup", "alpha", "127.0.0.11"]);
    assert!(stdout(&o).contains(&ip_a), "{}", stdout(&o));

    // --ip taken on another host: refused
    let o = cc.d().berth(&[
        "run",
        "--rm",
        "--network",
        "ov1",
        "--ip",
        "10.77.0.50",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Address already in use"),
        "{}",
        stderr(&o)
    );

    // two hosts starting containers at the same moment never share an address
    let mut ips = std::collections::BTreeSet::new();
    ips.insert(ip_a.clone());
    ips.insert("10.77.0.50".to_string());
    let names: Vec<(usize, String)> = (0..4).map(|i| (i % 2, format!("race{i}"))).collect();
    std::thread::scope(|sc| {
        for (hi, name) in &names {
            let h = &c.hosts[*hi];
            sc.spawn(move || {
                ok(
                    h.d().berth(&[
                        "run",
                        "-d",
                        "--name",
                        name,
                        "--network",
                        "ov1",
                        "busybox",
                        "sleep",
                        "600",
                    ]),
                    name,
                );
            });
        }
    });
    for (hi, name) in &names {
        let ip = ctr_ip(c.hosts[*hi].d(), name, "ov1");
        assert!(ip.starts_with("10.77.0."), "{name}: {ip}");
        assert!(ips.insert(ip.clone()), "{name} got {ip} twice: {ips:?}");
    }
    let o = c.etcdctl(&[
        "get",
        "--prefix",
        "--keys-only",
        &format!("/berth/overlay/ipam/{id}/"),
    ]);
    assert_eq!(
        stdout(&o).lines().filter(|l| !l.is_empty()).count(),
        6,
        "{}",
        stdout(&o)
    );

    // connect / disconnect a running container of host C
    ok(
        cc.d()
            .berth(&["run", "-d", "--name", "cc", "busybox", "sleep", "600"]),
        "run cc",
    );
    ok(
        cc.d()
            .berth(&["network", "connect", "--alias", "delta", "ov1", "cc"]),
        "connect",
    );
    let ip_c = ctr_ip(cc.d(), "cc", "ov1");
    assert!(ip_c.starts_with("10.77.0."), "{ip_c}");
    assert!(
        cc.ip(&["link", "show"]).contains(&vx),
        "C has the devices now"
    );
    assert!(
        common::eventually(10, || {
            a.d()
                .berth(&["exec", "ca", "ping", "-c", "1", "-W", "2", "delta"])
                .status
                .success()
        }),
        "A → C by alias after connect"
    );
    ok(
        cc.d().berth(&["network", "disconnect", "ov1", "cc"]),
        "disconnect",
    );
    assert!(
        common::eventually(5, || !cc.ip(&["link", "show"]).contains(&vx)),
        "C's devices go with its last endpoint"
    );
    assert!(common::eventually(5, || {
        !a.d()
            .berth(&["exec", "ca", "nslookup", "delta", "127.0.0.11"])
            .status
            .success()
    }));

    // rm refused while any host has an endpoint, on any host
    let o = cc.d().berth(&["network", "rm", "ov1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "error while removing network: network ov1 id {id} has active endpoints"
        )),
        "{}",
        stderr(&o)
    );
    for (h, names) in [(a, ["ca", "race0", "race2"]), (b, ["cb", "race1", "race3"])] {
        for n in names {
            ok(h.d().berth(&["rm", "-f", n]), n);
        }
    }
    // the devices go with the last local container
    assert!(common::eventually(5, || !a
        .ip(&["link", "show"])
        .contains(&vx)));
    assert!(common::eventually(5, || !b
        .ip(&["link", "show"])
        .contains(&br)));
    let mut out = String::new();
    assert!(
        common::eventually(5, || {
            let o = cc.d().berth(&["network", "rm", "ov1"]);
            out = stderr(&o);
            o.status.success()
        }),
        "rm after the endpoints left: {out}"
    );
    for h in [a, b, cc] {
        assert!(
            common::eventually(5, || {
                !stdout(&h.d().berth(&["network", "ls", "--format", "{{.Name}}"]))
                    .lines()
                    .any(|l| l == "ov1")
            }),
            "{} still lists ov1",
            h.ip
        );
    }
    let o = c.etcdctl(&["get", "--prefix", "--keys-only", "/berth/overlay/"]);
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));
    assert!(!stdout(&o).contains("/names/ov1"), "{}", stdout(&o));
    // the name is free again
    ok(
        b.d().berth(&["network", "create", "-d", "overlay", "ov1"]),
        "re-create ov1",
    );
    ok(a.d().berth(&["network", "rm", "ov1"]), "rm ov1 again");
    ok(a.d().berth(&["network", "rm", "ov2"]), "rm ov2");
    let o = c.etcdctl(&["get", "--prefix", "--keys-only", "/berth/overlay/"]);
    assert!(stdout(&o).trim().is_empty(), "{}", stdout(&o));

    // everything goes with the cluster: namespaces (and the bridges, VXLAN devices and
    // veths in them), etcd, the hosts' roots
    let tag = c.tag.clone();
    let etcd = c.etcd_pid().expect("etcd running");
    let roots: Vec<_> = c.hosts.iter().map(|h| h.root.clone()).collect();
    drop(c);
    assert!(netns_left(&tag).is_empty(), "{:?}", netns_left(&tag));
    assert!(
        !std::path::Path::new(&format!("/proc/{etcd}")).exists(),
        "etcd {etcd} left"
    );
    for r in roots {
        assert!(!r.exists(), "{} left", r.display());
    }
}

/// Two hosts in cluster mode (lease TTL 2 s) with busybox, an overlay network `net` made on
/// host 0, `srv` (alias `web`) on it on host 0 and `cli` on host 1, and `web` resolved by
/// host 1: srv's address.
fn srv_and_cli_on_an_overlay(c: &mut Cluster, net: &str) -> String {
    c.start_all_in_cluster("2");
    for h in &c.hosts {
        h.d().load_busybox();
    }
    ok(
        c.hosts[0]
            .d()
            .berth(&["network", "create", "-d", "overlay", net]),
        "create",
    );
    assert!(common::eventually(5, || {
        c.hosts[1]
            .d()
            .http("GET", &format!("/networks/{net}"), None)
            .0
            == 200
    }));
    ok(
        c.hosts[0].d().berth(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            net,
            "--network-alias",
            "web",
            "busybox",
            "sleep",
            "600",
        ]),
        "run srv",
    );
    ok(
        c.hosts[1].d().berth(&[
            "run",
            "-d",
            "--name",
            "cli",
            "--network",
            net,
            "busybox",
            "sleep",
            "600",
        ]),
        "run cli",
    );
    let ip = ctr_ip(c.hosts[0].d(), "srv", net);
    assert!(
        common::eventually(10, || web_resolves(c, &ip)),
        "web before"
    );
    ip
}

/// Whether host 1's `cli` resolves `web` to `ip` through its embedded DNS.
fn web_resolves(c: &Cluster, ip: &str) -> bool {
    stdout(
        &c.hosts[1]
            .d()
            .berth(&["exec", "cli", "nslookup", "web", "127.0.0.11"]),
    )
    .contains(ip)
}

/// Overlay endpoints live with their host: a host killed with SIGKILL keeps its containers'
/// data plane (reachable by IP), its endpoints expire with its lease (the others' DNS stops
/// answering its names); back on the same roots it publishes them again with the same
/// addresses. etcd down: the containers still talk, and creating an overlay network fails
/// clearly within seconds. Afterwards nothing of the cluster is left.
#[test]
fn overlay_endpoints_follow_the_host_lease() {
    let tag;
    {
        let mut c = Cluster::new(2);
        tag = c.tag.clone();
        let ip = srv_and_cli_on_an_overlay(&mut c, "ovk");
        let resolves = |c: &Cluster| web_resolves(c, &ip);
        let ping_ip = |c: &Cluster| {
            c.hosts[1]
                .d()
                .berth(&["exec", "cli", "ping", "-c", "1", "-W", "2", &ip])
                .status
                .success()
        };
        assert!(ping_ip(&c));

        // host 0 killed: its endpoint expires with its lease, the container stays reachable
        c.hosts[0].kill9();
        let t0 = std::time::Instant::now();
        assert!(
            common::eventually(15, || !resolves(&c)),
            "web still resolves after the host died"
        );
        println!("remote endpoint gone {:?} after kill -9", t0.elapsed());
        assert!(ping_ip(&c), "data plane kept while host 0 is down");

        // back: same address, name resolves again
        c.start_in_cluster(0, "2");
        assert_eq!(ctr_ip(c.hosts[0].d(), "srv", "ovk"), ip);
        assert!(
            common::eventually(10, || resolves(&c)),
            "web resolves again"
        );
        assert!(ping_ip(&c));

        // etcd gone: the containers still talk; creating fails clearly within seconds
        c.kill_etcd();
        assert!(ping_ip(&c), "ping with etcd down");
        let t0 = std::time::Instant::now();
        let o = c.hosts[1]
            .d()
            .berth(&["network", "create", "-d", "overlay", "ov-noetcd"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("cluster store unreachable"),
            "{}",
            stderr(&o)
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    }
    assert!(netns_left(&tag).is_empty(), "{:?}", netns_left(&tag));
}

/// bench/cluster.sh: how long after `berth run --network <overlay>` on host A a container on
/// host B resolves the new name through its embedded DNS. B's container polls `nslookup`
/// every 5 ms from before the run; the time is from the start of `run` on A (so it includes
/// that container's start) to the poller's exit, and from `run`'s return to it.
#[test]
#[ignore = "benchmark: bench/cluster.sh"]
fn bench_overlay_name_resolution() {
    let c = two_hosts_with_busybox();
    let ok = |h: usize, args: &[&str]| {
        let o = c.hosts[h].d().berth(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(
        0,
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.78.0.0/24",
            "benchnet",
        ],
    );
    ok(
        1,
        &[
            "run",
            "-d",
            "--name",
            "probe",
            "--network",
            "benchnet",
            "busybox",
            "sleep",
            "3600",
        ],
    );
    let (mut total, mut after) = (Vec::new(), Vec::new());
    for i in 0..7 {
        let name = format!("n{i}");
        let mut poll = std::process::Command::new(common::bin_dir().join("berth"))
            .args(["-H", &c.hosts[1].d().host(), "exec", "probe", "sh", "-c"])
            .arg(format!(
                "while ! nslookup {name} >/dev/null 2>&1; do usleep 5000; done"
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("poller");
        // let the poller start looping
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t0 = std::time::Instant::now();
        ok(
            0,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "benchnet",
                "busybox",
                "sleep",
                "3600",
            ],
        );
        let t1 = std::time::Instant::now();
        let st = poll.wait().expect("poller");
        let t2 = std::time::Instant::now();
        assert!(st.success());
        total.push((t2 - t0).as_secs_f64() * 1000.0);
        after.push((t2 - t1).as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).expect("number"));
        v[v.len() / 2]
    };
    eprintln!(
        "overlay name resolution: from run's start {:.1} ms, from run's return {:.1} ms (median of 7)",
        median(&mut total),
        median(&mut after)
    );
    for i in 0..7 {
        ok(0, &["rm", "-f", &format!("n{i}")]);
    }
    ok(1, &["rm", "-f", "probe"]);
    ok(0, &["network", "rm", "benchnet"]);
}

/// The host's nftables rules (all tables), as `nft list ruleset` prints them.
fn nft_rules(h: &common::cluster::Host) -> String {
    stdout(&h.run(&["nft", "list", "ruleset"]))
}

/// The interfaces enslaved to `bridge` in the host's namespace.
fn bridge_ports(h: &common::cluster::Host, bridge: &str) -> Vec<String> {
    h.ip(&["-o", "link", "show", "master", bridge])
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .collect()
}

/// An overlay-only container's way out (docker's `docker_gwbridge`, berth's
/// `berth_gwbridge`): a second interface on a host-local bridge network (listed by
/// `network ls`, not in the container's `Networks`) with the default route and outbound NAT,
/// and `-p` publishing DNAT to it: host B reaches host A's LAN address:8080; the container
/// reaches host B's LAN address. Survives a SIGKILL of berthd; `rm -f` leaves no DNAT rule
/// and no port on the bridge.
/// Two hosts in cluster mode (lease TTL 3 s), busybox on host 0, and an overlay network
/// `net` on `subnet` made there.
fn two_hosts_with_an_overlay(net: &str, subnet: &str) -> Cluster {
    let mut c = Cluster::new(2);
    c.start_all_in_cluster("3");
    c.hosts[0].d().load_busybox();
    ok(
        c.hosts[0].d().berth(&[
            "network", "create", "-d", "overlay", "--subnet", subnet, net,
        ]),
        &format!("create {net}"),
    );
    c
}

#[test]
fn overlay_gwbridge_publishes_ports_and_routes_out() {
    let mut c = two_hosts_with_an_overlay("ovp", "10.78.0.0/24");
    let (a, b) = (&c.hosts[0], &c.hosts[1]);
    let httpd = |name: &str, port: &str| {
        ok(
            a.d().berth(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "ovp",
                "-p",
                port,
                "busybox",
                "sh",
                "-c",
                &format!("mkdir /www && echo hello-{name} > /www/index.html && exec httpd -f -p 80 -h /www"),
            ]),
            name,
        )
    };
    httpd("web", "8080:80");

    // docker's picture: the gateway bridge is a local bridge network; the container lists
    // only the overlay, with its published port
    let ls = stdout(&a.d().berth(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]));
    assert!(ls.contains("berth_gwbridge bridge local"), "{ls}");
    let v = a.d().inspect("web");
    let nets = v["NetworkSettings"]["Networks"]
        .as_object()
        .expect("networks");
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["ovp"], "{nets:?}");
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "8080",
        "{}",
        v["NetworkSettings"]["Ports"]
    );
    let ov_ip = ctr_ip(a.d(), "web", "ovp");
    assert!(ov_ip.starts_with("10.78.0."), "{ov_ip}");
    // eth0 on the overlay, eth1 on the gateway bridge with the default route
    let gw = net_inspect(a.d(), "berth_gwbridge");
    let web_id = v["Id"].as_str().expect("id").to_string();
    assert_eq!(
        gw["Containers"][&web_id]["Name"],
        format!("gateway_{}", &web_id[..12]).as_str(),
        "{gw}"
    );
    let gw_ip = gw["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!gw_ip.is_empty(), "{gw}");
    let routes = ok(a.d().berth(&["exec", "web", "ip", "route"]), "ip route");
    assert!(
        routes.contains(&format!("default via {gw_ip} dev eth1")),
        "{routes}"
    );
    assert!(routes.contains("10.78.0.0/24 dev eth0"), "{routes}");
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 1);
    // not one of its networks: not a filter match, not something to disconnect
    let ps = stdout(
        &a.d()
            .berth(&["ps", "-q", "--filter", "network=berth_gwbridge"]),
    );
    assert!(ps.trim().is_empty(), "{ps}");
    let o = a
        .d()
        .berth(&["network", "disconnect", "berth_gwbridge", "web"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not connected to network berth_gwbridge"),
        "{}",
        stderr(&o)
    );

    // published: host B at host A's LAN address
    let url = format!("http://{}:8080/", a.ip);
    let fetch = |url: &str| stdout(&b.run(&["curl", "-s", "-m", "3", url]));
    let mut got = String::new();
    assert!(
        common::eventually(10, || {
            got = fetch(&url);
            got.contains("hello-web")
        }),
        "from host B: {got:?}"
    );
    // outbound: the container reaches host B's LAN address, out of the overlay
    let o = a
        .d()
        .berth(&["exec", "web", "ping", "-c", "1", "-W", "2", &b.ip]);
    assert!(o.status.success(), "ping host B: {}", stdout(&o));
    // the overlay itself still works (and is not NATed away)
    assert!(routes.contains("10.78.0.0/24"));

    // the gateway bridge carries no traffic between its containers (enable_icc=false, as
    // docker's): web2 reaches web on the overlay, not on the bridge
    httpd("web2", "8081:80");
    let eth1 = ok(
        a.d()
            .berth(&["exec", "web", "ip", "-4", "-o", "addr", "show", "eth1"]),
        "eth1",
    );
    let web_gw_ip = eth1
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("eth1 address")
        .to_string();
    assert!(a
        .d()
        .berth(&["exec", "web2", "ping", "-c", "1", "-W", "2", &ov_ip])
        .status
        .success());
    assert!(!a
        .d()
        .berth(&["exec", "web2", "ping", "-c", "1", "-W", "1", &web_gw_ip])
        .status
        .success());
    assert!(nft_rules(a).contains("iifname \"berth_gwbridge\" oifname \"berth_gwbridge\" drop"));

    // berthd SIGKILLed and back on its roots: the port is published again
    c.hosts[0].kill9();
    c.start_in_cluster(0, "3");
    let (a, b) = (&c.hosts[0], &c.hosts[1]);
    let url2 = format!("http://{}:8081/", a.ip);
    let fetch = |url: &str| stdout(&b.run(&["curl", "-s", "-m", "3", url]));
    assert!(
        common::eventually(10, || fetch(&url).contains("hello-web")
            && fetch(&url2).contains("hello-web2")),
        "after restart: {:?} {:?}",
        fetch(&url),
        fetch(&url2)
    );

    // the last overlay disconnected from a running container: its gateway bridge endpoint
    // and the ports published there go with it
    ok(
        a.d().berth(&[
            "run",
            "-d",
            "--name",
            "solo",
            "--network",
            "ovp",
            "-p",
            "8082:80",
            "busybox",
            "sleep",
            "600",
        ]),
        "run solo",
    );
    assert!(nft_rules(a).contains("dport 8082"));
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 3);
    ok(
        a.d().berth(&["network", "disconnect", "ovp", "solo"]),
        "disconnect",
    );
    assert!(!nft_rules(a).contains("dport 8082"), "{}", nft_rules(a));
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 2);
    let v = a.d().inspect("solo");
    assert!(
        v["NetworkSettings"]["Ports"]["80/tcp"].is_null(),
        "{}",
        v["NetworkSettings"]["Ports"]
    );
    let links = ok(a.d().berth(&["exec", "solo", "ip", "-o", "link"]), "links");
    assert!(!links.contains("eth1"), "{links}");
    // an overlay connected again: the gateway bridge gives it a way out again, as at start
    ok(
        a.d().berth(&["network", "connect", "ovp", "solo"]),
        "connect again",
    );
    let routes = ok(a.d().berth(&["exec", "solo", "ip", "route"]), "ip route");
    assert!(
        routes.contains(&format!("default via {gw_ip} dev eth1")),
        "{routes}"
    );
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 3);
    ok(a.d().berth(&["rm", "-f", "solo"]), "rm solo");

    // rm -f: DNAT rules and the ports on the gateway bridge go
    assert!(nft_rules(a).contains("dport 8080"), "{}", nft_rules(a));
    ok(a.d().berth(&["rm", "-f", "web"]), "rm web");
    let rules = nft_rules(a);
    assert!(!rules.contains("dport 8080"), "{rules}");
    assert!(rules.contains("dport 8081"), "{rules}");
    // (the kernel takes the veth away with the namespace, in the background)
    assert!(
        common::eventually(5, || bridge_ports(a, "berth_gwbridge").len() == 1),
        "{:?}",
        bridge_ports(a, "berth_gwbridge")
    );
    ok(a.d().berth(&["rm", "-f", "web2"]), "rm web2");
    let rules = nft_rules(a);
    assert!(!rules.contains("dport 8081"), "{rules}");
    assert!(
        common::eventually(5, || bridge_ports(a, "berth_gwbridge").is_empty()),
        "{:?}",
        bridge_ports(a, "berth_gwbridge")
    );
    assert!(fetch(&url).is_empty());
    // the overlay goes; the gateway bridge stays, as docker's does
    // (the endpoints leave etcd in the background)
    assert!(common::eventually(5, || a
        .d()
        .berth(&["network", "rm", "ovp"])
        .status
        .success()));
    assert!(a.d().http("GET", "/networks/berth_gwbridge", None).0 == 200);
}

/// The IPv4 address of `ifname` inside container `ctr` (`ip -4 -o addr show`).
fn ctr_if_ip(d: &common::Daemon, ctr: &str, ifname: &str) -> String {
    let out = ok(
        d.berth(&["exec", ctr, "ip", "-4", "-o", "addr", "show", ifname]),
        ifname,
    );
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or("")
        .to_string()
}

/// The way out of a running overlay-only container moves as docker's does: `network
/// connect` of a bridge network takes the gateway bridge endpoint away at once (default
/// route through the new network's gateway, published port DNATed to the new address,
/// reachable from the host at 127.0.0.1 and at its LAN address, and from another host);
/// `network disconnect` of it gives the container a gateway bridge endpoint again (`eth1`,
/// default route, port DNATed to it). Both pictures survive a SIGKILL of berthd.
#[test]
fn overlay_gwbridge_moves_to_a_connected_bridge_and_back() {
    let mut c = two_hosts_with_an_overlay("ovm", "10.79.0.0/24");
    let a = &c.hosts[0];
    ok(
        a.d()
            .berth(&["network", "create", "--subnet", "10.81.0.0/24", "ubr"]),
        "create ubr",
    );
    ok(
        a.d().berth(&[
            "run",
            "-d",
            "--name",
            "mv",
            "--network",
            "ovm",
            "-p",
            "8090:80",
            "busybox",
            "sh",
            "-c",
            "mkdir /www && echo hello-mv > /www/index.html && exec httpd -f -p 80 -h /www",
        ]),
        "run mv",
    );
    let gw_gw = net_inspect(a.d(), "berth_gwbridge")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!gw_gw.is_empty());

    // the container's route, its port's DNAT target, and the port from host A (loopback
    // and LAN address) and from host B
    let check = |c: &Cluster, gw: &str, dev: &str, ctr_ip: &str, when: &str| {
        let (a, b) = (&c.hosts[0], &c.hosts[1]);
        let routes = ok(a.d().berth(&["exec", "mv", "ip", "route"]), "ip route");
        assert!(
            routes.contains(&format!("default via {gw} dev {dev}")),
            "{when}: {routes}"
        );
        assert_eq!(
            routes.matches("default").count(),
            1,
            "{when}: one default route: {routes}"
        );
        let rules = nft_rules(a);
        let dnat: Vec<&str> = rules.lines().filter(|l| l.contains("dport 8090")).collect();
        assert!(!dnat.is_empty(), "{when}: {rules}");
        assert!(
            dnat.iter().all(|l| l.contains(&format!("{ctr_ip}:80"))),
            "{when}: DNAT to {ctr_ip}: {dnat:?}"
        );
        let v = a.d().inspect("mv");
        assert_eq!(
            v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "8090",
            "{when}: {}",
            v["NetworkSettings"]["Ports"]
        );
        let port = ok(a.d().berth(&["port", "mv", "80"]), "port");
        assert!(port.contains("0.0.0.0:8090"), "{when}: {port}");
        let local = "http://127.0.0.1:8090/";
        let lan = format!("http://{}:8090/", a.ip);
        let mut got = (String::new(), String::new(), String::new());
        assert!(
            common::eventually(10, || {
                got = (
                    stdout(&a.run(&["curl", "-s", "-m", "3", local])),
                    stdout(&a.run(&["curl", "-s", "-m", "3", &lan])),
                    stdout(&b.run(&["curl", "-s", "-m", "3", &lan])),
                );
                got.0.contains("hello-mv")
                    && got.1.contains("hello-mv")
                    && got.2.contains("hello-mv")
            }),
            "{when}: host A loopback, host A LAN, host B: {got:?}"
        );
        // out through the new way: host B's LAN address and etcd's
        let o = a
            .d()
            .berth(&["exec", "mv", "ping", "-c", "1", "-W", "2", ETCD_IP]);
        assert!(o.status.success(), "{when}: ping etcd: {}", stdout(&o));
    };
    // the same checks, then again once host A's daemon was killed and started again
    let check_across_kill9 = |c: &mut Cluster, gw: &str, dev: &str, ctr_ip: &str, when: &str| {
        check(c, gw, dev, ctr_ip, when);
        c.hosts[0].kill9();
        c.start_in_cluster(0, "3");
        check(c, gw, dev, ctr_ip, &format!("{when}, after kill -9"));
    };
    let gw_ip = ctr_if_ip(a.d(), "mv", "eth1");
    check(&c, &gw_gw, "eth1", &gw_ip, "on the gateway bridge");
    assert_eq!(bridge_ports(&c.hosts[0], "berth_gwbridge").len(), 1);

    // an internal network is no way out: the gateway bridge keeps the default route and
    // the port, connected or disconnected
    let a = &c.hosts[0];
    ok(
        a.d().berth(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.82.0.0/24",
            "inr",
        ]),
        "create inr",
    );
    ok(
        a.d().berth(&["network", "connect", "inr", "mv"]),
        "connect inr",
    );
    assert!(ctr_if_ip(a.d(), "mv", "eth2").starts_with("10.82.0."));
    check(&c, &gw_gw, "eth1", &gw_ip, "on the gateway bridge and inr");
    let a = &c.hosts[0];
    ok(
        a.d().berth(&["network", "disconnect", "inr", "mv"]),
        "disconnect inr",
    );
    check(&c, &gw_gw, "eth1", &gw_ip, "inr gone");
    let a = &c.hosts[0];
    ok(a.d().berth(&["network", "rm", "inr"]), "rm inr");

    // connect: the gateway bridge endpoint goes, the user bridge is the way out
    let a = &c.hosts[0];
    ok(a.d().berth(&["network", "connect", "ubr", "mv"]), "connect");
    let ubr_ip = ctr_ip(a.d(), "mv", "ubr");
    assert!(ubr_ip.starts_with("10.81.0."), "{ubr_ip}");
    assert_eq!(ctr_if_ip(a.d(), "mv", "eth1"), ubr_ip);
    let links = ok(a.d().berth(&["exec", "mv", "ip", "-o", "link"]), "links");
    assert!(!links.contains("eth2"), "{links}");
    assert!(bridge_ports(a, "berth_gwbridge").is_empty());
    let gw = net_inspect(a.d(), "berth_gwbridge");
    assert!(
        gw["Containers"].as_object().is_none_or(|m| m.is_empty()),
        "{gw}"
    );
    check_across_kill9(&mut c, "10.81.0.1", "eth1", &ubr_ip, "connected to ubr");
    assert!(bridge_ports(&c.hosts[0], "berth_gwbridge").is_empty());

    // disconnect: a gateway bridge endpoint again
    let a = &c.hosts[0];
    ok(
        a.d().berth(&["network", "disconnect", "ubr", "mv"]),
        "disconnect",
    );
    let gw_ip = ctr_if_ip(a.d(), "mv", "eth1");
    assert!(!gw_ip.is_empty());
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 1);
    let id = a.d().inspect("mv")["Id"].as_str().unwrap_or("").to_string();
    let gw = net_inspect(a.d(), "berth_gwbridge");
    assert_eq!(
        gw["Containers"][&id]["IPv4Address"]
            .as_str()
            .unwrap_or("")
            .split('/')
            .next(),
        Some(gw_ip.as_str()),
        "{gw}"
    );
    let nets = a.d().inspect("mv")["NetworkSettings"]["Networks"].clone();
    assert_eq!(
        nets.as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["ovm".to_string()]),
        "{nets}"
    );
    check_across_kill9(&mut c, &gw_gw, "eth1", &gw_ip, "disconnected from ubr");
    assert_eq!(bridge_ports(&c.hosts[0], "berth_gwbridge").len(), 1);

    // two bridge networks: the second one connected does not take the way out over (nor
    // does a restart hand the ports to it, though `bridge` sorts before `ubr`); the way out
    // moves to it when the first one leaves, and to the gateway bridge when it leaves too
    let a = &c.hosts[0];
    ok(
        a.d().berth(&["network", "connect", "ubr", "mv"]),
        "connect ubr",
    );
    let ubr_ip = ctr_ip(a.d(), "mv", "ubr");
    check(&c, "10.81.0.1", "eth1", &ubr_ip, "connected to ubr again");
    let a = &c.hosts[0];
    let br_gw = net_inspect(a.d(), "bridge")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!br_gw.is_empty());
    ok(
        a.d().berth(&["network", "connect", "bridge", "mv"]),
        "connect bridge",
    );
    let br_ip = ctr_ip(a.d(), "mv", "bridge");
    assert_eq!(ctr_if_ip(a.d(), "mv", "eth2"), br_ip);
    check_across_kill9(&mut c, "10.81.0.1", "eth1", &ubr_ip, "on ubr and bridge");
    let a = &c.hosts[0];
    ok(
        a.d().berth(&["network", "disconnect", "ubr", "mv"]),
        "disconnect ubr",
    );
    assert!(bridge_ports(a, "berth_gwbridge").is_empty());
    check_across_kill9(&mut c, &br_gw, "eth2", &br_ip, "ubr gone, on bridge");
    let a = &c.hosts[0];
    ok(
        a.d().berth(&["network", "disconnect", "bridge", "mv"]),
        "disconnect bridge",
    );
    let gw_ip = ctr_if_ip(a.d(), "mv", "eth1");
    assert_eq!(bridge_ports(a, "berth_gwbridge").len(), 1);
    check(&c, &gw_gw, "eth1", &gw_ip, "overlay only again");

    let a = &c.hosts[0];
    ok(a.d().berth(&["rm", "-f", "mv"]), "rm mv");
    assert!(!nft_rules(a).contains("dport 8090"));
    ok(a.d().berth(&["network", "rm", "ubr"]), "rm ubr");
    assert!(common::eventually(5, || a
        .d()
        .berth(&["network", "rm", "ovm"])
        .status
        .success()));
}

/// A host cut off from etcd for longer than its lease TTL (etcd itself up): its endpoints
/// expire for the others; once it reaches etcd again it takes a new lease and publishes
/// its running containers' endpoints on it, so the other hosts resolve them again.
#[test]
fn overlay_endpoints_come_back_after_a_partition_longer_than_the_lease() {
    let mut c = Cluster::new(2);
    let ip = srv_and_cli_on_an_overlay(&mut c, "ovp");
    let resolves = |c: &Cluster| web_resolves(c, &ip);
    assert!(common::eventually(10, || resolves(&c)), "web before");

    // host 0 cannot reach etcd (its packets to and from etcd's port dropped in its own
    // namespace): its lease and endpoint expire
    let nft = |h: &common::cluster::Host, script: &str| {
        let o = h.run(&["nft", script]);
        assert!(o.status.success(), "nft {script}: {}", stderr(&o));
    };
    nft(&c.hosts[0], "add table inet bt_partition");
    nft(
        &c.hosts[0],
        "add chain inet bt_partition out { type filter hook output priority 0; }",
    );
    nft(
        &c.hosts[0],
        &format!("add rule inet bt_partition out ip daddr {ETCD_IP} tcp dport 2379 drop"),
    );
    nft(
        &c.hosts[0],
        "add chain inet bt_partition in { type filter hook input priority 0; }",
    );
    nft(
        &c.hosts[0],
        &format!("add rule inet bt_partition in ip saddr {ETCD_IP} tcp sport 2379 drop"),
    );
    assert!(
        common::eventually(20, || !resolves(&c)),
        "web still resolves with its host cut off"
    );
    nft(&c.hosts[0], "delete table inet bt_partition");
    let t0 = std::time::Instant::now();
    assert!(
        common::eventually(30, || resolves(&c)),
        "web does not resolve again after the partition"
    );
    println!("endpoint back {:?} after the partition ended", t0.elapsed());
}
