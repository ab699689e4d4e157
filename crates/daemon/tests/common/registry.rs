//! A real registry server for the tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 and a free port, with its storage in a temporary directory, stopped by pid on drop.
//! `None` when the package is not installed.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Registry {
    /// `127.0.0.1:<port>`, the registry's host part in image references.
    pub addr: String,
    pub dir: PathBuf,
    child: Child,
    /// more temporary directories removed on drop (an htpasswd file, certificates…)
    pub extra: Vec<PathBuf>,
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Option<Registry> {
        Registry::start_with("")
    }

    /// A registry whose users are checked with htpasswd (bcrypt, made by `htpasswd -B`).
    pub fn start_htpasswd(user: &str, password: &str) -> Option<Registry> {
        let dir = super::tmpdir("reg-auth");
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apache2-utils) is needed for the auth tests");
        assert!(out.status.success(), "htpasswd failed");
        let file = dir.join("htpasswd");
        std::fs::write(&file, &out.stdout).expect("write htpasswd");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            file.display()
        );
        let r = Registry::start_with(&auth);
        match r {
            Some(mut r) => {
                r.extra.push(dir);
                Some(r)
            }
            None => {
                let _ = std::fs::remove_dir_all(&dir);
                None
            }
        }
    }

    /// A registry with extra top-level YAML configuration (an `auth:` section, say).
    pub fn start_with(extra_yaml: &str) -> Option<Registry> {
        Registry::start_opts(extra_yaml, false)
    }

    /// As [`Registry::start_with`], with the access log on (one line a request, in
    /// [`Registry::log`]: `"GET /v2/a/b/manifests/1 HTTP/1.1" 200 …`), for counting requests.
    pub fn start_logged(extra_yaml: &str) -> Option<Registry> {
        Registry::start_opts(extra_yaml, true)
    }

    fn config(dir: &Path, addr: &str, extra_yaml: &str, access_log: bool) -> String {
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra_yaml}",
            !access_log,
            dir.join("data").display(),
        )
    }

    fn spawn(dir: &Path, config: &str) -> Child {
        let bin = Path::new("/usr/bin/docker-registry");
        std::fs::write(dir.join("config.yml"), config).expect("write registry config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .expect("registry log");
        Command::new(bin)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry")
    }

    fn start_opts(extra_yaml: &str, access_log: bool) -> Option<Registry> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            eprintln!("skipping the registry test: docker-registry is not installed");
            return None;
        }
        let dir = super::tmpdir("reg");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Registry::spawn(&dir, &Registry::config(&dir, &addr, extra_yaml, access_log));
        let r = Registry {
            addr,
            dir,
            child,
            extra: Vec::new(),
        };
        let up = super::eventually(20, || TcpStream::connect(&r.addr).is_ok());
        assert!(up, "registry did not come up: {}", r.log());
        Some(r)
    }

    /// Stops the registry and starts it again on the same address and storage with another
    /// configuration (its log goes on in the same file).
    pub fn restart_with(&mut self, extra_yaml: &str, access_log: bool) {
        // SAFETY: the registry this test started, by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let cfg = Registry::config(&self.dir, &self.addr, extra_yaml, access_log);
        self.child = Registry::spawn(&self.dir, &cfg);
        let up = super::eventually(20, || TcpStream::connect(&self.addr).is_ok());
        assert!(up, "registry did not come up again: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// An image reference on this registry: `127.0.0.1:<port>/<path>`.
    pub fn image(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: the registry this test started, by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        for d in &self.extra {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
