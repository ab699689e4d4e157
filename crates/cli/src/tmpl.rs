//! A small evaluator for the Go templates people pass to `--format`:
//! `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{upper .X}}`, `{{lower .X}}`,
//! `{{len .X}}`, `{{index .X "k"}}`, `{{join .X ","}}`, `{{println …}}`,
//! with Go's `%v` printing of decoded JSON and `missingkey=error`.
//! Also `indent_json`, docker's `json.Indent(…, "", "    ")`.

use crate::units::go_float;
use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Seg {
    Text(String),
    Action { expr: String, pos: usize },
}

pub struct Template {
    segs: Vec<Seg>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut segs = Vec::new();
        let mut rest = src;
        let mut off = 0;
        while let Some(i) = rest.find("{{") {
            let mut text = rest[..i].to_string();
            let after = &rest[i + 2..];
            let j = after
                .find("}}")
                .ok_or_else(|| "template: :1: unclosed action".to_string())?;
            let mut inner = &after[..j];
            let mut pos = off + i + 2;
            if let Some(s) = inner.strip_prefix('-') {
                if s.starts_with([' ', '\t', '\n']) {
                    text = text.trim_end().to_string();
                    inner = s;
                    pos += 1;
                }
            }
            let mut trim_after = false;
            if let Some(s) = inner.strip_suffix('-') {
                if s.ends_with([' ', '\t', '\n']) {
                    trim_after = true;
                    inner = s;
                }
            }
            if !text.is_empty() {
                segs.push(Seg::Text(text));
            }
            let lead = inner.len() - inner.trim_start().len();
            let expr = inner.trim().to_string();
            // Go reports a field chain at its last field: `{{.State.Pid}}` → 1:8.
            let first = expr.split_whitespace().next().unwrap_or("");
            let shift = if first.starts_with('.') {
                first.rfind('.').unwrap_or(0)
            } else {
                0
            };
            segs.push(Seg::Action {
                expr,
                pos: pos + lead + shift,
            });
            let consumed = i + 2 + j + 2;
            off += consumed;
            rest = &rest[consumed..];
            if trim_after {
                let t = rest.trim_start();
                off += rest.len() - t.len();
                rest = t;
            }
        }
        if !rest.is_empty() {
            segs.push(Seg::Text(rest.to_string()));
        }
        for s in &segs {
            if let Seg::Action { expr, .. } = s {
                let w = expr.split_whitespace().next().unwrap_or("");
                if matches!(
                    w,
                    "range" | "if" | "end" | "else" | "with" | "define" | "template" | "block"
                ) {
                    return Err(format!(
                        "template: unsupported action {{{{{w}}}}} in berth's template evaluator"
                    ));
                }
            }
        }
        Ok(Template { segs })
    }

    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Text(t) => out.push_str(t),
                Seg::Action { expr, pos } => {
                    let v = eval_pipeline(expr, data).map_err(|e| {
                        format!("template: :1:{pos}: executing \"\" at <{expr}>: {e}")
                    })?;
                    out.push_str(&v);
                }
            }
        }
        Ok(out)
    }
}

fn tokens(expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::from("\"");
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            s.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                o => o,
                            });
                        }
                        continue;
                    }
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    s.push(c);
                }
                if !closed {
                    return Err("unterminated quoted string".into());
                }
                out.push(s);
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

enum Arg {
    Val(Value),
    Str(String),
}

fn field<'a>(data: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut v = data;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = match v {
            Value::Object(m) => m
                .get(key)
                .ok_or_else(|| format!("map has no entry for key \"{key}\""))?,
            Value::Null => return Err(format!("nil pointer evaluating interface {{}}.{key}")),
            _ => return Err(format!("can't evaluate field {key} in type interface {{}}")),
        };
    }
    Ok(v)
}

fn arg(tok: &str, data: &Value) -> Result<Arg, String> {
    if let Some(s) = tok.strip_prefix('"') {
        return Ok(Arg::Str(s.to_string()));
    }
    if tok.starts_with('.') {
        return Ok(Arg::Val(field(data, tok)?.clone()));
    }
    if let Ok(n) = tok.parse::<i64>() {
        return Ok(Arg::Val(Value::from(n)));
    }
    Err(format!("function \"{tok}\" not defined"))
}

fn as_val(a: Arg) -> Value {
    match a {
        Arg::Val(v) => v,
        Arg::Str(s) => Value::String(s),
    }
}

fn eval_pipeline(expr: &str, data: &Value) -> Result<String, String> {
    let mut result: Option<Value> = None;
    for stage in expr.split('|') {
        let mut toks = tokens(stage.trim())?;
        if let Some(prev) = result.take() {
            // piped value becomes the last argument
            toks.push("\u{0}piped".into());
            let v = call(&toks, data, Some(prev))?;
            result = Some(v);
        } else {
            result = Some(call(&toks, data, None)?);
        }
    }
    Ok(match result {
        Some(Value::String(s)) => s,
        Some(v) => go_print(&v),
        None => String::new(),
    })
}

fn call(toks: &[String], data: &Value, piped: Option<Value>) -> Result<Value, String> {
    let Some(first) = toks.first() else {
        return Ok(Value::Null);
    };
    let mut piped = piped;
    let mut args = |from: usize| -> Result<Vec<Value>, String> {
        toks[from..]
            .iter()
            .map(|t| {
                if t == "\u{0}piped" {
                    Ok(piped.take().unwrap_or(Value::Null))
                } else {
                    arg(t, data).map(as_val)
                }
            })
            .collect()
    };
    if first.starts_with('.') || first.starts_with('"') {
        if toks.len() > 1 && !(toks.len() == 2 && toks[1] == "\u{0}piped") {
            return Err(format!("can't give argument to non-function {first}"));
        }
        return Ok(as_val(arg(first, data)?));
    }
    let a = args(1)?;
    match first.as_str() {
        "json" => {
            let v = a.into_iter().next().unwrap_or(Value::Null);
            Ok(Value::String(go_json(&v)))
        }
        "upper" | "lower" | "title" => {
            let s = a.first().map(go_print_str).unwrap_or_default();
            Ok(Value::String(match first.as_str() {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => {
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                }
            }))
        }
        "len" => {
            let n = match a.first() {
                Some(Value::Array(x)) => x.len(),
                Some(Value::Object(x)) => x.len(),
                Some(Value::String(x)) => x.len(),
                _ => return Err("len of nil pointer".into()),
            };
            Ok(Value::from(n))
        }
        "index" => {
            let mut it = a.into_iter();
            let mut v = it.next().unwrap_or(Value::Null);
            for k in it {
                v = match (&v, &k) {
                    (Value::Array(x), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        x.get(i).cloned().ok_or_else(|| {
                            format!("error calling index: index out of range: {i}")
                        })?
                    }
                    (Value::Object(m), Value::String(s)) => {
                        m.get(s).cloned().unwrap_or(Value::Null)
                    }
                    _ => return Err("error calling index: cannot index".into()),
                };
            }
            Ok(v)
        }
        "join" => {
            let list = match a.first() {
                Some(Value::Array(x)) => x.iter().map(go_print_str).collect::<Vec<_>>(),
                _ => vec![],
            };
            let sep = a.get(1).map(go_print_str).unwrap_or_default();
            Ok(Value::String(list.join(&sep)))
        }
        "println" => Ok(Value::String(
            a.iter().map(go_print_str).collect::<Vec<_>>().join(" ") + "\n",
        )),
        "print" => Ok(Value::String(
            a.iter().map(go_print_str).collect::<Vec<_>>().join(""),
        )),
        other => Err(format!("function \"{other}\" not defined")),
    }
}

fn go_print_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        o => go_print(o),
    }
}

/// Go's `%v` of a value decoded from JSON into `interface{}`.
pub fn go_print(v: &Value) -> String {
    match v {
        // docker evaluates container templates on typed structs first: nil
        // slices print as `[]`, integers as integers.
        Value::Null => "[]".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let inner: Vec<String> = a
                .iter()
                .map(|x| {
                    if x.is_null() {
                        "<nil>".into()
                    } else {
                        go_print(x)
                    }
                })
                .collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| {
                    let x = &m[*k];
                    format!(
                        "{k}:{}",
                        if x.is_null() {
                            "<nil>".into()
                        } else {
                            go_print(x)
                        }
                    )
                })
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// docker's template `json` function (an encoder with HTML escaping off).
/// Object keys come out sorted (docker keeps the struct order).
pub fn go_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Go's `json.Indent(dst, src, "", indent)`: keeps key order and string
/// escapes as they came, `{}`/`[]` stay compact.
pub fn indent_json(src: &[u8], indent: &str) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let mut need_indent = false; // just opened a bracket
    let newline = |out: &mut Vec<u8>, d: usize| {
        out.push(b'\n');
        for _ in 0..d {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &c in src {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            continue;
        }
        if need_indent && c != b']' && c != b'}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                need_indent = true;
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => {
                out.push(c);
                out.push(b' ');
            }
            b'}' | b']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> Result<String, String> {
        Template::parse(t)?.execute(v)
    }

    #[test]
    fn fields_and_json() {
        let v = json!({"State":{"Pid":1234,"Running":true,"Status":"running"},"Config":{"Cmd":["sleep","100"],"Env":null,"Labels":{}},"Name":"/x"});
        assert_eq!(run("{{.State.Pid}}", &v).unwrap(), "1234");
        assert_eq!(
            run("pid={{.State.Pid}} {{.State.Status}}", &v).unwrap(),
            "pid=1234 running"
        );
        assert_eq!(
            run("{{json .Config.Cmd}}", &v).unwrap(),
            "[\"sleep\",\"100\"]"
        );
        assert_eq!(run("{{.Config.Cmd}}", &v).unwrap(), "[sleep 100]");
        assert_eq!(run("{{json .Config.Labels}}", &v).unwrap(), "{}");
        assert_eq!(run("{{.Config.Env}}", &v).unwrap(), "[]");
        assert_eq!(run("{{index .Config.Cmd 1}}", &v).unwrap(), "100");
        assert_eq!(run("{{join .Config.Cmd \",\"}}", &v).unwrap(), "sleep,100");
        assert_eq!(run("{{.Name | upper}}", &v).unwrap(), "/X");
        assert_eq!(run("{{.State.Running}}", &v).unwrap(), "true");
        assert_eq!(run("{{- .Name -}}  x", &v).unwrap(), "/xx");
    }

    #[test]
    fn missing_key_is_error() {
        let v = json!({"Id":"abc"});
        let e = run("{{.State.Pid}}", &v).unwrap_err();
        assert!(e.contains("map has no entry for key \"State\""), "{e}");
    }

    #[test]
    fn json_no_html_escape() {
        assert_eq!(
            go_json(&json!({"b":"<a&b>","a":1})),
            "{\"a\":1,\"b\":\"<a&b>\"}"
        );
    }

    #[test]
    fn indent() {
        let raw = br#"[{"Id":"x","Args":[],"State":{"Pid":1},"M":{},"L":["a","b:c"]}]"#;
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"State\": {\n            \"Pid\": 1\n        },\n        \"M\": {},\n        \"L\": [\n            \"a\",\n            \"b:c\"\n        ]\n    }\n]";
        assert_eq!(indent_json(raw, "    "), want);
        assert_eq!(indent_json(b"[]", "    "), "[]");
    }

    #[test]
    fn unsupported_actions() {
        assert!(Template::parse("{{range .X}}{{end}}").is_err());
        assert!(Template::parse("{{.X").is_err());
    }
}
