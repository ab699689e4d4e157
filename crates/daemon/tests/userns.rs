//! `berthd --userns-remap`: root in the container is an unprivileged uid on the host.
//!
//! The tests change /etc/passwd, /etc/group, /etc/subuid and /etc/subgid; they run one at a
//! time (a lock) and put every file back and remove every user they added, even on failure.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ETC: Mutex<()> = Mutex::new(());

/// Restores /etc/subuid and /etc/subgid and deletes the users added, on drop.
struct EtcGuard {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    users: Vec<String>,
}

impl EtcGuard {
    fn new() -> EtcGuard {
        let files = ["/etc/subuid", "/etc/subgid"]
            .iter()
            .map(|f| (PathBuf::from(f), std::fs::read(f).ok()))
            .collect();
        EtcGuard {
            files,
            users: Vec::new(),
        }
    }
}

impl Drop for EtcGuard {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).status();
            let _ = Command::new("groupdel")
                .arg(u)
                .stderr(std::process::Stdio::null())
                .status();
        }
        for (p, data) in &self.files {
            match data {
                Some(d) => std::fs::write(p, d).expect("restore subid file"),
                None => {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(':').next() == Some(name))
}

/// A start for a new range beyond every listed one (and far from the usual 100000).
fn free_start() -> u32 {
    let mut end = 1_000_000u64;
    for f in ["/etc/subuid", "/etc/subgid"] {
        for l in std::fs::read_to_string(f).unwrap_or_default().lines() {
            let v: Vec<&str> = l.split(':').collect();
            if let (Some(s), Some(n)) = (
                v.get(1).and_then(|s| s.parse::<u64>().ok()),
                v.get(2).and_then(|s| s.parse::<u64>().ok()),
            ) {
                end = end.max(s + n);
            }
        }
    }
    end as u32
}

fn status_ids(pid: i64, key: &str) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

fn owner(p: &Path) -> (u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (md.uid(), md.gid())
}

#[test]
fn remap_to_a_named_user() {
    let _l = ETC.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = EtcGuard::new();
    let name = format!("btrm{}", std::process::id() % 100000);
    let st = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/bin/false",
            &name,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    g.users.push(name.clone());
    let start = free_start();
    for f in ["/etc/subuid", "/etc/subgid"] {
        let mut t = std::fs::read_to_string(f).unwrap_or_default();
        t.push_str(&format!("{name}:{start}:65536\n"));
        std::fs::write(f, t).unwrap();
    }

    let d = Daemon::start_args(&["--userns-remap", &name]);
    d.load_busybox();

    // /info: docker's SecurityOptions entry and the <uid>.<gid> data root
    let (_, _, body) = d.http("GET", "/info", None);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        info["SecurityOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "name=userns"),
        "{info}"
    );
    let root_dir = PathBuf::from(info["DockerRootDir"].as_str().unwrap());
    assert_eq!(root_dir, d.root.join(format!("data/{start}.{start}")));

    // root inside, the mapping as the kernel shows it
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "id; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines[0].starts_with("uid=0(root) gid=0(root)"), "{out}");
    assert_eq!(lines[1], format!("0 {start} 65536"), "{out}");
    assert_eq!(lines[2], format!("0 {start} 65536"), "{out}");

    // seen from the host: the process runs as the mapped uid; what it writes is the mapped
    // uid's; a set-uid-root binary it makes is set-uid to an unprivileged host uid
    d.ok(&[
        "run", "-d", "--name", "c1", "busybox", "sh", "-c",
        "touch /made && cp /bin/busybox /id && chmod 4755 /id && echo ok > /ready && exec sleep 600",
    ]);
    let upper = PathBuf::from(
        d.inspect("c1")["GraphDriver"]["Data"]["UpperDir"]
            .as_str()
            .unwrap(),
    );
    assert!(
        eventually(10, || upper.join("ready").exists()),
        "container never got ready"
    );
    let pid = d.inspect("c1")["State"]["Pid"].as_i64().unwrap();
    assert_eq!(status_ids(pid, "Uid:"), vec![start; 4]);
    assert_eq!(status_ids(pid, "Gid:"), vec![start; 4]);
    assert_eq!(owner(&upper.join("made")), (start, start));
    let suid = std::fs::metadata(upper.join("id")).unwrap();
    assert_eq!((suid.uid(), suid.mode() & 0o7777), (start, 0o4755));
    assert_ne!(
        suid.uid(),
        0,
        "a set-uid file of the container is root's on the host"
    );
    // the attack: root in the container makes a set-uid-root binary (the host's `id`, copied
    // in); an unprivileged host process that can reach it (here a uid in the remapped group)
    // runs it: without remapping that is euid 0 on the host, now the container root's uid
    d.ok(&["cp", "/usr/bin/id", "c1:/hostid"]);
    d.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "chown 0:0 /hostid && chmod 4755 /hostid",
    ]);
    let o = Command::new("setpriv")
        .arg(format!("--reuid={}", start + 4242))
        .arg(format!("--regid={start}"))
        .arg("--clear-groups")
        .arg(upper.join("hostid"))
        .arg("-u")
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), start.to_string(), "{}", stderr(&o));
    // image files are shifted too
    let lower = d.inspect("c1")["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        owner(&Path::new(&lower).join("bin/busybox")),
        (start, start)
    );
    // /etc/hosts is the container root's to edit
    d.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "echo 10.9.9.9 extra >> /etc/hosts",
    ]);

    // exec: same user namespace, root inside, mapped uid outside
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let out = d.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "readlink /proc/self/ns/user; id -u; grep ^Uid: /proc/self/status",
    ]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], ns.to_string_lossy(), "{out}");
    assert_eq!(l[1], "0");
    assert!(l[2].split_whitespace().skip(1).all(|x| x == "0"), "{out}");
    let host_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(ns, host_ns);
    let out = d.ok(&["exec", "-u", "1000", "c1", "id", "-u"]);
    assert_eq!(out.trim(), "1000");

    // commit: owners go back to container ids (0 and a set-uid root file, as made inside)
    d.ok(&["commit", "c1", "committed"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "committed",
        "stat",
        "-c",
        "%u %g %a",
        "/id",
        "/made",
    ]);
    assert_eq!(out, "0 0 4755\n0 0 644\n");

    // volumes: a new volume belongs to the container's root
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "v1:/data",
        "busybox",
        "sh",
        "-c",
        "touch /data/x && stat -c %u /data/x",
    ]);
    assert_eq!(out.trim(), "0");
    let mp = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"]);
    let mp = PathBuf::from(mp.trim());
    assert_eq!(owner(&mp), (start, start));
    assert_eq!(owner(&mp.join("x")), (start, start));

    // a read-only bind of a host dir (its locked mount flags kept) and a read-only rootfs
    let host_dir = d.root.join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from host\n").unwrap();
    let bind = format!("{}:/h:ro", host_dir.display());
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /h/f; touch /h/g 2>/dev/null || echo refused",
    ]);
    assert_eq!(out, "from host\nrefused\n");
    let o = d.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );

    // docker's refusals with a private user namespace, and the per-container opt-out
    let o = d.berth(&["run", "--rm", "--privileged", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("privileged mode is incompatible with user namespaces"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "--network", "host", "busybox", "true"]);
    assert!(
        stderr(&o)
            .contains("cannot share the host's network namespace when user namespaces are enabled"),
        "{}",
        stderr(&o)
    );
    if let Some(o) = d.docker(&["run", "--rm", "--pid", "host", "busybox", "true"]) {
        assert!(
            stderr(&o).contains("cannot share the host PID namespace"),
            "{}",
            stderr(&o)
        );
    }
    if let Some(out) = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--userns",
            "host",
            "busybox",
            "cat",
            "/proc/self/uid_map",
        ],
    ) {
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["0", "0", "4294967295"]
        );
        let out = docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "--userns",
                "host",
                "--privileged",
                "busybox",
                "id",
                "-u",
            ],
        )
        .unwrap();
        assert_eq!(out.trim(), "0");
    }

    // a container sharing another's network namespace
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:c1",
        "busybox",
        "sh",
        "-c",
        "id -u; readlink /proc/self/ns/user; ping -c1 -W2 127.0.0.1 >/dev/null && echo rawsock",
    ]);
    // same user namespace as c1, so its root has its capabilities (raw sockets) there
    assert_eq!(out, format!("0\n{}\nrawsock\n", ns.to_string_lossy()));
    // sharing c1's pid namespace: its user namespace too (proc can be mounted), c1's
    // processes visible
    if let Some(out) = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--pid",
            "container:c1",
            "busybox",
            "sh",
            "-c",
            "id -u; readlink /proc/self/ns/user; ps -o comm",
        ],
    ) {
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(l[0], "0", "{out}");
        assert_eq!(l[1], ns.to_string_lossy(), "{out}");
        assert!(l.contains(&"sleep"), "{out}");
    }
    // a restarted daemon (same remap) finds its state in the same <uid>.<gid> root; the
    // container kept running and still execs in its user namespace
    let mut d = d;
    d.kill9();
    let d = d.restarted(&["--userns-remap", &name]);
    assert_eq!(d.inspect("c1")["State"]["Pid"].as_i64(), Some(pid));
    let out = d.ok(&["exec", "c1", "readlink", "/proc/self/ns/user"]);
    assert_eq!(out.trim(), ns.to_string_lossy());
    d.ok(&["rm", "-f", "c1"]);
    drop(d);
}

#[test]
fn remap_default_user() {
    let _l = ETC.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = EtcGuard::new();
    let existed = user_exists("berthremap");
    if !existed {
        g.users.push("berthremap".into());
    }
    let d = Daemon::start_args(&["--userns-remap", "default"]);
    assert!(user_exists("berthremap"));
    let sub = std::fs::read_to_string("/etc/subuid").unwrap();
    let line = sub
        .lines()
        .find(|l| l.starts_with("berthremap:"))
        .expect("a berthremap range in /etc/subuid");
    let start: u32 = line.split(':').nth(1).unwrap().parse().unwrap();
    assert!(std::fs::read_to_string("/etc/subgid")
        .unwrap()
        .contains(&format!("berthremap:{start}:65536")));
    d.load_busybox();
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", &start.to_string(), "65536"]
    );
    assert!(d
        .root
        .join(format!("data/{start}.{start}/overlay2"))
        .is_dir());
    drop(d);
}

#[test]
fn bad_remap_values_stop_the_daemon() {
    let _l = ETC.lock().unwrap_or_else(|e| e.into_inner());
    let root = tmpdir("usernsbad");
    for (v, want) in [
        ("a:b:c", "Invalid user/group specification"),
        ("no-such-user-xyz", "not found in /etc/passwd"),
        ("root", "No subuid ranges found for user \"root\""),
    ] {
        let o = Command::new(bin_dir().join("berthd"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("s.sock").display()))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .args(["--userns-remap", v])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{v}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&root);
}
