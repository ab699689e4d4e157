//! The Dockerfile grammar → a tree of stages and instructions. Words are kept as written
//! (variables are expanded by the executor, which knows the ARG/ENV state at each step).

/// Which of docker's three error forms a [`ParseError`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// an instruction's arguments or flags are wrong:
    /// `dockerfile parse error line 3: unknown instruction: FOO`
    Instruction,
    /// the text itself (directives, JSON, `ENV` pairs, heredocs):
    /// `failed to parse Dockerfile: ENV must have two arguments` (docker prints no line here)
    Syntax,
    /// docker prints the message alone: `no build stage in current context`
    Plain,
    /// a file of zero bytes: `the Dockerfile (Dockerfile) cannot be empty`
    Empty,
}

/// A parse failure, with the 1-based line it was found on. `Display` is docker's (20.10
/// classic builder) text for a file named `Dockerfile`; [`ParseError::message`] names another.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", self.message("Dockerfile"))]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error in an instruction (`dockerfile parse error line N: msg`).
    pub fn instruction(line: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line,
            msg: msg.into(),
            kind: ParseErrorKind::Instruction,
        }
    }

    fn syntax(line: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line,
            msg: msg.into(),
            kind: ParseErrorKind::Syntax,
        }
    }

    /// docker's text when the Dockerfile is called `name` (the `-f` / `dockerfile` parameter).
    pub fn message(&self, name: &str) -> String {
        match self.kind {
            ParseErrorKind::Instruction => {
                format!("dockerfile parse error line {}: {}", self.line, self.msg)
            }
            ParseErrorKind::Syntax => format!("failed to parse {name}: {}", self.msg),
            ParseErrorKind::Plain => self.msg.clone(),
            ParseErrorKind::Empty => format!("the Dockerfile ({name}) cannot be empty"),
        }
    }
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// the `# escape=` directive (`\` unless set to `` ` ``)
    pub escape: char,
    /// the `# syntax=` directive, if any (recorded, not acted on)
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines only, unless re-declared)
    pub meta_args: Vec<Instruction>,
    /// the stages, in file order
    pub stages: Vec<Stage>,
    /// docker's parse warnings, one line each (print each followed by `\n`, before
    /// `Step 1/N`; docker 20.10 writes them to the build's stderr stream, in red):
    /// `[WARNING]: Empty continuation line found in:\n    RUN a b` per instruction, then
    /// once `[WARNING]: Empty continuation lines will become errors in a future release.`
    pub warnings: Vec<String>,
}

/// One `FROM` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// the `FROM` line itself (`Kind::From`)
    pub from: Instruction,
    /// the instructions of the stage, in order (no `FROM` among them)
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// the `AS name`, lower-cased as docker does
    pub fn name(&self) -> Option<&str> {
        match &self.from.kind {
            Kind::From { alias, .. } => alias.as_deref(),
            _ => None,
        }
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the instruction's first line
    pub line: usize,
    /// the instruction as docker prints it in `Step N/M : <original>`: the keyword as written,
    /// continuation lines joined (the escape + newline removed), comments inside dropped
    pub original: String,
    pub kind: Kind,
}

impl Instruction {
    /// For `ONBUILD <trigger>`: the text docker stores in the image's `OnBuild` list (the
    /// trigger as written, each heredoc body and terminator appended on lines of their own);
    /// [`parse_trigger`] reads it back. `None` for other instructions.
    pub fn trigger_text(&self) -> Option<String> {
        let Kind::Onbuild(sub) = &self.kind else {
            return None;
        };
        let mut text = sub.original.clone();
        let heredocs: &[Heredoc] = match &sub.kind {
            Kind::Run { heredocs, .. } => heredocs,
            Kind::Copy(spec) | Kind::Add(spec) => &spec.heredocs,
            _ => &[],
        };
        for doc in heredocs {
            text.push('\n');
            text.push_str(&doc.content);
            text.push_str(&doc.name);
        }
        Some(text)
    }
}

/// Shell or exec (JSON array) form of RUN / CMD / ENTRYPOINT / HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// A heredoc body (`<<EOF`, `<<-EOF` strips leading tabs, `<<"EOF"`/`<<'EOF'` disables expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// the delimiter word (`EOF`)
    pub name: String,
    /// the body, each line ending in `\n`, tabs already stripped for `<<-`
    pub content: String,
    /// false when the delimiter was quoted
    pub expand: bool,
    /// for `RUN <<EOF` the body is the script; for `COPY <<name /dest` the file `name`
    pub file_descriptor: Option<u32>,
}

/// COPY / ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// source words as written (before expansion); a heredoc source is its name
    pub srcs: Vec<String>,
    /// destination as written
    pub dest: String,
    /// `--from=<stage name|index|image>`
    pub from: Option<String>,
    /// `--chown=user[:group]`
    pub chown: Option<String>,
    /// `--chmod=0755`
    pub chmod: Option<String>,
    /// `--link` (accepted, same result)
    pub link: bool,
    /// `--keep-git-dir`, `--checksum=` (ADD) and other flags the classic builder ignores
    pub other_flags: Vec<(String, String)>,
    /// bodies of heredoc sources (`COPY <<EOF /x`)
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK options (durations as written, e.g. `30s`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `NONE` → `["NONE"]`; `CMD x` → `["CMD-SHELL", "x"]`; `CMD ["a","b"]` → `["CMD","a","b"]`
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// What an instruction says. Words are unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: Command,
        heredocs: Vec<Heredoc>,
        /// `--mount=`, `--network=`, `--security=` as written (the classic builder refuses
        /// what it cannot do)
        flags: Vec<(String, String)>,
    },
    Cmd(Command),
    Entrypoint(Command),
    /// JSON array form only
    Shell(Vec<String>),
    /// `ENV a=b c=d` or the legacy `ENV a b c` (one pair: `a` = `b c`); quotes kept
    Env(Vec<(String, String)>),
    /// `ARG name[=default]` (several per line allowed)
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    /// JSON array or space-separated
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Copy(CopySpec),
    Add(CopySpec),
    /// the trigger instruction, parsed (ONBUILD of ONBUILD / FROM / MAINTAINER is an error)
    Onbuild(Box<Instruction>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    Maintainer(String),
}

/// Parses a Dockerfile's text, in docker's two passes: first the lines (directives,
/// continuations, comments, JSON forms, `ENV`/`LABEL` pairs, heredoc bodies), then each
/// instruction's arguments and flags, then the stages. An error of the first pass wins over
/// one of the second, as in docker.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    if text.is_empty() {
        return Err(ParseError {
            line: 0,
            msg: "the Dockerfile cannot be empty".into(),
            kind: ParseErrorKind::Empty,
        });
    }
    let (nodes, directives, mut warnings) = first_pass(text)?;
    if nodes.is_empty() {
        return Err(ParseError::syntax(
            split_lines(text).len(),
            "file with no instructions",
        ));
    }
    if !warnings.is_empty() {
        warnings.push(
            "[WARNING]: Empty continuation lines will become errors in a future release.".into(),
        );
    }

    let mut file = Dockerfile {
        escape: directives.escape,
        syntax: directives.syntax,
        meta_args: Vec::new(),
        stages: Vec::new(),
        warnings,
    };
    for node in nodes {
        let line = node.line;
        let ins = instruction(node)?;
        match (&ins.kind, file.stages.last_mut()) {
            (Kind::From { .. }, _) => file.stages.push(Stage {
                from: ins,
                instructions: Vec::new(),
            }),
            (Kind::Arg(_), None) => file.meta_args.push(ins),
            (_, Some(stage)) => stage.instructions.push(ins),
            (_, None) => {
                return Err(ParseError {
                    line,
                    msg: "no build stage in current context".into(),
                    kind: ParseErrorKind::Plain,
                })
            }
        }
    }
    Ok(file)
}

/// One ONBUILD trigger as an image's config stores it (`RUN echo hi`, from the parent's
/// `ONBUILD RUN echo hi`), parsed as docker does when a child build fires it: one
/// instruction (a heredoc body may follow it), the default escape, errors in docker's bare
/// form (`unknown instruction: FOO`, kind [`ParseErrorKind::Plain`]).
pub fn parse_trigger(text: &str) -> Result<Instruction, ParseError> {
    let plain = |line: usize, msg: String| ParseError {
        line,
        msg,
        kind: ParseErrorKind::Plain,
    };
    let (mut nodes, _, _) = first_pass(text).map_err(|e| plain(e.line, e.msg))?;
    if nodes.len() != 1 {
        return Err(plain(
            1,
            "onbuild trigger should be a single expression".into(),
        ));
    }
    let node = nodes.remove(0);
    let keyword = node.keyword.to_uppercase();
    if matches!(keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(plain(
            node.line,
            format!("{keyword} isn't allowed as an ONBUILD trigger"),
        ));
    }
    instruction(node).map_err(|e| plain(e.line, e.msg))
}

/// docker's first pass: the lines → nodes (directives, continuations, comments, heredoc
/// bodies, each keyword's argument syntax).
fn first_pass(text: &str) -> Result<(Vec<Node>, Directives, Vec<String>), ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = split_lines(text);
    let mut directives = Directives::default();
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let token = directives.process_line(raw, true, i + 1)?;
        i += 1;
        let start = i;
        let (mut line, mut end_of_line) = trim_continuation(&token, directives.escape);
        if end_of_line && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !end_of_line && i < lines.len() {
            let raw = lines[i];
            let token = directives.process_line(raw, false, i + 1)?;
            i += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (more, eol) = trim_continuation(&token, directives.escape);
            line.push_str(&more);
            end_of_line = eol;
        }
        if empty_continuation {
            warnings.push(format!(
                "[WARNING]: Empty continuation line found in:\n    {line}"
            ));
        }
        let mut node = node_from_line(&line, directives.escape, start)?;
        // heredoc bodies follow the instruction's last line, one after the other
        let target = match node.sub.as_deref_mut() {
            Some(sub) => sub,
            None => &mut node,
        };
        if target.can_contain_heredoc() {
            for mut doc in heredocs_in(&line) {
                let mut terminated = false;
                let mut content = String::new();
                while i < lines.len() {
                    let body = lines[i];
                    i += 1;
                    let bare = body.trim_end_matches('\r');
                    let candidate = if doc.chomp {
                        bare.trim_start_matches('\t')
                    } else {
                        bare
                    };
                    if candidate == doc.heredoc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(body);
                    content.push('\n');
                }
                if !terminated {
                    return Err(ParseError::syntax(start, "unterminated heredoc"));
                }
                if doc.chomp {
                    content = content
                        .split_inclusive('\n')
                        .map(|l| l.trim_start_matches('\t'))
                        .collect();
                }
                doc.heredoc.content = content;
                target.heredocs.push(doc.heredoc);
            }
        }
        nodes.push(node);
    }
    Ok((nodes, directives, warnings))
}

/// The lines, split on `\n` (a `\r` before it kept: heredoc bodies keep their line ends,
/// everything else trims them), no empty last line after a final newline.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

fn is_comment(raw: &str) -> bool {
    raw.trim_start().starts_with('#')
}

/// Parser directives: only at the very top, before any instruction, comment or blank line.
struct Directives {
    escape: char,
    syntax: Option<String>,
    escape_seen: bool,
    done: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            escape_seen: false,
            done: false,
        }
    }
}

impl Directives {
    /// One line: directives looked for, leading space dropped (`strip_left`), a comment
    /// line becomes empty.
    fn process_line(
        &mut self,
        raw: &str,
        strip_left: bool,
        line: usize,
    ) -> Result<String, ParseError> {
        let raw = raw.trim_end_matches(['\r', '\n']);
        let token = if strip_left { raw.trim_start() } else { raw };
        self.possible_directive(token, line)?;
        if token.starts_with('#') {
            return Ok(String::new());
        }
        Ok(token.to_string())
    }

    /// `#` space* name space* `=` space* value: `escape` and `syntax` are directives, any
    /// other line ends the directive block.
    fn possible_directive(&mut self, token: &str, line: usize) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(token) else {
            self.done = true;
            return Ok(());
        };
        match name.to_ascii_lowercase().as_str() {
            "escape" => {
                if self.escape_seen {
                    return Err(ParseError::syntax(
                        line,
                        "only one escape parser directive can be used",
                    ));
                }
                self.escape_seen = true;
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError::syntax(
                            line,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                };
            }
            "syntax" => {
                if self.syntax.is_some() {
                    return Err(ParseError::syntax(
                        line,
                        "only one syntax parser directive can be used",
                    ));
                }
                self.syntax = Some(value.to_string());
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn directive(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Drops a trailing escape (followed by blanks only); `true` when the line ends there. An
/// escaped escape (`a\\`) is no continuation, a line of just the escape is one.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(joined) if !joined.ends_with(escape) => (joined.to_string(), false),
        _ => (line.to_string(), true),
    }
}

/// The first pass's view of one instruction (docker's AST node).
#[derive(Debug)]
struct Node {
    line: usize,
    /// the keyword as written
    keyword: String,
    /// the joined line, trimmed
    original: String,
    /// `--name[=value]` words before the arguments
    flags: Vec<String>,
    /// the arguments as the keyword's line parser splits them
    args: Vec<String>,
    /// the arguments were a JSON array
    json: bool,
    heredocs: Vec<Heredoc>,
    /// ONBUILD's trigger
    sub: Option<Box<Node>>,
}

impl Node {
    fn lower(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    fn can_contain_heredoc(&self) -> bool {
        matches!(self.lower().as_str(), "run" | "copy" | "add") && !self.json
    }
}

fn is_go_whitespace_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// One joined line → a node: keyword, builder flags, arguments per the keyword's syntax.
fn node_from_line(line: &str, escape: char, start: usize) -> Result<Node, ParseError> {
    let trimmed = line.trim();
    let (keyword, rest) = match trimmed.find(is_go_whitespace_sep) {
        Some(at) => (
            &trimmed[..at],
            trimmed[at..].trim_start_matches(is_go_whitespace_sep),
        ),
        None => (trimmed, ""),
    };
    let (args_text, flags) = extract_builder_flags(rest);
    let args_text = args_text.trim();
    let mut node = Node {
        line: start,
        keyword: keyword.to_string(),
        original: trimmed.to_string(),
        flags,
        args: Vec::new(),
        json: false,
        heredocs: Vec::new(),
        sub: None,
    };
    let err = |msg: String| ParseError::syntax(start, msg);
    match node.lower().as_str() {
        "add" | "copy" | "volume" => match parse_json(args_text).map_err(err)? {
            Some(list) => {
                node.args = list;
                node.json = true;
            }
            None => node.args = split_whitespace(args_text),
        },
        "cmd" | "entrypoint" | "run" | "shell" if !args_text.is_empty() => {
            match parse_json(args_text).map_err(err)? {
                Some(list) => {
                    node.args = list;
                    node.json = true;
                }
                None => node.args = vec![args_text.to_string()],
            }
        }
        "arg" => node.args = parse_words(args_text, escape),
        "env" => node.args = parse_name_val(args_text, "ENV", escape).map_err(err)?,
        "label" => node.args = parse_name_val(args_text, "LABEL", escape).map_err(err)?,
        "expose" | "from" => node.args = split_whitespace(args_text),
        "maintainer" | "stopsignal" | "user" | "workdir" if !args_text.is_empty() => {
            node.args = vec![args_text.to_string()];
        }
        "healthcheck" => {
            let sep = args_text
                .find(char::is_whitespace)
                .unwrap_or(args_text.len());
            if sep > 0 {
                let typ = &args_text[..sep];
                let cmd = args_text[sep..].trim_start();
                node.args.push(typ.to_string());
                if !cmd.is_empty() {
                    match parse_json(cmd).map_err(err)? {
                        Some(list) => {
                            node.args.extend(list);
                            node.json = true;
                        }
                        None => node.args.push(cmd.to_string()),
                    }
                }
            }
        }
        "onbuild" if !args_text.is_empty() => {
            let sub = node_from_line(args_text, escape, start)?;
            node.args = vec![sub.keyword.clone()];
            node.sub = Some(Box::new(sub));
        }
        _ => {}
    }
    Ok(node)
}

/// `[t\v\f\r ]+`-separated words (no quoting), as FROM, EXPOSE and non-JSON COPY split.
fn split_whitespace(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(is_go_whitespace_sep)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A JSON array of strings (`Ok(Some)`), not JSON at all (`Ok(None)`: the shell form), or a
/// JSON array with something else than strings (docker's error). Text after the array is
/// ignored, as docker's decoder does.
fn parse_json(text: &str) -> Result<Option<Vec<String>>, String> {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(serde_json::Value::Array(items))) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_string(),
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// docker's `extractBuilderFlags`: the leading `--x[=y]` words (quotes and `\` processed in
/// them), then the rest of the line. A lone `--` ends the flags.
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].1.is_whitespace() {
            pos += 1;
        }
        if pos >= chars.len() {
            return (String::new(), words);
        }
        let is_flag = chars[pos].1 == '-' && pos + 1 < chars.len() && chars[pos + 1].1 == '-';
        if !is_flag {
            return (line[chars[pos].0..].to_string(), words);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while pos < chars.len() {
            let ch = chars[pos].1;
            if let Some(q) = quote {
                if ch == q {
                    quote = None;
                } else if ch == '\\' {
                    if pos + 1 < chars.len() {
                        pos += 1;
                        word.push(chars[pos].1);
                    }
                } else {
                    word.push(ch);
                }
                pos += 1;
                continue;
            }
            if ch.is_whitespace() {
                break;
            }
            if ch == '\'' || ch == '"' {
                quote = Some(ch);
                blank_ok = true;
            } else if ch == '\\' {
                if pos + 1 < chars.len() {
                    pos += 1;
                    word.push(chars[pos].1);
                }
            } else {
                word.push(ch);
            }
            pos += 1;
        }
        if word == "--" {
            let rest = chars.get(pos).map(|(at, _)| &line[*at..]).unwrap_or("");
            return (rest.to_string(), words);
        }
        if blank_ok || !word.is_empty() {
            words.push(word);
        }
    }
}

/// docker's `parseWords`: whitespace-separated words, quotes and escapes kept in the word
/// but respected (a quoted space does not split).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match chars.next() {
                    Some(next) => {
                        word.push(ch);
                        word.push(next);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            in_word = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            if let Some(next) = chars.next() {
                word.push(ch);
                word.push(next);
            }
            continue;
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `ENV`/`LABEL`: `k=v k2=v2` (words, quotes kept) or the legacy `k v…` (one pair, the
/// value the rest of the line). Returns `[k, v, k2, v2, …]`.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_go_whitespace_sep);
        let name = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .map(|v| v.trim_start_matches(is_go_whitespace_sep));
        return match value {
            Some(value) => Ok(vec![name.to_string(), value.to_string()]),
            None => Err(format!("{key} must have two arguments")),
        };
    }
    let mut out = Vec::new();
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(word)
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

/// Go's `%q` of a string (enough of it for error texts).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

struct FoundHeredoc {
    heredoc: Heredoc,
    chomp: bool,
}

/// `[n]<<[-]WORD` in a line's words (quotes kept, so `"<<EOF"` is no heredoc).
fn heredocs_in(line: &str) -> Vec<FoundHeredoc> {
    raw_words(line)
        .iter()
        .filter_map(|w| heredoc_word(w))
        .collect()
}

/// `^(\d*)<<(-?)([^<]*)$` with a non-empty, single-word delimiter.
fn heredoc_word(word: &str) -> Option<FoundHeredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = crate::expand::unquote(rest, '\\');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let expand = !rest.contains(['\'', '"']);
    Some(FoundHeredoc {
        heredoc: Heredoc {
            name,
            content: String::new(),
            expand,
            file_descriptor: if fd.is_empty() { None } else { fd.parse().ok() },
        },
        chomp,
    })
}

/// Words split on unquoted whitespace, quotes and `\` escapes kept as written.
fn raw_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match quote {
            Some(q) => {
                word.push(ch);
                if ch == q {
                    quote = None;
                } else if ch == '\\' && q == '"' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
            None => {
                if ch.is_whitespace() {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    continue;
                }
                word.push(ch);
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                } else if ch == '\\' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

// ---- second pass: instructions ----

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    Str,
    Strs,
}

/// docker's BFlags: `--name=value` against the flags an instruction takes.
fn parse_flags(
    words: &[String],
    allowed: &[(&str, FlagType)],
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for word in words {
        let Some(arg) = word.strip_prefix("--") else {
            return Err(format!("Arg should start with -- : {word}"));
        };
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let Some((_, typ)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(format!("Unknown flag: {name}"));
        };
        if *typ != FlagType::Strs && out.iter().any(|(n, _)| n == name) {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        let value = match (typ, value) {
            (FlagType::Bool, Some("")) => return Err(format!("Missing a value on flag: {name}")),
            (FlagType::Bool, None) => "true".to_string(),
            (FlagType::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                l @ ("true" | "false") => l.to_string(),
                _ => return Err(format!("expecting boolean value for flag {name}, not: {v}")),
            },
            (_, None) => return Err(format!("Missing a value on flag: {name}")),
            (_, Some(v)) => v.to_string(),
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn take_flag(flags: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = flags.iter().position(|(n, _)| n == name)?;
    Some(flags.remove(at).1)
}

fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.join(" "))
    }
}

const COPY_FLAGS: &[(&str, FlagType)] = &[
    ("from", FlagType::Str),
    ("chown", FlagType::Str),
    ("chmod", FlagType::Str),
    ("link", FlagType::Bool),
    ("parents", FlagType::Bool),
    ("exclude", FlagType::Strs),
];

const ADD_FLAGS: &[(&str, FlagType)] = &[
    ("chown", FlagType::Str),
    ("chmod", FlagType::Str),
    ("link", FlagType::Bool),
    ("checksum", FlagType::Str),
    ("keep-git-dir", FlagType::Bool),
    ("exclude", FlagType::Strs),
];

/// One node → an instruction, with docker's checks and texts.
fn instruction(node: Node) -> Result<Instruction, ParseError> {
    let line = node.line;
    let kind = instruction_kind(&node).map_err(|msg| ParseError::instruction(line, msg))?;
    Ok(Instruction {
        line,
        original: node.original,
        kind,
    })
}

fn instruction_kind(node: &Node) -> Result<Kind, String> {
    let upper = node.keyword.to_uppercase();
    let exactly_one = |node: &Node| -> Result<String, String> {
        if node.args.len() != 1 {
            return Err(format!("{upper} requires exactly one argument"));
        }
        parse_flags(&node.flags, &[])?;
        Ok(node.args[0].clone())
    };
    let at_least_one = || format!("{upper} requires at least one argument");
    let kind = match node.lower().as_str() {
        "from" => {
            let alias = match node.args.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(name)
                        ));
                    }
                    Some(lower)
                }
                [_] => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let mut flags = parse_flags(&node.flags, &[("platform", FlagType::Str)])?;
            Kind::From {
                image: node.args[0].clone(),
                alias,
                platform: take_flag(&mut flags, "platform"),
            }
        }
        "run" => {
            let flags = parse_flags(
                &node.flags,
                &[
                    ("mount", FlagType::Strs),
                    ("network", FlagType::Str),
                    ("security", FlagType::Str),
                ],
            )?;
            Kind::Run {
                cmd: command(node),
                heredocs: node.heredocs.clone(),
                flags,
            }
        }
        "cmd" => {
            parse_flags(&node.flags, &[])?;
            Kind::Cmd(command(node))
        }
        "entrypoint" => {
            parse_flags(&node.flags, &[])?;
            Kind::Entrypoint(command(node))
        }
        "shell" => {
            parse_flags(&node.flags, &[])?;
            if node.args.is_empty() {
                return Err(at_least_one());
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Kind::Shell(node.args.clone())
        }
        "env" | "label" => {
            parse_flags(&node.flags, &[])?;
            if node.args.is_empty() {
                return Err(at_least_one());
            }
            let mut pairs = Vec::new();
            for pair in node.args.chunks(2) {
                let [k, v] = pair else {
                    return Err(format!("Bad input to {upper}, too many arguments"));
                };
                if k.is_empty() {
                    return Err(format!("{upper} names can not be blank"));
                }
                pairs.push((k.clone(), v.clone()));
            }
            if upper == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            }
        }
        "arg" => {
            // docker's ARG ignores builder flags (`ARG --x=1 a` is `ARG a`)
            if node.args.is_empty() {
                return Err(at_least_one());
            }
            let mut pairs = Vec::new();
            for word in &node.args {
                match word.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((word.clone(), None)),
                }
            }
            Kind::Arg(pairs)
        }
        "expose" => {
            if node.args.is_empty() {
                return Err(at_least_one());
            }
            parse_flags(&node.flags, &[])?;
            Kind::Expose(node.args.clone())
        }
        "volume" => {
            if node.args.is_empty() {
                return Err(at_least_one());
            }
            parse_flags(&node.flags, &[])?;
            let mut volumes = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                volumes.push(v.to_string());
            }
            Kind::Volume(volumes)
        }
        "user" => Kind::User(exactly_one(node)?),
        "workdir" => Kind::Workdir(exactly_one(node)?),
        // docker's STOPSIGNAL ignores builder flags
        "stopsignal" => match node.args.as_slice() {
            [sig] => Kind::Stopsignal(sig.clone()),
            _ => return Err(format!("{upper} requires exactly one argument")),
        },
        "maintainer" => Kind::Maintainer(exactly_one(node)?),
        "copy" | "add" => {
            if node.args.len() < 2 {
                return Err(format!(
                    "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
                ));
            }
            let is_copy = upper == "COPY";
            let mut flags = parse_flags(&node.flags, if is_copy { COPY_FLAGS } else { ADD_FLAGS })?;
            let (dest, srcs) = node.args.split_last().unwrap_or((&node.args[0], &[]));
            if !node.json && heredoc_word(dest).is_some() {
                return Err(format!("{upper} cannot accept a heredoc as a destination"));
            }
            let srcs = srcs
                .iter()
                .map(|w| match heredoc_word(w).filter(|_| !node.json) {
                    Some(doc) => doc.heredoc.name,
                    None => w.clone(),
                })
                .collect();
            let spec = CopySpec {
                srcs,
                dest: dest.clone(),
                from: take_flag(&mut flags, "from"),
                chown: take_flag(&mut flags, "chown"),
                chmod: take_flag(&mut flags, "chmod"),
                link: take_flag(&mut flags, "link").is_some_and(|v| v == "true"),
                other_flags: flags,
                heredocs: node.heredocs.clone(),
            };
            if is_copy {
                Kind::Copy(spec)
            } else {
                Kind::Add(spec)
            }
        }
        "onbuild" => {
            let Some(sub) = node.sub.as_deref() else {
                return Err(at_least_one());
            };
            parse_flags(&node.flags, &[])?;
            let trigger = sub.keyword.to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let kind = instruction_kind(sub)?;
            Kind::Onbuild(Box::new(Instruction {
                line: node.line,
                original: sub.original.clone(),
                kind,
            }))
        }
        "healthcheck" => healthcheck(node)?,
        _ => return Err(format!("unknown instruction: {upper}")),
    };
    Ok(kind)
}

/// `^[a-z][a-z0-9-_\.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn healthcheck(node: &Node) -> Result<Kind, String> {
    let Some(typ) = node.args.first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let typ = typ.to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Kind::Healthcheck(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let mut flags = parse_flags(
        &node.flags,
        &[
            ("interval", FlagType::Str),
            ("timeout", FlagType::Str),
            ("start-period", FlagType::Str),
            ("start-interval", FlagType::Str),
            ("retries", FlagType::Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            go_quote(&typ)
        ));
    }
    if rest.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = Vec::new();
    if node.json {
        test.push("CMD".to_string());
        test.extend(rest.iter().cloned());
    } else {
        test.push("CMD-SHELL".to_string());
        test.push(rest.join(" "));
    }
    let mut duration = |name: &str| -> Result<Option<String>, String> {
        let Some(v) = take_flag(&mut flags, name) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        let nanos = go_duration(&v)?;
        if nanos < 1_000_000.0 {
            return Err(format!(
                "Interval {} cannot be less than 1ms",
                go_quote(name)
            ));
        }
        Ok(Some(v))
    };
    let interval = duration("interval")?;
    let timeout = duration("timeout")?;
    let start_period = duration("start-period")?;
    let start_interval = duration("start-interval")?;
    let retries = match take_flag(&mut flags, "retries").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let n = go_parse_int32(&v)?;
            if n < 1 {
                return Err(format!("--retries must be at least 1 (not {n})"));
            }
            Some(v)
        }
    };
    Ok(Kind::Healthcheck(Healthcheck {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}

/// Go's `strconv.ParseInt(s, 10, 32)` with its error texts.
fn go_parse_int32(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    match s.parse::<i32>() {
        Ok(n) => Ok(n.into()),
        Err(_) => Err(format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )),
    }
}

/// Go's `time.ParseDuration`, in nanoseconds, with its error texts.
pub fn go_duration(s: &str) -> Result<f64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(s));
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "" => return Err(format!("time: missing unit in duration {}", go_quote(s))),
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(other),
                    go_quote(s)
                ))
            }
        };
        total += value * scale;
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Dockerfile {
        match parse(text) {
            Ok(f) => f,
            Err(e) => panic!("parse failed: {e}\n{text}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(f) => panic!("expected an error, got {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// the kinds of the first stage's instructions
    fn kinds(text: &str) -> Vec<Kind> {
        p(text).stages[0]
            .instructions
            .iter()
            .map(|i| i.kind.clone())
            .collect()
    }

    fn one(text: &str) -> Kind {
        let mut k = kinds(&format!("FROM scratch\n{text}"));
        assert_eq!(k.len(), 1, "{k:?}");
        k.remove(0)
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn stages_meta_args_and_lines() {
        let f = p("# a comment\nARG BASE=busybox\nARG V\nFROM $BASE AS Build\nRUN echo hi\n\nFROM scratch\nCOPY --from=build /a /b\n");
        assert_eq!(f.escape, '\\');
        assert_eq!(f.syntax, None);
        assert_eq!(f.meta_args.len(), 2);
        assert_eq!(
            f.meta_args[0].kind,
            Kind::Arg(vec![("BASE".into(), Some("busybox".into()))])
        );
        assert_eq!(f.meta_args[1].kind, Kind::Arg(vec![("V".into(), None)]));
        assert_eq!(f.stages.len(), 2);
        assert_eq!(f.stages[0].name(), Some("build"));
        assert_eq!(f.stages[0].from.line, 4);
        assert_eq!(f.stages[0].from.original, "FROM $BASE AS Build");
        assert_eq!(f.stages[0].instructions[0].line, 5);
        assert_eq!(f.stages[1].name(), None);
        assert_eq!(f.stages[1].from.line, 7);
        let Kind::Copy(c) = &f.stages[1].instructions[0].kind else {
            panic!()
        };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.srcs, s(&["/a"]));
        assert_eq!(c.dest, "/b");
        assert_eq!(f.stages[1].instructions[0].line, 8);
    }

    #[test]
    fn from_forms() {
        let f = p("from --platform=linux/amd64 alpine:3 as x-1.y_z\n");
        assert_eq!(
            f.stages[0].from.kind,
            Kind::From {
                image: "alpine:3".into(),
                alias: Some("x-1.y_z".into()),
                platform: Some("linux/amd64".into())
            }
        );
        assert_eq!(
            f.stages[0].from.original,
            "from --platform=linux/amd64 alpine:3 as x-1.y_z"
        );
        assert_eq!(
            err("FROM"),
            "dockerfile parse error line 1: FROM requires either one or three arguments"
        );
        assert_eq!(
            err("FROM a b"),
            "dockerfile parse error line 1: FROM requires either one or three arguments"
        );
        assert_eq!(
            err("FROM a AS 1x"),
            "dockerfile parse error line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
        );
        assert_eq!(
            err("FROM --plat=x a"),
            "dockerfile parse error line 1: Unknown flag: plat"
        );
    }

    #[test]
    fn run_cmd_entrypoint_forms() {
        assert_eq!(
            one("RUN echo hi  there"),
            Kind::Run {
                cmd: Command::Shell("echo hi  there".into()),
                heredocs: vec![],
                flags: vec![]
            }
        );
        assert_eq!(
            one(r#"RUN ["/bin/sh", "-c", "echo \"x\""]"#),
            Kind::Run {
                cmd: Command::Exec(s(&["/bin/sh", "-c", "echo \"x\""])),
                heredocs: vec![],
                flags: vec![]
            }
        );
        // not JSON (single quotes) → shell form, kept as written
        assert_eq!(
            one("CMD ['a', 'b']"),
            Kind::Cmd(Command::Shell("['a', 'b']".into()))
        );
        assert_eq!(
            one(r#"ENTRYPOINT ["top", "-b"]"#),
            Kind::Entrypoint(Command::Exec(s(&["top", "-b"])))
        );
        assert_eq!(one("CMD"), Kind::Cmd(Command::Shell(String::new())));
        assert_eq!(one("CMD []"), Kind::Cmd(Command::Exec(vec![])));
        assert_eq!(
            one(
                "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none --security=insecure make"
            ),
            Kind::Run {
                cmd: Command::Shell("make".into()),
                heredocs: vec![],
                flags: pairs(&[
                    ("mount", "type=cache,target=/c"),
                    ("mount", "type=tmpfs,target=/t"),
                    ("network", "none"),
                    ("security", "insecure")
                ])
            }
        );
        assert_eq!(
            err("FROM scratch\nRUN --foo true"),
            "dockerfile parse error line 2: Unknown flag: foo"
        );
        assert_eq!(
            err("FROM scratch\nCMD [\"a\", 1]"),
            "failed to parse Dockerfile: when using JSON array syntax, arrays must be comprised of strings only"
        );
        // a lone `--` ends the flags
        assert_eq!(
            one("RUN -- --version"),
            Kind::Run {
                cmd: Command::Shell("--version".into()),
                heredocs: vec![],
                flags: vec![]
            }
        );
    }

    #[test]
    fn continuations_and_comments() {
        let text =
            "FROM scratch\nRUN echo a \\\n  # a comment inside\n\n    b \\  \n c\nLABEL x=y\n";
        let f = p(text);
        let ins = &f.stages[0].instructions;
        assert_eq!(ins[0].line, 2);
        // continuation lines keep their leading blanks (docker prints `RUN echo a     b  c`)
        assert_eq!(ins[0].original, "RUN echo a     b  c");
        assert_eq!(
            f.warnings,
            vec![
                "[WARNING]: Empty continuation line found in:\n    RUN echo a     b  c".to_string(),
                "[WARNING]: Empty continuation lines will become errors in a future release."
                    .to_string()
            ]
        );
        assert_eq!(
            ins[0].kind,
            Kind::Run {
                cmd: Command::Shell("echo a     b  c".into()),
                heredocs: vec![],
                flags: vec![]
            }
        );
        assert_eq!(ins[1].line, 7);
        // an escaped escape ends the line; a line of just the escape continues it
        let f = p(
            "FROM scratch\nLABEL a=b\\\\\nLABEL c=d\nLABEL e=f \\\n\\\ng=h\nEXPOSE 1 \\  \t\n2\n",
        );
        let ins = &f.stages[0].instructions;
        assert_eq!(ins[0].original, "LABEL a=b\\\\");
        assert_eq!(ins[1].original, "LABEL c=d");
        assert_eq!(ins[2].original, "LABEL e=f g=h");
        assert_eq!(ins[3].original, "EXPOSE 1 2");
        // continuation at the end of file
        let f = p("FROM scratch\nRUN a \\");
        assert_eq!(f.stages[0].instructions[0].original, "RUN a");
        // CRLF line ends, BOM
        let f = p("\u{feff}FROM scratch\r\nRUN a \\\r\n b\r\n");
        assert_eq!(f.stages[0].instructions[0].original, "RUN a  b");
        // indented instructions and comments
        let f = p("  FROM scratch\n   # c\n\tWORKDIR /x\n");
        assert_eq!(f.stages[0].instructions[0].kind, Kind::Workdir("/x".into()));
        assert_eq!(f.stages[0].instructions[0].line, 3);
    }

    #[test]
    fn escape_directive() {
        let f = p("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo x\nCOPY a\\b c\\\n");
        assert_eq!(f.escape, '`');
        let ins = &f.stages[0].instructions;
        assert_eq!(ins[0].original, "RUN dir c:\\   && echo x");
        let Kind::Copy(c) = &ins[1].kind else {
            panic!()
        };
        assert_eq!(c.srcs, s(&["a\\b"]));
        assert_eq!(c.dest, "c\\");
        // directive spelling: case, spaces
        assert_eq!(p("#  ESCAPE = `\nFROM scratch\n").escape, '`');
        // not at the top: a plain comment
        assert_eq!(p("# hello\n# escape=`\nFROM scratch\n").escape, '\\');
        assert_eq!(p("\n# escape=`\nFROM scratch\n").escape, '\\');
        assert_eq!(p("FROM scratch\n# escape=`\n").escape, '\\');
        // after syntax
        let f = p("# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\n");
        assert_eq!(f.escape, '`');
        assert_eq!(f.syntax.as_deref(), Some("docker/dockerfile:1"));
        // checked with dockerd 20.10: the name in any case, spaces, an indented directive
        let f = p("# Syntax = docker/dockerfile:1 extra\n  #escape=`\nFROM scratch\n");
        assert_eq!(f.syntax.as_deref(), Some("docker/dockerfile:1 extra"));
        assert_eq!(f.escape, '`');
        assert_eq!(
            err("# syntax=a\n# syntax=b\nFROM scratch\n"),
            "failed to parse Dockerfile: only one syntax parser directive can be used"
        );
        // an unknown directive ends the block
        let f = p("# foo=bar\n# escape=`\nFROM scratch\n");
        assert_eq!(f.escape, '\\');
        assert_eq!(
            err("# escape=x\nFROM scratch\n"),
            "failed to parse Dockerfile: invalid escape token 'x' does not match ` or \\"
        );
        assert_eq!(
            err("# escape=`\n# escape=\\\nFROM scratch\n"),
            "failed to parse Dockerfile: only one escape parser directive can be used"
        );
    }

    #[test]
    fn env_label_arg() {
        assert_eq!(
            one(r#"ENV a=b c="d e" f=g\ h"#),
            Kind::Env(pairs(&[("a", "b"), ("c", "\"d e\""), ("f", "g\\ h")]))
        );
        assert_eq!(
            one("ENV legacy  a value with  spaces"),
            Kind::Env(pairs(&[("legacy", "a value with  spaces")]))
        );
        assert_eq!(
            one(r#"LABEL "com.example.vendor"="ACME Inc" version=1.0"#),
            Kind::Label(pairs(&[
                ("\"com.example.vendor\"", "\"ACME Inc\""),
                ("version", "1.0")
            ]))
        );
        assert_eq!(
            one("ARG a b=c d="),
            Kind::Arg(vec![
                ("a".into(), None),
                ("b".into(), Some("c".into())),
                ("d".into(), Some(String::new()))
            ])
        );
        assert_eq!(
            err("FROM scratch\nENV a"),
            "failed to parse Dockerfile: ENV must have two arguments"
        );
        assert_eq!(
            err("FROM scratch\nLABEL a=b c"),
            "failed to parse Dockerfile: Syntax error - can't find = in \"c\". Must be of the form: name=value"
        );
        assert_eq!(
            err("FROM scratch\nENV =b"),
            "dockerfile parse error line 2: ENV names can not be blank"
        );
        assert_eq!(
            err("FROM scratch\nENV"),
            "dockerfile parse error line 2: ENV requires at least one argument"
        );
        assert_eq!(
            err("FROM scratch\nLABEL"),
            "dockerfile parse error line 2: LABEL requires at least one argument"
        );
        assert_eq!(
            err("FROM scratch\nARG"),
            "dockerfile parse error line 2: ARG requires at least one argument"
        );
        assert_eq!(
            err("FROM scratch\nARG =x"),
            "dockerfile parse error line 2: ARG names can not be blank"
        );
        assert_eq!(
            err("FROM scratch\nENV --foo=1 a=b"),
            "dockerfile parse error line 2: Unknown flag: foo"
        );
    }

    #[test]
    fn simple_instructions() {
        assert_eq!(
            one("EXPOSE 80/tcp  443"),
            Kind::Expose(s(&["80/tcp", "443"]))
        );
        assert_eq!(one("VOLUME /a /b"), Kind::Volume(s(&["/a", "/b"])));
        assert_eq!(
            one(r#"VOLUME ["/a b", "/c"]"#),
            Kind::Volume(s(&["/a b", "/c"]))
        );
        assert_eq!(one("USER app:app"), Kind::User("app:app".into()));
        assert_eq!(one("WORKDIR /a b"), Kind::Workdir("/a b".into()));
        assert_eq!(
            one("STOPSIGNAL SIGKILL"),
            Kind::Stopsignal("SIGKILL".into())
        );
        assert_eq!(
            one("MAINTAINER Jo <jo@example.com>"),
            Kind::Maintainer("Jo <jo@example.com>".into())
        );
        assert_eq!(
            one(r#"SHELL ["powershell", "-command"]"#),
            Kind::Shell(s(&["powershell", "-command"]))
        );
        for (text, msg) in [
            ("EXPOSE", "EXPOSE requires at least one argument"),
            ("VOLUME", "VOLUME requires at least one argument"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("USER", "USER requires exactly one argument"),
            ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
            ("MAINTAINER", "MAINTAINER requires exactly one argument"),
            (
                "SHELL sh -c",
                "SHELL requires the arguments to be in JSON form",
            ),
            ("SHELL []", "SHELL requires at least one argument"),
            ("SHELL", "SHELL requires at least one argument"),
            (
                "VOLUME [\"\"]",
                "VOLUME specified can not be an empty string",
            ),
            (
                "VOLUME [\"/a\", \" \"]",
                "VOLUME specified can not be an empty string",
            ),
            ("EXPOSE --x=1 80", "Unknown flag: x"),
            ("MAINTAINER --x=1 me", "Unknown flag: x"),
            (
                "COPY a <<EOF\nx\nEOF",
                "COPY cannot accept a heredoc as a destination",
            ),
            ("FOO bar", "unknown instruction: FOO"),
            ("foo bar", "unknown instruction: FOO"),
        ] {
            assert_eq!(
                err(&format!("FROM scratch\n{text}")),
                format!("dockerfile parse error line 2: {msg}"),
                "{text}"
            );
        }
    }

    #[test]
    fn copy_add() {
        let Kind::Copy(c) = one(
            "COPY --from=0 --chown=1:2 --chmod=0755 --link --exclude=*.md --exclude=x a b* /dst/",
        ) else {
            panic!()
        };
        assert_eq!(c.srcs, s(&["a", "b*"]));
        assert_eq!(c.dest, "/dst/");
        assert_eq!(c.from.as_deref(), Some("0"));
        assert_eq!(c.chown.as_deref(), Some("1:2"));
        assert_eq!(c.chmod.as_deref(), Some("0755"));
        assert!(c.link);
        assert_eq!(
            c.other_flags,
            pairs(&[("exclude", "*.md"), ("exclude", "x")])
        );
        let Kind::Add(a) = one(r#"ADD ["a b", "/c d/"]"#) else {
            panic!()
        };
        assert_eq!(a.srcs, s(&["a b"]));
        assert_eq!(a.dest, "/c d/");
        let Kind::Add(a) = one("ADD --checksum=sha256:ab --keep-git-dir=true --link=false u /x")
        else {
            panic!()
        };
        assert!(!a.link);
        assert_eq!(
            a.other_flags,
            pairs(&[("checksum", "sha256:ab"), ("keep-git-dir", "true")])
        );
        for (text, msg) in [
            ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("ADD a", "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("COPY --bogus=1 a b", "Unknown flag: bogus"),
            ("COPY --from a b", "Missing a value on flag: from"),
            ("ADD --chown=1 --chown=2 a b", "Duplicate flag specified: chown"),
            ("ADD --from=x a b", "Unknown flag: from"),
            ("COPY --link=maybe a b", "expecting boolean value for flag link, not: maybe"),
        ] {
            assert_eq!(
                err(&format!("FROM scratch\n{text}")),
                format!("dockerfile parse error line 2: {msg}"),
                "{text}"
            );
        }
    }

    #[test]
    fn onbuild() {
        let f = p("FROM scratch\nONBUILD  add --chown=1 . /app/src\n");
        let ins = &f.stages[0].instructions[0];
        assert_eq!(ins.original, "ONBUILD  add --chown=1 . /app/src");
        let Kind::Onbuild(sub) = &ins.kind else {
            panic!()
        };
        assert_eq!(sub.original, "add --chown=1 . /app/src");
        let Kind::Add(a) = &sub.kind else { panic!() };
        assert_eq!(a.chown.as_deref(), Some("1"));
        for (text, msg) in [
            (
                "ONBUILD ONBUILD RUN x",
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
            (
                "onbuild maintainer x",
                "MAINTAINER isn't allowed as an ONBUILD trigger",
            ),
            ("ONBUILD", "ONBUILD requires at least one argument"),
            ("ONBUILD FOO", "unknown instruction: FOO"),
        ] {
            assert_eq!(
                err(&format!("FROM scratch\n{text}")),
                format!("dockerfile parse error line 2: {msg}"),
                "{text}"
            );
        }
    }

    #[test]
    fn healthcheck() {
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Kind::Healthcheck(Healthcheck {
                test: s(&["NONE"]),
                ..Default::default()
            })
        );
        assert_eq!(
            one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1"),
            Kind::Healthcheck(Healthcheck {
                test: s(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
                interval: Some("5m".into()),
                timeout: Some("3s".into()),
                start_period: Some("1m30s".into()),
                start_interval: Some("2s".into()),
                retries: Some("3".into()),
            })
        );
        assert_eq!(
            one(r#"healthcheck cmd ["/bin/check", "-v"]"#),
            Kind::Healthcheck(Healthcheck {
                test: s(&["CMD", "/bin/check", "-v"]),
                ..Default::default()
            })
        );
        for (text, msg) in [
            ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK FOO x",
                "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK é=1",
                "Unknown type \"É=1\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK --interval=xx CMD true",
                "time: invalid duration \"xx\"",
            ),
            (
                "HEALTHCHECK --interval=1 CMD true",
                "time: missing unit in duration \"1\"",
            ),
            (
                "HEALTHCHECK --timeout=1d CMD true",
                "time: unknown unit \"d\" in duration \"1d\"",
            ),
            (
                "HEALTHCHECK --interval=0s CMD true",
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --start-period=1us CMD true",
                "Interval \"start-period\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --retries=0 CMD true",
                "--retries must be at least 1 (not 0)",
            ),
            (
                "HEALTHCHECK --retries=x CMD true",
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                "HEALTHCHECK --retries=99999999999 CMD true",
                "strconv.ParseInt: parsing \"99999999999\": value out of range",
            ),
            ("HEALTHCHECK --bogus=1 CMD true", "Unknown flag: bogus"),
        ] {
            assert_eq!(
                err(&format!("FROM scratch\n{text}")),
                format!("dockerfile parse error line 2: {msg}"),
                "{text}"
            );
        }
        assert_eq!(go_duration("1h2m3.5s"), Ok(3723.5e9));
        assert_eq!(go_duration("1.5ms"), Ok(1.5e6));
        assert_eq!(go_duration("0"), Ok(0.0));
        assert!(go_duration("").is_err());
        assert!(go_duration(".s").is_err());
    }

    #[test]
    fn heredocs() {
        let f = p("FROM scratch\nRUN <<EOF\necho hi\n  echo there\nEOF\nRUN echo done\n");
        let ins = &f.stages[0].instructions;
        assert_eq!(ins.len(), 2);
        assert_eq!(ins[0].original, "RUN <<EOF");
        assert_eq!(
            ins[0].kind,
            Kind::Run {
                cmd: Command::Shell("<<EOF".into()),
                heredocs: vec![Heredoc {
                    name: "EOF".into(),
                    content: "echo hi\n  echo there\n".into(),
                    expand: true,
                    file_descriptor: None
                }],
                flags: vec![]
            }
        );
        assert_eq!(ins[1].line, 6);

        // <<- strips leading tabs from the body and the terminator; quoted: no expansion
        let Kind::Run { heredocs, cmd, .. } = one("RUN <<-\"EOT\" sh\n\techo $x\n\t\tb\n\tEOT")
        else {
            panic!()
        };
        assert_eq!(cmd, Command::Shell("<<-\"EOT\" sh".into()));
        assert_eq!(heredocs[0].name, "EOT");
        assert_eq!(heredocs[0].content, "echo $x\nb\n");
        assert!(!heredocs[0].expand);

        // several on one line, with a file descriptor, consumed one after the other
        let Kind::Run { heredocs, .. } = one("RUN cat <<A 3<<'B' > /x\na1\nA\nb1\nb2\nB") else {
            panic!()
        };
        assert_eq!(heredocs.len(), 2);
        assert_eq!(
            (heredocs[0].name.as_str(), heredocs[0].content.as_str()),
            ("A", "a1\n")
        );
        assert_eq!(
            (
                heredocs[1].name.as_str(),
                heredocs[1].content.as_str(),
                heredocs[1].file_descriptor
            ),
            ("B", "b1\nb2\n", Some(3))
        );
        assert!(!heredocs[1].expand);

        // COPY heredoc sources: the name in srcs, the body in heredocs
        let Kind::Copy(c) = one("COPY <<a <<b /dir/\nA\na\nB\nb") else {
            panic!()
        };
        assert_eq!(c.srcs, s(&["a", "b"]));
        assert_eq!(c.dest, "/dir/");
        assert_eq!(c.heredocs[0].content, "A\n");
        assert_eq!(c.heredocs[1].content, "B\n");

        // a quoted "<<EOF", JSON forms and other instructions have no heredoc
        let Kind::Run { heredocs, .. } = one("RUN echo \"<<EOF\"") else {
            panic!()
        };
        assert!(heredocs.is_empty());
        let f = p("FROM scratch\nRUN [\"cat\", \"<<EOF\"]\nENV a=<<EOF\n");
        assert_eq!(f.stages[0].instructions.len(), 2);
        // an empty body; the body is not treated as instructions or comments
        let Kind::Run { heredocs, .. } = one("RUN <<EOF\n# not a comment\nFROM x\nEOF") else {
            panic!()
        };
        assert_eq!(heredocs[0].content, "# not a comment\nFROM x\n");
        // heredoc of a continued line
        let Kind::Run { heredocs, .. } = one("RUN cat \\\n <<EOF\nx\nEOF") else {
            panic!()
        };
        assert_eq!(heredocs[0].content, "x\n");
        // ONBUILD RUN <<EOF
        let Kind::Onbuild(sub) = one("ONBUILD RUN <<EOF\nx\nEOF") else {
            panic!()
        };
        let Kind::Run { heredocs, .. } = &sub.kind else {
            panic!()
        };
        assert_eq!(heredocs[0].content, "x\n");
        // CRLF: the body keeps its line ends, the terminator matches without them
        let Kind::Run { heredocs, .. } = one("RUN <<EOF\r\na\r\nEOF\r\n") else {
            panic!()
        };
        assert_eq!(heredocs[0].content, "a\r\n");
        assert_eq!(
            err("FROM scratch\nRUN <<EOF\necho\n"),
            "failed to parse Dockerfile: unterminated heredoc"
        );
    }

    #[test]
    fn file_level_errors() {
        let e = parse("").unwrap_err();
        assert_eq!(e.to_string(), "the Dockerfile (Dockerfile) cannot be empty");
        assert_eq!(
            e.message("dev.Dockerfile"),
            "the Dockerfile (dev.Dockerfile) cannot be empty"
        );
        assert_eq!(
            err("# comment\n\n"),
            "failed to parse Dockerfile: file with no instructions"
        );
        assert_eq!(
            err("  \n"),
            "failed to parse Dockerfile: file with no instructions"
        );
        let e = parse("RUN x\nFROM scratch\n").unwrap_err();
        assert_eq!(e.to_string(), "no build stage in current context");
        assert_eq!(e.line, 1);
        assert_eq!(e.kind, ParseErrorKind::Plain);
        // the unknown instruction comes first when it is the first line
        assert_eq!(
            err("FOO\nFROM scratch"),
            "dockerfile parse error line 1: unknown instruction: FOO"
        );
        // errors of the text win over errors of instructions further up
        assert_eq!(
            err("FROM scratch\nFOO x\nENV a\n"),
            "failed to parse Dockerfile: ENV must have two arguments"
        );
        let e = parse("FROM scratch\nCOPY a\n").unwrap_err();
        assert_eq!(
            e.message("Dockerfile.dev"),
            "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
    }

    /// What docker 20.10's classic builder accepts (and prints) although it looks odd.
    #[test]
    fn docker_leniencies() {
        // JSON followed by more text: the array counts
        assert_eq!(
            one("CMD [\"a\"] trailing"),
            Kind::Cmd(Command::Exec(s(&["a"])))
        );
        // ARG ignores flags
        assert_eq!(one("ARG --x=1 a"), Kind::Arg(vec![("a".into(), None)]));
        // HEALTHCHECK NONE ignores flags
        assert_eq!(
            one("HEALTHCHECK --bogus=1 NONE"),
            Kind::Healthcheck(Healthcheck {
                test: s(&["NONE"]),
                ..Default::default()
            })
        );
        // STOPSIGNAL ignores flags; VOLUME trims its words
        assert_eq!(
            one("STOPSIGNAL --x=1 SIGKILL"),
            Kind::Stopsignal("SIGKILL".into())
        );
        assert_eq!(one("VOLUME [\" /a \"]"), Kind::Volume(s(&["/a"])));
        // the legacy ENV/LABEL form splits at the first blank, quotes or not
        assert_eq!(one("ENV a b=c d"), Kind::Env(pairs(&[("a", "b=c d")])));
        assert_eq!(
            one("LABEL \"a b\" c"),
            Kind::Label(pairs(&[("\"a", "b\" c")]))
        );
        // comments inside a continuation, even indented; the escape directive's name in any case
        let f = p("# Escape=`\nFROM scratch\nEXPOSE 80 `\n# c\n  # d\n 90\n");
        assert_eq!(f.stages[0].instructions[0].original, "EXPOSE 80  90");
        assert_eq!(
            f.stages[0].instructions[0].kind,
            Kind::Expose(s(&["80", "90"]))
        );
        assert!(f.warnings.is_empty());
        // the argument count is checked before flags
        assert_eq!(
            err("FROM scratch\nWORKDIR --x"),
            "dockerfile parse error line 2: WORKDIR requires exactly one argument"
        );
        assert_eq!(
            err("FROM scratch\nCOPY --chown=1 [\"a\"]"),
            "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(
            err("FROM scratch\nVOLUME []"),
            "dockerfile parse error line 2: VOLUME requires at least one argument"
        );
        // an ONBUILD trigger's text errors are found at once
        assert_eq!(
            err("FROM scratch\nONBUILD ENV a"),
            "failed to parse Dockerfile: ENV must have two arguments"
        );
    }

    #[test]
    fn builder_flags_words() {
        let (rest, flags) = extract_builder_flags("--a=1 --b=\"x y\" --c='q' rest of --line");
        assert_eq!(rest, "rest of --line");
        assert_eq!(flags, s(&["--a=1", "--b=x y", "--c=q"]));
        let (rest, flags) = extract_builder_flags("  --only");
        assert_eq!(rest, "");
        assert_eq!(flags, s(&["--only"]));
        assert_eq!(
            parse_words(r#"a="b c" d\ e 'f g' h"#, '\\'),
            s(&[r#"a="b c""#, r"d\ e", "'f g'", "h"])
        );
        assert_eq!(parse_words(r#"a="x\"y" b"#, '\\'), s(&[r#"a="x\"y""#, "b"]));
        assert_eq!(parse_words("a=`  b", '`'), s(&["a=` ", "b"]));
    }

    /// Arbitrary text made of Dockerfile-ish pieces never panics the parser (errors are fine).
    #[test]
    fn no_panics_on_odd_input() {
        let pieces = [
            "FROM ",
            "RUN ",
            "COPY ",
            "ONBUILD ",
            "HEALTHCHECK ",
            "ENV ",
            "LABEL ",
            "ARG ",
            "CMD ",
            "SHELL ",
            "x",
            "=",
            "\"",
            "'",
            "\\",
            "`",
            "\n",
            "\r\n",
            " ",
            "\t",
            "[",
            "]",
            ",",
            "<<",
            "<<-",
            "EOF",
            "--",
            "--flag=",
            "# escape=`\n",
            "#",
            "é",
            "3",
            "$",
            "{",
            "}",
            "NONE",
            "CMD",
            "AS",
            "\u{feff}",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = parse(&text);
            let _ = parse(&format!("FROM scratch\n{text}"));
            let _ = crate::expand::expand_words(&text, &|_| Some("v".into()), '\\');
            let _ = crate::expand::expand(&text, &|_| None, '`');
        }
    }

    #[test]
    fn triggers() {
        let t = parse_trigger("RUN echo hi").unwrap();
        assert_eq!(t.original, "RUN echo hi");
        assert_eq!(
            t.kind,
            Kind::Run {
                cmd: Command::Shell("echo hi".into()),
                heredocs: vec![],
                flags: vec![]
            }
        );
        let t = parse_trigger("COPY <<EOF /x\nbody\nEOF").unwrap();
        let Kind::Copy(c) = t.kind else { panic!() };
        assert_eq!(c.heredocs[0].content, "body\n");
        // ONBUILD → the stored text → the trigger again
        let f = p("FROM scratch\nonbuild  RUN <<A cat <<-B\na1\nA\n\tb1\n\tB\nONBUILD USER x\n");
        let ins = &f.stages[0].instructions;
        let text = ins[0].trigger_text().unwrap();
        assert_eq!(text, "RUN <<A cat <<-B\na1\nA\nb1\nB");
        let Kind::Onbuild(sub) = &ins[0].kind else {
            panic!()
        };
        let back = parse_trigger(&text).unwrap();
        assert_eq!(back.kind, sub.kind);
        assert_eq!(ins[1].trigger_text().as_deref(), Some("USER x"));
        assert_eq!(f.stages[0].from.trigger_text(), None);
        for (text, msg) in [
            ("FOO bar", "unknown instruction: FOO"),
            ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("ENV a", "ENV must have two arguments"),
            ("RUN a\nRUN b", "onbuild trigger should be a single expression"),
            ("", "onbuild trigger should be a single expression"),
            ("FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ] {
            let e = parse_trigger(text).unwrap_err();
            assert_eq!(e.kind, ParseErrorKind::Plain);
            assert_eq!(e.to_string(), msg, "{text}");
        }
    }

    /// The escape examples of docker's Dockerfile reference.
    #[test]
    fn windows_paths_examples() {
        let f =
            p("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
        let ins = &f.stages[0].instructions;
        assert_eq!(ins.len(), 2);
        assert_eq!(ins[0].original, "COPY testfile.txt c:\\");
        assert_eq!(ins[1].original, "RUN dir c:\\");
        // without the directive: `c:\\` is an escaped escape, `c:\` continues (to the end)
        let f = p("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n");
        let ins = &f.stages[0].instructions;
        assert_eq!(ins[0].original, "COPY testfile.txt c:\\\\");
        assert_eq!(ins[1].original, "RUN dir c:");
    }

    /// A realistic multi-stage Dockerfile with most instructions.
    #[test]
    fn realistic_multi_stage() {
        let text = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE=busybox

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM ${BASE}:latest AS runtime
LABEL org.opencontainers.image.title="app" \
      org.opencontainers.image.licenses=MIT
ENV PATH=/app:$PATH \
    APP_MODE=production
RUN addgroup -S app && adduser -S app -G app
COPY --from=build --chown=app:app /out/app /app/app
COPY <<EOF /app/config.yaml
mode: ${APP_MODE}
EOF
EXPOSE 8080/tcp 9090/udp
VOLUME ["/data"]
USER app
HEALTHCHECK --interval=30s --timeout=3s CMD wget -qO- http://localhost:8080/health || exit 1
STOPSIGNAL SIGTERM
ONBUILD COPY . /app/src
ENTRYPOINT ["/app/app"]
CMD ["--serve"]
"#;
        let f = p(text);
        assert_eq!(f.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(f.meta_args.len(), 2);
        assert_eq!(f.stages.len(), 2);
        assert_eq!(f.stages[0].name(), Some("build"));
        assert_eq!(f.stages[0].instructions.len(), 5);
        assert_eq!(f.stages[1].name(), Some("runtime"));
        let names: Vec<&str> = f.stages[1]
            .instructions
            .iter()
            .map(|i| i.original.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "LABEL",
                "ENV",
                "RUN",
                "COPY",
                "COPY",
                "EXPOSE",
                "VOLUME",
                "USER",
                "HEALTHCHECK",
                "STOPSIGNAL",
                "ONBUILD",
                "ENTRYPOINT",
                "CMD"
            ]
        );
        let lines: Vec<usize> = f.stages[1].instructions.iter().map(|i| i.line).collect();
        assert_eq!(lines, [14, 16, 18, 19, 20, 23, 24, 25, 26, 27, 28, 29, 30]);
        assert_eq!(
            f.stages[1].instructions[0].kind,
            Kind::Label(pairs(&[
                ("org.opencontainers.image.title", "\"app\""),
                ("org.opencontainers.image.licenses", "MIT")
            ]))
        );
        assert_eq!(
            f.stages[1].instructions[1].kind,
            Kind::Env(pairs(&[("PATH", "/app:$PATH"), ("APP_MODE", "production")]))
        );
        let Kind::Copy(c) = &f.stages[1].instructions[4].kind else {
            panic!()
        };
        assert_eq!(c.srcs, s(&["EOF"]));
        assert_eq!(c.heredocs[0].content, "mode: ${APP_MODE}\n");
        assert!(c.heredocs[0].expand);
        let Kind::Run { flags, cmd, .. } = &f.stages[0].instructions[2].kind else {
            panic!()
        };
        assert_eq!(flags, &pairs(&[("mount", "type=cache,target=/go/pkg/mod")]));
        assert_eq!(cmd, &Command::Shell("go mod download".into()));
    }
}
