//! A private dockerd for side-by-side checks: its own data root, exec root, socket, pidfile and
//! bridge (no iptables), stopped by pid on drop. `None` when dockerd is not installed. Never
//! `--bridge none`: with that, dockerd deletes the host's `docker0`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Dockerd {
    pub root: PathBuf,
    child: Child,
    bridge: String,
}

fn ip(args: &[&str]) {
    let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
}

impl Dockerd {
    /// Starts a dockerd below `root/dockerd`; extra dockerd flags in `extra`.
    pub fn start(root: &Path) -> Option<Dockerd> {
        Dockerd::start_args(root, &[])
    }

    pub fn start_args(root: &Path, extra: &[&str]) -> Option<Dockerd> {
        if !Path::new("/usr/sbin/dockerd").exists() {
            eprintln!("skipping the docker engine check: dockerd is not installed");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let root = root.join("dockerd");
        std::fs::create_dir_all(&root).expect("mkdir dockerd root");
        // a bridge and a /24 of the benchmarking range of their own, per process and instance
        let tag = (std::process::id() * 7 + n) % 250;
        let bridge = format!("btdk{}x{n}", std::process::id() % 100_000);
        ip(&["link", "add", "name", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("198.18.{tag}.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let log = std::fs::File::create(root.join("log")).expect("dockerd log");
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--data-root", root.join("data").to_str().expect("utf8")])
            .args(["--exec-root", root.join("exec").to_str().expect("utf8")])
            .args(["--pidfile", root.join("pid").to_str().expect("utf8")])
            .args(["-H", &format!("unix://{}", root.join("d.sock").display())])
            .args(["--bridge", &bridge, "--iptables=false", "--ip-masq=false"])
            .args(extra)
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let d = Dockerd {
            root,
            child,
            bridge,
        };
        let ok = super::eventually(30, || d.docker(&["version"]).status.success());
        assert!(
            ok,
            "private dockerd did not come up: {}",
            std::fs::read_to_string(d.root.join("log")).unwrap_or_default()
        );
        Some(d)
    }

    /// `unix://…` of this dockerd's socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.root.join("d.sock").display())
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/local/bin/docker")
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("cfg"))
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // user networks the test made: dockerd leaves their br-* bridges when it stops
        let _ = self.docker(&["network", "prune", "-f"]);
        // SAFETY: the dockerd this test started, by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        // its containerd child follows it; unmount whatever it left below our root
        super::cleanup_root(&self.root);
        ip(&["link", "del", &self.bridge]);
    }
}
