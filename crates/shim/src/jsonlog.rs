//! docker's json-file log: one `{"log":…,"stream":…,"time":…}` object per line; or, for CRI
//! containers, kubelet's format: `<RFC3339Nano> stdout|stderr F|P <line>` (`P`: a partial
//! line, continued by the next entry; `F`: its end).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

/// Lines longer than this are logged in pieces (docker does the same at 16 KiB).
const MAX_PARTIAL: usize = 16 * 1024;

pub const STDOUT: usize = 0;
pub const STDERR: usize = 1;

pub struct JsonLog {
    file: Option<File>,
    /// (path, max size, max files) when rotating
    rotate: Option<(PathBuf, u64, u32)>,
    size: u64,
    partial: [Vec<u8>; 2],
    buf: Vec<u8>,
    cri: bool,
    /// the file's path, for [`JsonLog::reopen`]
    path: Option<PathBuf>,
}

impl JsonLog {
    pub fn new(file: Option<File>) -> Self {
        JsonLog {
            file,
            rotate: None,
            size: 0,
            partial: [Vec::new(), Vec::new()],
            buf: Vec::new(),
            cri: false,
            path: None,
        }
    }

    /// Remembers the file's path (for [`JsonLog::reopen`]).
    pub fn with_path(mut self, path: Option<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// Opens the log's path afresh (kubelet renamed the file away and asks for a new one);
    /// lines written so far stay in the old file.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        let Some(p) = &self.path else {
            return Err(std::io::Error::other("the container has no log file"));
        };
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?;
        self.size = f.metadata().map_or(0, |m| m.len());
        self.file = Some(f);
        Ok(())
    }

    /// Writes the CRI log format instead of json-file.
    pub fn cri(mut self, on: bool) -> Self {
        self.cri = on;
        self
    }

    fn encode(&mut self, line: &[u8], stream: usize, time: &str) {
        if self.cri {
            encode_cri(&mut self.buf, line, stream, time)
        } else {
            encode(&mut self.buf, line, stream, time)
        }
    }

    /// Rotates `path` (the file's name) once it would exceed `max_size` bytes, keeping
    /// `max_file` files in all (1 = truncate in place).
    pub fn with_rotation(mut self, path: PathBuf, max_size: u64, max_file: u32) -> Self {
        if max_size > 0 {
            self.size = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            self.rotate = Some((path, max_size, max_file.max(1)));
        }
        self
    }

    fn rotate_if_needed(&mut self, incoming: u64) -> std::io::Result<()> {
        let Some((path, max, n)) = &self.rotate else {
            return Ok(());
        };
        if self.size == 0 || self.size + incoming <= *max {
            return Ok(());
        }
        if *n == 1 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
        } else {
            let name = |i: u32| {
                let mut p = path.as_os_str().to_owned();
                p.push(format!(".{i}"));
                PathBuf::from(p)
            };
            for i in (1..*n - 1).rev() {
                match std::fs::rename(name(i), name(i + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(path, name(1))?;
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            );
        }
        self.size = 0;
        Ok(())
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
                self.encode(line, stream, &time);
            } else {
                let mut l = std::mem::take(&mut self.partial[stream]);
                l.extend_from_slice(line);
                self.encode(&l, stream, &time);
            }
            rest = tail;
        }
        self.partial[stream].extend_from_slice(rest);
        if self.partial[stream].len() >= MAX_PARTIAL {
            let l = std::mem::take(&mut self.partial[stream]);
            self.encode(&l, stream, &time);
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
                self.encode(&l, stream, &time);
            }
        }
        self.flush_buf();
    }

    fn flush_buf(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        if self.rotate.is_none() {
            self.write_entries(&buf);
        } else {
            // one entry (one line: newlines inside are escaped) at a time, so that rotation
            // happens between entries and no file exceeds the maximum
            for entry in buf.split_inclusive(|&b| b == b'\n') {
                self.write_entries(entry);
            }
        }
        self.buf = buf;
        self.buf.clear();
    }

    fn write_entries(&mut self, data: &[u8]) {
        if let Err(e) = self.rotate_if_needed(data.len() as u64) {
            eprintln!("berth-shim: rotating log: {e}");
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(data) {
                eprintln!("berth-shim: writing log: {e}");
            }
            self.size += data.len() as u64;
        }
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

/// One CRI log entry: a line with its newline is a full one (`F`), without a partial one
/// (`P`, the rest follows in the next entry).
fn encode_cri(out: &mut Vec<u8>, line: &[u8], stream: usize, time: &str) {
    let (body, tag) = match line.strip_suffix(b"\n") {
        Some(b) => (b, "F"),
        None => (line, "P"),
    };
    let name = if stream == STDERR { "stderr" } else { "stdout" };
    out.extend_from_slice(format!("{time} {name} {tag} ").as_bytes());
    out.extend_from_slice(body);
    out.push(b'\n');
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
    fn reopen_starts_a_new_file() {
        let p = std::env::temp_dir().join(format!("berth-reopen-{}", std::process::id()));
        let old = p.with_extension("old");
        let mut l = JsonLog::new(Some(File::create(&p).unwrap()))
            .cri(true)
            .with_path(Some(p.clone()));
        l.write(STDOUT, b"one\n");
        std::fs::rename(&p, &old).unwrap();
        l.reopen().unwrap();
        l.write(STDOUT, b"two\n");
        let (a, b) = (
            std::fs::read_to_string(&old).unwrap(),
            std::fs::read_to_string(&p).unwrap(),
        );
        std::fs::remove_file(&old).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert!(a.ends_with(" stdout F one\n") && !a.contains("two"), "{a}");
        assert!(b.ends_with(" stdout F two\n") && !b.contains("one"), "{b}");
        assert!(JsonLog::new(None).reopen().is_err());
    }

    #[test]
    fn cri_format() {
        let p = std::env::temp_dir().join(format!("berth-crilog-{}", std::process::id()));
        let mut l = JsonLog::new(Some(File::create(&p).unwrap())).cri(true);
        l.write(STDOUT, b"hello\nwor");
        l.write(STDERR, b"oops\n");
        l.write(STDOUT, b"ld\n");
        l.write(STDOUT, b"tail");
        l.finish();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let got: Vec<(&str, &str, &str)> = text
            .lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                let t = it.next().unwrap();
                assert!(humantime::parse_rfc3339(t).is_ok(), "{t}");
                (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "F", "hello"),
                ("stderr", "F", "oops"),
                ("stdout", "F", "world"),
                ("stdout", "P", "tail")
            ]
        );
    }

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

#[cfg(test)]
mod rotation_tests {
    use super::*;

    fn setup(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-rot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("log")
    }

    fn open(p: &PathBuf) -> File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    }

    #[test]
    fn rotates_keeping_n_files() {
        let p = setup("n3");
        let mut l = JsonLog::new(Some(open(&p))).with_rotation(p.clone(), 200, 3);
        for i in 0..20 {
            l.write(STDOUT, format!("line {i}\n").as_bytes());
        }
        let read = |s: &str| std::fs::read_to_string(p.with_file_name(s)).unwrap_or_default();
        for f in ["log", "log.1", "log.2"] {
            let t = read(f);
            assert!(!t.is_empty() && t.len() <= 200, "{f}: {t}");
        }
        assert!(!p.with_file_name("log.3").exists());
        assert!(read("log").contains("line 19"));
        assert!(!read("log.2").contains("line 0\\n"));
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn one_file_truncates() {
        let p = setup("n1");
        let mut l = JsonLog::new(Some(open(&p))).with_rotation(p.clone(), 200, 1);
        for i in 0..20 {
            l.write(STDOUT, format!("line {i}\n").as_bytes());
        }
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.len() <= 200 && t.contains("line 19"), "{t}");
        assert!(!p.with_file_name("log.1").exists());
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}
