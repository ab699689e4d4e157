//! Layer tars: every layer the engine unpacks (load, commit, import) is unpacked while it
//! streams in, and its uncompressed tar is kept as the blob named by its diff ID, so that
//! `save` writes the very bytes the diff ID names.
//!
//! The stream is split over two threads: the producer (reading the request body, walking a
//! container's RW layer, or the archive reader) writes the tar into a staging file in
//! `image/tmp/` and hands the same chunks to an unpacker thread, which creates the files; one
//! of the two hashes them. Each byte is read once and hashed once.

pub(crate) mod tar_out;

use crate::{Engine, Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use tar_out::ChunkSink;

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

/// Chunks of a layer tar on their way to the unpacker thread, also written to the staging file.
pub(crate) struct LayerPipe {
    file: std::fs::File,
    /// the diff ID, when the producer's thread hashes
    hasher: Option<Sha256>,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    /// the unpacker stopped reading (it failed: its error is the one to report)
    closed: bool,
}

impl ChunkSink for LayerPipe {
    fn send(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        self.file.write_all(&chunk)?;
        if let Some(h) = &mut self.hasher {
            h.update(&chunk);
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).is_ok(),
            None => false,
        };
        if !sent {
            self.closed = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "layer unpacker stopped",
            ));
        }
        Ok(())
    }
}

impl LayerPipe {
    /// Sends a whole stream (a request body, decompressed) in chunks; returns its length.
    pub(crate) fn copy_from(&mut self, r: &mut (impl Read + ?Sized)) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let mut chunk = vec![0u8; tar_out::CHUNK];
            let mut filled = 0;
            while filled < chunk.len() {
                match r.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::InvalidParameter(format!("reading the layer: {e}")))
                    }
                }
            }
            if filled == 0 {
                return Ok(total);
            }
            chunk.truncate(filled);
            total += filled as u64;
            self.send(chunk)?;
        }
    }
}

/// Which of the two threads of [`Engine::unpack_streamed`] hashes the stream: the one with
/// less else to do (the unpacker when the producer reads files, as commit's walk does; the
/// producer when the unpacker creates many files, as for import and load).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hashing {
    Producer,
    Unpacker,
}

/// The unpacker's side of the pipe.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Engine {
    pub(crate) fn staging_path(&self, what: &str) -> PathBuf {
        self.images
            .root()
            .join("tmp")
            .join(format!("{what}-{}", berth_util::fs::unique_suffix()))
    }

    /// Unpacks the layer tar that `produce` writes into the pipe, as it is written: `produce`
    /// runs on this thread and the pipe stages its chunks, a second thread unpacks them; one
    /// of the two hashes them (`hashing`). Returns the unpacked (not yet published) layer and the staged copy of its tar,
    /// both named by the hash of exactly the bytes staged and unpacked. On any error nothing
    /// is left: neither the temp layer nor the staging file.
    pub(crate) fn unpack_streamed<'a>(
        &'a self,
        hashing: Hashing,
        produce: impl FnOnce(&mut LayerPipe) -> Result<()>,
    ) -> Result<(berth_snapshot::Unpacked<'a>, Staged)> {
        let t0 = std::time::Instant::now();
        let mut staged = Staged {
            path: self.staging_path("layer"),
            diff_id: String::new(),
        };
        let file = std::fs::File::create(&staged.path)?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
        let snaps = &self.snaps;
        let (produced, unpacked, closed) = std::thread::scope(|sc| {
            let worker = std::thread::Builder::new()
                .name("layer-unpack".into())
                .spawn_scoped(sc, move || {
                    let r = ChunkReader {
                        rx,
                        cur: Vec::new(),
                        pos: 0,
                    };
                    match hashing {
                        Hashing::Producer => snaps.unpack_layer_unhashed(r),
                        Hashing::Unpacker => snaps.unpack_layer(r),
                    }
                });
            let worker = match worker {
                Ok(w) => w,
                Err(e) => return (Err(Error::from(e)), None, false),
            };
            let mut pipe = LayerPipe {
                file,
                hasher: (hashing == Hashing::Producer).then(Sha256::new),
                tx: Some(tx),
                closed: false,
            };
            let produced = produce(&mut pipe);
            // the end of the stream for the unpacker
            pipe.tx = None;
            let unpacked = worker.join().unwrap_or_else(|_| {
                Err(berth_snapshot::Error::Io(std::io::Error::other(
                    "the layer unpacker panicked",
                )))
            });
            let unpacked = match pipe.hasher.take() {
                Some(h) => {
                    let diff_id = format!("sha256:{}", hex::encode(h.finalize()));
                    unpacked.and_then(|mut u| u.set_diff_id(&diff_id).map(|()| u))
                }
                None => unpacked,
            };
            (produced, Some(unpacked), pipe.closed)
        });
        let unpacked = match unpacked {
            Some(u) => u,
            None => {
                return Err(produced
                    .err()
                    .unwrap_or_else(|| Error::Internal("no unpacker".into())))
            }
        };
        let u = match (produced, unpacked) {
            (Ok(()), Ok(u)) => u,
            // the unpacker refused the stream: its reason, not the producer's broken pipe
            (Err(_), Err(e)) if closed => return Err(e.into()),
            (Err(e), _) => return Err(e),
            (Ok(()), Err(e)) => return Err(e.into()),
        };
        staged.diff_id = u.diff_id().to_string();
        tracing::debug!(
            diff_id = %staged.diff_id,
            bytes = u.tar_len(),
            ms = t0.elapsed().as_millis() as u64,
            "layer unpacked while streaming"
        );
        Ok((u, staged))
    }

    /// Publishes a layer unpacked by [`Engine::unpack_streamed`] on top of `parent` and keeps
    /// its tar as the diff-ID blob. Returns the layer's chain ID.
    pub(crate) fn publish_layer(
        &self,
        parent: Option<&str>,
        unpacked: berth_snapshot::Unpacked<'_>,
        staged: Staged,
    ) -> Result<String> {
        let info = unpacked.commit(parent)?;
        self.keep_layer_tar(staged)?;
        Ok(info.chain_id)
    }

    fn keep_layer_tar(&self, staged: Staged) -> Result<()> {
        let d = berth_image::Digest::parse(&staged.diff_id)?;
        if !self.images.has_blob(&d) {
            // not fsynced, like the unpacked layer itself: a kill -9 cannot tear it (the
            // rename is atomic); only a power loss could, as for any layer
            std::fs::rename(&staged.path, self.images.blob_path(&d))?;
        }
        Ok(())
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
            self.snaps.apply_layer(
                parent,
                &staged.diff_id,
                std::io::BufReader::with_capacity(tar_out::CHUNK, f),
            )?;
        }
        self.keep_layer_tar(staged)?;
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
