//! A small blocking HTTP/1.1 client over a unix socket: just what the
//! Engine API needs (keep-alive, Content-Length and chunked bodies, chunked
//! uploads, and the `Upgrade: tcp` hijack used by attach).

use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;

/// A connection with its own read buffer (bytes read past a response's
/// headers stay here for the body, or for the raw stream after a 101).
pub struct Conn {
    pub stream: UnixStream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Conn {
    pub fn connect(path: &str) -> io::Result<Conn> {
        let stream = UnixStream::connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "Cannot connect to the berth daemon at unix://{path}. Is the berth daemon running?"
                ),
            )
        })?;
        Ok(Conn {
            stream,
            buf: vec![0; 16384],
            pos: 0,
            end: 0,
        })
    }

    /// Bytes already buffered but not consumed (after a hijack).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let v = self.buf[self.pos..self.end].to_vec();
        self.pos = self.end;
        v
    }
}

impl Read for Conn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end && out.len() >= self.buf.len() {
            return self.stream.read(out);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Conn {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = self.stream.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }
    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a status line and headers.
pub fn read_head<R: BufRead>(r: &mut R) -> io::Result<Head> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the daemon",
        ));
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed HTTP response {:?}", line.trim_end()),
        ));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP status line"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated HTTP headers",
            ));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Head { status, headers })
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

pub fn framing(method: &str, head: &Head) -> Framing {
    if method == "HEAD"
        || head.status == 204
        || head.status == 304
        || head.status == 101
        || head.status < 200
    {
        return Framing::None;
    }
    if head
        .header("Transfer-Encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false)
    {
        return Framing::Chunked;
    }
    if let Some(n) = head.header("Content-Length").and_then(|v| v.parse().ok()) {
        return if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        };
    }
    Framing::UntilEof
}

/// Reads one body with the given framing; for chunked bodies, decodes.
pub struct Body<R: BufRead> {
    pub inner: R,
    framing: Framing,
    left: u64, // bytes left in the current chunk / body
    done: bool,
}

impl<R: BufRead> Body<R> {
    pub fn new(inner: R, framing: Framing) -> Self {
        let (left, done) = match framing {
            Framing::None => (0, true),
            Framing::Length(n) => (n, false),
            _ => (0, false),
        };
        Body {
            inner,
            framing,
            left,
            done,
        }
    }
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated chunked body",
            ));
        }
        let hex = line.trim().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(hex, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {hex:?}"),
            )
        })?;
        if size == 0 {
            // trailers up to an empty line
            loop {
                line.clear();
                if self.inner.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    break;
                }
            }
            self.done = true;
        }
        self.left = size;
        Ok(())
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::None => Ok(0),
            Framing::UntilEof => {
                let n = self.inner.read(out)?;
                if n == 0 {
                    self.done = true;
                }
                Ok(n)
            }
            Framing::Length(_) => {
                let max = (out.len() as u64).min(self.left) as usize;
                let n = self.inner.read(&mut out[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated body",
                    ));
                }
                self.left -= n as u64;
                if self.left == 0 {
                    self.done = true;
                }
                Ok(n)
            }
            Framing::Chunked => {
                if self.left == 0 {
                    self.next_chunk()?;
                    if self.done {
                        return Ok(0);
                    }
                }
                let max = (out.len() as u64).min(self.left) as usize;
                let n = self.inner.read(&mut out[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated chunked body",
                    ));
                }
                self.left -= n as u64;
                if self.left == 0 {
                    // CRLF after the chunk data
                    let mut crlf = String::new();
                    self.inner.read_line(&mut crlf)?;
                }
                Ok(n)
            }
        }
    }
}

/// Writes `body` as chunks of at most 32 KiB, then the terminating chunk.
pub fn write_chunked<W: Write, R: Read + ?Sized>(w: &mut W, body: &mut R) -> io::Result<()> {
    let mut buf = vec![0u8; 32768];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write!(w, "{n:x}\r\n")?;
        w.write_all(&buf[..n])?;
        w.write_all(b"\r\n")?;
    }
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

pub enum ReqBody<'a> {
    Empty,
    /// Send `Content-Length: 0` (what docker sends for bodiless POSTs).
    EmptyPost,
    Bytes(&'a str, &'a [u8]),
    Chunked(&'a str, &'a mut dyn Read),
}

impl<'a> ReqBody<'a> {
    /// The same body again, for a request that may be sent twice; `None`
    /// for a streamed body (it is consumed by the first send).
    pub fn replay(&self) -> Option<ReqBody<'a>> {
        match self {
            ReqBody::Empty => Some(ReqBody::Empty),
            ReqBody::EmptyPost => Some(ReqBody::EmptyPost),
            ReqBody::Bytes(t, b) => Some(ReqBody::Bytes(t, b)),
            ReqBody::Chunked(..) => None,
        }
    }
}

/// The request line and the headers every request carries, plus `extra`
/// (without the blank line that ends the head).
pub fn request_head(method: &str, path: &str, extra: &[(&str, &str)]) -> String {
    let mut h = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth/{} (linux)\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h
}

/// A body written as it is produced (`Transfer-Encoding: chunked`): bytes are
/// gathered into chunks of 64 KiB; [`ChunkedWriter::finish`] writes the last
/// chunk and the terminator. `sent` counts the body's bytes.
pub struct ChunkedWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    pub sent: u64,
}

const CHUNK: usize = 65536;

impl<W: Write> ChunkedWriter<W> {
    pub fn new(inner: W) -> Self {
        ChunkedWriter {
            inner,
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut frame = format!("{:x}\r\n", self.buf.len()).into_bytes();
        frame.extend_from_slice(&self.buf);
        frame.extend_from_slice(b"\r\n");
        self.inner.write_all(&frame)?;
        self.buf.clear();
        Ok(())
    }

    /// Sends what is buffered, then the terminating chunk.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit()?;
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.sent += n as u64;
        if self.buf.len() == CHUNK {
            self.emit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.emit()?;
        self.inner.flush()
    }
}

pub fn write_request(
    w: &mut UnixStream,
    method: &str,
    path: &str,
    body: ReqBody<'_>,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut h = request_head(method, path, extra);
    match body {
        ReqBody::Empty => {
            h.push_str("\r\n");
            w.write_all(h.as_bytes())
        }
        ReqBody::EmptyPost => {
            h.push_str("Content-Length: 0\r\n\r\n");
            w.write_all(h.as_bytes())
        }
        ReqBody::Bytes(ct, b) => {
            h.push_str(&format!(
                "Content-Length: {}\r\nContent-Type: {ct}\r\n\r\n",
                b.len()
            ));
            let mut all = h.into_bytes();
            all.extend_from_slice(b);
            w.write_all(&all)
        }
        ReqBody::Chunked(ct, r) => {
            h.push_str(&format!(
                "Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ));
            w.write_all(h.as_bytes())?;
            let mut bw = io::BufWriter::with_capacity(65536, &mut *w);
            write_chunked(&mut bw, r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn decode(raw: &[u8]) -> Vec<u8> {
        let mut b = Body::new(Cursor::new(raw.to_vec()), Framing::Chunked);
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert!(b.is_done());
        out
    }

    #[test]
    fn chunked_basic() {
        assert_eq!(decode(b"3\r\nabc\r\n5\r\nhello\r\n0\r\n\r\n"), b"abchello");
    }

    #[test]
    fn chunked_extensions_and_trailers() {
        assert_eq!(
            decode(b"A;foo=bar\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"),
            b"0123456789"
        );
    }

    #[test]
    fn chunked_leaves_next_response_in_buffer() {
        let raw = b"2\r\nhi\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let mut cur = Cursor::new(raw.to_vec());
        let mut b = Body::new(&mut cur, Framing::Chunked);
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hi");
        let head = read_head(&mut cur).unwrap();
        assert_eq!(head.status, 204);
    }

    #[test]
    fn chunked_truncated_is_error() {
        let mut b = Body::new(Cursor::new(b"5\r\nab".to_vec()), Framing::Chunked);
        let mut out = Vec::new();
        assert!(b.read_to_end(&mut out).is_err());
    }

    #[test]
    fn chunked_bad_size() {
        let mut b = Body::new(Cursor::new(b"zz\r\n".to_vec()), Framing::Chunked);
        let mut out = Vec::new();
        assert!(b.read_to_end(&mut out).is_err());
    }

    #[test]
    fn content_length_body() {
        let mut cur = Cursor::new(b"hello world".to_vec());
        let mut b = Body::new(&mut cur, Framing::Length(5));
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn head_parsing_and_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nTransfer-Encoding: chunked\r\n\r\n";
        let h = read_head(&mut Cursor::new(raw.to_vec())).unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.header("api-version"), Some("1.41"));
        assert_eq!(framing("GET", &h), Framing::Chunked);
        assert_eq!(framing("HEAD", &h), Framing::None);
        let raw = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n\r\n";
        let h = read_head(&mut Cursor::new(raw.to_vec())).unwrap();
        assert_eq!(framing("POST", &h), Framing::None);
    }

    #[test]
    fn chunked_writer_roundtrip() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let mut w = ChunkedWriter::new(Vec::new());
        for piece in data.chunks(7000) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.sent, data.len() as u64);
        let enc = w.finish().unwrap();
        assert_eq!(decode(&enc), data);
        assert_eq!(
            ChunkedWriter::new(Vec::new()).finish().unwrap(),
            b"0\r\n\r\n"
        );
    }

    #[test]
    fn chunked_roundtrip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = Vec::new();
        write_chunked(&mut enc, &mut Cursor::new(data.clone())).unwrap();
        assert_eq!(decode(&enc), data);
    }
}
