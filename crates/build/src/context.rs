//! The build context: the request body (a tar, gzip or not; or, for `docker build - <
//! Dockerfile`, a bare Dockerfile) unpacked into a private directory that is removed when the
//! [`Context`] is dropped. Hostile entries (`..`, absolute paths, links out of the root,
//! devices) are refused with an error; paths inside are always resolved by the kernel inside
//! the root (`berth_util::inroot`).
//!
//! The unpacker is the context's own, not the layer extractor of `berth-snapshot`: a context
//! is data for COPY, so owners and xattrs are not applied (COPY writes root or `--chown`),
//! whiteouts mean nothing, devices and FIFOs are dropped, and absolute names are made
//! relative (as docker does) instead of refused. What it shares with the layer extractor is
//! the safety rule: every entry is created from a directory descriptor opened component by
//! component with `O_NOFOLLOW`, so no symlink of the context (data) is ever followed while
//! unpacking, and the header budget of `berth_util::io::for_each_tar_entry`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_util::dockerignore::Matcher;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};

use crate::copy::{compression, is_tar_header, read_head, Compression};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// bad or hostile input (400)
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<Errno> for ContextError {
    fn from(e: Errno) -> Self {
        ContextError::Io(io::Error::from(e))
    }
}

/// The largest `.dockerignore` read.
const MAX_DOCKERIGNORE: u64 = 4 << 20;
/// The largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 32 << 20;

/// An unpacked build context.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Matcher,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(dir = %self.root.display(), error = %e, "build context not removed");
        }
    }
}

fn invalid(msg: impl Into<String>) -> ContextError {
    ContextError::Invalid(msg.into())
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Context {
    /// Unpacks `body` into a new directory under `parent` (the daemon's exec root: tmpfs).
    /// A body that is not a tar is taken as the Dockerfile itself (named `Dockerfile`).
    pub fn unpack(body: impl Read, parent: &Path) -> Result<Context, ContextError> {
        let root = parent.join(format!("build-ctx-{}", berth_util::fs::unique_suffix()));
        std::fs::DirBuilder::new().mode(0o700).create(&root)?;
        // from here on, an error removes the directory (Drop)
        let mut ctx = Context {
            root,
            ignore: Matcher::default(),
        };
        ctx.fill(body)?;
        if let Some(text) = berth_util::inroot::read_regular(
            &ctx.root,
            Path::new(".dockerignore"),
            MAX_DOCKERIGNORE,
        )? {
            ctx.ignore = Matcher::parse(&String::from_utf8_lossy(&text))
                .map_err(|e| invalid(format!("failed to parse .dockerignore: {e}")))?;
        }
        Ok(ctx)
    }

    fn fill(&mut self, body: impl Read) -> Result<(), ContextError> {
        let mut body = body;
        let head = read_head(&mut body, 6)?;
        let raw = io::Cursor::new(head.clone()).chain(body);
        let mut stream: Box<dyn Read> = match compression(&head) {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            c => {
                return Err(invalid(format!(
                    "unsupported build context compression ({c:?}): send a plain or gzip tar"
                )))
            }
        };
        let block = read_head(&mut stream, 512)?;
        let stream = io::Cursor::new(block.clone()).chain(stream);
        if !is_tar_header(&block) {
            // a bare Dockerfile (old clients' `docker build - < Dockerfile`)
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(self.root.join("Dockerfile"))?;
            let n = io::copy(&mut stream.take(MAX_DOCKERFILE + 1), &mut f)?;
            if n > MAX_DOCKERFILE {
                return Err(invalid(format!(
                    "the Dockerfile is larger than {} MiB",
                    MAX_DOCKERFILE >> 20
                )));
            }
            f.flush()?;
            return Ok(());
        }
        let root = berth_util::inroot::open_root(&self.root)?;
        let root = reopen_dir(root.as_fd())?;
        let mut u = Unpacker {
            root,
            last: None,
            dirs: HashMap::new(),
            umask: process_umask(),
        };
        berth_util::io::for_each_tar_entry(
            stream,
            |e| invalid(format!("invalid build context: {e}")),
            |entry| u.entry(entry),
        )?;
        u.finish();
        Ok(())
    }

    /// The context's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` of the context (empty when there is none).
    pub fn ignore(&self) -> &Matcher {
        &self.ignore
    }

    /// Reads the Dockerfile named `name` (relative to the root; default `Dockerfile`, with
    /// docker's fallback to `dockerfile`). Errors as docker's: `Cannot locate specified
    /// Dockerfile: <name>`.
    pub fn dockerfile(&self, name: Option<&str>) -> Result<String, ContextError> {
        let name = name.filter(|n| !n.is_empty());
        let candidates: Vec<&str> = match name {
            Some(n) => vec![n],
            None => vec!["Dockerfile", "dockerfile"],
        };
        let shown = name.unwrap_or("Dockerfile");
        let missing = || invalid(format!("Cannot locate specified Dockerfile: {shown}"));
        for c in candidates {
            // a name that climbs out of the context is not in it
            let mut depth: i32 = 0;
            for comp in c.split('/') {
                match comp {
                    "" | "." => {}
                    ".." => depth -= 1,
                    _ => depth += 1,
                }
                if depth < 0 {
                    return Err(missing());
                }
            }
            match berth_util::inroot::read_regular(&self.root, Path::new(c), MAX_DOCKERFILE) {
                Ok(Some(text)) => return Ok(String::from_utf8_lossy(&text).into_owned()),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                    return Err(invalid(format!(
                        "the Dockerfile is larger than {} MiB",
                        MAX_DOCKERFILE >> 20
                    )))
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ENOENT)
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(missing())
    }
}

/// An `O_RDONLY` descriptor of a directory opened `O_PATH` (the `*at` calls that create need
/// a real one).
fn reopen_dir(fd: BorrowedFd) -> Result<OwnedFd, ContextError> {
    Ok(openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

struct Unpacker {
    root: OwnedFd,
    /// the directory of the previous entry (most entries share it)
    last: Option<(Vec<u8>, OwnedFd)>,
    /// directories named by the tar: mode and mtime, applied at the end (a read-only
    /// directory must still take its children first)
    dirs: HashMap<Vec<u8>, (u32, u64)>,
    /// the process's umask: a file created with a mode it leaves alone needs no `fchmod`
    umask: Option<u32>,
}

/// The umask, read without changing it (`umask(2)` would, for every thread); `None` when
/// unknown.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

fn clean(raw: &[u8]) -> Result<Vec<&[u8]>, ContextError> {
    if raw.contains(&0) {
        return Err(invalid(format!(
            "invalid build context: NUL in the name {}",
            show(raw)
        )));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(format!(
                    "invalid build context: {} leaves the context ('..')",
                    show(raw)
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Unpacker {
    /// Opens the directory `comps` below the root, never through a symlink, creating missing
    /// components (0755).
    fn open_dir(&self, comps: &[&[u8]], create: bool, raw: &[u8]) -> Result<OwnedFd, ContextError> {
        let mut cur = self.root.try_clone()?;
        for c in comps {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let name = OsStr::from_bytes(c);
            cur = match openat(cur.as_fd(), name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(cur.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    openat(cur.as_fd(), name, flags, Mode::empty())?
                }
                Err(Errno::ENOENT) => {
                    return Err(invalid(format!(
                        "invalid build context: the link {} points to a missing file",
                        show(raw)
                    )))
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(invalid(format!(
                        "invalid build context: {}: {} is a symlink or not a directory",
                        show(raw),
                        show(c)
                    )))
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(cur)
    }

    fn parent(&mut self, parents: &[&[u8]], raw: &[u8]) -> Result<BorrowedFd<'_>, ContextError> {
        let key = parents.join(&b'/');
        let hit = matches!(&self.last, Some((k, _)) if *k == key);
        if !hit {
            let fd = self.open_dir(parents, true, raw)?;
            self.last = Some((key, fd));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Ok(self.root.as_fd()),
        }
    }

    /// Removes a non-directory at `dir/name` (a later entry replaces an earlier one);
    /// whether a directory is there.
    fn clear(dir: BorrowedFd, name: &OsStr) -> Result<bool, ContextError> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(true),
            Ok(_) => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
                Ok(false)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ContextError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        // absolute names are made relative, as docker does; `..` is refused
        let comps = clean(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            return Ok(());
        };
        let bad = |e: io::Error| invalid(format!("invalid build context: {}: {e}", show(&raw)));
        let h = entry.header();
        let mode = h.mode().map_err(bad)? & 0o7777;
        let mtime = h.mtime().map_err(bad)?;
        let t = TimeSpec::new(mtime as _, 0);
        let name = OsStr::from_bytes(name);
        if kind.is_dir() {
            let p = self.parent(parents, &raw)?;
            if !Self::clear(p, name)? {
                mkdirat(p, name, Mode::from_bits_truncate(0o755))?;
            }
            self.dirs.insert(comps.join(&b'/'), (mode, mtime));
        } else if kind.is_file() || kind.is_contiguous() {
            // created with its final mode when the umask leaves it so (one syscall less per
            // file); else 0600 and changed after
            let direct = self
                .umask
                .is_some_and(|m| mode & 0o7000 == 0 && mode & m == 0);
            let p = self.parent(parents, &raw)?;
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let cmode = Mode::from_bits_truncate(if direct { mode } else { 0o600 });
            let fd = match openat(p, name, flags, cmode) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => {
                    if Self::clear(p, name)? {
                        return Err(invalid(format!(
                            "invalid build context: {} is both a directory and a file",
                            show(&raw)
                        )));
                    }
                    openat(p, name, flags, cmode)?
                }
                Err(e) => return Err(e.into()),
            };
            let mut f = File::from(fd);
            io::copy(entry, &mut f).map_err(bad)?;
            if !direct {
                fchmod(&f, Mode::from_bits_truncate(mode))?;
            }
            futimens(&f, &t, &t)?;
        } else if kind.is_symlink() {
            // a symlink is data: stored as it is, never followed here
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            if target.is_empty() || target.contains(&0) {
                return Err(invalid(format!(
                    "invalid build context: bad symlink target for {}",
                    show(&raw)
                )));
            }
            let p = self.parent(parents, &raw)?;
            if Self::clear(p, name)? {
                return Err(invalid(format!(
                    "invalid build context: {} is both a directory and a symlink",
                    show(&raw)
                )));
            }
            symlinkat(OsStr::from_bytes(&target), p, name)?;
            utimensat(p, name, &t, &t, UtimensatFlags::NoFollowSymlink)?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let tcomps = clean(&target)?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(invalid(format!(
                    "invalid build context: bad hard link target for {}",
                    show(&raw)
                )));
            };
            let tdir = self.open_dir(tparents, false, &raw)?;
            let tname = OsStr::from_bytes(tname);
            match fstatat(tdir.as_fd(), tname, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    return Err(invalid(format!(
                        "invalid build context: hard link {} to a directory",
                        show(&raw)
                    )))
                }
                Ok(_) => {}
                Err(Errno::ENOENT) => {
                    return Err(invalid(format!(
                        "invalid build context: hard link {} to missing {}",
                        show(&raw),
                        show(&target)
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            if tcomps == comps {
                return Ok(());
            }
            let p = self.parent(parents, &raw)?;
            if Self::clear(p, name)? {
                return Err(invalid(format!(
                    "invalid build context: {} is both a directory and a link",
                    show(&raw)
                )));
            }
            // no AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself
            linkat(tdir.as_fd(), tname, p, name, AtFlags::empty())?;
        } else {
            tracing::debug!(entry = %show(&raw), kind = ?kind, "build context: device, FIFO or unknown entry dropped");
        }
        Ok(())
    }

    /// Modes and mtimes of the directories, deepest first.
    fn finish(&mut self) {
        self.last = None;
        let mut dirs: Vec<(Vec<u8>, (u32, u64))> =
            std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        for (path, (mode, mtime)) in dirs {
            let comps: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
            if let Ok(fd) = self.open_dir(&comps, false, &path) {
                let t = TimeSpec::new(mtime as _, 0);
                let _ = fchmod(&fd, Mode::from_bits_truncate(mode));
                let _ = futimens(&fd, &t, &t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with raw names (the tar crate's builder refuses `..` and absolute paths).
    fn entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            g.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }

    fn end(mut out: Vec<u8>) -> Vec<u8> {
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }

    fn leftovers(parent: &Path) -> usize {
        std::fs::read_dir(parent).unwrap().count()
    }

    #[test]
    fn unpacks_plain_and_gzip() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        entry(
            &mut t,
            "Dockerfile",
            tar::EntryType::Regular,
            "",
            b"FROM busybox\n",
        );
        entry(
            &mut t,
            "/abs/f",
            tar::EntryType::Regular,
            "",
            b"made relative",
        );
        entry(&mut t, "dir/", tar::EntryType::Directory, "", b"");
        entry(
            &mut t,
            "dir/link",
            tar::EntryType::Symlink,
            "/etc/passwd",
            b"",
        );
        entry(&mut t, "dir/hard", tar::EntryType::Link, "abs/f", b"");
        entry(&mut t, "dev", tar::EntryType::Char, "", b"");
        entry(&mut t, "fifo", tar::EntryType::Fifo, "", b"");
        entry(
            &mut t,
            ".dockerignore",
            tar::EntryType::Regular,
            "",
            b"*.tmp\n",
        );
        let t = end(t);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        for body in [t, gz] {
            let c = Context::unpack(&body[..], d.path()).unwrap();
            let r = c.root().to_path_buf();
            assert_eq!(c.dockerfile(None).unwrap(), "FROM busybox\n");
            assert_eq!(
                std::fs::read_to_string(r.join("abs/f")).unwrap(),
                "made relative"
            );
            assert_eq!(
                std::fs::read_link(r.join("dir/link")).unwrap(),
                Path::new("/etc/passwd")
            );
            assert_eq!(
                std::fs::read_to_string(r.join("dir/hard")).unwrap(),
                "made relative"
            );
            assert!(!r.join("dev").exists() && !r.join("fifo").exists());
            drop(c);
            assert!(!r.exists());
            assert_eq!(leftovers(d.path()), 0);
        }
    }

    #[test]
    fn hostile_entries_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            {
                let mut t = Vec::new();
                entry(&mut t, "ok", tar::EntryType::Regular, "", b"x");
                entry(&mut t, "../evil", tar::EntryType::Regular, "", b"x");
                (end(t), "leaves the context")
            },
            {
                let mut t = Vec::new();
                entry(&mut t, "a/../../evil", tar::EntryType::Regular, "", b"x");
                (end(t), "leaves the context")
            },
            {
                let mut t = Vec::new();
                entry(&mut t, "h", tar::EntryType::Link, "../../etc/passwd", b"");
                (end(t), "leaves the context")
            },
            {
                let mut t = Vec::new();
                entry(&mut t, "h", tar::EntryType::Link, "/etc/passwd", b"");
                (end(t), "missing")
            },
            {
                // a symlink to the outside, then a file through it
                let mut t = Vec::new();
                entry(&mut t, "out", tar::EntryType::Symlink, "/tmp", b"");
                entry(&mut t, "out/evil", tar::EntryType::Regular, "", b"x");
                (end(t), "symlink")
            },
        ];
        for (body, want) in cases {
            let e = Context::unpack(&body[..], d.path()).unwrap_err();
            assert!(matches!(e, ContextError::Invalid(_)), "{e:?}");
            assert!(e.to_string().contains(want), "{e} (want {want})");
            assert_eq!(leftovers(d.path()), 0);
        }
    }

    #[test]
    fn a_bare_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let c = Context::unpack(&b"FROM busybox\nRUN true\n"[..], d.path()).unwrap();
        assert_eq!(c.dockerfile(None).unwrap(), "FROM busybox\nRUN true\n");
        let c = Context::unpack(&b""[..], d.path()).unwrap();
        assert_eq!(c.dockerfile(None).unwrap(), "");
    }

    #[test]
    fn dockerfile_names() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        entry(&mut t, "dockerfile", tar::EntryType::Regular, "", b"lower");
        entry(
            &mut t,
            "sub/Dockerfile.dev",
            tar::EntryType::Regular,
            "",
            b"dev",
        );
        entry(
            &mut t,
            "esc",
            tar::EntryType::Symlink,
            "/../../etc/passwd",
            b"",
        );
        let c = Context::unpack(&end(t)[..], d.path()).unwrap();
        assert_eq!(c.dockerfile(None).unwrap(), "lower");
        assert_eq!(c.dockerfile(Some("sub/Dockerfile.dev")).unwrap(), "dev");
        assert_eq!(
            c.dockerfile(Some("./sub/../sub/Dockerfile.dev")).unwrap(),
            "dev"
        );
        for bad in ["nope", "../x", "sub/../../x", "esc"] {
            assert_eq!(
                c.dockerfile(Some(bad)).unwrap_err().to_string(),
                format!("Cannot locate specified Dockerfile: {bad}")
            );
        }
        let empty = Context::unpack(&end(Vec::new())[..], d.path()).unwrap();
        assert_eq!(
            empty.dockerfile(None).unwrap_err().to_string(),
            "Cannot locate specified Dockerfile: Dockerfile"
        );
    }

    #[test]
    fn five_thousand_small_files() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..5000 {
            let mut h = tar::Header::new_gnu();
            let data = format!("file {i}\n");
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("d{:02}/f{i:04}", i / 100), data.as_bytes())
                .unwrap();
        }
        let t = b.into_inner().unwrap();
        // the exec root is a tmpfs: measure there when it is available
        let parent = Path::new("/dev/shm");
        let parent = if parent.is_dir() { parent } else { d.path() };
        let start = std::time::Instant::now();
        let cpu = crate::copy::cpu_time();
        let c = Context::unpack(&t[..], parent).unwrap();
        let took = start.elapsed();
        let cpu = crate::copy::cpu_time() - cpu;
        eprintln!(
            "5000 files unpacked in {took:?} (cpu {cpu:?}) under {}",
            parent.display()
        );
        assert_eq!(
            std::fs::read_to_string(c.root().join("d49/f4999")).unwrap(),
            "file 4999\n"
        );
    }

    #[test]
    fn modes_and_mtimes_are_kept() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, mode) in [("ro", 0o444), ("x", 0o755), ("suid", 0o4755), ("ww", 0o666)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(mode);
            h.set_mtime(1_234_567);
            b.append_data(&mut h, name, &b"x"[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o555);
        h.set_mtime(7_654_321);
        h.set_size(0);
        b.append_data(&mut h, "rodir/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "rodir/inside", &b"y"[..]).unwrap();
        let c = Context::unpack(&b.into_inner().unwrap()[..], d.path()).unwrap();
        for (name, mode) in [("ro", 0o444), ("x", 0o755), ("suid", 0o4755), ("ww", 0o666)] {
            let md = std::fs::metadata(c.root().join(name)).unwrap();
            assert_eq!(md.mode() & 0o7777, mode, "{name}");
            assert_eq!(md.mtime(), 1_234_567, "{name}");
        }
        let md = std::fs::metadata(c.root().join("rodir")).unwrap();
        assert_eq!((md.mode() & 0o7777, md.mtime()), (0o555, 7_654_321));
        assert!(c.root().join("rodir/inside").is_file());
    }
}
