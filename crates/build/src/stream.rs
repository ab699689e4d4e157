//! docker's JSON message stream of a build: one JSON object per line (`{"stream":…}`,
//! `{"aux":{"ID":…}}`, `{"errorDetail":…,"error":…}`, pull progress passed through), with
//! Go's HTML-safe escaping of `<`, `>` and `&` as dockerd writes them.

use serde_json::{json, Value};

/// Where the build's messages go. `send` returns false once the client is gone: the build
/// stops at the next step.
pub trait Output: Send {
    fn send(&mut self, line: Vec<u8>) -> bool;
}

/// Collects lines (tests, and `q=1` which keeps the output for the error case).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Vec<u8>>);

impl Output for Collect {
    fn send(&mut self, line: Vec<u8>) -> bool {
        self.0.push(line);
        true
    }
}

impl Collect {
    /// The concatenated `stream` texts.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.0 {
            if let Ok(v) = serde_json::from_slice::<Value>(l) {
                if let Some(t) = v.get("stream").and_then(Value::as_str) {
                    s.push_str(t);
                }
            }
        }
        s
    }
}

/// One encoded line (with `\r\n`, as dockerd ends them).
pub fn encode(v: &Value) -> Vec<u8> {
    let s = serde_json::to_string(v).unwrap_or_default();
    let mut out = Vec::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub fn stream(text: &str) -> Vec<u8> {
    encode(&json!({ "stream": text }))
}

pub fn aux_id(id: &str) -> Vec<u8> {
    encode(&json!({"aux": {"ID": id}}))
}

/// `{"errorDetail":{"code":N,"message":m},"error":m}` (no `code` when 0).
pub fn error(message: &str, code: i64) -> Vec<u8> {
    let detail = if code != 0 {
        json!({"code": code, "message": message})
    } else {
        json!({"message": message})
    };
    encode(&json!({"errorDetail": detail, "error": message}))
}

/// The 12-hex short form of an ID (`sha256:` dropped).
pub fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_like_go() {
        assert_eq!(
            stream(" ---> 0a6cddc12eb1\n"),
            b"{\"stream\":\" ---\\u003e 0a6cddc12eb1\\n\"}\r\n".to_vec()
        );
        let e = String::from_utf8(error(
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
            3,
        ))
        .unwrap();
        assert_eq!(e, "{\"error\":\"The command '/bin/sh -c exit 3' returned a non-zero code: 3\",\"errorDetail\":{\"code\":3,\"message\":\"The command '/bin/sh -c exit 3' returned a non-zero code: 3\"}}\r\n");
        assert!(!String::from_utf8(error("x", 0)).unwrap().contains("code"));
        assert_eq!(short("sha256:b2ca9c03a6ff8cbd4b2d"), "b2ca9c03a6ff");
    }
}
