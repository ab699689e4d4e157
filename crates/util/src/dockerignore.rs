//! `.dockerignore` patterns and docker's matching: Go `filepath.Match` syntax (`*`, `?`,
//! `[a-z]`, `[^a]`, `\` escapes; `*` and `?` never match `/`, a class can, as in docker's
//! translation to a regular expression), `**` for any number of elements, `!`
//! exceptions (the last matching pattern wins), patterns cleaned (`./a/` = `a`, `a/../b` =
//! `b`, leading `/` dropped). A pattern that matches a directory excludes everything below it.
//! Used by the CLI (which leaves ignored files out of the context it sends) and by the
//! builder (COPY never sees them).
//!
//! Walking a context (the CLI): call [`Matcher::matches_in_walk`] for each entry with its
//! directory's [`MatchInfo`] (docker's CLI evaluates this way, which differs from
//! [`Matcher::matches`] in rare cases); when a directory is excluded,
//! [`Matcher::is_excluded_dir_walk_needed`] says whether it must still be descended into (an
//! exception names something below it), otherwise the whole directory is skipped. Both are
//! docker's CLI rules, so the same files are sent. docker's CLI also always sends the Dockerfile and `.dockerignore` themselves
//! (it appends `!Dockerfile` and `!.dockerignore` when they are matched); the daemon then
//! leaves them out of COPY when they were ignored.

/// A pattern that does not compile (docker: `syntax error in pattern`).
#[derive(Debug, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for PatternError {}

/// Compiled patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// One pattern, compiled.
#[derive(Debug, Clone)]
struct Pattern {
    /// the cleaned pattern, without its `!`
    text: String,
    exception: bool,
    tokens: Vec<Token>,
    /// some `*` or `**` (else one token per character: matched without backtracking)
    wild: bool,
    /// `**` then literal text only: docker matches such a pattern as "ends with the text"
    /// (its fast path, which is not what its regular expression would say: `**.md` matches
    /// `a.md`, `**d1` matches `xd1`)
    suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`
    One,
    /// `*`: any run without `/`
    Star,
    /// `**/` or `**` inside a pattern: nothing, or anything ending in `/`
    AnyDirs,
    /// `**` at the end: anything
    AnyTail,
    /// `[...]` (as in docker's regular expression, a class can match `/`: `a[^b]c`
    /// matches `a/c`)
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Matcher {
    /// From a `.dockerignore` file's text: a line starting with `#` is a comment (only at
    /// column 0, as docker reads it), surrounding spaces dropped, blank lines skipped,
    /// `!` exceptions, each pattern cleaned.
    pub fn parse(text: &str) -> Result<Matcher, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if exception {
                cleaned.insert(0, '!');
            }
            patterns.push(cleaned);
        }
        Matcher::new(&patterns)
    }

    /// From patterns already split into lines (each trimmed and cleaned; `!` = exception).
    pub fn new(patterns: &[String]) -> Result<Matcher, PatternError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exception, p) = match p.strip_prefix('!') {
                Some("") => {
                    return Err(PatternError("illegal exclusion pattern: \"!\"".to_string()))
                }
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            let tokens = compile(&p)?;
            let wild = tokens
                .iter()
                .any(|t| matches!(t, Token::Star | Token::AnyDirs | Token::AnyTail));
            let suffix = literal_suffix(&p);
            out.push(Pattern {
                text: p,
                exception,
                tokens,
                wild,
                suffix,
            });
        }
        Ok(Matcher { patterns: out })
    }

    /// Whether `rel` (a path relative to the context root, `/`-separated, no leading `./`)
    /// is excluded: the last pattern that matches it, or one of its parent directories,
    /// decides (an exception re-includes).
    pub fn matches(&self, rel: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let file = normalize(rel);
        let parents = parent_ends(&file);
        let mut memo = Vec::new();
        let mut matched = false;
        for pattern in &self.patterns {
            // an include only matters while not matched, an exception only once matched
            if pattern.exception != matched {
                continue;
            }
            let hit = pattern.matches(&file, &mut memo)
                || parents
                    .iter()
                    .any(|&end| pattern.matches(&file[..end], &mut memo));
            if hit {
                matched = !pattern.exception;
            }
        }
        matched
    }

    /// The walk form of [`Matcher::matches`], what docker's CLI uses while it walks the
    /// context: `parent` holds which patterns matched the parent directory (from this call
    /// on the parent; the default for top-level entries). A pattern that matched the parent
    /// matches the child without a second look; one the parent's evaluation skipped (an
    /// include once already excluded, an exception while not excluded) counts as not
    /// matching. This differs from `matches` in rare cases (`d1`, `!d1/sub`, `**d1`: the
    /// walk sends `d1/sub/a`, `matches` says excluded); use it when building a context.
    pub fn matches_in_walk(&self, rel: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        if parent.parent_matched.len() != self.patterns.len() {
            // no parent results: docker's full check, parent directories included
            let mut info = MatchInfo {
                parent_matched: vec![false; self.patterns.len()],
            };
            let file = normalize(rel);
            let parents = parent_ends(&file);
            let mut memo = Vec::new();
            let mut matched = false;
            for (i, pattern) in self.patterns.iter().enumerate() {
                if pattern.exception != matched {
                    continue;
                }
                let hit = pattern.matches(&file, &mut memo)
                    || parents
                        .iter()
                        .any(|&end| pattern.matches(&file[..end], &mut memo));
                info.parent_matched[i] = hit;
                if hit {
                    matched = !pattern.exception;
                }
            }
            return (matched, info);
        }
        let file = normalize(rel);
        let mut memo = Vec::new();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.parent_matched[i];
            if !hit {
                if pattern.exception != matched {
                    continue;
                }
                hit = pattern.matches(&file, &mut memo);
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exception;
            }
        }
        (matched, info)
    }

    /// Whether some `!` pattern exists: then an excluded directory must still be walked,
    /// since an exception may re-include something below it.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// For a directory `dir` that [`Matcher::matches`]: whether its content must still be
    /// walked, i.e. an exception pattern starts with `dir/` (docker's CLI rule; with none
    /// the whole directory is skipped — so `!**/keep` does not re-include below an excluded
    /// directory, exactly as with docker).
    pub fn is_excluded_dir_walk_needed(&self, dir: &str) -> bool {
        let dir = dir.trim_start_matches("./").trim_matches('/');
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, exceptions with their `!`, in order.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exception {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }
}

/// Per-pattern results for one directory, handed to [`Matcher::matches_in_walk`] for the
/// entries inside it (docker's `MatchInfo`). The default is "no parent results".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// `rel` as characters, without a leading `./` or `/` nor a trailing `/`.
fn normalize(rel: &str) -> Vec<char> {
    let file = rel.trim_start_matches("./").trim_start_matches('/');
    file.trim_end_matches('/').chars().collect()
}

/// Where the parent directories of a path end: `a/b/c` → the ends of `a` and `a/b`.
fn parent_ends(file: &[char]) -> Vec<usize> {
    file.iter()
        .enumerate()
        .filter(|(_, c)| **c == '/')
        .map(|(i, _)| i)
        .collect()
}

/// Go's `filepath.Clean` for `/`-separated paths: `.` elements and duplicate slashes
/// dropped, `x/..` resolved, a trailing `/` dropped; the empty result is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ => {
                    if !rooted {
                        parts.push("..");
                    }
                }
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The text after a leading `**` when nothing else in the pattern is special (no `*`, `?`,
/// `[`, `]`, `\` escape): the patterns docker matches by suffix.
fn literal_suffix(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix("**")?;
    if rest.contains(['*', '?', '[', ']', '\\']) {
        return None;
    }
    Some(rest.to_string())
}

fn bad() -> PatternError {
    PatternError("syntax error in pattern".to_string())
}

/// The pattern → tokens (docker's translation of a pattern to a regular expression, as
/// tokens: `**/` is "any directories", a final `**` anything, `*` and `?` never cross `/`).
fn compile(pattern: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    tokens.push(Token::AnyTail);
                } else {
                    tokens.push(Token::AnyDirs);
                }
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    tokens.push(Token::Char(next));
                }
                None => return Err(bad()),
            },
            '[' => {
                let (token, next) = class(&chars, i)?;
                tokens.push(token);
                i = next;
            }
            other => tokens.push(Token::Char(other)),
        }
    }
    Ok(tokens)
}

/// A `[...]` class starting after the `[` at `i`; returns it and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Token, usize), PatternError> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(bad());
        };
        if c == ']' && !first {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
            if hi < lo {
                return Err(bad());
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, PatternError> {
    match chars.get(*i) {
        None | Some('-') | Some(']') => Err(bad()),
        Some('\\') => {
            *i += 1;
            let c = chars.get(*i).copied().ok_or_else(bad)?;
            *i += 1;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

impl Pattern {
    /// `memo` is scratch space, reused between calls.
    fn matches(&self, text: &[char], memo: &mut Vec<u8>) -> bool {
        if let Some(suffix) = &self.suffix {
            let path: String = text.iter().collect();
            return path.ends_with(suffix.as_str())
                || suffix.strip_prefix('/').is_some_and(|bare| path == bare);
        }
        if !self.wild {
            return self.tokens.len() == text.len()
                && self.tokens.iter().zip(text).all(|(t, c)| match t {
                    Token::Char(x) => x == c,
                    Token::One => *c != '/',
                    Token::Class { negated, ranges } => {
                        ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
                    }
                    _ => false,
                });
        }
        // memo[t][p]: tokens[t..] against text[p..] (0 unknown, 1 no, 2 yes)
        memo.clear();
        memo.resize((self.tokens.len() + 1) * (text.len() + 1), 0);
        match_at(&self.tokens, text, 0, 0, memo)
    }
}

fn match_at(tokens: &[Token], text: &[char], t: usize, p: usize, memo: &mut [u8]) -> bool {
    let key = t * (text.len() + 1) + p;
    if memo[key] != 0 {
        return memo[key] == 2;
    }
    let result = match tokens.get(t) {
        None => p == text.len(),
        Some(Token::Char(c)) => {
            text.get(p) == Some(c) && match_at(tokens, text, t + 1, p + 1, memo)
        }
        Some(Token::One) => {
            matches!(text.get(p), Some(c) if *c != '/')
                && match_at(tokens, text, t + 1, p + 1, memo)
        }
        Some(Token::Class { negated, ranges }) => match text.get(p) {
            Some(&c) => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                inside != *negated && match_at(tokens, text, t + 1, p + 1, memo)
            }
            _ => false,
        },
        Some(Token::Star) => {
            let mut q = p;
            loop {
                if match_at(tokens, text, t + 1, q, memo) {
                    break true;
                }
                if q < text.len() && text[q] != '/' {
                    q += 1;
                } else {
                    break false;
                }
            }
        }
        Some(Token::AnyDirs) => {
            // nothing, or anything up to and including some `/`
            match_at(tokens, text, t + 1, p, memo)
                || (p..text.len())
                    .any(|q| text[q] == '/' && match_at(tokens, text, t + 1, q + 1, memo))
        }
        Some(Token::AnyTail) => true,
    };
    memo[key] = if result { 2 } else { 1 };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        match Matcher::parse(text) {
            Ok(m) => m,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn cleaning_and_comments() {
        let x = m("# comment\n\n  ./a/  \n/b\n!./c/../d\n c/**/ \n # not a comment\n");
        assert_eq!(
            x.patterns(),
            vec!["a", "b", "!d", "c/**", "# not a comment"]
        );
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean("a/../.."), "..");
        assert!(m("").is_empty());
        assert!(!m("a").has_exceptions());
        assert!(m("a\n!a/b").has_exceptions());
    }

    #[test]
    fn docker_docs_examples() {
        // from docker's documentation of .dockerignore
        let x = m("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(x.matches("somedir/temporary.txt"));
        assert!(x.matches("somedir/temp"));
        assert!(x.matches("somedir/subdir/temporary.txt"));
        assert!(x.matches("tempa"));
        assert!(x.matches("tempb"));
        assert!(!x.matches("temp"));
        assert!(!x.matches("temporary.txt"));
        assert!(!x.matches("a/b/c/temp"));

        let x = m("*.md\n!README.md\n");
        assert!(x.matches("CHANGES.md"));
        assert!(!x.matches("README.md"));
        assert!(
            !x.matches("docs/CHANGES.md"),
            "* does not cross directories"
        );

        let x = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(x.matches("README-secret.md"));
        assert!(!x.matches("README-public.md"));
        assert!(x.matches("other.md"));

        let x = m("*.md\nREADME-secret.md\n!README*.md\n");
        assert!(!x.matches("README-secret.md"), "the last match wins");

        let x = m("**/*.go\n");
        assert!(x.matches("a.go"));
        assert!(x.matches("x/y/z/a.go"));
        assert!(!x.matches("a.gox"));
    }

    #[test]
    fn directories_exclude_their_content() {
        let x = m("a\n");
        assert!(x.matches("a"));
        assert!(x.matches("a/b"));
        assert!(x.matches("a/b/c"));
        assert!(!x.matches("ab"));
        assert!(!x.matches("b/a"));
        let x = m("**/node_modules\n");
        assert!(x.matches("node_modules/x/y"));
        assert!(x.matches("src/web/node_modules/pkg/index.js"));
        let x = m("a/b\n!a/b/keep\n");
        assert!(x.matches("a/b/c"));
        assert!(!x.matches("a/b/keep"));
        assert!(!x.matches("a/b/keep/deeper"));
        assert!(!x.matches("a/c"));
        let x = m("a/**\n");
        assert!(!x.matches("a"), "a/** is the content of a, not a itself");
        assert!(x.matches("a/x"));
        assert!(x.matches("a/x/y"));
    }

    /// docker's fast path for `**` + literal text (found by a differential run, seed 726)
    #[test]
    fn leading_double_star_is_a_suffix() {
        let x = m("**.md\n");
        assert!(x.matches("a.md"));
        assert!(x.matches("d/b.md"));
        assert!(!x.matches("a.mdx"));
        let x = m("**/foo\n");
        assert!(x.matches("foo"));
        assert!(x.matches("a/b/foo"));
        assert!(!x.matches("xfoo"));
        assert!(x.matches("foo/under"));
        let x = m("**d1\n");
        assert!(x.matches("xd1"));
        // with another wildcard it is the regular expression again
        let x = m("**/*.md\n");
        assert!(x.matches("a.md"));
        assert!(!x.matches("a.mdx"));
        let x = m("**\n");
        assert!(x.matches("a/b"));
    }

    #[test]
    fn double_star() {
        let x = m("**\n!keep\n");
        assert!(x.matches("anything/at/all"));
        assert!(!x.matches("keep"));
        let x = m("a/**/b\n");
        assert!(x.matches("a/b"));
        assert!(x.matches("a/x/b"));
        assert!(x.matches("a/x/y/b"));
        assert!(x.matches("a/x/y/b/under"));
        assert!(!x.matches("a/xb"));
        let x = m("**/a*\n");
        assert!(x.matches("abc"));
        assert!(x.matches("x/abc"));
        assert!(!x.matches("x/bca"));
        let x = m("x**y\n");
        assert!(x.matches("xy"));
        assert!(x.matches("x/q/y"));
    }

    #[test]
    fn wildcards_classes_escapes() {
        let x = m("file?.txt\n[a-c]*.log\n[^x]y\n\\*lit\nq\\?\n");
        assert!(x.matches("file1.txt"));
        assert!(!x.matches("file/.txt"));
        assert!(!x.matches("file10.txt"));
        assert!(x.matches("b.log"));
        assert!(!x.matches("d.log"));
        assert!(x.matches("zy"));
        assert!(!x.matches("xy"));
        assert!(x.matches("*lit"));
        assert!(!x.matches("alit"));
        assert!(x.matches("q?"));
        assert!(!x.matches("qa"));
        let x = m("a.b\nc$\n+d\n(e)\n");
        assert!(x.matches("a.b"));
        assert!(!x.matches("axb"), ". is literal");
        assert!(x.matches("c$"));
        assert!(x.matches("+d"));
        assert!(x.matches("(e)"));
        let x = m("[\\]]x\n");
        assert!(x.matches("]x"));
        // found by a differential run against the docker CLI: a class matches `/`
        let x = m("***[^a]x.txt\n");
        assert!(x.matches("d1/x.txt"));
        assert!(x.matches("d2/sub/x.txt"));
        assert!(!x.matches("ax.txt"));
    }

    #[test]
    fn bad_patterns() {
        for bad in ["[", "a[", "[]", "[a-", "a\\"] {
            assert_eq!(
                Matcher::parse(bad).err(),
                Some(PatternError("syntax error in pattern".into())),
                "{bad}"
            );
        }
        assert_eq!(
            Matcher::parse("!\n").err(),
            Some(PatternError("illegal exclusion pattern: \"!\"".into()))
        );
    }

    #[test]
    fn paths_given_loosely() {
        let x = m("a/b\n");
        assert!(x.matches("./a/b"));
        assert!(x.matches("/a/b/c"));
        assert!(x.matches("a/b/"));
        assert!(!m("").matches("a"));
    }

    /// Found by a differential run against the docker 28 CLI (seed 409): the walk keeps
    /// `d1/sub/a` because `**d1` was skipped, not matched, for `d1`.
    #[test]
    fn walk_uses_parent_results() {
        let x = m("d1/\n!d1/sub/\n/**d1\n");
        let root = MatchInfo::default();
        let (d1, d1_info) = x.matches_in_walk("d1", &root);
        assert!(d1);
        assert!(x.is_excluded_dir_walk_needed("d1"));
        let (sub, sub_info) = x.matches_in_walk("d1/sub", &d1_info);
        assert!(!sub);
        let (a, _) = x.matches_in_walk("d1/sub/a", &sub_info);
        assert!(!a, "sent by docker");
        assert!(x.matches("d1/sub/a"), "the path-only check differs here");
        // without parent results the walk form is the path-only check
        for p in ["d1", "d1/sub", "d1/sub/a", "d1/b", "x"] {
            assert_eq!(x.matches_in_walk(p, &root).0, x.matches(p), "{p}");
        }
        let (b, _) = x.matches_in_walk("d1/b", &d1_info);
        assert!(b);
    }

    #[test]
    fn walk_rule() {
        let x = m("a\n!a/b/keep\n!other\n");
        assert!(x.is_excluded_dir_walk_needed("a"));
        assert!(x.is_excluded_dir_walk_needed("a/b"));
        assert!(!x.is_excluded_dir_walk_needed("a/c"));
        assert!(!x.is_excluded_dir_walk_needed("ab"));
        let x = m("a\n!**/keep\n");
        assert!(
            !x.is_excluded_dir_walk_needed("a"),
            "docker's rule: prefix only"
        );
        assert!(!m("a").is_excluded_dir_walk_needed("a"));
    }

    /// A context built with the docker 28 CLI against dockerd 20.10 (`COPY . /` into
    /// scratch, then exported): the files it sent, walking as the CLI does.
    #[test]
    fn same_files_as_docker_cli() {
        let x = m("# comment\n*.md\n!README*.md\nREADME-secret.md\n*/temp*\ntemp?\n**/node_modules\nexcl\n!excl/keep\n!**/z.go\na.b\nc$\n+d\n(e)\n./q/w/\ndir2/**\n");
        let dirs = [
            "dir1",
            "dir2",
            "dir2/sub",
            "docs",
            "excl",
            "excl/deep",
            "keep",
            "keep/sub",
            "node_modules",
            "node_modules/p",
            "q",
            "q/w",
            "somedir",
            "somedir/sub",
            "src",
            "src/web",
            "src/web/node_modules",
            "src/web/node_modules/q",
            "x",
            "x/y",
        ];
        let files = [
            "(e)",
            "+d",
            "README-secret.md",
            "README.md",
            "a.b",
            "a.md",
            "axb",
            "c$",
            "dir1/file",
            "dir2/sub/file",
            "docs/README.md",
            "docs/x.md",
            "excl/deep/keep",
            "excl/drop",
            "excl/keep",
            "keep/a",
            "keep/sub/b",
            "node_modules/p/i.js",
            "q/w/x.txt",
            "somedir/sub/temp.txt",
            "somedir/temporary.txt",
            "src/web/node_modules/q/i.js",
            "temp",
            "tempa",
            "temporary.txt",
            "x/y/z.go",
            "z.go",
        ];
        let skipped_dir = |f: &str| {
            dirs.iter().any(|d| {
                f.starts_with(&format!("{d}/")) && x.matches(d) && !x.is_excluded_dir_walk_needed(d)
            })
        };
        let sent: Vec<&str> = files
            .iter()
            .copied()
            .filter(|f| !skipped_dir(f) && !x.matches(f))
            .collect();
        assert_eq!(
            sent,
            vec![
                "README.md",
                "axb",
                "dir1/file",
                "docs/README.md",
                "docs/x.md",
                "excl/keep",
                "keep/a",
                "keep/sub/b",
                "somedir/sub/temp.txt",
                "temp",
                "temporary.txt",
                "x/y/z.go",
                "z.go",
            ]
        );
    }

    /// Arbitrary patterns and paths never panic (bad patterns are errors).
    #[test]
    fn no_panics_on_odd_input() {
        let pieces = [
            "*", "**", "?", "[", "]", "^", "-", "\\", "/", "a", "é", "!", ".", "..", "\n", " ",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut pattern = String::new();
            for _ in 0..(next() % 12) {
                pattern.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let mut path = String::new();
            for _ in 0..(next() % 12) {
                path.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if let Ok(m) = Matcher::parse(&pattern) {
                let _ = m.matches(&path);
                let _ = m.is_excluded_dir_walk_needed(&path);
            }
        }
    }
}
