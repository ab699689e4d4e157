//! docker's json-file log: one `{"log":…,"stream":…,"time":…}` object per line.

use std::fs::File;
use std::io::Write;
use std::time::SystemTime;

/// Lines longer than this are logged in pieces (docker does the same at 16 KiB).
const MAX_PARTIAL: usize = 16 * 1024;

pub const STDOUT: usize = 0;
pub const STDERR: usize = 1;

pub struct JsonLog {
    file: Option<File>,
    partial: [Vec<u8>; 2],
    buf: Vec<u8>,
}

impl JsonLog {
    pub fn new(file: Option<File>) -> Self {
        JsonLog {
            file,
            partial: [Vec::new(), Vec::new()],
            buf: Vec::new(),
        }
    }

    /// Logs the complete lines of `data`; keeps a trailing partial line for later.
    pub fn write(&mut self, stream: usize, data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let time = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(i + 1);
            if self.partial[stream].is_empty() {
                encode(&mut self.buf, line, stream, &time);
            } else {
                let mut l = std::mem::take(&mut self.partial[stream]);
                l.extend_from_slice(line);
                encode(&mut self.buf, &l, stream, &time);
            }
            rest = tail;
        }
        self.partial[stream].extend_from_slice(rest);
        if self.partial[stream].len() >= MAX_PARTIAL {
            let l = std::mem::take(&mut self.partial[stream]);
            encode(&mut self.buf, &l, stream, &time);
        }
        self.flush_buf();
    }

    /// At end of stream: logs what is left of unterminated lines.
    pub fn finish(&mut self) {
        if self.file.is_none() {
            return;
        }
        let time = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        for stream in [STDOUT, STDERR] {
            if !self.partial[stream].is_empty() {
                let l = std::mem::take(&mut self.partial[stream]);
                encode(&mut self.buf, &l, stream, &time);
            }
        }
        self.flush_buf();
    }

    fn flush_buf(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(&self.buf) {
                eprintln!("berth-shim: writing log: {e}");
            }
        }
        self.buf.clear();
    }
}

fn encode(out: &mut Vec<u8>, line: &[u8], stream: usize, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape(out, &String::from_utf8_lossy(line));
    out.extend_from_slice(if stream == STDERR {
        b"\",\"stream\":\"stderr\",\"time\":\""
    } else {
        b"\",\"stream\":\"stdout\",\"time\":\""
    });
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// JSON string escaping as docker's encoder does it (including `<`, `>`, `&`).
fn escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_partials() {
        let dir = std::env::temp_dir().join(format!("berth-jsonlog-{}", std::process::id()));
        let f = File::create(&dir).unwrap();
        let mut l = JsonLog::new(Some(f));
        l.write(STDOUT, b"hi\npar");
        l.write(STDERR, b"e\"<\x01\r\n");
        l.write(STDOUT, b"tial\nend");
        l.finish();
        let text = std::fs::read_to_string(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|v| (v["log"].as_str().unwrap(), v["stream"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("hi\n", "stdout"),
                ("e\"<\u{1}\r\n", "stderr"),
                ("partial\n", "stdout"),
                ("end", "stdout")
            ]
        );
        let t = lines[0]["time"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 30, "{t}");
    }
}
