//! A container's filesystem: `diff` (changes in its RW layer) and `export` (its whole view).

use crate::layers::tar_out::{append_tree, BodySink, TarOut};
use crate::{Engine, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Files the engine itself puts in every container (mount points for hostname, hosts,
/// resolv.conf and the kernel filesystems); docker keeps them in a hidden init layer.
const ENGINE_PATHS: &[&str] = &[
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/.dockerenv",
];
const ENGINE_DIRS: &[&str] = &["/dev", "/proc", "/sys"];

/// A `Write` that hands chunks to an async receiver (for streaming tars from a blocking task).
/// Chunks have one fixed size below malloc's mmap threshold, so their memory is reused.
pub(crate) struct ChannelWriter {
    pub tx: mpsc::Sender<Bytes>,
    pub buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        const CHUNK: usize = crate::layers::tar_out::CHUNK;
        if self.buf.capacity() < CHUNK {
            self.buf.reserve_exact(CHUNK - self.buf.len());
        }
        let n = (CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away")
            })?;
        }
        Ok(())
    }
}

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Kind 0 = changed, 1 = added, 2 = deleted (docker's numbering).
pub(crate) fn changes(upper: &Path, lowers: &[PathBuf]) -> Vec<(String, u8)> {
    let in_lower = |rel: &Path| {
        lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok())
    };
    let mut out = Vec::new();
    // by descriptor: a running container cannot swap a directory for a link to the host
    let walked = berth_util::inroot::walk_dirs(upper, |dir, rel| {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(Vec::new());
        };
        let mut subdirs = Vec::new();
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let Ok(md) = dir.join(e.file_name()).symlink_metadata() else {
                continue;
            };
            let shown = format!("/{}", r.display());
            let kind = if is_whiteout(&md) {
                2
            } else if in_lower(&r) {
                0
            } else {
                1
            };
            if md.is_dir() && kind != 2 {
                subdirs.push(e.file_name());
            }
            out.push((shown, kind));
        }
        Ok(subdirs)
    });
    if let Err(e) = walked {
        tracing::debug!(upper = %upper.display(), error = %e, "changes walk");
    }
    out.retain(|(p, _)| {
        !ENGINE_PATHS.contains(&p.as_str())
            && !ENGINE_DIRS
                .iter()
                .any(|d| p == d || p.starts_with(&format!("{d}/")))
    });
    // a directory that was only copied up for the engine's own mount points is no change
    let paths: Vec<String> = out.iter().map(|(p, _)| p.clone()).collect();
    out.retain(|(p, k)| {
        *k != 0
            || !upper.join(p.trim_start_matches('/')).is_dir()
            || paths.iter().any(|o| o.starts_with(&format!("{p}/")))
            || !ENGINE_PATHS.iter().any(|e| e.starts_with(&format!("{p}/")))
    });
    out.sort();
    out
}

impl Engine {
    /// `GET /containers/{id}/changes`.
    pub fn changes(&self, name_or_id: &str) -> Result<Value> {
        let c = self.get_container(name_or_id)?;
        let p = self.snaps.rw_paths(&c.id)?;
        let list: Vec<Value> = changes(&p.upper, &p.lowers)
            .into_iter()
            .map(|(path, kind)| json!({"Path": path, "Kind": kind}))
            .collect();
        Ok(if list.is_empty() {
            Value::Null
        } else {
            Value::Array(list)
        })
    }

    /// `GET /containers/{id}/export`: a tar of the container's merged view, streamed. The
    /// rootfs is mounted for the export if the container is not running.
    pub fn export(self: &Arc<Self>, name_or_id: &str) -> Result<mpsc::Receiver<Bytes>> {
        let c = self.get_container(name_or_id)?;
        let was_running = c.state().status.is_running();
        let merged = self.snaps.mount_rw(&c.id)?;
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            let t0 = std::time::Instant::now();
            let mut out = TarOut::new(BodySink(tx));
            out.ids = engine.snaps.id_maps().cloned();
            let res = append_tree(&mut out, &merged)
                .and_then(|()| {
                    let n = out.written;
                    out.finish().map(|_| n)
                })
                .map(|n| {
                    tracing::debug!(id = %id, bytes = n, ms = t0.elapsed().as_millis() as u64, "exported");
                });
            if let Err(e) = res {
                tracing::warn!(id = %id, "export: {e}");
            }
            let still = engine
                .get_container(&id)
                .map(|c| c.state().status.is_running())
                .unwrap_or(false);
            if !was_running && !still {
                let _ = engine.snaps.unmount_rw(&id);
            }
        });
        Ok(rx)
    }

    /// `GET /system/df`.
    pub fn system_df(&self) -> Result<Value> {
        let mut images = self.image_list(&Default::default(), true)?;
        let containers_all = self.all_containers();
        let mut layers_size = 0u64;
        let mut seen = std::collections::HashSet::new();
        for img in self.images.list()? {
            for chain in Self::chain_ids(&img) {
                if seen.insert(chain.clone()) {
                    layers_size += self.snaps.layer_info(&chain).map(|i| i.size).unwrap_or(0);
                }
            }
        }
        if let Value::Array(list) = &mut images {
            for item in list.iter_mut() {
                let id = item["Id"].as_str().unwrap_or("").to_string();
                let n = containers_all
                    .iter()
                    .filter(|c| c.record().image_id == id)
                    .count();
                item["Containers"] = json!(n);
                item["SharedSize"] = json!(0);
            }
        }
        // the list's rows as they are (dockerd 20.10 keeps `HostConfig` in them)
        let containers = self.list(&crate::ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        Ok(json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": self.volume_list(&Default::default(), true)?,
            "BuildCache": null,
            "BuilderSize": 0
        }))
    }
}
