//! Writing tar streams with few copies: headers are encoded by the `tar` crate, file contents
//! are read straight into the outgoing chunk in large reads (the `tar` crate's builder copies
//! through an 8 KiB stack buffer), and chunks have one fixed size below malloc's mmap
//! threshold, so that their memory is reused instead of mapped, faulted in and unmapped each
//! time (berthd sets `M_MMAP_THRESHOLD` to 256 KiB).

use bytes::Bytes;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use tokio::sync::mpsc;

/// Size of one chunk handed to the sink.
pub(crate) const CHUNK: usize = 128 * 1024;
const BLOCK: usize = 512;

/// Where full chunks go.
pub(crate) trait ChunkSink {
    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()>;
}

impl<T: ChunkSink> ChunkSink for &mut T {
    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        (**self).send(chunk)
    }
}

/// Chunks for an HTTP response body fed from a blocking task.
pub(crate) struct BodySink(pub mpsc::Sender<Bytes>);

impl ChunkSink for BodySink {
    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.0
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// A tar stream being written into fixed-size chunks.
pub(crate) struct TarOut<S: ChunkSink> {
    sink: S,
    buf: Vec<u8>,
    pos: usize,
    /// bytes written so far
    pub(crate) written: u64,
    /// owners read from a remapped container's files are written back as container ids
    pub(crate) ids: Option<berth_util::idmap::IdMaps>,
}

impl<S: ChunkSink> TarOut<S> {
    pub(crate) fn new(sink: S) -> Self {
        TarOut {
            sink,
            buf: vec![0; CHUNK],
            pos: 0,
            written: 0,
            ids: None,
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.pos == 0 {
            return Ok(());
        }
        let mut full = std::mem::replace(&mut self.buf, vec![0; CHUNK]);
        full.truncate(self.pos);
        self.pos = 0;
        self.sink.send(full)
    }

    /// Appends raw bytes to the stream.
    pub(crate) fn put(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (CHUNK - self.pos).min(data.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos += n;
            self.written += n as u64;
            data = &data[n..];
            if self.pos == CHUNK {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// A GNU long-name (`L`) or long-link (`K`) entry carrying `data` NUL-terminated.
    fn long_entry(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64 + 1);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        self.put(h.as_bytes())?;
        self.put(data)?;
        self.put(&[0])?;
        self.pad(data.len() as u64 + 1)
    }

    /// Writes the header of an entry named `path` (and a link target for symlinks and hard
    /// links), with GNU long-name entries in front when they do not fit in the header.
    pub(crate) fn header(
        &mut self,
        h: &mut tar::Header,
        path: &[u8],
        link: Option<&[u8]>,
    ) -> io::Result<()> {
        {
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            if path.len() <= name.len() {
                name[..path.len()].copy_from_slice(path);
            } else {
                let n = name.len();
                name.copy_from_slice(&path[..n]);
            }
        }
        if path.len() > 100 {
            self.long_entry(b'L', path)?;
        }
        if let Some(link) = link {
            let ln = &mut h.as_old_mut().linkname;
            ln.fill(0);
            let n = link.len().min(ln.len());
            ln[..n].copy_from_slice(&link[..n]);
            if link.len() > 100 {
                self.long_entry(b'K', link)?;
            }
        }
        h.set_cksum();
        self.put(h.as_bytes())
    }

    /// Writes exactly `len` bytes of content from `r` (zeros if it ends early, as a file that
    /// shrank while being read), then the padding.
    pub(crate) fn content(&mut self, r: &mut impl Read, len: u64) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            let want = ((CHUNK - self.pos) as u64).min(left) as usize;
            let n = match r.read(&mut self.buf[self.pos..self.pos + want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.pos += n;
            self.written += n as u64;
            left -= n as u64;
            if self.pos == CHUNK {
                self.flush_chunk()?;
            }
        }
        if left > 0 {
            tracing::warn!(missing = left, "file shrank while it was archived");
            let zeros = [0u8; 4096];
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                self.put(&zeros[..n])?;
                left -= n as u64;
            }
        }
        self.pad(len)
    }

    /// A whole entry with in-memory content.
    pub(crate) fn data(&mut self, h: &mut tar::Header, path: &[u8], data: &[u8]) -> io::Result<()> {
        h.set_size(data.len() as u64);
        self.header(h, path, None)?;
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// The end-of-archive marker; sends the last chunk. Returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<S> {
        self.put(&[0u8; 2 * BLOCK])?;
        self.flush_chunk()?;
        Ok(self.sink)
    }
}

/// Appends the filesystem object at `path` (not followed if a symlink) as the entry `name`,
/// with its mode, owner and mtime: directories, regular files (their content read once, in
/// large reads), symlinks, devices and fifos. Sockets are skipped, as tar does.
pub(crate) fn append_path<S: ChunkSink>(
    out: &mut TarOut<S>,
    name: &[u8],
    path: &Path,
    md: &Metadata,
) -> io::Result<()> {
    let ft = md.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(md, tar::HeaderMode::Complete);
    h.set_mode(md.mode() & 0o7777);
    if let Some(ids) = &out.ids {
        // a host id outside the range (a file the host made) reads as nobody, as in the
        // container
        h.set_uid(ids.uid_to_container(md.uid()).unwrap_or(65534) as u64);
        h.set_gid(ids.gid_to_container(md.gid()).unwrap_or(65534) as u64);
    }
    if ft.is_dir() {
        h.set_size(0);
        let mut n = name.to_vec();
        if !n.ends_with(b"/") {
            n.push(b'/');
        }
        out.header(&mut h, &n, None)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(changed_under_us)?;
        h.set_size(0);
        out.header(&mut h, name, Some(target.as_os_str().as_bytes()))
    } else if ft.is_file() {
        let mut f = open_nofollow(path).map_err(changed_under_us)?;
        let len = md.len();
        h.set_size(len);
        out.header(&mut h, name, None)?;
        out.content(&mut f, len)
    } else if ft.is_char_device() || ft.is_block_device() {
        h.set_size(0);
        let dev = md.rdev();
        h.set_device_major(libc::major(dev))?;
        h.set_device_minor(libc::minor(dev))?;
        out.header(&mut h, name, None)
    } else if ft.is_fifo() {
        h.set_size(0);
        out.header(&mut h, name, None)
    } else {
        tracing::debug!(path = %path.display(), "socket left out of the archive");
        Ok(())
    }
}

/// A path whose type changed between its stat and its read (a running container swapped a
/// link and a directory: `readlink` of a directory is EINVAL, `O_NOFOLLOW` on a link is
/// ELOOP) reads as gone, as one removed while we walk: nothing was written for it yet.
fn changed_under_us(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ELOOP) => io::Error::from(io::ErrorKind::NotFound),
        _ => e,
    }
}

/// Appends everything below `root` (not `root` itself), parents before their children,
/// names relative to `root` in sorted order. Symlinks are archived, never followed.
pub(crate) fn append_tree<S: ChunkSink>(out: &mut TarOut<S>, root: &Path) -> io::Result<()> {
    // by descriptor: a running container swapping a directory for a link to the host while
    // we walk cannot lead us out (berth_util::inroot::walk_dirs)
    berth_util::inroot::walk_dirs(root, |dir, rel| {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        let mut subdirs = Vec::new();
        for n in names {
            let r = rel.join(&n);
            let p = dir.join(&n);
            let md = match std::fs::symlink_metadata(&p) {
                Ok(md) => md,
                // removed while we walk (a running container)
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match append_path(out, r.as_os_str().as_bytes(), &p, &md) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            if md.is_dir() {
                subdirs.push(n);
            }
        }
        Ok(subdirs)
    })
}

/// Opens a file to archive (no symlink followed).
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecSink(Vec<u8>);
    impl ChunkSink for VecSink {
        fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
            assert!(chunk.len() <= CHUNK);
            self.0.extend_from_slice(&chunk);
            Ok(())
        }
    }

    #[test]
    fn long_names_links_and_big_contents_read_back() {
        let mut t = TarOut::new(VecSink(Vec::new()));
        let long = format!("{}/file", "d".repeat(150));
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(big.len() as u64);
        t.header(&mut h, long.as_bytes(), None).unwrap();
        t.content(&mut &big[..], big.len() as u64).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        let target = "t".repeat(120);
        t.header(&mut h, b"link", Some(target.as_bytes())).unwrap();
        // a file shorter than its header says is padded with zeros
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(10);
        t.header(&mut h, b"short", None).unwrap();
        t.content(&mut &b"abc"[..], 10).unwrap();
        t.data(&mut tar::Header::new_gnu(), b"small", b"hello")
            .unwrap();
        let out = t.finish().unwrap().0;
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            seen.push((p, link, content));
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].0, long);
        assert_eq!(seen[0].2, big);
        assert_eq!(seen[1].1.as_deref(), Some(target.as_str()));
        assert_eq!(seen[2].2, b"abc\0\0\0\0\0\0\0");
        assert_eq!(seen[3].2, b"hello");
    }
}
