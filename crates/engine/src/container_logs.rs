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
struct Line {
    log: String,
    stream: String,
    time: String,
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
    /// Turns one json-file line into the bytes the client gets (None = filtered out).
    fn render(&self, raw: &str) -> Option<Vec<u8>> {
        let l: Line = serde_json::from_str(raw).ok()?;
        let stream = if l.stream == "stderr" { 2 } else { 1 };
        if (stream == 1 && !self.opts.stdout) || (stream == 2 && !self.opts.stderr) {
            return None;
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            let t = parse_rfc3339(&l.time)?;
            if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t > u) {
                return None;
            }
        }
        let mut payload = Vec::new();
        if self.opts.timestamps {
            payload.extend_from_slice(l.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(l.log.as_bytes());
        Some(if self.tty {
            payload
        } else {
            frame(stream, &payload)
        })
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
            let mut rd = BufReader::new(file);
            // Sends what is batched; false once the client is gone.
            let flush = |batch: &mut Vec<u8>| -> bool {
                batch.is_empty() || tx.blocking_send(Bytes::from(std::mem::take(batch))).is_ok()
            };
            let mut batch: Vec<u8> = Vec::new();
            // With --tail N only the last N lines are kept; without, lines stream as read.
            let mut ring: VecDeque<String> = VecDeque::new();
            let mut take = |line: String, batch: &mut Vec<u8>| -> bool {
                match em.opts.tail {
                    Some(0) => true,
                    Some(n) => {
                        if ring.len() == n {
                            ring.pop_front();
                        }
                        ring.push_back(line);
                        true
                    }
                    None => {
                        if let Some(b) = em.render(&line) {
                            batch.extend_from_slice(&b);
                        }
                        batch.len() < 64 * 1024 || flush(batch)
                    }
                }
            };
            let mut partial = String::new();
            for p in &rotated {
                let Ok(f) = std::fs::File::open(p) else {
                    continue;
                };
                let mut r = BufReader::new(f);
                loop {
                    let mut s = String::new();
                    match r.read_line(&mut s) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if s.ends_with('\n') => {
                            if !take(s, &mut batch) {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
            loop {
                let mut s = String::new();
                match rd.read_line(&mut s) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        partial.push_str(&s);
                        if partial.ends_with('\n')
                            && !take(std::mem::take(&mut partial), &mut batch)
                        {
                            return;
                        }
                    }
                }
            }
            for l in ring.drain(..) {
                if let Some(b) = em.render(&l) {
                    batch.extend_from_slice(&b);
                }
                if batch.len() >= 64 * 1024 && !flush(&mut batch) {
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
