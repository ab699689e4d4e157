//! Volumes and mounts through the real docker CLI.

mod common;
use common::{docker_ok, stderr, Daemon};

#[test]
fn volumes_binds_tmpfs_volumes_from() {
    let d = Daemon::start();
    d.load_busybox();
    let host = d.root.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f.txt"), "hostfile\n").unwrap();
    let h = host.to_str().unwrap();
    let Some(_) = docker_ok(&d, &["volume", "create", "--label", "team=a", "v1"]) else {
        return;
    };
    assert!(docker_ok(&d, &["volume", "ls", "-q"])
        .unwrap()
        .contains("v1"));
    assert_eq!(
        docker_ok(&d, &["volume", "ls", "-q", "-f", "label=team=a"])
            .unwrap()
            .trim(),
        "v1"
    );
    let mp = docker_ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"]).unwrap();
    assert!(mp.trim().ends_with("volumes/v1/_data"), "{mp}");
    // an empty volume gets the image's content at that path; our /etc files stay on top
    let out = docker_ok(
        &d,
        &["run", "--rm", "-v", "v1:/etc", "busybox", "ls", "/etc"],
    )
    .unwrap();
    for f in ["group", "hostname", "hosts", "passwd", "resolv.conf"] {
        assert!(out.lines().any(|l| l == f), "{f} missing: {out}");
    }
    assert!(std::path::Path::new(mp.trim()).join("passwd").exists());
    // data persists across containers
    docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "v1:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/k",
        ],
    );
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "v1:/data:ro",
                "busybox",
                "cat",
                "/data/k"
            ]
        )
        .unwrap(),
        "kept\n"
    );
    // binds: a directory read-only, a single file
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{h}:/h:ro"),
            "busybox",
            "sh",
            "-c",
            "cat /h/f.txt; touch /h/x 2>&1; true",
        ],
    )
    .unwrap();
    assert!(
        out.contains("hostfile") && out.contains("Read-only file system"),
        "{out}"
    );
    assert!(!host.join("x").exists());
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{h}/f.txt:/in.txt"),
            "busybox",
            "cat",
            "/in.txt",
        ],
    )
    .unwrap();
    assert_eq!(out, "hostfile\n");
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/nonexistent-berth,target=/x",
            "busybox",
            "true",
        ])
        .unwrap();
    assert!(
        stderr(&o).contains("bind source path does not exist"),
        "{}",
        stderr(&o)
    );
    // tmpfs both ways
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--tmpfs",
            "/scratch:size=1m",
            "busybox",
            "sh",
            "-c",
            "mount | grep ' /scratch '",
        ],
    )
    .unwrap();
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/t",
            "busybox",
            "sh",
            "-c",
            "mount | grep ' /t '",
        ],
    )
    .unwrap();
    assert!(out.contains("tmpfs"), "{out}");
    // anonymous volumes, --volumes-from, in-use refusal, rm -v
    docker_ok(
        &d,
        &[
            "run", "-d", "--name", "vu", "-v", "v1:/data", "-v", "/anon", "busybox", "sleep", "300",
        ],
    );
    let mounts: serde_json::Value =
        serde_json::from_str(&docker_ok(&d, &["inspect", "-f", "{{json .Mounts}}", "vu"]).unwrap())
            .unwrap();
    assert_eq!(mounts.as_array().unwrap().len(), 2);
    let anon = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(anon.len(), 64);
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "--volumes-from",
                "vu",
                "busybox",
                "cat",
                "/data/k"
            ]
        )
        .unwrap(),
        "kept\n"
    );
    let o = d.docker(&["volume", "rm", "v1"]).unwrap();
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    docker_ok(&d, &["rm", "-f", "-v", "vu"]);
    let vols = docker_ok(&d, &["volume", "ls", "-q"]).unwrap();
    assert!(
        vols.contains("v1") && !vols.contains(&anon),
        "rm -v keeps named volumes, drops anonymous ones: {vols}"
    );
    docker_ok(&d, &["volume", "rm", "v1"]);
    assert!(docker_ok(&d, &["volume", "ls", "-q"])
        .unwrap()
        .trim()
        .is_empty());
    let o = d.docker(&["volume", "inspect", "nosuch"]).unwrap();
    assert!(!o.status.success());
    let o = d.docker(&["volume", "create", "x"]).unwrap();
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
}

#[test]
fn cp_both_ways_stays_inside_the_container() {
    let d = Daemon::start();
    d.load_busybox();
    let h = d.root.join("h.txt");
    std::fs::write(&h, "hostdata\n").unwrap();
    let Some(_) = docker_ok(&d, &["run", "-d", "--name", "cp1", "busybox", "sh", "-c", "mkdir -p /tmp/d/sub; echo a > /tmp/d/a; echo b > /tmp/d/sub/b; ln -s /etc /tmp/etclink; sleep 300"]) else { return };
    std::thread::sleep(std::time::Duration::from_millis(300));
    docker_ok(&d, &["cp", h.to_str().unwrap(), "cp1:/tmp/h.txt"]);
    assert_eq!(
        docker_ok(&d, &["exec", "cp1", "cat", "/tmp/h.txt"]).unwrap(),
        "hostdata\n"
    );
    let out = d.root.join("out");
    docker_ok(&d, &["cp", "cp1:/tmp/d", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("sub/b")).unwrap(), "b\n");
    // through a symlink to /etc: the container's /etc, never the host's
    docker_ok(&d, &["cp", h.to_str().unwrap(), "cp1:/tmp/etclink/"]);
    assert_eq!(
        docker_ok(&d, &["exec", "cp1", "cat", "/etc/h.txt"]).unwrap(),
        "hostdata\n"
    );
    assert!(!std::path::Path::new("/etc/h.txt").exists());
    let o = d
        .docker(&["cp", "cp1:/nonexist", out.to_str().unwrap()])
        .unwrap();
    assert!(
        stderr(&o).contains("Could not find the file /nonexist"),
        "{}",
        stderr(&o)
    );
    // a stopped container, both ways
    docker_ok(&d, &["stop", "-t", "0", "cp1"]);
    docker_ok(&d, &["cp", h.to_str().unwrap(), "cp1:/h2.txt"]);
    let back = d.root.join("back.txt");
    docker_ok(&d, &["cp", "cp1:/h2.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "hostdata\n");
    // a hostile tar is refused before anything is written
    let mut evil = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(4);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escape.txt");
    hd.set_cksum();
    evil.append(&hd, &b"evil"[..]).unwrap();
    let (st, _, _) = d.http_body(
        "PUT",
        "/containers/cp1/archive?path=/tmp",
        &evil.into_inner().unwrap(),
    );
    assert_eq!(st, 400);
}

#[test]
fn system_prune_with_volumes_and_all() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &["run", "--name", "gone", "-v", "pv:/data", "busybox", "true"],
    ) else {
        return;
    };
    docker_ok(&d, &["tag", "busybox", "extra:1"]);
    docker_ok(
        &d,
        &["run", "-d", "--name", "keep", "busybox", "sleep", "300"],
    );
    let out = docker_ok(&d, &["system", "prune", "-f", "--volumes"]).unwrap();
    assert!(out.contains("Deleted Containers"), "{out}");
    let names = docker_ok(&d, &["ps", "-a", "--format", "{{.Names}}"]).unwrap();
    assert_eq!(names.trim(), "keep");
    assert!(
        docker_ok(&d, &["volume", "ls", "-q"])
            .unwrap()
            .trim()
            .is_empty(),
        "unused volume kept"
    );
    // -a: unused images go too; the one `keep` uses stays
    docker_ok(&d, &["system", "prune", "-a", "-f"]);
    let imgs = docker_ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap();
    assert!(
        imgs.contains("busybox:latest") || imgs.contains("extra:1"),
        "{imgs}"
    );
}

/// Bind propagation as docker gives it: with `rshared` on a host directory that is a shared
/// mount, a mount the (privileged) container makes inside the bind appears on the host; with
/// the default (`rprivate`) it does not; either way nothing else of the container's mounts
/// (its /proc, /dev, the rootfs bind) shows in the host's mount table.
#[test]
fn rshared_binds_carry_the_containers_mounts_to_the_host() {
    let d = Daemon::start();
    d.load_busybox();
    let host = d.root.join("prop");
    std::fs::create_dir_all(&host).unwrap();
    let h = host.to_str().unwrap().to_string();
    let sh = |cmd: &str| {
        let st = std::process::Command::new("sh")
            .args(["-c", cmd])
            .status()
            .expect("sh");
        assert!(st.success(), "{cmd}");
    };
    sh(&format!("mount --bind {h} {h} && mount --make-rshared {h}"));
    let mounts_of = |root: &std::path::Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(root.to_str().unwrap()))
            .count()
    };
    let before = mounts_of(&d.root);
    for (prop, seen) in [("rprivate", false), ("rshared", true)] {
        let target = host.join(prop);
        std::fs::create_dir_all(&target).unwrap();
        d.ok(&[
            "run",
            "--rm",
            "--privileged",
            "-v",
            &format!("{h}:/mnt:{prop}"),
            "busybox",
            "mount",
            "--bind",
            "/etc",
            &format!("/mnt/{prop}"),
        ]);
        let got = target.join("hostname").exists();
        assert_eq!(
            got, seen,
            "{prop}: the container's mount seen on the host: {got}"
        );
        if got {
            sh(&format!("umount {}", target.display()));
        }
    }
    assert_eq!(mounts_of(&d.root), before, "mounts left on the host");
    sh(&format!("umount {h}"));
}
