//! The Debian package (issue 13, point 5): `scripts/deb.sh` builds it from this build's
//! binaries; it is installed, upgraded and purged for real with dpkg into a root of the
//! test's own (`dpkg --root`, maintainer scripts run chrootless and honour DPKG_ROOT), and
//! the installed berthd runs a container that outlives the upgrade's daemon restart.

mod common;
use common::{bin_dir, bridge_name, repo_root, stdout, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn deb(version: &str, out: &Path) -> PathBuf {
    let o = Command::new(repo_root().join("scripts/deb.sh"))
        .env("BIN_DIR", bin_dir())
        .env("VERSION", version)
        .env("OUT_DIR", out)
        .env("COMPRESS", "none")
        .output()
        .expect("deb.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(stdout(&o).trim())
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    let o = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--force-confold",
        ])
        .args(args)
        .output()
        .expect("dpkg");
    assert!(
        o.status.success(),
        "dpkg {args:?}: {}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The installed berthd of `root` on the daemon roots of `d_root` (answers on its socket).
fn start_installed(root: &Path, d_root: &Path) -> Daemon {
    let sock = d_root.join("run/berth.sock");
    let _ = std::fs::remove_file(&sock);
    std::fs::write(d_root.join("daemon.json"), "{}\n").expect("config");
    let child = Command::new(root.join("usr/bin/berthd"))
        .arg("--data-root")
        .arg(d_root.join("data"))
        .arg("--exec-root")
        .arg(d_root.join("run"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .arg("--pidfile")
        .arg(d_root.join("berthd.pid"))
        .args(["--bridge", &bridge_name(d_root), "--dns", "127.0.0.1"])
        .arg("--config-file")
        .arg(d_root.join("daemon.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d_root.join("berthd.log"))
                .expect("log"),
        )
        .spawn()
        .expect("installed berthd");
    let d = Daemon::adopt(d_root, sock.clone(), child);
    assert!(
        common::eventually(20, || std::os::unix::net::UnixStream::connect(&sock)
            .is_ok()),
        "the installed berthd did not come up: {}",
        d.log()
    );
    d
}

#[test]
fn package_installs_upgrades_and_purges() {
    if !have("dpkg-deb") || !have("groupadd") {
        eprintln!("skipping: dpkg-deb or groupadd missing");
        return;
    }
    let work = common::tmpdir("deb");
    let v1 = deb("0.1.0-1", &work);
    let v2 = deb("0.1.0-2", &work);
    // contents: binaries, units, conffile, completions, man pages
    let list = stdout(
        &Command::new("dpkg-deb")
            .arg("-c")
            .arg(&v1)
            .output()
            .expect("-c"),
    );
    for f in [
        "./usr/bin/berth",
        "./usr/bin/berthd",
        "./usr/bin/berth-shim",
        "./usr/bin/berth-pause",
        "./lib/systemd/system/berthd.service",
        "./lib/systemd/system/berth.socket",
        "./etc/berth/daemon.json",
        "./usr/share/bash-completion/completions/berth",
        "./usr/share/zsh/vendor-completions/_berth",
        "./usr/share/man/man1/berth.1.gz",
        "./usr/share/man/man1/berth-run.1.gz",
        "./usr/share/man/man8/berthd.8.gz",
    ] {
        assert!(list.contains(f), "the package lacks {f}:\n{list}");
    }
    let info = stdout(
        &Command::new("dpkg-deb")
            .arg("-I")
            .arg(&v1)
            .output()
            .expect("-I"),
    );
    assert!(
        info.contains("Package: berth") && info.contains("Version: 0.1.0-1"),
        "{info}"
    );
    assert!(info.contains("conffiles"), "{info}");

    // a root of our own for dpkg
    let root = work.join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).expect("dpkg dir");
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).expect("dpkg dir");
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");
    std::fs::write(root.join("etc/gshadow"), "root:*::\n").expect("gshadow");
    dpkg(&root, &["-i", v1.to_str().expect("utf8")]);
    let group = std::fs::read_to_string(root.join("etc/group")).expect("group");
    assert!(
        group.contains("\nberth:x:"),
        "postinst made no berth group: {group}"
    );
    assert!(root.join("lib/systemd/system/berthd.service").exists());

    // the installed daemon runs a container …
    let d_root = Daemon::fresh_root();
    let mut d = start_installed(&root, &d_root);
    d.load_busybox();
    d.ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "300"]);
    let pid0 = d.inspect("keeper")["State"]["Pid"].clone();
    // … the admin edits the conffile; the upgrade keeps it and the daemon is restarted
    std::fs::write(root.join("etc/berth/daemon.json"), "{\"debug\": true}\n").expect("edit");
    dpkg(&root, &["-i", v2.to_str().expect("utf8")]);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/berth/daemon.json")).expect("conffile"),
        "{\"debug\": true}\n"
    );
    let st = stdout(
        &Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["-s", "berth"])
            .output()
            .expect("-s"),
    );
    assert!(st.contains("Version: 0.1.0-2"), "{st}");
    d.stop_daemon();
    std::mem::forget(d); // stopped; the next daemon owns the roots (and cleans them up)
    let d = start_installed(&root, &d_root);
    let s = d.inspect("keeper")["State"].clone();
    assert_eq!(
        s["Running"], true,
        "the container did not outlive the upgrade: {s}"
    );
    assert_eq!(s["Pid"], pid0);
    drop(d);

    // purge: no file of the package left, the group gone; /var/lib/berth (user data) stays
    dpkg(&root, &["--purge", "berth"]);
    let left: Vec<String> = walk(&root)
        .into_iter()
        .filter(|p| !p.starts_with(root.join("var/lib/dpkg")))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .filter(|p| !p.ends_with("/etc/group") && !p.ends_with("/etc/gshadow") && !p.ends_with('-'))
        .collect();
    assert!(left.is_empty(), "files left after purge: {left:?}");
    let group = std::fs::read_to_string(root.join("etc/group")).expect("group");
    assert!(!group.contains("berth:"), "{group}");
    let _ = std::fs::remove_dir_all(&work);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
