//! docker's stdcopy framing: 8-byte header (stream, 0, 0, 0, u32 BE length).

use std::io::{self, Read, Write};

/// Demultiplexes frames from `r` until EOF: stream 0/1 → `out`, 2 → `err`.
/// Stream 3 (systemerr) becomes an error with its payload as the message.
pub fn demux<R: Read, O: Write, E: Write>(mut r: R, out: &mut O, err: &mut E) -> io::Result<()> {
    let mut hdr = [0u8; 8];
    let mut buf = vec![0u8; 32768];
    loop {
        // Read a full header; EOF at a frame boundary is the normal end.
        let mut got = 0;
        while got < 8 {
            match r.read(&mut hdr[got..]) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated stream header",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let stream = hdr[0];
        let mut len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        if stream > 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("Unrecognized input header: {stream}"),
            ));
        }
        let mut syserr = Vec::new();
        while len > 0 {
            let want = len.min(buf.len());
            let n = match r.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated stream frame",
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match stream {
                0 | 1 => {
                    out.write_all(&buf[..n])?;
                }
                2 => {
                    err.write_all(&buf[..n])?;
                }
                _ => syserr.extend_from_slice(&buf[..n]),
            }
            len -= n;
        }
        if stream == 3 {
            return Err(io::Error::other(format!(
                "error from daemon in stream: {}",
                String::from_utf8_lossy(&syserr)
            )));
        }
        if stream == 2 {
            err.flush()?;
        } else {
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn splits_stdout_and_stderr() {
        let mut input = frame(1, b"out1\n");
        input.extend(frame(2, b"err1\n"));
        input.extend(frame(1, b"out2\n"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&input[..], &mut o, &mut e).unwrap();
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err1\n");
    }

    #[test]
    fn byte_by_byte_reader() {
        struct OneByte(Vec<u8>, usize);
        impl Read for OneByte {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                if self.1 >= self.0.len() || b.is_empty() {
                    return Ok(0);
                }
                b[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let big = vec![b'x'; 100_000];
        let mut input = frame(1, &big);
        input.extend(frame(2, b"e"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(OneByte(input, 0), &mut o, &mut e).unwrap();
        assert_eq!(o.len(), 100_000);
        assert_eq!(e, b"e");
    }

    #[test]
    fn bad_header() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let err = demux(&b"root:x:0:0"[..], &mut o, &mut e).unwrap_err();
        assert_eq!(err.to_string(), "Unrecognized input header: 114");
    }

    #[test]
    fn truncated_frame() {
        let mut input = frame(1, b"hello");
        input.truncate(10);
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert!(demux(&input[..], &mut o, &mut e).is_err());
    }

    #[test]
    fn empty_stream_ok() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&b""[..], &mut o, &mut e).unwrap();
    }
}
