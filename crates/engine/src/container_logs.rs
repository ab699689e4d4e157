//! `logs`: read docker's json-file log back, framed (no tty) or raw (tty), with follow.

use crate::container::Status;
use crate::timefmt::parse_rfc3339;
use crate::{Engine, Result};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// None = all
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

#[derive(serde::Deserialize)]
struct Line<'a> {
    log: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    time: std::borrow::Cow<'a, str>,
}

/// Decodes a JSON string body (without quotes), copying the runs between escapes whole.
fn json_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = rest.as_bytes().get(i + 1)?;
        rest = &rest[i + 2..];
        match esc {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'/' => out.push('/'),
            b'\\' => out.push('\\'),
            b'"' => out.push('"'),
            b'u' => {
                let mut cp = u32::from_str_radix(rest.get(..4)?, 16).ok()?;
                rest = &rest[4..];
                if (0xD800..0xDC00).contains(&cp) {
                    // a surrogate pair: \uD83D\uDE00
                    let lo = rest.strip_prefix("\\u")?;
                    let lo_cp = u32::from_str_radix(lo.get(..4)?, 16).ok()?;
                    rest = &lo[4..];
                    cp = 0x10000 + ((cp - 0xD800) << 10) + lo_cp.checked_sub(0xDC00)?;
                }
                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            _ => return None,
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The shim's own line shape, `{"log":"…","stream":"…","time":"…"}`, read without a JSON
/// parser (the escaped log text cannot contain `","stream":"`); anything else goes to serde.
fn parse_line(raw: &str) -> Option<Line<'_>> {
    let fast = (|| {
        let body = raw.trim_end().strip_prefix("{\"log\":\"")?;
        let (log, rest) = body.rsplit_once("\",\"stream\":\"")?;
        let (stream, rest) = rest.split_once("\",\"time\":\"")?;
        let time = rest.strip_suffix("\"}")?;
        if stream.contains('"') || time.contains('"') {
            return None;
        }
        let log = if log.contains('\\') {
            json_unescape(log)?.into()
        } else {
            log.into()
        };
        Some(Line {
            log,
            stream: stream.into(),
            time: time.into(),
        })
    })();
    fast.or_else(|| serde_json::from_str(raw).ok())
}

/// One stdcopy frame: stream byte, three zero bytes, big-endian length, payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

struct Emitter {
    opts: LogsOptions,
    tty: bool,
}

impl Emitter {
    /// Appends what the client gets for one json-file line to `out` (nothing if filtered out).
    fn render_into(&self, raw: &str, out: &mut Vec<u8>) {
        let Some(l) = parse_line(raw) else { return };
        let stream = if l.stream == "stderr" { 2 } else { 1 };
        if (stream == 1 && !self.opts.stdout) || (stream == 2 && !self.opts.stderr) {
            return;
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            let Some(t) = parse_rfc3339(&l.time) else {
                return;
            };
            if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t > u) {
                return;
            }
        }
        let ts = if self.opts.timestamps {
            l.time.len() + 1
        } else {
            0
        };
        if !self.tty {
            out.extend_from_slice(&[stream, 0, 0, 0]);
            out.extend_from_slice(&((ts + l.log.len()) as u32).to_be_bytes());
        }
        if self.opts.timestamps {
            out.extend_from_slice(l.time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(l.log.as_bytes());
    }

    /// One line rendered on its own (tests, follow mode).
    fn render(&self, raw: &str) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        self.render_into(raw, &mut v);
        (!v.is_empty()).then_some(v)
    }
}

impl Engine {
    pub fn logs(
        self: &Arc<Self>,
        name_or_id: &str,
        opts: LogsOptions,
    ) -> Result<mpsc::Receiver<Bytes>> {
        let c = self.get_container(name_or_id)?;
        let rec = c.record();
        if rec.host_config.log_config.kind == "none" {
            return Err(crate::Error::InvalidParameter(
                "configured logging driver does not support reading".into(),
            ));
        }
        let tty = rec.config.tty;
        let path = self.log_path(&c.id);
        // rotated files first, oldest first: <log>.N … <log>.1
        let mut rotated = Vec::new();
        for i in (1..100).rev() {
            let p = std::path::PathBuf::from(format!("{}.{i}", path.display()));
            if p.exists() {
                rotated.push(p);
            }
        }
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let engine = self.clone();
        let em = Emitter { opts, tty };
        tokio::task::spawn_blocking(move || {
            let Ok(file) = std::fs::File::open(&path) else {
                return;
            };
            let mut rd = BufReader::with_capacity(1 << 20, file);
            // Sends what is batched; false once the client is gone.
            let flush = |batch: &mut Vec<u8>| -> bool {
                batch.is_empty() || tx.blocking_send(Bytes::from(std::mem::take(batch))).is_ok()
            };
            let mut batch: Vec<u8> = Vec::new();
            // With --tail N only the last N lines are kept; without, lines stream as read.
            let mut ring: VecDeque<String> = VecDeque::new();
            let mut take = |line: &str, batch: &mut Vec<u8>| -> bool {
                match em.opts.tail {
                    Some(0) => true,
                    Some(n) => {
                        if ring.len() == n {
                            ring.pop_front();
                        }
                        ring.push_back(line.to_string());
                        true
                    }
                    None => {
                        em.render_into(line, batch);
                        batch.len() < 1024 * 1024 || flush(batch)
                    }
                }
            };
            let mut partial = String::new();
            for p in &rotated {
                let Ok(f) = std::fs::File::open(p) else {
                    continue;
                };
                let mut r = BufReader::with_capacity(1 << 20, f);
                let mut s = String::new();
                loop {
                    s.clear();
                    match r.read_line(&mut s) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if s.ends_with('\n') => {
                            if !take(&s, &mut batch) {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
            let mut s = String::new();
            loop {
                s.clear();
                match rd.read_line(&mut s) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if partial.is_empty() && s.ends_with('\n') => {
                        if !take(&s, &mut batch) {
                            return;
                        }
                    }
                    Ok(_) => {
                        partial.push_str(&s);
                        if partial.ends_with('\n')
                            && !take(&std::mem::take(&mut partial), &mut batch)
                        {
                            return;
                        }
                    }
                }
            }
            for l in ring.drain(..) {
                em.render_into(&l, &mut batch);
                if batch.len() >= 1024 * 1024 && !flush(&mut batch) {
                    return;
                }
            }
            if !flush(&mut batch) || !em.opts.follow {
                return;
            }
            let Ok(c) = engine.get_container(&c.id) else {
                return;
            };
            let mut last_round = false;
            use std::os::unix::fs::MetadataExt;
            let mut ino = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
            loop {
                let pos = rd.stream_position().unwrap_or(0);
                // rotated or truncated under us: continue with the new file from its start
                if let Ok(m) = std::fs::metadata(&path) {
                    if m.ino() != ino || m.len() < pos {
                        if let Ok(f) = std::fs::File::open(&path) {
                            rd = BufReader::new(f);
                            ino = m.ino();
                        }
                    }
                }
                loop {
                    let mut s = String::new();
                    match rd.read_line(&mut s) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            partial.push_str(&s);
                            if partial.ends_with('\n') {
                                if let Some(b) = em.render(&std::mem::take(&mut partial)) {
                                    if tx.blocking_send(Bytes::from(b)).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                }
                if last_round || tx.is_closed() {
                    return;
                }
                let st = c.state().status;
                if !st.is_running() && st != Status::Created {
                    last_round = true; // one more read for lines written just before the exit
                    continue;
                }
                if let Some(u) = em.opts.until {
                    if SystemTime::now() > u {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_line_parser_agrees_with_serde() {
        for raw in [
            r#"{"log":"hi\n","stream":"stdout","time":"2026-11-22T10:30:35.199492555Z"}"#,
            r#"{"log":"q\"uote \\ tab\t \u001b[0m \ud83d\ude00\r\n","stream":"stderr","time":"2026-11-22T10:30:35Z"}"#,
            r#"{"log":"\",\"stream\":\"x","stream":"stdout","time":"t"}"#,
        ] {
            let fast = parse_line(raw).unwrap();
            let slow: Line = serde_json::from_str(raw).unwrap();
            assert_eq!(
                (fast.log, fast.stream, fast.time),
                (slow.log, slow.stream, slow.time),
                "{raw}"
            );
        }
        assert!(parse_line("not json").is_none());
    }

    #[test]
    fn frames_and_filters() {
        let em = Emitter {
            opts: LogsOptions {
                stdout: true,
                stderr: false,
                ..Default::default()
            },
            tty: false,
        };
        let out = em
            .render(r#"{"log":"hi\n","stream":"stdout","time":"2026-11-22T10:30:35.199492555Z"}"#)
            .unwrap();
        assert_eq!(out, [&[1u8, 0, 0, 0, 0, 0, 0, 3][..], b"hi\n"].concat());
        assert!(em
            .render(r#"{"log":"e\n","stream":"stderr","time":"2026-11-22T10:30:35Z"}"#)
            .is_none());
        let em = Emitter {
            opts: LogsOptions {
                stdout: true,
                timestamps: true,
                ..Default::default()
            },
            tty: true,
        };
        let out = em
            .render(r#"{"log":"x\n","stream":"stdout","time":"2026-11-22T10:30:35Z"}"#)
            .unwrap();
        assert_eq!(out, b"2026-11-22T10:30:35Z x\n");
    }
}
