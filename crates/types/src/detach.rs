//! Detach keys: docker's key spec (`ctrl-p,ctrl-q`, `ctrl-a,x`) and the scanner that finds
//! the sequence in a client's input. Both the CLI (client side) and the engine (server side,
//! for API clients that attach with `detachKeys`) use them.

/// The sequence used when none is given: `ctrl-p,ctrl-q`.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Parses docker's key spec into the bytes a terminal sends for it.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in spec.split(',') {
        let lk = k.to_lowercase();
        if let Some(c) = lk.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{c}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Finds a detach sequence in a byte stream read in chunks. Bytes that may start the
/// sequence are held back until the sequence either completes (detach: they are dropped) or
/// breaks (they are passed on, in order, with what follows).
#[derive(Debug, Clone)]
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence completed (what follows it in the
    /// chunk is dropped: the client is leaving).
    pub fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // the held-back prefix was not the sequence after all
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            vec![0, 27, 31]
        );
        assert!(parse_detach_keys("ctrl-foo").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn scanner_detaches_across_chunks_and_passes_broken_prefixes() {
        let mut s = EscapeScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(s.feed(b"a\x10"), (b"a".to_vec(), false));
        assert_eq!(s.feed(b"b"), (b"\x10b".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (vec![], true));
        let mut s = EscapeScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"\x10x\x10\x10\x11"), (b"\x10x\x10".to_vec(), true));
        let mut s = EscapeScanner::new(vec![b'q']);
        assert_eq!(s.feed(b"abq"), (b"ab".to_vec(), true));
        let mut s = EscapeScanner::new(vec![]);
        assert_eq!(s.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
