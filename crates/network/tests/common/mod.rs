//! Scaffolding of the root tests: namespaces, bridges and tables that go away with the test.
//! Addresses come from the benchmark range 198.18.0.0/15 only.

#![allow(dead_code)]

use berth_network::{link, nat::Nat};
use std::path::PathBuf;
use std::process::Command;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (returns from) a test that needs root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub fn rand_hex(n: usize) -> String {
    let v: u64 = rand::random();
    format!("{v:016x}")[..n].to_string()
}

/// `ip netns add berthtest-<rand>`; deleted on drop.
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!("berthtest-{}", rand_hex(8));
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name}");
        Netns {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        }
    }

    /// `ip -n <ns> ARGS…`, stdout
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("ip -n");
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command inside the namespace; true if it exited 0.
    pub fn exec_ok(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A host link deleted on drop (missing is fine).
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Err(e) = link::delete_link(&self.0) {
            eprintln!("cleanup of link {}: {e}", self.0);
        }
    }
}

/// An nft table removed on drop.
pub struct TableGuard(pub Nat);

impl Drop for TableGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove() {
            eprintln!("cleanup of table {}: {e}", self.0.table());
        }
    }
}

/// 198.18.<n>.0/24 or 198.19.<n>.0/24, a third octet picked at random; `.1` is the gateway.
pub fn test_net(second: u8) -> [u8; 3] {
    let n: u8 = rand::random();
    [198, second, n]
}

pub fn sys_read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}
