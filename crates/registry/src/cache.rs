//! What the daemon remembers between sessions so that a request to a registry it spoke to a
//! moment ago costs one round trip: the answer of each endpoint's `/v2/` (open, or its
//! `WWW-Authenticate` challenge) and the Bearer tokens per endpoint, repository scope and
//! credentials, until their `expires_in`.
//!
//! Nothing here is trusted blindly: a 401 to a request made with a remembered token drops the
//! token and redoes the challenge once (see `Session::send`); a 401 to a registry remembered as
//! open is answered the same way.

use crate::auth::{Challenge, Credentials};
use reqwest::header::HeaderValue;
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `GET /v2/` of an endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ping {
    /// 200: no authorization needed (until a 401 says otherwise)
    Open,
    /// 401 with this challenge
    Challenge(Challenge),
}

/// Tokens are keyed by whose they are: a token fetched with one user's credentials is never
/// sent for another (nor for an anonymous pull).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    /// `http://127.0.0.1:5000`
    pub base: String,
    /// `repository:a/b:pull`
    pub scope: String,
    /// sha256 of the credentials (they are not kept in the key)
    pub who: [u8; 32],
}

impl TokenKey {
    pub fn new(base: &str, scope: &str, creds: &Credentials) -> TokenKey {
        let mut h = sha2::Sha256::new();
        for part in [&creds.username, &creds.password, &creds.identity_token] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        TokenKey {
            base: base.to_string(),
            scope: scope.to_string(),
            who: h.finalize().into(),
        }
    }
}

/// Entries above this are pruned (expired ones first, then all): a bound, not a policy.
const MAX_TOKENS: usize = 1024;

/// The lifetime of a token the server gave no `expires_in` for (the token spec's default).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// How long a token is used: its `expires_in` less a margin (a tenth, at most 10 s) so that a
/// request sent just before the end does not arrive just after it.
pub(crate) fn usable_for(expires_in: Duration) -> Duration {
    let margin = (expires_in / 10).min(Duration::from_secs(10));
    expires_in.saturating_sub(margin)
}

#[derive(Default)]
pub(crate) struct AuthCache {
    pings: Mutex<HashMap<String, Ping>>,
    tokens: Mutex<HashMap<TokenKey, (HeaderValue, Instant)>>,
}

impl AuthCache {
    pub fn ping(&self, base: &str) -> Option<Ping> {
        lock(&self.pings).get(base).cloned()
    }

    pub fn set_ping(&self, base: &str, p: Ping) {
        let mut m = lock(&self.pings);
        if m.len() >= MAX_TOKENS && !m.contains_key(base) {
            m.clear();
        }
        m.insert(base.to_string(), p);
    }

    pub fn forget_ping(&self, base: &str) {
        lock(&self.pings).remove(base);
    }

    /// A token for `key` that has not expired.
    pub fn token(&self, key: &TokenKey) -> Option<HeaderValue> {
        let mut m = lock(&self.tokens);
        match m.get(key) {
            Some((v, until)) if Instant::now() < *until => Some(v.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn set_token(&self, key: TokenKey, value: HeaderValue, lifetime: Duration) {
        let usable = usable_for(lifetime);
        if usable.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut m = lock(&self.tokens);
        if m.len() >= MAX_TOKENS {
            m.retain(|_, (_, until)| now < *until);
            if m.len() >= MAX_TOKENS {
                m.clear();
            }
        }
        m.insert(key, (value, now + usable));
    }

    /// Drops the token for `key` if it is still `value` (a concurrent session may have put a
    /// fresh one there already).
    pub fn drop_token(&self, key: &TokenKey, value: &HeaderValue) {
        let mut m = lock(&self.tokens);
        if m.get(key).is_some_and(|(v, _)| v == value) {
            m.remove(key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_are_per_scope_and_credentials_and_expire() {
        let c = AuthCache::default();
        let k = TokenKey::new("http://r", "repository:a:pull", &creds("u", "p"));
        let v = HeaderValue::from_static("Bearer t");
        c.set_token(k.clone(), v.clone(), Duration::from_secs(600));
        assert_eq!(c.token(&k), Some(v.clone()));
        // another user, anonymous, another scope, another registry: not this token
        for other in [
            TokenKey::new("http://r", "repository:a:pull", &creds("u", "q")),
            TokenKey::new("http://r", "repository:a:pull", &Credentials::default()),
            TokenKey::new("http://r", "repository:b:pull", &creds("u", "p")),
            TokenKey::new("http://s", "repository:a:pull", &creds("u", "p")),
        ] {
            assert_eq!(c.token(&other), None);
        }
        // a stale value does not drop a newer one
        c.drop_token(&k, &HeaderValue::from_static("Bearer old"));
        assert!(c.token(&k).is_some());
        c.drop_token(&k, &v);
        assert_eq!(c.token(&k), None);
        // expired
        c.set_token(k.clone(), v.clone(), Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.token(&k), None);
        // no lifetime: not kept
        c.set_token(k.clone(), v, Duration::ZERO);
        assert_eq!(c.token(&k), None);
    }

    #[test]
    fn margins() {
        assert_eq!(
            usable_for(Duration::from_secs(600)),
            Duration::from_secs(590)
        );
        assert_eq!(usable_for(Duration::from_secs(60)), Duration::from_secs(54));
        assert_eq!(
            usable_for(Duration::from_secs(1)),
            Duration::from_millis(900)
        );
    }
}
