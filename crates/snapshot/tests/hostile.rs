//! Hostile layers, at the unit level (root: real extraction). Each refused layer leaves
//! nothing in the store and changes nothing outside it; what docker accepts (device nodes,
//! fifos, set-uid files, a hard link to a symlink) is created exactly as the tar says.

use berth_snapshot::{Error, Snapshotter};
use sha2::Digest as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

fn diff_id(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// One header with raw name and link name (bypassing the tar crate's own checks).
fn header(name: &str, kind: tar::EntryType, link: &str, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
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
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"data"
        } else {
            b""
        };
        let h = header(name, *kind, link, 0o644, data.len() as u64);
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    s: Snapshotter,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("overlay2");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), b"keep").unwrap();
    let s = Snapshotter::open(&root).unwrap();
    Setup {
        root,
        outside,
        s,
        _tmp: tmp,
    }
}

fn assert_refused(st: &Setup, what: &str, l: &[u8]) -> String {
    let r = st.s.apply_layer(None, &diff_id(l), l);
    let msg = match r {
        Err(Error::InvalidTar(m)) => m,
        other => panic!("{what}: {other:?}"),
    };
    assert!(entries_of(&st.root).is_empty(), "{what}: leftovers");
    assert_eq!(entries_of(&st.outside), vec!["keep"], "{what}");
    let keep = fs::metadata(st.outside.join("keep")).unwrap();
    assert_eq!(keep.nlink(), 1, "{what}: a hard link to outside was made");
    assert_eq!(
        fs::read(st.outside.join("keep")).unwrap(),
        b"keep",
        "{what}"
    );
    msg
}

/// Hard links whose target is outside the layer (absolute, `..`, or through a symlink the
/// layer planted) are refused; /etc/passwd is never linked.
#[test]
fn hardlinks_to_outside_are_refused() {
    use tar::EntryType::{Link as H, Regular as F, Symlink as L};
    let st = setup();
    let out = st.outside.to_str().unwrap().to_string();
    let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("absolute", layer(&[("h", H, "/etc/passwd")])),
        (
            "absolute outside",
            layer(&[("h", H, &format!("{out}/keep"))]),
        ),
        ("dotdot", layer(&[("h", H, "../../etc/passwd")])),
        ("inner dotdot", layer(&[("d/h", H, "d/../../outside/keep")])),
        ("trailing dotdot", layer(&[("h", H, "a/..")])),
        (
            "through an absolute symlink",
            layer(&[("s", L, &out), ("h", H, "s/keep")]),
        ),
        (
            "through a relative symlink",
            layer(&[("s", L, "../../outside"), ("h", H, "s/keep")]),
        ),
        (
            "through /etc",
            layer(&[("e", L, "/etc"), ("h", H, "e/passwd")]),
        ),
        (
            "a write through a hard link to an escaping symlink",
            layer(&[("s", L, &out), ("h", H, "s"), ("h/keep", F, "")]),
        ),
        ("to the root", layer(&[("h", H, ".")])),
        ("to itself", layer(&[("h", H, "h")])),
    ];
    for (what, l) in cases {
        assert_refused(&st, what, &l);
    }
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links);
}

/// A hard link to a symlink links the symlink itself (docker does the same): the layer gets a
/// second name for the link, never the host file it points at.
#[test]
fn hardlink_to_escaping_symlink_links_the_symlink() {
    use tar::EntryType::{Link as H, Symlink as L};
    let st = setup();
    let l = layer(&[("s", L, "/etc/passwd"), ("h", H, "s")]);
    let info = st.s.apply_layer(None, &diff_id(&l), &l[..]).unwrap();
    let d = st.s.layer_diff_path(&info.chain_id).unwrap();
    let h = fs::symlink_metadata(d.join("h")).unwrap();
    assert!(h.file_type().is_symlink(), "h is {:?}", h.file_type());
    assert_eq!(
        fs::read_link(d.join("h")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(h.ino(), fs::symlink_metadata(d.join("s")).unwrap().ino());
    assert_ne!(h.ino(), fs::metadata("/etc/passwd").unwrap().ino());
}

/// Device nodes, fifos and set-uid/set-gid/sticky modes are created as the tar says, as
/// docker does when it runs as root: the node is only a name in the layer; a container
/// opening it is stopped by the device cgroup (see security_archives.rs in the daemon).
#[test]
fn device_nodes_fifos_and_setuid_are_kept() {
    use tar::EntryType as T;
    let st = setup();
    let mut b = tar::Builder::new(Vec::new());
    let mut node = |name: &str, kind: T, mode: u32, dev: (u32, u32)| {
        let mut h = header(name, kind, "", mode, 0);
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    };
    node("disk", T::Block, 0o660, (8, 0));
    node("mem", T::Char, 0o640, (1, 1));
    node("fifo", T::Fifo, 0o600, (0, 0));
    node("tmp", T::Directory, 0o1777, (0, 0));
    node("sgid", T::Directory, 0o2755, (0, 0));
    let h = header("su", T::Regular, "", 0o4755, 4);
    b.append(&h, &b"\x7fELF"[..]).unwrap();
    let l = b.into_inner().unwrap();
    let info = st.s.apply_layer(None, &diff_id(&l), &l[..]).unwrap();
    let d = st.s.layer_diff_path(&info.chain_id).unwrap();
    let md = |n: &str| fs::symlink_metadata(d.join(n)).unwrap();
    assert!(md("disk").file_type().is_block_device());
    assert_eq!(md("disk").rdev(), libc::makedev(8, 0));
    assert_eq!(md("disk").mode() & 0o7777, 0o660);
    assert!(md("mem").file_type().is_char_device());
    assert_eq!(md("mem").rdev(), libc::makedev(1, 1));
    assert!(md("fifo").file_type().is_fifo());
    assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(md("sgid").permissions().mode() & 0o7777, 0o2755);
    assert_eq!(md("su").permissions().mode() & 0o7777, 0o4755);
}

/// A reader of a tar whose first entry is a PAX header (or GNU long name) of `size` bytes,
/// generated on the fly: nothing of that size is ever in this process's memory but what the
/// unpacker itself buffers.
fn huge_header_tar(kind: tar::EntryType, size: u64) -> impl Read {
    let h = header("././@LongLink", kind, "", 0o644, size);
    let body: Box<dyn Read> = if kind == tar::EntryType::XHeader {
        // one valid record "<len> comment=aaaa…\n" filling `size`
        let digits = size.to_string().len() as u64;
        let prefix = format!("{size} comment=");
        assert_eq!(prefix.len() as u64, digits + 9);
        let fill = size - prefix.len() as u64 - 1;
        Box::new(
            std::io::Cursor::new(prefix.into_bytes())
                .chain(std::io::repeat(b'a').take(fill))
                .chain(&b"\n"[..]),
        )
    } else {
        Box::new(std::io::repeat(b'a').take(size))
    };
    let pad = (512 - size % 512) % 512;
    let file = header("f", tar::EntryType::Regular, "", 0o644, 0);
    std::io::Cursor::new(h.as_bytes().to_vec())
        .chain(body)
        .chain(std::io::repeat(0).take(pad))
        .chain(std::io::Cursor::new(file.as_bytes().to_vec()))
        .chain(std::io::repeat(0).take(1024))
}

fn vm_hwm_kib() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A PAX header or GNU long name of 256 MiB is refused once past the cap (2 MiB), instead of
/// being read whole into the daemon's memory (the tar crate buffers them).
#[test]
fn huge_pax_header_and_long_name_are_refused_in_bounded_memory() {
    let st = setup();
    let before = vm_hwm_kib();
    for kind in [tar::EntryType::XHeader, tar::EntryType::GNULongName] {
        let r = st.s.unpack_layer(huge_header_tar(kind, 256 << 20));
        let msg = match r {
            Err(Error::InvalidTar(m)) => m,
            Err(e) => panic!("{kind:?}: {e}"),
            Ok(_) => panic!("{kind:?}: a 256 MiB header was accepted"),
        };
        assert!(msg.contains("exceed 2 MiB"), "{kind:?}: {msg}");
        assert!(entries_of(&st.root).is_empty(), "{kind:?}: leftovers");
    }
    let grown = vm_hwm_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "peak RSS grew by {grown} KiB");
    // a PAX header under the cap is still fine
    let r =
        st.s.unpack_layer(huge_header_tar(tar::EntryType::XHeader, 64 << 10));
    assert!(r.is_ok(), "{:?}", r.err());
}

/// overlayfs's own attributes (`trusted.overlay.redirect`, `.opaque`, `.metacopy`…) in a
/// layer's PAX records are dropped: only whiteout entries make them. Other xattrs stay.
#[test]
fn overlay_xattrs_from_a_tar_are_dropped() {
    let st = setup();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.user.kept", &b"1"[..]),
    ])
    .unwrap();
    b.append(
        &header("d", tar::EntryType::Directory, "", 0o755, 0),
        &b""[..],
    )
    .unwrap();
    let l = b.into_inner().unwrap();
    let info = st.s.apply_layer(None, &diff_id(&l), &l[..]).unwrap();
    let d = st.s.layer_diff_path(&info.chain_id).unwrap().join("d");
    let get = |name: &str| {
        let p = std::ffi::CString::new(d.to_str().unwrap()).unwrap();
        let n = std::ffi::CString::new(name).unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: valid C strings and buffer
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (r >= 0).then(|| buf[..r as usize].to_vec())
    };
    assert_eq!(get("trusted.overlay.redirect"), None);
    assert_eq!(get("trusted.overlay.opaque"), None);
    assert_eq!(get("user.kept").as_deref(), Some(&b"1"[..]));
}
