//! Variable substitution in Dockerfile words, docker's shell-lexer rules: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`,
//! `${VAR?message}` (defaults and alternates may hold further quotes and expansions), the
//! directive's escape character before any character (`\$x` is the text `$x`), single quotes
//! literal, double quotes expanding (in them the escape only escapes `"`, `$` and itself).
//!
//! # Which instructions expand (docker's classic builder)
//! The executor expands, with the ARG/ENV state of the step, the words of `ADD`, `COPY`
//! (sources, destination, `--chown`, `--chmod`, `--from`), `ENV` (names and values),
//! `EXPOSE`, `FROM` (image and `--platform`, with the meta ARGs only), `LABEL` (names and
//! values), `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, and the `ARG` default values. It does
//! NOT expand `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` (the shell does it when the
//! container runs), `MAINTAINER`, nor an `ONBUILD` trigger (expanded when it fires, in the
//! child build). A heredoc body is expanded ([`expand_heredoc`]) only when its delimiter is
//! unquoted (`<<EOF`, not `<<"EOF"`), and only for COPY/ADD (a RUN heredoc is handed to the
//! shell as is, which expands it itself).
//!
//! Each word is expanded with [`expand_word`] (docker's `ProcessWord`: one string, quotes and
//! escapes removed, spaces from a variable kept); [`expand_words`] (`ProcessWords`) also
//! splits on unquoted whitespace, for when one variable may hold several words (EXPOSE
//! `$PORTS`, VOLUME). [`expand`] keeps quotes and escapes as written, for callers that split
//! afterwards themselves; [`unquote`] only removes quotes and escapes.

/// A substitution that cannot be done (e.g. an unterminated `${`), docker's text; docker
/// reports it as `failed to process "<word>": <text>`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// Expands the variables of `word` with `lookup` (unknown variables are empty).
/// Quotes and escapes are kept as written: callers that split words (ENV, LABEL) remove them.
///
/// Prefer [`expand_word`] for an instruction's word: `unquote(expand(w))` differs from
/// docker when a variable's value itself holds quotes or escapes (`ENV Q='"q"'` then
/// `LABEL l=$Q`: docker keeps `"q"`, unquoting afterwards would strip them).
pub fn expand(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, Some(lookup), escape, true);
    Ok(lexer.process(None)?.0)
}

/// docker's `ProcessWord`: variables expanded, quotes and escapes removed, one string.
pub fn expand_word(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, Some(lookup), escape, false);
    Ok(lexer.process(None)?.0)
}

/// docker's `ProcessWords`: variables expanded, then split on whitespace that is neither
/// quoted nor escaped (whitespace coming from a variable splits too), quotes and escapes
/// removed. Empty words are dropped.
pub fn expand_words(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lexer = Lexer::new(s, Some(lookup), escape, false);
    let (_, words) = lexer.process(None)?;
    Ok(words.finish())
}

/// A heredoc body with an unquoted delimiter (`COPY <<EOF /x`), as a shell expands one:
/// `$VAR` and `${…}` expanded, quotes are plain text, `\` only escapes `$`, `` ` ``, `\` and a
/// newline (the pair is removed), whatever the escape directive says.
pub fn expand_heredoc(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(content, Some(lookup), '\\', false);
    let mut out = String::new();
    while let Some(ch) = lexer.peek() {
        match ch {
            '$' => {
                let s = lexer.dollar()?;
                out.push_str(&s);
            }
            '\\' => {
                lexer.pos += 1;
                match lexer.peek() {
                    Some(n @ ('$' | '`' | '\\')) => {
                        lexer.pos += 1;
                        out.push(n);
                    }
                    Some('\n') => lexer.pos += 1,
                    _ => out.push('\\'),
                }
            }
            _ => {
                lexer.pos += 1;
                out.push(ch);
            }
        }
    }
    Ok(out)
}

/// Removes quotes and escapes, as the lexer does, without touching `$` (an unterminated
/// quote keeps the rest as written).
pub fn unquote(s: &str, escape: char) -> String {
    let mut lexer = Lexer::new(s, None, escape, false);
    match lexer.process(None) {
        Ok((out, _)) => out,
        Err(_) => s.to_string(),
    }
}

/// Word splitting as the lexer goes: whitespace from plain text and from variables splits,
/// quoted and escaped text does not.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
            }
        } else {
            self.word.push(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// the variables' values
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    /// None: no variables (`$` is plain text)
    lookup: Option<Lookup<'a>>,
    escape: char,
    /// keep quotes and escapes in the output
    raw: bool,
}

fn err<T>(msg: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError(msg.into()))
}

impl<'a> Lexer<'a> {
    fn new(s: &str, lookup: Option<Lookup<'a>>, escape: char, raw: bool) -> Lexer<'a> {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            lookup,
            escape,
            raw,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&self, name: &str) -> Option<String> {
        self.lookup.and_then(|f| f(name))
    }

    /// Up to `stop` (consumed) or the end; the text and its words.
    fn process(&mut self, stop: Option<char>) -> Result<(String, Words), ExpandError> {
        let mut out = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((out, words));
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    out.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    out.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' if self.lookup.is_some() => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw {
                            out.push(ch);
                        }
                        let Some(next) = self.next() else {
                            break;
                        };
                        words.add_raw_char(next);
                        out.push(next);
                    } else {
                        words.add_char(ch);
                        out.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((out, words))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        self.pos += 1;
        if self.raw {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    )
                }
                Some('\'') => {
                    if self.raw {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        self.pos += 1;
        if self.raw {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    if self.raw {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') if self.lookup.is_some() => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        if self.raw {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            Some(_) => {
                                if !self.raw {
                                    out.push(c);
                                }
                            }
                        }
                        continue;
                    }
                    out.push(c);
                }
            }
        }
    }

    /// A name: letters, digits, `_`; a leading digit starts a positional name of digits
    /// only (`$12`), and the shell's special parameters (`$-`, `$@`, `$#`, …) are
    /// one-character names (empty unless `lookup` knows them, as in docker).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!".contains(c) {
                self.pos += 1;
                name.push(c);
                return name;
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    /// The nested word of `${x:-word}`: up to the closing brace.
    fn nested_word(&mut self) -> Result<String, ExpandError> {
        match self.process(Some('}')) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => err("syntax error: missing '}'"),
            Err(e) => Err(e),
        }
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.get(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                let word = self.nested_word()?;
                let set = self.get(&name);
                let value = set.clone().unwrap_or_default();
                match modifier {
                    Some('+') => Ok(if value.is_empty() { value } else { word }),
                    Some('-') => Ok(if value.is_empty() { word } else { value }),
                    Some('?') if value.is_empty() => {
                        let word = match (word.is_empty(), set.is_some()) {
                            (false, _) => word,
                            (true, false) => "is not allowed to be unset".to_string(),
                            (true, true) => "is not allowed to be empty".to_string(),
                        };
                        err(format!("{name}: {word}"))
                    }
                    Some('?') => Ok(value),
                    Some(m) => err(format!("unsupported modifier ({m}) in substitution")),
                    None => err("syntax error: missing '}'"),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.nested_word()?;
                let value = self.get(&name);
                match op {
                    '-' => Ok(value.unwrap_or(word)),
                    '+' => Ok(if value.is_some() { word } else { String::new() }),
                    _ => match value {
                        Some(v) => Ok(v),
                        None => {
                            let word = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            err(format!("{name}: {word}"))
                        }
                    },
                }
            }
            None | Some(_) => err("missing ':' in substitution"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "SP" => Some("x  y".into()),
            "EMPTY" => Some(String::new()),
            "Q" => Some("\"q\"".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        match expand_word(s, &env, '\\') {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn e(s: &str) -> String {
        match expand_word(s, &env, '\\') {
            Ok(v) => panic!("{s}: expected an error, got {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(w("$A"), "a");
        assert_eq!(w("${A}"), "a");
        assert_eq!(w("x${A}y$A.z"), "xay a.z".replace(' ', ""));
        assert_eq!(w("$NOPE"), "");
        assert_eq!(w("${NOPE}x"), "x");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$"), "a$");
        // special parameters are (empty) names, as docker has them: `$-x` is `x`
        assert_eq!(w("$-x"), "x");
        assert_eq!(w("$$"), "");
        assert_eq!(w("$@a"), "a");
        assert_eq!(w("${$}"), "");
        assert_eq!(w("${-}"), "");
        assert_eq!(w("$12x"), "x");
        assert_eq!(w("${1}x"), "onex");
        assert_eq!(w("$%"), "$%");
        assert_eq!(w("$1x"), "onex");
        assert_eq!(w("$A_B"), "");
        assert_eq!(w("${A}_B"), "a_B");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${A:-d}"), "a");
        assert_eq!(w("${NOPE:-d}"), "d");
        assert_eq!(w("${EMPTY:-d}"), "d");
        assert_eq!(w("${EMPTY-d}"), "");
        assert_eq!(w("${NOPE-d}"), "d");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${EMPTY:+alt}"), "");
        assert_eq!(w("${EMPTY+alt}"), "alt");
        assert_eq!(w("${NOPE+alt}"), "");
        assert_eq!(w("${NOPE:-}"), "");
        // nested expansions and quotes in the word
        assert_eq!(w("${NOPE:-$A}"), "a");
        assert_eq!(w("${NOPE:-${NOPE2:-deep}}"), "deep");
        assert_eq!(w("${NOPE:-\"a b\"}"), "a b");
        assert_eq!(w("${NOPE:-'$A'}"), "$A");
        assert_eq!(w("${A:?must be set}"), "a");
        assert_eq!(e("${NOPE:?must be set}"), "NOPE: must be set");
        assert_eq!(e("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
        assert_eq!(e("${NOPE:?}"), "NOPE: is not allowed to be unset");
        assert_eq!(w("${EMPTY?x}"), "");
        assert_eq!(e("${NOPE?}"), "NOPE: is not allowed to be unset");
    }

    #[test]
    fn syntax_errors() {
        // checked with dockerd 20.10
        assert_eq!(e("${A"), "missing ':' in substitution");
        assert_eq!(e("${A:"), "syntax error: missing '}'");
        assert_eq!(e("x${$"), "missing ':' in substitution");
        assert_eq!(e("${"), "syntax error: missing '}'");
        assert_eq!(e("${}"), "syntax error: bad substitution");
        assert_eq!(e("${:a}"), "syntax error: bad substitution");
        assert_eq!(e("${A:-x"), "syntax error: missing '}'");
        assert_eq!(e("${A:=x}"), "unsupported modifier (=) in substitution");
        assert_eq!(e("${A/x}"), "missing ':' in substitution");
        assert_eq!(
            e("'abc"),
            "unexpected end of statement while looking for matching single-quote"
        );
        assert_eq!(
            e("\"abc"),
            "unexpected end of statement while looking for matching double-quote"
        );
    }

    /// Values docker 20.10's classic builder gave these LABELs (with `ENV A=a SP="x  y"
    /// EMPTY= Q="\"q\""`), read back with `docker inspect`.
    #[test]
    fn same_values_as_docker() {
        let vars = |n: &str| match n {
            "A" => Some("a".to_string()),
            "SP" => Some("x  y".to_string()),
            "EMPTY" => Some(String::new()),
            "Q" => Some("\"q\"".to_string()),
            _ => None,
        };
        for (word, want) in [
            ("$A", "a"),
            ("${A:-d}", "a"),
            ("${NOPE:-d}", "d"),
            ("${A:+alt}", "alt"),
            ("'$A'", "$A"),
            ("\"$A b\"", "a b"),
            ("\\$A", "$A"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("${NOPE:-\"x y\"}", "x y"),
            ("${NOPE:-$A}", "a"),
            ("\"a\\\\$A\"", "a\\a"),
            ("$SP", "x  y"),
            ("$Q", "\"q\""),
            ("${EMPTY:+x}", ""),
            ("a\\ b", "a b"),
            ("\"it's\"", "it's"),
            ("${NOPE:-'$A'}", "$A"),
            ("$1x", "x"),
            ("$A_B", ""),
            ("$-x", "x"),
        ] {
            assert_eq!(
                expand_word(word, &vars, '\\').as_deref(),
                Ok(want),
                "{word}"
            );
        }
        assert_eq!(
            expand_word("${A?x}", &|_| None, '\\'),
            Err(ExpandError("A: x".into()))
        );
        assert_eq!(
            expand_word("${A:?}", &|_| None, '\\'),
            Err(ExpandError("A: is not allowed to be unset".into()))
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A\""), "a");
        assert_eq!(w("\"${A}b\""), "ab");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\\${A}"), "${A}");
        assert_eq!(w("a\\ b"), "a b");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\$A\""), "a$A");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(w("'a\\b'"), "a\\b");
        assert_eq!(w("x\\"), "x");
        assert_eq!(w("\"it's\""), "it's");
        assert_eq!(w("'say \"hi\"'"), "say \"hi\"");
        // a value's quotes are data, not syntax
        assert_eq!(w("$Q"), "\"q\"");
        // the backtick escape
        assert_eq!(expand_word("`$A", &env, '`').unwrap(), "$A");
        assert_eq!(expand_word("c:\\dir", &env, '`').unwrap(), "c:\\dir");
    }

    #[test]
    fn raw_expand_keeps_quotes() {
        let r = |s: &str| expand(s, &env, '\\').unwrap();
        assert_eq!(r("\"$A b\""), "\"a b\"");
        assert_eq!(r("'$A'"), "'$A'");
        assert_eq!(r("\\$A x"), "\\$A x");
        assert_eq!(r("${NOPE:-\"d e\"}"), "\"d e\"");
        assert_eq!(r("\"a\\\"b\""), "\"a\\\"b\"");
        // values holding quotes: only expand_word keeps them as docker does
        assert_eq!(w("$Q"), "\"q\"");
        assert_eq!(unquote(&r("$Q"), '\\'), "q");
        // expand then unquote = expand_word when values are plain
        for s in [
            "\"$A b\"",
            "'$A'",
            "\\$A x",
            "\"a\\\"b\"",
            "a\\ b",
            "\"x\\ny\"",
        ] {
            assert_eq!(unquote(&r(s), '\\'), w(s), "{s}");
        }
    }

    #[test]
    fn words() {
        let ws = |s: &str| expand_words(s, &env, '\\').unwrap();
        assert_eq!(ws("a b  c"), vec!["a", "b", "c"]);
        assert_eq!(ws("\"a b\" c"), vec!["a b", "c"]);
        assert_eq!(ws("a\\ b c"), vec!["a b", "c"]);
        assert_eq!(ws("$SP z"), vec!["x", "y", "z"]);
        assert_eq!(ws("\"$SP\" z"), vec!["x  y", "z"]);
        assert_eq!(ws("pre$SP"), vec!["prex", "y"]);
        assert_eq!(ws("$NOPE"), Vec::<String>::new());
        assert_eq!(ws("'' a"), vec!["a"]);
        assert_eq!(ws("  "), Vec::<String>::new());
    }

    #[test]
    fn heredoc_bodies() {
        let h = |s: &str| expand_heredoc(s, &env).unwrap();
        assert_eq!(h("a=$A\nb=${NOPE:-d}\n"), "a=a\nb=d\n");
        assert_eq!(h("\"$A\" '$A'\n"), "\"a\" 'a'\n");
        assert_eq!(h("\\$A \\\\ \\n \\`x\n"), "$A \\ \\n `x\n");
        assert_eq!(h("one \\\ntwo\n"), "one two\n");
        assert_eq!(h("printf 'x\\n'\n"), "printf 'x\\n'\n");
        assert_eq!(h("cost: 5$\n"), "cost: 5$\n");
        assert_eq!(
            expand_heredoc("${A", &env),
            Err(ExpandError("missing ':' in substitution".into()))
        );
    }

    #[test]
    fn unquote_only() {
        assert_eq!(unquote("\"a b\"", '\\'), "a b");
        assert_eq!(unquote("'a b'", '\\'), "a b");
        assert_eq!(unquote("$A", '\\'), "$A");
        assert_eq!(unquote("\"$A\"", '\\'), "$A");
        assert_eq!(unquote("a\\ b", '\\'), "a b");
        assert_eq!(unquote("E\"O\"F", '\\'), "EOF");
        assert_eq!(unquote("'unterminated", '\\'), "'unterminated");
    }
}
