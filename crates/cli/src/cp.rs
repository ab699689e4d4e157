//! `cp`: copies between a container and the host with docker's rules
//! (directory into an existing directory, `/.` for the contents, a file
//! onto a file, the top entry renamed when the destination name differs).

use crate::client::Client;
use crate::flags::{self, b, Parsed, Spec};
use crate::http::ReqBody;
use crate::run::query_escape;
use crate::units::{go_quote, human_size};
use crate::{args_error, fail, flag_error};
use anyhow::Result;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

const CP_FLAGS: &[Spec] = &[
    b(Some('a'), "archive"),
    b(Some('L'), "follow-link"),
    b(Some('q'), "quiet"),
];

const CP_HELP: &str = "Usage:  berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
	berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.

Aliases:
  berth container cp, berth cp

Options:
  -a, --archive       Archive mode (copy all uid/gid information)
  -L, --follow-link   Always follow symbol link in SRC_PATH
  -q, --quiet         Suppress progress output during copy. Progress
                      output is automatically suppressed if no terminal
                      is attached
";

// Go's os.FileMode bits, as the path stat header carries them.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;
const MODE_DEVICE: u64 = 1 << 26;
const MODE_IRREGULAR: u64 = 1 << 19;

// ---------------------------------------------------------------- Go path helpers

/// Go's `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(out.last(), Some(l) if *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let s = out.join("/");
    match (rooted, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

/// Go's `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `filepath.Dir`.
pub fn dir(p: &str) -> String {
    let i = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    clean(&p[..i])
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => clean(b),
        (_, true) => clean(a),
        _ => clean(&format!("{a}/{b}")),
    }
}

fn trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

fn current_dir_spec(p: &str) -> bool {
    base(p) == "."
}

/// docker's `SplitPathDirEntry`: the parent and the entry (`.` kept).
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut c = clean(p);
    if current_dir_spec(p) {
        c.push_str("/.");
    }
    (dir(&c), base(&c))
}

/// docker's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, orig: &str) -> String {
    let mut c = cleaned.to_string();
    if !current_dir_spec(&c) && current_dir_spec(orig) {
        if !trailing_sep(&c) {
            c.push('/');
        }
        c.push('.');
    }
    if !trailing_sep(&c) && trailing_sep(orig) {
        c.push('/');
    }
    c
}

/// An absolute local path that keeps a trailing `/` or `/.`.
pub fn resolve_local_path(p: &str) -> Result<String> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir()?;
        join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// A Go-style error text for an OS error (`no such file or directory`).
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let d = nix::errno::Errno::from_raw(n).desc();
            let mut c = d.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    }
}

fn op_err(op: &str, path: &str, e: &std::io::Error) -> anyhow::Error {
    fail(format!("{op} {path}: {}", errno_text(e)), 1)
}

/// Go's `filepath.EvalSymlinks` for an absolute path.
fn eval_symlinks(p: &str) -> Result<String> {
    let mut todo: Vec<String> = p
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut cur = String::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == "." {
            continue;
        }
        if part == ".." {
            cur = dir(&cur);
            continue;
        }
        let next = join(&cur, &part);
        let md = std::fs::symlink_metadata(&next).map_err(|e| op_err("lstat", &next, &e))?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > 255 {
                return Err(fail("EvalSymlinks: too many links", 1));
            }
            let t = std::fs::read_link(&next).map_err(|e| op_err("readlink", &next, &e))?;
            let t = t.to_string_lossy().into_owned();
            if t.starts_with('/') {
                cur = "/".into();
            }
            todo.extend(
                t.split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .rev(),
            );
            continue;
        }
        if !md.is_dir() && !todo.is_empty() {
            return Err(fail("not a directory", 1));
        }
        cur = next;
    }
    // `file/` names a directory
    let is_dir = std::fs::metadata(&cur).map(|m| m.is_dir()).unwrap_or(false);
    if trailing_sep(p) && !is_dir {
        return Err(fail("not a directory", 1));
    }
    Ok(cur)
}

/// docker's `GetRebaseName`.
fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut r = resolved.to_string();
    if current_dir_spec(path) && !current_dir_spec(&r) {
        r.push_str("/.");
    }
    if trailing_sep(path) && !trailing_sep(&r) {
        r.push('/');
    }
    let name = if base(path) != base(&r) {
        base(path)
    } else {
        String::new()
    };
    (r, name)
}

// ---------------------------------------------------------------- copy rules

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    pub rebase: String,
}

/// A renaming of the archive's top entry: (old name, new name).
pub type Rename = (String, String);

/// docker's `PrepareArchiveCopy`: the directory to extract into and the
/// renaming (old top name → new) the archive needs, if any.
pub fn prepare_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<Rename>), &'static str> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase.is_empty() {
        src_base = src.rebase.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err("cannot copy directory");
    }
    if !dst.exists && !src.is_dir && (trailing_sep(&dst.path) || current_dir_spec(&dst.path)) {
        return Err("no such directory");
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// docker's `RebaseArchiveEntries` on one name (the first occurrence).
pub fn rebase(name: &str, old: &str, new: &str) -> String {
    let old = if old == "/" { "" } else { old };
    // an archive of `dir/.` holds `./x`; tar writers that drop the `./`
    // (berthd's) still mean it
    if old == "." && name != "." && !name.starts_with("./") {
        return format!("{new}/{name}");
    }
    name.replacen(old, new, 1)
}

/// docker's `splitCpArg`: `CONTAINER:PATH` unless it is a local path.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

// ---------------------------------------------------------------- the command

struct Opts {
    follow: bool,
    copy_uid_gid: bool,
    quiet: bool,
}

pub fn cp(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let p: Parsed = flags::parse(args, CP_FLAGS, true).map_err(|e| flag_error("cp", &e))?;
    if p.help {
        // the first usage line names the command as invoked (`container cp`)
        print!(
            "{}",
            CP_HELP.replacen("berth cp", &format!("berth {}", crate::shown("cp")), 1)
        );
        return Ok(0);
    }
    if p.args.len() != 2 {
        return Err(args_error("cp", "requires 2 arguments"));
    }
    if p.args[0].is_empty() {
        return Err(fail("source can not be empty", 1));
    }
    if p.args[1].is_empty() {
        return Err(fail("destination can not be empty", 1));
    }
    let o = Opts {
        follow: p.has("follow-link"),
        copy_uid_gid: p.has("archive"),
        quiet: p.has("quiet") || !crate::term::isatty(1),
    };
    let (sc, sp) = split_cp_arg(&p.args[0]);
    let (dc, dp) = split_cp_arg(&p.args[1]);
    match (sc, dc) {
        (Some(c), None) => from_container(connect, c, sp, dp, &o),
        (None, Some(c)) => to_container(connect, c, sp, dp, &o),
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported", 1)),
        (None, None) => Err(fail("must specify at least one container source", 1)),
    }
}

#[derive(Debug, Default)]
pub struct PathStat {
    pub mode: u64,
    pub link_target: String,
}

/// Decodes `X-Docker-Container-Path-Stat` (base64 JSON).
pub fn parse_stat(h: &str) -> Option<PathStat> {
    let raw = base64_decode(h)?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    Some(PathStat {
        mode: v.get("mode")?.as_u64()?,
        link_target: v
            .get("linkTarget")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string(),
    })
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.trim().as_bytes() {
        if c == b'=' {
            break;
        }
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn archive_path(ctr: &str, path: &str) -> String {
    format!("/containers/{ctr}/archive?path={}", query_escape(path))
}

fn stat_path(c: &mut Client, ctr: &str, path: &str) -> Option<PathStat> {
    let r = c
        .call("HEAD", &archive_path(ctr, path), ReqBody::Empty)
        .ok()?;
    parse_stat(r.head.header("X-Docker-Container-Path-Stat")?)
}

/// A reader that counts what passes through it.
struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn from_container(
    connect: impl Fn() -> Result<Client>,
    ctr: &str,
    src: &str,
    dst: &str,
    o: &Opts,
) -> Result<i32> {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        resolve_local_path(dst)?
    };
    validate_output_path(&dst)?;
    let mut c = connect()?;
    let mut src = src.to_string();
    let mut rebase_to = String::new();
    if o.follow {
        if let Some(st) = stat_path(&mut c, ctr, &src) {
            if st.mode & MODE_SYMLINK != 0 {
                let mut t = st.link_target.clone();
                if !t.starts_with('/') {
                    t = join(&split_dir_entry(&src).0, &t);
                }
                let (t, r) = rebase_name(&src, &t);
                src = t;
                rebase_to = r;
            }
        }
    }
    let st = c.stream("GET", &archive_path(ctr, &src), ReqBody::Empty, &[], false)?;
    let stat = st
        .head
        .header("X-Docker-Container-Path-Stat")
        .and_then(parse_stat)
        .unwrap_or_default();
    if dst == "-" {
        let mut body = st.body;
        let mut out = std::io::stdout().lock();
        match std::io::copy(&mut body, &mut out).and_then(|_| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => return Ok(0),
        }
    }
    let src_info = CopyInfo {
        path: src.clone(),
        exists: true,
        is_dir: stat.mode & MODE_DIR != 0,
        rebase: rebase_to.clone(),
    };
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut body = Counting {
        inner: st.body,
        n: count.clone(),
    };
    let mut renames = Vec::new();
    if !rebase_to.is_empty() {
        renames.push((split_dir_entry(&src).1, rebase_to));
    }
    let res = copy_to_host(&mut body, &src_info, &dst, renames);
    if res.is_ok() {
        // docker's reader reads ahead to the end of the stream
        let _ = std::io::copy(&mut body, &mut std::io::sink());
    }
    if !o.quiet {
        eprintln!(
            "Successfully copied {} to {dst}",
            human_size(count.load(std::sync::atomic::Ordering::Relaxed) as f64)
        );
    }
    res.map(|_| 0)
}

/// docker's `ValidateOutputPath`.
fn validate_output_path(p: &str) -> Result<()> {
    let d = dir(&clean(p));
    if !d.is_empty() && d != "." && !Path::new(&d).exists() {
        return Err(fail(
            format!(
                "invalid output path: directory {} does not exist",
                go_quote(&d)
            ),
            1,
        ));
    }
    let md = match std::fs::metadata(p) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(op_err("stat", p, &e)),
    };
    if let Some(md) = md {
        let ft = md.file_type();
        if ft.is_block_device() || ft.is_char_device() {
            return Err(fail(
                format!(
                    "invalid output path: {} must be a directory or a regular file: got a device",
                    go_quote(p)
                ),
                1,
            ));
        }
        if !md.is_dir() && !md.is_file() {
            return Err(fail(
                format!(
                    "invalid output path: {} must be a directory or a regular file: got an irregular file",
                    go_quote(p)
                ),
                1,
            ));
        }
    }
    Ok(())
}

/// docker's `CopyInfoDestinationPath` for a host path.
fn dest_info(p: &str) -> Result<CopyInfo> {
    let mut path = p.to_string();
    let mut md = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &md {
        if !m.file_type().is_symlink() {
            break;
        }
        if n > 10 {
            return Err(fail(format!("too many symlinks in {p}"), 1));
        }
        n += 1;
        let t = std::fs::read_link(&path).map_err(|e| op_err("readlink", &path, &e))?;
        let t = t.to_string_lossy().into_owned();
        path = if t.starts_with('/') {
            t
        } else {
            join(&split_dir_entry(&path).0, &t)
        };
        md = std::fs::symlink_metadata(&path);
    }
    match md {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase: String::new(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = split_dir_entry(&path).0;
            let pm = std::fs::metadata(&parent).map_err(|e| op_err("stat", &parent, &e))?;
            if !pm.is_dir() {
                return Err(fail("not a directory", 1));
            }
            Ok(CopyInfo {
                path,
                ..Default::default()
            })
        }
        Err(e) => Err(op_err("lstat", &path, &e)),
    }
}

/// docker's `CopyTo`: extracts the container's archive at a host path.
fn copy_to_host(
    body: impl Read,
    src: &CopyInfo,
    dst: &str,
    mut renames: Vec<(String, String)>,
) -> Result<()> {
    let dst_info = dest_info(dst)?;
    let (dir, rn) = prepare_copy(src, &dst_info).map_err(|e| fail(e, 1))?;
    renames.extend(rn);
    untar(body, &dir, &renames)
}

fn apply_renames(name: &str, renames: &[(String, String)]) -> String {
    renames
        .iter()
        .fold(name.to_string(), |n, (o, w)| rebase(&n, o, w))
}

/// Extracts a tar below `dest` as docker's `Untar` with `NoLchown` and
/// `NoOverwriteDirNonDir`: files belong to the caller, modes and times
/// come from the archive.
pub fn untar(r: impl Read, dest: &str, renames: &[(String, String)]) -> Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let mut ar = tar::Archive::new(r);
    let mut dirs: Vec<(String, i64)> = Vec::new();
    let times = |p: &str, mtime: i64, follow: bool| -> Result<()> {
        let ts = TimeSpec::new(mtime, 0);
        let fl = if follow {
            UtimensatFlags::FollowSymlink
        } else {
            UtimensatFlags::NoFollowSymlink
        };
        utimensat(nix::fcntl::AT_FDCWD, p, &ts, &ts, fl)
            .map_err(|e| fail(format!("chtimes {p}: {}", e.desc().to_lowercase()), 1))?;
        Ok(())
    };
    for e in ar.entries().map_err(|e| fail(e.to_string(), 1))? {
        let mut e = e.map_err(|e| fail(e.to_string(), 1))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let name = clean(&apply_renames(&raw, renames));
        let h = e.header().clone();
        let kind = h.entry_type();
        let path = join(dest, &name);
        let d = clean(dest);
        let under = if d == "/" { d.clone() } else { format!("{d}/") };
        // no entry may leave `dest`, neither by `..` nor through a symlink
        // an earlier entry (or the host) put below it
        let mut via_link = false;
        let mut at = d.clone();
        for part in dir(&name).split('/').filter(|p| !p.is_empty() && *p != ".") {
            at = join(&at, part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                via_link = true;
                break;
            }
        }
        if via_link || (path != d && !path.starts_with(&under)) {
            return Err(fail(
                format!("{} is outside of {}", go_quote(&name), go_quote(dest)),
                1,
            ));
        }
        let parent = join(dest, &dir(&name));
        if std::fs::symlink_metadata(&parent).is_err() {
            std::fs::create_dir_all(&parent).map_err(|e| op_err("mkdir", &parent, &e))?;
        }
        if let Ok(fi) = std::fs::symlink_metadata(&path) {
            let is_dir = kind.is_dir();
            if fi.is_dir() && !is_dir {
                return Err(fail(
                    format!(
                        "cannot overwrite directory {} with non-directory {}",
                        go_quote(&path),
                        go_quote(dest)
                    ),
                    1,
                ));
            }
            if !fi.is_dir() && is_dir {
                return Err(fail(
                    format!(
                        "cannot overwrite non-directory {} with directory {}",
                        go_quote(&path),
                        go_quote(dest)
                    ),
                    1,
                ));
            }
            if fi.is_dir() && name == "." {
                continue;
            }
            if !fi.is_dir() {
                std::fs::remove_file(&path).map_err(|e| op_err("unlinkat", &path, &e))?;
            }
        }
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().unwrap_or(0) as i64;
        let chmod = |p: &str| -> Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| op_err("chmod", p, &e))
        };
        let link_name = || -> String {
            h.link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        match kind {
            tar::EntryType::Directory => {
                if !std::fs::symlink_metadata(&path)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    std::fs::create_dir(&path).map_err(|e| op_err("mkdir", &path, &e))?;
                }
                chmod(&path)?;
                dirs.push((path.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| op_err("open", &path, &e))?;
                std::io::copy(&mut e, &mut f)?;
                drop(f);
                chmod(&path)?;
                times(&path, mtime, true)?;
            }
            tar::EntryType::Symlink => {
                let target = link_name();
                let full = join(&dir(&path), &target);
                if !full.starts_with(&clean(dest)) {
                    return Err(fail(
                        format!(
                            "invalid symlink {} -> {}",
                            go_quote(&path),
                            go_quote(&target)
                        ),
                        1,
                    ));
                }
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(|e| fail(format!("symlink {target} {path}: {}", errno_text(&e)), 1))?;
                times(&path, mtime, false)?;
            }
            tar::EntryType::Link => {
                let target = clean(&apply_renames(&link_name(), renames));
                let full = join(dest, &target);
                if !full.starts_with(&clean(dest)) {
                    return Err(fail(
                        format!(
                            "invalid hardlink {} -> {}",
                            go_quote(&full),
                            go_quote(&target)
                        ),
                        1,
                    ));
                }
                std::fs::hard_link(&full, &path)
                    .map_err(|e| fail(format!("link {full} {path}: {}", errno_text(&e)), 1))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                use nix::sys::stat::{mknod, Mode, SFlag};
                let t = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    h.device_major().ok().flatten().unwrap_or(0) as u64,
                    h.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                mknod(
                    Path::new(&path),
                    t,
                    Mode::from_bits_truncate(mode as nix::libc::mode_t),
                    dev,
                )
                .map_err(|e| fail(format!("mknod {path}: {}", e.desc().to_lowercase()), 1))?;
                chmod(&path)?;
                times(&path, mtime, true)?;
            }
            // PAX/GNU extension records are folded in by the reader
            _ => {}
        }
    }
    for (p, mtime) in dirs.iter().rev() {
        times(p, *mtime, true)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- host → container

/// docker's `CopyInfoSourcePath` (+ `ResolveHostSourcePath`).
fn source_info(path: &str, follow: bool) -> Result<CopyInfo> {
    let (resolved, rebase) = if follow {
        let r = eval_symlinks(path)?;
        rebase_name(path, &r)
    } else {
        let i = path.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (d, b) = (&path[..i], &path[i..]);
        let rd = eval_symlinks(if d.is_empty() { "." } else { d })?;
        let r = format!("{}/{b}", rd.trim_end_matches('/'));
        let rb = if trailing_sep(path) && base(path) != base(&r) {
            base(path)
        } else {
            String::new()
        };
        (r, rb)
    };
    let md = std::fs::symlink_metadata(&resolved).map_err(|e| op_err("lstat", &resolved, &e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: md.is_dir(),
        rebase,
    })
}

/// Writes the tar docker's `TarResource` makes of `src` (its entry
/// renamed by `renames`) to `w`.
fn write_tar(src: &CopyInfo, renames: &[(String, String)], w: impl Write) -> std::io::Result<()> {
    let (sdir, sbase) = split_dir_entry(&src.path);
    let mut b = tar::Builder::new(w);
    let mut seen: HashMap<(u64, u64), String> = HashMap::new();
    let root = format!("{sdir}/{sbase}");
    let mut stack = vec![root.clone()];
    while let Some(fp) = stack.pop() {
        let md = match std::fs::symlink_metadata(&fp) {
            Ok(m) => m,
            Err(_) => continue,
        };
        // the name relative to the parent of the source
        let rel = if fp == root {
            sbase.clone()
        } else {
            let tail = &fp[root.len() + 1..];
            if sbase == "." {
                format!("./{tail}")
            } else {
                format!("{sbase}/{tail}")
            }
        };
        if md.is_dir() {
            let mut kids: Vec<String> = std::fs::read_dir(&fp)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            kids.sort();
            for k in kids.iter().rev() {
                stack.push(format!("{}/{k}", fp.trim_end_matches('/')));
            }
        }
        let mut name = if !src.rebase.is_empty() {
            rebase(&rel, &sbase, &src.rebase)
        } else {
            rel
        };
        if md.is_dir() && !name.ends_with('/') {
            name.push('/');
        }
        let name = apply_renames(&name, renames);
        let ft = md.file_type();
        if ft.is_socket() {
            continue;
        }
        let mut h = tar::Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            put(&mut b, &mut h, &name, None, std::io::empty())?;
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            let t = std::fs::read_link(&fp)?;
            put(&mut b, &mut h, &name, Some(&t), std::io::empty())?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = seen.get(&(md.dev(), md.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    put(
                        &mut b,
                        &mut h,
                        &name,
                        Some(Path::new(first)),
                        std::io::empty(),
                    )?;
                    continue;
                }
                seen.insert((md.dev(), md.ino()), name.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            let f = std::fs::File::open(&fp)?;
            put(&mut b, &mut h, &name, None, f)?;
        } else {
            let t = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            h.set_entry_type(t);
            if !ft.is_fifo() {
                let r = md.rdev();
                h.set_device_major(nix::sys::stat::major(r) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(r) as u32)?;
            }
            put(&mut b, &mut h, &name, None, std::io::empty())?;
        }
    }
    b.into_inner()?.flush()
}

/// Appends one entry with the header bytes Go's `archive/tar` writes for
/// a USTAR entry (device fields "0000000", checksum "%06o\0 "); names or
/// link targets too long for USTAR fall back to GNU long-name records.
fn put<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    link: Option<&Path>,
    data: impl Read,
) -> std::io::Result<()> {
    let short = h.set_path(name).is_ok() && link.is_none_or(|l| h.set_link_name(l).is_ok());
    if !short {
        return match link {
            Some(l) => b.append_link(h, name, l),
            None => b.append_data(h, name, data),
        };
    }
    if !matches!(h.entry_type(), tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(0)?;
        h.set_device_minor(0)?;
    }
    h.as_mut_bytes()[148..156].fill(b' ');
    let sum: u32 = h.as_bytes().iter().map(|&x| x as u32).sum();
    h.as_mut_bytes()[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b.append(h, data)
}

fn to_container(
    connect: impl Fn() -> Result<Client>,
    ctr: &str,
    src: &str,
    dst: &str,
    o: &Opts,
) -> Result<i32> {
    let src = if src == "-" {
        src.to_string()
    } else {
        resolve_local_path(src)?
    };
    let mut c = connect()?;
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut stat = stat_path(&mut c, ctr, dst);
    if let Some(st) = stat.as_ref().filter(|s| s.mode & MODE_SYMLINK != 0) {
        let mut t = st.link_target.clone();
        if !t.starts_with('/') {
            t = join(&split_dir_entry(dst).0, &t);
        }
        dst_info.path = t.clone();
        stat = stat_path(&mut c, ctr, &t);
    }
    if let Some(st) = &stat {
        let why = if st.mode & MODE_DEVICE != 0 {
            Some("got a device")
        } else if st.mode & MODE_IRREGULAR != 0 {
            Some("got an irregular file")
        } else {
            None
        };
        if let Some(w) = why {
            return Err(fail(
                format!("destination \"{ctr}:{dst}\" must be a directory or a regular file: {w}"),
                1,
            ));
        }
        dst_info.exists = true;
        dst_info.is_dir = st.mode & MODE_DIR != 0;
    }
    let mut q = Vec::new();
    if o.copy_uid_gid {
        q.push("copyUIDGID=true".to_string());
    }
    q.push("noOverwriteDirNonDir=true".into());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let res = if src == "-" {
        if !dst_info.is_dir {
            return Err(fail(
                format!("destination \"{ctr}:{dst}\" must be a directory"),
                1,
            ));
        }
        q.push(format!("path={}", query_escape(&dst_info.path)));
        let mut input = std::io::stdin();
        c.call(
            "PUT",
            &format!("/containers/{ctr}/archive?{}", q.join("&")),
            ReqBody::Chunked("text/plain", &mut input),
        )
    } else {
        let src_info = source_info(&src, o.follow)?;
        let (dir, rn) = prepare_copy(&src_info, &dst_info).map_err(|e| fail(e, 1))?;
        q.push(format!("path={}", query_escape(&dir)));
        let renames: Vec<(String, String)> = rn.into_iter().collect();
        let (rd, wr) = std::io::pipe()?;
        let th = std::thread::spawn(move || write_tar(&src_info, &renames, wr));
        let mut body = Counting {
            inner: rd,
            n: count.clone(),
        };
        let r = c.call(
            "PUT",
            &format!("/containers/{ctr}/archive?{}", q.join("&")),
            ReqBody::Chunked("text/plain", &mut body),
        );
        drop(body);
        let _ = th.join();
        r
    };
    if !o.quiet {
        eprintln!(
            "Successfully copied {} to {ctr}:{}",
            human_size(count.load(std::sync::atomic::Ordering::Relaxed) as f64),
            dst_info.path
        );
    }
    res.map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_paths() {
        assert_eq!(clean("/a/b/../c/./"), "/a/c");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("/.."), "/");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base("d/."), ".");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("a"), ".");
        assert_eq!(split_dir_entry("/tmp/d1/."), ("/tmp/d1".into(), ".".into()));
        assert_eq!(split_dir_entry("/tmp/d1/"), ("/tmp".into(), "d1".into()));
        assert_eq!(preserve_trailing("/x/d", "d/."), "/x/d/.");
        assert_eq!(preserve_trailing("/x/d", "d/"), "/x/d/");
        assert_eq!(preserve_trailing("/", "/"), "/");
    }

    #[test]
    fn cp_args() {
        assert_eq!(split_cp_arg("c1:/tmp"), (Some("c1"), "/tmp"));
        assert_eq!(split_cp_arg("/a:b"), (None, "/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("c:"), (Some("c"), ""));
    }

    fn ci(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase: String::new(),
        }
    }

    #[test]
    fn copy_rules() {
        let f = ci("/h/f.txt", true, false);
        let d = ci("/h/d1", true, true);
        // into an existing directory: as is
        assert_eq!(
            prepare_copy(&f, &ci("/tmp", true, true)).unwrap(),
            ("/tmp".into(), None)
        );
        // onto an existing file: renamed
        assert_eq!(
            prepare_copy(&f, &ci("/tmp/x", true, false)).unwrap(),
            ("/tmp".into(), Some(("f.txt".into(), "x".into())))
        );
        assert_eq!(
            prepare_copy(&d, &ci("/tmp/x", true, false)),
            Err("cannot copy directory")
        );
        // a new directory name
        assert_eq!(
            prepare_copy(&d, &ci("/tmp/new", false, false)).unwrap(),
            ("/tmp".into(), Some(("d1".into(), "new".into())))
        );
        assert_eq!(
            prepare_copy(&f, &ci("/tmp/new/", false, false)),
            Err("no such directory")
        );
        // contents of a directory (`/.`) into a new one
        let dot = ci("/h/d1/.", true, true);
        assert_eq!(
            prepare_copy(&dot, &ci("/tmp/new", false, false)).unwrap(),
            ("/tmp".into(), Some((".".into(), "new".into())))
        );
        assert_eq!(rebase("./a", ".", "new"), "new/a");
        assert_eq!(rebase("a", ".", "new"), "new/a");
        assert_eq!(rebase(".hidden", ".", "new"), "new/.hidden");
        assert_eq!(rebase("d1/sub/", "d1", "x"), "x/sub/");
        assert_eq!(rebase("etc/x", "/", "y"), "yetc/x");
    }

    #[test]
    fn stat_header() {
        let s = parse_stat("eyJuYW1lIjoidG1wIiwic2l6ZSI6NDA5NiwibW9kZSI6MjE0NzQ4NDE0MSwibXRpbWUiOiIyMDI2LTExLTIyVDEwOjMyOjQwLjkyNDAyOTcyN1oiLCJsaW5rVGFyZ2V0IjoiIn0=").unwrap();
        assert_eq!(s.mode, 2147484141);
        assert!(s.mode & MODE_DIR != 0);
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
    }

    #[test]
    fn tar_roundtrip() {
        let t = std::env::temp_dir().join(format!("berth-cp-{}", std::process::id()));
        let src = t.join("src");
        std::fs::create_dir_all(src.join("d1/sub")).unwrap();
        std::fs::write(src.join("d1/a"), "a").unwrap();
        std::fs::write(src.join("d1/sub/b"), "bb").unwrap();
        std::os::unix::fs::symlink("a", src.join("d1/l")).unwrap();
        let info = CopyInfo {
            path: format!("{}/d1", src.display()),
            exists: true,
            is_dir: true,
            rebase: String::new(),
        };
        let mut buf = Vec::new();
        write_tar(&info, &[("d1".into(), "new".into())], &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["new/", "new/a", "new/l", "new/sub/", "new/sub/b"]);
        let out = t.join("out");
        std::fs::create_dir_all(&out).unwrap();
        untar(&buf[..], &out.to_string_lossy(), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("new/sub/b")).unwrap(),
            "bb"
        );
        assert_eq!(
            std::fs::read_link(out.join("new/l")).unwrap(),
            Path::new("a")
        );
        // a directory onto a file is refused
        let e = untar(
            &buf[..],
            &out.join("new/a").to_string_lossy(),
            &[("new".into(), ".".into())],
        );
        assert!(e.is_err());
        // nothing lands outside the destination
        let mut tb = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tb.append_link(&mut h, "l", "/").unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tb.append_data(&mut h, "l/evil", &b"x"[..]).unwrap();
        let evil = tb.into_inner().unwrap();
        let dest = t.join("safe");
        std::fs::create_dir_all(&dest).unwrap();
        let e = untar(&evil[..], &dest.to_string_lossy(), &[]).unwrap_err();
        assert!(e.to_string().contains("is outside of"), "{e}");
        assert!(!Path::new("/evil").exists());
        std::fs::remove_dir_all(&t).unwrap();
    }
}
