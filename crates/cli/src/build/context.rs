//! The build context as the docker CLI's legacy builder prepares it: a
//! directory (its `.dockerignore` applied here, the Dockerfile and
//! `.dockerignore` always sent), a tar on stdin (`-`, passed through), or a
//! bare Dockerfile on stdin (a one-file tar). A Dockerfile from outside the
//! context (`-f ../x`, `-f -`) travels inside the tar under a random name
//! `.dockerfile.<hex>`, which the `.dockerignore` sent along lists (so COPY
//! never sees it). The tar is written as it is walked, never held whole.

use berth_util::dockerignore::{MatchInfo, Matcher};
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Where the context comes from, ready to be written as the request body.
pub enum Source {
    /// A local directory, filtered by `ignore`.
    Dir {
        root: PathBuf,
        ignore: Matcher,
        /// `.dockerignore`'s text, if the context has one
        dockerignore: Option<Vec<u8>>,
        /// the Dockerfile from outside the context: its random name and text
        extra: Option<(String, Vec<u8>)>,
    },
    /// A tar (gzip or not) on stdin: the bytes read to recognise it, then the rest.
    Stdin(Vec<u8>),
    /// `build - < Dockerfile`: the Dockerfile's text.
    Dockerfile(Vec<u8>),
}

/// A prepared context: the body and the `dockerfile` query value.
pub struct Plan {
    pub source: Source,
    /// `None`: not sent (a tar on stdin without `-f`)
    pub dockerfile: Option<String>,
}

/// Go's `filepath.EvalSymlinks` for an absolute path, with its `lstat <p>: …`
/// error for the first component that does not exist.
fn eval_symlinks(p: &Path) -> Result<PathBuf, String> {
    let mut prefix = PathBuf::from("/");
    for c in p.components() {
        if let Component::Normal(n) = c {
            let next = prefix.join(n);
            if let Err(e) = fs::symlink_metadata(&next) {
                return Err(format!("lstat {}: {}", next.display(), io_text(&e)));
            }
            prefix = next;
        }
    }
    fs::canonicalize(p).map_err(|e| format!("lstat {}: {}", p.display(), io_text(&e)))
}

/// Go's wording of an I/O error (`no such file or directory`).
pub fn io_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = nix::errno::Errno::from_raw(n).desc().to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// `filepath.Clean` of an absolute path (lexical: `.`, `..`, double slashes).
fn clean_abs(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn absolute(p: &str) -> Result<PathBuf, String> {
    let p = Path::new(p);
    if p.is_absolute() {
        return Ok(clean_abs(p));
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    Ok(clean_abs(&cwd.join(p)))
}

/// `filepath.Rel(base, target)` for two cleaned absolute paths.
fn rel_path(base: &Path, target: &Path) -> String {
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// 20 random hex digits (the name docker gives a Dockerfile from outside the context).
fn random_hex() -> String {
    let mut b = [0u8; 10];
    let ok = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ std::process::id() as u128;
        b.copy_from_slice(&t.to_le_bytes()[..10]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The context's `.dockerignore` patterns, with the CLI's additions: the
/// `.dockerignore` itself and the Dockerfile (unless it came from stdin) are
/// always sent.
pub fn read_ignore(
    root: &Path,
    dockerfile: &str,
    from_stdin: bool,
) -> Result<(Matcher, Option<Vec<u8>>), String> {
    let text = match fs::read(root.join(".dockerignore")) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("error reading .dockerignore: {}", io_text(&e))),
    };
    let Some(t) = &text else {
        return Ok((Matcher::default(), None));
    };
    let m = Matcher::parse(&String::from_utf8_lossy(t))
        .map_err(|e| format!("error checking context: {e}"))?;
    let mut patterns = m.patterns();
    if m.matches(".dockerignore") {
        patterns.push("!.dockerignore".into());
    }
    if !from_stdin && m.matches(dockerfile) {
        patterns.push(format!("!{dockerfile}"));
    }
    let m = Matcher::new(&patterns).map_err(|e| format!("error checking context: {e}"))?;
    Ok((m, text))
}

/// Prepares the context named on the command line (`PATH` or `-`) with the
/// `-f` value, reading stdin when one of them is `-`. Errors are docker's texts.
pub fn prepare(context: &str, file: Option<&str>, stdin: &mut dyn Read) -> Result<Plan, String> {
    let from_stdin = file == Some("-");
    if context == "-" {
        if from_stdin {
            return Err(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            );
        }
        let mut head = Vec::with_capacity(512);
        stdin.take(512).read_to_end(&mut head).map_err(|e| {
            format!("unable to prepare context: failed to peek context header from STDIN: {e}")
        })?;
        if is_archive(&head) {
            return Ok(Plan {
                source: Source::Stdin(head),
                dockerfile: file.filter(|f| !f.is_empty()).map(str::to_string),
            });
        }
        stdin
            .read_to_end(&mut head)
            .map_err(|e| format!("unable to prepare context: {e}"))?;
        return Ok(Plan {
            source: Source::Dockerfile(head),
            dockerfile: Some("Dockerfile".into()),
        });
    }
    if fs::metadata(context).is_err() {
        return Err(format!(
            "unable to prepare context: path {context:?} not found"
        ));
    }
    let root = absolute(context)
        .and_then(|p| eval_symlinks(&p))
        .map_err(|e| {
            format!("unable to prepare context: unable to get absolute context path: {e}")
        })?;
    if !root.is_dir() {
        return Err(format!(
            "unable to prepare context: context must be a directory: {}",
            root.display()
        ));
    }
    let (rel, extra) = if from_stdin {
        let mut text = Vec::new();
        stdin
            .read_to_end(&mut text)
            .map_err(|e| format!("unable to prepare context: {e}"))?;
        (None, Some(text))
    } else {
        let given = match file.filter(|f| !f.is_empty()) {
            Some(f) => absolute(f)?,
            None => {
                let d = root.join("Dockerfile");
                let alt = root.join("dockerfile");
                if fs::symlink_metadata(&d).is_err() && fs::symlink_metadata(&alt).is_ok() {
                    alt
                } else {
                    d
                }
            }
        };
        let real = eval_symlinks(&given).map_err(|e| {
            format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: {e}"
            )
        })?;
        let rel = rel_path(&root, &real);
        if rel.starts_with("../") {
            // outside the context: sent inside the tar under a random name
            let text = fs::read(file.unwrap_or_default()).map_err(|e| {
                format!(
                    "unable to open Dockerfile: open {}: {}",
                    file.unwrap_or_default(),
                    io_text(&e)
                )
            })?;
            (None, Some(text))
        } else {
            (Some(rel), None)
        }
    };
    let (ignore, dockerignore) = read_ignore(&root, rel.as_deref().unwrap_or("-"), rel.is_none())?;
    let (dockerfile, extra) = match (rel, extra) {
        (Some(rel), _) => (rel, None),
        (None, text) => {
            let name = format!(".dockerfile.{}", random_hex());
            (name.clone(), Some((name, text.unwrap_or_default())))
        }
    };
    Ok(Plan {
        source: Source::Dir {
            root,
            ignore,
            dockerignore,
            extra,
        },
        dockerfile: Some(dockerfile),
    })
}

/// docker's `IsArchive`: a compressed stream or a valid tar header.
pub fn is_archive(h: &[u8]) -> bool {
    let compressed = h.starts_with(&[0x1f, 0x8b, 0x08])
        || h.starts_with(b"BZh")
        || h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if compressed {
        return true;
    }
    if h.len() < 512 || h[..512].iter().all(|b| *b == 0) {
        return false;
    }
    let field = &h[148..156];
    let digits: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| ('0'..='7').contains(c))
        .collect();
    let Ok(want) = i64::from_str_radix(&digits, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, b) in h[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += b as i64;
        signed += b as i8 as i64;
    }
    want == unsigned || want == signed
}

// ---------------------------------------------------------------- the walk

/// One entry the walk sends: its path in the tar, where it is, what it is.
pub struct Entry {
    pub rel: String,
    pub path: PathBuf,
    pub meta: Metadata,
}

/// Walks `root` in Go's order (names sorted bytewise, each directory's
/// entry followed by its contents) and calls `visit` for each entry that the
/// `.dockerignore` lets through. An excluded directory is skipped whole
/// unless an exception pattern names something below it; then it is walked
/// (without an entry of its own) and only what the exceptions re-include is
/// sent.
pub fn walk(
    root: &Path,
    ignore: &Matcher,
    visit: &mut dyn FnMut(Entry) -> io::Result<()>,
) -> io::Result<()> {
    walk_dir(root, "", &MatchInfo::default(), ignore, visit)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    parent: &MatchInfo,
    ignore: &Matcher,
    visit: &mut dyn FnMut(Entry) -> io::Result<()>,
) -> io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| with_path(e, dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            // gone meanwhile
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(with_path(e, &path)),
        };
        let is_dir = meta.is_dir();
        // docker's walk: each pattern's result for the parent carries to its children
        let (excluded, info) = if ignore.is_empty() {
            (false, MatchInfo::default())
        } else {
            ignore.matches_in_walk(&rel, parent)
        };
        if excluded {
            if is_dir && ignore.has_exceptions() && ignore.is_excluded_dir_walk_needed(&rel) {
                walk_dir(&path, &format!("{rel}/"), &info, ignore, visit)?;
            }
            continue;
        }
        let sub = is_dir.then(|| (path.clone(), format!("{rel}/")));
        visit(Entry { rel, path, meta })?;
        if let Some((path, prefix)) = sub {
            walk_dir(&path, &prefix, &info, ignore, visit)?;
        }
    }
    Ok(())
}

fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "error checking context: can't stat '{}': {}",
            p.display(),
            io_text(&e)
        ),
    )
}

// ---------------------------------------------------------------- the tar

/// A tar header as docker's archive code writes it for a context: owner
/// 0:0, no user or group names, mtime in seconds, mode with its special bits.
fn header(meta: &Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn plain_header(name_mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(name_mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes the context of `source` as a tar (or passes stdin's through) to `w`.
pub fn write_tar(source: &Source, stdin: &mut dyn Read, w: &mut dyn Write) -> io::Result<()> {
    match source {
        Source::Stdin(head) => {
            w.write_all(head)?;
            io::copy(stdin, w)?;
            Ok(())
        }
        Source::Dockerfile(text) => {
            let mut b = tar::Builder::new(w);
            let mut h = plain_header(0o644, text.len() as u64, now_secs());
            h.set_uid(nix::unistd::geteuid().as_raw() as u64);
            h.set_gid(nix::unistd::getegid().as_raw() as u64);
            b.append_data(&mut h, "Dockerfile", &text[..])?;
            b.finish()
        }
        Source::Dir {
            root,
            ignore,
            dockerignore,
            extra,
        } => {
            let mut b = tar::Builder::new(w);
            // `.dockerignore` as sent when a Dockerfile from outside rides along
            let ignore_text = |orig: Option<&[u8]>, name: &str| -> Vec<u8> {
                let mut t = orig
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| b".dockerignore".to_vec());
                t.extend_from_slice(format!("\n{name}\n").as_bytes());
                t
            };
            let mut links: HashMap<(u64, u64), String> = HashMap::new();
            let mut sent_ignore = false;
            walk(root, ignore, &mut |e: Entry| {
                let ft = e.meta.file_type();
                if ft.is_dir() {
                    let mut h = header(&e.meta, tar::EntryType::Directory);
                    b.append_data(&mut h, format!("{}/", e.rel), io::empty())
                } else if ft.is_symlink() {
                    let target = fs::read_link(&e.path)?;
                    let mut h = header(&e.meta, tar::EntryType::Symlink);
                    b.append_link(&mut h, &e.rel, target)
                } else if ft.is_file() {
                    if e.meta.nlink() > 1 {
                        let key = (e.meta.dev(), e.meta.ino());
                        if let Some(first) = links.get(&key) {
                            let mut h = header(&e.meta, tar::EntryType::Link);
                            return b.append_link(&mut h, &e.rel, first);
                        }
                        links.insert(key, e.rel.clone());
                    }
                    if e.rel == ".dockerignore" {
                        if let Some((name, _)) = extra {
                            sent_ignore = true;
                            let t = ignore_text(dockerignore.as_deref(), name);
                            let mut h = header(&e.meta, tar::EntryType::Regular);
                            h.set_size(t.len() as u64);
                            return b.append_data(&mut h, &e.rel, &t[..]);
                        }
                    }
                    let f = fs::File::open(&e.path).map_err(|err| {
                        io::Error::new(
                            err.kind(),
                            format!(
                                "error checking context: no permission to read from '{}'",
                                e.path.display()
                            ),
                        )
                    })?;
                    let mut h = header(&e.meta, tar::EntryType::Regular);
                    h.set_size(e.meta.len());
                    // exactly the size announced, even if the file changes meanwhile
                    let mut r = f.chain(io::repeat(0)).take(e.meta.len());
                    b.append_data(&mut h, &e.rel, &mut r)
                } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                    let kind = if ft.is_fifo() {
                        tar::EntryType::Fifo
                    } else if ft.is_char_device() {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    };
                    let mut h = header(&e.meta, kind);
                    if !ft.is_fifo() {
                        let rdev = e.meta.rdev();
                        h.set_device_major(libc::major(rdev))?;
                        h.set_device_minor(libc::minor(rdev))?;
                    }
                    b.append_data(&mut h, &e.rel, io::empty())
                } else {
                    // sockets: docker leaves them out too
                    Ok(())
                }
            })?;
            if let Some((name, text)) = extra {
                let now = now_secs();
                let mut h = plain_header(0o600, text.len() as u64, now);
                b.append_data(&mut h, name, &text[..])?;
                if !sent_ignore {
                    let t = ignore_text(None, name);
                    let mut h = plain_header(0o600, t.len() as u64, 0);
                    b.append_data(&mut h, ".dockerignore", &t[..])?;
                }
            }
            b.finish()
        }
    }
}
