//! SPDY/3.1 as kubelet's streaming clients speak it (`crictl exec -it`, `attach`,
//! `port-forward` through client-go's SPDY round tripper, over moby/spdystream): the server
//! side of one upgraded connection. The client opens every stream (SYN_STREAM, its kind in a
//! `streamtype` header) and we answer each with SYN_REPLY; data goes both ways in DATA frames,
//! a FIN flag half-closing a stream. spdystream keeps no flow-control windows, so neither do
//! we (WINDOW_UPDATE and SETTINGS are read and dropped).
//!
//! Header blocks are zlib streams, one per direction for the whole connection, primed with the
//! dictionary of the SPDY/3 draft (section 2.6.10.1). That dictionary is a constant of the
//! protocol: [`dictionary`] spells it out as the draft defines it — length-prefixed header
//! names and values, then a run of status codes, reason phrases, dates and media types.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Mutex};

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status: the stream was refused / is cancelled
pub const RST_REFUSED: u32 = 3;
/// A frame larger than this ends the connection (ours are at most 32 KiB of data).
const MAX_FRAME: usize = 1 << 20;
/// Data frames we write are cut to this size.
const CHUNK: usize = 32 * 1024;

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1).
pub fn dictionary() -> &'static [u8] {
    static D: OnceLock<Vec<u8>> = OnceLock::new();
    D.get_or_init(|| {
        // each of these with a 4-byte big-endian length before it
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        // then these, as they are
        const TAIL: &[&str] = &[
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505",
            "203 Non-Authoritative Information",
            "204 No Content",
            "301 Moved Permanently",
            "400 Bad Request",
            "401 Unauthorized",
            "403 Forbidden",
            "404 Not Found",
            "500 Internal Server Error",
            "501 Not Implemented",
            "503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
            " 00:00:00",
            " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,public",
            "privatemax-age=gzip,deflate,sdch",
            "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        ];
        let mut d = Vec::with_capacity(1424);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        for t in TAIL {
            d.extend_from_slice(t.as_bytes());
        }
        d
    })
}

/// A header block: (lower-case name, value) pairs; several values of one name are joined
/// by NUL on the wire.
pub type Headers = Vec<(String, String)>;

pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Decodes the client's header blocks (one zlib stream across the connection).
struct Inflater {
    z: Decompress,
}

impl Inflater {
    fn new() -> Self {
        Inflater {
            z: Decompress::new(true),
        }
    }

    fn block(&mut self, mut input: &[u8]) -> io::Result<Headers> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        while !input.is_empty() {
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            if out.len() > MAX_FRAME {
                return Err(bad("header block too large"));
            }
            let before = self.z.total_in();
            match self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|e| bad(format!("header dictionary: {e}")))?;
                }
                Err(e) => return Err(bad(format!("header block: {e}"))),
            }
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
        }
        // whatever is still buffered inside the inflater
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            let before = out.len();
            match self.z.decompress_vec(&[], &mut out, FlushDecompress::Sync) {
                Ok(Status::Ok) if out.len() > before => continue,
                Ok(_) => break,
                Err(e) => return Err(bad(format!("header block: {e}"))),
            }
        }
        parse_block(&out)
    }
}

fn parse_block(b: &[u8]) -> io::Result<Headers> {
    let mut p = b;
    let u32_at = |p: &mut &[u8]| -> io::Result<u32> {
        if p.len() < 4 {
            return Err(bad("short header block"));
        }
        let v = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        *p = &p[4..];
        Ok(v)
    };
    let n = u32_at(&mut p)?;
    let mut h = Vec::new();
    for _ in 0..n {
        let field = |p: &mut &[u8]| -> io::Result<String> {
            let len = u32_at(p)? as usize;
            if p.len() < len {
                return Err(bad("short header block"));
            }
            let s = String::from_utf8_lossy(&p[..len]).into_owned();
            *p = &p[len..];
            Ok(s)
        };
        let k = field(&mut p)?;
        let v = field(&mut p)?;
        h.push((k.to_ascii_lowercase(), v));
    }
    Ok(h)
}

/// Writes frames; header blocks through one deflate stream.
pub struct Writer<W> {
    w: W,
    z: Compress,
    primed: bool,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(w: W) -> Self {
        Writer {
            w,
            z: Compress::new(Compression::default(), true),
            primed: false,
        }
    }

    fn block(&mut self, h: &[(&str, &str)]) -> io::Result<Vec<u8>> {
        if !self.primed {
            self.z
                .set_dictionary(dictionary())
                .map_err(|e| bad(format!("header dictionary: {e}")))?;
            self.primed = true;
        }
        let mut raw = Vec::new();
        raw.extend_from_slice(&(h.len() as u32).to_be_bytes());
        for (k, v) in h {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            out.reserve(256);
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| bad(format!("header block: {e}")))?;
            input = &input[(self.z.total_in() - before) as usize..];
            // a sync flush is complete once output space was left over
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        Ok(out)
    }

    async fn control(&mut self, typ: u16, flags: u8, body: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(8 + body.len());
        f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        f.extend_from_slice(&typ.to_be_bytes());
        f.push(flags);
        f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(body);
        self.w.write_all(&f).await?;
        self.w.flush().await
    }

    pub async fn syn_reply(&mut self, id: u32, h: &[(&str, &str)]) -> io::Result<()> {
        let mut body = (id & 0x7fff_ffff).to_be_bytes().to_vec();
        body.extend_from_slice(&self.block(h)?);
        self.control(SYN_REPLY, 0, &body).await
    }

    pub async fn rst(&mut self, id: u32, status: u32) -> io::Result<()> {
        let mut body = (id & 0x7fff_ffff).to_be_bytes().to_vec();
        body.extend_from_slice(&status.to_be_bytes());
        self.control(RST_STREAM, 0, &body).await
    }

    async fn ping(&mut self, id: u32) -> io::Result<()> {
        self.control(PING, 0, &id.to_be_bytes()).await
    }

    pub async fn goaway(&mut self, last: u32) -> io::Result<()> {
        let mut body = (last & 0x7fff_ffff).to_be_bytes().to_vec();
        body.extend_from_slice(&0u32.to_be_bytes());
        self.control(GOAWAY, 0, &body).await
    }

    /// DATA frames for `data` (cut in chunks); `fin` half-closes the stream after it.
    pub async fn data(&mut self, id: u32, data: &[u8], fin: bool) -> io::Result<()> {
        let mut chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, c) in chunks.into_iter().enumerate() {
            let mut f = Vec::with_capacity(8 + c.len());
            f.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
            f.push(if fin && i == last { FLAG_FIN } else { 0 });
            f.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            f.extend_from_slice(c);
            self.w.write_all(&f).await?;
        }
        self.w.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.w.shutdown().await
    }
}

/// A stream the client opened: its headers and the data it sends (None once it half-closed
/// or reset the stream).
pub struct Incoming {
    pub id: u32,
    pub headers: Headers,
    pub data: mpsc::Receiver<Vec<u8>>,
}

impl Incoming {
    pub fn kind(&self) -> &str {
        header(&self.headers, "streamtype").unwrap_or("")
    }
}

/// The writing side, shared by every task of the connection.
pub type SharedWriter<W> = Arc<Mutex<Writer<W>>>;

/// Reads the client's frames until the connection ends: each new stream is answered with
/// SYN_REPLY and handed to `streams`; its DATA goes to the stream's channel; PINGs are
/// echoed. Returns when the client closes the connection, sends GOAWAY, or breaks the
/// protocol.
pub async fn serve_frames<R, W>(mut r: R, w: SharedWriter<W>, streams: mpsc::Sender<Incoming>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut inflate = Inflater::new();
    let mut open: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut head = [0u8; 8];
    loop {
        if r.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            tracing::debug!(len, "spdy: frame too large");
            return;
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let fin = flags & FLAG_FIN != 0;
            match open.get(&id) {
                Some(tx) => {
                    // a reader that went away just drops what comes
                    if !body.is_empty() && tx.send(body).await.is_err() {
                        open.remove(&id);
                    }
                }
                None => {
                    let _ = w.lock().await.rst(id, RST_REFUSED).await;
                }
            }
            if fin {
                open.remove(&id);
            }
            continue;
        }
        let typ = u16::from_be_bytes([head[2], head[3]]);
        let id_at = |b: &[u8]| {
            b.get(..4)
                .map(|x| u32::from_be_bytes([x[0] & 0x7f, x[1], x[2], x[3]]))
                .unwrap_or(0)
        };
        match typ {
            SYN_STREAM => {
                if body.len() < 10 {
                    return;
                }
                let id = id_at(&body);
                let headers = match inflate.block(&body[10..]) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::debug!(error = %e, "spdy: SYN_STREAM headers");
                        return;
                    }
                };
                if w.lock().await.syn_reply(id, &[]).await.is_err() {
                    return;
                }
                let (tx, rx) = mpsc::channel(64);
                if flags & FLAG_FIN == 0 {
                    open.insert(id, tx);
                }
                let s = Incoming {
                    id,
                    headers,
                    data: rx,
                };
                if streams.send(s).await.is_err() {
                    return;
                }
            }
            HEADERS => {
                // read to keep the zlib stream in step; nothing in them matters here
                if body.len() >= 4 && inflate.block(&body[4..]).is_err() {
                    return;
                }
                if flags & FLAG_FIN != 0 {
                    open.remove(&id_at(&body));
                }
            }
            RST_STREAM => {
                open.remove(&id_at(&body));
            }
            PING => {
                let id = id_at(&body);
                if w.lock().await.ping(id).await.is_err() {
                    return;
                }
            }
            GOAWAY => return,
            // SETTINGS, WINDOW_UPDATE, a SYN_REPLY to nothing we opened: no state to keep
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_drafts() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b",*,enq=0."));
        // the zlib header's DICTID that peers check
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for &x in d {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[tokio::test]
    async fn header_blocks_round_trip_through_one_stream() {
        let mut w = Writer::new(Vec::new());
        let mut inf = Inflater::new();
        for i in 0..3 {
            let v = format!("value {i}");
            let blk = w.block(&[("streamtype", "stdout"), ("port", &v)]).unwrap();
            let h = inf.block(&blk).unwrap();
            assert_eq!(header(&h, "streamtype"), Some("stdout"));
            assert_eq!(header(&h, "port"), Some(v.as_str()));
        }
    }

    #[tokio::test]
    async fn frames_are_read_replied_and_routed() {
        // a client's SYN_STREAM (headers compressed as a client does), DATA with FIN, a PING
        let mut client = Writer::new(Vec::new());
        let blk = client.block(&[("streamtype", "stdin")]).unwrap();
        let mut wire = Vec::new();
        let mut syn = vec![0x80, 3, 0, 1, 0];
        let body_len = 10 + blk.len();
        syn.extend_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        syn.extend_from_slice(&1u32.to_be_bytes());
        syn.extend_from_slice(&0u32.to_be_bytes());
        syn.extend_from_slice(&[0, 0]);
        syn.extend_from_slice(&blk);
        wire.extend_from_slice(&syn);
        wire.extend_from_slice(&[0, 0, 0, 1, 1, 0, 0, 2, b'h', b'i']);
        wire.extend_from_slice(&[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let w = Arc::new(Mutex::new(Writer::new(ours)));
        let (tx, mut rx) = mpsc::channel(4);
        serve_frames(&wire[..], w.clone(), tx).await;
        let mut s = rx.recv().await.expect("a stream");
        assert_eq!((s.id, s.kind()), (1, "stdin"));
        assert_eq!(s.data.recv().await.as_deref(), Some(&b"hi"[..]));
        assert_eq!(s.data.recv().await, None, "FIN ends the stream");
        w.lock().await.shutdown().await.unwrap();
        drop(w);
        let mut out = Vec::new();
        theirs.read_to_end(&mut out).await.unwrap();
        // SYN_REPLY for stream 1, then the PING echoed
        assert_eq!(&out[..4], &[0x80, 3, 0, 2]);
        assert_eq!(&out[8..12], &1u32.to_be_bytes());
        let ping = &out[out.len() - 12..];
        assert_eq!(ping, &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
    }
}
