//! `.dockerignore` patterns and docker's matching: Go `filepath.Match` syntax per path
//! element, `**` for any number of elements, `!` exceptions (the last matching pattern wins),
//! patterns cleaned (`./a/` = `a`, leading `/` dropped). Used by the CLI (which leaves
//! ignored files out of the context it sends) and by the builder (COPY never sees them).

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
    patterns: Vec<String>,
}

impl Matcher {
    /// From a `.dockerignore` file's text (comments `#`, blank lines, surrounding spaces dropped).
    pub fn parse(text: &str) -> Result<Matcher, PatternError> {
        let _ = text;
        Ok(Matcher::default())
    }

    /// From patterns already split into lines.
    pub fn new(patterns: &[String]) -> Result<Matcher, PatternError> {
        Ok(Matcher {
            patterns: patterns.to_vec(),
        })
    }

    /// Whether `rel` (a path relative to the context root, `/`-separated, no leading `./`)
    /// is excluded.
    pub fn matches(&self, rel: &str) -> bool {
        let _ = rel;
        false
    }

    /// Whether some `!` pattern exists: then an excluded directory must still be walked,
    /// since an exception may re-include something below it.
    pub fn has_exceptions(&self) -> bool {
        false
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}
