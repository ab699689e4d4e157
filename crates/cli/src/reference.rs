//! Image references as the docker CLI normalises them: `busybox` is
//! `docker.io/library/busybox`, `host:port/ns/name:tag`, `name@sha256:…`,
//! `name:tag@sha256:…`; invalid ones get docker's error texts. Shared by
//! pull, push, search, login and run's auto-pull.

/// docker.io's name inside references.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The key docker uses for docker.io in `config.json` and `serveraddress`.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub domain: String,
    /// the repository path below the domain (`library/busybox`)
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

const BAD: &str = "invalid reference format";

impl Ref {
    /// `docker.io/library/busybox`: what docker sends as `fromImage`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `me/x`, `127.0.0.1:5000/x`: what docker puts in push paths.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// Neither tag nor digest was given.
    pub fn name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `latest` when neither tag nor digest was given.
    pub fn with_default_tag(mut self) -> Ref {
        if self.name_only() {
            self.tag = Some("latest".into());
        }
        self
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
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

    /// The full string: `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        format!("{}{}", self.name(), self.suffix())
    }

    /// The familiar string: `busybox:latest`.
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    /// The `tag` query value of `POST /images/create`: the digest when
    /// there is one, else the tag.
    pub fn api_tag(&self) -> Option<String> {
        self.digest.clone().or_else(|| self.tag.clone())
    }

    /// The key of this reference's registry in `config.json`.
    pub fn auth_key(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            INDEX_SERVER.to_string()
        } else {
            self.domain.clone()
        }
    }
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(s: &str) -> bool {
    let b: Vec<char> = s.chars().collect();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or "-"+
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep: String = b[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host(.host)*(:port)?` with host labels `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `[\w][\w.-]{0,127}`
fn tag_ok(t: &str) -> bool {
    let w = |c: char| c.is_ascii_alphanumeric() || c == '_';
    t.len() <= 128
        && t.chars().next().is_some_and(w)
        && t.chars().all(|c| w(c) || c == '.' || c == '-')
}

fn check_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(BAD.into());
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|p| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && p.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !alg_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(BAD.into());
    }
    match alg {
        "sha256" if hex.len() != 64 => Err("invalid checksum digest length".into()),
        "sha384" if hex.len() != 96 => Err("invalid checksum digest length".into()),
        "sha512" if hex.len() != 128 => Err("invalid checksum digest length".into()),
        "sha256" | "sha384" | "sha512" if hex.chars().any(|c| c.is_ascii_uppercase()) => {
            Err("invalid checksum digest format".into())
        }
        "sha256" | "sha384" | "sha512" => Ok(()),
        _ => Err("unsupported digest algorithm".into()),
    }
}

/// docker's `ParseNormalizedNamed`, with its error texts.
pub fn parse(s: &str) -> Result<Ref, String> {
    if s.len() == 64 && s.chars().all(|c| matches!(c, 'a'..='f' | '0'..='9')) {
        return Err(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    // the domain: a first component with `.` or `:`, `localhost`, or any uppercase
    let (mut domain, mut rest) = match s.split_once('/') {
        Some((d, r)) if d.contains(['.', ':']) || d == "localhost" || d.to_lowercase() != d => {
            (d.to_string(), r.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), s.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.into();
    }
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        rest = format!("library/{rest}");
    }
    let remote = rest.split(':').next().unwrap_or("");
    if remote.to_lowercase() != remote {
        return Err(format!(
            "{BAD}: repository name ({remote}) must be lowercase"
        ));
    }
    if s.is_empty() {
        return Err(BAD.into());
    }
    let (name_tag, digest) = match rest.split_once('@') {
        Some((n, d)) => {
            check_digest(d)?;
            (n.to_string(), Some(d.to_string()))
        }
        None => (rest.clone(), None),
    };
    let (path, tag) = match name_tag.rfind(':') {
        Some(i) if !name_tag[i..].contains('/') => {
            let t = &name_tag[i + 1..];
            if !tag_ok(t) {
                return Err(BAD.into());
            }
            (name_tag[..i].to_string(), Some(t.to_string()))
        }
        _ => (name_tag.clone(), None),
    };
    if !domain_ok(&domain) || !path.split('/').all(path_component_ok) {
        return Err(BAD.into());
    }
    if domain.len() + 1 + path.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    Ok(Ref {
        domain,
        path,
        tag,
        digest,
    })
}

/// The registry host of a `login`/`logout` argument, as docker keys it:
/// `https://host:port/v2/` → `host:port`; docker.io's names → the index key.
pub fn server_key(server: &str) -> String {
    let s = server.trim();
    let h = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let h = h.split('/').next().unwrap_or(h);
    match h {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => INDEX_SERVER.into(),
        _ if s.starts_with("http://") || s.starts_with("https://") => h.to_string(),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = parse("busybox").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox");
        assert_eq!(
            r.clone().with_default_tag().full(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.auth_key(), INDEX_SERVER);
        let r = parse("me/x:1").unwrap();
        assert_eq!(
            (r.name(), r.tag.as_deref()),
            ("docker.io/me/x".into(), Some("1"))
        );
        assert_eq!(r.familiar(), "me/x:1");
        let r = parse("127.0.0.1:5000/ns/bb:v1.2").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "ns/bb");
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/ns/bb");
        assert_eq!(r.auth_key(), "127.0.0.1:5000");
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse(&format!("localhost/bb:1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.api_tag(), Some(d.clone()));
        assert_eq!(r.full(), format!("localhost/bb:1@{d}"));
        assert_eq!(
            parse("index.docker.io/busybox").unwrap().name(),
            "docker.io/library/busybox"
        );
        assert_eq!(parse("x/a__b.c-d---e").unwrap().path, "x/a__b.c-d---e");
    }

    #[test]
    fn errors_like_docker() {
        assert_eq!(
            parse("Busybox").unwrap_err(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            parse("127.0.0.1:5000/Busybox").unwrap_err(),
            "invalid reference format: repository name (Busybox) must be lowercase"
        );
        for bad in [
            "a b",
            "",
            "x:",
            "x:-t",
            "x/",
            "/x",
            "a..b",
            "x@sha256:zz",
            "x:y:z",
            "-x",
        ] {
            assert_eq!(parse(bad).unwrap_err(), "invalid reference format", "{bad}");
        }
        assert_eq!(
            parse("x@sha256:abcdabcdabcdabcdabcdabcdabcdabcdab").unwrap_err(),
            "invalid checksum digest length"
        );
        let hex = "a".repeat(64);
        assert!(parse(&hex)
            .unwrap_err()
            .contains("cannot specify 64-byte hexadecimal strings"));
        assert_eq!(
            parse(&"a".repeat(300)).unwrap_err(),
            "repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn login_server_keys() {
        assert_eq!(server_key(""), INDEX_SERVER);
        assert_eq!(server_key("docker.io"), INDEX_SERVER);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
