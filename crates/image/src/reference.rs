//! Docker image references (`busybox`, `foo/bar:1`, `localhost:5000/a/b@sha256:…`),
//! normalised the way docker does.

use crate::digest::{is_sha256_hex, Digest};
use crate::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A docker image reference, normalised like docker's (`busybox` = `docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn invalid(s: &str) -> Error {
    Error::InvalidReference(s.to_string())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // a run of alphanumerics
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // a separator: `.`, `_`, `__` or one or more `-`
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == b.len() {
            return false;
        }
    }
}

/// host components `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`, or `[ipv6]`,
/// optionally followed by `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty() || !ip.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(p) => return !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

impl Reference {
    /// Parses and normalises; adds `latest` when neither tag nor digest is given.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(invalid(s));
        }
        if is_sha256_hex(s) {
            // docker: "cannot specify 64-byte hexadecimal strings"
            return Err(Error::InvalidReference(format!(
                "{s}: cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let d = Digest::parse(d).map_err(|_| invalid(s))?;
                (r, Some(d.as_str().to_string()))
            }
            None => (s, None),
        };
        // the tag is after the last ':' that follows the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                let t = &rest[i + 1..];
                if !valid_tag(t) {
                    return Err(invalid(s));
                }
                (&rest[..i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(s));
        }
        // split off a domain: the first component is one if it has `.` or `:`, is
        // `localhost`, or has uppercase letters (docker's rule)
        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if !valid_domain(&domain) {
            return Err(invalid(s));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::InvalidReference(format!(
                "{s}: repository name must be lowercase"
            )));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(s));
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_REPO_PREFIX}{path}");
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(Error::InvalidReference(format!(
                "{s}: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `docker.io/library/busybox:latest`
    pub fn full(&self) -> String {
        self.with_suffix(self.name())
    }

    /// `busybox`, `foo/bar`, `localhost:5000/a/b`
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// `busybox:latest`, `localhost:5000/a/b:c` (docker's "familiar" form, as in `docker images`)
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn official_image() {
        let r = p("busybox");
        assert_eq!(r.domain, "docker.io");
        assert_eq!(r.path, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.digest, None);
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
    }

    #[test]
    fn equivalent_forms_normalise_the_same() {
        let a = p("busybox");
        for s in [
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
        ] {
            assert_eq!(p(s), a, "{s}");
        }
    }

    #[test]
    fn user_repo() {
        let r = p("foo/bar");
        assert_eq!(r.full(), "docker.io/foo/bar:latest");
        assert_eq!(r.familiar(), "foo/bar:latest");
        let r = p("foo/bar/baz:1.0");
        assert_eq!(r.full(), "docker.io/foo/bar/baz:1.0");
        assert_eq!(r.familiar(), "foo/bar/baz:1.0");
    }

    #[test]
    fn private_registry() {
        let r = p("localhost:5000/a/b:c");
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.tag.as_deref(), Some("c"));
        assert_eq!(r.familiar(), "localhost:5000/a/b:c");
        assert_eq!(r.full(), "localhost:5000/a/b:c");
        let r = p("localhost/x");
        assert_eq!(r.domain, "localhost");
        assert_eq!(r.full(), "localhost/x:latest");
        let r = p("quay.io/coreos/etcd");
        assert_eq!(r.domain, "quay.io");
        assert_eq!(r.path, "coreos/etcd");
        assert_eq!(r.familiar(), "quay.io/coreos/etcd:latest");
        // no `library/` for other registries
        let r = p("example.com/single");
        assert_eq!(r.path, "single");
        // port without dots
        assert_eq!(p("myhost:5000/img").domain, "myhost:5000");
        // ipv6
        assert_eq!(p("[::1]:5000/img").domain, "[::1]:5000");
    }

    #[test]
    fn digest_references() {
        let d = Digest::sha256_of(b"m");
        let r = p(&format!("busybox@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.full(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        let r = p(&format!("localhost:5000/a:t@{d}"));
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.full(), format!("localhost:5000/a:t@{d}"));
    }

    #[test]
    fn familiar_keeps_library_for_nested_paths() {
        assert_eq!(p("library/a/b").familiar(), "library/a/b:latest");
    }

    #[test]
    fn valid_component_separators() {
        for s in ["a.b", "a_b", "a__b", "a-b", "a---b", "a0", "0a"] {
            assert!(Reference::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid_forms() {
        let bad = [
            "",
            "Busybox",
            "foo/Bar",
            "busybox:",
            "busybox:-x",
            ":tag",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a b",
            "busybox@sha256:abc",
            "busybox@",
            "localhost:5000/",
            "localhost:x/a",
            "-host.com/a",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ];
        for s in bad {
            assert!(Reference::parse(s).is_err(), "{s:?} should be invalid");
        }
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        let long_name = "a".repeat(256);
        assert!(Reference::parse(&long_name).is_err());
        assert!(matches!(
            Reference::parse("foo/Bar"),
            Err(Error::InvalidReference(m)) if m.contains("lowercase")
        ));
    }

    #[test]
    fn uppercase_domain_is_a_domain() {
        // docker treats an uppercase first component as a domain
        let r = p("Example.com/a");
        assert_eq!(r.domain, "Example.com");
    }
}
