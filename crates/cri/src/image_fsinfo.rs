//! `ImageFsInfo` (`crictl imagefsinfo`): bytes and inodes under the layer store.

use crate::{pb, Cri, Result};
use std::path::{Path, PathBuf};

/// How long a count of the layer store is reused.
const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes (allocated blocks) and inodes under `dir`, not following symlinks, each inode once.
pub(crate) fn usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        bytes += md.blocks() * 512;
        inodes += 1;
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    (bytes, inodes)
}

impl Cri {
    pub(crate) async fn image_fs_info(
        &self,
        _r: pb::ImageFsInfoRequest,
    ) -> Result<pb::ImageFsInfoResponse> {
        let dir = self.engine.config().data_root.join("overlay2");
        let cached = *self.fs_usage.lock().expect("fs usage lock");
        let (bytes, inodes) = match cached {
            Some((at, b, i)) if at.elapsed() < FRESH => (b, i),
            _ => {
                let d = dir.clone();
                let (b, i) = tokio::task::spawn_blocking(move || usage(&d))
                    .await
                    .map_err(|e| crate::Error::Internal(e.to_string()))?;
                *self.fs_usage.lock().expect("fs usage lock") =
                    Some((std::time::Instant::now(), b, i));
                (b, i)
            }
        };
        let fs = pb::FilesystemUsage {
            timestamp: crate::now_nanos(),
            fs_id: Some(pb::FilesystemIdentifier {
                mountpoint: dir.to_string_lossy().into_owned(),
            }),
            used_bytes: Some(pb::UInt64Value { value: bytes }),
            inodes_used: Some(pb::UInt64Value { value: inodes }),
        };
        Ok(pb::ImageFsInfoResponse {
            image_filesystems: vec![fs],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_inodes_once() {
        let d = std::env::temp_dir().join(format!("berth-fsinfo-{}", std::process::id()));
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::write(d.join("a/f"), vec![1u8; 10_000]).unwrap();
        std::fs::hard_link(d.join("a/f"), d.join("g")).unwrap();
        std::os::unix::fs::symlink("/", d.join("s")).unwrap();
        let (bytes, inodes) = usage(&d);
        std::fs::remove_dir_all(&d).unwrap();
        // d, a, f (once, though linked twice), s
        assert_eq!(inodes, 4);
        assert!((10_000..100_000).contains(&bytes), "{bytes}");
    }
}
