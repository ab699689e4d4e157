//! The etcd client against a real etcd (Debian's `etcd-server`) on loopback ports of its own.

use berth_cluster::etcd::{Client, Event};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.dir.path();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_etcd() -> Etcd {
    let dir = tempfile::tempdir().expect("tmpdir");
    let (cp, pp) = (free_port(), free_port());
    let child = Command::new("etcd")
        .args(["--name", "t", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{cp}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{cp}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{pp}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{pp}"),
            "--initial-cluster",
            &format!("t=http://127.0.0.1:{pp}"),
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd not installed? apt-get install etcd-server");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "etcd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Etcd {
        child,
        dir,
        url: format!("etcd://127.0.0.1:{cp}"),
    }
}

#[tokio::test]
async fn kv_txn_lease_and_watch_against_real_etcd() {
    let e = start_etcd();
    let c = Client::new(&e.url).unwrap();
    // the server may take a moment to serve after it listens
    let t0 = Instant::now();
    while c.get("/x").await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.put("/t/a", b"1", 0).await.unwrap();
    let kv = c.get("/t/a").await.unwrap().unwrap();
    assert_eq!(kv.value, b"1");
    assert!(c.get("/t/none").await.unwrap().is_none());

    // create-if-absent: only the first wins
    assert!(c.create("/t/b", b"first", 0).await.unwrap());
    assert!(!c.create("/t/b", b"second", 0).await.unwrap());
    assert_eq!(c.get("/t/b").await.unwrap().unwrap().value, b"first");

    let (kvs, rev) = c.get_prefix("/t/").await.unwrap();
    assert_eq!(
        kvs.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["/t/a", "/t/b"]
    );
    assert!(rev > 0);

    // a watch from after the read sees later changes, in order
    let mut w = c.watch("/t/", rev + 1).await.unwrap();
    c.put("/t/c", b"3", 0).await.unwrap();
    assert_eq!(c.delete("/t/a").await.unwrap(), 1);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let evs = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("watch event in time")
            .unwrap();
        seen.extend(evs);
    }
    assert!(matches!(&seen[0], Event::Put(kv) if kv.key == "/t/c" && kv.value == b"3"));
    assert!(matches!(&seen[1], Event::Delete(kv) if kv.key == "/t/a"));

    // delete_if: only at the revision it read
    let b = c.get("/t/b").await.unwrap().unwrap();
    assert!(!c.delete_if("/t/b", b.mod_revision - 1).await.unwrap());
    assert!(c.delete_if("/t/b", b.mod_revision).await.unwrap());

    // a lease: renewed keys stay, an expired lease takes its keys (seen by the watch)
    let id = c.grant(2).await.unwrap();
    assert!(c.create("/t/l", b"leased", id).await.unwrap());
    assert_eq!(c.get("/t/l").await.unwrap().unwrap().lease, id);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(c.keepalive(id).await.unwrap() > 0);
    }
    assert!(
        c.get("/t/l").await.unwrap().is_some(),
        "renewed lease kept its key"
    );
    let t0 = Instant::now();
    let gone = loop {
        let evs = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("expiry seen in time")
            .unwrap();
        if evs
            .iter()
            .any(|e| matches!(e, Event::Delete(kv) if kv.key == "/t/l"))
        {
            break t0.elapsed();
        }
    };
    assert!(gone < Duration::from_secs(8), "expired after {gone:?}");
    assert_eq!(c.keepalive(id).await.unwrap(), 0, "expired lease has TTL 0");

    // revoke removes at once
    let id = c.grant(60).await.unwrap();
    c.put("/t/r", b"x", id).await.unwrap();
    c.revoke(id).await.unwrap();
    assert!(c.get("/t/r").await.unwrap().is_none());
}

#[tokio::test]
async fn unreachable_store_errors_within_seconds() {
    let port = free_port();
    let c = Client::new(&format!("etcd://127.0.0.1:{port}")).unwrap();
    let t0 = Instant::now();
    let e = c.get("/x").await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_have_one_winner() {
    let e = start_etcd();
    let c = Client::new(&e.url).unwrap();
    let t0 = Instant::now();
    while c.get("/x").await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for round in 0..5 {
        let key = format!("/race/{round}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let c = c.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                c.create(&key, format!("host{i}").as_bytes(), 0).await
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

/// bench/cluster.sh's scale figures: N simulated hosts (etcd clients only, default 50;
/// `BERTH_SIM_HOSTS`) join at once through flannel's layout (read leases, pick, create txn,
/// retry), renew every TTL/3 and watch the subnets; one leaves and every other sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/cluster.sh"]
async fn simulated_cluster_scale() {
    use berth_cluster::flannel::{self, NetworkConfig, SubnetLease};
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let n: usize = std::env::var("BERTH_SIM_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let e = start_etcd();
    let c = Client::new(&e.url).unwrap();
    let t0 = Instant::now();
    while c.get("/x").await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cfg = NetworkConfig::default();
    let retries = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut joins = Vec::new();
    for i in 0..n {
        let c = c.clone();
        let cfg = cfg.clone();
        let retries = retries.clone();
        joins.push(tokio::spawn(async move {
            let ip = std::net::Ipv4Addr::new(10, 99, (i / 250) as u8, (i % 250 + 1) as u8);
            let lease = c.grant(6).await.unwrap();
            let doc = SubnetLease::vxlan(ip, &[2, 0, 0, 0, 0, i as u8]).to_json();
            loop {
                let (kvs, _) = c.get_prefix(flannel::SUBNETS).await.unwrap();
                let taken: BTreeSet<_> = kvs
                    .iter()
                    .filter_map(|kv| flannel::parse_subnet_key(&kv.key).map(|s| s.0))
                    .collect();
                // everyone starts at the same place: the worst case for races
                let s = cfg.pick(&taken, 0).unwrap();
                if c.create(&flannel::subnet_key(s, 24), &doc, lease)
                    .await
                    .unwrap()
                {
                    return (lease, s);
                }
                retries.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut hosts = Vec::new();
    for j in joins {
        hosts.push(j.await.unwrap());
    }
    let join_time = t0.elapsed();
    let distinct: BTreeSet<_> = hosts.iter().map(|h| h.1).collect();
    assert_eq!(distinct.len(), n, "every host its own subnet");

    // every host watches; renewals every 2 s for 10 s, timed
    let (_, rev) = c.get_prefix(flannel::SUBNETS).await.unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for _ in 0..n {
        let mut w = c.watch(flannel::SUBNETS, rev + 1).await.unwrap();
        let seen = seen.clone();
        watchers.push(tokio::spawn(async move {
            let t = Instant::now();
            loop {
                let evs = w.next().await.unwrap();
                if evs.iter().any(|e| matches!(e, Event::Delete(_))) {
                    seen.fetch_add(1, Ordering::Relaxed);
                    return t.elapsed();
                }
            }
        }));
    }
    let mut lat = Vec::new();
    let rounds = 5;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut ks = Vec::new();
        for (lease, _) in &hosts {
            let c = c.clone();
            let lease = *lease;
            ks.push(tokio::spawn(async move {
                let t = Instant::now();
                assert!(c.keepalive(lease).await.unwrap() > 0);
                t.elapsed()
            }));
        }
        for k in ks {
            lat.push(k.await.unwrap());
        }
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(t.elapsed())).await;
    }
    lat.sort();
    // one host leaves: every watcher sees it
    let t = Instant::now();
    c.revoke(hosts[0].0).await.unwrap();
    for w in watchers {
        tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("every watcher sees the leave")
            .unwrap();
    }
    let fanout = t.elapsed();
    assert_eq!(seen.load(Ordering::Relaxed) as usize, n);
    println!(
        "{n} hosts: joined at once in {join_time:?} ({} txn retries, all starting at the same subnet); \
         keepalive p50 {:?} p99 {:?} ({} renewals/s at TTL 6 s); a leave seen by all {n} watchers in {fanout:?}",
        retries.load(Ordering::Relaxed),
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        n as f64 / 2.0
    );
}
