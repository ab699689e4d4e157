//! Stream helpers.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// How many bytes a tar reader may consume while looking for the next entry: its header
/// blocks plus PAX records and GNU long names, which the `tar` crate reads whole into memory.
/// Go's archive/tar (docker) caps each of those at 1 MiB; a layer needing more is hostile.
pub const MAX_TAR_HEADER_BYTES: u64 = 2 << 20;

/// A reader for `tar::Archive` whose reads fail once armed and past a byte budget: arm it
/// around each `entries.next()` so a PAX header or GNU long name of gigabytes is refused
/// instead of buffered, disarm it while the entry's content streams through.
pub struct HeaderLimited<R> {
    inner: R,
    left: Rc<Cell<Option<u64>>>,
}

/// The switch of a [`HeaderLimited`] reader.
#[derive(Clone)]
pub struct HeaderLimit(Rc<Cell<Option<u64>>>);

impl HeaderLimit {
    /// Allows `bytes` more until [`HeaderLimit::disarm`].
    pub fn arm(&self, bytes: u64) {
        self.0.set(Some(bytes));
    }
    pub fn disarm(&self) {
        self.0.set(None);
    }
}

/// Wraps `r`; the limit starts disarmed.
pub fn header_limited<R: Read>(r: R) -> (HeaderLimited<R>, HeaderLimit) {
    let left = Rc::new(Cell::new(None));
    (
        HeaderLimited {
            inner: r,
            left: left.clone(),
        },
        HeaderLimit(left),
    )
}

impl<R: Read> Read for HeaderLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.left.get() {
            None => self.inner.read(buf),
            Some(0) if !buf.is_empty() => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "tar header records (PAX, GNU long names) of one entry exceed {} MiB",
                    MAX_TAR_HEADER_BYTES >> 20
                ),
            )),
            Some(left) => {
                let max = buf.len().min(left.try_into().unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..max])?;
                self.left.set(Some(left - n as u64));
                Ok(n)
            }
        }
    }
}

/// Iterates a tar's entries with the header budget armed around each step: `f` gets each
/// entry (its unread content is drained afterwards, disarmed). Errors of the stream come back
/// as `Err(io::Error)` from `f`'s caller via `on_err`.
pub fn for_each_tar_entry<R: Read, E>(
    reader: R,
    on_err: impl Fn(io::Error) -> E,
    mut f: impl FnMut(&mut tar::Entry<'_, HeaderLimited<R>>) -> Result<(), E>,
) -> Result<(), E> {
    let (reader, limit) = header_limited(reader);
    let mut ar = tar::Archive::new(reader);
    let mut entries = ar.entries().map_err(&on_err)?;
    loop {
        limit.arm(MAX_TAR_HEADER_BYTES);
        let next = entries.next();
        limit.disarm();
        let Some(entry) = next else {
            return Ok(());
        };
        let mut entry = entry.map_err(&on_err)?;
        f(&mut entry)?;
        io::copy(&mut entry, &mut io::sink()).map_err(&on_err)?;
    }
}

/// Returns a reader that yields the decompressed stream if `r` starts with the gzip magic,
/// else `r` itself (the peeked bytes put back in front).
pub fn maybe_gunzip<'a>(mut r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let joined = io::Cursor::new(magic[..n].to_vec()).chain(r);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(joined)))
    } else {
        Ok(Box::new(joined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn plain_and_gzip_read_the_same() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello layer").unwrap();
        let gz = gz.finish().unwrap();
        for input in [b"hello layer".to_vec(), gz] {
            let mut out = String::new();
            maybe_gunzip(&input[..])
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "hello layer");
        }
        let mut out = Vec::new();
        maybe_gunzip(&b"x"[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"x");
    }
}
