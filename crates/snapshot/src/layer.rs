//! Image layers: `apply_layer` and layer metadata.

use crate::tar_safe::Extractor;
use crate::util::{self, HashingReader};
use crate::{Error, LayerInfo, Result, Snapshotter};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use sha2::Digest as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

fn read_meta(dir: &Path, name: &str) -> Result<String> {
    Ok(fs::read_to_string(dir.join(name))?.trim().to_string())
}

pub(crate) fn info(s: &Snapshotter, chain_id: &str) -> Result<LayerInfo> {
    let hex = s.layer_hex(chain_id)?;
    let dir = s.root.join(hex);
    Ok(LayerInfo {
        chain_id: chain_id.to_string(),
        diff_id: read_meta(&dir, "diff_id")?,
        size: read_meta(&dir, "size")?.parse().unwrap_or(0),
    })
}

/// The parent chain ID of a stored layer (None for a bottom layer).
pub(crate) fn parent_of(s: &Snapshotter, chain_id: &str) -> Result<Option<String>> {
    let hex = s.layer_hex(chain_id)?;
    let p = read_meta(&s.root.join(hex), "parent")?;
    Ok((!p.is_empty()).then_some(p))
}

/// A layer unpacked into a temp dir of the store, hashed, not yet published. Dropping it
/// removes the temp dir.
pub struct Unpacked<'a> {
    s: &'a Snapshotter,
    tmp: Option<PathBuf>,
    diff_id: String,
    size: u64,
    tar_len: u64,
}

impl Unpacked<'_> {
    /// `sha256:…` of the uncompressed tar stream, padding after the end marker included.
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }

    /// Bytes of the uncompressed tar stream.
    pub fn tar_len(&self) -> u64 {
        self.tar_len
    }

    /// Names the layer by the diff ID its producer computed (after
    /// [`Snapshotter::unpack_layer_unhashed`](crate::Snapshotter::unpack_layer_unhashed)).
    pub fn set_diff_id(&mut self, diff_id: &str) -> Result<()> {
        if util::digest_hex(diff_id).is_none() {
            return Err(Error::InvalidTar(format!("invalid diff ID {diff_id:?}")));
        }
        self.diff_id = diff_id.to_string();
        Ok(())
    }

    /// Publishes the layer on top of `parent` under its chain ID. If that layer is already
    /// stored (another unpack of the same content won), this copy is dropped.
    pub fn commit(mut self, parent: Option<&str>) -> Result<LayerInfo> {
        if util::digest_hex(&self.diff_id).is_none() {
            return Err(Error::InvalidTar("the layer has no diff ID".into()));
        }
        let Some(tmp) = self.tmp.take() else {
            return Err(Error::InvalidTar("the layer was committed already".into()));
        };
        let res = publish(self.s, &tmp, parent, &self.diff_id, self.size);
        if res.is_err() || tmp.exists() {
            remove_tmp(&tmp);
        }
        res
    }
}

impl Drop for Unpacked<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            remove_tmp(&tmp);
        }
    }
}

fn remove_tmp(tmp: &Path) {
    if let Err(e) = fs::remove_dir_all(tmp) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %tmp.display(), error = %e, "could not remove temp layer");
        }
    }
}

/// Inodes in one ext4 flex group with mke2fs's defaults for a disk this size (8192 inodes per
/// block group, 16 groups per flex group). Only a heuristic: a wrong guess costs speed, never
/// correctness.
const INODES_PER_FLEX: u64 = 8192 * 16;

/// How long ext4 (without a journal) treats a freed inode as recently deleted: 60 s, plus
/// 300 s while its inode table block is dirty.
const RECENTLY_DELETED: std::time::Duration = std::time::Duration::from_secs(360);

/// A file creation slower than this means the temp dir landed in a bad place: measured here,
/// 14-31 µs in a fresh place, 260-420 µs (up to ≈1 ms) past thousands of recently deleted
/// inodes. A false alarm costs one more mkdir.
const SLOW_CREATE: std::time::Duration = std::time::Duration::from_micros(120);

/// Records that the tree at `dir` is about to be removed (its inodes become "recently
/// deleted" in their flex group).
pub(crate) fn note_removal(s: &Snapshotter, dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(md) = fs::symlink_metadata(dir) {
        let now = std::time::Instant::now();
        let mut r = s.removed.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(t, _)| now.duration_since(*t) < RECENTLY_DELETED);
        r.push((now, md.ino() / INODES_PER_FLEX));
        tracing::debug!(path = %dir.display(), flex_group = md.ino() / INODES_PER_FLEX, "removing a layer");
    }
}

/// Makes the temp dir of a layer to unpack. With the top-directory flag on the store, ext4
/// puts it in the flex group with the fewest directories, which is often the one a layer
/// was just removed from; there every new inode would scan past the recently deleted ones
/// (about 1 ms per file). So a dir landing where this process removed a layer in the last
/// minutes, or where making one file is slow, is kept aside (so that ext4 counts it there)
/// and another one is made, a few times.
fn fresh_tmp_dir(s: &Snapshotter) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let recent: Vec<u64> = {
        let now = std::time::Instant::now();
        let r = s.removed.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .filter(|(t, _)| now.duration_since(*t) < RECENTLY_DELETED)
            .map(|(_, g)| *g)
            .collect()
    };
    let mut rejected = Vec::new();
    let chosen = loop {
        let tmp = s.root.join(format!("tmp-{}", util::unique_suffix()));
        fs::create_dir(&tmp)?;
        let group = fs::metadata(&tmp)?.ino() / INODES_PER_FLEX;
        // others (builds, another engine) remove files too: one file made there tells
        let probe = tmp.join(".probe");
        let t0 = std::time::Instant::now();
        fs::File::create(&probe)?;
        let cost = t0.elapsed();
        fs::remove_file(&probe)?;
        let bad = recent.contains(&group) || cost > SLOW_CREATE;
        if !bad || rejected.len() >= 8 {
            tracing::debug!(
                flex_group = group,
                probe_us = cost.as_micros() as u64,
                "temp layer dir"
            );
            break tmp;
        }
        rejected.push(tmp);
    };
    if !rejected.is_empty() {
        tracing::debug!(
            tries = rejected.len() + 1,
            "temp layer dir moved away from recently removed layers"
        );
    }
    for r in rejected {
        let _ = fs::remove_dir(r);
    }
    Ok(chosen)
}

/// Unpacks a layer tar (gzip detected) into a fresh temp dir, hashing the uncompressed stream
/// unless `hash` is false (the producer hashes it, and names the layer with `set_diff_id`).
pub(crate) fn unpack(s: &Snapshotter, reader: impl Read, hash: bool) -> Result<Unpacked<'_>> {
    let tmp = fresh_tmp_dir(s)?;
    let mut out = Unpacked {
        s,
        tmp: Some(tmp.clone()),
        diff_id: String::new(),
        size: 0,
        tar_len: 0,
    };
    let diff = tmp.join("diff");
    fs::create_dir(&diff)?;
    if let Some(ids) = &s.ids {
        let (uid, gid) = ids.root();
        std::os::unix::fs::chown(&diff, Some(uid), Some(gid))?;
    }
    let fd = open(
        &diff,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut hr = HashingReader::new(util::maybe_gunzip(reader)?, hash);
    let mut ex = Extractor::new(fd);
    ex.ids = s.ids.clone();
    ex.run(&mut hr)?;
    // the hash must cover the whole stream, including padding after the end marker
    io::copy(&mut hr, &mut io::sink())
        .map_err(|e| Error::InvalidTar(format!("reading layer: {e}")))?;
    out.tar_len = hr.len();
    if hash {
        out.diff_id = hr.finish();
    }
    out.size = ex.size;
    Ok(out)
}

/// Writes the metadata of an unpacked layer and renames its temp dir into place.
fn publish(
    s: &Snapshotter,
    tmp: &Path,
    parent: Option<&str>,
    diff_id: &str,
    size: u64,
) -> Result<LayerInfo> {
    if let Some(p) = parent {
        if !s.has_layer(p) {
            return Err(Error::NotFound(p.to_string()));
        }
    }
    let chain_id = Snapshotter::chain_id(parent, diff_id);
    if s.has_layer(&chain_id) {
        tracing::debug!(chain_id = %chain_id, "layer already present");
        return info(s, &chain_id);
    }
    let hex = util::digest_hex(&chain_id)
        .ok_or_else(|| Error::InvalidTar(format!("bad chain ID {chain_id}")))?
        .to_string();
    util::write_synced(&tmp.join("diff_id"), diff_id.as_bytes())?;
    util::write_synced(&tmp.join("parent"), parent.unwrap_or("").as_bytes())?;
    util::write_synced(&tmp.join("size"), size.to_string().as_bytes())?;
    util::sync_dir(tmp)?;
    let dst = s.root.join(&hex);
    if let Err(e) = fs::rename(tmp, &dst) {
        if s.has_layer(&chain_id) {
            // another apply of the same layer won the race
            return info(s, &chain_id);
        }
        return Err(e.into());
    }
    util::sync_dir(&s.root)?;
    if let Err(e) = ensure_link(s, &hex) {
        // not fatal: mounts fall back to the full path
        tracing::warn!(chain_id = %chain_id, error = %e, "could not create short link");
    }
    tracing::info!(chain_id = %chain_id, diff_id, size, "layer applied");
    Ok(LayerInfo {
        chain_id,
        diff_id: diff_id.to_string(),
        size,
    })
}

pub(crate) fn apply(
    s: &Snapshotter,
    parent: Option<&str>,
    expected_diff_id: &str,
    reader: impl Read,
) -> Result<LayerInfo> {
    if util::digest_hex(expected_diff_id).is_none() {
        return Err(Error::InvalidTar(format!(
            "invalid diff ID {expected_diff_id:?}"
        )));
    }
    if let Some(p) = parent {
        if !s.has_layer(p) {
            return Err(Error::NotFound(p.to_string()));
        }
    }
    let chain_id = Snapshotter::chain_id(parent, expected_diff_id);
    if s.has_layer(&chain_id) {
        tracing::debug!(chain_id = %chain_id, "layer already present");
        return info(s, &chain_id);
    }
    let res = unpack(s, reader, true).and_then(|u| {
        if u.diff_id() != expected_diff_id {
            return Err(Error::DigestMismatch {
                expected: expected_diff_id.to_string(),
                actual: u.diff_id().to_string(),
            });
        }
        u.commit(parent)
    });
    if let Err(e) = &res {
        tracing::warn!(diff_id = expected_diff_id, error = %e, "layer rejected");
    }
    res
}

const LINK_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The name of a layer's short link `l/<id>` (26 characters, derived from the chain hex).
/// Overlay's mount options must fit in one page: `l/<id>` is about half as long as
/// `<chain-hex>/diff`, which doubles the number of layers an image can have.
pub(crate) fn short_id(chain_hex: &str) -> String {
    let h = sha2::Sha256::digest(chain_hex.as_bytes());
    h.iter()
        .take(26)
        .map(|b| LINK_ALPHABET[(*b & 31) as usize] as char)
        .collect()
}

/// Creates `l/<id> -> ../<hex>/diff` if missing; returns the link path.
pub(crate) fn ensure_link(s: &Snapshotter, hex: &str) -> io::Result<std::path::PathBuf> {
    let ldir = s.root.join("l");
    fs::create_dir_all(&ldir)?;
    let link = ldir.join(short_id(hex));
    let target = format!("../{hex}/diff");
    match fs::read_link(&link) {
        Ok(t) if t == Path::new(&target) => return Ok(link),
        Ok(_) => fs::remove_file(&link)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match std::os::unix::fs::symlink(&target, &link) {
        Ok(()) => Ok(link),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(link),
        Err(e) => Err(e),
    }
}
