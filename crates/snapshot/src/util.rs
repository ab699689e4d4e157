//! Helpers: a hashing reader, digest checks; the shared ones come from berth-util.

pub(crate) use berth_util::fs::{sync_dir, unique_suffix, write_synced};
pub(crate) use berth_util::io::maybe_gunzip;
pub(crate) use berth_util::mountinfo::mount_points;

use sha2::Digest as _;
use std::io::{self, Read};

/// Hashes (sha256) and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Option<sha2::Sha256>,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    /// Counts, and hashes if `hash`.
    pub(crate) fn new(inner: R, hash: bool) -> Self {
        HashingReader {
            inner,
            hasher: hash.then(sha2::Sha256::new),
            len: 0,
        }
    }
    /// Bytes read so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
    /// `sha256:<hex>` of everything read so far.
    pub(crate) fn finish(self) -> String {
        let h = self.hasher.unwrap_or_default();
        format!("sha256:{}", hex::encode(h.finalize().as_slice()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data).as_slice())
}

/// True for `sha256:<64 lowercase hex>`; returns the hex.
pub(crate) fn digest_hex(d: &str) -> Option<&str> {
    let h = d.strip_prefix("sha256:")?;
    (h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_validation() {
        let h = sha256_hex(b"");
        assert_eq!(digest_hex(&format!("sha256:{h}")), Some(h.as_str()));
        assert_eq!(digest_hex(&h), None);
        assert_eq!(digest_hex("sha256:ABC"), None);
    }
}
