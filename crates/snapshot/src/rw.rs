//! Container RW layers: `<key>/{diff,work,merged}` and the overlay mount.

use crate::util::{self, mount_points};
use crate::{layer, Error, Result, RwPaths, Snapshotter};
use nix::errno::Errno;
use nix::mount::{mount as sys_mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel copies mount options into one page.
const MAX_OPTIONS: usize = 4096;

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key != "l"
        && !key.starts_with("tmp-")
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey(key.to_string()))
    }
}

/// Chain IDs from `top` down to the bottom layer.
fn chain(s: &Snapshotter, top: &str) -> Result<Vec<String>> {
    let mut out = vec![top.to_string()];
    let mut cur = top.to_string();
    while let Some(p) = layer::parent_of(s, &cur)? {
        if out.len() > 1000 {
            return Err(Error::NotFound(format!(
                "layer chain of {top} is broken (cycle)"
            )));
        }
        out.push(p.clone());
        cur = p;
    }
    Ok(out)
}

pub(crate) fn create(s: &Snapshotter, key: &str, parent: Option<&str>) -> Result<RwPaths> {
    check_key(key)?;
    let lowers = match parent {
        Some(p) => {
            if !s.has_layer(p) {
                return Err(Error::NotFound(p.to_string()));
            }
            chain(s, p)?
        }
        None => Vec::new(),
    };
    let dst = s.root.join(key);
    if dst.exists() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("RW layer {key} already exists"),
        )));
    }
    let tmp = s.root.join(format!("tmp-{}", util::unique_suffix()));
    let res = (|| -> Result<()> {
        fs::create_dir(&tmp)?;
        for d in ["diff", "work", "merged"] {
            fs::create_dir(tmp.join(d))?;
        }
        if lowers.is_empty() {
            fs::create_dir(tmp.join("empty"))?;
        }
        if let Some(ids) = &s.ids {
            // the merged root takes the upper dir's owner: the container's root owns `/`
            let (uid, gid) = ids.root();
            std::os::unix::fs::chown(tmp.join("diff"), Some(uid), Some(gid))?;
            if lowers.is_empty() {
                std::os::unix::fs::chown(tmp.join("empty"), Some(uid), Some(gid))?;
            }
        }
        let mut text = lowers.join("\n");
        text.push('\n');
        util::write_synced(&tmp.join("lower"), text.as_bytes())?;
        util::sync_dir(&tmp)?;
        fs::rename(&tmp, &dst)?;
        util::sync_dir(&s.root)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    tracing::info!(key, layers = lowers.len(), "created RW layer");
    paths(s, key)
}

pub(crate) fn paths(s: &Snapshotter, key: &str) -> Result<RwPaths> {
    check_key(key)?;
    let dir = s.root.join(key);
    let lower = match fs::read_to_string(dir.join("lower")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(key.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let mut lowers = Vec::new();
    for id in lower.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let hex = util::digest_hex(id)
            .ok_or_else(|| Error::NotFound(format!("bad lower {id:?} in RW layer {key}")))?;
        lowers.push(s.root.join(hex).join("diff"));
    }
    if lowers.is_empty() {
        lowers.push(dir.join("empty"));
    }
    Ok(RwPaths {
        upper: dir.join("diff"),
        work: dir.join("work"),
        merged: dir.join("merged"),
        lowers,
    })
}

fn is_mounted(p: &Path) -> Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == p))
}

/// The path to give overlay for a lower dir: its short link `l/<id>` when it is a layer's
/// `diff` dir (falls back to the full path if the link cannot be made).
fn mount_lower(s: &Snapshotter, lower: &Path) -> PathBuf {
    let hex = lower
        .strip_prefix(&s.root)
        .ok()
        .and_then(|rel| rel.parent())
        .and_then(|p| p.to_str())
        .filter(|h| util::digest_hex(&format!("sha256:{h}")).is_some());
    match hex.map(|h| layer::ensure_link(s, h)) {
        Some(Ok(link)) => link,
        _ => lower.to_path_buf(),
    }
}

/// The overlay mount options; errors if too long for the kernel or unparsable.
pub(crate) fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    let mut all: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    all.push(upper);
    all.push(work);
    for path in &all {
        let s = path.to_string_lossy();
        if s.contains(':') || s.contains(',') || s.contains('\\') {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("overlay path {s:?} contains ':', ',' or '\\'"),
            )));
        }
    }
    let lower_strs: Vec<String> = lowers
        .iter()
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower_strs.join(":"),
        upper.display(),
        work.display()
    );
    if opts.len() >= MAX_OPTIONS {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options for {} layers are {} bytes, over the kernel's {MAX_OPTIONS}",
                lowers.len(),
                opts.len()
            ),
        )));
    }
    Ok(opts)
}

pub(crate) fn mount(s: &Snapshotter, key: &str) -> Result<PathBuf> {
    let p = paths(s, key)?;
    if is_mounted(&p.merged)? {
        return Ok(p.merged);
    }
    let lowers: Vec<PathBuf> = p.lowers.iter().map(|l| mount_lower(s, l)).collect();
    let opts = overlay_options(&lowers, &p.upper, &p.work)?;
    match sys_mount(
        Some("overlay"),
        &p.merged,
        Some("overlay"),
        // the host's view of a rootfs: a set-uid binary the container made must not run as
        // root for a host user (the container's runtime re-enables suid in its own view)
        MsFlags::MS_NOSUID,
        Some(opts.as_str()),
    ) {
        Ok(()) => {}
        Err(Errno::EBUSY) if is_mounted(&p.merged)? => {}
        Err(e) => return Err(e.into()),
    }
    tracing::debug!(key, merged = %p.merged.display(), "mounted RW layer");
    Ok(p.merged)
}

/// Detaches every mount at or below `dir` (deepest first).
fn unmount_below(dir: &Path) -> Result<()> {
    for _ in 0..16 {
        let mut mounted: Vec<PathBuf> = mount_points()?
            .into_iter()
            .filter(|m| m.starts_with(dir))
            .collect();
        if mounted.is_empty() {
            return Ok(());
        }
        mounted.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in mounted {
            match umount2(&m, MntFlags::MNT_DETACH) {
                Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(Error::Io(io::Error::other(format!(
        "{} is still mounted",
        dir.display()
    ))))
}

pub(crate) fn unmount(s: &Snapshotter, key: &str) -> Result<()> {
    check_key(key)?;
    let merged = s.root.join(key).join("merged");
    unmount_below(&merged)?;
    tracing::debug!(key, "unmounted RW layer");
    Ok(())
}

pub(crate) fn remove(s: &Snapshotter, key: &str) -> Result<()> {
    check_key(key)?;
    let dir = s.root.join(key);
    if !dir.exists() {
        return Ok(());
    }
    // never delete through a mount (the rootfs may have volumes bound into it)
    unmount_below(&dir)?;
    fs::remove_dir_all(&dir)?;
    util::sync_dir(&s.root)?;
    tracing::info!(key, "removed RW layer");
    Ok(())
}
