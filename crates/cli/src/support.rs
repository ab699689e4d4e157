//! Helpers shared by several command modules (it imports none of them): the
//! query escaping of the Engine API client, the credentials store
//! (`config.json` as the docker CLI keeps it, and the `X-Registry-Auth`
//! header made from it), and the pull request that `pull` and run's
//! auto-pull both send.

use crate::client::Client;
use crate::fail;
use crate::http::ReqBody;
use crate::progress::{self, Mode, StreamError};
use crate::reference::{server_key, Ref};
use anyhow::Result;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

// ---------------------------------------------------------------- flag values

/// `--ulimit nofile=1024:2048` → `{"Name":"nofile","Hard":2048,"Soft":1024}`.
pub fn parse_ulimit(v: &str) -> Result<String, String> {
    let (name, vals) = v
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {v}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (s, h),
        None => (vals, vals),
    };
    let p = |x: &str| {
        x.parse::<i64>()
            .map_err(|_| format!("invalid ulimit argument: {v}"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(format!(
        r#"{{"Name":{},"Hard":{hard},"Soft":{soft}}}"#,
        crate::jv::js(name)
    ))
}

/// Go's `json.Marshal` text for `v`: as serde_json writes it, but with `<`,
/// `>`, `&`, U+2028 and U+2029 escaped as Go's encoder does (those only
/// occur inside strings, so the replacement is safe).
pub fn go_json(v: &Value) -> String {
    let s = v.to_string();
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

// ---------------------------------------------------------------- pull request

/// The `POST /images/create` query docker sends to pull `r`
/// (keys sorted, as Go's `url.Values` encodes them).
pub fn pull_query(r: &Ref, platform: Option<&str>) -> String {
    let mut q = format!("/images/create?fromImage={}", query_escape(&r.name()));
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.push_str(&format!("&platform={}", query_escape(p)));
    }
    if let Some(t) = r.api_tag() {
        q.push_str(&format!("&tag={}", query_escape(&t)));
    }
    q
}

/// Pulls `r` and draws the progress on `w` (mode `mode`); the stream's
/// error comes back as `Err(StreamError)` inside `Ok`.
pub fn pull_stream<W: Write>(
    c: &mut Client,
    r: &Ref,
    platform: Option<&str>,
    w: &mut W,
    mode: Mode,
) -> Result<std::result::Result<(), StreamError>> {
    let auth = registry_auth(&r.auth_key());
    let s = c.stream(
        "POST",
        &pull_query(r, platform),
        ReqBody::EmptyPost,
        &[("X-Registry-Auth", &auth)],
        false,
    )?;
    Ok(progress::display(s.body, w, mode, |_| {})?)
}

// ---------------------------------------------------------------- base64

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut o = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let n = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= ch.len() {
                o.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// Standard base64 with padding (the `auth` field of config.json).
pub fn b64_std(data: &[u8]) -> String {
    b64(data, STD)
}

/// URL-safe base64 with padding (Go's `base64.URLEncoding`, X-Registry-Auth).
pub fn b64_url(data: &[u8]) -> String {
    b64(data, URL)
}

/// Decodes standard or URL-safe base64, padding optional.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- config.json

/// `$BERTH_CONFIG` or `~/.berth`.
pub fn config_dir() -> PathBuf {
    match std::env::var_os("BERTH_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".berth")
        }
    }
}

pub fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

/// The whole config file (other keys are kept as they are).
pub fn load_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(fail(
                format!(
                    "WARNING: Error loading config file: {}: invalid character in JSON",
                    p.display()
                ),
                1,
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(fail(
            format!("WARNING: Error loading config file: {}: {e}", p.display()),
            1,
        )),
    }
}

/// Writes the config as the docker CLI does (tab-indented), 0600, atomically.
pub fn save_config(cfg: &Map<String, Value>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = config_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let mut text = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    serde::Serialize::serialize(cfg, &mut ser).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&text)?;
    f.sync_all()?;
    std::fs::rename(&tmp, config_path())
}

fn auths(cfg: &Map<String, Value>) -> Option<&Map<String, Value>> {
    cfg.get("auths").and_then(Value::as_object)
}

/// The stored entry for `key`, also under `http(s)://key[/…]` spellings.
fn entry<'a>(cfg: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    let a = auths(cfg)?;
    if let Some(e) = a.get(key).and_then(Value::as_object) {
        return Some(e);
    }
    a.iter()
        .find(|(k, _)| server_key(k) == key)
        .and_then(|(_, e)| e.as_object())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Creds {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

/// The credentials stored for registry `key` (`host:port` or the index key).
pub fn stored(cfg: &Map<String, Value>, key: &str) -> Option<Creds> {
    let e = entry(cfg, key)?;
    let mut c = Creds::default();
    if let Some(a) = e
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = b64_decode(a)?;
        let raw = String::from_utf8(raw).ok()?;
        let (u, p) = raw.split_once(':')?;
        c.username = u.to_string();
        c.password = p.trim_end_matches('\0').to_string();
    }
    if let Some(t) = e.get("identitytoken").and_then(Value::as_str) {
        c.identity_token = t.to_string();
    }
    if c == Creds::default() {
        return None;
    }
    Some(c)
}

/// docker's X-Registry-Auth value: base64url of
/// `{"username","password","serveraddress"[,"identitytoken"]}`, or of `{}`.
pub fn encode_auth(creds: Option<&Creds>, server: &str) -> String {
    match creds {
        None => b64_url(b"{}"),
        Some(c) => b64_url(auth_json(c, server).as_bytes()),
    }
}

/// One credential as Go marshals docker's `AuthConfig` (fields in its order,
/// empty ones left out).
fn auth_json(c: &Creds, server: &str) -> String {
    let mut m = Vec::new();
    let q = |s: &str| go_json(&Value::String(s.to_string()));
    if !c.username.is_empty() {
        m.push(format!("\"username\":{}", q(&c.username)));
    }
    if !c.password.is_empty() {
        m.push(format!("\"password\":{}", q(&c.password)));
    }
    m.push(format!("\"serveraddress\":{}", q(server)));
    if !c.identity_token.is_empty() {
        m.push(format!("\"identitytoken\":{}", q(&c.identity_token)));
    }
    format!("{{{}}}", m.join(","))
}

/// docker's `X-Registry-Config` (sent with builds, for private base images):
/// base64url of every stored credential keyed by its server, keys sorted as
/// Go marshals a map; `e30=` (`{}`) when nothing is stored.
pub fn registry_config_of(cfg: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = auths(cfg).map(|a| a.keys().collect()).unwrap_or_default();
    keys.sort();
    let entries: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let c = stored(cfg, k)?;
            Some(format!(
                "{}:{}",
                go_json(&Value::String(k.clone())),
                auth_json(&c, k)
            ))
        })
        .collect();
    b64_url(format!("{{{}}}", entries.join(",")).as_bytes())
}

/// [`registry_config_of`] the config file.
pub fn registry_config() -> String {
    registry_config_of(&load_config().unwrap_or_default())
}

/// The X-Registry-Auth header for registry `key` from the stored credentials.
pub fn registry_auth(key: &str) -> String {
    let cfg = load_config().unwrap_or_default();
    encode_auth(stored(&cfg, key).as_ref(), key)
}

/// Records `creds` for `key`; true if that changed what was stored.
pub fn store(cfg: &mut Map<String, Value>, key: &str, creds: &Creds) -> bool {
    let mut e = Map::new();
    if creds.identity_token.is_empty() {
        e.insert(
            "auth".into(),
            Value::String(b64_std(
                format!("{}:{}", creds.username, creds.password).as_bytes(),
            )),
        );
    } else {
        e.insert(
            "auth".into(),
            Value::String(b64_std(format!("{}:", creds.username).as_bytes())),
        );
        e.insert(
            "identitytoken".into(),
            Value::String(creds.identity_token.clone()),
        );
    }
    let a = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !a.is_object() {
        *a = Value::Object(Map::new());
    }
    let Some(a) = a.as_object_mut() else {
        return false;
    };
    let new = Value::Object(e);
    let changed = a.get(key) != Some(&new);
    a.insert(key.to_string(), new);
    changed
}

/// Removes every spelling of `key`; true if something was there.
pub fn erase(cfg: &mut Map<String, Value>, key: &str) -> bool {
    let Some(a) = cfg.get_mut("auths").and_then(Value::as_object_mut) else {
        return false;
    };
    let keys: Vec<String> = a
        .keys()
        .filter(|k| *k == key || server_key(k) == key)
        .cloned()
        .collect();
    for k in &keys {
        a.remove(k);
    }
    !keys.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn pull_queries_as_docker_28() {
        let r = reference::parse("ac-nosuchimage:1").unwrap();
        assert_eq!(
            pull_query(&r, None),
            "/images/create?fromImage=docker.io%2Flibrary%2Fac-nosuchimage&tag=1"
        );
        let r = reference::parse("127.0.0.1:42871/bb:1").unwrap();
        assert_eq!(
            pull_query(&r, Some("linux/amd64")),
            "/images/create?fromImage=127.0.0.1%3A42871%2Fbb&platform=linux%2Famd64&tag=1"
        );
        let d = "sha256:3eabb289dbf4b2020a67b0d77c9132da0762b8ab688464f8faaa9cccc9dcaa29";
        let r = reference::parse(&format!("127.0.0.1:42871/bb:1@{d}")).unwrap();
        assert_eq!(
            pull_query(&r, None),
            format!(
                "/images/create?fromImage=127.0.0.1%3A42871%2Fbb&tag=sha256%3A{}",
                &d[7..]
            )
        );
        let r = reference::parse("127.0.0.1:42871/bb").unwrap();
        assert_eq!(
            pull_query(&r, None),
            "/images/create?fromImage=127.0.0.1%3A42871%2Fbb"
        );
    }

    #[test]
    fn base64_both_alphabets() {
        assert_eq!(b64_url(b"{}"), "e30=");
        assert_eq!(b64_std(b"alice:secret"), "YWxpY2U6c2VjcmV0");
        assert_eq!(b64_std(b"ab"), "YWI=");
        assert_eq!(b64_std(b"\xfb\xff"), "+/8=");
        assert_eq!(b64_url(b"\xfb\xff"), "-_8=");
        assert_eq!(b64_decode("YWxpY2U6c2VjcmV0").unwrap(), b"alice:secret");
        assert_eq!(b64_decode("-_8=").unwrap(), b"\xfb\xff");
        assert_eq!(b64_decode("+/8").unwrap(), b"\xfb\xff");
        assert!(b64_decode("a*b").is_none());
    }

    #[test]
    fn registry_auth_as_docker_sends_it() {
        // the header docker 28 sent for a login stored for 127.0.0.1:42883
        let c = Creds {
            username: "alice".into(),
            password: "secret".into(),
            identity_token: String::new(),
        };
        assert_eq!(
            encode_auth(Some(&c), "127.0.0.1:42883"),
            "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzZWNyZXQiLCJzZXJ2ZXJhZGRyZXNzIjoiMTI3LjAuMC4xOjQyODgzIn0="
        );
        assert_eq!(encode_auth(None, "x"), "e30=");
    }

    #[test]
    fn registry_config_as_docker_sends_it() {
        assert_eq!(registry_config_of(&Map::new()), "e30=");
        let mut cfg = Map::new();
        let c = |u: &str, p: &str| Creds {
            username: u.into(),
            password: p.into(),
            identity_token: String::new(),
        };
        store(&mut cfg, "127.0.0.1:5001", &c("bob", "p<&>"));
        store(&mut cfg, "127.0.0.1:5000", &c("alice", "secret"));
        let raw = b64_decode(&registry_config_of(&cfg)).unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            concat!(
                r#"{"127.0.0.1:5000":{"username":"alice","password":"secret","serveraddress":"127.0.0.1:5000"},"#,
                r#""127.0.0.1:5001":{"username":"bob","password":"p\u003c\u0026\u003e","serveraddress":"127.0.0.1:5001"}}"#
            )
        );
    }

    #[test]
    fn go_json_escapes_like_go() {
        assert_eq!(
            go_json(&serde_json::json!({"a": "<b>&"})),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
        assert_eq!(go_json(&serde_json::json!(["x"])), r#"["x"]"#);
    }

    #[test]
    fn store_lookup_erase() {
        let mut cfg = Map::new();
        let c = Creds {
            username: "alice".into(),
            password: "se:cret".into(),
            identity_token: String::new(),
        };
        assert!(store(&mut cfg, "127.0.0.1:5000", &c));
        assert!(
            !store(&mut cfg, "127.0.0.1:5000", &c),
            "same creds: unchanged"
        );
        assert_eq!(stored(&cfg, "127.0.0.1:5000"), Some(c.clone()));
        assert_eq!(stored(&cfg, "127.0.0.1:5001"), None);
        // docker also finds entries written with a scheme
        cfg["auths"].as_object_mut().unwrap().insert(
            "https://reg.example:443/v2/".into(),
            serde_json::json!({"auth": "dTpw"}),
        );
        assert_eq!(stored(&cfg, "reg.example:443").unwrap().password, "p");
        assert!(erase(&mut cfg, "reg.example:443"));
        assert!(erase(&mut cfg, "127.0.0.1:5000"));
        assert!(!erase(&mut cfg, "127.0.0.1:5000"));
        assert_eq!(Value::Object(cfg).to_string(), r#"{"auths":{}}"#);
    }

    #[test]
    fn config_file_like_dockers() {
        let dir = std::env::temp_dir().join(format!("berth-auth-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::env::set_var("BERTH_CONFIG", &dir);
        let mut cfg = load_config().unwrap();
        assert!(cfg.is_empty());
        let c = Creds {
            username: "alice".into(),
            password: "secret".into(),
            identity_token: String::new(),
        };
        store(&mut cfg, "127.0.0.1:42883", &c);
        save_config(&cfg).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        // byte for byte what docker 28 wrote for the same login
        assert_eq!(
            text,
            "{\n\t\"auths\": {\n\t\t\"127.0.0.1:42883\": {\n\t\t\t\"auth\": \"YWxpY2U6c2VjcmV0\"\n\t\t}\n\t}\n}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            registry_auth("127.0.0.1:42883"),
            encode_auth(Some(&c), "127.0.0.1:42883")
        );
        std::fs::write(dir.join("config.json"), "{nope").unwrap();
        assert!(load_config().is_err());
        std::env::remove_var("BERTH_CONFIG");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
