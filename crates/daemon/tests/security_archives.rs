//! Hostile archives through `berth load` and `docker load` to a real berthd: each is refused
//! with a clear error and leaves nothing registered (no image, no layer, no staging); a layer
//! whose device nodes docker would create loads, and the device cgroup keeps a container from
//! opening them.

mod common;
use common::{stderr, stdout, Daemon};
use sha2::Digest as _;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One header with raw name and link name (the tar crate refuses `..` and absolute paths).
fn header(name: &str, kind: tar::EntryType, link: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        b.append(&header(name, *kind, link, 0), &b""[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn diff_id(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A docker-archive (`docker save` format) of `base`'s entries (if any) plus one more layer.
fn archive_with_layer(base: Option<&[u8]>, extra: &[u8], tag: &str) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layers: Vec<String> = Vec::new();
    let mut config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    if let Some(base) = base {
        let mut ar = tar::Archive::new(base);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if e.header().entry_type().is_file() {
                files.push((name, data));
            }
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|(n, _)| n == "manifest.json").unwrap().1)
                .unwrap();
        let cfg_name = manifest[0]["Config"].as_str().unwrap().to_string();
        config =
            serde_json::from_slice(&files.iter().find(|(n, _)| *n == cfg_name).unwrap().1).unwrap();
        for l in manifest[0]["Layers"].as_array().unwrap() {
            layers.push(l.as_str().unwrap().to_string());
        }
        files.retain(|(n, _)| {
            n != "manifest.json" && *n != cfg_name && n != "index.json" && n != "oci-layout"
        });
    }
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(diff_id(extra).into());
    layers.push("hostile/layer.tar".into());
    let manifest =
        serde_json::json!([{"Config": "hostile-config.json", "RepoTags": [tag], "Layers": layers}]);
    files.push(("hostile/layer.tar".into(), extra.to_vec()));
    files.push((
        "hostile-config.json".into(),
        serde_json::to_vec(&config).unwrap(),
    ));
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn entries_below(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_registered(d: &Daemon, what: &str) {
    let data = d.root.join("data");
    assert!(
        d.ok(&["images", "-q"]).trim().is_empty(),
        "{what}: image registered"
    );
    let layers: Vec<String> = entries_below(&data.join("overlay2"))
        .into_iter()
        .filter(|n| n != "l")
        .collect();
    assert!(layers.is_empty(), "{what}: layers left: {layers:?}");
    assert!(
        entries_below(&data.join("image/tmp")).is_empty(),
        "{what}: staging left"
    );
    assert!(
        entries_below(&data.join("tmp")).is_empty(),
        "{what}: tmp left"
    );
}

/// A PAX header of `size` bytes (one valid `comment` record) before a plain file.
fn huge_pax_layer(size: usize) -> Vec<u8> {
    let prefix = format!("{size} comment=");
    let mut rec = prefix.into_bytes();
    rec.resize(size - 1, b'a');
    rec.push(b'\n');
    let mut out = header("pax", tar::EntryType::XHeader, "", size as u64)
        .as_bytes()
        .to_vec();
    out.extend_from_slice(&rec);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(header("f", tar::EntryType::Regular, "", 0).as_bytes());
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_layers_are_refused_by_load_and_leave_nothing() {
    use tar::EntryType::{Link as H, Regular as F, Symlink as L};
    let d = Daemon::start();
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "hard link to /etc/passwd",
            layer(&[("h", H, "/etc/passwd")]),
            "absolute path /etc/passwd",
        ),
        (
            "hard link to ../../etc/passwd",
            layer(&[("h", H, "../../etc/passwd")]),
            "path with '..'",
        ),
        (
            "hard link through a symlink to /etc",
            layer(&[("e", L, "/etc"), ("h", H, "e/passwd")]),
            "is a symlink or not a directory",
        ),
        (
            "a write through a hard link to an escaping symlink",
            layer(&[("s", L, "/etc"), ("h", H, "s"), ("h/berth-escape", F, "")]),
            "is a symlink or not a directory",
        ),
        (
            "an 8 MiB PAX header",
            huge_pax_layer(8 << 20),
            "exceed 2 MiB",
        ),
    ];
    for (what, l, why) in &cases {
        let archive = archive_with_layer(None, l, "hostile:1");
        let o = d.berth_stdin(&["load"], &archive);
        assert!(!o.status.success(), "{what}: loaded: {}", stdout(&o));
        assert!(stderr(&o).contains(why), "{what}: {}", stderr(&o));
        assert_nothing_registered(&d, what);
        // the real docker CLI gets the same refusal
        let file = d.root.join("hostile.tar");
        std::fs::write(&file, &archive).unwrap();
        if let Some(o) = d.docker(&["load", "-i", file.to_str().unwrap()]) {
            assert!(!o.status.success(), "docker load {what}: {}", stdout(&o));
            assert!(
                stderr(&o).contains(why),
                "docker load {what}: {}",
                stderr(&o)
            );
            assert_nothing_registered(&d, what);
        }
    }
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().nlink(),
        passwd_links
    );
    assert!(!Path::new("/etc/berth-escape").exists());
}

/// Device nodes in a layer are created as docker creates them (as root), and the device
/// cgroup stops a container from opening them: a layer cannot hand a container the host's
/// memory or disk.
#[test]
fn device_nodes_from_a_layer_cannot_be_opened() {
    let d = Daemon::start();
    d.load_busybox();
    let save = d.root.join("busybox-save.tar");
    d.ok(&["save", "-o", save.to_str().unwrap(), "busybox"]);
    let base = std::fs::read(&save).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, dev) in [
        ("hostmem", tar::EntryType::Char, (1, 1)),
        ("hostdisk", tar::EntryType::Block, (8, 0)),
    ] {
        let mut h = header(name, kind, "", 0);
        h.set_mode(0o666);
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    let l = b.into_inner().unwrap();
    let o = d.berth_stdin(&["load"], &archive_with_layer(Some(&base), &l, "devimg:1"));
    assert!(o.status.success(), "load: {}", stderr(&o));
    for node in ["/hostmem", "/hostdisk"] {
        let o = d.berth(&[
            "run",
            "--rm",
            "devimg:1",
            "sh",
            "-c",
            &format!("ls -l {node} && head -c 1 {node} >/dev/null"),
        ]);
        assert!(!o.status.success(), "{node} was readable: {}", stdout(&o));
        assert!(
            stdout(&o).contains(node),
            "{node} is not in the image: {}",
            stdout(&o)
        );
        assert!(
            stderr(&o).contains("Operation not permitted"),
            "{node}: {}",
            stderr(&o)
        );
    }
}
