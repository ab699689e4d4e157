//! `cp`: `/containers/{id}/archive` HEAD (stat), GET (tar out), PUT (tar in). Paths resolve
//! inside the container's root like a chroot, by the kernel (`berth_util::inroot`,
//! `RESOLVE_IN_ROOT`): a symlink to `/etc` or `../../..`, even one swapped in by the container
//! while the copy runs, never reaches the host. A running container is reached through
//! `/proc/<pid>/root` (its volumes included); a stopped one through its mounted overlay, with
//! its volumes and binds mounted on it in a private mount namespace for the copy (as docker
//! shows them: a stopped container's `/data` volume is still the volume).

use crate::container_fs::ChannelWriter;
use crate::{Engine, Error, Result};
use berth_util::{inroot, mountns};
use bytes::Bytes;
use serde_json::{json, Value};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Go's `os.FileMode` of a file (what `X-Docker-Container-Path-Stat` carries).
pub fn go_file_mode(md: &std::fs::Metadata) -> u32 {
    let ft = md.file_type();
    let mut m = md.permissions().mode() & 0o777;
    let raw = md.mode();
    if raw & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if raw & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if raw & 0o1000 != 0 {
        m |= 1 << 20;
    }
    if ft.is_dir() {
        m |= 1 << 31;
    } else if ft.is_symlink() {
        m |= 1 << 27;
    } else if ft.is_fifo() {
        m |= 1 << 25;
    } else if ft.is_socket() {
        m |= 1 << 24;
    } else if ft.is_char_device() {
        m |= (1 << 26) | (1 << 21);
    } else if ft.is_block_device() {
        m |= 1 << 26;
    }
    m
}

/// A container's root, opened: every path below is resolved from it with `RESOLVE_IN_ROOT`.
pub(crate) struct Resolved {
    root: OwnedFd,
}

/// Where a copy works.
struct Place {
    c: Arc<crate::Container>,
    root: PathBuf,
    /// the container whose overlay we mounted for this, to unmount afterwards
    unmount: Option<String>,
    /// a stopped container's volumes and binds: (source, destination, rw), parents first
    binds: Vec<(PathBuf, String, bool)>,
}

/// `cp`'s reading of a path: a trailing `/` or `/.` follows the last link (docker's
/// `PreserveTrailingDotOrSeparator`), otherwise the last component is not followed.
fn follows_last(path: &str) -> bool {
    path == "." || path.ends_with('/') || path.ends_with("/.")
}

fn io_meta(fd: &OwnedFd) -> std::io::Result<std::fs::Metadata> {
    std::fs::File::from(fd.try_clone()?).metadata()
}

/// The target of the symlink opened (`O_PATH | O_NOFOLLOW`) as `fd`.
fn read_link_fd(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    let t = nix::fcntl::readlinkat(fd, "").map_err(std::io::Error::from)?;
    Ok(PathBuf::from(t))
}

impl Engine {
    fn place(&self, name_or_id: &str) -> Result<Place> {
        let c = self.get_container(name_or_id)?;
        let st = c.state();
        if st.status.is_running() && st.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", st.pid));
            return Ok(Place {
                c,
                root,
                unmount: None,
                binds: Vec::new(),
            });
        }
        let root = self.snaps.mount_rw(&c.id)?;
        let mut binds: Vec<(PathBuf, String, bool)> = c
            .record()
            .mounts
            .iter()
            .filter(|m| m.kind != "tmpfs" && !m.source.as_os_str().is_empty())
            .map(|m| (m.source.clone(), m.destination.clone(), m.rw))
            .collect();
        binds.sort_by_key(|(_, d, _)| Path::new(d).components().count());
        Ok(Place {
            unmount: Some(c.id.clone()),
            c,
            root,
            binds,
        })
    }

    /// Runs `f` on the opened root: right here, or (a stopped container with volumes) on a
    /// thread in a private mount namespace where they are mounted on the root.
    fn on_root<T: Send>(p: &Place, f: impl FnOnce(&Resolved) -> Result<T> + Send) -> Result<T> {
        let open = || -> Result<Resolved> {
            Ok(Resolved {
                root: inroot::open_root(&p.root)?,
            })
        };
        if p.binds.is_empty() {
            return f(&open()?);
        }
        mountns::in_private_mount_ns(|| {
            let r = open()?;
            for (src, dst, rw) in &p.binds {
                mountns::bind_in_root(r.root.as_fd(), src, Path::new(dst), *rw).map_err(|e| {
                    Error::Internal(format!("cannot mount {dst} for the copy: {e}"))
                })?;
            }
            f(&r)
        })?
    }

    fn release(&self, p: &Place) {
        if let Some(id) = &p.unmount {
            let running = self
                .get_container(id)
                .map(|c| c.state().status.is_running())
                .unwrap_or(false);
            if !running {
                let _ = self.snaps.unmount_rw(id);
            }
        }
    }

    fn not_found(c: &crate::Container, path: &str) -> Error {
        Error::NotFound(format!(
            "Could not find the file {path} in container {}",
            c.name()
        ))
    }

    fn lookup_err(c: &crate::Container, path: &str, e: std::io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Self::not_found(c, path),
            _ => Error::InvalidParameter(format!("{path}: {e}")),
        }
    }

    /// The entry at `path` in the root, `O_PATH` (a symlink itself unless `follows_last`).
    fn open_entry(c: &crate::Container, r: &Resolved, path: &str) -> Result<OwnedFd> {
        let flags = if follows_last(path) {
            libc::O_PATH
        } else {
            libc::O_PATH | libc::O_NOFOLLOW
        };
        let fd = inroot::open_in_root(r.root.as_fd(), Path::new(path), flags)
            .map_err(|e| Self::lookup_err(c, path, e))?;
        // `/etc/passwd/`: a trailing slash names a directory (dockerd: lstat's ENOTDIR, 500)
        if (path.ends_with('/') || path.ends_with("/.")) && !path.trim_end_matches('/').is_empty() {
            let dir = io_meta(&fd).map(|m| m.is_dir()).unwrap_or(false);
            if !dir {
                return Err(Error::Internal(format!("lstat {path}: not a directory")));
            }
        }
        Ok(fd)
    }

    fn stat_json(path: &str, fd: &OwnedFd) -> std::io::Result<Value> {
        let md = io_meta(fd)?;
        let link = if md.file_type().is_symlink() {
            read_link_fd(fd)
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        // Go's filepath.Base: `/tmp/d/.` is "." (its archive holds `./…`, the contents)
        let name = if path == "." || path.ends_with("/.") {
            ".".to_string()
        } else {
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into())
        };
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(md.mtime().max(0) as u64, md.mtime_nsec() as u32);
        Ok(json!({
            "name": name,
            "size": md.len(),
            "mode": go_file_mode(&md),
            "mtime": crate::timefmt::format_rfc3339_nanos(Some(mtime)),
            "linkTarget": link
        }))
    }

    /// `HEAD …/archive`: docker's path stat JSON.
    pub fn archive_stat(&self, name_or_id: &str, path: &str) -> Result<Value> {
        let p = self.place(name_or_id)?;
        let out = Self::on_root(&p, |r| {
            Self::open_entry(&p.c, r, path)
                .and_then(|fd| Self::stat_json(path, &fd).map_err(|_| Self::not_found(&p.c, path)))
        });
        self.release(&p);
        out
    }

    /// `GET …/archive`: a tar of the path (a directory with everything below it), streamed
    /// by a thread of its own once the path's stat is known.
    pub fn archive_get(
        self: &Arc<Self>,
        name_or_id: &str,
        path: &str,
    ) -> Result<(Value, mpsc::Receiver<Bytes>)> {
        let p = self.place(name_or_id)?;
        let (stat_tx, stat_rx) = std::sync::mpsc::sync_channel::<Result<Value>>(1);
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        let path = path.to_string();
        std::thread::spawn(move || {
            let on_err = stat_tx.clone();
            let done = Self::on_root(&p, |r| {
                let opened = Self::open_entry(&p.c, r, &path).and_then(|fd| {
                    let stat =
                        Self::stat_json(&path, &fd).map_err(|_| Self::not_found(&p.c, &path))?;
                    Ok((fd, stat))
                });
                let (top, stat) = match opened {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = stat_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let base = match stat["name"].as_str().unwrap_or(".") {
                    "/" | "." => "./".to_string(),
                    b => b.to_string(),
                };
                let _ = stat_tx.send(Ok(stat));
                let mut w = ChannelWriter {
                    tx,
                    buf: Vec::new(),
                };
                let res = (|| -> std::io::Result<()> {
                    let mut b = tar::Builder::new(&mut w);
                    append_tree_fd(&mut b, top, &base)?;
                    b.finish()
                })();
                let _ = std::io::Write::flush(&mut w);
                if let Err(e) = res {
                    tracing::warn!("archive get: {e}");
                }
                Ok(())
            });
            if let Err(e) = done {
                let _ = on_err.send(Err(e));
            }
            engine.release(&p);
        });
        let stat = stat_rx
            .recv()
            .map_err(|_| Error::Internal("the archive worker ended early".into()))??;
        Ok((stat, rx))
    }

    /// `PUT …/archive`: extracts a tar into the directory at `path` (links followed, inside
    /// the root). The tar is checked (no absolute or `..` entries) before anything is written;
    /// every entry is then created relative to the directory opened in the root.
    pub fn archive_put(&self, name_or_id: &str, path: &str, staged: &Path) -> Result<()> {
        berth_snapshot::validate_tar(std::io::BufReader::new(std::fs::File::open(staged)?))?;
        let p = self.place(name_or_id)?;
        let out = Self::on_root(&p, |r| {
            let c = &p.c;
            let fd = inroot::open_in_root(r.root.as_fd(), Path::new(path), libc::O_PATH)
                .map_err(|e| Self::lookup_err(c, path, e))?;
            if !io_meta(&fd)?.is_dir() {
                return Err(Error::InvalidParameter(
                    "extraction point is not a directory".into(),
                ));
            }
            let dir = inroot::reopen(&fd, libc::O_RDONLY | libc::O_DIRECTORY)?;
            berth_snapshot::extract_into_fd(
                dir,
                std::io::BufReader::new(std::fs::File::open(staged)?),
                self.snaps.id_maps(),
            )
            .map_err(|e| put_error(c, path, e))?;
            Ok(())
        });
        self.release(&p);
        out
    }
}

/// A write refused by the filesystem itself (a read-only mount such as `/sys` or a `:ro`
/// volume): the client's request, not a daemon fault. Docker answers a `:ro` volume with this
/// text (as a 500) and writes `/sys` into the rootfs directory hidden under the mount.
fn put_error(c: &crate::Container, path: &str, e: berth_snapshot::Error) -> Error {
    let errno = match &e {
        berth_snapshot::Error::Sys(n) => Some(*n as i32),
        berth_snapshot::Error::Io(io) => io.raw_os_error(),
        _ => None,
    };
    if errno != Some(libc::EROFS) {
        return e.into();
    }
    let rec = c.record();
    let clean = Path::new(path);
    let in_ro_volume = rec
        .mounts
        .iter()
        .any(|m| !m.rw && clean.starts_with(Path::new(&m.destination)));
    let ro_root = rec
        .host_config
        .extra
        .get("ReadonlyRootfs")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if in_ro_volume {
        Error::Forbidden("mounted volume is marked read-only".into())
    } else if ro_root {
        Error::Forbidden("container rootfs is marked read-only".into())
    } else {
        Error::Forbidden(format!(
            "cannot copy to {path} in container {}: read-only file system",
            c.name()
        ))
    }
}

/// One entry to archive: opened lazily from its parent directory (held open for reading).
struct Pending {
    parent: Option<std::rc::Rc<OwnedFd>>,
    name: std::ffi::OsString,
    tar_name: String,
}

/// Archives the tree at `top` (opened `O_PATH`) under `base` (`./` for "the contents",
/// docker's `dir/.`). Everything below is opened from its parent's descriptor with
/// `O_NOFOLLOW`: no path is resolved twice, no link is followed.
fn append_tree_fd<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    top: OwnedFd,
    base: &str,
) -> std::io::Result<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let root_dev = io_meta(&top)?.dev();
    let mut first = Some(top);
    let mut stack = vec![Pending {
        parent: None,
        name: std::ffi::OsString::new(),
        tar_name: base.to_string(),
    }];
    while let Some(p) = stack.pop() {
        let fd = match (first.take(), &p.parent) {
            (Some(fd), _) => fd,
            (None, Some(dir)) => match openat(
                dir.as_ref(),
                p.name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // removed while we walked: as if it never was
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            },
            (None, None) => continue,
        };
        let md = io_meta(&fd)?;
        let ft = md.file_type();
        if ft.is_socket() {
            continue;
        }
        let mut name = p.tar_name.clone();
        if md.is_dir() && !name.ends_with('/') {
            name.push('/');
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if md.is_dir() {
            emit(b, &mut h, &name, None, std::io::empty())?;
            let is_dev_dir = p.name.as_os_str() == "dev";
            if pseudo_mount(&fd, &md, root_dev, is_dev_dir) {
                continue;
            }
            let rd = inroot::reopen(&fd, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let mut kids: Vec<std::ffi::OsString> = Vec::new();
            {
                let mut d = nix::dir::Dir::from_fd(rd.try_clone()?)?;
                for e in d.iter() {
                    let e = e?;
                    let n = e.file_name().to_bytes();
                    if n != b"." && n != b".." {
                        kids.push(std::ffi::OsStr::from_bytes(n).to_os_string());
                    }
                }
            }
            kids.sort();
            let rd = std::rc::Rc::new(rd);
            for k in kids.into_iter().rev() {
                let tar_name = format!("{name}{}", k.to_string_lossy());
                stack.push(Pending {
                    parent: Some(rd.clone()),
                    name: k,
                    tar_name,
                });
            }
        } else if ft.is_symlink() {
            let target = read_link_fd(&fd)?;
            emit(b, &mut h, &name, Some(&target), std::io::empty())?;
        } else if ft.is_file() {
            let f = std::fs::File::from(inroot::reopen(&fd, libc::O_RDONLY)?);
            // exactly the size announced, however the file changes meanwhile
            let len = md.len();
            let data = std::io::Read::chain(std::io::Read::take(f, len), std::io::repeat(0));
            emit(b, &mut h, &name, None, std::io::Read::take(data, len))?;
        } else {
            emit(b, &mut h, &name, None, std::io::empty())?;
        }
    }
    Ok(())
}

/// Appends one header: names as docker writes them (`./x`, the tar crate's path setters would
/// drop the `./`), GNU long names when too long for the plain header.
fn emit<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    link: Option<&Path>,
    data: impl std::io::Read,
) -> std::io::Result<()> {
    let link_fits = link.is_none_or(|l| l.as_os_str().len() <= 100);
    if name.len() <= 100 && link_fits {
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.set_link_name(l)?;
        }
        h.set_cksum();
        return b.append(h, data);
    }
    let short = name.trim_start_matches("./");
    match link {
        Some(l) => b.append_link(h, short, l),
        None => b.append_data(h, short, data),
    }
}

/// A kernel filesystem mounted into a running container (/proc, /sys, /dev, …): docker
/// archives the container's own files, where these are empty mount points.
fn pseudo_mount(fd: &OwnedFd, md: &std::fs::Metadata, root_dev: u64, is_dev_dir: bool) -> bool {
    if md.dev() == root_dev {
        return false;
    }
    let Ok(st) = nix::sys::statfs::fstatfs(fd) else {
        return false;
    };
    const KERNEL_FS: [i64; 9] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x1cd1,      // devpts
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x1980_0202, // mqueue
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x0102_1994, // tmpfs: only /dev (a user's --tmpfs is kept below)
    ];
    #[allow(clippy::unnecessary_cast)] // the word's width differs between targets
    let t = st.filesystem_type().0 as i64;
    KERNEL_FS.contains(&t) && (t != 0x0102_1994 || is_dev_dir)
}

impl Engine {
    /// `PUT …/archive` from a stream: staged to a file first so it can be checked whole.
    pub fn archive_put_reader(
        &self,
        name_or_id: &str,
        path: &str,
        mut reader: impl std::io::Read,
    ) -> Result<()> {
        self.get_container(name_or_id)?;
        let tmp = self.staging_path("cp");
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::copy(&mut reader, &mut f)?;
            drop(f);
            self.archive_put(name_or_id, path, &tmp)
        })();
        let _ = std::fs::remove_file(&tmp);
        res
    }
}
