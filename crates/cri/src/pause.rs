//! Starting and stopping a pod's `berth-pause` process, and its namespaces' paths.

use crate::{Error, Result};
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Which namespaces the pause process makes.
#[derive(Debug, Clone, Copy)]
pub struct Namespaces {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub pid: bool,
}

/// The arguments of `berth-pause` (separate for the unit test).
pub fn args(ns: Namespaces, hostname: &str) -> Vec<String> {
    let mut a = Vec::new();
    for (on, flag) in [
        (ns.net, "--net"),
        (ns.ipc, "--ipc"),
        (ns.uts, "--uts"),
        (ns.pid, "--pid"),
    ] {
        if on {
            a.push(flag.to_string());
        }
    }
    if ns.uts && !hostname.is_empty() {
        a.push("--hostname".into());
        a.push(hostname.to_string());
    }
    a
}

/// Starts the pause process; returns its pid once it holds its namespaces. `dir` (the pod's
/// run directory) is on its command line, so that a clean-up can tell whose it is.
pub async fn start(bin: &Path, ns: Namespaces, hostname: &str, dir: &Path) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args(ns, hostname))
        .arg("--pod-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot run {}: {e}", bin.display())))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line).await?;
    }
    let line = line.trim();
    let Some(pid) = line
        .strip_prefix("READY ")
        .and_then(|p| p.parse::<i32>().ok())
    else {
        let _ = child.kill().await;
        let msg = line.strip_prefix("ERROR ").unwrap_or(line);
        return Err(Error::Internal(format!("pod sandbox process: {msg}")));
    };
    // reap it whenever it goes
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// Kills the pause process and waits (up to 5 s) until it is gone.
pub async fn stop(pid: i32) {
    if pid <= 0 {
        return;
    }
    let p = nix::unistd::Pid::from_raw(pid);
    if !is_pause(pid) {
        return;
    }
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
    for _ in 0..500 {
        if !is_pause(pid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tracing::warn!(pid, "pod sandbox process did not go away");
}

/// Whether `pid` is (still) a live berth-pause (not a zombie, not a reused pid).
pub fn is_pause(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    head.ends_with("(berth-pause") && !tail.trim_start().starts_with('Z')
}

/// `/proc/<pid>/ns/<kind>`
pub fn ns_path(pid: i32, kind: &str) -> String {
    format!("/proc/{pid}/ns/{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_arguments() {
        let all = Namespaces {
            net: true,
            ipc: true,
            uts: true,
            pid: true,
        };
        assert_eq!(
            args(all, "h"),
            ["--net", "--ipc", "--uts", "--pid", "--hostname", "h"]
        );
        let host = Namespaces {
            net: false,
            ipc: true,
            uts: false,
            pid: false,
        };
        assert_eq!(args(host, "h"), ["--ipc"]);
        assert!(!is_pause(std::process::id() as i32));
    }
}
