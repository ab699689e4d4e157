//! Stream helpers.

use std::io::{self, Read};

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
