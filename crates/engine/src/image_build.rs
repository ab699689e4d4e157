//! What the builder (`berth-build`) needs of the engine beyond create/start/wait/remove:
//! a container's RW layer published as a layer (the half of `commit` that writes the layer),
//! a layer from a tar producer (COPY/ADD), an image config stored with its parent recorded
//! (docker's intermediate images), and an image's rootfs mounted for reading.

use crate::layers::tar_out::{ChunkSink, CHUNK};
use crate::layers::{Hashing, LayerPipe};
use crate::{Engine, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The diff ID of an empty layer tar (1024 zero bytes): docker marks such a step
/// `empty_layer` and adds no layer.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// A `Write` that cuts what it is given into chunks for the layer pipe.
struct PipeWriter<'a> {
    pipe: &'a mut LayerPipe,
    buf: Vec<u8>,
}

impl Write for PipeWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.pipe.send(full)
    }
}

/// An image's root filesystem mounted (overlay, no upper changes kept) for reading: COPY
/// --from sources, whether a COPY destination or WORKDIR exists. Unmounted when dropped.
pub struct MountedImage {
    engine: Arc<Engine>,
    key: Option<String>,
    path: PathBuf,
}

impl MountedImage {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        match &self.key {
            Some(k) => {
                let _ = self.engine.snaps.unmount_rw(k);
                let _ = self.engine.snaps.remove_rw(k);
            }
            None => {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }
}

const TMPFS_MAGIC: i64 = 0x0102_1994;

fn is_tmpfs(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0 == TMPFS_MAGIC)
        .unwrap_or(false)
}

impl Engine {
    /// Where build contexts are unpacked: `<exec-root>/build`, in memory. When the exec
    /// root is not a tmpfs (it is `/run` by default, which is), a private tmpfs is mounted
    /// there: a context of many small files costs a file creation each, ~100 times more on
    /// a disk's journal than in memory, and it is removed again after the build. Unmounted
    /// by [`Engine::shutdown`].
    pub fn build_scratch_dir(&self) -> Result<PathBuf> {
        let dir = self.cfg.exec_root.join("build");
        std::fs::create_dir_all(&dir)?;
        if !is_tmpfs(&dir) {
            let r = nix::mount::mount(
                Some("tmpfs"),
                &dir,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                Some("mode=0700"),
            );
            if let Err(e) = r {
                tracing::warn!(
                    "build contexts stay on disk: mounting a tmpfs on {}: {e}",
                    dir.display()
                );
            }
        }
        Ok(dir)
    }

    /// Unmounts the build contexts' tmpfs, if this daemon mounted one.
    pub(crate) fn unmount_build_scratch(&self) {
        let dir = self.cfg.exec_root.join("build");
        if is_tmpfs(&dir) && !is_tmpfs(&self.cfg.exec_root) {
            let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// The image's layer chain top (`None` for an image without layers).
    fn top_chain(&self, image_id: &str) -> Result<Option<String>> {
        let img = self.images.get(image_id)?;
        Ok(Self::chain_ids(&img).last().cloned())
    }

    /// Publishes the container's RW layer on top of its image's layers (the layer half of
    /// `commit`); returns the diff ID. The container should not be running.
    pub fn build_commit_layer(&self, container: &str) -> Result<String> {
        let c = self.get_container(container)?;
        let rec = c.record();
        let img = self.images.get(&rec.image_id)?;
        self.commit_rw_layer(&c.id, &img)
    }

    /// A layer from the plain tar that `produce` writes, unpacked as it is written, on top of
    /// `parent_image`'s layers; returns the diff ID.
    pub fn build_add_layer(
        &self,
        parent_image: Option<&str>,
        produce: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<String> {
        let parent = match parent_image {
            Some(p) => self.top_chain(p)?,
            None => None,
        };
        let (unpacked, staged) = self.unpack_streamed(Hashing::Producer, |pipe| {
            let mut w = PipeWriter {
                pipe,
                buf: Vec::with_capacity(CHUNK),
            };
            produce(&mut w).map_err(|e| Error::InvalidParameter(e.to_string()))?;
            w.flush()?;
            Ok(())
        })?;
        let diff_id = staged.diff_id.clone();
        self.publish_layer(parent.as_deref(), unpacked, staged)?;
        Ok(diff_id)
    }

    /// Stores an image config written by the builder, recording `parent` (docker's
    /// intermediate-image chain: `images -a`, the parent rmi removes with it). `durable`:
    /// fsync the config (the final image of a build); intermediate images are written
    /// atomically but not synced (like the layers under them). Returns `sha256:…`.
    pub fn build_put_image(
        &self,
        config: &[u8],
        parent: Option<&str>,
        durable: bool,
    ) -> Result<String> {
        let img = self.images.add_image_opts(config, parent, durable)?;
        Ok(img.id.as_str().to_string())
    }

    /// Mounts `image`'s rootfs (an empty directory for `None`: scratch) for reading.
    pub fn build_mount(self: &Arc<Self>, image: Option<&str>) -> Result<MountedImage> {
        let suffix = berth_util::fs::unique_suffix();
        let Some(image) = image else {
            let path = self.cfg.exec_root.join(format!("build-scratch-{suffix}"));
            std::fs::create_dir_all(&path)?;
            return Ok(MountedImage {
                engine: self.clone(),
                key: None,
                path,
            });
        };
        let parent = self.top_chain(image)?;
        let key = format!("build-mount-{suffix}");
        self.snaps.create_rw(&key, parent.as_deref())?;
        let mut mounted = MountedImage {
            engine: self.clone(),
            key: Some(key.clone()),
            path: PathBuf::new(),
        };
        mounted.path = self.snaps.mount_rw(&key)?;
        Ok(mounted)
    }

    /// The parent image recorded for `image` (built images only).
    pub fn image_parent(&self, image: &str) -> Option<String> {
        let img = self.images.get(image).ok()?;
        self.images.parent(&img.id).map(|d| d.as_str().to_string())
    }
}
