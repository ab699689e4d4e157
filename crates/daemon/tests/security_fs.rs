//! Filesystem escapes (issue 10, points 3, 4, 5, 10): `cp` racing a symlink swap, volume
//! copy-up through an image symlink, the data root open to other host users, and the small
//! ones (mount-point modes, trailing-slash links, `cp` into `/sys`). Each test is the attack;
//! it fails on a berthd without the defence.

mod common;
use common::{docker_ok, stderr, stdout, Daemon};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles a tiny static C program (runs in the busybox image, which has no libc).
fn static_prog(dir: &Path, name: &str, src: &str) -> Option<PathBuf> {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .ok()?;
    if !st.success() {
        eprintln!("gcc -static failed: skipping");
        return None;
    }
    Some(out)
}

/// Swaps two names (a directory and a symlink) forever: `swap A B`.
const SWAP_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
"#;

/// Prints its effective uid.
const EUID_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("euid=%d\n", (int)geteuid()); return 0; }
"#;

/// A one-file tar (`name` holding `data`), as `docker cp` sends it.
fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

/// Every file below `dir` (the host side of the attack must stay as the test made it).
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

/// Point 3: a process in the container swaps `/w/d` (a directory) with `/w/l` (a symlink to
/// a host directory) in a tight loop while `cp` writes into and reads from `/w/d/...`, and while
/// `export`, `diff` and `commit --pause=false` walk its tree. Without in-root resolution by
/// descriptor, some copies land in / come from the host directory.
/// A running container `race` swapping `/w/d` (a directory) and `/w/l` (a link to a fresh
/// host directory holding `secret` and `hostonly.txt`) forever. `None` without gcc.
fn race_container(d: &Daemon) -> Option<(PathBuf, Vec<String>)> {
    d.load_busybox();
    let bin = d.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    static_prog(&bin, "swap", SWAP_C)?;
    // the host side: a directory with a secret, and a `sub` dir a write could land in
    let host = d.root.join("hostside");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("secret"), "HOSTSECRET\n").unwrap();
    std::fs::write(host.join("hostonly.txt"), "HOSTSECRET\n").unwrap();
    let before = files_below(&host);
    let h = host.to_str().unwrap();
    let script = format!(
        "mkdir -p /w/d/sub && echo container > /w/d/secret && ln -s {h} /w/l && exec /t/swap /w/d /w/l"
    );
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "race",
        "-v",
        &format!("{}:/t:ro", bin.display()),
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::eventually(10, || {
        d.berth(&["exec", "race", "ls", "/w/l/secret"])
            .status
            .success()
            || d.berth(&["exec", "race", "ls", "/w/d/secret"])
                .status
                .success()
    }));
    Some((host, before))
}

#[test]
fn cp_racing_a_symlink_swap_never_reaches_the_host() {
    let d = Daemon::start();
    let Some((host, before)) = race_container(&d) else {
        return;
    };
    let tar = one_file_tar("pwned", b"from cp\n");
    let mut leaked = Vec::new();
    for i in 0..400 {
        // PUT into /w/d/sub: the `d` step is the one swapped
        let _ = d.http_body("PUT", "/containers/race/archive?path=/w/d/sub", &tar);
        // GET /w/d/secret
        let (st, _, body) = d.http("GET", "/containers/race/archive?path=/w/d/secret", None);
        if st == 200 && String::from_utf8_lossy(&body).contains("HOSTSECRET") {
            leaked.push(format!("GET #{i} read the host's secret"));
        }
        // HEAD on the host path's `sub`: a stat of the host
        if files_below(&host) != before {
            leaked.push(format!(
                "PUT #{i} wrote into the host: {:?}",
                files_below(&host)
            ));
            break;
        }
        if !leaked.is_empty() {
            break;
        }
    }
    // the same through the docker CLI (its own stat + PUT/GET sequence)
    let f = d.root.join("pwned2");
    std::fs::write(&f, "from docker cp\n").unwrap();
    let out = d.root.join("out");
    for i in 0..30 {
        if !leaked.is_empty() {
            break;
        }
        let _ = d.docker(&["cp", f.to_str().unwrap(), "race:/w/d/sub/"]);
        let _ = std::fs::remove_file(&out);
        if let Some(o) = d.docker(&["cp", "race:/w/d/secret", out.to_str().unwrap()]) {
            if o.status.success()
                && std::fs::read_to_string(&out)
                    .unwrap_or_default()
                    .contains("HOSTSECRET")
            {
                leaked.push(format!("docker cp #{i} read the host's secret"));
            }
        }
        if files_below(&host) != before {
            leaked.push(format!(
                "docker cp #{i} wrote into the host: {:?}",
                files_below(&host)
            ));
        }
    }
    // the copies did happen, inside the container (the swap goes on while we look, and may
    // move the directory between the two reads: look again until one read finds it)
    let mut seen = String::new();
    common::eventually(10, || {
        seen = stdout(&d.berth(&[
            "exec",
            "race",
            "sh",
            "-c",
            "cat /w/d/sub/pwned /w/l/sub/pwned 2>/dev/null",
        ]));
        seen.contains("from cp")
    });
    let _ = d.berth(&["rm", "-f", "race"]);
    assert!(leaked.is_empty(), "{leaked:?}");
    assert!(
        seen.contains("from cp"),
        "no copy landed in the container: {}",
        seen
    );
}

/// Point 3 (the same race): `export`, `diff` and `commit --pause=false` walk the container's
/// tree while it swaps a directory for a link to the host.
#[test]
fn export_diff_commit_racing_a_symlink_swap_stay_in_the_container() {
    let d = Daemon::start();
    let Some((host, before)) = race_container(&d) else {
        return;
    };
    let mut leaked: Vec<String> = Vec::new();
    // export, diff and commit (without pause) walk the container's tree while it swaps
    let has = |b: &[u8], pat: &[u8]| b.windows(pat.len()).any(|w| w == pat);
    for i in 0..40 {
        if !leaked.is_empty() {
            break;
        }
        let (_, _, body) = d.http("GET", "/containers/race/export", None);
        if has(&body, b"HOSTSECRET") || has(&body, b"hostonly") {
            leaked.push(format!("export #{i} holds host files"));
        }
        let (_, _, body) = d.http("GET", "/containers/race/changes", None);
        if has(&body, b"hostonly") {
            leaked.push(format!("diff #{i} lists host files"));
        }
        if i % 4 == 0 {
            let (st, _, body) = d.http(
                "POST",
                &format!("/commit?container=race&pause=0&repo=leak&tag=t{i}"),
                Some("{}"),
            );
            assert!(
                st < 300,
                "{st} {}\n{}",
                String::from_utf8_lossy(&body),
                d.log()
            );
            let (_, _, body) = d.http("GET", &format!("/images/leak:t{i}/get"), None);
            if has(&body, b"HOSTSECRET") || has(&body, b"hostonly") {
                leaked.push(format!("commit #{i} put host files in the image"));
            }
        }
    }
    let _ = d.berth(&["rm", "-f", "race"]);
    assert!(leaked.is_empty(), "{leaked:?}");
    assert_eq!(files_below(&host), before);
}

/// Point 4: an image whose `/a` is a symlink to a host directory and which declares
/// `VOLUME ["/a/sub"]`: the fresh volume must be filled from the image, never from the host.
#[test]
fn volume_copy_up_does_not_follow_an_image_symlink_to_the_host() {
    let d = Daemon::start();
    d.load_busybox();
    let host = d.root.join("hostvol");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("sub/secret.txt"), "HOSTSECRET\n").unwrap();
    let h = host.to_str().unwrap();
    let o = d.berth(&["run", "--name", "mk", "busybox", "ln", "-s", h, "/a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.berth(&["commit", "--change", r#"VOLUME ["/a/sub"]"#, "mk", "volimg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "volimg",
        "sh",
        "-c",
        "cat /a/sub/secret.txt; ls -la /a/sub; true",
    ]);
    assert!(
        !stdout(&o).contains("HOSTSECRET"),
        "host file copied into the volume: {}",
        stdout(&o)
    );
    // the same through the docker CLI, with a named volume
    if let Some(o) = d.docker(&[
        "run",
        "--rm",
        "-v",
        "named:/a/sub",
        "volimg",
        "sh",
        "-c",
        "cat /a/sub/secret.txt; true",
    ]) {
        assert!(!stdout(&o).contains("HOSTSECRET"), "{}", stdout(&o));
    }
    // the host side is untouched
    assert_eq!(
        files_below(&host),
        vec!["sub".to_string(), "sub/secret.txt".to_string()]
    );
    // the volume is mounted where the link leads inside the container (docker: in-root)
    let o = d.berth(&[
        "run",
        "--rm",
        "volimg",
        "sh",
        "-c",
        &format!("echo x > /a/sub/y && ls {h}/sub"),
    ]);
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains('y'), "{}", stdout(&o));
    assert!(!host.join("sub/y").exists());
}

/// Runs `args` as the host user nobody. Through a shell: setpriv's own `execve` still holds
/// root's capabilities (it looks the program up with CAP_DAC_OVERRIDE), the shell does not.
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .args(["/bin/sh", "-c", "exec \"$0\" \"$@\""])
        .args(args)
        .output()
        .expect("setpriv")
}

/// Point 5: an unprivileged host user walks into the data root: reads a container's config
/// (its env secrets), its log, a volume, and runs a set-uid binary the container made.
#[test]
fn data_root_is_closed_to_other_host_users() {
    let d = Daemon::start();
    d.load_busybox();
    let bin = d.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&d.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(_) = static_prog(&bin, "euid", EUID_C) else {
        return;
    };
    let o = d.berth(&[
        "run", "-d", "--name", "suid", "-e", "SECRET=hunter2", "-v", "vol1:/vol", "-v",
        &format!("{}:/t:ro", bin.display()),
        "busybox", "sh", "-c",
        "cp /t/euid /suid && chmod 4755 /suid && echo volsecret > /vol/s && echo logsecret && sleep 300",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(common::eventually(10, || d
        .berth(&["exec", "suid", "ls", "/suid", "/vol/s"])
        .status
        .success()));
    let data = d.root.join("data");
    let cdir = data.join("containers").join(&id);
    let mut open = Vec::new();
    for p in [
        data.join("containers"),
        data.join("overlay2"),
        data.join("volumes"),
        data.join("image"),
        data.clone(),
    ] {
        if as_nobody(&["ls", p.to_str().unwrap()]).status.success() {
            open.push(format!("ls {}", p.display()));
        }
    }
    for f in std::fs::read_dir(&cdir).unwrap().flatten() {
        let p = f.path();
        if p.is_file() && as_nobody(&["cat", p.to_str().unwrap()]).status.success() {
            open.push(format!("cat {}", p.display()));
        }
    }
    let vol = data.join("volumes/vol1/_data/s");
    if as_nobody(&["cat", vol.to_str().unwrap()]).status.success() {
        open.push(format!("cat {}", vol.display()));
    }
    // the set-uid binary, through the merged rootfs and the upper dir
    let graph = d.inspect("suid")["GraphDriver"]["Data"].clone();
    for key in ["MergedDir", "UpperDir"] {
        let dir = graph[key].as_str().unwrap_or_default();
        assert!(!dir.is_empty(), "{graph}");
        let prog = format!("{dir}/suid");
        assert!(Path::new(&prog).exists(), "{prog}");
        let o = as_nobody(&[&prog]);
        if stdout(&o).contains("euid=0") {
            open.push(format!("{prog} ran with euid 0"));
        }
    }
    // the exec root (bundles: the spec with the env)
    let run = d.root.join("run");
    if as_nobody(&["ls", run.join("containers").to_str().unwrap()])
        .status
        .success()
        || as_nobody(&["ls", run.to_str().unwrap()]).status.success()
    {
        open.push(format!("ls {}", run.display()));
    }
    // inside the container set-uid still works, as docker's (only the host view is nosuid)
    let inside = d.berth(&["exec", "-u", "65534", "suid", "/suid"]);
    let _ = d.berth(&["rm", "-f", "suid"]);
    assert!(open.is_empty(), "reachable by nobody: {open:#?}");
    assert_eq!(stdout(&inside), "euid=0\n", "{}", stderr(&inside));
    // the daemon's own client still works (root): modes did not break anything
    assert!(docker_ok(&d, &["ps", "-a"]).is_some() || d.berth(&["ps"]).status.success());
}

/// Point 5: a data root made by an older berthd (world-readable) is closed at start.
#[test]
fn existing_data_root_modes_are_fixed_at_start() {
    let mut d = Daemon::start();
    d.stop_daemon();
    let data = d.root.join("data");
    for sub in ["", "containers", "overlay2", "volumes", "image"] {
        let p = data.join(sub);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let d = Daemon::start_on(&d.root);
    let mode = |s: &str| {
        std::fs::metadata(data.join(s))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(""), 0o711);
    assert_eq!(mode("containers"), 0o710);
    assert_eq!(mode("overlay2"), 0o710);
    assert_eq!(mode("volumes"), 0o701);
    assert_eq!(mode("image"), 0o700);
    drop(d);
}

/// Point 10: mount points the engine creates in the rootfs are 0755 (docker), not 0777.
#[test]
fn mount_point_directories_are_0755() {
    let d = Daemon::start();
    d.load_busybox();
    let src = d.root.join("bindsrc");
    std::fs::create_dir_all(&src).unwrap();
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/new/deep/mp", src.display()),
        "-v",
        "/anon/vol",
        "busybox",
        "stat",
        "-c",
        "%n %a",
        "/new",
        "/new/deep",
        "/anon",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for line in stdout(&o).lines() {
        assert!(line.ends_with(" 755"), "{}", stdout(&o));
    }
}

/// Point 10: `HEAD …/archive?path=/rootlink/` follows the link (docker's reading of a
/// trailing `/`), and `docker cp f c:/rootlink/` copies into the directory it names.
#[test]
fn trailing_slash_follows_a_link_and_cp_into_sys_is_a_client_error() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "tl",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /target && ln -s /target /rootlink && sleep 300",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::eventually(10, || d
        .berth(&["exec", "tl", "ls", "/rootlink/"])
        .status
        .success()));
    let (st, head, _) = d.http("HEAD", "/containers/tl/archive?path=/rootlink/", None);
    assert_eq!(st, 200, "{head}");
    let stat_line = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
        })
        .unwrap_or_default()
        .to_string();
    let b64 = stat_line
        .split_once(':')
        .map(|x| x.1.trim())
        .unwrap_or_default();
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let stat: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
    // a directory (mode bit 31), no link target
    assert_eq!(stat["linkTarget"], "", "{stat}");
    assert!(stat["mode"].as_u64().unwrap() & (1 << 31) != 0, "{stat}");
    let f = d.root.join("f.txt");
    std::fs::write(&f, "through the link\n").unwrap();
    if let Some(o) = d.docker(&["cp", f.to_str().unwrap(), "tl:/rootlink/"]) {
        assert!(o.status.success(), "{}", stderr(&o));
        let o = d.berth(&["exec", "tl", "cat", "/target/f.txt"]);
        assert_eq!(stdout(&o), "through the link\n");
    }
    // cp into the read-only /sys: refused as the client's fault (docker: 4xx), not a 500
    let tar = one_file_tar("x", b"x");
    let (st, _, body) = d.http_body("PUT", "/containers/tl/archive?path=/sys", &tar);
    assert!(
        (400..500).contains(&st),
        "{st} {}",
        String::from_utf8_lossy(&body)
    );
    let _ = d.berth(&["rm", "-f", "tl"]);
}

/// Status of `PUT /containers/{c}/archive?path=…` (one small tar) on any engine socket.
fn put_status(sock: &str, container: &str, path: &str) -> (String, String) {
    let tar = std::env::temp_dir().join(format!("secfs-put-{}.tar", std::process::id()));
    std::fs::write(&tar, one_file_tar("x", b"x")).unwrap();
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            sock,
            "-X",
            "PUT",
        ])
        .args(["-H", "Content-Type: application/x-tar", "--data-binary"])
        .arg(format!("@{}", tar.display()))
        .arg(format!(
            "http://x/containers/{container}/archive?path={path}"
        ))
        .output()
        .expect("curl");
    let _ = std::fs::remove_file(&tar);
    let out = stdout(&o);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_string(), body.to_string())
}

/// The decoded `X-Docker-Container-Path-Stat` of `HEAD …/archive?path=` on any engine socket.
fn head_stat(sock: &str, container: &str, path: &str) -> serde_json::Value {
    let o = Command::new("curl")
        .args(["-s", "-I", "--unix-socket", sock])
        .arg(format!(
            "http://x/containers/{container}/archive?path={path}"
        ))
        .output()
        .expect("curl");
    let head = stdout(&o);
    let b64 = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-docker-container-path-stat")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let dec = Command::new("sh")
        .args(["-c", "printf %s \"$0\" | base64 -d", &b64])
        .output()
        .expect("base64");
    serde_json::from_slice(&dec.stdout).unwrap_or(serde_json::Value::Null)
}

/// Point 10, side by side with a private dockerd: `cp` into a `:ro` volume and into `/sys`
/// (read-only in the container).
#[test]
fn cp_into_read_only_places_answers_like_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(dk) = common::dockerd::Dockerd::start(&d.root) else {
        return;
    };
    let o = dk.docker(&["load", "-i", common::busybox_tar().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rodir = d.root.join("rovol");
    std::fs::create_dir_all(&rodir).unwrap();
    let bind = format!("{}:/ro:ro", rodir.display());
    let args = [
        "run", "-d", "--name", "roc", "-v", &bind, "busybox", "sleep", "300",
    ];
    assert!(dk.docker(&args).status.success());
    assert!(d.berth(&args).status.success());
    let dsock = dk.root.join("d.sock");
    // docker 20.10: 500 "mounted volume is marked read-only"; berth: the same text, as a 403
    // (the client's request, not a daemon fault)
    let theirs = put_status(dsock.to_str().unwrap(), "roc", "/ro");
    let ours = put_status(d.sock.to_str().unwrap(), "roc", "/ro");
    assert!(
        theirs.1.contains("mounted volume is marked read-only"),
        "{theirs:?}"
    );
    assert_eq!(ours.0, "403", "{ours:?}");
    assert!(
        ours.1.contains("mounted volume is marked read-only"),
        "{ours:?}"
    );
    // docker 20.10 answers 200 for /sys and writes into the rootfs directory hidden under
    // the container's sysfs (the file is nowhere the container can see); berth refuses with a
    // 4xx instead of the 500 it gave (issue 10, point 10)
    let theirs = put_status(dsock.to_str().unwrap(), "roc", "/sys");
    let ours = put_status(d.sock.to_str().unwrap(), "roc", "/sys");
    eprintln!("PUT /sys: docker {theirs:?} berth {ours:?}");
    assert_eq!(ours.0, "403", "{ours:?}");
    assert!(ours.1.contains("read-only file system"), "{ours:?}");
    // HEAD on a link with and without a trailing slash: the same stat as docker's
    let mk = [
        "exec",
        "roc",
        "sh",
        "-c",
        "mkdir -p /target && ln -s /target /rootlink",
    ];
    assert!(dk.docker(&mk).status.success());
    assert!(d.berth(&mk).status.success());
    for path in ["/rootlink/", "/rootlink"] {
        let theirs = head_stat(dsock.to_str().unwrap(), "roc", path);
        let ours = head_stat(d.sock.to_str().unwrap(), "roc", path);
        assert!(theirs["mode"].is_u64(), "docker's HEAD {path}: {theirs}");
        eprintln!("HEAD {path}: docker {theirs} berth {ours}");
        for k in ["name", "mode", "linkTarget"] {
            assert_eq!(
                ours[k], theirs[k],
                "HEAD {path} {k}: docker {theirs} berth {ours}"
            );
        }
    }
    let _ = d.berth(&["rm", "-f", "roc"]);
}
