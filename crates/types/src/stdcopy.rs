//! docker's multiplexed stream (a non-tty attach or exec): frames of an 8-byte header
//! (stream 0 stdin, 1 stdout, 2 stderr; three zero bytes; a big-endian payload length) and
//! the payload. [`Demux`] takes the stream in pieces as they arrive.

/// Splits frames out of a stream fed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds `data`; `out(stream, payload)` is called for every frame now complete.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 8 {
            let h = &self.buf[pos..pos + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - pos - 8 < len {
                break;
            }
            out(self.buf[pos], &self.buf[pos + 8..pos + 8 + len]);
            pos += 8 + len;
        }
        self.buf.drain(..pos);
    }
}

#[cfg(test)]
mod tests {
    use super::Demux;

    #[test]
    fn frames_split_across_pieces() {
        let mut s = vec![1, 0, 0, 0, 0, 0, 0, 3];
        s.extend_from_slice(b"out");
        s.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        s.extend_from_slice(b"er");
        let mut d = Demux::default();
        let mut got = Vec::new();
        for piece in s.chunks(3) {
            d.feed(piece, &mut |k, p| got.push((k, p.to_vec())));
        }
        assert_eq!(got, vec![(1, b"out".to_vec()), (2, b"er".to_vec())]);
    }
}
