//! berth-registry: a client of the OCI distribution protocol (the registry HTTP API v2), and
//! of the v1 search endpoint. It knows registries, repositories, manifests and blobs — nothing
//! of images as the engine stores them, nor of containers.
//!
//! - [`Client`]: one per daemon; picks the endpoint (mirrors for `docker.io`, plain HTTP for
//!   loopback and `--insecure-registry`, HTTPS with the system roots plus
//!   `<certs_dir>/<host:port>/ca.crt` and client `*.cert`/`*.key`), logs in, searches.
//! - [`Session`]: one repository on one endpoint with its authorization (the
//!   `WWW-Authenticate` challenge: Basic, or a Bearer token for `repository:<name>:pull[,push]`
//!   from the realm), refreshed when the registry answers 401. The [`Client`] remembers each
//!   endpoint's challenge and the tokens (per scope and credentials, until `expires_in`), so
//!   a session on a registry spoken to before starts without a request.
//! - Blobs stream through [`BlobStream`], which checks size and digest as the bytes pass.

mod auth;
mod cache;
mod endpoint;
mod search;
mod session;

pub use auth::Credentials;
pub use endpoint::{is_insecure, validate_insecure, Endpoint};
pub use search::SearchResult;
pub use session::{BlobStream, Manifest, Session, UploadBody};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Media types of manifests.
pub mod media {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint could not be reached (connect, DNS, TLS, timeout): `Get "url": reason`.
    #[error("{method} \"{url}\": {reason}")]
    Transport {
        method: String,
        url: String,
        reason: String,
    },
    /// The registry answered with an error status; `message` as docker prints registry
    /// errors (`manifest unknown: manifest unknown`).
    #[error("{message}")]
    Status { status: u16, message: String },
    /// 401 without usable credentials
    #[error("{0}")]
    Unauthorized(String),
    /// what came did not match its descriptor
    #[error("{0}")]
    Verify(String),
    /// a malformed answer, reference or configuration
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::Unauthorized(_) => Some(401),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The daemon's registry settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` names or CIDRs spoken to over plain HTTP (loopback always is)
    pub insecure: Vec<String>,
    /// tried first, in order, for `docker.io` references (`https://mirror.example:5000`)
    pub mirrors: Vec<String>,
    /// mirrors of any registry domain, tried first, in order, for references to that domain
    /// (`("registry.k8s.io", "http://127.0.0.1:5000")`), like containerd's `hosts.toml`;
    /// the repository path is kept (`registry.k8s.io/pause` → `<mirror>/v2/pause/…`)
    pub host_mirrors: Vec<(String, String)>,
    /// the server that answers for a registry domain instead of the domain itself, never
    /// falling back to it (containerd's `server` in `hosts.toml`): `("gcr.io",
    /// "http://127.0.0.1:5000")`
    pub host_servers: Vec<(String, String)>,
    /// `<certs_dir>/<host:port>/{ca.crt,*.cert,*.key}`
    pub certs_dir: PathBuf,
    pub connect_timeout: Duration,
    /// no byte for this long from a registry fails the request (a stalled registry)
    pub read_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            host_mirrors: Vec::new(),
            host_servers: Vec::new(),
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// One per daemon: HTTP clients (one plain, one per host with its own certificates) and the
/// settings.
pub struct Client {
    cfg: Config,
    default: reqwest::Client,
    per_host: Mutex<HashMap<String, reqwest::Client>>,
    auth: std::sync::Arc<cache::AuthCache>,
}

pub const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(cfg: Config) -> Result<Client> {
        let default = Self::builder(&cfg)
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?;
        Ok(Client {
            cfg,
            default,
            per_host: Mutex::new(HashMap::new()),
            auth: Default::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn builder(cfg: &Config) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(Duration::from_secs(30))
    }

    /// The HTTP client for `host` (`host:port`): with its `certs.d` directory's CA and client
    /// certificate when it has one.
    pub(crate) fn http_for(&self, host: &str) -> Result<reqwest::Client> {
        let dir = self.cfg.certs_dir.join(host);
        if !dir.is_dir() {
            return Ok(self.default.clone());
        }
        let mut cache = self.per_host.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(host) {
            return Ok(c.clone());
        }
        let mut b = Self::builder(&self.cfg);
        let mut certs: Vec<PathBuf> = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in &entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".crt") {
                let pem = std::fs::read(p)?;
                for c in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?
                {
                    b = b.add_root_certificate(c);
                }
            } else if name.ends_with(".cert") {
                certs.push(p.clone());
            }
        }
        for cert in certs {
            let key = cert.with_extension("key");
            if !key.is_file() {
                return Err(Error::Invalid(format!(
                    "missing key {} for client certificate {}. CA certificates must use the extension .crt",
                    key.display(),
                    cert.display()
                )));
            }
            let mut pem = std::fs::read(&cert)?;
            pem.push(b'\n');
            pem.extend(std::fs::read(&key)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::Invalid(format!("{}: {e}", cert.display())))?;
            b = b.identity(id);
        }
        let c = b
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client for {host}: {e}")))?;
        cache.insert(host.to_string(), c.clone());
        Ok(c)
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}
