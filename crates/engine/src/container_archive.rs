//! `cp`: `/containers/{id}/archive` HEAD (stat), GET (tar out), PUT (tar in). Paths resolve
//! inside the container's root like a chroot: a symlink to `/etc` or `../../..` never reaches
//! the host. A running container is reached through `/proc/<pid>/root` (its volumes included);
//! a stopped one through its mounted overlay.

use crate::container_fs::ChannelWriter;
use crate::{Engine, Error, Result};
use bytes::Bytes;
use serde_json::{json, Value};
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

/// The path in the container as the host reaches it, the last component not followed.
pub(crate) struct Resolved {
    pub host: PathBuf,
    /// the root it lives under, to unmount afterwards if we mounted it
    unmount: Option<String>,
}

impl Engine {
    fn container_root(&self, c: &crate::Container) -> Result<(PathBuf, Option<String>)> {
        let st = c.state();
        if st.status.is_running() && st.pid > 0 {
            return Ok((PathBuf::from(format!("/proc/{}/root", st.pid)), None));
        }
        let merged = self.snaps.mount_rw(&c.id)?;
        Ok((merged, Some(c.id.clone())))
    }

    fn resolve(&self, name_or_id: &str, path: &str) -> Result<(Arc<crate::Container>, Resolved)> {
        let c = self.get_container(name_or_id)?;
        let (root, unmount) = self.container_root(&c)?;
        let p = Path::new(path);
        let host = match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => berth_runtime::mounts::resolve_in_root(&root, parent)
                .map_err(|e| Error::InvalidParameter(e.to_string()))?
                .join(name),
            _ => root.clone(),
        };
        Ok((c, Resolved { host, unmount }))
    }

    fn release(&self, r: &Resolved) {
        if let Some(id) = &r.unmount {
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

    /// `HEAD …/archive`: docker's path stat JSON.
    pub fn archive_stat(&self, name_or_id: &str, path: &str) -> Result<Value> {
        let (c, r) = self.resolve(name_or_id, path)?;
        let out = (|| {
            let md = r
                .host
                .symlink_metadata()
                .map_err(|_| Self::not_found(&c, path))?;
            let link = if md.file_type().is_symlink() {
                std::fs::read_link(&r.host)
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
        })();
        self.release(&r);
        out
    }

    /// `GET …/archive`: a tar of the path (a directory with everything below it).
    pub fn archive_get(
        self: &Arc<Self>,
        name_or_id: &str,
        path: &str,
    ) -> Result<(Value, mpsc::Receiver<Bytes>)> {
        let stat = self.archive_stat(name_or_id, path)?;
        let (_c, r) = self.resolve(name_or_id, path)?;
        let base = stat["name"].as_str().unwrap_or(".").to_string();
        let base = if base == "/" { ".".to_string() } else { base };
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::new(),
            };
            let res = (|| -> std::io::Result<()> {
                let mut b = tar::Builder::new(&mut w);
                b.follow_symlinks(false);
                b.mode(tar::HeaderMode::Complete);
                if base == "." {
                    append_contents(&mut b, &r.host)?;
                } else if r.host.symlink_metadata()?.is_dir() {
                    b.append_dir_all(&base, &r.host)?;
                } else {
                    b.append_path_with_name(&r.host, &base)?;
                }
                b.finish()
            })();
            let _ = std::io::Write::flush(&mut w);
            if let Err(e) = res {
                tracing::warn!("archive get: {e}");
            }
            engine.release(&r);
        });
        Ok((stat, rx))
    }

    /// `PUT …/archive`: extracts a tar into the directory at `path`. The tar is checked
    /// (no absolute or `..` entries) before anything is written.
    pub fn archive_put(&self, name_or_id: &str, path: &str, staged: &Path) -> Result<()> {
        berth_snapshot::validate_tar(std::io::BufReader::new(std::fs::File::open(staged)?))?;
        let (c, r) = self.resolve(name_or_id, path)?;
        let out = (|| {
            let host = if r
                .host
                .symlink_metadata()
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                // a symlink to a directory: follow it, still inside the root
                let root = self.container_root(&c)?.0;
                berth_runtime::mounts::resolve_in_root(&root, Path::new(path))
                    .map_err(|e| Error::InvalidParameter(e.to_string()))?
            } else {
                r.host.clone()
            };
            let md = host.metadata().map_err(|_| Self::not_found(&c, path))?;
            if !md.is_dir() {
                return Err(Error::InvalidParameter(
                    "extraction point is not a directory".into(),
                ));
            }
            berth_snapshot::extract_into_mapped(
                &host,
                std::io::BufReader::new(std::fs::File::open(staged)?),
                self.snaps.id_maps(),
            )?;
            Ok(())
        })();
        self.release(&r);
        out
    }
}

/// The archive of `dir/.`: entries named `./`, `./x`, … as docker's (the
/// tar crate's path setters would drop the leading `./`).
fn append_contents<W: std::io::Write>(b: &mut tar::Builder<W>, dir: &Path) -> std::io::Result<()> {
    let root_dev = dir.metadata()?.dev();
    let mut stack = vec![(dir.to_path_buf(), "./".to_string())];
    while let Some((p, name)) = stack.pop() {
        // the top is followed: a running container's root is /proc/<pid>/root
        let md = if name == "./" {
            p.metadata()?
        } else {
            p.symlink_metadata()?
        };
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if md.is_dir() && !pseudo_mount(&p, &md, root_dev) {
            let mut kids: Vec<_> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            kids.sort();
            for k in kids.into_iter().rev() {
                let n = format!("{}{}", name, k.to_string_lossy());
                let n = if p.join(&k).symlink_metadata()?.is_dir() {
                    format!("{n}/")
                } else {
                    n
                };
                stack.push((p.join(&k), n));
            }
        }
        if md.file_type().is_socket() {
            continue;
        }
        if name.len() > 100 {
            // too long for the plain header: a GNU long name (without `./`)
            b.append_path_with_name(&p, name.trim_start_matches("./"))?;
            continue;
        }
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if md.file_type().is_symlink() {
            h.set_link_name(std::fs::read_link(&p)?)?;
        }
        h.set_cksum();
        if md.is_file() {
            b.append(&h, std::fs::File::open(&p)?)?;
        } else {
            b.append(&h, std::io::empty())?;
        }
    }
    Ok(())
}

/// A kernel filesystem mounted into a running container (/proc, /sys, /dev, …): docker
/// archives the container's own files, where these are empty mount points.
fn pseudo_mount(p: &Path, md: &std::fs::Metadata, root_dev: u64) -> bool {
    if md.dev() == root_dev {
        return false;
    }
    let Ok(st) = nix::sys::statfs::statfs(p) else {
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
    KERNEL_FS.contains(&t) && (t != 0x0102_1994 || p.ends_with("dev"))
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
