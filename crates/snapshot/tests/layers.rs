//! Root tests: real extraction, real overlay mounts. Every mount is undone by a guard.

use berth_snapshot::{Error, Snapshotter};
use sha2::Digest as _;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

enum E<'a> {
    F(&'a str, &'a [u8], u32),
    D(&'a str, u32),
    L(&'a str, &'a str),
    H(&'a str, &'a str),
    Fifo(&'a str),
}

fn set_name(h: &mut tar::Header, name: &str) {
    // raw bytes, bypassing the tar crate's own checks, to build hostile layers
    let b = name.as_bytes();
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..b.len()].copy_from_slice(b);
}

fn build(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        let data: &[u8] = match e {
            E::F(n, d, m) => {
                set_name(&mut h, n);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(d.len() as u64);
                d
            }
            E::D(n, m) => {
                set_name(&mut h, n);
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                &[]
            }
            E::L(n, t) | E::H(n, t) => {
                set_name(&mut h, n);
                h.set_entry_type(if matches!(e, E::L(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                let tb = t.as_bytes();
                let old = h.as_old_mut();
                old.linkname = [0; 100];
                old.linkname[..tb.len()].copy_from_slice(tb);
                &[]
            }
            E::Fifo(n) => {
                set_name(&mut h, n);
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o600);
                &[]
            }
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn diff_id(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(data).as_slice())
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Unmounts every RW layer it was given when dropped (even when the test panics).
struct MountGuard<'a> {
    s: &'a Snapshotter,
    keys: Vec<String>,
}

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        for k in &self.keys {
            let _ = self.s.unmount_rw(k);
        }
    }
}

fn mounted(p: &Path) -> usize {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
        .count()
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn apply_two_layers_mount_write_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();

    let l1 = build(&[
        E::D("./", 0o755),
        E::D("./etc/", 0o755),
        E::F("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        E::D("bin", 0o755),
        E::F("bin/sh", b"#!shell", 0o755),
        E::L("bin/ls", "sh"),
        E::L("bin/abs", "/etc/passwd"),
        E::H("bin/link", "bin/sh"),
        E::F("gone", b"bye", 0o600),
        E::D("opq", 0o755),
        E::F("opq/old", b"old", 0o644),
        E::F("implicit/dir/file", b"x", 0o644),
        E::Fifo("fifo"),
    ]);
    let l2 = build(&[
        E::F(".wh.gone", b"", 0o644),
        E::D("opq", 0o755),
        E::F("opq/.wh..wh..opq", b"", 0o644),
        E::F("opq/new", b"new", 0o644),
        E::F("etc/.wh.nothing-there", b"", 0o644),
    ]);
    let d1 = diff_id(&l1);
    let d2 = diff_id(&l2);
    let i1 = s.apply_layer(None, &d1, &gzip(&l1)[..]).unwrap();
    assert_eq!(i1.chain_id, d1);
    assert_eq!(i1.diff_id, d1);
    assert_eq!(
        i1.size,
        (b"root:x:0:0::/root:/bin/sh\n".len() + 7 + 3 + 3 + 1) as u64
    );
    let i2 = s.apply_layer(Some(&i1.chain_id), &d2, &l2[..]).unwrap();
    assert_eq!(i2.chain_id, Snapshotter::chain_id(Some(&d1), &d2));
    assert!(s.has_layer(&i1.chain_id) && s.has_layer(&i2.chain_id));
    // idempotent
    let again = s.apply_layer(None, &d1, &l1[..]).unwrap();
    assert_eq!(again.chain_id, i1.chain_id);

    let ld1 = s.layer_diff_path(&i1.chain_id).unwrap();
    let ld2 = s.layer_diff_path(&i2.chain_id).unwrap();
    // layer 1 contents
    let sh = fs::symlink_metadata(ld1.join("bin/sh")).unwrap();
    assert_eq!(sh.permissions().mode() & 0o7777, 0o755);
    assert_eq!(sh.mtime(), 1_600_000_000);
    assert_eq!(sh.nlink(), 2);
    assert_eq!(
        fs::symlink_metadata(ld1.join("bin/link")).unwrap().ino(),
        sh.ino()
    );
    assert_eq!(fs::read_link(ld1.join("bin/ls")).unwrap(), Path::new("sh"));
    assert_eq!(
        fs::read_link(ld1.join("bin/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(fs::symlink_metadata(ld1.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::metadata(ld1.join("etc")).unwrap().mtime(),
        1_600_000_000,
        "dir mtimes are set after their contents"
    );
    assert_eq!(fs::read(ld1.join("implicit/dir/file")).unwrap(), b"x");
    // layer 2: overlay whiteouts
    let wh = fs::symlink_metadata(ld2.join("gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr(&ld2.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!ld2.join("opq/.wh..wh..opq").exists());

    // RW layer
    let paths = s.create_rw("c1", Some(&i2.chain_id)).unwrap();
    assert_eq!(paths.lowers, vec![ld2.clone(), ld1.clone()]);
    assert_eq!(s.rw_paths("c1").unwrap().lowers, paths.lowers);
    let _g = MountGuard {
        s: &s,
        keys: vec!["c1".into()],
    };
    let merged = s.mount_rw("c1").unwrap();
    assert_eq!(merged, paths.merged);
    s.mount_rw("c1").unwrap();
    assert_eq!(mounted(&merged), 1, "mount_rw is idempotent");

    assert!(!merged.join("gone").exists());
    assert_eq!(entries_of(&merged.join("opq")), vec!["new"]);
    assert_eq!(
        fs::read(merged.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(fs::read(merged.join("bin/ls")).unwrap(), b"#!shell");

    fs::write(merged.join("newfile"), b"written").unwrap();
    fs::remove_file(merged.join("etc/passwd")).unwrap();
    assert_eq!(fs::read(paths.upper.join("newfile")).unwrap(), b"written");
    assert!(!ld1.join("newfile").exists() && !ld2.join("newfile").exists());
    assert!(ld1.join("etc/passwd").exists(), "lower untouched");

    s.unmount_rw("c1").unwrap();
    assert_eq!(mounted(&merged), 0);
    s.unmount_rw("c1").unwrap(); // not mounted: fine
    assert!(entries_of(&merged).is_empty());
    s.remove_rw("c1").unwrap();
    assert!(!tmp.path().join("c1").exists());
    assert!(s.has_layer(&i2.chain_id) && ld1.join("bin/sh").exists());
    assert!(matches!(s.rw_paths("c1"), Err(Error::NotFound(_))));
}

#[test]
fn empty_image_and_remove_while_mounted() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    let p = s.create_rw("empty-1", None).unwrap();
    assert_eq!(p.lowers.len(), 1);
    let _g = MountGuard {
        s: &s,
        keys: vec!["empty-1".into()],
    };
    let merged = s.mount_rw("empty-1").unwrap();
    fs::write(merged.join("f"), b"1").unwrap();
    assert!(p.upper.join("f").exists());
    assert!(s.create_rw("empty-1", None).is_err(), "already exists");
    // remove unmounts first
    s.remove_rw("empty-1").unwrap();
    assert_eq!(mounted(&merged), 0);
    assert!(!tmp.path().join("empty-1").exists());
    s.remove_rw("empty-1").unwrap();
}

#[test]
fn ten_layers_mount() {
    many_layers_mount(10);
}

/// Full `<chain-hex>/diff` paths would not fit in the one-page mount options; the `l/` links do.
#[test]
fn sixty_layers_mount_with_short_links() {
    many_layers_mount(60);
}

fn many_layers_mount(n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    let mut parent: Option<String> = None;
    for i in 0..n {
        let name = format!("f{i}");
        let l = build(&[E::F(&name, name.as_bytes(), 0o644)]);
        let info = s
            .apply_layer(parent.as_deref(), &diff_id(&l), &l[..])
            .unwrap();
        parent = Some(info.chain_id);
    }
    s.create_rw("many", parent.as_deref()).unwrap();
    let _g = MountGuard {
        s: &s,
        keys: vec!["many".into()],
    };
    let merged = s.mount_rw("many").unwrap();
    for i in 0..n {
        assert_eq!(
            fs::read(merged.join(format!("f{i}"))).unwrap(),
            format!("f{i}").as_bytes()
        );
    }
    s.remove_rw("many").unwrap();
}

#[test]
fn bad_keys_and_missing_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    for k in ["", "../x", "a/b", ".", "..", "tmp-1", "l"] {
        assert!(
            matches!(s.create_rw(k, None), Err(Error::InvalidKey(_))),
            "{k:?}"
        );
    }
    let missing = format!("sha256:{}", "1".repeat(64));
    assert!(matches!(
        s.create_rw("c", Some(&missing)),
        Err(Error::NotFound(_))
    ));
    let l = build(&[E::F("a", b"a", 0o644)]);
    assert!(matches!(
        s.apply_layer(Some(&missing), &diff_id(&l), &l[..]),
        Err(Error::NotFound(_))
    ));
    assert!(s.apply_layer(None, "sha256:nothex", &l[..]).is_err());
    assert!(entries_of(tmp.path()).is_empty());
}

#[test]
fn trailing_padding_is_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    let mut l = build(&[E::F("a", b"a", 0o644)]);
    l.extend_from_slice(&[0u8; 10240]);
    let info = s.apply_layer(None, &diff_id(&l), &gzip(&l)[..]).unwrap();
    assert_eq!(info.diff_id, diff_id(&l));
}

#[test]
fn digest_mismatch_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    let l = build(&[E::F("a", b"a", 0o644), E::D("d", 0o755)]);
    let wrong = diff_id(b"something else");
    let err = s.apply_layer(None, &wrong, &l[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(entries_of(tmp.path()).is_empty());
    assert!(!s.has_layer(&wrong));
}

/// Each hostile layer is rejected, leaves nothing in the store and nothing outside.
#[test]
fn hostile_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("overlay2");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), b"keep").unwrap();
    let s = Snapshotter::open(&root).unwrap();
    let out = outside.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", build(&[E::F("../evil", b"x", 0o644)])),
        ("inner dotdot", build(&[E::F("a/../../evil", b"x", 0o644)])),
        ("absolute", build(&[E::F("/abs", b"x", 0o644)])),
        (
            "file below symlink",
            build(&[E::L("a", &out), E::F("a/x", b"x", 0o644)]),
        ),
        (
            "dir below symlink",
            build(&[E::L("a", &out), E::D("a/sub", 0o755)]),
        ),
        (
            "relative symlink parent",
            build(&[E::L("a", "../../outside"), E::F("a/x", b"x", 0o644)]),
        ),
        (
            "deep symlink parent",
            build(&[
                E::D("d", 0o755),
                E::L("d/a", &out),
                E::F("d/a/keep", b"overwritten", 0o644),
            ]),
        ),
        (
            "whiteout through symlink",
            build(&[E::L("a", &out), E::F("a/.wh.keep", b"", 0o644)]),
        ),
        (
            "opaque through symlink",
            build(&[E::L("a", &out), E::F("a/.wh..wh..opq", b"", 0o644)]),
        ),
        ("hardlink outside", build(&[E::H("h", "../outside/keep")])),
        (
            "hardlink through symlink",
            build(&[E::L("a", &out), E::H("h", "a/keep")]),
        ),
        ("hardlink missing", build(&[E::H("h", "nope")])),
        ("bad whiteout", build(&[E::F("x/.wh...", b"", 0o644)])),
    ];
    for (what, l) in cases {
        let r = s.apply_layer(None, &diff_id(&l), &l[..]);
        assert!(matches!(r, Err(Error::InvalidTar(_))), "{what}: {r:?}");
        assert!(entries_of(&root).is_empty(), "{what}: leftovers");
        assert_eq!(
            entries_of(&outside),
            vec!["keep"],
            "{what}: outside changed"
        );
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep", "{what}");
        assert!(!tmp.path().join("evil").exists(), "{what}");
    }
    // a truncated stream
    let l = build(&[E::F("big", &[7u8; 4096], 0o644)]);
    let r = s.apply_layer(None, &diff_id(&l), &l[..1000]);
    assert!(r.is_err(), "truncated");
    assert!(entries_of(&root).is_empty(), "truncated: leftovers");
}

#[test]
fn ownership_pax_xattrs_and_replacements() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(tmp.path()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    // a file owned by 1000:1001 with a user xattr in a PAX header
    b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"yes"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("owned").unwrap();
    h.set_size(2);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_500_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    // a symlink owned by 7 (lchown, not the target)
    let mut h = tar::Header::new_ustar();
    h.set_path("sl").unwrap();
    h.set_link_name("owned").unwrap();
    h.set_size(0);
    h.set_uid(7);
    h.set_gid(7);
    h.set_mode(0o777);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let mut l = b.into_inner().unwrap();
    // later entries replace earlier ones of the same name
    let replacements = build(&[
        E::F("x", b"file", 0o644),
        E::D("x", 0o755), // file -> dir
        E::F("x/inner", b"i", 0o644),
        E::F("x", b"file again", 0o644), // dir (non-empty) -> file
        E::L("y", "x"),
        E::F("y", b"not through the link", 0o644), // symlink -> file
    ]);
    // splice: drop the first archive's end marker (two zero blocks)
    l.truncate(l.len() - 1024);
    l.extend_from_slice(&replacements);
    let info = s.apply_layer(None, &diff_id(&l), &l[..]).unwrap();
    let d = s.layer_diff_path(&info.chain_id).unwrap();
    let m = fs::symlink_metadata(d.join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(
        m.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(
        xattr(&d.join("owned"), "user.berth").as_deref(),
        Some(&b"yes"[..])
    );
    let sl = fs::symlink_metadata(d.join("sl")).unwrap();
    assert!(sl.file_type().is_symlink());
    assert_eq!(sl.uid(), 7);
    assert_eq!(fs::read(d.join("x")).unwrap(), b"file again");
    assert!(fs::symlink_metadata(d.join("y")).unwrap().is_file());
    assert_eq!(fs::read(d.join("y")).unwrap(), b"not through the link");
    assert_eq!(fs::read(d.join("x")).unwrap(), b"file again");
}

/// `--userns-remap`: owners are shifted into the host range at unpack (and a symlink's own
/// owner too); an owner outside the range refuses the layer; a RW layer's root is the mapped
/// root's.
#[test]
fn remapped_owners() {
    use berth_util::idmap::IdMaps;
    let tmp = tempfile::tempdir().unwrap();
    let ids = IdMaps::from_host_ranges(&[(300000, 65536)], &[(400000, 65536)]);
    let s = Snapshotter::open(tmp.path())
        .unwrap()
        .with_id_maps(Some(ids));
    let mut l = build(&[
        E::D("./", 0o755),
        E::F("rootfile", b"r", 0o4755),
        E::L("link", "rootfile"),
    ]);
    // one entry owned by 1000:50 (appended by hand: `build` writes 0:0)
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("userfile").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(50);
    h.set_cksum();
    b.append(&h, &b"u"[..]).unwrap();
    let extra = b.into_inner().unwrap();
    l.truncate(l.len() - 1024); // drop the end marker of the first part
    l.extend_from_slice(&extra);
    let info = s.apply_layer(None, &diff_id(&l), &l[..]).unwrap();
    let diff = s.layer_diff_path(&info.chain_id).unwrap();
    let own = |p: &str| {
        let md = fs::symlink_metadata(diff.join(p)).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(own(""), (300000, 400000));
    assert_eq!(own("rootfile"), (300000, 400000));
    assert_eq!(own("link"), (300000, 400000));
    assert_eq!(own("userfile"), (301000, 400050));
    // set-uid kept, but on a file that is not root's on the host
    assert_eq!(
        fs::metadata(diff.join("rootfile")).unwrap().mode() & 0o7777,
        0o4755
    );

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("far").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(70000);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let bad = b.into_inner().unwrap();
    match s.apply_layer(None, &diff_id(&bad), &bad[..]) {
        Err(Error::InvalidTar(m)) => assert!(m.contains("cannot be mapped"), "{m}"),
        other => panic!("{other:?}"),
    }

    let rw = s.create_rw("ctr", Some(&info.chain_id)).unwrap();
    let md = fs::metadata(&rw.upper).unwrap();
    assert_eq!((md.uid(), md.gid()), (300000, 400000));
    s.remove_rw("ctr").unwrap();
    s.remove_layer(&info.chain_id).unwrap();
}
