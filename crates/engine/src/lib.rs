//! berth-engine: containers, their state and life, images as the engine sees them.
//!
//! One file per verb (`container_create.rs`, `container_start.rs`, …). The engine never clones
//! into namespaces itself: it spawns one `berth-shim` per running container and talks to it over
//! the shim protocol (`shim_client.rs`, docs/ARCHITECTURE.md).

mod container;
mod container_archive;
mod container_attach;
mod container_create;
mod container_fs;
mod container_inspect;
mod container_ipc;
mod container_kill;
mod container_list;
mod container_logs;
mod container_mounts;
mod container_network;
mod container_pause;
mod container_pid;
mod container_prune;
mod container_remove;
mod container_rename;
mod container_reopen_log;
mod container_start;
mod container_stats;
mod container_top;
mod container_unlink;
mod container_update;
mod container_validate;
mod container_wait;
mod events;
mod exec;
mod fsutil;
mod gwbridge;
mod health;
mod image_auth;
mod image_build;
mod image_ops;
mod image_pull;
mod image_push;
mod image_registry;
mod image_remove;
mod image_save;
mod image_search;
mod layers;
mod names;
mod network;
mod network_ops;
mod overlay;
mod restore;
pub mod seccomp;
pub mod settings;
mod shim_client;
mod spec;
mod timefmt;
mod userns;

pub use container::{ClientIo, Container, Health, HealthLog, PodLink, State, Status};
pub use container_attach::{AttachOptions, AttachTicket};
pub use container_list::ListOptions;
pub use container_logs::LogsOptions;
pub use container_mounts::MountPoint;
pub use container_wait::WaitCondition;
pub use events::{Event, EventBus};
pub use exec::ExecConfig;
pub use image_build::{MountedImage, EMPTY_LAYER_DIFF_ID};
pub use image_pull::{BytesReader, PullRequest};
pub use image_push::PushRequest;
pub use image_registry::Progress;
pub use network::{NetConfig, NetworkRecord};
pub use network_ops::NetworkCreate;
pub use overlay::OverlayConfig;
pub use timefmt::{format_rfc3339_nanos, human_duration};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Errors of the engine; `api` maps each kind to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 400
    #[error("{0}")]
    InvalidParameter(String),
    /// 403
    #[error("{0}")]
    Forbidden(String),
    /// 401 (a registry refused the credentials)
    #[error("{0}")]
    Unauthorized(String),
    /// 304
    #[error("not modified")]
    NotModified,
    /// 500
    #[error("{0}")]
    Internal(String),
}
pub type Result<T> = std::result::Result<T, Error>;

impl From<seccomp::ProfileError> for Error {
    fn from(e: seccomp::ProfileError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.to_string())
    }
}
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}
impl From<berth_image::Error> for Error {
    fn from(e: berth_image::Error) -> Self {
        use berth_image::Error as E;
        match e {
            E::NotFound(_) => Error::NotFound(e.to_string()),
            E::InvalidReference(_) | E::InvalidDigest(_) => Error::InvalidParameter(e.to_string()),
            E::InvalidArchive(_) | E::DigestMismatch { .. } | E::Json(_) => {
                Error::InvalidParameter(e.to_string())
            }
            E::Io(_) => Error::Internal(e.to_string()),
        }
    }
}
impl From<berth_snapshot::Error> for Error {
    fn from(e: berth_snapshot::Error) -> Self {
        use berth_snapshot::Error as E;
        match e {
            E::InvalidTar(_) | E::DigestMismatch { .. } => Error::InvalidParameter(e.to_string()),
            E::NotFound(_) => Error::NotFound(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

/// Where the engine keeps things and what it runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// the `berth-shim` binary
    pub shim_path: PathBuf,
    /// the default bridge, NAT table and DNS upstreams
    pub net: NetConfig,
    /// `berthd --userns-remap`: containers get a user namespace with these maps (unless
    /// `--userns host`); `data_root` is then already the `<uid>.<gid>` subdir
    pub userns: Option<berth_util::idmap::IdMaps>,
    /// `--no-new-privileges`: containers get no_new_privs unless their SecurityOpt says
    /// `no-new-privileges=false`
    pub no_new_privileges: bool,
    /// `--default-cgroupns-mode`: `host` or `private` for containers that do not say (None:
    /// dockerd's default for the host's cgroup version)
    pub default_cgroupns_mode: Option<String>,
    /// registries: insecure hosts, mirrors, certificates, timeouts
    pub registry: berth_registry::Config,
    /// `daemon.json` settings a reload may change, and those `GET /info` reports
    pub settings: settings::Settings,
}

/// The engine: one per daemon.
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) images: berth_image::ImageStore,
    pub(crate) snaps: berth_snapshot::Snapshotter,
    pub(crate) volumes: berth_volume::VolumeStore,
    pub(crate) containers: RwLock<HashMap<String, Arc<Container>>>,
    /// name (without `/`) → id
    pub(crate) names: RwLock<HashMap<String, String>>,
    pub events: EventBus,
    pub(crate) execs: std::sync::Mutex<HashMap<String, Arc<std::sync::Mutex<exec::Exec>>>>,
    pub(crate) shutting_down: std::sync::atomic::AtomicBool,
    pub(crate) net: network::NetState,
    pub(crate) registry: std::sync::RwLock<Arc<berth_registry::Client>>,
    pub(crate) settings: std::sync::RwLock<settings::Settings>,
    /// serialises writes of the distribution records (`image_registry.rs`)
    pub(crate) dist_lock: std::sync::Mutex<()>,
    /// cluster mode: overlay networks (set once by `overlay_start`)
    pub(crate) overlay: std::sync::OnceLock<Arc<overlay::Overlay>>,
}

impl Engine {
    /// Opens (creating if needed) the state under the configured roots and reads every
    /// container back; live shims are reconnected, dead ones give their recorded exit.
    pub async fn open(cfg: Config) -> Result<Arc<Engine>> {
        seccomp::set_daemon_no_new_privileges(cfg.no_new_privileges);
        fsutil::secure_roots(&cfg.data_root, &cfg.exec_root)?;
        let images = berth_image::ImageStore::open(&cfg.data_root.join("image"))?;
        let snaps = berth_snapshot::Snapshotter::open(&cfg.data_root.join("overlay2"))?
            .with_id_maps(cfg.userns.clone());
        let volumes = berth_volume::VolumeStore::open(&cfg.data_root.join("volumes"))
            .and_then(|v| v.with_owner(cfg.userns.as_ref().map(|m| m.root())))
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(ids) = &cfg.userns {
            userns::open_paths(&cfg.data_root, ids)?;
        }
        let net = network::NetState::open(&cfg.data_root.join("network"), cfg.net.clone())?;
        let registry = berth_registry::Client::new(cfg.registry.clone())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let settings_init = cfg.settings.clone();
        settings::set_default_ulimits(&settings_init.default_ulimits);
        let engine = Arc::new(Engine {
            cfg,
            images,
            snaps,
            volumes,
            containers: RwLock::new(HashMap::new()),
            names: RwLock::new(HashMap::new()),
            events: EventBus::default(),
            execs: std::sync::Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            net,
            registry: std::sync::RwLock::new(Arc::new(registry)),
            settings: std::sync::RwLock::new(settings_init),
            dist_lock: std::sync::Mutex::new(()),
            overlay: std::sync::OnceLock::new(),
        });
        restore::restore(&engine).await?;
        if let Err(e) = engine.net.sync_nat() {
            tracing::warn!("nftables: {e}");
        }
        Ok(engine)
    }

    /// Stops restart policies from acting (the daemon is going away; containers keep running).
    pub fn shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.unmount_build_scratch();
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The id maps a container runs with: the daemon's, unless it said `--userns host`.
    pub(crate) fn userns_of(
        &self,
        hc: &berth_types::HostConfig,
    ) -> Option<&berth_util::idmap::IdMaps> {
        self.cfg.userns.as_ref().filter(|_| !userns::opted_out(hc))
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    /// Resolves a full ID, a name (with or without `/`) or a unique ID prefix.
    pub fn get_container(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let not_found = || Error::NotFound(format!("No such container: {name_or_id}"));
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let map = self.containers.read().expect("containers lock");
        if let Some(c) = map.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.trim_start_matches('/');
        if let Some(id) = self.names.read().expect("names lock").get(name) {
            if let Some(c) = map.get(id) {
                return Ok(c.clone());
            }
        }
        let mut found = None;
        for (id, c) in map.iter() {
            if id.starts_with(name_or_id) {
                if found.is_some() {
                    return Err(Error::NotFound(format!(
                        "Multiple IDs found with provided prefix: {name_or_id}"
                    )));
                }
                found = Some(c.clone());
            }
        }
        found.ok_or_else(not_found)
    }

    /// Every container (for `berth-cri`, which keeps its containers as the engine's).
    pub fn containers(&self) -> Vec<Arc<Container>> {
        self.all_containers()
    }

    pub(crate) fn all_containers(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    /// Emits a container event with docker's attributes (image, name, labels) plus `extra`.
    pub(crate) fn emit(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.record();
        let mut attrs: std::collections::BTreeMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("image".into(), rec.config.image.clone());
        attrs.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.emit("container", action, &c.id, attrs);
    }

    pub fn images(&self) -> &berth_image::ImageStore {
        &self.images
    }

    /// Counts for `/info`: (total, running, paused, stopped).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let all = self.all_containers();
        let mut r = (all.len(), 0, 0, 0);
        for c in all {
            match c.state().status {
                Status::Running => r.1 += 1,
                Status::Paused => r.2 += 1,
                _ => r.3 += 1,
            }
        }
        r
    }
}
