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

use crate::copy::{decompressed, is_tar_header, read_head};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

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
        unregister(&self.root);
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
        let (_, mut stream) = decompressed(body).map_err(|e| {
            invalid(format!(
                "unsupported build context: {e}: send a plain, gzip, bzip2 or xz tar"
            ))
        })?;
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
        let umask = process_umask();
        let mut u = Unpacker {
            root,
            last: None,
            dirs: HashMap::new(),
            umask,
            index: Index::new(umask),
            buf: vec![0; 256 << 10],
            batch: Vec::new(),
            batch_bytes: 0,
            batch_paths: std::collections::HashSet::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
        };
        berth_util::io::for_each_tar_entry(
            stream,
            |e| invalid(format!("invalid build context: {e}")),
            |entry| u.entry(entry),
        )?;
        u.flush()?;
        u.finish();
        register(&self.root, u.index);
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

/// Opens the directory `comps` below `root`, never through a symlink, creating missing
/// components (0755) with `create` (another thread may make the same one: `EEXIST` is fine).
fn open_dir_at(
    root: BorrowedFd,
    comps: &[&[u8]],
    create: bool,
    raw: &[u8],
) -> Result<OwnedFd, ContextError> {
    let mut cur = root.try_clone_to_owned()?;
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

struct Unpacker {
    root: OwnedFd,
    /// the directory of the previous entry (most entries share it)
    last: Option<(Vec<u8>, OwnedFd)>,
    /// directories named by the tar: mode and mtime, applied at the end (a read-only
    /// directory must still take its children first)
    dirs: HashMap<Vec<u8>, (u32, u64)>,
    /// the process's umask: a file created with a mode it leaves alone needs no `fchmod`
    umask: Option<u32>,
    /// what is unpacked, with the content digests taken on the way
    index: Index,
    buf: Vec<u8>,
    /// small files read, not yet written (see [`Unpacker::flush`])
    batch: Vec<Job>,
    batch_bytes: usize,
    batch_paths: std::collections::HashSet<Vec<u8>>,
    /// writer threads (1: everything written in order by the reading thread)
    threads: usize,
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
        open_dir_at(self.root.as_fd(), comps, create, raw)
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
        clear_at(dir, name)
    }
}

/// See [`Unpacker::clear`].
fn clear_at(dir: BorrowedFd, name: &OsStr) -> Result<bool, ContextError> {
    {
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
}

/// Creates the regular file `dir/name` (replacing a non-directory) with its final mode when
/// the umask leaves it so (no `fchmod` then); whether a `fchmod` is still due.
fn create_file(
    dir: BorrowedFd,
    name: &OsStr,
    raw: &[u8],
    mode: u32,
    umask: Option<u32>,
) -> Result<(File, bool), ContextError> {
    let direct = umask.is_some_and(|m| mode & 0o7000 == 0 && mode & m == 0);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let cmode = Mode::from_bits_truncate(if direct { mode } else { 0o600 });
    let fd = match openat(dir, name, flags, cmode) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => {
            if clear_at(dir, name)? {
                return Err(invalid(format!(
                    "invalid build context: {} is both a directory and a file",
                    show(raw)
                )));
            }
            openat(dir, name, flags, cmode)?
        }
        Err(e) => return Err(e.into()),
    };
    Ok((File::from(fd), !direct))
}

/// Mode (when the create could not set it) and mtime of a file just written.
fn seal_file(f: &File, mode: u32, chmod: bool, mtime: u64) -> Result<(), ContextError> {
    if chmod {
        fchmod(f, Mode::from_bits_truncate(mode))?;
    }
    let t = TimeSpec::new(mtime as _, 0);
    futimens(f, &t, &t)?;
    Ok(())
}

/// A small regular file waiting, content in memory, to be written by one of a few threads.
struct Job {
    raw: Vec<u8>,
    comps: Vec<Vec<u8>>,
    mode: u32,
    mtime: u64,
    data: Vec<u8>,
}

/// Files up to this size are batched for the writer threads.
const BATCH_FILE_MAX: u64 = 64 << 10;
/// A batch is written once it holds this many files or bytes.
const BATCH_FILES: usize = 512;
const BATCH_BYTES: usize = 8 << 20;

/// Writes a batch's files (each thread a contiguous run, keeping its last directory open);
/// the SHA-256 of each, in order.
fn write_jobs(
    root: BorrowedFd,
    umask: Option<u32>,
    jobs: &[Job],
) -> Result<Vec<[u8; 32]>, ContextError> {
    let mut last: Option<(Vec<Vec<u8>>, OwnedFd)> = None;
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        let (name, parents) = j.comps.split_last().ok_or_else(|| invalid("empty name"))?;
        let hit = matches!(&last, Some((k, _)) if k.as_slice() == parents);
        if !hit {
            let comps: Vec<&[u8]> = parents.iter().map(|c| c.as_slice()).collect();
            last = Some((parents.to_vec(), open_dir_at(root, &comps, true, &j.raw)?));
        }
        let dir = match &last {
            Some((_, fd)) => fd.as_fd(),
            None => root,
        };
        let (mut f, chmod) = create_file(dir, OsStr::from_bytes(name), &j.raw, j.mode, umask)?;
        f.write_all(&j.data)?;
        seal_file(&f, j.mode, chmod, j.mtime)?;
        let mut d = [0u8; 32];
        d.copy_from_slice(Sha256::digest(&j.data).as_slice());
        out.push(d);
    }
    Ok(out)
}

impl Unpacker {
    /// Writes the batched files on up to 4 threads, then records them in the index in tar
    /// order.
    fn flush(&mut self) -> Result<(), ContextError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let jobs = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.batch_paths.clear();
        let root = self.root.as_fd();
        let umask = self.umask;
        let per = jobs.len().div_ceil(self.threads.max(1));
        let digests: Vec<[u8; 32]> = std::thread::scope(|s| {
            let workers: Vec<_> = jobs
                .chunks(per)
                .map(|chunk| s.spawn(move || write_jobs(root, umask, chunk)))
                .collect();
            let mut all = Vec::with_capacity(jobs.len());
            for w in workers {
                let part = w
                    .join()
                    .unwrap_or_else(|_| Err(invalid("a context writer panicked")))?;
                all.extend(part);
            }
            Ok::<_, ContextError>(all)
        })?;
        for (j, digest) in jobs.iter().zip(digests) {
            let comps: Vec<&[u8]> = j.comps.iter().map(|c| c.as_slice()).collect();
            if let Some((name, parents)) = comps.split_last() {
                self.index.put(
                    parents,
                    name,
                    Node {
                        kind: NodeKind::File {
                            size: j.data.len() as u64,
                            digest,
                        },
                        mode: j.mode,
                        mtime: j.mtime,
                    },
                );
            }
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ContextError> {
        let kind = entry.header().entry_type();
        // the tar crate folds long names and PAX records into the entry they describe; only
        // global PAX headers come through
        if kind.is_pax_global_extensions() {
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
        // links have no mode of their own: an empty field is fine there
        let links = kind.is_symlink() || kind.is_hard_link();
        let mode = match h.mode() {
            Ok(m) => m & 0o7777,
            Err(_) if links => 0o777,
            Err(e) => return Err(bad(e)),
        };
        let mut mtime = h.mtime().map_err(bad)?;
        // a PAX `mtime` (the docker CLI writes them for sub-second or far times) wins
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if ext.key_bytes() == b"mtime" {
                    let secs = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|v| v.split('.').next())
                        .and_then(|v| v.parse::<u64>().ok());
                    if let Some(secs) = secs {
                        mtime = secs;
                    }
                }
            }
        }
        let t = TimeSpec::new(mtime as _, 0);
        let regular = kind.is_file() || kind.is_contiguous();
        // PAX-aware
        let size = entry.size();
        if regular && self.threads > 1 && size <= BATCH_FILE_MAX {
            let key = comps.join(&b'/');
            if self.batch_paths.contains(&key) {
                // the same name again: the earlier one must be written first
                self.flush()?;
            }
            let mut data = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut data).map_err(bad)?;
            self.batch_bytes += data.len();
            self.batch_paths.insert(key);
            self.batch.push(Job {
                raw: raw.clone(),
                comps: comps.iter().map(|c| c.to_vec()).collect(),
                mode,
                mtime,
                data,
            });
            if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
                self.flush()?;
            }
            return Ok(());
        }
        // anything else is applied in order, after the files read before it
        self.flush()?;
        let name = OsStr::from_bytes(name);
        if kind.is_dir() {
            let p = self.parent(parents, &raw)?;
            if !Self::clear(p, name)? {
                mkdirat(p, name, Mode::from_bits_truncate(0o755))?;
            }
            self.dirs.insert(comps.join(&b'/'), (mode, mtime));
            self.index.put(
                parents,
                name.as_bytes(),
                Node {
                    kind: NodeKind::Dir,
                    mode,
                    mtime,
                },
            );
        } else if regular {
            let umask = self.umask;
            let p = self.parent(parents, &raw)?;
            let (mut f, chmod) = create_file(p, name, &raw, mode, umask)?;
            // the content is hashed as it goes by: COPY's cache key needs no second read
            let mut h = Sha256::new();
            let mut size = 0u64;
            loop {
                let n = match entry.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(bad(e)),
                };
                h.update(&self.buf[..n]);
                f.write_all(&self.buf[..n])?;
                size += n as u64;
            }
            let mut digest = [0u8; 32];
            digest.copy_from_slice(h.finalize().as_slice());
            self.index.put(
                parents,
                name.as_bytes(),
                Node {
                    kind: NodeKind::File { size, digest },
                    mode,
                    mtime,
                },
            );
            seal_file(&f, mode, chmod, mtime)?;
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
            self.index.put(
                parents,
                name.as_bytes(),
                Node {
                    kind: NodeKind::Symlink(target),
                    mode: 0o777,
                    mtime,
                },
            );
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
            // the same inode: the same node
            let node = self.index.get(&tcomps).cloned();
            match node {
                Some(n) => self.index.put(parents, name.as_bytes(), n),
                None => self.index.complete = false,
            }
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

/// One unpacked name, as it is on disk after the unpack.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) mode: u32,
    pub(crate) mtime: u64,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Dir,
    File { size: u64, digest: [u8; 32] },
    Symlink(Vec<u8>),
}

/// The tree unpacked, with each file's SHA-256 taken while it streamed by: COPY walks this
/// instead of the directory and hashes without reading a file again (the context directory is
/// private and never changes after the unpack).
#[derive(Debug)]
pub(crate) struct Index {
    /// directory path (`/`-joined, "" for the root) → its entries by name
    dirs: HashMap<Vec<u8>, BTreeMap<Vec<u8>, Node>>,
    /// mode of the directories the tar only implies (0755 less the umask, as `mkdirat`)
    implied_mode: u32,
    now: u64,
    /// false when something could not be mirrored: COPY reads the disk instead
    complete: bool,
}

impl Index {
    fn new(umask: Option<u32>) -> Index {
        let mut dirs = HashMap::new();
        dirs.insert(Vec::new(), BTreeMap::new());
        Index {
            dirs,
            implied_mode: 0o755 & !umask.unwrap_or(0),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            complete: true,
        }
    }

    /// The entries of the directory `dir` (`/`-joined, "" for the root).
    pub(crate) fn children(&self, dir: &[u8]) -> Option<&BTreeMap<Vec<u8>, Node>> {
        self.dirs.get(dir)
    }

    fn get(&self, comps: &[&[u8]]) -> Option<&Node> {
        let (name, parents) = comps.split_last()?;
        self.dirs.get(&parents.join(&b'/'))?.get(*name)
    }

    fn put(&mut self, parents: &[&[u8]], name: &[u8], node: Node) {
        // the directories on the way, made by the unpack when the tar did not name them
        let mut dir: Vec<u8> = Vec::new();
        for c in parents {
            let entries = self.dirs.entry(dir.clone()).or_default();
            if !matches!(entries.get(*c).map(|n| &n.kind), Some(NodeKind::Dir)) {
                entries.insert(
                    c.to_vec(),
                    Node {
                        kind: NodeKind::Dir,
                        mode: self.implied_mode,
                        mtime: self.now,
                    },
                );
            }
            if !dir.is_empty() {
                dir.push(b'/');
            }
            dir.extend_from_slice(c);
        }
        let mut path = dir.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let is_dir = matches!(node.kind, NodeKind::Dir);
        let was_dir = matches!(
            self.dirs
                .get(&dir)
                .and_then(|e| e.get(name))
                .map(|n| &n.kind),
            Some(NodeKind::Dir)
        );
        self.dirs
            .entry(dir)
            .or_default()
            .insert(name.to_vec(), node);
        if is_dir && !was_dir {
            self.dirs.insert(path, BTreeMap::new());
        }
    }
}

type Registry = Mutex<HashMap<PathBuf, Arc<Index>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

fn register(root: &Path, index: Index) {
    if !index.complete {
        return;
    }
    if let Ok(mut r) = registry().lock() {
        r.insert(root.to_path_buf(), Arc::new(index));
    }
}

fn unregister(root: &Path) {
    if let Ok(mut r) = registry().lock() {
        r.remove(root);
    }
}

/// The index of the live context unpacked at `root` (what `Context::root` gives), if any.
pub(crate) fn index_for(root: &Path) -> Option<Arc<Index>> {
    registry().lock().ok()?.get(root).cloned()
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
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&t).unwrap();
        let xz = xz.finish().unwrap();
        for body in [t, gz, xz] {
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
        use tar::EntryType::{Link, Regular, Symlink};
        type Raw<'a> = (&'a str, tar::EntryType, &'a str);
        let cases: [(&[Raw], &str); 5] = [
            (
                &[("ok", Regular, ""), ("../evil", Regular, "")],
                "leaves the context",
            ),
            (&[("a/../../evil", Regular, "")], "leaves the context"),
            (&[("h", Link, "../../etc/passwd")], "leaves the context"),
            (&[("h", Link, "/etc/passwd")], "missing"),
            // a symlink to the outside, then a file through it
            (
                &[("out", Symlink, "/tmp"), ("out/evil", Regular, "")],
                "symlink",
            ),
        ];
        let cases = cases.map(|(entries, want)| {
            let mut t = Vec::new();
            for (name, kind, link) in entries {
                let data: &[u8] = if kind.is_file() { b"x" } else { b"" };
                entry(&mut t, name, *kind, link, data);
            }
            (end(t), want)
        });
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
        // COPY . planned from the index (no file read)
        let rootfs = d.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let req = crate::copy::Request {
            srcs: vec![".".into()],
            dest: "/app/".into(),
            workdir: "/".into(),
            ..Default::default()
        };
        let src = crate::copy::Source {
            root: c.root(),
            ignore: None,
            is_context: true,
        };
        let start = std::time::Instant::now();
        let cpu = crate::copy::cpu_time();
        let p = crate::copy::plan(&src, &req, &rootfs).unwrap();
        let took = start.elapsed();
        let cpu = crate::copy::cpu_time() - cpu;
        eprintln!("COPY . of 5000 context files planned and hashed in {took:?} (cpu {cpu:?})");
        assert!(p.cache_key().starts_with("dir:"));
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

    fn layer_listing(p: &crate::copy::Plan) -> Vec<(String, u32, u64, Vec<u8>)> {
        let mut buf = Vec::new();
        p.write_layer(&mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                if let Some(l) = e.link_name_bytes() {
                    data = l.into_owned();
                }
                (
                    show(&e.path_bytes()),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn copy_from_the_index_equals_copy_from_the_disk() {
        use crate::copy::{plan, Request, Source};
        let d = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        entry(
            &mut t,
            "Dockerfile",
            tar::EntryType::Regular,
            "",
            b"FROM x\n",
        );
        entry(
            &mut t,
            "implied/deep/f",
            tar::EntryType::Regular,
            "",
            b"deep",
        );
        entry(&mut t, "dir/", tar::EntryType::Directory, "", b"");
        entry(&mut t, "dir/a", tar::EntryType::Regular, "", b"a");
        entry(&mut t, "dir/a", tar::EntryType::Regular, "", b"replaced");
        entry(&mut t, "dir/s", tar::EntryType::Symlink, "../implied", b"");
        entry(&mut t, "dir/h", tar::EntryType::Link, "implied/deep/f", b"");
        entry(&mut t, "x", tar::EntryType::Symlink, "y", b"");
        entry(&mut t, "x", tar::EntryType::Directory, "", b"");
        entry(&mut t, "x/in", tar::EntryType::Regular, "", b"in x");
        let c = Context::unpack(&end(t)[..], d.path()).unwrap();
        assert!(index_for(c.root()).is_some());
        let rootfs = d.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let req = Request {
            srcs: vec![".".into()],
            dest: "/app/".into(),
            workdir: "/".into(),
            ..Default::default()
        };
        let from_index = plan(
            &Source {
                root: c.root(),
                ignore: None,
                is_context: true,
            },
            &req,
            &rootfs,
        )
        .unwrap();
        // another spelling of the same directory: no index, the disk is walked and read
        let other = d.path().join("alias");
        std::os::unix::fs::symlink(c.root(), &other).unwrap();
        assert!(index_for(&other).is_none());
        let from_disk = plan(
            &Source {
                root: &other,
                ignore: None,
                is_context: true,
            },
            &req,
            &rootfs,
        )
        .unwrap();
        assert_eq!(from_index.cache_key(), from_disk.cache_key());
        let a = layer_listing(&from_index);
        assert_eq!(a, layer_listing(&from_disk));
        let names: Vec<&str> = a.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/Dockerfile",
                "app/dir/",
                "app/dir/a",
                "app/dir/h",
                "app/dir/s",
                "app/implied/",
                "app/implied/deep/",
                "app/implied/deep/f",
                "app/x/",
                "app/x/in"
            ]
        );
        assert_eq!(a[3].3, b"replaced");
        assert_eq!(a[4].3, b"deep");
        drop(c);
        assert!(index_for(&other).is_none());
    }

    #[test]
    fn batched_files_keep_tar_order() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        // the same name twice in a batch, a name replaced after the batch, files spread
        // over directories the tar never names, a hard link to a batched file
        for i in 0..1500 {
            let name = format!("d{}/sub{}/f{i}", i % 7, i % 3);
            entry(
                &mut t,
                &name,
                tar::EntryType::Regular,
                "",
                format!("{i}").as_bytes(),
            );
        }
        entry(&mut t, "dup", tar::EntryType::Regular, "", b"first");
        entry(&mut t, "dup", tar::EntryType::Regular, "", b"second");
        entry(&mut t, "later", tar::EntryType::Regular, "", b"file");
        entry(&mut t, "hl", tar::EntryType::Link, "d3/sub1/f10", b"");
        entry(&mut t, "later", tar::EntryType::Symlink, "dup", b"");
        let c = Context::unpack(&end(t)[..], d.path()).unwrap();
        let r = c.root();
        for i in [0, 10, 511, 512, 1499] {
            let name = format!("d{}/sub{}/f{i}", i % 7, i % 3);
            assert_eq!(
                std::fs::read_to_string(r.join(&name)).unwrap(),
                format!("{i}")
            );
        }
        assert_eq!(std::fs::read_to_string(r.join("dup")).unwrap(), "second");
        assert_eq!(std::fs::read_to_string(r.join("hl")).unwrap(), "10");
        assert_eq!(
            std::fs::read_link(r.join("later")).unwrap(),
            Path::new("dup")
        );
        let ix = index_for(r).unwrap();
        assert!(matches!(
            ix.children(b"")
                .unwrap()
                .get(&b"later"[..])
                .map(|n| &n.kind),
            Some(NodeKind::Symlink(_))
        ));
        match ix.children(b"").unwrap().get(&b"dup"[..]).map(|n| &n.kind) {
            Some(NodeKind::File { size, .. }) => assert_eq!(*size, 6),
            other => panic!("{other:?}"),
        }
        let want = (0..1500).filter(|i| i % 7 == 3 && i % 3 == 1).count();
        assert_eq!(ix.children(b"d3/sub1").unwrap().len(), want);
    }

    #[test]
    fn long_names_and_pax_records() {
        let d = tempfile::tempdir().unwrap();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"long"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "ln", "t".repeat(200)).unwrap();
        b.append_pax_extensions([("mtime", &b"1700000000.5"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o600);
        b.append_data(&mut h, "paxed", &b"p"[..]).unwrap();
        let c = Context::unpack(&b.into_inner().unwrap()[..], d.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(c.root().join(&long)).unwrap(),
            "long"
        );
        assert_eq!(
            std::fs::read_link(c.root().join("ln")).unwrap(),
            Path::new(&"t".repeat(200))
        );
        assert_eq!(
            std::fs::read_to_string(c.root().join("paxed")).unwrap(),
            "p"
        );
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(c.root().join("paxed")).unwrap();
        assert_eq!(md.mtime(), 1_700_000_000);
    }
}
