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
