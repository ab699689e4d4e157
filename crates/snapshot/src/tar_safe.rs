//! Safe extraction of a layer tar into a directory the daemon (root, host mount namespace)
//! owns. Every entry is created relative to a directory fd opened component by component with
//! `O_NOFOLLOW`, so no symlink in the layer (or planted by an earlier entry) is ever followed.
//! Whiteouts become overlayfs whiteouts.

use crate::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidTar(msg.into())
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits an entry path into components: strips `./` and empty components; rejects absolute
/// paths, `..` and NUL bytes.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.first() == Some(&b'/') {
        return Err(invalid(format!("absolute path {}", show(raw))));
    }
    if raw.contains(&0) {
        return Err(invalid(format!("NUL in path {}", show(raw))));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(invalid(format!("path with '..': {}", show(raw)))),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn os(c: &[u8]) -> &OsStr {
    OsStr::from_bytes(c)
}

/// Attributes of one entry (header values overridden by PAX records).
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Attrs {
    fn times(&self) -> TimeSpec {
        TimeSpec::new(self.mtime as _, 0)
    }
}

/// Directories below the root are kept open along the path of the last entry, so that the
/// next entry in the same or a nearby directory needs no walk from the root.
const MAX_CACHED_DIRS: usize = 64;

/// Buffer for file contents (one allocation per extraction).
const COPY_BUF: usize = 256 * 1024;

pub(crate) struct Extractor {
    root: OwnedFd,
    /// components of the directory path held open in `dir_fds` (`dir_fds[i]` is the directory
    /// `dir_path[..=i]`, each opened with `O_NOFOLLOW` from the one before)
    dir_path: Vec<Vec<u8>>,
    dir_fds: Vec<OwnedFd>,
    buf: Vec<u8>,
    /// directories whose mtime is set once the whole stream is extracted, by their
    /// components joined with NUL (once per directory however often the tar names it, so
    /// memory follows the number of directories made, not of entries)
    dir_times: HashMap<Vec<u8>, i64>,
    /// bytes of regular file content
    pub(crate) size: u64,
    /// turn `.wh.` entries into overlay whiteouts (layers), or keep them as files (`cp`)
    pub(crate) whiteouts: bool,
    /// owners are shifted to these host ids (`berthd --userns-remap`)
    pub(crate) ids: Option<berth_util::idmap::IdMaps>,
}

fn set_xattr_fd(fd: BorrowedFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid fd, NUL-terminated name, value pointer/len from a slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Extractor {
    pub(crate) fn new(root: OwnedFd) -> Extractor {
        Extractor {
            root,
            dir_path: Vec::new(),
            dir_fds: Vec::new(),
            buf: Vec::new(),
            dir_times: HashMap::new(),
            size: 0,
            whiteouts: true,
            ids: None,
        }
    }

    /// Forgets the open directories at or below `comps`, which the entry about to be applied
    /// may replace or remove.
    fn invalidate(&mut self, comps: &[Vec<u8>]) {
        if self.dir_path.len() >= comps.len() && self.dir_path[..comps.len()] == *comps {
            let keep = comps.len().saturating_sub(1);
            self.dir_path.truncate(keep);
            self.dir_fds.truncate(keep);
        }
    }

    /// Opens `name` in `dir` as a directory without following symlinks, creating it (0755)
    /// when missing and `create`.
    fn open_child(dir: BorrowedFd, name: &[u8], create: bool, entry: &[u8]) -> Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, os(name), flags, Mode::empty()) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) if create => {
                mkdirat(dir, os(name), Mode::from_bits_truncate(0o755))?;
                Ok(openat(dir, os(name), flags, Mode::empty())?)
            }
            Err(Errno::ENOENT) => Err(invalid(format!(
                "{}: {} does not exist in the layer",
                show(entry),
                show(name)
            ))),
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Err(invalid(format!(
                "{}: parent {} is a symlink or not a directory",
                show(entry),
                show(name)
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the directory `comps` below the root without following symlinks, creating
    /// missing components (0755) when `create`. Reuses the directories held open for the
    /// previous entry.
    fn open_dir(&mut self, comps: &[Vec<u8>], create: bool, entry: &[u8]) -> Result<OwnedFd> {
        let common = self
            .dir_path
            .iter()
            .zip(comps)
            .take_while(|(a, b)| a == b)
            .count();
        self.dir_path.truncate(common);
        self.dir_fds.truncate(common);
        let mut deep: Option<OwnedFd> = None;
        for c in &comps[common..] {
            let next = {
                let dir = match (&deep, self.dir_fds.last()) {
                    (Some(fd), _) => fd.as_fd(),
                    (None, Some(fd)) => fd.as_fd(),
                    (None, None) => self.root.as_fd(),
                };
                Self::open_child(dir, c, create, entry)?
            };
            if deep.is_none() && self.dir_fds.len() < MAX_CACHED_DIRS {
                self.dir_path.push(c.clone());
                self.dir_fds.push(next);
            } else {
                deep = Some(next);
            }
        }
        match (deep, self.dir_fds.last()) {
            (Some(fd), _) => Ok(fd),
            (None, Some(fd)) => Ok(fd.try_clone()?),
            (None, None) => Ok(self.root.try_clone()?),
        }
    }

    /// Opens `comps` walking from the root, without touching the open directories (for
    /// hard link targets).
    fn open_dir_uncached(&self, comps: &[Vec<u8>], entry: &[u8]) -> Result<OwnedFd> {
        let mut cur = self.root.try_clone()?;
        for c in comps {
            cur = Self::open_child(cur.as_fd(), c, false, entry)?;
        }
        Ok(cur)
    }

    /// Removes whatever is at `dir/name` (recursively for directories) unless it is a
    /// directory and `keep_dir`. Returns true if a directory was kept.
    fn clear(&self, dir: BorrowedFd, name: &[u8], keep_dir: bool) -> Result<bool> {
        let st = match fstatat(dir, os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            remove_tree_at(dir, name)?;
        } else {
            unlinkat(dir, os(name), UnlinkatFlags::NoRemoveDir)?;
        }
        Ok(false)
    }

    pub(crate) fn run(&mut self, reader: impl Read) -> Result<()> {
        // header records are size-capped (the tar crate buffers them whole), content streams
        berth_util::io::for_each_tar_entry(
            reader,
            |e| invalid(format!("reading tar: {e}")),
            |entry| self.entry(entry),
        )?;
        // directory mtimes last (deepest first) since creating children changed them
        let mut dir_times: Vec<(Vec<u8>, i64)> =
            std::mem::take(&mut self.dir_times).into_iter().collect();
        dir_times.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        self.dir_path.clear();
        self.dir_fds.clear();
        for (joined, mtime) in &dir_times {
            let comps: Vec<Vec<u8>> = joined.split(|b| *b == 0).map(|c| c.to_vec()).collect();
            if let Ok(fd) = self.open_dir(&comps, false, b"") {
                let t = TimeSpec::new(*mtime as _, 0);
                let _ = futimens(&fd, &t, &t);
            }
        }
        Ok(())
    }

    fn attrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<Attrs> {
        let h = entry.header();
        let bad = |e: io::Error| invalid(format!("bad tar header: {e}"));
        let mut a = Attrs {
            mode: h.mode().map_err(bad)? & 0o7777,
            uid: h.uid().map_err(bad)? as u32,
            gid: h.gid().map_err(bad)? as u32,
            mtime: h.mtime().map_err(bad)? as i64,
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                let key = ext.key_bytes();
                let val = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(val)
                        .ok()
                        .and_then(|s| s.split('.').next())
                        .and_then(|s| s.parse::<i64>().ok())
                };
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    a.xattrs.push((name.to_vec(), val.to_vec()));
                } else if key == b"uid" {
                    a.uid = num().unwrap_or(a.uid as i64) as u32;
                } else if key == b"gid" {
                    a.gid = num().unwrap_or(a.gid as i64) as u32;
                } else if key == b"mtime" {
                    a.mtime = num().unwrap_or(a.mtime);
                }
            }
        }
        Ok(a)
    }

    fn xattrs_fd(fd: BorrowedFd, a: &Attrs, path: &[u8]) {
        for (k, v) in &a.xattrs {
            // overlayfs reads its own trusted.overlay.* attributes (opaque, redirect,
            // metacopy, origin) from the layers: only the unpacker sets them, from whiteouts
            if k.starts_with(b"trusted.overlay.") {
                tracing::debug!(path = %show(path), xattr = %show(k), "overlay xattr from a tar dropped");
                continue;
            }
            if let Err(e) = set_xattr_fd(fd, k, v) {
                tracing::debug!(path = %show(path), xattr = %show(k), error = %e, "xattr not set");
            }
        }
    }

    /// Copies a file's content from the tar in large writes.
    fn copy_content(&mut self, from: &mut impl Read, to: &mut File, raw: &[u8]) -> Result<u64> {
        use std::io::Write as _;
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUF];
        }
        let mut total = 0u64;
        loop {
            let n = match from.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(invalid(format!("reading {}: {e}", show(raw)))),
            };
            to.write_all(&self.buf[..n])?;
            total += n as u64;
        }
        Ok(total)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let comps = clean_path(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            // the layer root itself (`./`)
            return Ok(());
        };
        let attrs = Self::attrs(entry)?;
        // what this entry may replace: its own path, or the whited-out one
        match name.strip_prefix(WHITEOUT_PREFIX) {
            Some(real) if self.whiteouts && !real.starts_with(WHITEOUT_PREFIX) => {
                let mut target = parents.to_vec();
                target.push(real.to_vec());
                self.invalidate(&target);
            }
            _ => self.invalidate(&comps),
        }
        let pfd = self.open_dir(parents, true, &raw)?;
        let p = pfd.as_fd();

        if self.whiteouts && name.starts_with(WHITEOUT_PREFIX) {
            if name.as_slice() == OPAQUE_MARKER {
                set_xattr_fd(p, b"trusted.overlay.opaque", b"y")?;
            } else if name.starts_with(WHITEOUT_META_PREFIX) {
                tracing::debug!(path = %show(&raw), "ignoring whiteout metadata entry");
            } else {
                let real = &name[WHITEOUT_PREFIX.len()..];
                if real.is_empty() || real == b"." || real == b".." {
                    return Err(invalid(format!("bad whiteout {}", show(&raw))));
                }
                self.clear(p, real, false)?;
                mknodat(
                    p,
                    os(real),
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    libc::makedev(0, 0),
                )?;
            }
            return Ok(());
        }

        let (huid, hgid) = match &self.ids {
            None => (attrs.uid, attrs.gid),
            Some(m) => (
                m.uid_to_host(attrs.uid).ok_or_else(|| {
                    invalid(format!(
                        "container ID {} of {} cannot be mapped to a host ID",
                        attrs.uid,
                        show(&raw)
                    ))
                })?,
                m.gid_to_host(attrs.gid).ok_or_else(|| {
                    invalid(format!(
                        "container ID {} of {} cannot be mapped to a host ID",
                        attrs.gid,
                        show(&raw)
                    ))
                })?,
            ),
        };
        let uid = Some(Uid::from_raw(huid));
        let gid = Some(Gid::from_raw(hgid));
        let mode = Mode::from_bits_truncate(attrs.mode);
        let t = attrs.times();

        if kind.is_dir() {
            if !self.clear(p, name, true)? {
                mkdirat(p, os(name), Mode::from_bits_truncate(0o700))?;
            }
            let fd = openat(
                p,
                os(name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            fchown(&fd, uid, gid)?;
            fchmod(&fd, mode)?;
            Self::xattrs_fd(fd.as_fd(), &attrs, &raw);
            self.dir_times.insert(comps.join(&0u8), attrs.mtime);
        } else if kind.is_file() || kind.is_contiguous() {
            let create = || {
                openat(
                    p,
                    os(name),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
            };
            // most names are new: try first, clear what is there only if that fails
            let fd = match create() {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => {
                    self.clear(p, name, false)?;
                    create()?
                }
                Err(e) => return Err(e.into()),
            };
            let mut f = File::from(fd);
            let n = self.copy_content(entry, &mut f, &raw)?;
            self.size += n;
            fchown(&f, uid, gid)?;
            fchmod(&f, mode)?;
            Self::xattrs_fd(f.as_fd(), &attrs, &raw);
            futimens(&f, &t, &t)?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| invalid(format!("symlink {} without target", show(&raw))))?
                .into_owned();
            if target.is_empty() || target.contains(&0) {
                return Err(invalid(format!("bad symlink target for {}", show(&raw))));
            }
            self.clear(p, name, false)?;
            // the target is stored, never followed here
            symlinkat(os(&target), p, os(name))?;
            fchownat(p, os(name), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            utimensat(p, os(name), &t, &t, UtimensatFlags::NoFollowSymlink)?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| invalid(format!("hardlink {} without target", show(&raw))))?
                .into_owned();
            let tcomps = clean_path(&target)?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(invalid(format!("bad hardlink target for {}", show(&raw))));
            };
            if tcomps == comps {
                return Err(invalid(format!("hardlink {} to itself", show(&raw))));
            }
            let tfd = self.open_dir_uncached(tparents, &target)?;
            match fstatat(&tfd, os(tname), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    return Err(invalid(format!("hardlink {} to a directory", show(&raw))))
                }
                Ok(_) => {}
                Err(Errno::ENOENT) => {
                    return Err(invalid(format!(
                        "hardlink {} to missing {}",
                        show(&raw),
                        show(&target)
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            self.clear(p, name, false)?;
            // no AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed
            linkat(&tfd, os(tname), p, os(name), AtFlags::empty())?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let (sflag, dev) = if kind.is_fifo() {
                (SFlag::S_IFIFO, 0)
            } else {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let f = if kind.is_block_special() {
                    SFlag::S_IFBLK
                } else {
                    SFlag::S_IFCHR
                };
                (f, libc::makedev(major, minor))
            };
            self.clear(p, name, false)?;
            mknodat(p, os(name), sflag, Mode::empty(), dev)?;
            fchownat(p, os(name), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            // a node we just created in a private directory: not a symlink
            fchmodat(p, os(name), mode, FchmodatFlags::FollowSymlink)?;
            utimensat(p, os(name), &t, &t, UtimensatFlags::NoFollowSymlink)?;
        } else {
            return Err(invalid(format!(
                "unsupported entry type {:?} for {}",
                kind,
                show(&raw)
            )));
        }
        Ok(())
    }
}

/// Removes `dir/name` recursively without following symlinks.
pub(crate) fn remove_tree_at(dir: BorrowedFd, name: &[u8]) -> Result<()> {
    match unlinkat(dir, os(name), UnlinkatFlags::RemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => {}
        Err(Errno::ENOTDIR) => {
            unlinkat(dir, os(name), UnlinkatFlags::NoRemoveDir)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let fd = openat(
        dir,
        os(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    {
        let mut d = nix::dir::Dir::from_fd(fd.try_clone()?)?;
        for e in d.iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                children.push(n.to_vec());
            }
        }
    }
    for c in children {
        remove_tree_at(fd.as_fd(), &c)?;
    }
    unlinkat(dir, os(name), UnlinkatFlags::RemoveDir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_path(b"./a/b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(clean_path(b"a//./b").unwrap().len(), 2);
        assert!(clean_path(b"./").unwrap().is_empty());
        assert!(clean_path(b"/abs").is_err());
        assert!(clean_path(b"../x").is_err());
        assert!(clean_path(b"a/../b").is_err());
        assert!(clean_path(b"a/..").is_err());
        assert!(clean_path(b"a\0b").is_err());
    }
}
