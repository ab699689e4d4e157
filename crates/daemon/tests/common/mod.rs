//! Test harness: a real `berthd` on temporary roots and socket, the `berth` CLI and the real
//! docker CLI pointed at it, raw HTTP on the socket, and a clean-up that leaves no mount,
//! process or cgroup behind.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod build;
pub mod cluster;
pub mod dockerd;
pub mod registry;
pub mod sdk;

/// A fresh directory under /tmp (short paths: unix sockets have a 108-byte limit).
pub fn tmpdir(what: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/bt-{what}-{}", short_rand()));
    std::fs::create_dir_all(&d).expect("mkdir tmpdir");
    d
}

/// `target/debug` (where cargo put the binaries next to this test).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BERTH_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox image archive, built once per test process by scripts/make-busybox-image.sh.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = bin_dir().join(format!("busybox-test-{}.tar", std::process::id()));
        let st = Command::new("bash")
            .arg(repo_root().join("scripts/make-busybox-image.sh"))
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("run make-busybox-image.sh");
        assert!(st.success(), "make-busybox-image.sh failed");
        out
    })
}

pub struct Daemon {
    pub root: PathBuf,
    pub sock: PathBuf,
    child: Option<Child>,
}

fn short_rand() -> String {
    let mut b = [0u8; 4];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Daemon {
    /// A new daemon on fresh roots under /tmp (short paths: unix sockets have a 108-byte limit).
    pub fn start() -> Daemon {
        let root = PathBuf::from(format!("/tmp/bt-{}", short_rand()));
        std::fs::create_dir_all(&root).expect("mkdir root");
        Daemon::start_on(&root)
    }

    /// A new daemon with extra `berthd` flags.
    pub fn start_args(extra: &[&str]) -> Daemon {
        let root = PathBuf::from(format!("/tmp/bt-{}", short_rand()));
        std::fs::create_dir_all(&root).expect("mkdir root");
        Daemon::start_on_args(&root, extra)
    }

    /// A daemon on existing roots (to test restarts).
    pub fn start_on(root: &Path) -> Daemon {
        Daemon::start_on_args(root, &[])
    }

    pub fn start_on_args(root: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_on_with(root, extra, |_| {})
    }

    /// A new daemon whose command the caller adjusts before the spawn (inherited
    /// descriptors, resource limits via `pre_exec`).
    pub fn start_with(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Daemon {
        let root = PathBuf::from(format!("/tmp/bt-{}", short_rand()));
        std::fs::create_dir_all(&root).expect("mkdir root");
        Daemon::start_on_with(&root, extra, adjust)
    }

    pub fn start_on_with(root: &Path, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Daemon {
        let sock = root.join("run/berth.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("berthd.log"))
            .expect("daemon log");
        let mut cmd = Command::new(bin_dir().join("berthd"));
        cmd.arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(root.join("berthd.pid"))
            .arg("--log-level")
            .arg("debug")
            .arg("--bridge")
            .arg(bridge_name(root))
            // names the daemon does not know are forwarded to loopback only, never to the
            // host's resolvers (tests send no traffic off this machine)
            .args(if extra.contains(&"--dns") {
                &[][..]
            } else {
                &["--dns", "127.0.0.1"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // a configuration file of the test's own (`{}` unless the test wrote one), never the
        // host's /etc/berth/daemon.json
        if !extra.contains(&"--config-file") {
            let cf = root.join("daemon.json");
            if !cf.exists() {
                std::fs::write(&cf, "{}\n").expect("write daemon.json");
            }
            cmd.arg("--config-file").arg(cf);
        }
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn berthd");
        let d = Daemon {
            root: root.to_path_buf(),
            sock,
            child: Some(child),
        };
        let t0 = Instant::now();
        while UnixStream::connect(&d.sock).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "berthd did not come up: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// `berth -H … args`
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("berth"))
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// `berth` with `input` on stdin.
    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(bin_dir().join("berth"))
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("berth output")
    }

    /// Runs berth and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({:?}): {}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The real docker CLI against this daemon, if installed.
    pub fn docker(&self, args: &[&str]) -> Option<Output> {
        let docker = Path::new("/usr/local/bin/docker");
        if !docker.exists() {
            eprintln!("skipping docker CLI check: /usr/local/bin/docker is not installed");
            return None;
        }
        Some(
            Command::new(docker)
                .env("DOCKER_HOST", self.host())
                .env("DOCKER_CONFIG", self.root.join("docker-config"))
                .env_remove("DOCKER_API_VERSION")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run docker"),
        )
    }

    pub fn load_busybox(&self) {
        self.ok(&["load", "-i", busybox_tar().to_str().expect("utf8 path")]);
    }

    /// Raw HTTP/1.1 request; returns (status, head, body). Reads until the server closes.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, Vec<u8>) {
        let body = body.unwrap_or("");
        raw_http(
            &self.sock,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body.as_bytes(),
            Duration::from_secs(30),
        )
    }

    /// Raw request with a binary body.
    pub fn http_body(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        raw_http(
            &self.sock,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
            Duration::from_secs(30),
        )
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let (st, _, body) = self.http("GET", &format!("/containers/{name}/json"), None);
        assert_eq!(
            st,
            200,
            "inspect {name}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("inspect json")
    }

    /// A daemon the test spawned its own way (e.g. through a socket activator) on `root`,
    /// answering on `sock`: cleaned up like the others when dropped.
    pub fn adopt(root: &Path, sock: PathBuf, child: Child) -> Daemon {
        Daemon {
            root: root.to_path_buf(),
            sock,
            child: Some(child),
        }
    }

    /// A fresh root directory for a daemon under /tmp (short: unix socket paths).
    pub fn fresh_root() -> PathBuf {
        let root = PathBuf::from(format!("/tmp/bt-{}", short_rand()));
        std::fs::create_dir_all(&root).expect("mkdir root");
        root
    }

    /// A new daemon (with `extra` flags) on this one's roots, once this one is stopped or
    /// killed: the new one owns the roots from now on and cleans them up.
    pub fn restarted(self, extra: &[&str]) -> Daemon {
        let root = self.root.clone();
        std::mem::forget(self);
        Daemon::start_on_args(&root, extra)
    }

    /// SIGKILL the daemon (containers and shims stay).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon gracefully, keeping its roots.
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling the daemon we spawned, by pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 request on a unix socket, read to the end (`Connection: close` is added):
/// `head` is the request line and header lines, each ending in CRLF. Answers the status (0
/// when there is none), the response head and the body, de-chunked when the head says chunked.
pub fn raw_http(sock: &Path, head: &str, body: &[u8], timeout: Duration) -> (u16, String, Vec<u8>) {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .expect("write head");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    s.set_read_timeout(Some(timeout)).ok();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = resp[(split + 4).min(resp.len())..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// The payload of a chunked HTTP body (as far as it is whole).
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if n == 0 || b.len() < nl + 2 + n {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[(nl + 4 + n).min(b.len())..];
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Remove every container through the API so shims, mounts and cgroups go.
            let o = self.berth(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
            self.stop_daemon();
        }
        cleanup_root(&self.root);
    }
}

/// The default bridge of the daemon on `root`: `bt-<hex>` from `/tmp/bt-<hex>`, so a restarted
/// daemon finds its own bridge and daemons side by side never share one.
pub fn bridge_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    name.truncate(15);
    name
}

/// Removes the bridges of the networks recorded under `root` and the daemon's nft table.
fn cleanup_network(root: &Path) {
    let mut bridges = vec![bridge_name(root)];
    if let Ok(rd) = std::fs::read_dir(root.join("data/network")) {
        for e in rd.flatten() {
            let rec: serde_json::Value = std::fs::read(e.path())
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or_default();
            if let Some(b) = rec["bridge"].as_str().filter(|b| !b.is_empty()) {
                bridges.push(b.to_string());
            }
        }
    }
    bridges.sort();
    bridges.dedup();
    for b in &bridges {
        let _ = Command::new("ip")
            .args(["link", "del", b])
            .stderr(Stdio::null())
            .status();
    }
    let table = format!("berth_{}", bridge_name(root).replace(['-', '.'], "_"));
    for family in ["ip", "ip6"] {
        let _ = Command::new("nft")
            .args(["delete", "table", family, &table])
            .stderr(Stdio::null())
            .status();
    }
    // the accepts the daemon put in docker's DOCKER-USER chain, if docker's firewall is here
    let tag = format!("comment \"berth:{table}\"");
    if let Ok(o) = Command::new("nft")
        .args(["-a", "list", "chain", "ip", "filter", "DOCKER-USER"])
        .stderr(Stdio::null())
        .output()
    {
        for l in String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains(&tag))
        {
            if let Some(h) = l.rsplit("# handle ").next() {
                let _ = Command::new("nft")
                    .args([
                        "delete",
                        "rule",
                        "ip",
                        "filter",
                        "DOCKER-USER",
                        "handle",
                        h.trim(),
                    ])
                    .status();
            }
        }
    }
}

/// Kills shims started under `root`, unmounts whatever is mounted below it, removes the cgroups
/// of its containers, its bridges and nft table, then deletes it.
pub fn cleanup_root(root: &Path) {
    let root_s = root.to_string_lossy().into_owned();
    let ids: Vec<String> = std::fs::read_dir(root.join("data/containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            // shims, and the pause processes of CRI pods (`--pod-dir <root>/run/cri/pods/…`)
            if (cmd.starts_with(&*bin_dir().join("berth-shim").to_string_lossy())
                || cmd.starts_with(&*bin_dir().join("berth-pause").to_string_lossy()))
                && cmd.contains(&root_s)
            {
                // SAFETY: a shim this test's daemon started (its command line names our root).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root_s))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        if let Ok(c) = std::ffi::CString::new(t) {
            // SAFETY: unmounting a path below this test's own root.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    for id in &ids {
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join("berth").join(id));
            }
        }
    }
    cleanup_network(root);
    let _ = std::fs::remove_dir_all(root);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it is true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The real docker CLI against `d`, insisting on success; None when docker is not installed.
pub fn docker_ok(d: &Daemon, args: &[&str]) -> Option<String> {
    let o = d.docker(args)?;
    assert!(
        o.status.success(),
        "docker {args:?} failed ({:?}): {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    Some(stdout(&o))
}
