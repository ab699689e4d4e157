//! The build cache: docker's classic rule (same parent image + same step config + same
//! content of COPY/ADD sources → the image that step made before), as an O(1) map from a key
//! over those three to the image ID. Persisted as an append-only file of `key id` lines
//! (`<data-root>/build/cache`): no fsync (a lost line is a cache miss, never a wrong hit:
//! each hit is checked against the image store by the caller), compacted when opened.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The cache key of one step.
pub fn key(parent: Option<&str>, container_config: &serde_json::Value, extra: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.unwrap_or("scratch").as_bytes());
    h.update([0]);
    // serde_json's map is ordered by key: a canonical form
    h.update(serde_json::to_vec(container_config).unwrap_or_default());
    h.update([0]);
    h.update(extra.as_bytes());
    hex::encode(h.finalize())
}

pub struct Cache {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, String>>,
}

impl Cache {
    /// A cache that lives in memory only.
    pub fn in_memory() -> Cache {
        Cache {
            path: None,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Reads (and compacts) the index at `path`, creating its directory.
    pub fn open(path: &Path) -> std::io::Result<Cache> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut map = HashMap::new();
        let mut lines = 0usize;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for l in text.lines() {
                    lines += 1;
                    if let Some((k, v)) = l.split_once(' ') {
                        if k.len() == 64 && v.starts_with("sha256:") {
                            map.insert(k.to_string(), v.to_string());
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if lines > map.len() + 1024 {
            let mut s = String::new();
            for (k, v) in &map {
                s.push_str(&format!("{k} {v}\n"));
            }
            berth_util::fs::write_atomic(path, s.as_bytes())?;
        }
        Ok(Cache {
            path: Some(path.to_path_buf()),
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    pub fn put(&self, key: &str, image: &str) {
        let mut m = self.lock();
        if m.get(key).map(String::as_str) == Some(image) {
            return;
        }
        m.insert(key.to_string(), image.to_string());
        if let Some(p) = &self.path {
            let r = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .and_then(|mut f| f.write_all(format!("{key} {image}\n").as_bytes()));
            if let Err(e) = r {
                tracing::warn!("build cache index: {e}");
            }
        }
    }

    /// Drops the entries whose image `keep` refuses; returns the images dropped.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut m = self.lock();
        let mut gone = Vec::new();
        m.retain(|_, v| {
            let k = keep(v);
            if !k {
                gone.push(v.clone());
            }
            k
        });
        if let Some(p) = &self.path {
            let mut s = String::new();
            for (k, v) in m.iter() {
                s.push_str(&format!("{k} {v}\n"));
            }
            if let Err(e) = berth_util::fs::write_atomic(p, s.as_bytes()) {
                tracing::warn!("build cache index: {e}");
            }
        }
        gone.sort();
        gone.dedup();
        gone
    }

    /// Every image the cache points at.
    pub fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().values().cloned().collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_and_keys_differ_by_each_part() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("build/cache");
        let cfg = serde_json::json!({"Cmd": ["/bin/sh", "-c", "true"]});
        let k = key(Some("sha256:aa"), &cfg, "");
        assert_ne!(k, key(Some("sha256:bb"), &cfg, ""));
        assert_ne!(k, key(Some("sha256:aa"), &cfg, "file:1"));
        assert_ne!(
            k,
            key(Some("sha256:aa"), &serde_json::json!({"Cmd": ["x"]}), "")
        );
        let img = format!("sha256:{}", "1".repeat(64));
        {
            let c = Cache::open(&p).unwrap();
            assert_eq!(c.get(&k), None);
            c.put(&k, &img);
        }
        let c = Cache::open(&p).unwrap();
        assert_eq!(c.get(&k).as_deref(), Some(img.as_str()));
        assert_eq!(c.retain(|_| false), vec![img]);
        assert_eq!(Cache::open(&p).unwrap().get(&k), None);
    }
}
