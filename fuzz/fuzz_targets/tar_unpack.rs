//! The layer tar unpacker (crates/snapshot/src/tar_safe.rs), both as layers use it
//! (`Snapshotter::unpack_layer`: whiteouts, gzip sniffing) and as `cp` uses it
//! (`extract_into`). The input is either a raw tar (first byte even) or a list of entries
//! built into a well-formed tar (first byte odd: checksums right, so the fuzzer spends its
//! time on paths, link targets, types and PAX records rather than on header checksums).
//!
//! Property checked after every run: nothing outside the unpack root changed. The work dir
//! holds `root/` (what is unpacked into) and `outside/` (a sentinel file, a directory, a
//! symlink); after each input the work dir must hold exactly those two, and `outside/` must be
//! byte for byte as it was. Never panic, never hang (libFuzzer's -timeout).
//!
//! Safety on the host: the unpacker runs as root. Before the first input the process moves
//! into a private mount namespace in which every mount is read-only except a fresh tmpfs for
//! the work dir and the fuzz/ directory (corpus and artifacts), so a bug that escapes the root
//! cannot write to the host's files (absolute symlink targets would point into the host).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Work {
    dir: PathBuf,
}

/// Components the structured entries draw from: collisions between entries are what find
/// bugs (a file replaced by a dir, a symlink planted where a later entry writes through).
const COMPS: &[&str] = &[
    "a", "b", "c", "..", ".", "", "etc", "passwd", ".wh.a", ".wh..wh..opq", ".wh.b", ".wh..wh.plnk",
    "outside", "root", "dev", "x\u{e9}",
];
const LINKS: &[&str] = &[
    "/", "/etc/passwd", "..", "../..", "../../outside/secret", "../outside", "/proc/self/root",
    "a", "a/b", "./a", "../../../../../../../", "/tmp", ".", "b/../..",
];

#[derive(Arbitrary, Debug)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char(u8, u8),
    Block(u8, u8),
    Fifo,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// components by index into COMPS
    Comps(Vec<u8>),
    /// raw bytes (at most the 100 bytes of the header's name field)
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Ent {
    kind: Kind,
    name: Name,
    link: Option<Name>,
    link_fixed: Option<u8>,
    mode: u16,
    uid: u8,
    data: Vec<u8>,
    /// PAX records before the entry (path, linkpath, uid, mtime, xattrs)
    pax: Vec<(u8, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
struct Layer {
    /// layer (whiteouts on) or `cp` (whiteouts kept as files)
    as_layer: bool,
    gzip: bool,
    entries: Vec<Ent>,
}

fn name_bytes(n: &Name) -> Vec<u8> {
    match n {
        Name::Comps(ix) => {
            let parts: Vec<&str> = ix
                .iter()
                .take(8)
                .map(|i| COMPS[*i as usize % COMPS.len()])
                .collect();
            let mut s = parts.join("/").into_bytes();
            if ix.len() > 8 && ix[8] % 2 == 0 {
                s.insert(0, b'/');
            }
            s
        }
        Name::Raw(b) => b.iter().take(100).copied().collect(),
    }
}

fn build(layer: &Layer) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in layer.entries.iter().take(64) {
        if !e.pax.is_empty() {
            const KEYS: &[&str] = &[
                "path",
                "linkpath",
                "uid",
                "gid",
                "mtime",
                "SCHILY.xattr.user.x",
                "SCHILY.xattr.trusted.overlay.opaque",
                "size",
                "GNU.sparse.size",
            ];
            let recs: Vec<(&str, &[u8])> = e
                .pax
                .iter()
                .take(4)
                .map(|(k, v)| (KEYS[*k as usize % KEYS.len()], v.as_slice()))
                .collect();
            let _ = b.append_pax_extensions(recs);
        }
        let mut h = tar::Header::new_gnu();
        let (ty, size) = match e.kind {
            Kind::File => (tar::EntryType::Regular, e.data.len()),
            Kind::Dir => (tar::EntryType::Directory, 0),
            Kind::Symlink => (tar::EntryType::Symlink, 0),
            Kind::Hardlink => (tar::EntryType::Link, 0),
            Kind::Char(..) => (tar::EntryType::Char, 0),
            Kind::Block(..) => (tar::EntryType::Block, 0),
            Kind::Fifo => (tar::EntryType::Fifo, 0),
            Kind::Other(t) => (tar::EntryType::new(t), e.data.len()),
        };
        h.set_entry_type(ty);
        h.set_size(size as u64);
        h.set_mode(e.mode as u32);
        h.set_uid(e.uid as u64);
        h.set_gid(e.uid as u64);
        h.set_mtime(1_700_000_000);
        if let Kind::Char(ma, mi) | Kind::Block(ma, mi) = e.kind {
            let _ = h.set_device_major(ma as u32);
            let _ = h.set_device_minor(mi as u32);
        }
        // names written raw: the tar crate's setters refuse `..`, which is the point here
        let name = name_bytes(&e.name);
        let n = &mut h.as_old_mut().name;
        n[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        let link = match (&e.link, e.link_fixed) {
            (_, Some(i)) => LINKS[i as usize % LINKS.len()].as_bytes().to_vec(),
            (Some(l), None) => name_bytes(l),
            (None, None) => Vec::new(),
        };
        let l = &mut h.as_old_mut().linkname;
        l[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h.set_cksum();
        let _ = b.append(&h, &e.data[..size]);
    }
    let tar = b.into_inner().unwrap_or_default();
    if layer.gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&tar);
        gz.finish().unwrap_or_default()
    } else {
        tar
    }
}

/// A private mount namespace where only the work tmpfs and fuzz/ are writable.
fn sandbox(work: &Path) {
    // SAFETY: plain syscalls with valid NUL-terminated paths.
    unsafe {
        if libc::geteuid() != 0 {
            eprintln!("tar_unpack: not root: running without the read-only sandbox (an unprivileged user cannot overwrite host files anyway)");
            return;
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            panic!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
        }
        let root = c"/";
        if libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
            panic!("make / private: {}", std::io::Error::last_os_error());
        }
        let w = std::ffi::CString::new(work.as_os_str().as_encoded_bytes()).expect("path");
        let tmpfs = c"tmpfs";
        let opts = c"size=256m,mode=0700";
        if libc::mount(tmpfs.as_ptr(), w.as_ptr(), tmpfs.as_ptr(), 0, opts.as_ptr().cast()) != 0 {
            panic!("tmpfs on work dir: {}", std::io::Error::last_os_error());
        }
        let fuzz_dir = std::ffi::CString::new(env!("CARGO_MANIFEST_DIR")).expect("path");
        if libc::mount(fuzz_dir.as_ptr(), fuzz_dir.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
            panic!("bind fuzz dir: {}", std::io::Error::last_os_error());
        }
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const MOUNT_ATTR_RDONLY: u64 = 1;
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        let setattr = |path: &std::ffi::CStr, set: u64, clr: u64, flags: libc::c_uint| {
            let a = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
            let r = libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags,
                &a as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            );
            if r != 0 {
                panic!("mount_setattr {path:?}: {}", std::io::Error::last_os_error());
            }
        };
        setattr(root, MOUNT_ATTR_RDONLY, 0, AT_RECURSIVE);
        setattr(&w, 0, MOUNT_ATTR_RDONLY, 0);
        setattr(&fuzz_dir, 0, MOUNT_ATTR_RDONLY, AT_RECURSIVE);
    }
}

fn work() -> &'static Work {
    static W: OnceLock<Work> = OnceLock::new();
    W.get_or_init(|| {
        // under fuzz/target (git-ignored), a tmpfs in the private namespace
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tar-work");
        std::fs::create_dir_all(&dir).expect("work dir");
        sandbox(&dir);
        Work { dir }
    })
}

/// What `outside/` must hold after every run.
fn plant_outside(w: &Path) {
    let o = w.join("outside");
    std::fs::create_dir_all(o.join("sub")).expect("outside dir");
    std::fs::write(o.join("secret"), b"host secret").expect("secret");
    let _ = std::os::unix::fs::symlink("/etc/passwd", o.join("link"));
}

fn snapshot_outside(w: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(w.join("outside")).expect("read outside") {
        let e = e.expect("entry");
        let md = std::fs::symlink_metadata(e.path()).expect("stat");
        use std::os::unix::fs::MetadataExt as _;
        let content = if md.is_file() { std::fs::read(e.path()).expect("read") } else { Vec::new() };
        out.push((e.file_name().to_string_lossy().into_owned(), md.mode(), content));
    }
    out.sort();
    out
}

fn remove_all(p: &Path) {
    // make every dir writable/searchable first: an unpacked 0000 dir must not stop cleanup
    fn open_up(p: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(md) = std::fs::symlink_metadata(p) {
            if md.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(p);
    let _ = std::fs::remove_dir_all(p);
}

fuzz_target!(|data: &[u8]| {
    let w = &work().dir;
    let (tar, as_layer) = match data.first() {
        Some(b) if b % 2 == 1 => {
            let mut u = Unstructured::new(&data[1..]);
            let Ok(layer) = Layer::arbitrary(&mut u) else {
                return;
            };
            (build(&layer), layer.as_layer)
        }
        Some(b) => (data[1..].to_vec(), b % 4 == 0),
        None => return,
    };
    plant_outside(w);
    let before = snapshot_outside(w);
    let root = w.join("root");
    std::fs::create_dir_all(&root).expect("root");
    if as_layer {
        let snaps = berth_snapshot::Snapshotter::open(&root).expect("open snapshotter");
        // dropped unless committed: whatever was unpacked is removed again
        let _ = snaps.unpack_layer(tar.as_slice());
    } else {
        let _ = berth_snapshot::extract_into(&root, tar.as_slice());
    }
    let mut names: Vec<String> = std::fs::read_dir(w)
        .expect("read work dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["outside", "root"], "something was created next to the root");
    assert_eq!(snapshot_outside(w), before, "outside/ changed");
    remove_all(&root);
});
