//! A byte-level fix between the CRI socket and the gRPC server: grpc-go clients of the
//! kubelet 1.26 era (crictl, critest, kubelet) send the unix socket's *path* as the HTTP/2
//! `:authority`, which the `h2` crate refuses as malformed (the stream is reset with
//! PROTOCOL_ERROR before tonic sees it). The client's HEADERS frames are read here and an
//! `:authority` literal is replaced by a plain (not Huffman-coded) `localhost` — or `x` when
//! the original might be shorter — before h2 decodes them.
//!
//! The replacement is never longer than the original value, so the server's HPACK dynamic
//! table holds every entry the client's encoder still counts on, at the same index: entries
//! are only ever evicted from the old end, and a smaller entry is evicted later, not sooner.
//! Everything else (frames of other types, other header fields) passes unchanged; a header
//! block split over CONTINUATION frames also passes unchanged.

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Rewrites the client-to-server byte stream of one connection.
#[derive(Default)]
pub struct Rewriter {
    buf: Vec<u8>,
    preface_seen: bool,
    /// not HTTP/2 as expected: pass everything on untouched
    passthrough: bool,
}

impl Rewriter {
    /// Takes bytes from the client; appends what may go on to the server to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.passthrough {
            out.extend_from_slice(data);
            return;
        }
        self.buf.extend_from_slice(data);
        if !self.preface_seen {
            if self.buf.len() < PREFACE.len() {
                if !PREFACE.starts_with(&self.buf) {
                    self.passthrough = true;
                    out.append(&mut self.buf);
                }
                return;
            }
            if &self.buf[..PREFACE.len()] != PREFACE {
                self.passthrough = true;
                out.append(&mut self.buf);
                return;
            }
            out.extend_from_slice(PREFACE);
            self.buf.drain(..PREFACE.len());
            self.preface_seen = true;
        }
        let mut at = 0;
        while self.buf.len() - at >= 9 {
            let f = &self.buf[at..];
            let len = (usize::from(f[0]) << 16) | (usize::from(f[1]) << 8) | usize::from(f[2]);
            if f.len() < 9 + len {
                break;
            }
            let frame = &f[..9 + len];
            match (frame[3] == HEADERS && frame[4] & END_HEADERS != 0)
                .then(|| rewrite_headers_frame(frame))
                .flatten()
            {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(frame),
            }
            at += 9 + len;
        }
        self.buf.drain(..at);
    }
}

/// A HEADERS frame with its `:authority` replaced, or `None` when nothing changes.
fn rewrite_headers_frame(frame: &[u8]) -> Option<Vec<u8>> {
    let flags = frame[4];
    let payload = &frame[9..];
    let mut start = 0;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(*payload.first()?);
        start = 1;
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    if start + pad > payload.len() {
        return None;
    }
    let block = &payload[start..payload.len() - pad];
    let new_block = rewrite_block(block)?;
    let new_len = start + new_block.len() + pad;
    if new_len >= 1 << 24 {
        return None;
    }
    let mut out = Vec::with_capacity(9 + new_len);
    out.extend_from_slice(&[(new_len >> 16) as u8, (new_len >> 8) as u8, new_len as u8]);
    out.extend_from_slice(&frame[3..9]);
    out.extend_from_slice(&payload[..start]);
    out.extend_from_slice(&new_block);
    out.extend_from_slice(&payload[payload.len() - pad..]);
    Some(out)
}

/// An HPACK integer with an `n`-bit prefix at `b[*i]`; advances `i`.
fn read_int(b: &[u8], i: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*b.get(*i)?) & max;
    *i += 1;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v = v.checked_add(usize::from(byte & 0x7f).checked_shl(shift)?)?;
        shift += 7;
        if byte & 0x80 == 0 || shift > 28 {
            return (byte & 0x80 == 0).then_some(v);
        }
    }
}

/// An HPACK string literal at `b[*i]`: (Huffman-coded?, its bytes); advances `i`.
fn read_str<'a>(b: &'a [u8], i: &mut usize) -> Option<(bool, &'a [u8])> {
    let huff = *b.get(*i)? & 0x80 != 0;
    let len = read_int(b, i, 7)?;
    let s = b.get(*i..i.checked_add(len)?)?;
    *i += len;
    Some((huff, s))
}

/// The header block with each `:authority` literal replaced; `None`: nothing to change or a
/// block this code does not follow (h2 then judges it as sent).
pub fn rewrite_block(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let first = b[i];
        let begin = i;
        let prefix = if first & 0x80 != 0 {
            read_int(b, &mut i, 7)?;
            out.extend_from_slice(&b[begin..i]);
            continue;
        } else if first & 0x40 != 0 {
            6
        } else if first & 0x20 != 0 {
            read_int(b, &mut i, 5)?;
            out.extend_from_slice(&b[begin..i]);
            continue;
        } else {
            4
        };
        let index = read_int(b, &mut i, prefix)?;
        let is_authority = if index == 0 {
            let (huff, name) = read_str(b, &mut i)?;
            !huff && name == b":authority"
        } else {
            index == 1
        };
        let name_end = i;
        let (huff, value) = read_str(b, &mut i)?;
        let bad = huff || value.iter().any(|c| matches!(c, b'/' | b'%' | b' '));
        if is_authority && bad && !value.is_empty() {
            // a Huffman code is at most 30 bits a character
            let min_len = if huff {
                (value.len() * 8).div_ceil(30)
            } else {
                value.len()
            };
            let new: &[u8] = if min_len >= 9 { b"localhost" } else { b"x" };
            out.extend_from_slice(&b[begin..name_end]);
            out.push(new.len() as u8);
            out.extend_from_slice(new);
            changed = true;
        } else {
            out.extend_from_slice(&b[begin..i]);
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// crictl 1.26's first HEADERS frame on `unix:///tmp/capcri.sock` (captured).
    const CAPTURED: &str = "000075010400000001838645\
        9962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf\
        418c6134d6c107592c32e8393aff\
        5f8b1d75d0620d263d4c4d65647a8a9acac8b4c7602bb615c140027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f860befbe27d9b7";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn authority_of_a_captured_request_is_replaced() {
        let frame = unhex(CAPTURED);
        assert_eq!(frame.len(), 9 + 0x75);
        let mut w = Rewriter::default();
        let mut out = Vec::new();
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        input.extend_from_slice(&frame);
        // fed in awkward pieces
        for chunk in input.chunks(7) {
            w.feed(chunk, &mut out);
        }
        assert!(out.starts_with(PREFACE));
        let f = &out[PREFACE.len() + 9..];
        let len = (usize::from(f[0]) << 16) | (usize::from(f[1]) << 8) | usize::from(f[2]);
        assert_eq!(f.len(), 9 + len);
        let block = &f[9..];
        // :method, :scheme and :path as sent, then `:authority: x` (12 Huffman bytes may be
        // as few as 4 characters), then the rest
        assert_eq!(&block[..3], &[0x83, 0x86, 0x45]);
        let auth = block.windows(3).position(|w| w == b"\x41\x01x");
        assert!(auth.is_some(), "{block:02x?}");
        assert!(block.ends_with(&frame[frame.len() - 20..]));
        // nothing to change: the same frame again passes untouched
        let mut out2 = Vec::new();
        let plain = rewrite_headers_frame(&f[..9 + len]);
        assert!(plain.is_none());
        w.feed(&f[..9 + len], &mut out2);
        assert_eq!(out2, &f[..9 + len]);
    }

    #[test]
    fn other_streams_pass() {
        let mut w = Rewriter::default();
        let mut out = Vec::new();
        w.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        // a short Huffman authority becomes `x`; a valid plain one stays
        let b = [0x41, 0x82, 0xaa, 0xbb];
        assert_eq!(rewrite_block(&b).unwrap(), [0x41, 1, b'x']);
        let mut long = vec![0x41, 0xa2];
        long.extend_from_slice(&[0x63; 34]);
        assert_eq!(rewrite_block(&long).unwrap(), b"\x41\x09localhost");
        let path = b"\x41\x0b/run/x.sock";
        assert_eq!(rewrite_block(path).unwrap(), b"\x41\x09localhost");
        let b = [
            0x41, 0x09, b'l', b'o', b'c', b'a', b'l', b'h', b'o', b's', b't',
        ];
        assert!(rewrite_block(&b).is_none());
        assert!(rewrite_block(&[0x41, 0x85, 0]).is_none());
    }
}
