//! The content store (`blobs/sha256/<hex>`), the image set (`images/<hex>`) and the
//! repositories index (`repositories.json`: full reference → image ID).

use crate::digest::{is_sha256_hex, Digest, Hasher};
use crate::fsutil::{sync_dir, write_atomic};
use crate::{Error, ImageConfig, Reference, Result};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An image known to the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// config digest
    pub id: Digest,
    pub config: ImageConfig,
    /// familiar `name:tag` forms, sorted
    pub repo_tags: Vec<String>,
    /// familiar `name@sha256:…` forms (the manifests it was pulled or pushed as), sorted
    pub repo_digests: Vec<String>,
}

/// Thread-safe store; all metadata writes are atomic.
pub struct ImageStore {
    root: PathBuf,
    /// cached `repositories.json` (full reference → image ID); the lock also
    /// serialises writers of that file.
    repos: Mutex<BTreeMap<String, String>>,
}

const REPOSITORIES: &str = "repositories.json";

impl ImageStore {
    pub fn open(root: &Path) -> Result<ImageStore> {
        for d in ["blobs/sha256", "images", "tmp"] {
            fs::create_dir_all(root.join(d))?;
        }
        // leftovers of an interrupted write
        if let Ok(rd) = fs::read_dir(root.join("tmp")) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let repos = match fs::read(root.join(REPOSITORIES)) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(ImageStore {
            root: root.to_path_buf(),
            repos: Mutex::new(repos),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a blob in the store (it may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Streams `reader` into the store, verifying it hashes to `expected`; nothing is kept on mismatch.
    pub fn put_blob_verified(&self, expected: &Digest, mut reader: impl Read) -> Result<u64> {
        let tmp = self
            .root
            .join("tmp")
            .join(format!("blob-{}", crate::fsutil::unique_suffix()));
        let res = (|| -> Result<u64> {
            let mut f = File::create(&tmp)?;
            let mut h = Hasher::new();
            let mut buf = vec![0u8; 128 * 1024];
            let mut n: u64 = 0;
            loop {
                let k = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                };
                h.update(&buf[..k]);
                f.write_all(&buf[..k])?;
                n += k as u64;
            }
            let actual = h.finish();
            if &actual != expected {
                return Err(Error::DigestMismatch {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
            f.sync_all()?;
            drop(f);
            let dst = self.blob_path(expected);
            fs::rename(&tmp, &dst)?;
            sync_dir(dst.parent().unwrap_or(&self.root))?;
            Ok(n)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        if let Ok(n) = res {
            tracing::debug!(digest = %expected, size = n, "stored blob");
        }
        res
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        match fs::read(self.blob_path(d)) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(d.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a config blob and returns the image (ID = sha256 of the bytes). Validates it parses.
    pub fn add_image(&self, config_bytes: &[u8]) -> Result<Image> {
        let config: ImageConfig = serde_json::from_slice(config_bytes)?;
        let id = Digest::sha256_of(config_bytes);
        if !self.has_blob(&id) {
            self.put_blob_verified(&id, config_bytes)?;
        }
        let marker = self.root.join("images").join(id.hex());
        if !marker.exists() {
            write_atomic(&marker, b"")?;
        }
        tracing::info!(id = %id, "added image");
        let (repo_tags, repo_digests) = self.refs_of(&id);
        Ok(Image {
            id,
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// Like [`ImageStore::add_image`], for the builder: records `parent` (the image the new
    /// one was built on: docker's intermediate-image chain) and, unless `durable`, writes the
    /// config and marker atomically but without fsync (intermediate images; a power loss
    /// loses them like the unsynced layers under them, a kill -9 cannot tear them).
    pub fn add_image_opts(
        &self,
        config_bytes: &[u8],
        parent: Option<&str>,
        durable: bool,
    ) -> Result<Image> {
        if durable {
            let img = self.add_image(config_bytes)?;
            if let Some(p) = parent {
                self.write_parent(&img.id, p)?;
            }
            return Ok(img);
        }
        let config: ImageConfig = serde_json::from_slice(config_bytes)?;
        let id = Digest::sha256_of(config_bytes);
        let tmp_name = || {
            self.root
                .join("tmp")
                .join(format!("img-{}", crate::fsutil::unique_suffix()))
        };
        if !self.has_blob(&id) {
            let tmp = tmp_name();
            fs::write(&tmp, config_bytes)?;
            fs::rename(&tmp, self.blob_path(&id))?;
        }
        if let Some(p) = parent {
            self.write_parent(&id, p)?;
        }
        let marker = self.root.join("images").join(id.hex());
        if !marker.exists() {
            let tmp = tmp_name();
            fs::write(&tmp, b"")?;
            fs::rename(&tmp, &marker)?;
        }
        let (repo_tags, repo_digests) = self.refs_of(&id);
        Ok(Image {
            id,
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// Makes an image written by [`ImageStore::add_image_opts`] without `durable` durable:
    /// its config blob, its marker and its parent record are synced (a build's final image,
    /// before it is tagged).
    pub fn sync_image(&self, id: &Digest) -> Result<()> {
        let marker = self.root.join("images").join(id.hex());
        let parent = self.root.join("parent").join(id.hex());
        for f in [self.blob_path(id), marker, parent] {
            match File::open(&f) {
                Ok(h) => h.sync_all()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(d) = f.parent() {
                sync_dir(d)?;
            }
        }
        Ok(())
    }

    fn write_parent(&self, id: &Digest, parent: &str) -> Result<()> {
        let parent = Digest::parse(parent)?;
        let dir = self.root.join("parent");
        fs::create_dir_all(&dir)?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("parent-{}", crate::fsutil::unique_suffix()));
        fs::write(&tmp, parent.as_str())?;
        fs::rename(&tmp, dir.join(id.hex()))?;
        Ok(())
    }

    /// The image `id` was built on, if recorded and still present.
    pub fn parent(&self, id: &Digest) -> Option<Digest> {
        let s = fs::read_to_string(self.root.join("parent").join(id.hex())).ok()?;
        let d = Digest::parse(s.trim()).ok()?;
        self.is_image(&d).then_some(d)
    }

    /// The parent recorded for `id`, present or not (the image is being deleted).
    pub fn parent_recorded(&self, id: &Digest) -> Option<Digest> {
        let s = fs::read_to_string(self.root.join("parent").join(id.hex())).ok()?;
        Digest::parse(s.trim()).ok()
    }

    /// Every recorded (child, parent) pair whose two images are present.
    pub fn parents(&self) -> Vec<(Digest, Digest)> {
        let Ok(rd) = fs::read_dir(self.root.join("parent")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(String::from) else {
                continue;
            };
            let Ok(child) = Digest::from_hex(&name) else {
                continue;
            };
            if !self.is_image(&child) {
                continue;
            }
            if let Some(p) = self.parent(&child) {
                out.push((child, p));
            }
        }
        out
    }

    fn lock_repos(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // a panic while holding the lock leaves the map consistent (writes go to disk first)
        self.repos.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save_repos(&self, map: &BTreeMap<String, String>) -> Result<()> {
        let data = serde_json::to_vec_pretty(map)?;
        write_atomic(&self.root.join(REPOSITORIES), &data)?;
        Ok(())
    }

    fn is_image(&self, id: &Digest) -> bool {
        self.root.join("images").join(id.hex()).exists()
    }

    /// Points `reference` at `id` (moving it from any previous image). Atomic write.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<()> {
        if !self.is_image(id) {
            return Err(Error::NotFound(id.to_string()));
        }
        let mut repos = self.lock_repos();
        if repos.get(&reference.full()).map(String::as_str) == Some(id.as_str()) {
            // already so: no write (a re-pull of an image that is up to date writes nothing)
            return Ok(());
        }
        let mut next = repos.clone();
        next.insert(reference.full(), id.to_string());
        self.save_repos(&next)?;
        *repos = next;
        tracing::info!(reference = %reference.full(), id = %id, "tagged");
        Ok(())
    }

    /// Removes `reference`; returns the image it pointed at.
    pub fn untag(&self, reference: &Reference) -> Result<Digest> {
        let mut repos = self.lock_repos();
        let mut next = repos.clone();
        let id = next
            .remove(&reference.full())
            .ok_or_else(|| Error::NotFound(reference.familiar()))?;
        self.save_repos(&next)?;
        *repos = next;
        Digest::parse(&id)
    }

    /// Deletes an image (its config blob, its marker and every reference to it).
    pub fn delete(&self, id: &Digest) -> Result<()> {
        if !self.is_image(id) {
            return Err(Error::NotFound(id.to_string()));
        }
        {
            let mut repos = self.lock_repos();
            let mut next = repos.clone();
            next.retain(|_, v| v != id.as_str());
            if next.len() != repos.len() {
                self.save_repos(&next)?;
                *repos = next;
            }
        }
        fs::remove_file(self.root.join("images").join(id.hex()))?;
        let _ = fs::remove_file(self.root.join("parent").join(id.hex()));
        match fs::remove_file(self.blob_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        tracing::info!(id = %id, "deleted image");
        Ok(())
    }

    /// Familiar forms of the references pointing at `id`, sorted: the tags, and the digest
    /// references (`name@sha256:…`).
    fn refs_of(&self, id: &Digest) -> (Vec<String>, Vec<String>) {
        let repos = self.lock_repos();
        let (mut tags, mut digests) = (Vec::new(), Vec::new());
        for (k, v) in repos.iter() {
            if v.as_str() != id.as_str() {
                continue;
            }
            let Ok(r) = Reference::parse(k) else { continue };
            match &r.digest {
                Some(d) => digests.push(format!("{}@{d}", r.familiar_name())),
                None => tags.push(r.familiar()),
            }
        }
        tags.sort();
        digests.sort();
        (tags, digests)
    }

    fn load(&self, id: &Digest) -> Result<Image> {
        let bytes = self.read_blob(id)?;
        let config: ImageConfig = serde_json::from_slice(&bytes)?;
        let (repo_tags, repo_digests) = self.refs_of(id);
        Ok(Image {
            id: id.clone(),
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// The image a reference names in the index (a tag or a digest reference), if any.
    pub fn resolve(&self, reference: &Reference) -> Option<Digest> {
        let id = self.lock_repos().get(&reference.full()).cloned()?;
        Digest::parse(&id).ok()
    }

    /// The tags (full references) of the repository `name` (`docker.io/library/busybox`).
    pub fn tags_in_repo(&self, name: &str) -> Vec<Reference> {
        self.lock_repos()
            .keys()
            .filter_map(|k| Reference::parse(k).ok())
            .filter(|r| r.name() == name && r.digest.is_none() && r.tag.is_some())
            .collect()
    }

    fn image_ids(&self) -> Result<Vec<Digest>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(self.root.join("images"))? {
            let e = e?;
            let name = e.file_name();
            if let Some(n) = name.to_str() {
                if is_sha256_hex(n) {
                    ids.push(Digest::from_hex(n)?);
                }
            }
        }
        Ok(ids)
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for id in self.image_ids()? {
            match self.load(&id) {
                Ok(img) => out.push(img),
                Err(e) => tracing::warn!(id = %id, error = %e, "skipping unreadable image"),
            }
        }
        out.sort_by(|a, b| {
            b.config
                .created_unix_nanos()
                .cmp(&a.config.created_unix_nanos())
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// By reference (`busybox`, `busybox:latest`, `docker.io/library/busybox`), full ID
    /// (`sha256:…` or bare hex) or unique ID prefix. `Error::NotFound` otherwise.
    pub fn get(&self, name_or_id: &str) -> Result<Image> {
        let not_found = || Error::NotFound(name_or_id.to_string());
        // a full ID
        if let Ok(d) = Digest::parse(name_or_id) {
            return if self.is_image(&d) {
                self.load(&d)
            } else {
                Err(not_found())
            };
        }
        // a reference
        if let Ok(r) = Reference::parse(name_or_id) {
            let id = self.lock_repos().get(&r.full()).cloned();
            if let Some(id) = id {
                let d = Digest::parse(&id)?;
                return self.load(&d);
            }
        }
        // an ID prefix (with or without `sha256:`)
        let prefix = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut found = self
                .image_ids()?
                .into_iter()
                .filter(|d| d.hex().starts_with(prefix));
            if let (Some(d), None) = (found.next(), found.next()) {
                return self.load(&d);
            }
        }
        Err(not_found())
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<ImageStore>();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(created: &str, marker: &str) -> Vec<u8> {
        format!(
            r#"{{"architecture":"amd64","os":"linux","created":"{created}","config":{{"Cmd":["{marker}"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn blob_roundtrip_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"hello");
        assert_eq!(s.put_blob_verified(&d, &b"hello"[..]).unwrap(), 5);
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        let other = Digest::sha256_of(b"other");
        let err = s.put_blob_verified(&other, &b"not other"[..]).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!s.has_blob(&other));
        // no temp file left behind
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(matches!(s.read_blob(&other), Err(Error::NotFound(_))));
    }

    #[test]
    fn add_image_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        assert!(s.add_image(b"not json").is_err());
        assert!(s.add_image(b"{}").is_err()); // no rootfs
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn tag_get_list() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let old = s.add_image(&config("2020-01-01T00:00:00Z", "old")).unwrap();
        let new = s
            .add_image(&config("2024-05-01T10:00:00.5+02:00", "new"))
            .unwrap();
        assert_eq!(
            old.id,
            Digest::sha256_of(&config("2020-01-01T00:00:00Z", "old"))
        );
        s.tag(&old.id, &Reference::parse("busybox").unwrap())
            .unwrap();
        s.tag(&old.id, &Reference::parse("localhost:5000/a/b:c").unwrap())
            .unwrap();
        s.tag(&new.id, &Reference::parse("foo/bar:1").unwrap())
            .unwrap();

        let list = s.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, new.id, "newest first");
        assert_eq!(list[0].repo_tags, vec!["foo/bar:1"]);
        assert_eq!(
            list[1].repo_tags,
            vec!["busybox:latest", "localhost:5000/a/b:c"]
        );

        for q in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox",
            old.id.as_str(),
            old.id.hex(),
            &old.id.hex()[..12],
            &format!("sha256:{}", &old.id.hex()[..12]),
        ] {
            assert_eq!(s.get(q).unwrap().id, old.id, "{q}");
        }
        assert!(matches!(s.get("nosuch"), Err(Error::NotFound(_))));
        assert!(matches!(s.get("busybox:1"), Err(Error::NotFound(_))));

        // moving a tag
        s.tag(&new.id, &Reference::parse("busybox").unwrap())
            .unwrap();
        assert_eq!(s.get("busybox").unwrap().id, new.id);

        // persisted: a new store reads the same index
        let s2 = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s2.get("busybox").unwrap().id, new.id);
        assert_eq!(
            s2.get(old.id.hex()).unwrap().repo_tags,
            vec!["localhost:5000/a/b:c"]
        );

        // untag / delete
        assert_eq!(
            s2.untag(&Reference::parse("foo/bar:1").unwrap()).unwrap(),
            new.id
        );
        s2.delete(&old.id).unwrap();
        assert!(s2.get("localhost:5000/a/b:c").is_err());
        assert_eq!(s2.list().unwrap().len(), 1);
    }

    #[test]
    fn ambiguous_prefix_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        // find two configs whose IDs share a first hex digit
        let mut by_first: std::collections::HashMap<char, Digest> = Default::default();
        for i in 0..40 {
            let img = s
                .add_image(&config("2020-01-01T00:00:00Z", &i.to_string()))
                .unwrap();
            let c = img.id.hex().chars().next().unwrap();
            if let Some(prev) = by_first.insert(c, img.id.clone()) {
                assert_ne!(prev, img.id);
                assert!(matches!(s.get(&c.to_string()), Err(Error::NotFound(_))));
                return;
            }
        }
        panic!("no shared prefix among 40 ids");
    }

    #[test]
    fn digest_references_are_repo_digests_not_tags() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let img = s.add_image(&config("2020-01-01T00:00:00Z", "d")).unwrap();
        let m = Digest::sha256_of(b"manifest");
        let dref = Reference::parse(&format!("localhost:5000/a@{m}")).unwrap();
        s.tag(&img.id, &Reference::parse("localhost:5000/a:1").unwrap())
            .unwrap();
        s.tag(&img.id, &dref).unwrap();
        let got = s.get(&format!("localhost:5000/a@{m}")).unwrap();
        assert_eq!(got.id, img.id);
        assert_eq!(got.repo_tags, vec!["localhost:5000/a:1"]);
        assert_eq!(got.repo_digests, vec![format!("localhost:5000/a@{m}")]);
        assert_eq!(s.resolve(&dref), Some(img.id.clone()));
        let tags = s.tags_in_repo("localhost:5000/a");
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].tag.as_deref(), Some("1"));
    }

    #[test]
    fn tag_unknown_image_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"nope");
        assert!(s.tag(&d, &Reference::parse("x").unwrap()).is_err());
    }

    #[test]
    fn concurrent_tagging() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(ImageStore::open(dir.path()).unwrap());
        let img = s.add_image(&config("2020-01-01T00:00:00Z", "c")).unwrap();
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                let id = img.id.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        s.tag(&id, &Reference::parse(&format!("t{t}:v{i}")).unwrap())
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let s2 = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s2.get(img.id.as_str()).unwrap().repo_tags.len(), 40);
    }
}
