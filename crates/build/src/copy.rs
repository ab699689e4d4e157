//! COPY and ADD: which files (wildcards, directories copied by content, docker's
//! trailing-slash and existing-directory rules), the tar of the new layer (with the parent
//! directories it needs), and the content hash the cache keys on (`created_by` is
//! `COPY <key> in <dest> ` as docker writes it: `file:<sha256>` for one file, `dir:<sha256>`
//! for one directory, `multi:<sha256>` for several sources).
//!
//! [`plan`] reads every source once: it walks the directories, reads small files into memory
//! and hashes names, types, modes, owners (after `--chown`), sizes, link targets and content
//! into one SHA-256 as it goes. [`Plan::write_layer`] then only streams what was planned (large
//! files are read a second time, checked against the size planned). Paths in the layer are
//! resolved against the image's rootfs as the kernel would inside it (a destination below a
//! symlinked directory lands where the link leads, inside the rootfs), and every directory
//! on the way is written with the mode and owner it already has there, so that the layer
//! never changes an existing directory's metadata (`/tmp` stays 1777).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_util::dockerignore::{MatchInfo, Matcher};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// the user's mistake, docker's text (400 / a failed step), e.g.
    /// `COPY failed: file not found in build context or excluded by .dockerignore: stat x: file does not exist`
    #[error("{0}")]
    User(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where sources are read from.
pub struct Source<'a> {
    /// the context root, or a mounted image / stage rootfs for `--from`
    pub root: &'a Path,
    /// `.dockerignore` (the context only): ignored files do not exist for COPY
    pub ignore: Option<&'a Matcher>,
    /// true for the build context: a source, or a symlink in it, that leads outside the root
    /// is an error; false for `--from` rootfs (symlinks resolved inside that root)
    pub is_context: bool,
}

/// One COPY / ADD, words already expanded.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub srcs: Vec<String>,
    pub dest: String,
    /// the working directory a relative `dest` is under
    pub workdir: String,
    /// numeric `--chown` (resolved by the caller against the image's /etc/passwd, group)
    pub chown: Option<(u32, u32)>,
    /// `--chmod` as a mode
    pub chmod: Option<u32>,
    /// ADD: local tar archives (gzip, bzip2, xz, plain) are extracted into `dest`; URL
    /// sources are fetched first (see [`fetch_url`])
    pub add: bool,
    /// heredoc sources: (name, content); a `src` equal to a name is this content
    pub heredocs: Vec<(String, String)>,
}

/// Files up to this size are kept in memory from planning to writing (read once).
const INLINE_MAX: u64 = 1 << 20;
/// ... as long as all of them together stay below this.
const INLINE_TOTAL: u64 = 64 << 20;
/// Large files held open by one plan at the most (more are opened again by path).
const MAX_OPEN: usize = 256;
/// Symlinks followed while resolving one path (the kernel's limit).
const MAX_LINKS: u32 = 40;

#[derive(Debug)]
enum Data {
    /// a file of a copied directory, read after the walk (by several threads)
    Pending(PathBuf),
    Inline(Vec<u8>),
    /// read again (from offset 0) when the layer is written; must still have the planned
    /// size. Held open so that a `--from` image may be unmounted (detached) in between.
    Open(File, PathBuf, Digest32),
    /// the same by path once too many are open: the source must still be there
    Path(PathBuf, Digest32),
}

#[derive(Debug)]
enum Kind {
    Dir,
    File {
        data: Data,
        size: u64,
    },
    Symlink(Vec<u8>),
    /// ADD of a local archive: its entries, re-rooted under the entry's path
    Archive(Box<ArchivePlan>),
}

type Digest32 = [u8; 32];

#[derive(Debug)]
struct ArchivePlan {
    src: File,
    /// of the archive's bytes, as docker's `file:` hash of it
    digest: Digest32,
    size: u64,
    /// archive directory (cleaned, `/`-joined, "" for its root) → directory in the layer
    dirs: HashMap<Vec<u8>, Vec<u8>>,
    chown: Option<(u32, u32)>,
}

#[derive(Debug)]
struct Entry {
    /// path in the layer: components joined by `/`, no leading or trailing slash
    path: Vec<u8>,
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    /// part of the cache key (the directories on the way, which come from the rootfs, are
    /// not)
    hashed: bool,
}

/// What a COPY / ADD will write.
#[derive(Debug)]
pub struct Plan {
    key: String,
    entries: Vec<Entry>,
    /// where fetched URLs wait for the layer (removed with the plan)
    _downloads: Option<TempDir>,
}

/// A private directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let p = std::env::temp_dir().join(format!("berth-add-{}", berth_util::fs::unique_suffix()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map(|_| TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// paths

type Comps = Vec<Vec<u8>>;

fn split(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn host(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `path` cleaned lexically (`.`, empty components and so a leading `/` dropped, `..`
/// folded); `None` when a `..` climbs above the root. For sources, destinations and archive
/// entries alike.
fn clean(path: &[u8]) -> Option<Comps> {
    let mut out: Comps = Vec::new();
    for c in split(path) {
        if c == b".." {
            out.pop()?;
        } else {
            out.push(c.to_vec());
        }
    }
    Some(out)
}

enum Resolve {
    /// a `..` above the root or an absolute symlink, in a root that refuses them
    Escapes,
    Loop,
}

/// Resolves `path` in `root` following symlinks as the kernel would with the root as `/`:
/// with `strict` (the build context) a symlink or `..` that leads out of the root is an
/// error, else it is clamped at the root (an image's rootfs). Components that do not exist
/// are kept as they are. The last component is followed only with `follow_last`.
fn resolve(
    root: &Path,
    path: &[Vec<u8>],
    follow_last: bool,
    strict: bool,
) -> Result<Result<Comps, Resolve>, io::Error> {
    let mut todo: VecDeque<Vec<u8>> = path.iter().cloned().collect();
    let mut out: Comps = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = todo.pop_front() {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." {
            if out.pop().is_none() && strict {
                return Ok(Err(Resolve::Escapes));
            }
            continue;
        }
        out.push(c);
        if missing || (todo.is_empty() && !follow_last) {
            continue;
        }
        let p = host(root, &out);
        let md = match fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                missing = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        if !md.file_type().is_symlink() {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Ok(Err(Resolve::Loop));
        }
        let target = fs::read_link(&p)?.into_os_string().into_encoded_bytes();
        out.pop();
        if target.first() == Some(&b'/') {
            if strict {
                return Ok(Err(Resolve::Escapes));
            }
            out.clear();
        }
        for c in target.split(|b| *b == b'/').rev() {
            todo.push_front(c.to_vec());
        }
    }
    Ok(Ok(out))
}

// ---------------------------------------------------------------------------------------
// Go's filepath.Match, for one path element

fn has_wildcards(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// One character of a class, unescaped; the index after it.
fn class_char(p: &[char], i: usize) -> Result<(char, usize), ()> {
    match p.get(i) {
        None | Some('-') | Some(']') => Err(()),
        Some('\\') => p.get(i + 1).map(|c| (*c, i + 2)).ok_or(()),
        Some(c) => Ok((*c, i + 1)),
    }
}

/// `[...]` at `p[i]`: whether `c` is in it, and the index after the class.
fn class(p: &[char], i: usize, c: char) -> Result<(bool, usize), ()> {
    let mut i = i + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut n = 0;
    loop {
        if p.get(i) == Some(&']') && n > 0 {
            return Ok((matched != negated, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        n += 1;
    }
}

/// `pattern` against one name, Go's `filepath.Match` rules (`*`, `?`, `[a-z]`, `[^x]`, `\`).
/// `Err` for a malformed pattern.
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            let step = match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' => (si < s.len() && s[si] != '/').then_some(pi + 1),
                '[' => {
                    let (ok, next) = class(&p, pi, s.get(si).copied().unwrap_or('/'))?;
                    (si < s.len() && ok).then_some(next)
                }
                '\\' => {
                    let c = *p.get(pi + 1).ok_or(())?;
                    (s.get(si) == Some(&c)).then_some(pi + 2)
                }
                c => (s.get(si) == Some(&c)).then_some(pi + 1),
            };
            if let Some(next) = step {
                pi = next;
                si += 1;
                continue;
            }
        } else if si == s.len() {
            return Ok(true);
        }
        match star {
            Some((sp, ss)) if ss < s.len() && s[ss] != '/' => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => return Ok(false),
        }
    }
}

// ---------------------------------------------------------------------------------------
// planning

/// One source after wildcards, as docker's `copyInfo`.
/// What a single file's content comes from.
enum Content {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

enum Item {
    File {
        host: PathBuf,
        md: fs::Metadata,
        /// the name the file gets inside a directory destination (the source's own name as
        /// written, not a symlink's target)
        name: Vec<u8>,
        /// ADD: an archive to extract
        archive: bool,
    },
    Dir {
        host: PathBuf,
        /// path below the context root, for `.dockerignore`
        rel: Comps,
    },
    Heredoc {
        name: Vec<u8>,
        content: Vec<u8>,
    },
    Url {
        host: PathBuf,
        md: fs::Metadata,
        name: Vec<u8>,
    },
}

struct Planner<'a> {
    src: &'a Source<'a>,
    req: &'a Request,
    rootfs: &'a Path,
    cmd: &'static str,
    entries: Vec<Entry>,
    /// directories of the layer written so far
    dirs: HashSet<Vec<u8>>,
    budget: Budget,
    /// the context's index (names, modes, digests taken while unpacking), when the source is
    /// a live [`crate::context::Context`]
    index: Option<std::sync::Arc<crate::context::Index>>,
    now: u64,
    uid: u32,
    gid: u32,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mtime_of(md: &fs::Metadata) -> u64 {
    md.mtime().max(0) as u64
}

impl<'a> Planner<'a> {
    fn user(&self, msg: impl std::fmt::Display) -> CopyError {
        CopyError::User(format!("{} failed: {msg}", self.cmd))
    }

    fn not_found(&self, src: &str) -> CopyError {
        self.user(format!(
            "file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    }

    fn ignored(&self, rel: &[Vec<u8>]) -> bool {
        let Some(m) = self.src.ignore else {
            return false;
        };
        if rel.is_empty() || m.is_empty() {
            return false;
        }
        // as the CLI's walk reaches it: directory by directory, an excluded one entered only
        // when an exception names something below it
        let mut info = MatchInfo::default();
        for n in 1..=rel.len() {
            let path = show(&join(&rel[..n]));
            let (excluded, next) = m.matches_in_walk(&path, &info);
            // an excluded directory the walk enters exists (what it holds was sent), as in
            // docker's context
            if excluded && !m.is_excluded_dir_walk_needed(&path) {
                return true;
            }
            info = next;
        }
        false
    }

    fn push(&mut self, mut e: Entry) {
        e.hashed = true;
        if matches!(e.kind, Kind::Dir) {
            self.dirs.insert(e.path.clone());
        }
        self.entries.push(e);
    }

    /// Writes every directory of `dir` (all of them with `with_self`) not yet in the layer:
    /// one that exists in the rootfs with its mode, owner and mtime there, a missing one
    /// 0755 owned by the `--chown` user (docker's `MkdirAllAndChownNew`). `dir` is resolved.
    /// Returns whether `dir` itself exists in the rootfs.
    fn ensure_dirs(&mut self, dir: &[Vec<u8>], with_self: bool) -> Result<bool, CopyError> {
        let mut exists = true;
        let upto = if with_self {
            dir.len()
        } else {
            dir.len().saturating_sub(1)
        };
        for n in 1..=dir.len() {
            let prefix = &dir[..n];
            let path = join(prefix);
            if exists {
                match fs::symlink_metadata(host(self.rootfs, prefix)) {
                    Ok(md) if md.is_dir() => {
                        if n <= upto && !self.dirs.contains(&path) {
                            self.dirs.insert(path.clone());
                            self.entries.push(Entry {
                                path,
                                kind: Kind::Dir,
                                mode: md.mode() & 0o7777,
                                uid: md.uid(),
                                gid: md.gid(),
                                mtime: mtime_of(&md),
                                hashed: false,
                            });
                        }
                        continue;
                    }
                    Ok(_) => {
                        return Err(self.user(format!("mkdir /{}: not a directory", show(&path))))
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || e.raw_os_error() == Some(libc::ENOTDIR) =>
                    {
                        exists = false
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if n <= upto && !self.dirs.contains(&path) {
                self.dirs.insert(path.clone());
                self.entries.push(Entry {
                    path,
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: self.uid,
                    gid: self.gid,
                    mtime: self.now,
                    hashed: false,
                });
            }
        }
        Ok(exists)
    }

    fn mode(&self, m: u32) -> u32 {
        self.req.chmod.unwrap_or(m & 0o7777)
    }

    /// A single file (a local one, a download or a heredoc's content) at `dest`, its parent
    /// resolved in the rootfs.
    fn file_at(
        &mut self,
        dest: &[Vec<u8>],
        content: Content,
        mode: u32,
        mtime: u64,
    ) -> Result<(), CopyError> {
        let Some((name, parent)) = dest.split_last() else {
            return Err(self.user("cannot copy a file to /"));
        };
        let parent = self.resolve_rootfs(parent, true)?;
        if !parent.is_empty() {
            self.ensure_dirs(&parent, true)?;
        }
        let mut path = parent;
        path.push(name.clone());
        let (data, size) = match content {
            Content::Host(p) => {
                let (data, md) = load(&p, &self.budget)?;
                (data, md.len())
            }
            Content::Bytes(b) => {
                let n = b.len() as u64;
                (Data::Inline(b), n)
            }
        };
        self.push(Entry {
            path: join(&path),
            kind: Kind::File { data, size },
            mode,
            uid: self.uid,
            gid: self.gid,
            mtime,
            hashed: true,
        });
        Ok(())
    }

    fn resolve_rootfs(&self, path: &[Vec<u8>], follow_last: bool) -> Result<Comps, CopyError> {
        match resolve(self.rootfs, path, follow_last, false)? {
            Ok(c) => Ok(c),
            Err(_) => Err(self.user(format!(
                "too many levels of symbolic links: /{}",
                show(&join(path))
            ))),
        }
    }

    /// Whether `path` (absolute in the image) is a directory there, symlinks followed
    /// inside the rootfs.
    fn is_dir_in_rootfs(&self, path: &[Vec<u8>]) -> Result<bool, CopyError> {
        if path.is_empty() {
            return Ok(true);
        }
        let root = berth_util::inroot::open_root(self.rootfs)?;
        let p = host(Path::new("/"), path);
        match berth_util::inroot::open_in_root(
            std::os::fd::AsFd::as_fd(&root),
            &p,
            libc::O_PATH | libc::O_DIRECTORY,
        ) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The sources a `src` stands for (wildcards expanded, in name order).
    fn expand(&self, raw: &str, out: &mut Vec<(String, Comps)>) -> Result<(), CopyError> {
        let forbidden = || {
            self.user(format!(
                "forbidden path outside the build context: {raw} ()"
            ))
        };
        let Some(comps) = clean(raw.as_bytes()) else {
            return Err(forbidden());
        };
        if !comps.iter().any(|c| has_wildcards(c)) {
            // shown as docker does: as written, without a leading `/` or `./`
            let mut disp = raw.trim_start_matches('/');
            while let Some(rest) = disp.strip_prefix("./") {
                disp = rest.trim_start_matches('/');
            }
            out.push((disp.to_string(), comps));
            return Ok(());
        }
        let mut found: Vec<Comps> = vec![Vec::new()];
        for c in &comps {
            if !has_wildcards(c) {
                for f in &mut found {
                    f.push(c.clone());
                }
                continue;
            }
            let pat = show(c);
            let mut next = Vec::new();
            for f in &found {
                let dir = match resolve(self.src.root, f, true, self.src.is_context)? {
                    Ok(d) => d,
                    Err(_) => continue,
                };
                let Ok(rd) = fs::read_dir(host(self.src.root, &dir)) else {
                    continue;
                };
                let mut names: Vec<Vec<u8>> = rd
                    .flatten()
                    .map(|e| e.file_name().into_encoded_bytes())
                    .collect();
                names.sort();
                for n in names {
                    match glob_match(&pat, &show(&n)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        // a malformed pattern matches nothing (docker ignores Match's error)
                        Err(()) => continue,
                    }
                    let mut p = f.clone();
                    p.push(n);
                    if !self.ignored(&p) {
                        next.push(p);
                    }
                }
            }
            found = next;
        }
        for f in found {
            out.push((show(&join(&f)), f));
        }
        Ok(())
    }

    /// A local source (after wildcards) as docker's `copyInfo`.
    fn item(&self, disp: &str, comps: &[Vec<u8>]) -> Result<Item, CopyError> {
        if self.ignored(comps) {
            return Err(self.not_found(disp));
        }
        let resolved = match resolve(self.src.root, comps, true, self.src.is_context)? {
            Ok(r) => r,
            Err(Resolve::Escapes) => {
                return Err(self.user(format!(
                    "forbidden path outside the build context: {disp} ()"
                )))
            }
            Err(Resolve::Loop) => {
                return Err(self.user(format!("too many levels of symbolic links: {disp}")))
            }
        };
        if resolved != comps && self.ignored(&resolved) {
            return Err(self.not_found(disp));
        }
        let h = host(self.src.root, &resolved);
        // the root itself is the daemon's own path (followed, as `inroot::open_root` does)
        let md = match if resolved.is_empty() {
            fs::metadata(&h)
        } else {
            fs::symlink_metadata(&h)
        } {
            Ok(md) => md,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Err(self.not_found(disp))
            }
            Err(e) => return Err(e.into()),
        };
        if md.is_dir() {
            return Ok(Item::Dir {
                host: h,
                rel: resolved,
            });
        }
        if !md.is_file() {
            return Err(self.user(format!("{disp}: not a regular file or directory")));
        }
        let archive = self.req.add && is_archive(&h)?;
        Ok(Item::File {
            host: h,
            md,
            name: comps.last().cloned().unwrap_or_else(|| b"/".to_vec()),
            archive,
        })
    }

    /// Copies the tree below `host` into the layer directory `to` (already written or in
    /// the rootfs). `rel` is its path below the context root (`.dockerignore`).
    fn walk(
        &mut self,
        host_dir: &Path,
        rel: &mut Comps,
        to: &mut Comps,
        info: &MatchInfo,
    ) -> Result<(), CopyError> {
        if let Some(ix) = self.index.clone() {
            if let Some(kids) = ix.children(&join(rel)) {
                for (name, node) in kids {
                    rel.push(name.clone());
                    to.push(name.clone());
                    let r = self.walk_known(host_dir, name, node, rel, to, info);
                    rel.pop();
                    to.pop();
                    r?;
                }
                return Ok(());
            }
        }
        let mut kids: Vec<(Vec<u8>, fs::FileType)> = fs::read_dir(host_dir)?
            .map(|e| e.and_then(|e| Ok((e.file_name().into_encoded_bytes(), e.file_type()?))))
            .collect::<io::Result<_>>()?;
        kids.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ft) in kids {
            rel.push(name.clone());
            to.push(name.clone());
            let r = self.walk_one(host_dir, &name, ft, rel, to, info);
            rel.pop();
            to.pop();
            r?;
        }
        Ok(())
    }

    /// `.dockerignore` for a name met by a walk: `None` to leave it out, else whether it is
    /// excluded (a directory still walked: an exception names something below it, the CLI's
    /// rule; it gets no entry of its own).
    /// Matched as the CLI's walk does (`matches_in_walk`, from the parent's results).
    fn walked(
        &self,
        rel: &[Vec<u8>],
        is_dir: bool,
        parent: &MatchInfo,
    ) -> Option<(bool, MatchInfo)> {
        let Some(m) = self.src.ignore.filter(|m| !m.is_empty()) else {
            return Some((false, MatchInfo::default()));
        };
        let path = show(&join(rel));
        let (excluded, info) = m.matches_in_walk(&path, parent);
        if !excluded {
            return Some((false, info));
        }
        (is_dir && m.is_excluded_dir_walk_needed(&path)).then_some((true, info))
    }

    /// [`Planner::walk_one`] for a name of the context's index: nothing is read.
    fn walk_known(
        &mut self,
        host_dir: &Path,
        name: &[u8],
        node: &crate::context::Node,
        rel: &mut Comps,
        to: &mut Comps,
        parent: &MatchInfo,
    ) -> Result<(), CopyError> {
        use crate::context::NodeKind;
        let is_dir = matches!(node.kind, NodeKind::Dir);
        let Some((excluded, info)) = self.walked(rel, is_dir, parent) else {
            return Ok(());
        };
        let p = host_dir.join(OsStr::from_bytes(name));
        let path = join(to);
        match &node.kind {
            NodeKind::File { size, digest } => self.push(Entry {
                path,
                kind: Kind::File {
                    data: Data::Path(p, *digest),
                    size: *size,
                },
                mode: self.mode(node.mode),
                uid: self.uid,
                gid: self.gid,
                mtime: node.mtime,
                hashed: true,
            }),
            NodeKind::Symlink(target) => self.push(Entry {
                path,
                kind: Kind::Symlink(target.clone()),
                mode: 0o777,
                uid: self.uid,
                gid: self.gid,
                mtime: node.mtime,
                hashed: true,
            }),
            NodeKind::Dir => {
                if !excluded {
                    self.push(Entry {
                        path,
                        kind: Kind::Dir,
                        mode: self.mode(node.mode),
                        uid: self.uid,
                        gid: self.gid,
                        mtime: node.mtime,
                        hashed: true,
                    });
                }
                self.walk(&p, rel, to, &info)?;
            }
        }
        Ok(())
    }

    fn walk_one(
        &mut self,
        host_dir: &Path,
        name: &[u8],
        ft: fs::FileType,
        rel: &mut Comps,
        to: &mut Comps,
        parent: &MatchInfo,
    ) -> Result<(), CopyError> {
        let Some((excluded, info)) = self.walked(rel, ft.is_dir(), parent) else {
            return Ok(());
        };
        let p = host_dir.join(OsStr::from_bytes(name));
        let path = join(to);
        if ft.is_file() {
            // mode, mtime, size and content come with the read, after the walk
            self.push(Entry {
                path,
                kind: Kind::File {
                    data: Data::Pending(p),
                    size: 0,
                },
                mode: 0,
                uid: self.uid,
                gid: self.gid,
                mtime: 0,
                hashed: true,
            });
            return Ok(());
        }
        let md = fs::symlink_metadata(&p)?;
        if ft.is_symlink() {
            let target = fs::read_link(&p)?.into_os_string().into_encoded_bytes();
            self.push(Entry {
                path,
                kind: Kind::Symlink(target),
                mode: 0o777,
                uid: self.uid,
                gid: self.gid,
                mtime: mtime_of(&md),
                hashed: true,
            });
        } else if ft.is_dir() {
            if !excluded {
                self.push(Entry {
                    path,
                    kind: Kind::Dir,
                    mode: self.mode(md.mode()),
                    uid: self.uid,
                    gid: self.gid,
                    mtime: mtime_of(&md),
                    hashed: true,
                });
            }
            self.walk(&p, rel, to, &info)?;
        } else {
            tracing::debug!(path = %p.display(), "COPY skips a device, FIFO or socket");
        }
        Ok(())
    }

    fn dir_item(&mut self, host_dir: &Path, rel: Comps, dest: &[Vec<u8>]) -> Result<(), CopyError> {
        let dest = self.resolve_rootfs(dest, true)?;
        if !dest.is_empty() {
            if self.ensure_dirs(&dest, false)? {
                // an existing directory keeps its mode and owner
                self.ensure_dirs(&dest, true)?;
            } else if !self.dirs.contains(&join(&dest)) {
                // docker makes it (0755, the `--chown` owner) and copies the contents into
                // it: the source directory's own mode is not carried over
                self.push(Entry {
                    path: join(&dest),
                    kind: Kind::Dir,
                    mode: self.req.chmod.unwrap_or(0o755),
                    uid: self.uid,
                    gid: self.gid,
                    mtime: self.now,
                    hashed: true,
                });
            }
        }
        let mut rel = rel;
        let mut to = dest;
        // the source directory's own results, for its entries (the root: none)
        let info = match self.src.ignore {
            Some(m) if !m.is_empty() && !rel.is_empty() => {
                m.matches_in_walk(&show(&join(&rel)), &MatchInfo::default())
                    .1
            }
            _ => MatchInfo::default(),
        };
        self.walk(host_dir, &mut rel, &mut to, &info)
    }

    /// ADD of a local archive. As docker's classic builder: the entries keep the owners the
    /// archive gives them and the directories made for them are root's, `--chown` or not
    /// (checked against dockerd 20.10).
    fn archive_item(&mut self, src: &Path, dest: &[Vec<u8>]) -> Result<(), CopyError> {
        let owner = (self.uid, self.gid);
        (self.uid, self.gid) = (0, 0);
        let r = self.archive_item_as_root(src, dest);
        (self.uid, self.gid) = owner;
        r
    }

    fn archive_item_as_root(&mut self, src: &Path, dest: &[Vec<u8>]) -> Result<(), CopyError> {
        let dest = self.resolve_rootfs(dest, true)?;
        if !dest.is_empty() {
            self.ensure_dirs(&dest, true)?;
        }
        // the archive's bytes are its identity, as docker's `file:` hash of it
        let mut f = File::open(src)?;
        let (digest, _) = digest_of(&mut f, u64::MAX, src)?;
        // every entry checked now (so that a hostile archive fails the step before anything
        // runs), and every directory of it mapped to where it lands in the rootfs
        let mut parents: Vec<Comps> = Vec::new();
        let mut explicit: HashSet<Vec<u8>> = HashSet::new();
        let cmd = self.cmd;
        let r = File::open(src)
            .and_then(decompressed)
            .map(|(_, r)| r)
            .map_err(CopyError::from)?;
        berth_util::io::for_each_tar_entry(
            r,
            |e| CopyError::User(format!("{cmd} failed: reading archive: {e}")),
            |entry| {
                let kind = entry.header().entry_type();
                let raw = entry.path_bytes().into_owned();
                let comps = clean(&raw).ok_or_else(|| {
                    CopyError::User(format!(
                        "{cmd} failed: invalid archive entry {}: it leaves the destination",
                        show(&raw)
                    ))
                })?;
                if kind.is_hard_link() {
                    let t = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    if clean(&t).is_none_or(|t| t.is_empty()) {
                        return Err(CopyError::User(format!(
                            "{cmd} failed: invalid hardlink {} -> {}: it leaves the archive",
                            show(&raw),
                            show(&t)
                        )));
                    }
                }
                if kind.is_dir() {
                    explicit.insert(join(&comps));
                }
                if let Some((_, p)) = comps.split_last() {
                    parents.push(p.to_vec());
                }
                if kind.is_dir() {
                    parents.push(comps);
                }
                Ok(())
            },
        )?;
        // parents before children: each directory maps below its parent's place; one the
        // archive names itself is written there (over a symlink the rootfs may have, as
        // docker's untar replaces it), one it only implies is followed in the rootfs and
        // keeps what it has there
        parents.sort();
        parents.dedup();
        let mut dirs: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        dirs.insert(Vec::new(), join(&dest));
        let mut placed: HashMap<Vec<u8>, Comps> = HashMap::new();
        placed.insert(Vec::new(), dest.clone());
        for p in parents {
            let Some((name, up)) = p.split_last() else {
                continue;
            };
            let mut at = placed
                .get(&join(up))
                .cloned()
                .unwrap_or_else(|| dest.clone());
            at.push(name.clone());
            let key = join(&p);
            if !explicit.contains(&key) {
                at = self.resolve_rootfs(&at, true)?;
                self.ensure_dirs(&at, true)?;
            } else if let Some((_, above)) = at.split_last() {
                self.ensure_dirs(above, true)?;
            }
            dirs.insert(key.clone(), join(&at));
            placed.insert(key, at);
        }
        let file = File::open(src)?;
        let md = file.metadata()?;
        self.push(Entry {
            path: join(&dest),
            kind: Kind::Archive(Box::new(ArchivePlan {
                src: file,
                digest,
                size: md.len(),
                dirs,
                chown: None,
            })),
            mode: 0,
            uid: self.uid,
            gid: self.gid,
            mtime: mtime_of(&md),
            hashed: true,
        });
        Ok(())
    }
}

fn changed(path: &Path) -> CopyError {
    CopyError::Io(io::Error::other(format!(
        "{} changed while it was copied",
        path.display()
    )))
}

/// The compression of a stream from its first bytes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

pub(crate) fn compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Whether `block` (the first 512 bytes of a stream) is a tar header: its checksum holds
/// (old v7 archives have no magic); an all-zero block is an empty archive.
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let block = &block[..512];
    if block.iter().all(|b| *b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(stored) = u64::from_str_radix(std::str::from_utf8(&digits).unwrap_or("x"), 8) else {
        return false;
    };
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u64
            }
        })
        .sum();
    sum == stored
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
pub(crate) fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The stream `r` decompressed as its first bytes say: gzip, bzip2 or xz (multi-member
/// streams too), else as it is. zstd has no decoder here: an error.
pub(crate) fn decompressed<'a>(r: impl Read + 'a) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut r = r;
    let head = read_head(&mut r, 6)?;
    let c = compression(&head);
    let joined = io::Cursor::new(head).chain(r);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(joined),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(joined)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(joined)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(joined)),
        Compression::Zstd => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "zstd compression is not supported",
            ))
        }
    };
    Ok((c, out))
}

/// ADD: whether a local file is a tar archive (plain, gzip, bzip2 or xz) to extract, as
/// docker's `isArchivePath` decides: its first block (decompressed) is a tar header. A zstd
/// file is copied as it is.
fn is_archive(path: &Path) -> io::Result<bool> {
    let Ok((c, mut r)) = decompressed(File::open(path)?) else {
        return Ok(false);
    };
    let block = match read_head(&mut r, 512) {
        Ok(b) => b,
        Err(_) => return Ok(false),
    };
    // an empty file, or zeros only, is no archive to a plain reader
    let zeros = c == Compression::None && block.iter().all(|b| *b == 0);
    Ok(block.len() == 512 && !zeros && is_tar_header(&block))
}

/// Resolves a request against its source and the current image's rootfs (`rootfs`, read-only:
/// whether `dest` already exists as a directory there).
///
/// URL sources are downloaded here (see [`fetch_url`]): call it from a blocking thread.
pub fn plan(src: &Source, req: &Request, rootfs: &Path) -> Result<Plan, CopyError> {
    let cmd = if req.add { "ADD" } else { "COPY" };
    let (uid, gid) = req.chown.unwrap_or((0, 0));
    let mut p = Planner {
        src,
        req,
        rootfs,
        cmd,
        entries: Vec::new(),
        dirs: HashSet::new(),
        budget: Budget::default(),
        index: if src.is_context {
            crate::context::index_for(src.root)
        } else {
            None
        },
        now: now_secs(),
        uid,
        gid,
    };
    if req.srcs.is_empty() {
        return Err(p.user("no source files were specified"));
    }
    // the destination, absolute in the image; whether it names a directory by its syntax
    let raw_dest = req.dest.as_bytes();
    let mut dest_path = Vec::new();
    if raw_dest.first() != Some(&b'/') {
        dest_path.extend_from_slice(req.workdir.as_bytes());
        dest_path.push(b'/');
    }
    dest_path.extend_from_slice(raw_dest);
    let dest_is_dir = raw_dest.ends_with(b"/")
        || raw_dest == b"."
        || raw_dest.ends_with(b"/.")
        || raw_dest == b".."
        || raw_dest.ends_with(b"/..");
    let dest = clean(&dest_path).unwrap_or_default();

    let mut downloads: Option<TempDir> = None;
    let mut items: Vec<Item> = Vec::new();
    for s in &req.srcs {
        if let Some((name, content)) = req.heredocs.iter().find(|(n, _)| n == s) {
            items.push(Item::Heredoc {
                name: name.as_bytes().to_vec(),
                content: content.as_bytes().to_vec(),
            });
            continue;
        }
        if req.add && (s.starts_with("http://") || s.starts_with("https://")) {
            if downloads.is_none() {
                downloads = Some(TempDir::new()?);
            }
            let dir = downloads.as_ref().map(|d| d.0.clone()).unwrap_or_default();
            let sub = dir.join(items.len().to_string());
            fs::create_dir(&sub)?;
            let host = fetch_url(s, &sub).map_err(|e| match e {
                CopyError::User(m) => p.user(m),
                e => e,
            })?;
            let md = fs::metadata(&host)?;
            let name = host
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            items.push(Item::Url { host, md, name });
            continue;
        }
        let mut found = Vec::new();
        p.expand(s, &mut found)?;
        for (disp, comps) in found {
            items.push(p.item(&disp, &comps)?);
        }
    }
    if items.is_empty() {
        return Err(p.user("no source files were specified"));
    }
    if items.len() > 1 && !dest_is_dir {
        return Err(CopyError::User(format!(
            "When using {cmd} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    // docker writes `dir:`, `file:` or `multi:` before the hash; a lone URL's hash goes bare
    // (`ADD <hash> in /dl/`, as dockerd 20.10 writes it)
    let prefix = match (&items[..], items.len()) {
        ([Item::Dir { .. }], 1) => "dir:",
        ([Item::Url { .. }], 1) => "",
        (_, 1) => "file:",
        _ => "multi:",
    };
    let dest_exists_as_dir = p.is_dir_in_rootfs(&dest)?;
    for item in items {
        // a file goes inside `dest` when `dest` says it is a directory or is one
        let file_dest = |name: &[u8]| -> Comps {
            let mut d = dest.clone();
            if dest_is_dir || dest_exists_as_dir || d.is_empty() {
                d.push(name.to_vec());
            }
            d
        };
        match item {
            Item::Dir { host, rel } => p.dir_item(&host, rel, &dest)?,
            Item::File {
                host,
                archive: true,
                ..
            } => p.archive_item(&host, &dest)?,
            Item::File { host, md, name, .. } => {
                let mode = p.mode(md.mode());
                let mtime = mtime_of(&md);
                p.file_at(&file_dest(&name), Content::Host(host), mode, mtime)?;
            }
            Item::Url { host, md, name } => {
                let mode = p.req.chmod.unwrap_or(0o600);
                let mtime = mtime_of(&md);
                p.file_at(&file_dest(&name), Content::Host(host), mode, mtime)?;
            }
            Item::Heredoc { name, content } => {
                let mode = p.req.chmod.unwrap_or(0o644);
                let now = p.now;
                p.file_at(&file_dest(&name), Content::Bytes(content), mode, now)?;
            }
        }
    }
    load_pending(&mut p.entries, &p.budget, req.chmod)?;
    let key = format!("{prefix}{}", cache_hash(&p.entries));
    Ok(Plan {
        key,
        entries: p.entries,
        _downloads: downloads,
    })
}

/// How much file content a plan keeps in memory and how many files it holds open, shared by
/// the threads that read.
#[derive(Default)]
struct Budget {
    inline: AtomicU64,
    open: AtomicUsize,
}

/// Reads a file into a digest in large reads: `(digest, bytes)`; `Err` if it holds fewer
/// than `size` bytes (with `size` = `u64::MAX`: all of it).
fn digest_of(f: &mut File, size: u64, path: &Path) -> Result<(Digest32, u64), CopyError> {
    let mut h = Sha256::new();
    let mut left = size;
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    while left > 0 {
        let want = buf.len().min(left.try_into().unwrap_or(usize::MAX));
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            if size == u64::MAX {
                break;
            }
            return Err(changed(path));
        }
        h.update(&buf[..n]);
        left -= n as u64;
        total += n as u64;
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(h.finalize().as_slice());
    Ok((d, total))
}

/// A regular file's content and metadata (one open, one fstat, the reads): in memory when
/// small, else digested now and held open (or named) for the layer.
fn load(path: &Path, budget: &Budget) -> Result<(Data, fs::Metadata), CopyError> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(changed(path));
    }
    let size = md.len();
    if size <= INLINE_MAX {
        let before = budget.inline.fetch_add(size, Ordering::Relaxed);
        if before + size <= INLINE_TOTAL {
            let mut buf = Vec::with_capacity(size as usize);
            (&mut f).take(size).read_to_end(&mut buf)?;
            if buf.len() as u64 != size {
                return Err(changed(path));
            }
            return Ok((Data::Inline(buf), md));
        }
        budget.inline.fetch_sub(size, Ordering::Relaxed);
    }
    let (digest, _) = digest_of(&mut f, size, path)?;
    if budget.open.fetch_add(1, Ordering::Relaxed) < MAX_OPEN {
        return Ok((Data::Open(f, path.to_path_buf(), digest), md));
    }
    Ok((Data::Path(path.to_path_buf(), digest), md))
}

/// Below this many files one thread reads them all.
const PARALLEL_MIN: usize = 64;

/// Reads the files of copied directories (`Data::Pending`), on a few threads when there are
/// many: the walk only listed them; their mode (or `--chmod`), mtime, size and content come
/// from here.
fn load_pending(
    entries: &mut [Entry],
    budget: &Budget,
    chmod: Option<u32>,
) -> Result<(), CopyError> {
    let mut pending: Vec<&mut Entry> = entries
        .iter_mut()
        .filter(|e| {
            matches!(
                e.kind,
                Kind::File {
                    data: Data::Pending(_),
                    ..
                }
            )
        })
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let fill = |e: &mut Entry| -> Result<(), CopyError> {
        let Kind::File {
            data: Data::Pending(p),
            ..
        } = &e.kind
        else {
            return Ok(());
        };
        let (data, md) = load(p, budget)?;
        e.mode = chmod.unwrap_or(md.mode() & 0o7777);
        e.mtime = mtime_of(&md);
        e.kind = Kind::File {
            data,
            size: md.len(),
        };
        Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    if threads < 2 || pending.len() < PARALLEL_MIN {
        return pending.into_iter().try_for_each(fill);
    }
    let per = pending.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = pending
            .chunks_mut(per)
            .map(|chunk| s.spawn(|| chunk.iter_mut().try_for_each(|e| fill(e))))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a COPY reader panicked").into()))
            })
            .collect::<Result<Vec<()>, CopyError>>()
    })?;
    Ok(())
}

/// The cache key's hash: every hashed entry's type, path, mode, owner, size, link target and
/// content (small files' bytes, large files' and archives' digests), each field
/// length-prefixed so that no two trees collide. mtimes are left out, as docker's tarsum.
fn cache_hash(entries: &[Entry]) -> String {
    let mut h = Sha256::new();
    let field = |h: &mut Sha256, b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for e in entries.iter().filter(|e| e.hashed) {
        let t: &[u8] = match &e.kind {
            Kind::Dir => b"d",
            Kind::File { .. } => b"f",
            Kind::Symlink(_) => b"l",
            Kind::Archive(_) => b"a",
        };
        field(&mut h, t);
        field(&mut h, &e.path);
        for m in [e.mode, e.uid, e.gid] {
            h.update(m.to_le_bytes());
        }
        match &e.kind {
            Kind::Dir => {}
            Kind::File { data, size } => {
                h.update(size.to_le_bytes());
                match data {
                    // a digest for every file, however it was read: the same key whether the
                    // content came from the context's index or from the disk
                    Data::Inline(b) => field(&mut h, Sha256::digest(b).as_slice()),
                    Data::Open(_, _, d) | Data::Path(_, d) => field(&mut h, d),
                    Data::Pending(_) => {}
                }
            }
            Kind::Symlink(t) => field(&mut h, t),
            Kind::Archive(a) => field(&mut h, &a.digest),
        }
    }
    hex::encode(h.finalize().as_slice())
}

impl Plan {
    /// `file:<hex>` / `dir:<hex>` / `multi:<hex>` over names, modes, owners and content; a
    /// lone URL source's is the bare `<hex>` (docker's `ADD <hex> in <dest> `).
    pub fn cache_key(&self) -> String {
        self.key.clone()
    }

    /// Writes the layer (a plain tar) to `out`.
    pub fn write_layer(&self, out: &mut dyn Write) -> Result<(), CopyError> {
        let mut b = tar::Builder::new(out);
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.mode);
            h.set_uid(e.uid as u64);
            h.set_gid(e.gid as u64);
            h.set_mtime(e.mtime);
            let path = Path::new(OsStr::from_bytes(&e.path));
            match &e.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    // `dir/` as docker's layers name directories
                    let mut p = e.path.clone();
                    p.push(b'/');
                    b.append_data(&mut h, Path::new(OsStr::from_bytes(&p)), io::empty())?;
                }
                Kind::File { data, size } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(*size);
                    match data {
                        Data::Inline(d) => b.append_data(&mut h, path, &d[..])?,
                        Data::Open(f, p, _) => {
                            if f.metadata()?.len() != *size {
                                return Err(changed(p));
                            }
                            b.append_data(&mut h, path, Exact::new(f, *size, p))?
                        }
                        Data::Path(p, _) | Data::Pending(p) => {
                            let f = fs::OpenOptions::new()
                                .read(true)
                                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                                .open(p)?;
                            if f.metadata()?.len() != *size {
                                return Err(changed(p));
                            }
                            b.append_data(&mut h, path, Exact::new(&f, *size, p))?
                        }
                    }
                }
                Kind::Symlink(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, Path::new(OsStr::from_bytes(t)))?;
                }
                Kind::Archive(a) => write_archive(&mut b, a)?,
            }
        }
        b.finish()?;
        Ok(())
    }
}

/// Reads exactly `left` bytes of a file from offset 0 (`pread`: the descriptor's own offset
/// is left alone, so a plan can be written twice); an error if it is shorter now.
struct Exact<'a> {
    file: &'a File,
    off: u64,
    left: u64,
    path: &'a Path,
}

impl<'a> Exact<'a> {
    fn new(file: &'a File, size: u64, path: &'a Path) -> Exact<'a> {
        Exact {
            file,
            off: 0,
            left: size,
            path,
        }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.off)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{} changed while it was copied",
                self.path.display()
            )));
        }
        self.left -= n as u64;
        self.off += n as u64;
        Ok(n)
    }
}

/// The entries of a planned archive, re-rooted under their directories in the layer.
fn write_archive<W: Write>(b: &mut tar::Builder<W>, a: &ArchivePlan) -> Result<(), CopyError> {
    let (_, r) = decompressed(Exact::new(&a.src, a.size, Path::new("archive")))?;
    let bad = |m: String| CopyError::User(format!("ADD failed: {m}"));
    let place = |comps: &[Vec<u8>]| -> Option<PathBuf> {
        let (name, parent) = comps.split_last()?;
        let dir = a.dirs.get(&join(parent))?;
        let mut p = dir.clone();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        Some(PathBuf::from(OsStr::from_bytes(&p)))
    };
    berth_util::io::for_each_tar_entry(
        r,
        |e| bad(format!("reading archive: {e}")),
        |entry| {
            let kind = entry.header().entry_type();
            let raw = entry.path_bytes().into_owned();
            let comps =
                clean(&raw).ok_or_else(|| bad(format!("invalid archive entry {}", show(&raw))))?;
            if comps.is_empty() {
                return Ok(());
            }
            let path =
                place(&comps).ok_or_else(|| bad(format!("archive changed: {}", show(&raw))))?;
            let src = entry.header();
            let mut h = tar::Header::new_gnu();
            h.set_mode(src.mode().unwrap_or(0o644) & 0o7777);
            let (uid, gid) = a.chown.unwrap_or((
                entry.header().uid().unwrap_or(0) as u32,
                entry.header().gid().unwrap_or(0) as u32,
            ));
            h.set_uid(uid as u64);
            h.set_gid(gid as u64);
            h.set_mtime(entry.header().mtime().unwrap_or(0));
            if kind.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                let mut p = path.into_os_string();
                p.push("/");
                b.append_data(&mut h, Path::new(&p), io::empty())?;
            } else if kind.is_file() || kind.is_contiguous() {
                h.set_entry_type(tar::EntryType::Regular);
                let size = entry.header().size().unwrap_or(0);
                h.set_size(size);
                b.append_data(&mut h, &path, entry)?;
            } else if kind.is_symlink() {
                let t = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &path, Path::new(OsStr::from_bytes(&t)))?;
            } else if kind.is_hard_link() {
                let t = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let tc = clean(&t)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| bad(format!("invalid hardlink {}", show(&raw))))?;
                let target =
                    place(&tc).ok_or_else(|| bad(format!("invalid hardlink {}", show(&raw))))?;
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &path, &target)?;
            } else {
                tracing::debug!(entry = %show(&raw), "ADD skips a device, FIFO or special archive entry");
            }
            Ok(())
        },
    )
}

/// ADD <url>: fetches `url` into `dir` (a file named after the URL's last path element, mtime
/// from `Last-Modified`), returning its path. Plain HTTP and HTTPS.
///
/// A blocking client (reqwest's): call it from a blocking thread, never from async code.
pub fn fetch_url(url: &str, dir: &Path) -> Result<std::path::PathBuf, CopyError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| CopyError::User(format!("invalid URL {url}: {e}")))?;
    let client = reqwest::blocking::Client::builder()
        .build()
        .map_err(|e| CopyError::Io(io::Error::other(e.to_string())))?;
    let mut resp = client
        .get(parsed.clone())
        .send()
        .map_err(|e| CopyError::User(format!("failed to GET {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let mut body = String::new();
        let _ = (&mut resp).take(4096).read_to_string(&mut body);
        return Err(CopyError::User(format!(
            "failed to GET {url} with status {status}: {}",
            body.trim_end()
        )));
    }
    let name = url_file_name(
        &parsed,
        resp.headers().get(reqwest::header::CONTENT_DISPOSITION),
    )
    .ok_or_else(|| CopyError::User(format!("cannot determine filename from url: {url}")))?;
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let path = dir.join(&name);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    io::copy(&mut resp, &mut f)
        .map_err(|e| CopyError::User(format!("failed to GET {url}: {e}")))?;
    if let Some(t) = mtime {
        f.set_modified(t)?;
    }
    Ok(path)
}

/// The URL's last path element, else the `filename` of `Content-Disposition`.
fn url_file_name(
    url: &reqwest::Url,
    disposition: Option<&reqwest::header::HeaderValue>,
) -> Option<String> {
    let ok =
        |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains('/') && !n.contains('\0');
    if let Some(last) = url.path_segments().and_then(|mut s| s.next_back()) {
        if ok(last) {
            return Some(last.to_string());
        }
    }
    let d = disposition?.to_str().ok()?;
    let name = d
        .split(';')
        .find_map(|p| p.trim().strip_prefix("filename="))?;
    let name = name.trim_matches('"');
    let name = name.rsplit('/').next()?;
    ok(name).then(|| name.to_string())
}

/// CPU time of the process so far (user + system, all threads): test timings that a loaded
/// machine does not blur.
#[cfg(test)]
pub(crate) fn cpu_time() -> std::time::Duration {
    // SAFETY: a zeroed rusage filled by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    std::time::Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// (path, type char, mode, uid, gid, content or link target)
    type Listed = Vec<(String, char, u32, u64, u64, String)>;

    fn list(plan: &Plan) -> Listed {
        let mut buf = Vec::new();
        plan.write_layer(&mut buf).unwrap();
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(&buf[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let t = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            };
            let path = show(&e.path_bytes()).trim_end_matches('/').to_string();
            let content = if t == 'l' || t == 'h' {
                show(&e.link_name_bytes().unwrap())
            } else {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                show(&b)
            };
            out.push((
                path,
                t,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                content,
            ));
        }
        out
    }

    fn names(l: &Listed) -> Vec<String> {
        l.iter().map(|e| e.0.clone()).collect()
    }

    struct Fx {
        _d: tempfile::TempDir,
        ctx: PathBuf,
        rootfs: PathBuf,
    }

    fn fx() -> Fx {
        // a tmpfs as the exec root is, when there is one
        let shm = Path::new("/dev/shm");
        let d = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let ctx = d.path().join("ctx");
        let rootfs = d.path().join("rootfs");
        fs::create_dir_all(&ctx).unwrap();
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::create_dir_all(rootfs.join("tmp")).unwrap();
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        Fx { _d: d, ctx, rootfs }
    }

    fn req(srcs: &[&str], dest: &str) -> Request {
        Request {
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            workdir: "/".into(),
            ..Default::default()
        }
    }

    fn ctx_src(f: &Fx) -> Source<'_> {
        Source {
            root: &f.ctx,
            ignore: None,
            is_context: true,
        }
    }

    fn err(r: Result<Plan, CopyError>) -> String {
        match r {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn glob_is_gos_filepath_match() {
        let m = |p, s| glob_match(p, s).unwrap();
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("\\*", "*"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(glob_match("[", "a").is_err());
        assert!(glob_match("[]", "a").is_err());
    }

    #[test]
    fn single_file_rules() {
        let f = fx();
        fs::write(f.ctx.join("a.txt"), "hello").unwrap();
        fs::set_permissions(f.ctx.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        // to a name
        let l = list(&plan(&ctx_src(&f), &req(&["a.txt"], "/opt/b.txt"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["opt", "opt/b.txt"]);
        assert_eq!(l[0].1, 'd');
        assert_eq!(l[0].2, 0o755);
        assert_eq!(l[1], ("opt/b.txt".into(), 'f', 0o640, 0, 0, "hello".into()));
        // dest with a slash: inside
        let l = list(&plan(&ctx_src(&f), &req(&["a.txt"], "/opt/"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["opt", "opt/a.txt"]);
        // an existing directory: inside, and it keeps its mode (1777)
        let l = list(&plan(&ctx_src(&f), &req(&["/a.txt"], "/tmp"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["tmp", "tmp/a.txt"]);
        assert_eq!(l[0].2, 0o1777);
        // relative dest under workdir
        let mut r = req(&["a.txt"], "x");
        r.workdir = "/w".into();
        r.chown = Some((1000, 1001));
        r.chmod = Some(0o600);
        let l = list(&plan(&ctx_src(&f), &r, &f.rootfs).unwrap());
        assert_eq!(l[0], ("w".into(), 'd', 0o755, 1000, 1001, String::new()));
        assert_eq!(l[1], ("w/x".into(), 'f', 0o600, 1000, 1001, "hello".into()));
        // a symlinked directory in the rootfs is followed inside it
        symlink("/etc", f.rootfs.join("cfg")).unwrap();
        let l = list(&plan(&ctx_src(&f), &req(&["a.txt"], "/cfg/"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["etc", "etc/a.txt"]);
        let l = list(&plan(&ctx_src(&f), &req(&["a.txt"], "/cfg"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["etc", "etc/a.txt"]);
    }

    #[test]
    fn directories_copy_their_contents() {
        let f = fx();
        fs::create_dir_all(f.ctx.join("src/sub")).unwrap();
        fs::write(f.ctx.join("src/sub/f"), "1").unwrap();
        fs::write(f.ctx.join("src/g"), "2").unwrap();
        symlink("/etc/passwd", f.ctx.join("src/link")).unwrap();
        fs::set_permissions(f.ctx.join("src"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(f.ctx.join("src/sub"), fs::Permissions::from_mode(0o750)).unwrap();
        let p = plan(&ctx_src(&f), &req(&["src"], "/app"), &f.rootfs).unwrap();
        assert!(p.cache_key().starts_with("dir:"), "{}", p.cache_key());
        let l = list(&p);
        assert_eq!(
            names(&l),
            ["app", "app/g", "app/link", "app/sub", "app/sub/f"]
        );
        // a new destination is made 0755 (not the source's 0700); what is below keeps its mode
        assert_eq!((l[0].1, l[0].2), ('d', 0o755));
        assert_eq!((l[3].1, l[3].2), ('d', 0o750));
        // an existing one keeps its own
        let l = list(&plan(&ctx_src(&f), &req(&["src"], "/tmp"), &f.rootfs).unwrap());
        assert_eq!((l[0].0.as_str(), l[0].2), ("tmp", 0o1777));
        assert_eq!(l[2].1, 'l');
        assert_eq!(l[2].5, "/etc/passwd");
        // the context root itself
        let l = list(&plan(&ctx_src(&f), &req(&["."], "/"), &f.rootfs).unwrap());
        assert_eq!(
            names(&l),
            ["src", "src/g", "src/link", "src/sub", "src/sub/f"]
        );
    }

    #[test]
    fn wildcards_and_multiple_sources() {
        let f = fx();
        for n in ["a.txt", "b.txt", "c.md"] {
            fs::write(f.ctx.join(n), n).unwrap();
        }
        let p = plan(&ctx_src(&f), &req(&["*.txt"], "/d/"), &f.rootfs).unwrap();
        assert!(p.cache_key().starts_with("multi:"));
        assert_eq!(names(&list(&p)), ["d", "d/a.txt", "d/b.txt"]);
        let e = err(plan(&ctx_src(&f), &req(&["*.txt"], "/d"), &f.rootfs));
        assert_eq!(e, "When using COPY with more than one source file, the destination must be a directory and end with a /");
        let e = err(plan(&ctx_src(&f), &req(&["*.none"], "/d/"), &f.rootfs));
        assert_eq!(e, "COPY failed: no source files were specified");
        let p = plan(&ctx_src(&f), &req(&["c.*"], "/d"), &f.rootfs).unwrap();
        assert!(p.cache_key().starts_with("file:"));
        assert_eq!(names(&list(&p)), ["d"]);
    }

    #[test]
    fn missing_and_outside_sources() {
        let f = fx();
        fs::create_dir_all(f.ctx.join("in")).unwrap();
        fs::write(f.ctx.join("in/ok"), "x").unwrap();
        let e = err(plan(&ctx_src(&f), &req(&["nope"], "/"), &f.rootfs));
        assert_eq!(e, "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist");
        // named as docker names them (checked against dockerd 20.10)
        for (src, shown) in [
            ("/nope", "nope"),
            ("./nope", "nope"),
            ("in//nope", "in//nope"),
            ("in/nope/", "in/nope/"),
        ] {
            let e = err(plan(&ctx_src(&f), &req(&[src], "/"), &f.rootfs));
            assert!(
                e.ends_with(&format!(": stat {shown}: file does not exist")),
                "{e}"
            );
        }
        let e = err(plan(&ctx_src(&f), &req(&["[ab"], "/x/"), &f.rootfs));
        assert_eq!(e, "COPY failed: no source files were specified");
        let e = err(plan(&ctx_src(&f), &req(&["../x"], "/"), &f.rootfs));
        assert_eq!(
            e,
            "COPY failed: forbidden path outside the build context: ../x ()"
        );
        let e = err(plan(&ctx_src(&f), &req(&["in/../../x"], "/"), &f.rootfs));
        assert!(
            e.contains("forbidden path outside the build context"),
            "{e}"
        );
        // symlinks out: absolute, relative, and a chain
        symlink("/etc/passwd", f.ctx.join("abs")).unwrap();
        symlink("../../../../etc/passwd", f.ctx.join("rel")).unwrap();
        symlink("in/hop", f.ctx.join("chain")).unwrap();
        symlink("../rel", f.ctx.join("in/hop")).unwrap();
        symlink("/", f.ctx.join("rootlink")).unwrap();
        for s in ["abs", "rel", "chain", "rootlink/etc/passwd"] {
            let e = err(plan(&ctx_src(&f), &req(&[s], "/x"), &f.rootfs));
            assert!(
                e.contains("forbidden path outside the build context"),
                "{s}: {e}"
            );
        }
        // a symlink inside is followed; the file keeps the link's name
        symlink("in/ok", f.ctx.join("good")).unwrap();
        let l = list(&plan(&ctx_src(&f), &req(&["good"], "/d/"), &f.rootfs).unwrap());
        assert_eq!(l.last().unwrap().0, "d/good");
        assert_eq!(l.last().unwrap().5, "x");
        // loops
        symlink("loop", f.ctx.join("loop")).unwrap();
        let e = err(plan(&ctx_src(&f), &req(&["loop"], "/x"), &f.rootfs));
        assert!(e.contains("symbolic links"), "{e}");
        // a --from rootfs clamps instead
        let from = Source {
            root: &f.ctx,
            ignore: None,
            is_context: false,
        };
        fs::create_dir_all(f.ctx.join("etc")).unwrap();
        fs::write(f.ctx.join("etc/passwd"), "inside").unwrap();
        let l = list(&plan(&from, &req(&["abs"], "/x"), &f.rootfs).unwrap());
        assert_eq!(l[0].5, "inside");
    }

    #[test]
    fn heredoc_and_cache_key() {
        let f = fx();
        let mut r = req(&["EOF"], "/h");
        r.heredocs = vec![("EOF".into(), "hi\n".into())];
        let p = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
        let l = list(&p);
        assert_eq!(l[0], ("h".into(), 'f', 0o644, 0, 0, "hi\n".into()));
        let k1 = p.cache_key();
        assert!(k1.starts_with("file:") && k1.len() == 5 + 64, "{k1}");
        let p2 = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
        assert_eq!(p2.cache_key(), k1);
        r.heredocs[0].1 = "ho\n".into();
        assert_ne!(plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key(), k1);
        r.chown = Some((1, 1));
        r.heredocs[0].1 = "hi\n".into();
        assert_ne!(plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key(), k1);
    }

    #[test]
    fn five_thousand_files() {
        let f = fx();
        for d in 0..50 {
            let dir = f.ctx.join(format!("d{d:02}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..100 {
                fs::write(dir.join(format!("f{i:03}")), format!("file {d} {i}\n")).unwrap();
            }
        }
        let r = req(&["."], "/app/");
        let t = std::time::Instant::now();
        let cpu = cpu_time();
        let p = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
        let planned = t.elapsed();
        let cpu = cpu_time() - cpu;
        let k1 = p.cache_key();
        let t = std::time::Instant::now();
        let mut buf = Vec::new();
        p.write_layer(&mut buf).unwrap();
        let written = t.elapsed();
        eprintln!(
            "5000 files: plan+hash {planned:?} (cpu {cpu:?}), layer {written:?} ({} KiB)",
            buf.len() >> 10
        );
        assert_eq!(names(&list(&p)).len(), 1 + 50 + 5000);
        // the same content: the same key; one file changed: another
        let again = plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key();
        assert_eq!(again, k1);
        fs::write(f.ctx.join("d17/f042"), "changed\n").unwrap();
        assert_ne!(plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key(), k1);
        fs::write(f.ctx.join("d17/f042"), "file 17 42\n").unwrap();
        assert_eq!(plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key(), k1);
        fs::set_permissions(f.ctx.join("d17/f042"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(plan(&ctx_src(&f), &r, &f.rootfs).unwrap().cache_key(), k1);
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        // raw names: the tar crate's builder refuses `..`
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            {
                let g = h.as_gnu_mut().unwrap();
                g.name[..name.len()].copy_from_slice(name.as_bytes());
                g.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o750 } else { 0o640 });
            h.set_uid(7);
            h.set_gid(8);
            h.set_size(data.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        }
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }

    #[test]
    fn add_extracts_local_archives() {
        let f = fx();
        let t = tar_of(&[
            ("top/", tar::EntryType::Directory, "", b""),
            ("top/a", tar::EntryType::Regular, "", b"A"),
            ("/abs/b", tar::EntryType::Regular, "", b"B"),
            ("tmp/c", tar::EntryType::Regular, "", b"C"),
            ("top/h", tar::EntryType::Link, "top/a", b""),
            ("top/s", tar::EntryType::Symlink, "/nowhere", b""),
            ("dev", tar::EntryType::Char, "", b""),
        ]);
        fs::write(f.ctx.join("a.tar"), &t).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        fs::write(f.ctx.join("a.tgz"), gz.finish().unwrap()).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&t).unwrap();
        fs::write(f.ctx.join("a.tar.xz"), xz.finish().unwrap()).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&t).unwrap();
        fs::write(f.ctx.join("a.tar.bz2"), bz.finish().unwrap()).unwrap();
        for src in ["a.tar", "a.tgz", "a.tar.xz", "a.tar.bz2"] {
            let mut r = req(&[src], "/");
            r.add = true;
            let p = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
            assert!(p.cache_key().starts_with("file:"));
            let l = list(&p);
            let got: Vec<(String, char, u32, u64)> =
                l.iter().map(|e| (e.0.clone(), e.1, e.2, e.3)).collect();
            assert_eq!(
                got,
                [
                    // implied by /abs/b: new
                    ("abs".to_string(), 'd', 0o755, 0),
                    // implied by tmp/c: the rootfs's /tmp as it is
                    ("tmp".to_string(), 'd', 0o1777, 0),
                    ("top".to_string(), 'd', 0o750, 7),
                    ("top/a".to_string(), 'f', 0o640, 7),
                    ("abs/b".to_string(), 'f', 0o640, 7),
                    ("tmp/c".to_string(), 'f', 0o640, 7),
                    ("top/h".to_string(), 'h', 0o640, 7),
                    ("top/s".to_string(), 'l', 0o640, 7),
                ]
            );
            assert_eq!(l[6].5, "top/a");
            // into a directory; --chown changes nothing (docker's classic builder)
            let mut r = req(&[src], "/opt/x");
            r.add = true;
            r.chown = Some((5, 5));
            let l = list(&plan(&ctx_src(&f), &r, &f.rootfs).unwrap());
            assert!(l.iter().any(|e| e.0 == "opt/x/top/a" && e.3 == 7));
            assert!(l.iter().any(|e| e.0 == "opt/x" && e.3 == 0 && e.2 == 0o755));
            assert!(l
                .iter()
                .any(|e| e.0 == "opt/x/top/h" && e.5 == "opt/x/top/a"));
            // COPY does not extract
            let l = list(&plan(&ctx_src(&f), &req(&[src], "/"), &f.rootfs).unwrap());
            assert_eq!(names(&l), [src]);
        }
        // hostile archives fail the step while planning
        for (name, t) in [
            (
                "up.tar",
                tar_of(&[("../../etc/x", tar::EntryType::Regular, "", b"x")]),
            ),
            (
                "link.tar",
                tar_of(&[("h", tar::EntryType::Link, "../../etc/shadow", b"")]),
            ),
        ] {
            fs::write(f.ctx.join(name), t).unwrap();
            let mut r = req(&[name], "/");
            r.add = true;
            let e = err(plan(&ctx_src(&f), &r, &f.rootfs));
            assert!(e.starts_with("ADD failed: invalid"), "{e}");
        }
    }

    #[test]
    fn the_layer_unpacks_as_planned() {
        let f = fx();
        fs::create_dir_all(f.ctx.join("d/e")).unwrap();
        fs::write(f.ctx.join("d/e/f"), "F").unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(f.ctx.join("d/big"), &big).unwrap();
        symlink("e/f", f.ctx.join("d/l")).unwrap();
        let p = plan(&ctx_src(&f), &req(&["d"], "/tmp/app"), &f.rootfs).unwrap();
        let out = f._d.path().join("layer");
        fs::create_dir_all(&out).unwrap();
        for _ in 0..2 {
            let mut buf = Vec::new();
            p.write_layer(&mut buf).unwrap();
            berth_snapshot::extract_into(&out, &buf[..]).unwrap();
        }
        assert_eq!(fs::read(out.join("tmp/app/big")).unwrap(), big);
        assert_eq!(fs::read_to_string(out.join("tmp/app/l")).unwrap(), "F");
        let tmp = fs::metadata(out.join("tmp")).unwrap();
        assert_eq!(tmp.mode() & 0o7777, 0o1777);
        // a large file that changed size since planning is an error, not a corrupt tar
        fs::write(f.ctx.join("d/big"), b"short").unwrap();
        assert!(p.write_layer(&mut Vec::new()).is_err());
    }

    /// Serves one canned HTTP response per connection on loopback; returns the base URL.
    fn serve(responses: Vec<Vec<u8>>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for resp in responses {
                let Ok((mut c, _)) = l.accept() else { return };
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let _ = c.write_all(&resp);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn add_fetches_urls() {
        let f = fx();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\nremote".to_vec();
        let base = serve(vec![
            ok.clone(),
            ok.clone(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone"
                .to_vec(),
        ]);
        let url = format!("{base}/files/data.txt");
        let mut r = req(&[&url], "/dl/");
        r.add = true;
        let p = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
        let l = list(&p);
        assert_eq!(
            l[1],
            ("dl/data.txt".into(), 'f', 0o600, 0, 0, "remote".into())
        );
        let mut buf = Vec::new();
        p.write_layer(&mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mtimes: Vec<u64> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mtime().unwrap())
            .collect();
        assert_eq!(mtimes[1], 1445412480);
        // dest without a slash: the file itself
        let mut r = req(&[&url], "/named");
        r.add = true;
        let k = plan(&ctx_src(&f), &r, &f.rootfs).unwrap();
        assert_eq!(names(&list(&k)), ["named"]);
        let mut r = req(&[&url], "/x");
        r.add = true;
        let e = err(plan(&ctx_src(&f), &r, &f.rootfs));
        assert_eq!(
            e,
            format!("ADD failed: failed to GET {url} with status 404 Not Found: gone")
        );
    }

    #[test]
    fn dockerignored_files_do_not_exist() {
        let f = fx();
        fs::create_dir_all(f.ctx.join("src/build")).unwrap();
        fs::create_dir_all(f.ctx.join("logs")).unwrap();
        fs::write(f.ctx.join("src/a.rs"), "a").unwrap();
        fs::write(f.ctx.join("src/a.tmp"), "t").unwrap();
        fs::write(f.ctx.join("src/build/out"), "o").unwrap();
        fs::write(f.ctx.join("logs/x.log"), "l").unwrap();
        fs::write(f.ctx.join("logs/keep.log"), "k").unwrap();
        symlink("src/build/out", f.ctx.join("alias")).unwrap();
        let m = Matcher::parse("**/*.tmp\nsrc/build\nlogs\n!logs/keep.log\n").unwrap();
        let src = Source {
            root: &f.ctx,
            ignore: Some(&m),
            is_context: true,
        };
        let l = list(&plan(&src, &req(&["."], "/c/"), &f.rootfs).unwrap());
        assert_eq!(
            names(&l),
            ["c", "c/alias", "c/logs/keep.log", "c/src", "c/src/a.rs"]
        );
        for s in [
            "src/a.tmp",
            "src/build/out",
            "src/build",
            "logs/x.log",
            "alias",
        ] {
            let e = err(plan(&src, &req(&[s], "/x"), &f.rootfs));
            assert!(e.contains("excluded by .dockerignore"), "{s}: {e}");
        }
        // an excluded directory that an exception enters is there, with what was re-included
        let l = list(&plan(&src, &req(&["logs"], "/x/"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["x", "x/keep.log"]);
        let l = list(&plan(&src, &req(&["src/*"], "/x/"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["x", "x/a.rs"]);
        // matched as the CLI's walk does (it sends d1/sub/a here, where a path-only check of
        // d1/sub/a says excluded)
        fs::create_dir_all(f.ctx.join("w/d1/sub")).unwrap();
        fs::write(f.ctx.join("w/d1/sub/a"), "a").unwrap();
        fs::write(f.ctx.join("w/d1/b"), "b").unwrap();
        let m2 = Matcher::parse("w/d1\n!w/d1/sub\n**d1\n").unwrap();
        assert!(m2.matches("w/d1/sub/a"));
        let src2 = Source {
            root: &f.ctx,
            ignore: Some(&m2),
            is_context: true,
        };
        let l = list(&plan(&src2, &req(&["w"], "/w/"), &f.rootfs).unwrap());
        assert_eq!(names(&l), ["w", "w/d1/sub", "w/d1/sub/a"]);
        // the key follows what is copied: an ignored file changing keeps it
        let k = plan(&src, &req(&["."], "/c/"), &f.rootfs)
            .unwrap()
            .cache_key();
        fs::write(f.ctx.join("src/a.tmp"), "changed").unwrap();
        assert_eq!(
            plan(&src, &req(&["."], "/c/"), &f.rootfs)
                .unwrap()
                .cache_key(),
            k
        );
    }

    #[test]
    fn a_from_image_may_go_before_the_layer_is_written() {
        let f = fx();
        let stage = f._d.path().join("stage");
        fs::create_dir_all(stage.join("out")).unwrap();
        let big: Vec<u8> = (0..2_500_000u32).map(|i| (i % 241) as u8).collect();
        fs::write(stage.join("out/big.bin"), &big).unwrap();
        fs::write(stage.join("out/small"), "s").unwrap();
        let from = Source {
            root: &stage,
            ignore: None,
            is_context: false,
        };
        let p = plan(&from, &req(&["/out"], "/o"), &f.rootfs).unwrap();
        // the stage's mount goes (the executor drops it before writing the layer)
        fs::remove_dir_all(&stage).unwrap();
        let l = list(&p);
        assert_eq!(names(&l), ["o", "o/big.bin", "o/small"]);
        assert_eq!(l[1].5.len(), show(&big).len());
        assert_eq!(l[2].5, "s");
    }
}
