//! `container prune`: remove every stopped container.

use crate::container::Status;
use crate::{Engine, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes used by the files below `p` (not following links).
pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len();
            }
        }
    }
    total
}

impl Engine {
    /// Returns the removed IDs and the bytes reclaimed.
    pub async fn prune(
        self: &Arc<Self>,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut space = 0;
        let until = filters
            .get("until")
            .and_then(|v| v.first())
            .and_then(|s| s.parse::<u64>().ok());
        for c in self.all_containers() {
            let rec = c.record();
            if !matches!(
                rec.state.status,
                Status::Exited | Status::Created | Status::Dead
            ) {
                continue;
            }
            if let Some(u) = until {
                if rec.created / 1_000_000_000 >= u as u128 {
                    continue;
                }
            }
            if let Some(labels) = filters.get("label") {
                let have = rec.config.labels.clone().unwrap_or_default();
                if !berth_util::filters::labels_match(labels, &have) {
                    continue;
                }
            }
            let size = self
                .snaps
                .rw_paths(&c.id)
                .map(|p| dir_size(&p.upper))
                .unwrap_or(0);
            if self.remove(&c.id, false).await.is_ok() {
                deleted.push(c.id.clone());
                space += size;
            }
        }
        self.events.emit(
            "container",
            "prune",
            "",
            [("reclaimed".to_string(), space.to_string())]
                .into_iter()
                .collect(),
        );
        Ok((deleted, space))
    }
}
