//! Credentials (the `X-Registry-Auth` header's JSON) and the `WWW-Authenticate` challenge
//! flow: Basic, or a Bearer token fetched from the challenge's realm for a scope.

use crate::{Error, Result};
use base64::Engine as _;
use serde::Deserialize;

/// What a client sends in `X-Registry-Auth` (base64url JSON) or in the `/auth` body.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: String,
    pub serveraddress: String,
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not, and the standard
    /// alphabet too) of a JSON object. An empty or `{}` header is anonymous.
    pub fn from_header(v: &str) -> Result<Credentials> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(Credentials::default());
        }
        let raw = v.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
            .map_err(|_| Error::Invalid("invalid X-Registry-Auth header".into()))?;
        Self::from_json(&bytes)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Credentials> {
        // field names vary in case between clients (`Username` from older ones)
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("invalid registry credentials: {e}")))?;
        let get = |k: &str| -> String {
            v.as_object()
                .and_then(|o| {
                    o.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(k))
                        .and_then(|(_, x)| x.as_str())
                })
                .unwrap_or("")
                .to_string()
        };
        Ok(Credentials {
            username: get("username"),
            password: get("password"),
            identity_token: get("identitytoken"),
            serveraddress: get("serveraddress"),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty()
    }

    pub(crate) fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer { realm: String, service: String },
}

/// Parses `Bearer realm="https://auth",service="registry",scope="…"` or `Basic realm="x"`.
pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm");
        if realm.is_empty() {
            return None;
        }
        Some(Challenge::Bearer {
            realm,
            service: get("service"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i.min(s.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    /// seconds the token is valid for (60 when absent, as the token spec says)
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches a bearer token for `scope` (may be empty: a login) from the realm, with the
/// credentials (Basic to the realm, or the identity token as an OAuth refresh token).
/// Returns the token and how long it is valid.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: &str,
    scopes: &[String],
    creds: &Credentials,
) -> Result<(String, std::time::Duration)> {
    let transport = |e: reqwest::Error| Error::Transport {
        method: "Get".into(),
        url: realm.to_string(),
        reason: crate::session::reason(&e),
    };
    let resp = if !creds.identity_token.is_empty() {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", &creds.identity_token),
            ("service", service),
            ("client_id", "berth"),
        ];
        let joined = scopes.join(" ");
        if !joined.is_empty() {
            form.push(("scope", &joined));
        }
        http.post(realm)
            .form(&form)
            .send()
            .await
            .map_err(transport)?
    } else {
        let mut q: Vec<(&str, &str)> = Vec::new();
        if !service.is_empty() {
            q.push(("service", service));
        }
        for s in scopes {
            q.push(("scope", s));
        }
        if !creds.username.is_empty() {
            q.push(("account", &creds.username));
        }
        let mut req = http.get(realm).query(&q);
        if !creds.username.is_empty() {
            req = req.header(reqwest::header::AUTHORIZATION, creds.basic());
        }
        req.send().await.map_err(transport)?
    };
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let detail = crate::session::registry_message(&body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_lowercase());
        return Err(Error::Unauthorized(format!(
            "Get \"{realm}\": unauthorized: {detail}"
        )));
    }
    let body = crate::session::read_limited(resp, 1 << 20, realm).await?;
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| Error::Invalid(format!("token server {realm}: {e}")))?;
    let token = if t.token.is_empty() {
        t.access_token
    } else {
        t.token
    };
    if token.is_empty() {
        return Err(Error::Invalid(format!(
            "token server {realm} answered no token"
        )));
    }
    let lifetime = t
        .expires_in
        .map(std::time::Duration::from_secs)
        .unwrap_or(crate::cache::DEFAULT_TOKEN_LIFETIME);
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="berth-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:9/token",service="reg, x",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: "reg, x".into()
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn registry_auth_header() {
        use base64::Engine as _;
        let j = r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(j);
        let c = Credentials::from_header(&url).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let std = base64::engine::general_purpose::STANDARD.encode(j);
        assert_eq!(Credentials::from_header(&std).unwrap().password, "p?>");
        assert!(Credentials::from_header("e30=").unwrap().is_empty());
        assert!(Credentials::from_header("").unwrap().is_empty());
        assert!(Credentials::from_header("!!!").is_err());
        let c = Credentials::from_json(br#"{"Username":"a","IdentityToken":"t"}"#).unwrap();
        assert_eq!((c.username.as_str(), c.identity_token.as_str()), ("a", "t"));
    }
}
