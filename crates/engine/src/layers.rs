//! Layer tars: every layer the engine unpacks (load, commit, import) is first staged
//! uncompressed in the image store's `tmp/` while it is hashed, unpacked from there, then kept
//! as the blob named by its diff ID, so that `save` writes the very bytes the diff ID names.

use crate::{Engine, Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

/// A writer that hashes what passes through it.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashingWriter<W> {
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

/// A staged, uncompressed layer tar.
pub(crate) struct Staged {
    pub path: PathBuf,
    pub diff_id: String,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Engine {
    pub(crate) fn staging_path(&self, what: &str) -> PathBuf {
        self.images
            .root()
            .join("tmp")
            .join(format!("{what}-{}", berth_util::fs::unique_suffix()))
    }

    /// Decompresses (if gzip) and hashes `reader` into a staging file.
    pub(crate) fn stage_layer(&self, reader: impl Read) -> Result<Staged> {
        let path = self.staging_path("layer");
        let res = (|| -> Result<String> {
            let mut plain = berth_util::io::maybe_gunzip(reader)?;
            let file = std::fs::File::create(&path)?;
            let mut w = HashingWriter {
                inner: std::io::BufWriter::new(file),
                hasher: Sha256::new(),
            };
            std::io::copy(&mut plain, &mut w)?;
            w.flush()?;
            Ok(w.digest())
        })();
        match res {
            Ok(diff_id) => Ok(Staged { path, diff_id }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Stages a layer that already is a file (from an unpacked archive): an uncompressed tar is
    /// hashed where it is and moved, not copied; a gzip one is decompressed into staging.
    pub(crate) fn stage_layer_file(&self, path: &std::path::Path) -> Result<Staged> {
        let mut f = std::fs::File::open(path)?;
        let mut magic = [0u8; 2];
        let n = f.read(&mut magic)?;
        drop(f);
        if n == 2 && magic == [0x1f, 0x8b] {
            return self.stage_layer(std::io::BufReader::new(std::fs::File::open(path)?));
        }
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let dst = self.staging_path("layer");
        std::fs::rename(path, &dst)?;
        Ok(Staged {
            path: dst,
            diff_id: format!("sha256:{}", hex::encode(hasher.finalize())),
        })
    }

    /// Unpacks a staged layer on top of `parent` and keeps its tar as the diff-ID blob.
    /// Returns the layer's chain ID.
    pub(crate) fn commit_layer(&self, parent: Option<&str>, staged: Staged) -> Result<String> {
        let chain = berth_snapshot::Snapshotter::chain_id(parent, &staged.diff_id);
        if !self.snaps.has_layer(&chain) {
            let f = std::fs::File::open(&staged.path)?;
            self.snaps
                .apply_layer(parent, &staged.diff_id, std::io::BufReader::new(f))?;
        }
        let d = berth_image::Digest::parse(&staged.diff_id)?;
        if !self.images.has_blob(&d) {
            // not fsynced, like the unpacked layer itself: a kill -9 cannot tear it (the
            // rename is atomic); only a power loss could, as for any layer
            std::fs::rename(&staged.path, self.images.blob_path(&d))?;
        }
        Ok(chain)
    }

    /// The path of a layer's tar in the store, by diff ID.
    pub(crate) fn layer_tar(&self, diff_id: &str) -> Result<PathBuf> {
        let d = berth_image::Digest::parse(diff_id)?;
        let p = self.images.blob_path(&d);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Internal(format!(
                "the tar of layer {diff_id} is not in the store"
            )))
        }
    }
}
