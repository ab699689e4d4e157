//! `POST /auth`: check credentials against a registry (docker login).

use crate::{Engine, Error, Result};
use berth_registry::Credentials;
use serde_json::{json, Value};

/// `https://index.docker.io/v1/`, `http://127.0.0.1:5000`, `127.0.0.1:5000/` → the domain.
pub(crate) fn server_domain(addr: &str) -> String {
    let a = addr.trim();
    let a = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    let host = a.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

impl Engine {
    /// Logs in: `{"Status":"Login Succeeded","IdentityToken":""}`, or 401 with docker's text.
    pub async fn registry_login(&self, body: &[u8]) -> Result<Value> {
        let creds =
            Credentials::from_json(body).map_err(|e| Error::InvalidParameter(e.to_string()))?;
        let domain = server_domain(&creds.serveraddress);
        let ep = self
            .registry()
            .endpoints(&domain)
            .into_iter()
            .rfind(|e| !e.mirror)
            .ok_or_else(|| Error::Internal("no registry endpoint".into()))?;
        match self.registry().login(&ep, &creds).await {
            Ok(()) => Ok(json!({"Status": "Login Succeeded", "IdentityToken": ""})),
            Err(e @ berth_registry::Error::Unauthorized(_)) => {
                Err(Error::Unauthorized(e.to_string()))
            }
            Err(e) => Err(Error::Internal(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_addresses() {
        use super::server_domain;
        assert_eq!(server_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_domain(""), "docker.io");
        assert_eq!(server_domain("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_domain("127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
