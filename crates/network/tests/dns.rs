//! The embedded DNS server in a network namespace this test makes (root only; skipped
//! otherwise). Traffic goes only to 127.0.0.11 inside that namespace and to the test's own
//! upstream on 127.0.0.1 of the host's namespace.

use berth_network::dns::{serve, Lookup};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A network namespace held by a thread of this process that unshared it; it goes away
/// with the thread (dropped, or the process ends, whatever happens).
struct TestNs {
    path: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}
impl TestNs {
    fn new() -> Option<TestNs> {
        let (tx, rx) = mpsc::channel::<Option<i64>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                let _ = tx.send(None);
                return;
            }
            // SAFETY: gettid has no preconditions.
            let _ = tx.send(Some(i64::from(unsafe { libc::gettid() })));
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().ok()??;
        let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id()));
        let ours = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
        assert_ne!(
            std::fs::metadata(&path).unwrap().ino(),
            ours,
            "a new namespace"
        );
        Some(TestNs {
            path,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}
impl Drop for TestNs {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `f` on a thread inside the namespace.
fn in_ns<R: Send + 'static>(ns: &Path, f: impl FnOnce() -> R + Send + 'static) -> R {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.trim_end_matches('.').split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    m
}

/// (id, rcode, answer count, the last answer's A address when there is one)
fn summary(r: &[u8]) -> (u16, u8, u16, Option<Ipv4Addr>) {
    assert!(r.len() >= 12, "short reply {r:?}");
    assert_eq!(r[2] & 0x80, 0x80, "a response");
    let an = u16::from_be_bytes([r[6], r[7]]);
    let a = (an > 0).then(|| {
        let n = r.len();
        Ipv4Addr::new(r[n - 4], r[n - 3], r[n - 2], r[n - 1])
    });
    (u16::from_be_bytes([r[0], r[1]]), r[3] & 0xf, an, a)
}

const SERVER: &str = "127.0.0.11:53";

fn udp_ask(ns: &Path, msgs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    in_ns(ns, move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut out = vec![];
        for m in msgs {
            s.send_to(&m, SERVER).unwrap();
            let mut buf = [0u8; 4096];
            let (n, from) = s.recv_from(&mut buf).expect("an answer");
            assert_eq!(from, SERVER.parse::<SocketAddr>().unwrap());
            out.push(buf[..n].to_vec());
        }
        out
    })
}

fn tcp_ask(ns: &Path, msgs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    in_ns(ns, move || {
        let mut s = TcpStream::connect(SERVER).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut out = vec![];
        for m in msgs {
            let mut w = (m.len() as u16).to_be_bytes().to_vec();
            w.extend_from_slice(&m);
            s.write_all(&w).unwrap();
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(l))];
            s.read_exact(&mut buf).unwrap();
            out.push(buf);
        }
        out
    })
}

/// A test upstream on 127.0.0.1: `forwarded.example` → 192.0.2.99, everything else
/// NXDOMAIN.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}
impl Upstream {
    fn start() -> Upstream {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = s.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, st) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, peer)) = s.recv_from(&mut buf) else {
                    continue;
                };
                q.fetch_add(1, Ordering::Relaxed);
                let mut r = buf[..n].to_vec();
                r[2] |= 0x80;
                r[3] |= 0x80;
                if r.windows(18).any(|w| w == b"\x09forwarded\x07example") {
                    r[7] = 1;
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99]);
                } else {
                    r[3] = (r[3] & 0xf0) | 3;
                }
                let _ = s.send_to(&r, peer);
            }
        });
        Upstream {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }
}
impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct TestLookup {
    upstreams: Mutex<Vec<SocketAddr>>,
}
impl Lookup for TestLookup {
    fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr> {
        assert_eq!(container_id, "c0ffee");
        if name == "web" {
            vec![Ipv4Addr::new(198, 18, 0, 5)]
        } else {
            vec![]
        }
    }
    fn upstreams(&self, _: &str) -> Vec<SocketAddr> {
        self.upstreams.lock().unwrap().clone()
    }
}

/// Whether 127.0.0.11:53 can be bound (UDP and TCP) in the namespace right now.
fn can_bind(ns: &Path) -> bool {
    in_ns(ns, || {
        UdpSocket::bind(SERVER).is_ok() && TcpListener::bind(SERVER).is_ok()
    })
}

fn wait_bindable(ns: &Path) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if can_bind(ns) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn embedded_dns_in_a_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(ns) = TestNs::new() else {
        eprintln!("skipped: cannot make a network namespace");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let up = Upstream::start();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lookup = Arc::new(TestLookup {
        upstreams: Mutex::new(vec![up.addr]),
    });

    let missing = {
        let _g = rt.enter();
        serve("c0ffee", Path::new("/proc/self/ns/nosuch"), lookup.clone())
    };
    assert!(
        matches!(missing, Err(berth_network::Error::NotFound(_))),
        "{:?}",
        missing.err()
    );

    let handle = {
        let _g = rt.enter();
        serve("c0ffee", &ns.path, lookup.clone()).unwrap()
    };
    assert!(
        !can_bind(&ns.path),
        "the server holds 127.0.0.11:53 in the namespace"
    );

    // UDP: a known name, its AAAA, a forwarded name, an unknown one, garbage in between
    let r = udp_ask(
        &ns.path,
        vec![
            query(0x1111, "web", 1),
            query(0x2222, "WEB.", 1),
            query(0x3333, "web", 28),
            query(0x4444, "forwarded.example", 1),
            query(0x5555, "nosuch.example", 1),
        ],
    );
    assert_eq!(
        summary(&r[0]),
        (0x1111, 0, 1, Some(Ipv4Addr::new(198, 18, 0, 5)))
    );
    assert_eq!(
        summary(&r[1]),
        (0x2222, 0, 1, Some(Ipv4Addr::new(198, 18, 0, 5)))
    );
    assert_eq!(summary(&r[2]), (0x3333, 0, 0, None));
    assert_eq!(
        summary(&r[3]),
        (0x4444, 0, 1, Some(Ipv4Addr::new(192, 0, 2, 99)))
    );
    assert_eq!(summary(&r[4]), (0x5555, 3, 0, None));
    assert_eq!(
        up.queries.load(Ordering::Relaxed),
        2,
        "only unknown names are forwarded"
    );

    in_ns(&ns.path, || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for junk in [
            &b""[..],
            b"\x00",
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",
        ] {
            s.send_to(junk, SERVER).unwrap();
        }
    });

    // TCP: two messages on one connection
    let r = tcp_ask(
        &ns.path,
        vec![
            query(0x6666, "web", 1),
            query(0x7777, "forwarded.example", 1),
        ],
    );
    assert_eq!(
        summary(&r[0]),
        (0x6666, 0, 1, Some(Ipv4Addr::new(198, 18, 0, 5)))
    );
    assert_eq!(
        summary(&r[1]),
        (0x7777, 0, 1, Some(Ipv4Addr::new(192, 0, 2, 99)))
    );

    // a silent upstream: SERVFAIL after its timeout; then the next upstream is tried
    *lookup.upstreams.lock().unwrap() = vec![silent.local_addr().unwrap()];
    let r = udp_ask(&ns.path, vec![query(0x8888, "nosuch.example", 1)]);
    assert_eq!(summary(&r[0]), (0x8888, 2, 0, None));
    let r = tcp_ask(&ns.path, vec![query(0x8889, "nosuch.example", 1)]);
    assert_eq!(summary(&r[0]), (0x8889, 2, 0, None));
    *lookup.upstreams.lock().unwrap() = vec![silent.local_addr().unwrap(), up.addr];
    let r = udp_ask(&ns.path, vec![query(0x9999, "forwarded.example", 1)]);
    assert_eq!(
        summary(&r[0]),
        (0x9999, 0, 1, Some(Ipv4Addr::new(192, 0, 2, 99)))
    );
    // no upstreams at all
    lookup.upstreams.lock().unwrap().clear();
    let r = udp_ask(&ns.path, vec![query(0xaaaa, "nosuch.example", 1)]);
    assert_eq!(summary(&r[0]), (0xaaaa, 2, 0, None));
    // known names still answered without upstreams
    let r = udp_ask(&ns.path, vec![query(0xbbbb, "web", 1)]);
    assert_eq!(
        summary(&r[0]),
        (0xbbbb, 0, 1, Some(Ipv4Addr::new(198, 18, 0, 5)))
    );

    // dropping the handle closes the sockets
    drop(handle);
    assert!(
        wait_bindable(&ns.path),
        "127.0.0.11:53 free again after drop"
    );

    // stop() returns once they are closed
    let handle = {
        let _g = rt.enter();
        serve("c0ffee", &ns.path, lookup.clone()).unwrap()
    };
    let r = udp_ask(&ns.path, vec![query(0xcccc, "web", 1)]);
    assert_eq!(
        summary(&r[0]),
        (0xcccc, 0, 1, Some(Ipv4Addr::new(198, 18, 0, 5)))
    );
    rt.block_on(handle.stop());
    assert!(can_bind(&ns.path), "127.0.0.11:53 free right after stop()");

    drop(rt);
    drop(ns);
}
