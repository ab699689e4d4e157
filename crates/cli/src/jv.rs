//! A small order-preserving JSON value: the daemon's key order survives
//! into `{{json .X}}` and inspect output, numbers keep their spelling.

use std::fmt::Write as _;

/// A JSON string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A string map as JSON, keys sorted (as Go encodes maps).
pub fn map_json(m: &std::collections::BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}:{}", js(k), js(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The `Labels` object of a daemon answer as sorted (key, value) pairs.
pub fn sorted_labels(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = v
        .get("Labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    labels
}

#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// The number as the daemon wrote it.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub fn parse(src: &[u8]) -> Result<J, String> {
        let mut p = P { s: src, i: 0 };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("invalid character at offset {}", p.i));
        }
        Ok(v)
    }

    pub fn get(&self, k: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().find(|(x, _)| x == k).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(s: impl Into<String>) -> J {
        J::Str(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            J::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// Go's truthiness: false, 0, "", nil, empty arrays and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            J::Null => false,
            J::Bool(b) => *b,
            J::Num(n) => n.parse::<f64>().map(|x| x != 0.0).unwrap_or(true),
            J::Str(s) => !s.is_empty(),
            J::Arr(a) => !a.is_empty(),
            J::Obj(m) => !m.is_empty(),
        }
    }

    /// Compact JSON, keys in stored order, no HTML escaping (Go's encoder
    /// with SetEscapeHTML(false)).
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        self.write_json(&mut o);
        o
    }

    fn write_json(&self, o: &mut String) {
        match self {
            J::Null => o.push_str("null"),
            J::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => o.push_str(n),
            J::Str(s) => quote_into(s, o),
            J::Arr(a) => {
                o.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    x.write_json(o);
                }
                o.push(']');
            }
            J::Obj(m) => {
                o.push('{');
                // keys starting with NUL are the CLI's own (hidden) fields
                for (i, (k, x)) in m
                    .iter()
                    .filter(|(k, _)| !k.starts_with('\u{0}'))
                    .enumerate()
                {
                    if i > 0 {
                        o.push(',');
                    }
                    quote_into(k, o);
                    o.push(':');
                    x.write_json(o);
                }
                o.push('}');
            }
        }
    }

    pub fn from_serde(v: &serde_json::Value) -> J {
        use serde_json::Value as V;
        match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Number(n) => J::Num(n.to_string()),
            V::String(s) => J::Str(s.clone()),
            V::Array(a) => J::Arr(a.iter().map(J::from_serde).collect()),
            V::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

fn quote_into(s: &str, o: &mut String) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Result<J, String> {
        let Some(&c) = self.s.get(self.i) else {
            return Err("unexpected end of JSON input".into());
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.eat(b"}") {
                    return Ok(J::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(b":") {
                        return Err(format!("expected ':' at offset {}", self.i));
                    }
                    self.ws();
                    let v = self.value()?;
                    m.push((k, v));
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"}") {
                        return Ok(J::Obj(m));
                    }
                    return Err(format!("expected ',' or '}}' at offset {}", self.i));
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat(b"]") {
                    return Ok(J::Arr(a));
                }
                loop {
                    self.ws();
                    a.push(self.value()?);
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"]") {
                        return Ok(J::Arr(a));
                    }
                    return Err(format!("expected ',' or ']' at offset {}", self.i));
                }
            }
            b'"' => Ok(J::Str(self.string()?)),
            b't' if self.eat(b"true") => Ok(J::Bool(true)),
            b'f' if self.eat(b"false") => Ok(J::Bool(false)),
            b'n' if self.eat(b"null") => Ok(J::Null),
            b'-' | b'0'..=b'9' => {
                let st = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Ok(J::Num(
                    String::from_utf8_lossy(&self.s[st..self.i]).into_owned(),
                ))
            }
            _ => Err(format!("invalid character at offset {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if !self.eat(b"\"") {
            return Err(format!("expected string at offset {}", self.i));
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        o => out.push(o),
                    }
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("bad \\u escape")?;
        self.i += 4;
        u32::from_str_radix(&String::from_utf8_lossy(h), 16).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_numbers() {
        let src = r#"{"Id":"x","B":[1,2.5,-3e2],"A":{"z":null,"a":true},"S":"a\"b\u00e9<&>"}"#;
        let v = J::parse(src.as_bytes()).unwrap();
        assert_eq!(
            v.to_json(),
            r#"{"Id":"x","B":[1,2.5,-3e2],"A":{"z":null,"a":true},"S":"a\"bé<&>"}"#
        );
        assert_eq!(v.get("Id").unwrap().as_str(), Some("x"));
        assert!(J::parse(b"{\"a\":}").is_err());
        assert!(J::parse(b" [ ] \n").is_ok());
    }

    #[test]
    fn truthiness() {
        assert!(!J::Num("0".into()).truthy());
        assert!(J::Num("0.5".into()).truthy());
        assert!(!J::Str(String::new()).truthy());
        assert!(!J::Arr(vec![]).truthy());
        assert!(J::Obj(vec![("a".into(), J::Null)]).truthy());
    }
}
