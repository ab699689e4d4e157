//! Go's text/template, the part docker users write in `--format`:
//! fields and chains, variables, pipelines, parentheses, `if`/`else if`/
//! `else`, `range` (arrays, maps in sorted key order, `$i, $v :=`),
//! `with`, comparison and logic functions, `printf`, `index`, `len`,
//! `slice`, and docker's extras (`json`, `join`, `split`, `upper`, `lower`,
//! `title`, `pad`, `truncate`, `println`). Missing map keys are errors
//! (docker runs templates with `missingkey=error`).

use crate::jv::J;
use crate::units::go_float;

#[derive(Debug, Clone)]
enum Tok {
    Field(String, usize),       // ".A.B"
    Var(String, String, usize), // "$x", ".A.B" suffix
    Str(String),
    Num(String),
    Bool(bool),
    Nil,
    Ident(String, usize),
    Dot,
    Paren(Box<Pipe>),
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Tok>,
    text: String,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

pub struct Template {
    nodes: Vec<Node>,
    src: String,
    lenient: bool,
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

fn is_fn(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "eq"
            | "ne"
            | "lt"
            | "le"
            | "gt"
            | "ge"
            | "len"
            | "index"
            | "slice"
            | "print"
            | "printf"
            | "println"
            | "json"
            | "join"
            | "split"
            | "upper"
            | "lower"
            | "title"
            | "pad"
            | "truncate"
            | "html"
            | "js"
            | "urlquery"
    )
}

/// One `{{…}}` as lexed: its inner text and byte offset of that text.
struct Raw {
    text: Option<String>,
    action: Option<(String, usize)>,
}

fn lex_actions(src: &str) -> Result<Vec<Raw>, String> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut off = 0usize;
    let mut pending_trim = false;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        if pending_trim {
            text = text.trim_start().to_string();
        }
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            let line = 1 + src[..off + i].matches('\n').count();
            return Err(format!("template: :{line}: unclosed action"));
        };
        let mut inner = &after[..j];
        let mut ipos = off + i + 2;
        if let Some(s) = inner.strip_prefix('-') {
            if s.starts_with([' ', '\t', '\n', '\r']) {
                text = text.trim_end().to_string();
                inner = s;
                ipos += 1;
            }
        }
        pending_trim = false;
        if let Some(s) = inner.strip_suffix('-') {
            if s.ends_with([' ', '\t', '\n', '\r']) {
                pending_trim = true;
                inner = s;
            }
        }
        if !text.is_empty() {
            out.push(Raw {
                text: Some(text),
                action: None,
            });
        }
        out.push(Raw {
            text: None,
            action: Some((inner.to_string(), ipos)),
        });
        let consumed = i + 2 + j + 2;
        off += consumed;
        rest = &rest[consumed..];
    }
    let mut text = rest.to_string();
    if pending_trim {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        out.push(Raw {
            text: Some(text),
            action: None,
        });
    }
    Ok(out)
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    base: usize,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, m: impl std::fmt::Display) -> String {
        format!("template: :{}: {m}", self.line)
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn word(&mut self) -> String {
        let st = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c >= 0x80 {
                self.i += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[st..self.i]).into_owned()
    }
    /// Parses a pipeline up to `)` (if `paren`) or the end of the action.
    fn pipe(&mut self, paren: bool) -> Result<Pipe, String> {
        let mut decl = Vec::new();
        // declarations: $a := / $a, $b :=
        let save = self.i;
        self.ws();
        if self.s.get(self.i) == Some(&b'$') {
            let mut names = Vec::new();
            loop {
                self.ws();
                if self.s.get(self.i) != Some(&b'$') {
                    break;
                }
                self.i += 1;
                let w = self.word();
                names.push(format!("${w}"));
                self.ws();
                if self.s.get(self.i) == Some(&b',') {
                    self.i += 1;
                    continue;
                }
                break;
            }
            self.ws();
            if self.s[self.i..].starts_with(b":=")
                || (self.s[self.i..].starts_with(b"=") && !self.s[self.i..].starts_with(b"=="))
            {
                self.i += if self.s[self.i] == b':' { 2 } else { 1 };
                decl = names;
            } else {
                self.i = save;
            }
        }
        let mut cmds = Vec::new();
        let mut args = Vec::new();
        let mut cmd_start = self.i;
        loop {
            self.ws();
            let Some(&c) = self.s.get(self.i) else {
                if paren {
                    return Err(self.err("unclosed left paren"));
                }
                break;
            };
            let at = self.base + self.i;
            match c {
                b')' => {
                    if !paren {
                        return Err(self.err("unexpected right paren"));
                    }
                    break;
                }
                b'|' => {
                    let text = String::from_utf8_lossy(&self.s[cmd_start..self.i])
                        .trim()
                        .to_string();
                    if args.is_empty() {
                        return Err(self.err("missing command"));
                    }
                    cmds.push(Cmd {
                        args: std::mem::take(&mut args),
                        text,
                    });
                    self.i += 1;
                    cmd_start = self.i;
                }
                b'(' => {
                    self.i += 1;
                    let p = self.pipe(true)?;
                    self.i += 1; // ')'
                    let mut t = Tok::Paren(Box::new(p));
                    // (x).Field
                    if self.s.get(self.i) == Some(&b'.') {
                        let w = self.word();
                        t = Tok::Paren(Box::new(Pipe {
                            decl: vec![],
                            cmds: vec![Cmd {
                                args: vec![t, Tok::Field(w, at)],
                                text: String::new(),
                            }],
                        }));
                    }
                    args.push(t);
                }
                b'"' => {
                    self.i += 1;
                    let mut out = String::new();
                    loop {
                        let Some(&c) = self.s.get(self.i) else {
                            return Err(self.err("unterminated quoted string"));
                        };
                        self.i += 1;
                        match c {
                            b'"' => break,
                            b'\\' => {
                                let e = self.s.get(self.i).copied().unwrap_or(b'\\');
                                self.i += 1;
                                out.push(match e {
                                    b'n' => '\n',
                                    b't' => '\t',
                                    b'r' => '\r',
                                    b'0' => '\0',
                                    o => o as char,
                                });
                            }
                            _ => {
                                // keep UTF-8 intact
                                let st = self.i - 1;
                                let mut en = self.i;
                                while en < self.s.len() && (self.s[en] & 0xC0) == 0x80 {
                                    en += 1;
                                }
                                out.push_str(&String::from_utf8_lossy(&self.s[st..en]));
                                self.i = en;
                            }
                        }
                    }
                    args.push(Tok::Str(out));
                }
                b'`' => {
                    self.i += 1;
                    let st = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b'`' {
                        self.i += 1;
                    }
                    if self.i >= self.s.len() {
                        return Err(self.err("unterminated raw quoted string"));
                    }
                    args.push(Tok::Str(
                        String::from_utf8_lossy(&self.s[st..self.i]).into_owned(),
                    ));
                    self.i += 1;
                }
                b'.' => {
                    let w = self.word();
                    if w == "." {
                        args.push(Tok::Dot);
                    } else {
                        args.push(Tok::Field(w, at));
                    }
                }
                b'$' => {
                    self.i += 1;
                    let w = self.word();
                    let (name, path) = match w.find('.') {
                        Some(k) => (format!("${}", &w[..k]), w[k..].to_string()),
                        None => (format!("${w}"), String::new()),
                    };
                    args.push(Tok::Var(name, path, at));
                }
                b'-' | b'+' | b'0'..=b'9' => {
                    let st = self.i;
                    self.i += 1;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
                    {
                        self.i += 1;
                    }
                    args.push(Tok::Num(
                        String::from_utf8_lossy(&self.s[st..self.i]).into_owned(),
                    ));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let w = self.word();
                    match w.as_str() {
                        "true" => args.push(Tok::Bool(true)),
                        "false" => args.push(Tok::Bool(false)),
                        "nil" => args.push(Tok::Nil),
                        _ if is_fn(&w) => args.push(Tok::Ident(w, at)),
                        _ => return Err(self.err(format!("function \"{w}\" not defined"))),
                    }
                }
                c => {
                    return Err(self.err(format!("unexpected \"{}\" in command", c as char)));
                }
            }
        }
        let text = String::from_utf8_lossy(&self.s[cmd_start..self.i])
            .trim()
            .to_string();
        if !args.is_empty() {
            cmds.push(Cmd { args, text });
        } else if !cmds.is_empty() {
            return Err(self.err("missing command"));
        }
        Ok(Pipe { decl, cmds })
    }
}

fn parse_pipe(src: &str, text: &str, base: usize) -> Result<Pipe, String> {
    let line = 1 + src[..base.min(src.len())].matches('\n').count();
    let mut lx = Lexer {
        s: text.as_bytes(),
        i: 0,
        base,
        line,
    };
    let p = lx.pipe(false)?;
    if p.cmds.is_empty() {
        return Err(format!("template: :{line}: missing value for command"));
    }
    Ok(p)
}

enum Stop {
    End,
    Else(Option<(String, usize)>),
    Eof,
}

fn parse_list(src: &str, raws: &[Raw], i: &mut usize) -> Result<(Vec<Node>, Stop), String> {
    let mut nodes = Vec::new();
    while *i < raws.len() {
        let r = &raws[*i];
        *i += 1;
        if let Some(t) = &r.text {
            nodes.push(Node::Text(t.clone()));
            continue;
        }
        let (inner, pos) = r.action.clone().unwrap_or_default();
        let t = inner.trim_start();
        let lead = inner.len() - t.len();
        let t = t.trim_end();
        if t.starts_with("/*") {
            continue;
        }
        let kw: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let after = &t[kw.len()..];
        let kpos = pos + lead + kw.len();
        let line = 1 + src[..pos.min(src.len())].matches('\n').count();
        if KEYWORDS.contains(&kw.as_str())
            && (after.is_empty() || after.starts_with([' ', '\t', '\n', '\r']))
        {
            match kw.as_str() {
                "end" => return Ok((nodes, Stop::End)),
                "else" => {
                    let rest = after.trim();
                    return Ok((
                        nodes,
                        Stop::Else(if rest.is_empty() {
                            None
                        } else {
                            Some((after.to_string(), kpos))
                        }),
                    ));
                }
                "if" | "range" | "with" => {
                    let node = parse_block(src, raws, i, &kw, after, kpos)?;
                    nodes.push(node);
                }
                other => return Err(format!("template: :{line}: unsupported action \"{other}\"")),
            }
            continue;
        }
        nodes.push(Node::Action(parse_pipe(src, t, pos + lead)?));
    }
    Ok((nodes, Stop::Eof))
}

fn parse_block(
    src: &str,
    raws: &[Raw],
    i: &mut usize,
    kw: &str,
    head: &str,
    pos: usize,
) -> Result<Node, String> {
    let line = 1 + src[..pos.min(src.len())].matches('\n').count();
    let pipe = parse_pipe(src, head, pos)?;
    let (body, stop) = parse_list(src, raws, i)?;
    let els = match stop {
        Stop::End => vec![],
        Stop::Eof => return Err(format!("template: :{line}: unexpected EOF")),
        Stop::Else(None) => {
            let (e, stop) = parse_list(src, raws, i)?;
            if !matches!(stop, Stop::End) {
                return Err(format!("template: :{line}: unexpected EOF"));
            }
            e
        }
        Stop::Else(Some((rest, p))) => {
            // else if / else with: a nested block sharing our {{end}}
            let r = rest.trim_start();
            let lead = rest.len() - r.len();
            let k: String = r.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            if k != "if" && k != "with" {
                return Err(format!("template: :{line}: unexpected \"{}\" in else", r));
            }
            vec![parse_block(
                src,
                raws,
                i,
                &k,
                &r[k.len()..],
                p + lead + k.len(),
            )?]
        }
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, els),
        "range" => Node::Range(pipe, body, els),
        _ => Node::With(pipe, body, els),
    })
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let raws = lex_actions(src)?;
        let mut i = 0;
        let (nodes, stop) = parse_list(src, &raws, &mut i)?;
        match stop {
            Stop::Eof => {}
            Stop::End => return Err("template: :1: unexpected {{end}}".into()),
            Stop::Else(_) => return Err("template: :1: unexpected {{else}}".into()),
        }
        Ok(Template {
            nodes,
            src: src.to_string(),
            lenient: false,
        })
    }

    /// Missing map keys print `<no value>` instead of failing (Go's
    /// default; `docker events --format` runs templates that way).
    pub fn lenient(mut self) -> Self {
        self.lenient = true;
        self
    }

    pub fn execute(&self, data: &J) -> Result<String, String> {
        let mut st = State {
            vars: vec![("$".into(), data.clone())],
            src: &self.src,
            lenient: self.lenient,
            iterations: 0,
        };
        let mut out = String::new();
        st.walk(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

struct State<'a> {
    vars: Vec<(String, J)>,
    src: &'a str,
    lenient: bool,
    /// range iterations so far, all loops together (see MAX_ITERATIONS)
    iterations: u64,
}

/// How many `range` iterations one execution may make. Go has no limit, but ranging over an
/// integer (`{{range 99999999999}}`, or a number in the data) would otherwise run for hours or
/// ask for more memory than there is; no format template needs this many (1,000,000 still let
/// nested ranges over the data take more than the fuzzer's 10 s).
const MAX_ITERATIONS: u64 = 100_000;

struct EvalErr {
    at: String,
    pos: usize,
    msg: String,
}

type R<T> = Result<T, EvalErr>;

fn ee(at: &str, pos: usize, msg: impl Into<String>) -> EvalErr {
    EvalErr {
        at: at.to_string(),
        pos,
        msg: msg.into(),
    }
}

impl State<'_> {
    fn fmt_err(&self, e: EvalErr) -> String {
        let before = &self.src[..e.pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.len() - before.rfind('\n').map(|x| x + 1).unwrap_or(0);
        format!(
            "template: :{line}:{col}: executing \"\" at <{}>: {}",
            e.at, e.msg
        )
    }

    fn walk(&mut self, nodes: &[Node], dot: &J, out: &mut String) -> Result<(), String> {
        let mark = self.vars.len();
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot).map_err(|e| self.fmt_err(e))?;
                    if p.decl.is_empty() {
                        out.push_str(&go_print(&v));
                    }
                }
                Node::If(p, body, els) => {
                    let v = self.pipe(p, dot).map_err(|e| self.fmt_err(e))?;
                    if v.truthy() {
                        self.walk(body, dot, out)?;
                    } else {
                        self.walk(els, dot, out)?;
                    }
                }
                Node::With(p, body, els) => {
                    let v = self.pipe(p, dot).map_err(|e| self.fmt_err(e))?;
                    if v.truthy() {
                        self.walk(body, &v, out)?;
                    } else {
                        self.walk(els, dot, out)?;
                    }
                }
                Node::Range(p, body, els) => {
                    let nodecl = Pipe {
                        decl: vec![],
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&nodecl, dot).map_err(|e| self.fmt_err(e))?;
                    let items: Vec<(J, J)> = match v {
                        J::Arr(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, x)| (J::Num(i.to_string()), x))
                            .collect(),
                        J::Obj(mut m) => {
                            m.sort_by(|a, b| a.0.cmp(&b.0));
                            m.into_iter().map(|(k, x)| (J::Str(k), x)).collect()
                        }
                        J::Null => vec![],
                        J::Num(n) => {
                            let k: i64 = n.parse().unwrap_or(0);
                            if k > 0 && self.iterations + k as u64 > MAX_ITERATIONS {
                                return Err(self.fmt_err(ee(
                                    &p.cmds.last().map(|c| c.text.clone()).unwrap_or_default(),
                                    0,
                                    format!(
                                        "range over {k}: more than {MAX_ITERATIONS} iterations"
                                    ),
                                )));
                            }
                            (0..k.max(0))
                                .map(|i| (J::Num(i.to_string()), J::Num(i.to_string())))
                                .collect()
                        }
                        other => {
                            return Err(self.fmt_err(ee(
                                &p.cmds.last().map(|c| c.text.clone()).unwrap_or_default(),
                                0,
                                format!("range can't iterate over {}", go_print(&other)),
                            )))
                        }
                    };
                    if items.is_empty() {
                        self.walk(els, dot, out)?;
                    }
                    for (k, x) in items {
                        self.iterations += 1;
                        if self.iterations > MAX_ITERATIONS {
                            return Err(format!(
                                "template: range: more than {MAX_ITERATIONS} iterations"
                            ));
                        }
                        let m = self.vars.len();
                        match p.decl.len() {
                            0 => {}
                            1 => self.vars.push((p.decl[0].clone(), x.clone())),
                            _ => {
                                self.vars.push((p.decl[0].clone(), k));
                                self.vars.push((p.decl[1].clone(), x.clone()));
                            }
                        }
                        self.walk(body, &x, out)?;
                        self.vars.truncate(m);
                    }
                }
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &J) -> R<J> {
        let mut val: Option<J> = None;
        for c in &p.cmds {
            val = Some(self.cmd(c, dot, val)?);
        }
        let v = val.unwrap_or(J::Null);
        for d in &p.decl {
            self.vars.push((d.clone(), v.clone()));
        }
        Ok(v)
    }

    fn var(&self, name: &str, at: usize) -> R<J> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ee(name, at, format!("undefined variable: {name}")))
    }

    fn arg(&mut self, t: &Tok, dot: &J) -> R<J> {
        Ok(match t {
            Tok::Field(path, at) => self.field(dot, path, *at)?,
            Tok::Var(name, path, at) => {
                let v = self.var(name, *at)?;
                if path.is_empty() {
                    v
                } else {
                    self.field(&v, path, *at)?
                }
            }
            Tok::Str(s) => J::Str(s.clone()),
            Tok::Num(n) => J::Num(n.clone()),
            Tok::Bool(b) => J::Bool(*b),
            Tok::Nil => J::Null,
            Tok::Dot => dot.clone(),
            Tok::Paren(p) => self.pipe(p, dot)?,
            Tok::Ident(name, at) => self.call(name, &[], *at, name, dot)?,
        })
    }

    fn field(&self, v: &J, path: &str, at: usize) -> R<J> {
        match field(v, path, at) {
            Err(e) if self.lenient && e.msg.starts_with("map has no entry") => {
                Ok(J::str("<no value>"))
            }
            r => r,
        }
    }

    fn cmd(&mut self, c: &Cmd, dot: &J, piped: Option<J>) -> R<J> {
        let first = &c.args[0];
        if let Tok::Ident(name, at) = first {
            let mut args = Vec::new();
            for t in &c.args[1..] {
                args.push(self.arg(t, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(name, &args, *at, &c.text, dot);
        }
        if let (Tok::Field(path, at), Some(Tok::Str(k))) = (first, c.args.get(1)) {
            // docker's list formatters: {{.Label "key"}}
            if path == ".Label" {
                let labels = dot.get("\u{0}labels").cloned().unwrap_or(J::Null);
                return Ok(labels.get(k).cloned().unwrap_or(J::Str(String::new())))
                    .map_err(|_: ()| ee(path, *at, ""));
            }
        }
        if c.args.len() > 1 || piped.is_some() {
            let (at, pos) = match first {
                Tok::Field(p, at) => (p.clone(), *at),
                _ => (c.text.clone(), 0),
            };
            return Err(ee(
                &at,
                pos,
                format!("can't give argument to non-function {at}"),
            ));
        }
        self.arg(first, dot)
    }

    fn call(&mut self, name: &str, a: &[J], at: usize, text: &str, _dot: &J) -> R<J> {
        let err = |m: String| ee(text, at, format!("error calling {name}: {m}"));
        let want = |n: usize| -> R<()> {
            if a.len() != n {
                Err(ee(
                    text,
                    at,
                    format!("wrong number of args for {name}: want {n} got {}", a.len()),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match name {
            "and" => {
                let mut last = J::Bool(true);
                for x in a {
                    last = x.clone();
                    if !x.truthy() {
                        break;
                    }
                }
                last
            }
            "or" => {
                let mut last = J::Bool(false);
                for x in a {
                    last = x.clone();
                    if x.truthy() {
                        break;
                    }
                }
                last
            }
            "not" => {
                want(1)?;
                J::Bool(!a[0].truthy())
            }
            "eq" => {
                if a.len() < 2 {
                    return Err(err("missing argument for comparison".into()));
                }
                let mut any = false;
                for b in &a[1..] {
                    if compare(&a[0], b).map_err(err)? == std::cmp::Ordering::Equal {
                        any = true;
                    }
                }
                J::Bool(any)
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                if name != "ne"
                    && !matches!(
                        (&a[0], &a[1]),
                        (J::Num(_), J::Num(_)) | (J::Str(_), J::Str(_))
                    )
                {
                    return Err(err("invalid type for comparison".into()));
                }
                let o = compare(&a[0], &a[1]).map_err(err)?;
                use std::cmp::Ordering::*;
                J::Bool(match name {
                    "ne" => o != Equal,
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                })
            }
            "len" => {
                want(1)?;
                J::Num(
                    match &a[0] {
                        J::Arr(x) => x.len(),
                        J::Obj(x) => x.len(),
                        J::Str(x) => x.len(),
                        _ => return Err(err(format!("len of type {}", type_name(&a[0])))),
                    }
                    .to_string(),
                )
            }
            "index" => {
                let mut v = a.first().cloned().unwrap_or(J::Null);
                for k in a.iter().skip(1) {
                    v = match (&v, k) {
                        (J::Arr(x), J::Num(n)) => {
                            let i: i64 = n.parse().map_err(|_| {
                                err(format!("cannot index slice/array with type {n}"))
                            })?;
                            if i < 0 || i as usize >= x.len() {
                                return Err(err(format!("index out of range: {i}")));
                            }
                            x[i as usize].clone()
                        }
                        (J::Obj(_), J::Str(s)) => v.get(s).cloned().unwrap_or(J::Null),
                        (J::Null, _) => return Err(err("index of untyped nil".into())),
                        _ => {
                            return Err(err(format!("can't index item of type {}", type_name(&v))))
                        }
                    };
                }
                v
            }
            "slice" => {
                let v = a.first().cloned().unwrap_or(J::Null);
                let n = |i: usize| a.get(i).and_then(|x| x.as_f64()).map(|x| x as usize);
                match v {
                    J::Str(s) => {
                        let lo = n(1).unwrap_or(0);
                        let hi = n(2).unwrap_or(s.len());
                        J::Str(
                            s.get(lo..hi)
                                .ok_or_else(|| err(format!("index out of range: {hi}")))?
                                .to_string(),
                        )
                    }
                    J::Arr(x) => {
                        let lo = n(1).unwrap_or(0);
                        let hi = n(2).unwrap_or(x.len());
                        J::Arr(
                            x.get(lo..hi)
                                .ok_or_else(|| err(format!("index out of range: {hi}")))?
                                .to_vec(),
                        )
                    }
                    o => return Err(err(format!("can't slice item of type {}", type_name(&o)))),
                }
            }
            "print" => J::Str(go_sprint(a)),
            "println" => J::Str(a.iter().map(go_print).collect::<Vec<_>>().join(" ") + "\n"),
            "printf" => {
                let f = a.first().and_then(|x| x.as_str()).unwrap_or("");
                J::Str(sprintf(f, &a[1.min(a.len())..]))
            }
            "json" => {
                want(1)?;
                J::Str(a[0].to_json())
            }
            "join" => {
                want(2)?;
                let list: Vec<String> = match &a[0] {
                    J::Arr(x) => x.iter().map(go_print).collect(),
                    J::Null => vec![],
                    o => {
                        return Err(err(format!(
                            "wrong type for value; expected []string; got {}",
                            type_name(o)
                        )))
                    }
                };
                J::Str(list.join(&go_print(&a[1])))
            }
            "split" => {
                want(2)?;
                let s = go_print(&a[0]);
                let sep = go_print(&a[1]);
                let parts: Vec<J> = if sep.is_empty() {
                    s.chars().map(|c| J::Str(c.to_string())).collect()
                } else {
                    s.split(sep.as_str()).map(J::str).collect()
                };
                J::Arr(parts)
            }
            "upper" => J::Str(a.first().map(go_print).unwrap_or_default().to_uppercase()),
            "lower" => J::Str(a.first().map(go_print).unwrap_or_default().to_lowercase()),
            "title" => {
                let s = a.first().map(go_print).unwrap_or_default();
                let mut o = String::new();
                let mut prev_letter = false;
                for c in s.chars() {
                    if !prev_letter {
                        o.extend(c.to_uppercase());
                    } else {
                        o.push(c);
                    }
                    prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
                }
                J::Str(o)
            }
            "pad" => {
                want(3)?;
                let s = go_print(&a[0]);
                let l = a[1].as_f64().unwrap_or(0.0) as usize;
                let r = a[2].as_f64().unwrap_or(0.0) as usize;
                J::Str(format!("{}{s}{}", " ".repeat(l), " ".repeat(r)))
            }
            "truncate" => {
                want(2)?;
                let s = go_print(&a[0]);
                let n = a[1].as_f64().unwrap_or(0.0) as usize;
                J::Str(s.chars().take(n).collect())
            }
            "html" | "js" | "urlquery" => J::Str(go_sprint(a)),
            other => return Err(ee(text, at, format!("function \"{other}\" not defined"))),
        })
    }
}

fn type_name(v: &J) -> &'static str {
    match v {
        J::Null => "<nil>",
        J::Bool(_) => "bool",
        J::Num(_) => "float64",
        J::Str(_) => "string",
        J::Arr(_) => "[]interface {}",
        J::Obj(_) => "map[string]interface {}",
    }
}

fn compare(a: &J, b: &J) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering::*;
    match (a, b) {
        (J::Num(x), J::Num(y)) => {
            let (x, y) = (
                x.parse::<f64>().unwrap_or(0.0),
                y.parse::<f64>().unwrap_or(0.0),
            );
            Ok(x.partial_cmp(&y).unwrap_or(Equal))
        }
        (J::Str(x), J::Str(y)) => Ok(x.cmp(y)),
        (J::Bool(x), J::Bool(y)) => Ok(if x == y { Equal } else { Less }),
        (J::Null, J::Null) => Ok(Equal),
        (J::Null, _) | (_, J::Null) => Ok(Less),
        _ if std::mem::discriminant(a) != std::mem::discriminant(b) => {
            Err("incompatible types for comparison".into())
        }
        _ => Err(format!("non-comparable type {}", type_name(a))),
    }
}

fn field(v: &J, path: &str, at: usize) -> R<J> {
    let mut cur = v;
    let mut seen = String::new();
    for key in path.split('.').filter(|k| !k.is_empty()) {
        seen.push('.');
        seen.push_str(key);
        cur = match cur {
            J::Obj(_) => cur.get(key).ok_or_else(|| {
                ee(
                    path,
                    at + path.rfind('.').unwrap_or(0),
                    format!("map has no entry for key \"{key}\""),
                )
            })?,
            J::Null => {
                return Err(ee(
                    path,
                    at + path.rfind('.').unwrap_or(0),
                    format!("nil pointer evaluating interface {{}}.{key}"),
                ))
            }
            o => {
                return Err(ee(
                    path,
                    at + path.rfind('.').unwrap_or(0),
                    format!("can't evaluate field {key} in type {}", type_name(o)),
                ))
            }
        };
    }
    Ok(cur.clone())
}

fn go_sprint(a: &[J]) -> String {
    // Go's Sprint: spaces between operands when neither is a string.
    let mut o = String::new();
    for (i, x) in a.iter().enumerate() {
        if i > 0 && !matches!(x, J::Str(_)) && !matches!(a[i - 1], J::Str(_)) {
            o.push(' ');
        }
        o.push_str(&go_print(x));
    }
    o
}

/// Go's `fmt.Sprintf` for the verbs people use in templates.
pub fn sprintf(f: &str, args: &[J]) -> String {
    let mut o = String::new();
    let mut it = args.iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            o.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        // Go's parsenum: a number that grows past 1e6 is "crazy long", and the rest of the
        // format is taken as gone (so `%!(NOVERB)` follows)
        let num = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<usize> {
            let mut n: usize = 0;
            while let Some(&d) = chars.peek() {
                let Some(v) = d.to_digit(10) else { break };
                if n > 1_000_000 {
                    chars.for_each(drop);
                    return None;
                }
                n = n * 10 + v as usize;
                chars.next();
            }
            Some(n)
        };
        let mut w = num(&mut chars).unwrap_or(0);
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(num(&mut chars).unwrap_or_else(|| {
                w = 0;
                0
            }));
        }
        let Some(verb) = chars.next() else {
            o.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            o.push('%');
            continue;
        }
        let Some(a) = it.next() else {
            o.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let s = match verb {
            'v' | 's' => {
                let s = go_print(a);
                match (verb, prec) {
                    ('s', Some(p)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => crate::units::go_quote(&go_print(a)),
            'd' => match a {
                J::Num(n) => match n.parse::<f64>() {
                    Ok(x) if x.fract() == 0.0 => format!("{}", x as i64),
                    _ => format!("%!d(float64={n})"),
                },
                o => format!("%!d({}={})", type_name(o), go_print(o)),
            },
            'f' | 'F' => match a.as_f64() {
                Some(x) => format!("{:.*}", prec.unwrap_or(6), x),
                None => format!("%!f({}={})", type_name(a), go_print(a)),
            },
            'x' | 'X' => {
                let s = match a {
                    J::Num(n) => format!("{:x}", n.parse::<f64>().unwrap_or(0.0) as i64),
                    o => go_print(o).bytes().map(|b| format!("{b:02x}")).collect(),
                };
                if verb == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            't' => go_print(a),
            other => format!("%!{other}({}={})", type_name(a), go_print(a)),
        };
        let n = s.chars().count();
        if n < w {
            let pad = w - n;
            if flags.contains('-') {
                o.push_str(&s);
                o.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f') {
                let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
                o.push_str(sign);
                o.push_str(&"0".repeat(pad));
                o.push_str(digits);
            } else {
                o.push_str(&" ".repeat(pad));
                o.push_str(&s);
            }
        } else {
            o.push_str(&s);
        }
    }
    let extra: Vec<&J> = it.collect();
    if !extra.is_empty() {
        o.push_str("%!(EXTRA ");
        o.push_str(
            &extra
                .iter()
                .map(|x| format!("{}={}", type_name(x), go_print(x)))
                .collect::<Vec<_>>()
                .join(", "),
        );
        o.push(')');
    }
    o
}

/// Go's `%v` of a value (docker evaluates on typed structs first: nil
/// slices print `[]`, integers as integers).
pub fn go_print(v: &J) -> String {
    match v {
        J::Null => "[]".into(),
        J::Bool(b) => b.to_string(),
        J::Num(n) => {
            if n.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                n.clone()
            } else {
                go_float(n.parse().unwrap_or(0.0))
            }
        }
        J::Str(s) => s.clone(),
        J::Arr(a) => {
            let inner: Vec<String> = a
                .iter()
                .map(|x| {
                    if matches!(x, J::Null) {
                        "<nil>".into()
                    } else {
                        go_print(x)
                    }
                })
                .collect();
            format!("[{}]", inner.join(" "))
        }
        J::Obj(m) => {
            let mut kv: Vec<&(String, J)> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            let inner: Vec<String> = kv
                .iter()
                .filter(|(k, _)| !k.starts_with('\u{0}'))
                .map(|(k, x)| {
                    format!(
                        "{k}:{}",
                        if matches!(x, J::Null) {
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

/// docker's list `--format`: `table` prefix → header row from `headers`
/// (field → column title) and tabwriter alignment; `\t`/`\n` escapes
/// are turned into the characters first. Returns the whole output.
pub fn render_list(format: &str, items: &[J], headers: &[(&str, &str)]) -> Result<String, String> {
    let (is_table, f) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let f = f
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let t = Template::parse(&f)?;
    let mut text = String::new();
    if is_table {
        let h = J::Obj(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), J::str(*v)))
                .collect(),
        );
        if let Ok(line) = t.execute(&h) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    for it in items {
        text.push_str(&t.execute(it)?);
        text.push('\n');
    }
    if !is_table {
        return Ok(text);
    }
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    Ok(crate::units::table(&rows))
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

    fn j(s: &str) -> J {
        J::parse(s.as_bytes()).unwrap()
    }
    fn run(t: &str, v: &J) -> Result<String, String> {
        Template::parse(t)?.execute(v)
    }
    fn data() -> J {
        j(
            r#"{"State":{"Pid":1234,"Running":true,"Status":"running","ExitCode":0},"Config":{"Cmd":["sleep","100"],"Env":null,"Labels":{"z":"1","a":"2"},"Tty":false},"Name":"/x","HostConfig":{"Memory":67108864,"NanoCpus":1.5e9},"Mounts":[]}"#,
        )
    }

    #[test]
    fn fields_and_functions() {
        let v = data();
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
        assert_eq!(run("{{.Config.Env}}", &v).unwrap(), "[]");
        assert_eq!(run("{{index .Config.Cmd 1}}", &v).unwrap(), "100");
        assert_eq!(run("{{index .Config.Labels \"a\"}}", &v).unwrap(), "2");
        assert_eq!(run("{{join .Config.Cmd \",\"}}", &v).unwrap(), "sleep,100");
        assert_eq!(run("{{.Name | upper}}", &v).unwrap(), "/X");
        assert_eq!(run("{{- .Name -}}  x", &v).unwrap(), "/xx");
        assert_eq!(run("{{len .Config.Cmd}}", &v).unwrap(), "2");
        assert_eq!(run("{{.HostConfig.NanoCpus}}", &v).unwrap(), "1.5e+09");
        assert_eq!(
            run(
                "{{printf \"%s-%d|%5s|%-4s|%.2f\" .Name .State.Pid \"ab\" \"c\" 1.5}}",
                &v
            )
            .unwrap(),
            "/x-1234|   ab|c   |1.50"
        );
        assert_eq!(
            run("{{printf \"%v %q\" .Config.Cmd .Name}}", &v).unwrap(),
            "[sleep 100] \"/x\""
        );
        assert_eq!(
            run("{{(index .Config.Cmd 0) | printf \"<%s>\"}}", &v).unwrap(),
            "<sleep>"
        );
        assert_eq!(
            run("{{$n := .Name}}{{$n}}{{$.State.Pid}}", &v).unwrap(),
            "/x1234"
        );
        assert_eq!(run("{{split \"a:b\" \":\"}}", &v).unwrap(), "[a b]");
        assert_eq!(run("{{title \"hello world\"}}", &v).unwrap(), "Hello World");
    }

    #[test]
    fn json_keeps_daemon_order() {
        let v = data();
        assert_eq!(
            run("{{json .State}}", &v).unwrap(),
            r#"{"Pid":1234,"Running":true,"Status":"running","ExitCode":0}"#
        );
        assert_eq!(
            run("{{json .Config.Labels}}", &v).unwrap(),
            r#"{"z":"1","a":"2"}"#
        );
        assert_eq!(run("{{json .Mounts}}", &v).unwrap(), "[]");
        assert_eq!(
            run("{{json .Name}}", &j(r#"{"Name":"<a&b>"}"#)).unwrap(),
            "\"<a&b>\""
        );
    }

    #[test]
    fn range_over_huge_counts_is_refused_not_run() {
        let v = J::Null;
        assert_eq!(run("{{range 3}}{{.}}{{end}}", &v).unwrap(), "012");
        let e = run("{{range 99999999999}}x{{end}}", &v).unwrap_err();
        assert!(e.contains("more than 100000 iterations"), "{e}");
        let e = run(
            "{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}",
            &v,
        )
        .unwrap_err();
        assert!(e.contains("more than 100000 iterations"), "{e}");
    }

    #[test]
    fn printf_widths_past_a_million_are_go_s_noverb() {
        let v = J::Null;
        let out = |t: &str| run(t, &v).unwrap();
        assert_eq!(out(r#"{{printf "[%-5d]" 7}}"#), "[7    ]");
        // as the docker CLI prints them (Go's fmt)
        // (Go types the literals as int here: "%!(EXTRA int=1, int=2)")
        assert!(out(r#"{{printf "%-99999999d|%d" 1 2}}"#).starts_with("%!(NOVERB)%!(EXTRA "));
        assert_eq!(
            out(r#"{{printf "%5.99999999f|" 1.5}}"#),
            "%!(NOVERB)%!(EXTRA float64=1.5)"
        );
    }

    #[test]
    fn range_if_with() {
        let v = data();
        assert_eq!(
            run("{{range .Config.Cmd}}[{{.}}]{{end}}", &v).unwrap(),
            "[sleep][100]"
        );
        assert_eq!(
            run("{{range $i, $c := .Config.Cmd}}{{$i}}={{$c}} {{end}}", &v).unwrap(),
            "0=sleep 1=100 "
        );
        // maps iterate in sorted key order, like Go
        assert_eq!(
            run(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &v
            )
            .unwrap(),
            "a=2;z=1;"
        );
        assert_eq!(
            run("{{range .Mounts}}x{{else}}none{{end}}", &v).unwrap(),
            "none"
        );
        assert_eq!(run("{{range .Config.Env}}x{{end}}", &v).unwrap(), "");
        assert_eq!(
            run("{{if .State.Running}}up{{else}}down{{end}}", &v).unwrap(),
            "up"
        );
        assert_eq!(
            run("{{if .State.ExitCode}}bad{{else}}ok{{end}}", &v).unwrap(),
            "ok"
        );
        assert_eq!(run("{{if eq .State.Status \"exited\"}}e{{else if eq .State.Status \"running\"}}r{{else}}?{{end}}", &v).unwrap(), "r");
        assert_eq!(
            run("{{if and .State.Running (not .Config.Tty)}}y{{end}}", &v).unwrap(),
            "y"
        );
        assert_eq!(
            run("{{if or .Config.Tty .Mounts}}y{{else}}n{{end}}", &v).unwrap(),
            "n"
        );
        assert_eq!(
            run(
                "{{if gt .State.Pid 1000}}big{{end}}{{if lt .State.Pid 10}}small{{end}}",
                &v
            )
            .unwrap(),
            "big"
        );
        assert_eq!(
            run(
                "{{if ne .Name \"/y\"}}ne{{end}}{{if eq .State.Pid 1 1234}}any{{end}}",
                &v
            )
            .unwrap(),
            "neany"
        );
        assert_eq!(
            run("{{with .State}}{{.Status}}/{{$.Name}}{{end}}", &v).unwrap(),
            "running//x"
        );
        assert_eq!(
            run("{{with .Mounts}}m{{else}}no mounts{{end}}", &v).unwrap(),
            "no mounts"
        );
        assert_eq!(
            run(
                "{{range .Config.Cmd}}{{if eq . \"100\"}}{{.}}{{end}}{{end}}",
                &v
            )
            .unwrap(),
            "100"
        );
        assert_eq!(
            run("{{/* c */}}a\n{{- range .Config.Cmd}}\n  {{.}}{{end}}", &v).unwrap(),
            "a\n  sleep\n  100"
        );
    }

    #[test]
    fn errors() {
        let v = data();
        assert_eq!(
            run("{{.Nope}}", &v).unwrap_err(),
            "template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
        assert_eq!(
            run("{{.State.Nope}}", &v).unwrap_err(),
            "template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
        );
        assert!(Template::parse("{{range .X}}")
            .err()
            .unwrap()
            .contains("unexpected EOF"));
        assert!(Template::parse("{{.X").is_err());
        assert_eq!(
            Template::parse("{{foo .X}}").err().unwrap(),
            "template: :1: function \"foo\" not defined"
        );
        assert!(run("{{eq .Name 1}}", &v)
            .unwrap_err()
            .contains("incompatible types for comparison"));
        assert!(run("{{index .Config.Cmd 5}}", &v)
            .unwrap_err()
            .contains("index out of range: 5"));
    }

    #[test]
    fn list_table() {
        let items = vec![
            j(
                r#"{"ID":"7886aaaaaaaa","Status":"Up 2 seconds","Names":"a","\u0000labels":{"k":"v"}}"#,
            ),
            j(
                r#"{"ID":"1234bbbbbbbb","Status":"Exited (0) 3 seconds ago","Names":"long-name","\u0000labels":{}}"#,
            ),
        ];
        let h = [
            ("ID", "CONTAINER ID"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ];
        assert_eq!(
            render_list("table {{.ID}}\\t{{.Status}}\\t{{.Names}}", &items, &h).unwrap(),
            "CONTAINER ID   STATUS                     NAMES\n\
             7886aaaaaaaa   Up 2 seconds               a\n\
             1234bbbbbbbb   Exited (0) 3 seconds ago   long-name\n"
        );
        assert_eq!(
            render_list("{{.Names}}:{{.Label \"k\"}}", &items, &h).unwrap(),
            "a:v\nlong-name:\n"
        );
    }

    #[test]
    fn indent() {
        let raw = br#"[{"Id":"x","Args":[],"State":{"Pid":1},"M":{},"L":["a","b:c"]}]"#;
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"State\": {\n            \"Pid\": 1\n        },\n        \"M\": {},\n        \"L\": [\n            \"a\",\n            \"b:c\"\n        ]\n    }\n]";
        assert_eq!(indent_json(raw, "    "), want);
        assert_eq!(indent_json(b"[]", "    "), "[]");
    }
}
