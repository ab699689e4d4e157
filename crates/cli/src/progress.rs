//! docker's JSON progress stream (jsonmessage) drawn as the docker CLI draws
//! it: on a terminal one line per layer id, redrawn in place (cursor up,
//! erase line, bar, cursor down); otherwise plain lines without the bars.
//! Shared by pull, push, run's auto-pull and load.

use crate::units::go_g_size;
use serde_json::Value;
use std::io::{BufRead, Read, Write};

/// An `errorDetail` of the stream; its text is what docker prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for StreamError {}

/// How the output is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub terminal: bool,
    /// the terminal's width (docker draws the bar only above 110 columns)
    pub width: usize,
}

impl Mode {
    /// The mode for file descriptor `fd` (1 or 2).
    pub fn of_fd(fd: i32) -> Mode {
        let terminal = crate::term::isatty(fd);
        let width = if terminal {
            crate::term::winsize(fd)
                .map(|(_, c)| c as usize)
                .unwrap_or(200)
        } else {
            200
        };
        Mode { terminal, width }
    }
}

struct Detail {
    current: i64,
    total: i64,
    start: i64,
    hide_counts: bool,
    units: String,
}

fn detail(v: &Value) -> Option<Detail> {
    let d = v.get("progressDetail")?;
    if !d.is_object() {
        return None;
    }
    let n = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
    Some(Detail {
        current: n("current"),
        total: n("total"),
        start: n("start"),
        hide_counts: d
            .get("hidecounts")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        units: d
            .get("units")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

fn human(n: i64) -> String {
    go_g_size(n as f64, 4)
}

/// Go's `time.Duration.String()` for whole seconds.
fn go_secs(s: i64) -> String {
    if s <= 0 {
        return "0s".into();
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

/// The bar, counts and time left of a progress detail (docker's `JSONProgress.String`).
fn bar(d: &Detail, width: usize, now: i64) -> String {
    if d.current <= 0 && d.total <= 0 {
        return String::new();
    }
    if d.total <= 0 {
        return if d.units.is_empty() {
            format!("{:>8}", human(d.current))
        } else {
            format!("{} {}", d.current, d.units)
        };
    }
    let pct = (((d.current as f64 / d.total as f64) * 100.0) as i64 / 2).min(50);
    let mut s = String::new();
    if width > 110 {
        let spaces = (50 - pct).max(0) as usize;
        s.push_str(&format!(
            "[{}>{}] ",
            "=".repeat(pct.max(0) as usize),
            " ".repeat(spaces)
        ));
    }
    if !d.hide_counts {
        if d.units.is_empty() {
            if d.current > d.total {
                s.push_str(&format!("{:>8}", human(d.current)));
            } else {
                s.push_str(&format!("{:>8}/{}", human(d.current), human(d.total)));
            }
        } else if d.current > d.total {
            s.push_str(&format!("{} {}", d.current, d.units));
        } else {
            s.push_str(&format!("{}/{} {}", d.current, d.total, d.units));
        }
    }
    if d.current > 0 && d.start > 0 && pct < 50 && width > 50 {
        let elapsed_ns = (now - d.start).max(0) as i128 * 1_000_000_000;
        let per = elapsed_ns / d.current as i128;
        let left = (d.total - d.current) as i128 * per / 1_000_000_000;
        s.push(' ');
        s.push_str(&go_secs(left as i64));
    }
    s
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Draws one stream onto `out`. `aux` gets each `aux` object (push digests,
/// build ids). Returns the stream's error, if it sent one, as docker
/// reports it (`authentication is required` for code 401).
pub fn display<R: Read, W: Write>(
    input: R,
    out: &mut W,
    mode: Mode,
    mut aux: impl FnMut(&Value),
) -> std::io::Result<Result<(), StreamError>> {
    let reader = std::io::BufReader::new(input);
    // id → line number among the lines drawn since the last plain message
    let mut ids: Vec<String> = Vec::new();
    for line in reader.lines() {
        // a daemon gone mid-stream: Go's decoder says "unexpected EOF"
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                out.flush()?;
                return Ok(Err(StreamError {
                    code: 0,
                    message: "unexpected EOF".into(),
                }));
            }
            Err(e) => return Err(e),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return Ok(Err(StreamError {
                code: 0,
                message: format!("invalid character in the progress stream: {line}"),
            }));
        };
        if let Some(a) = v.get("aux").filter(|a| !a.is_null()) {
            aux(a);
            continue;
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        let id = s("id");
        let progress_msg = s("progress");
        let det = detail(&v);
        let mut diff = 0;
        if !id.is_empty() && (det.is_some() || !progress_msg.is_empty()) {
            let line_no = match ids.iter().position(|i| i == id) {
                Some(n) => n,
                None => {
                    ids.push(id.to_string());
                    if mode.terminal {
                        out.write_all(b"\n")?;
                    }
                    ids.len() - 1
                }
            };
            diff = ids.len() - line_no;
            if mode.terminal && diff > 0 {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            ids.clear();
        }
        // display
        if let Some(e) = v.get("errorDetail").filter(|e| !e.is_null()) {
            let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = if code == 401 {
                "authentication is required".to_string()
            } else {
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if !id.is_empty() && mode.terminal && diff > 0 {
                write!(out, "\x1b[{diff}B")?;
            }
            out.flush()?;
            return Ok(Err(StreamError { code, message }));
        }
        let stream = s("stream");
        let status = s("status");
        let bar_text = det
            .as_ref()
            .map(|d| bar(d, mode.width, now_secs()))
            .unwrap_or_default();
        let mut endl = "";
        let mut skip = false;
        if mode.terminal && stream.is_empty() && det.is_some() {
            out.write_all(b"\x1b[2K\r")?;
            endl = "\r";
        } else if det.is_some() && !bar_text.is_empty() {
            skip = true;
        }
        if !skip {
            let mut text = String::new();
            if !id.is_empty() {
                text.push_str(id);
                text.push_str(": ");
            }
            let from = s("from");
            if !from.is_empty() {
                text.push_str(&format!("(from {from}) "));
            }
            if det.is_some() && mode.terminal {
                text.push_str(&format!("{status} {bar_text}{endl}"));
            } else if !progress_msg.is_empty() {
                text.push_str(&format!("{status} {progress_msg}{endl}"));
            } else if !stream.is_empty() {
                text.push_str(&format!("{stream}{endl}"));
            } else {
                text.push_str(&format!("{status}{endl}\n"));
            }
            out.write_all(text.as_bytes())?;
        }
        if !id.is_empty() && mode.terminal && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        out.flush()?;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pull stream as dockerd 20.10 sent it for a one-layer image.
    const PULL: &str = r#"{"status":"Pulling from bb","id":"1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"d5f11ead63f6"}
{"status":"Downloading","progressDetail":{"current":36445,"total":1068925},"progress":"[=\u003e                                                 ]  36.45kB/1.069MB","id":"d5f11ead63f6"}
{"status":"Verifying Checksum","progressDetail":{},"id":"d5f11ead63f6"}
{"status":"Download complete","progressDetail":{},"id":"d5f11ead63f6"}
{"status":"Extracting","progressDetail":{"current":98304,"total":1068925},"progress":"[====\u003e                                              ]   98.3kB/1.069MB","id":"d5f11ead63f6"}
{"status":"Pull complete","progressDetail":{},"id":"d5f11ead63f6"}
{"status":"Digest: sha256:3eabb289dbf4b2020a67b0d77c9132da0762b8ab688464f8faaa9cccc9dcaa29"}
{"status":"Status: Downloaded newer image for 127.0.0.1:42871/bb:1"}
"#;

    fn run(input: &str, mode: Mode) -> (String, Result<(), StreamError>) {
        let mut out = Vec::new();
        let r = display(input.as_bytes(), &mut out, mode, |_| {}).unwrap();
        (String::from_utf8(out).unwrap(), r)
    }

    #[test]
    fn plain_lines_without_bars() {
        let (out, r) = run(
            PULL,
            Mode {
                terminal: false,
                width: 200,
            },
        );
        assert!(r.is_ok());
        assert_eq!(
            out,
            "1: Pulling from bb\nd5f11ead63f6: Pulling fs layer\nd5f11ead63f6: Verifying Checksum\n\
             d5f11ead63f6: Download complete\nd5f11ead63f6: Pull complete\n\
             Digest: sha256:3eabb289dbf4b2020a67b0d77c9132da0762b8ab688464f8faaa9cccc9dcaa29\n\
             Status: Downloaded newer image for 127.0.0.1:42871/bb:1\n"
        );
    }

    #[test]
    fn terminal_redraws_in_place() {
        // the bytes docker 28 wrote to a 120-column pty for the same stream
        let (out, _) = run(
            PULL,
            Mode {
                terminal: true,
                width: 120,
            },
        );
        let want = "1: Pulling from bb\n\n\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Pulling fs layer \r\x1b[1B\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Downloading [=>                                                 ]  36.45kB/1.069MB\r\x1b[1B\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Verifying Checksum \r\x1b[1B\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Download complete \r\x1b[1B\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Extracting [====>                                              ]   98.3kB/1.069MB\r\x1b[1B\
            \x1b[1A\x1b[2K\rd5f11ead63f6: Pull complete \r\x1b[1B\
            Digest: sha256:3eabb289dbf4b2020a67b0d77c9132da0762b8ab688464f8faaa9cccc9dcaa29\n\
            Status: Downloaded newer image for 127.0.0.1:42871/bb:1\n";
        assert_eq!(out, want);
        // narrow terminals get no bar
        let (out, _) = run(
            PULL,
            Mode {
                terminal: true,
                width: 80,
            },
        );
        assert!(out.contains("Downloading  36.45kB/1.069MB\r"), "{out:?}");
    }

    #[test]
    fn two_layers_move_the_cursor_by_their_distance() {
        let s = r#"{"status":"Preparing","progressDetail":{},"id":"aaa"}
{"status":"Preparing","progressDetail":{},"id":"bbb"}
{"status":"Pushed","progressDetail":{},"id":"aaa"}
"#;
        let (out, _) = run(
            s,
            Mode {
                terminal: true,
                width: 200,
            },
        );
        assert_eq!(
            out,
            "\n\x1b[1A\x1b[2K\raaa: Preparing \r\x1b[1B\n\x1b[1A\x1b[2K\rbbb: Preparing \r\x1b[1B\
             \x1b[2A\x1b[2K\raaa: Pushed \r\x1b[2B"
        );
    }

    #[test]
    fn a_stream_cut_short_is_unexpected_eof() {
        let raw = b"27\r\n{\"status\":\"Pulling from bb\",\"id\":\"1\"}\r\n\r\n5\r\n{\"sta";
        let body = crate::http::Body::new(
            std::io::Cursor::new(raw.to_vec()),
            crate::http::Framing::Chunked,
        );
        let mut out = Vec::new();
        let r = display(
            body,
            &mut out,
            Mode {
                terminal: false,
                width: 200,
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1: Pulling from bb\n");
        assert_eq!(r.unwrap_err().message, "unexpected EOF");
    }

    #[test]
    fn errors_aux_and_units() {
        let s = r#"{"status":"The push refers to repository [x]"}
{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:ab","Size":527}}
{"errorDetail":{"message":"An image does not exist locally with the tag: x"},"error":"An image does not exist locally with the tag: x"}
{"status":"never shown"}
"#;
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let r = display(
            s.as_bytes(),
            &mut out,
            Mode {
                terminal: false,
                width: 200,
            },
            |a| seen.push(a["Digest"].as_str().unwrap_or("").to_string()),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "The push refers to repository [x]\n"
        );
        assert_eq!(seen, ["sha256:ab"]);
        assert_eq!(
            r.unwrap_err().message,
            "An image does not exist locally with the tag: x"
        );
        let (_, r) = run(
            r#"{"errorDetail":{"code":401,"message":"x"}}"#,
            Mode {
                terminal: false,
                width: 200,
            },
        );
        assert_eq!(r.unwrap_err().message, "authentication is required");
        let d = Detail {
            current: 1500,
            total: 0,
            start: 0,
            hide_counts: false,
            units: String::new(),
        };
        assert_eq!(bar(&d, 200, 0), "   1.5kB");
        let d = Detail {
            current: 25,
            total: 100,
            start: 100,
            hide_counts: false,
            units: String::new(),
        };
        assert_eq!(
            bar(&d, 200, 110),
            "[============>                                      ]      25B/100B 30s"
        );
        let d = Detail {
            current: 3,
            total: 7,
            start: 0,
            hide_counts: false,
            units: "files".into(),
        };
        assert_eq!(bar(&d, 100, 0), "3/7 files");
    }
}
