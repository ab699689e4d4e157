//! A small cluster on one machine: a "LAN" network namespace holding a bridge and Debian's
//! `etcd`, and N "host" namespaces joined to that bridge by veth pairs, each with its own
//! `berthd` (own roots, socket, bridge and nft table, as `Daemon::start` isolates them).
//!
//! Every address lives inside namespaces created here (10.99.0.0/24 on the LAN: hosts are
//! .1…, etcd is .254), so no traffic leaves them. Each host's daemon enters its namespace with
//! `setns(CLONE_NEWNET)` between fork and exec — what `nsenter --net=/run/netns/X` does, and
//! unlike `ip netns exec` it does not remount `/sys` (the cgroup mounts under it stay
//! visible) — so the pid the test holds is berthd's own, and `kill -9` hits the daemon.
//!
//! `Drop` stops every daemon (removing its containers), kills etcd by pid, and deletes the
//! namespaces, which takes their veths, bridges, VXLAN devices and nft tables with them.
#![allow(dead_code)]

use super::{short_rand, tmpdir, Daemon};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The etcd client address on the LAN.
pub const ETCD_IP: &str = "10.99.0.254";

pub struct Host {
    /// the namespace's name (under /run/netns)
    pub ns: String,
    /// the host's address on the LAN
    pub ip: String,
    /// the host's roots (kept across a daemon restart)
    pub root: PathBuf,
    pub daemon: Option<Daemon>,
}

impl Host {
    pub fn d(&self) -> &Daemon {
        self.daemon.as_ref().expect("host daemon running")
    }

    pub fn d_mut(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("host daemon running")
    }

    /// A command run inside the host's namespace (`nsenter --net`).
    pub fn run(&self, args: &[&str]) -> Output {
        ns_cmd(&self.ns, args)
    }

    /// `ip …` inside the host's namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let o = Command::new("ip")
            .arg("-n")
            .arg(&self.ns)
            .args(args)
            .output()
            .expect("run ip");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// SIGKILLs the daemon and forgets it, keeping its roots and containers (for a restart
    /// with `start`; the cluster's Drop cleans the roots).
    pub fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill9();
            // its Drop would remove the roots
            std::mem::forget(d);
        }
    }

    /// Starts (or restarts, on the same roots) this host's daemon with `extra` flags.
    pub fn start(&mut self, extra: &[&str]) {
        assert!(self.daemon.is_none(), "daemon already running");
        let ns_path = PathBuf::from(format!("/run/netns/{}", self.ns));
        let d = Daemon::start_on_with(&self.root, extra, move |cmd| {
            let f = std::fs::File::open(&ns_path).expect("open host netns");
            // SAFETY: between fork and exec only setns(2) runs, on a descriptor opened before
            // the fork (moved into the closure, so it stays open until then).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        });
        // the socket is bound before the daemon joins the cluster and opens its state:
        // wait until the API answers
        let t0 = Instant::now();
        while d.http("GET", "/_ping", None).0 != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "berthd did not serve: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.daemon = Some(d);
    }
}

impl Host {
    /// Runs this host's berthd expecting it to exit with an error; answers its log.
    pub fn start_expect_failure(&self, extra: &[&str]) -> String {
        let f = std::fs::File::open(format!("/run/netns/{}", self.ns)).expect("open netns");
        let mut cmd = Command::new(super::bin_dir().join("berthd"));
        cmd.arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("run"))
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.root.join("run/berth.sock").display()
            ))
            .arg("--bridge")
            .arg(super::bridge_name(&self.root))
            .arg("--config-file")
            .arg(self.root.join("daemon.json"))
            .args(extra);
        std::fs::write(self.root.join("daemon.json"), "{}\n").expect("daemon.json");
        // SAFETY: only setns(2) between fork and exec, on a descriptor opened before.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berthd");
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                assert!(!st.success(), "berthd should have failed");
                break;
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berthd did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child.wait_with_output().expect("output");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

pub struct Cluster {
    pub tag: String,
    /// the LAN namespace (bridge `lan0` and etcd)
    pub lan: String,
    pub hosts: Vec<Host>,
    etcd: Option<Child>,
    etcd_dir: PathBuf,
}

fn ns_cmd(ns: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsenter")
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Cluster {
    /// The LAN, etcd on it, and `n` host namespaces (daemons not started yet).
    pub fn new(n: usize) -> Cluster {
        assert!(n < 250);
        let tag = short_rand();
        let lan = format!("btlan-{tag}");
        let etcd_dir = tmpdir("etcd");
        let mut c = Cluster {
            tag: tag.clone(),
            lan: lan.clone(),
            hosts: Vec::new(),
            etcd: None,
            etcd_dir,
        };
        sh(&["ip", "netns", "add", &lan]);
        sh(&["ip", "-n", &lan, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &lan, "link", "add", "lan0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &lan,
            "addr",
            "add",
            &format!("{ETCD_IP}/24"),
            "dev",
            "lan0",
        ]);
        sh(&["ip", "-n", &lan, "link", "set", "lan0", "up"]);
        for i in 0..n {
            let ns = format!("bth{i}-{tag}");
            let ip = format!("10.99.0.{}", i + 1);
            sh(&["ip", "netns", "add", &ns]);
            // push the namespace now, so Drop removes it even if a step below fails
            c.hosts.push(Host {
                ns: ns.clone(),
                ip: ip.clone(),
                // as short as `Daemon::start`'s roots (unix socket paths under it are near SUN_LEN)
                root: PathBuf::from(format!("/tmp/bt-{}h{i}", &tag[..6])),
                daemon: None,
            });
            std::fs::create_dir_all(&c.hosts[i].root).expect("mkdir host root");
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            // both ends are created inside our namespaces, never in the caller's
            let port = format!("p{i}");
            sh(&[
                "ip", "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            sh(&[
                "ip", "-n", &lan, "link", "set", &port, "master", "lan0", "up",
            ]);
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
        c.start_etcd();
        c
    }

    /// etcd's client URL as the hosts reach it.
    pub fn store_url(&self) -> String {
        format!("etcd://{ETCD_IP}:2379")
    }

    fn start_etcd(&mut self) {
        let log = std::fs::File::create(self.etcd_dir.join("etcd.log")).expect("etcd log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.lan))
            .arg("--")
            .arg("etcd")
            .args(["--name", "lan"])
            .arg("--data-dir")
            .arg(self.etcd_dir.join("data"))
            .args([
                "--listen-client-urls",
                &format!("http://{ETCD_IP}:2379,http://127.0.0.1:2379"),
                "--advertise-client-urls",
                &format!("http://{ETCD_IP}:2379"),
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                "lan=http://127.0.0.1:2380",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd (apt-get install etcd-server)");
        self.etcd = Some(child);
        let t0 = Instant::now();
        loop {
            let o = self.etcdctl(&["endpoint", "health"]);
            if o.status.success() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "etcd did not come up: {}",
                std::fs::read_to_string(self.etcd_dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `etcdctl` (v3 API) against the LAN's etcd, run inside the LAN namespace.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let mut full = vec!["env", "ETCDCTL_API=3", "etcdctl", "--endpoints"];
        let ep = format!("http://{ETCD_IP}:2379");
        full.push(&ep);
        full.extend_from_slice(args);
        ns_cmd(&self.lan, &full)
    }

    /// Starts every host's daemon with `extra` flags.
    pub fn start_all(&mut self, extra: &[&str]) {
        for h in &mut self.hosts {
            h.start(extra);
        }
    }

    /// The flags that join host `i` to the cluster, with a lease TTL of `ttl` seconds.
    pub fn cluster_flags(&self, i: usize, ttl: &str) -> Vec<String> {
        [
            "--cluster-store",
            &self.store_url(),
            "--cluster-advertise",
            &self.hosts[i].ip,
            "--cluster-lease-ttl",
            ttl,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Starts (or restarts, on its roots) host `i`'s daemon in cluster mode.
    pub fn start_in_cluster(&mut self, i: usize, ttl: &str) {
        let f = self.cluster_flags(i, ttl);
        let f: Vec<&str> = f.iter().map(String::as_str).collect();
        self.hosts[i].start(&f);
    }

    /// Starts every host's daemon in cluster mode, all at once.
    pub fn start_all_in_cluster(&mut self, ttl: &str) {
        let flags: Vec<Vec<String>> = (0..self.hosts.len())
            .map(|i| self.cluster_flags(i, ttl))
            .collect();
        std::thread::scope(|sc| {
            for (h, f) in self.hosts.iter_mut().zip(&flags) {
                sc.spawn(move || {
                    let f: Vec<&str> = f.iter().map(String::as_str).collect();
                    h.start(&f);
                });
            }
        });
    }

    /// etcd's pid while it runs (the clean-up checks).
    pub fn etcd_pid(&self) -> Option<u32> {
        self.etcd.as_ref().map(Child::id)
    }

    /// Kills etcd (SIGKILL, by pid).
    pub fn kill_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            // stops the daemon, removes its containers, unmounts its roots
            if h.daemon.take().is_none() {
                super::cleanup_root(&h.root);
            }
        }
        self.kill_etcd();
        for h in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &h.ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.lan])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.etcd_dir);
    }
}

/// The namespaces of `tag` still present (for the clean-up test).
pub fn netns_left(tag: &str) -> Vec<String> {
    let o = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(tag))
        .map(|l| l.to_string())
        .collect()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
