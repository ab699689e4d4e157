//! The docker CLI sends, for `-f` outside the context, a tar whose last entry lacks its
//! padding and the archive its two zero blocks (its tar wrapper closes the pipe before the
//! tar writer). Go's reader takes an end of stream at an entry boundary (or in the padding)
//! as the end of the archive; [`TolerantEnd`] gives the tar reader the same: it follows the
//! tar's structure as it passes and, at such an end, supplies the missing zeros. An end
//! inside a header or inside content stays an error (a truncated context). A stream that is
//! not a tar (a bare Dockerfile) passes unchanged.

use std::io::{self, Read};

pub struct TolerantEnd<R> {
    inner: R,
    header: Vec<u8>,
    content_left: u64,
    pad_left: u64,
    /// not a tar, or past the end-of-archive block: pass through
    passthrough: bool,
    /// zeros still to supply after the inner end
    zeros: u64,
    ended: bool,
}

fn checksum_ok(h: &[u8]) -> bool {
    let field = &h[148..156];
    let s: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let Ok(want) = u64::from_str_radix(s.trim(), 8) else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u64
            }
        })
        .sum();
    sum == want
}

fn size_of(h: &[u8]) -> u64 {
    let f = &h[124..136];
    if f[0] & 0x80 != 0 {
        let mut n: u64 = (f[0] & 0x7f) as u64;
        for b in &f[1..] {
            n = n.saturating_mul(256).saturating_add(*b as u64);
        }
        return n;
    }
    let s: String = f
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or(0)
}

impl<R: Read> TolerantEnd<R> {
    pub fn new(inner: R) -> Self {
        TolerantEnd {
            inner,
            header: Vec::with_capacity(512),
            content_left: 0,
            pad_left: 0,
            passthrough: false,
            zeros: 0,
            ended: false,
        }
    }

    /// Follows the structure over bytes that passed.
    fn track(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.passthrough {
            if self.content_left > 0 {
                let n = (self.content_left.min(data.len() as u64)) as usize;
                self.content_left -= n as u64;
                data = &data[n..];
            } else if self.pad_left > 0 {
                let n = (self.pad_left.min(data.len() as u64)) as usize;
                self.pad_left -= n as u64;
                data = &data[n..];
            } else {
                let n = (512 - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.header.len() == 512 {
                    let h = std::mem::take(&mut self.header);
                    if h.iter().all(|b| *b == 0) || !checksum_ok(&h) {
                        // the end-of-archive block, or not a tar at all
                        self.passthrough = true;
                        return;
                    }
                    let size = match h[156] {
                        b'1'..=b'6' => 0,
                        _ => size_of(&h),
                    };
                    self.content_left = size;
                    self.pad_left = (512 - size % 512) % 512;
                }
            }
        }
    }
}

impl<R: Read> Read for TolerantEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.ended {
            let n = (self.zeros.min(buf.len() as u64)) as usize;
            buf[..n].fill(0);
            self.zeros -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.track(&buf[..n]);
            return Ok(n);
        }
        self.ended = true;
        if !self.passthrough && self.content_left == 0 && self.header.is_empty() {
            // at an entry boundary, or in the padding: the padding and the end blocks
            self.zeros = self.pad_left + 1024;
        }
        self.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(r: impl Read) -> Result<Vec<String>, io::Error> {
        let mut a = tar::Archive::new(r);
        let mut out = Vec::new();
        for e in a.entries()? {
            let mut e = e?;
            let mut s = String::new();
            e.read_to_string(&mut s)?;
            out.push(format!("{}={s}", e.path()?.display()));
        }
        Ok(out)
    }

    #[test]
    fn a_tar_cut_after_the_last_content_is_complete() {
        let full = tar_of(&[("a", b"1"), ("Dockerfile", b"FROM busybox\n")]);
        // the CLI's stream: no padding after the last file, no end blocks
        let cut = &full[..512 + 512 + 512 + 13];
        assert!(names(cut).is_err());
        assert_eq!(
            names(TolerantEnd::new(cut)).unwrap(),
            ["a=1", "Dockerfile=FROM busybox\n"]
        );
        // whole, or cut at a header boundary: the same
        assert_eq!(names(TolerantEnd::new(&full[..])).unwrap().len(), 2);
        assert_eq!(names(TolerantEnd::new(&full[..1024])).unwrap(), ["a=1"]);
        // cut inside content or a header: still an error
        assert!(names(TolerantEnd::new(&full[..512 + 512 + 512 + 5])).is_err());
        assert!(names(TolerantEnd::new(&full[..1024 + 100])).is_err());
        // not a tar: unchanged
        let mut s = String::new();
        TolerantEnd::new(&b"FROM busybox\n"[..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "FROM busybox\n");
    }
}
