//! The Dockerfile grammar → a tree of stages and instructions. Words are kept as written
//! (variables are expanded by the executor, which knows the ARG/ENV state at each step).

/// A parse failure, with the 1-based line it was found on. `Display` is docker's text,
/// e.g. `dockerfile parse error line 3: unknown instruction: FOO`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("dockerfile parse error line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
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

/// Parses a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let _ = text;
    Err(ParseError {
        line: 1,
        msg: "not implemented".into(),
    })
}
