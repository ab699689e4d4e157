//! Image commands (tag, rmi, history, images filters, image prune) through the real docker CLI.

mod common;
use common::dockerd::Dockerd;
use common::{docker_ok, stderr, stdout, Daemon};

#[test]
fn tag_rmi_history_filters_prune() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(&d, &["tag", "busybox", "mine:v1"]) else {
        return;
    };
    docker_ok(&d, &["tag", "busybox", "localhost:5000/team/app:2"]);
    let images = docker_ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap();
    for t in ["busybox:latest", "mine:v1", "localhost:5000/team/app:2"] {
        assert!(images.contains(t), "{images}");
    }
    let f = docker_ok(
        &d,
        &[
            "images",
            "--format",
            "{{.Repository}}",
            "-f",
            "reference=mine*",
        ],
    )
    .unwrap();
    assert_eq!(f.trim(), "mine");
    assert!(docker_ok(&d, &["images", "-q", "-f", "dangling=true"])
        .unwrap()
        .trim()
        .is_empty());
    // history: one layer, newest first, the image ID on top
    let h = docker_ok(
        &d,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CreatedBy}}",
            "busybox",
        ],
    )
    .unwrap();
    assert!(
        h.starts_with("sha256:") && h.contains("make-busybox-image"),
        "{h}"
    );
    // removing by ID with several names needs -f
    let id = docker_ok(&d, &["inspect", "-f", "{{.Id}}", "busybox"])
        .unwrap()
        .trim()
        .to_string();
    let o = d.docker(&["rmi", &id[7..19]]).unwrap();
    assert!(
        stderr(&o).contains("referenced in multiple repositories"),
        "{}",
        stderr(&o)
    );
    // untag keeps the image while other names remain
    let out = docker_ok(&d, &["rmi", "mine:v1", "localhost:5000/team/app:2"]).unwrap();
    assert!(
        out.contains("Untagged: mine:v1") && out.contains("Untagged: localhost:5000/team/app:2"),
        "{out}"
    );
    assert!(!out.contains("Deleted"), "{out}");
    // an image a container uses is refused, and -f untags only
    docker_ok(&d, &["create", "--name", "user", "busybox"]);
    let o = d.docker(&["rmi", "busybox"]).unwrap();
    assert!(
        stderr(&o).contains("must force") && stderr(&o).contains("is using its referenced image"),
        "{}",
        stderr(&o)
    );
    let out = docker_ok(&d, &["rmi", "-f", "busybox"]).unwrap();
    assert!(
        out.contains("Untagged: busybox:latest") && !out.contains("Deleted"),
        "{out}"
    );
    let dangling = docker_ok(&d, &["images", "-q", "-f", "dangling=true"]).unwrap();
    assert_eq!(
        dangling.trim(),
        &id[7..19],
        "the untagged image stays as <none>"
    );
    assert!(docker_ok(&d, &["images"]).unwrap().contains("<none>"));
    // once the container is gone, prune deletes it and its layer
    docker_ok(&d, &["rm", "user"]);
    let out = docker_ok(&d, &["image", "prune", "-f"]).unwrap();
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert!(docker_ok(&d, &["images", "-q"]).unwrap().trim().is_empty());
    let layers: Vec<_> = std::fs::read_dir(d.root.join("data/overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "l")
        .collect();
    assert!(layers.is_empty(), "layers left: {layers:?}");
    // loading again works, and rmi by name deletes the last reference's image
    d.load_busybox();
    let out = docker_ok(&d, &["rmi", "busybox"]).unwrap();
    assert!(
        out.contains("Untagged: busybox:latest") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    let o = d.docker(&["rmi", "busybox"]).unwrap();
    assert!(
        stderr(&o).contains("No such image: busybox:latest"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn diff_export_system_df() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "--name",
            "df1",
            "busybox",
            "sh",
            "-c",
            "mkdir /tmp/d1; echo x > /tmp/d1/a; rm /bin/vi; echo y >> /etc/passwd",
        ],
    ) else {
        return;
    };
    let diff = docker_ok(&d, &["diff", "df1"]).unwrap();
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /bin",
            "D /bin/vi",
            "C /etc",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/d1",
            "A /tmp/d1/a"
        ],
        "{diff}"
    );
    // export: one flattened tar of the container's view, the deletion applied
    let o = std::process::Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dc"))
        .args(["export", "df1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let mut names = Vec::new();
    let mut passwd = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if p == "etc/passwd" {
            std::io::Read::read_to_string(&mut e, &mut passwd).unwrap();
        }
        names.push(p);
    }
    assert!(names.iter().any(|n| n == "tmp/d1/a"));
    assert!(names.iter().any(|n| n == "bin/sh"));
    assert!(
        !names.iter().any(|n| n == "bin/vi"),
        "deleted file exported"
    );
    assert!(passwd.ends_with("y\n"));
    let df = docker_ok(&d, &["system", "df"]).unwrap();
    assert!(df.contains("Images") && df.contains("Containers"), "{df}");
}

#[test]
fn commit_save_load_import_round_trips() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "echo hello > /greeting; rm /bin/vi",
        ],
    ) else {
        return;
    };
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-m",
            "add greeting",
            "-a",
            "me",
            "-c",
            r#"CMD ["cat","/greeting"]"#,
            "c1",
            "mine:1",
        ],
    )
    .unwrap()
    .trim()
    .to_string();
    assert!(id.starts_with("sha256:"));
    let h = docker_ok(&d, &["history", "mine:1"]).unwrap();
    assert_eq!(h.lines().count(), 3, "{h}");
    assert!(h.contains("add greeting"), "{h}");
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "mine:1"]).unwrap(),
        "hello\n"
    );
    let o = d
        .docker(&["run", "--rm", "mine:1", "ls", "/bin/vi"])
        .unwrap();
    assert!(!o.status.success(), "the deletion was committed");
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.Author}} {{.Comment}}", "mine:1"])
            .unwrap()
            .trim(),
        "me add greeting"
    );
    // save: both images, the shared layer once
    let tar = d.root.join("s.tar");
    docker_ok(
        &d,
        &["save", "-o", tar.to_str().unwrap(), "mine:1", "busybox"],
    );
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let layers = ar
        .entries()
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().unwrap().ends_with("layer.tar"))
        .count();
    assert_eq!(layers, 2);
    // berth → berth
    let d2 = Daemon::start();
    let out = d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: mine:1") && out.contains("Loaded image: busybox:latest"),
        "{out}"
    );
    assert_eq!(
        docker_ok(&d2, &["inspect", "-f", "{{.Id}}", "mine:1"])
            .unwrap()
            .trim(),
        id
    );
    assert_eq!(
        docker_ok(&d2, &["run", "--rm", "mine:1"]).unwrap(),
        "hello\n"
    );
    // export → import: one flattened layer, history lost
    let exported = d.root.join("e.tar");
    docker_ok(&d, &["export", "-o", exported.to_str().unwrap(), "c1"]);
    let out = docker_ok(
        &d,
        &[
            "import",
            "-c",
            r#"CMD ["cat","/greeting"]"#,
            "-m",
            "flat",
            exported.to_str().unwrap(),
            "flat:1",
        ],
    )
    .unwrap();
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(
        docker_ok(&d, &["history", "-q", "flat:1"])
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "flat:1"]).unwrap(),
        "hello\n"
    );
    // hostile and broken imports keep nothing
    let before = docker_ok(&d, &["images", "-q"]).unwrap();
    let bad = d.root.join("bad.tar");
    std::fs::write(
        &bad,
        b"not a tar at all, just text that is long enough to be read",
    )
    .unwrap();
    assert!(!d
        .docker(&["import", bad.to_str().unwrap(), "bad:1"])
        .unwrap()
        .status
        .success());
    let mut evil = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(4);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escape.txt");
    hd.set_cksum();
    evil.append(&hd, &b"evil"[..]).unwrap();
    std::fs::write(&bad, evil.into_inner().unwrap()).unwrap();
    let o = d
        .docker(&["import", bad.to_str().unwrap(), "bad:2"])
        .unwrap();
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(docker_ok(&d, &["images", "-q"]).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(d.root.join("data/image/tmp"))
            .unwrap()
            .count(),
        0,
        "staging left behind"
    );
    // the real docker engine, both ways
    let Some(dk) = Dockerd::start(&d.root) else {
        return;
    };
    let o = dk.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "docker load of berth's save: {}",
        stderr(&o)
    );
    let did = stdout(&dk.docker(&["inspect", "-f", "{{.Id}}", "mine:1"]))
        .trim()
        .to_string();
    assert_eq!(did, id, "same image ID in docker");
    let dtar = d.root.join("d.tar");
    let o = dk.docker(&["save", "-o", dtar.to_str().unwrap(), "mine:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d3 = Daemon::start();
    d3.ok(&["load", "-i", dtar.to_str().unwrap()]);
    assert_eq!(
        docker_ok(&d3, &["inspect", "-f", "{{.Id}}", "mine:1"])
            .unwrap()
            .trim(),
        id
    );
    assert_eq!(
        docker_ok(&d3, &["run", "--rm", "mine:1"]).unwrap(),
        "hello\n"
    );
}

/// The image commands through the `berth` CLI itself.
#[test]
fn berth_cli_image_commands() {
    let d = Daemon::start();
    d.load_busybox();
    let table = d.ok(&["images", "--format", "table {{.Repository}}\t{{.Tag}}"]);
    assert!(
        table.starts_with("REPOSITORY") && table.contains("busybox"),
        "{table}"
    );
    let o = d.berth(&["run", "--name", "c1", "busybox", "sh", "-c", "echo hi > /g"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["diff", "c1"]), "A /g\n");
    let id = d
        .ok(&["commit", "-c", r#"CMD ["cat","/g"]"#, "c1", "mine:1"])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"));
    assert_eq!(d.ok(&["run", "--rm", "mine:1"]), "hi\n");
    assert_eq!(d.ok(&["history", "-q", "mine:1"]).lines().count(), 2);
    d.ok(&["tag", "mine:1", "mine:2"]);
    assert!(d.ok(&["rmi", "mine:2"]).contains("Untagged: mine:2"));
    let tar = d.root.join("s.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "mine:1"]);
    let d2 = Daemon::start();
    d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(d2.ok(&["inspect", "-f", "{{.Id}}", "mine:1"]).trim(), id);
    let exported = d.root.join("e.tar");
    std::fs::write(&exported, d.berth(&["export", "c1"]).stdout).unwrap();
    let out = d.ok(&["import", exported.to_str().unwrap(), "flat:1"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "flat:1", "cat", "/g"]), "hi\n");
}

/// A layer tar; names are written raw (no checks) to build hostile layers. `(name, kind, data
/// or link target, declared size)`.
fn raw_layer(entries: &[(&str, tar::EntryType, &[u8], u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, size) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(*kind);
        if kind.is_symlink() {
            h.set_link_name(std::str::from_utf8(data).unwrap()).unwrap();
            h.set_size(0);
        } else {
            h.set_size(*size);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        if !kind.is_symlink() {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A docker-archive of one image with one layer, its config naming `diff_id`.
fn archive_of(layer: &[u8], diff_id: &str) -> Vec<u8> {
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let manifest = r#"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["l1/layer.tar"]}]"#;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("l1/layer.tar", layer),
        ("config.json", cfg.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn entries_below(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Layers are unpacked while the archive streams in; a hostile, truncated or mismatched one
/// is refused and leaves nothing behind: no image, no temp layer, no staged tar.
#[test]
fn load_refuses_bad_layers_streamed_and_keeps_nothing() {
    use tar::EntryType as T;
    let d = Daemon::start();
    let data = d.root.join("data");
    let zeros = format!("sha256:{}", "0".repeat(64));
    let big = vec![b'x'; 3000];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "an entry with ..",
            raw_layer(&[
                ("ok.txt", T::Regular, &big, 3000),
                ("../escape.txt", T::Regular, b"evil", 4),
            ]),
        ),
        (
            "a write through a symlink",
            raw_layer(&[
                ("etc", T::Symlink, b"/etc", 0),
                ("etc/berth-escape", T::Regular, b"evil", 4),
            ]),
        ),
        (
            "an absolute path",
            raw_layer(&[("/berth-escape", T::Regular, b"evil", 4)]),
        ),
        (
            "a file cut short",
            raw_layer(&[("a.txt", T::Regular, &big[..1000], 8192)])[..2048].to_vec(),
        ),
        (
            "a digest mismatch",
            raw_layer(&[("a.txt", T::Regular, &big, 3000)]),
        ),
    ];
    for (what, layer) in cases {
        let o = d.berth_stdin(&["load"], &archive_of(&layer, &zeros));
        assert!(!o.status.success(), "{what}: loaded: {}", stdout(&o));
        assert!(d.ok(&["images", "-q"]).trim().is_empty(), "{what}");
        assert!(
            entries_below(&data.join("image/tmp")).is_empty(),
            "{what}: staging left: {:?}",
            entries_below(&data.join("image/tmp"))
        );
        let layers: Vec<String> = entries_below(&data.join("overlay2"))
            .into_iter()
            .filter(|n| n != "l")
            .collect();
        assert!(layers.is_empty(), "{what}: layers left: {layers:?}");
        assert!(entries_below(&data.join("tmp")).is_empty(), "{what}");
    }
    assert!(!std::path::Path::new("/etc/berth-escape").exists());
    assert!(!std::path::Path::new("/berth-escape").exists());
}

/// The registry harness itself: a plain and an htpasswd registry answer /v2/ as the
/// distribution spec says (200, and 401 with a Basic challenge).
#[test]
fn registry_harness_serves_v2() {
    let Some(r) = common::registry::Registry::start() else {
        return;
    };
    let get = |addr: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connect registry");
        write!(s, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    };
    let plain = get(&r.addr);
    assert!(plain.contains("200 OK"), "{plain}");
    let Some(a) = common::registry::Registry::start_htpasswd("u", "p") else {
        return;
    };
    let auth = get(&a.addr);
    assert!(auth.contains("401"), "{auth}");
    assert!(auth.contains("Basic realm=\"berth-test\""), "{auth}");
}
