//! A container: its persisted record (`containers/<id>/config.v2.json`) and live state.

use crate::fsutil::write_atomic;
use crate::timefmt::from_unix_nanos;
use berth_types::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Runtime state, persisted with the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    /// unix nanoseconds
    pub started_at: Option<u128>,
    pub finished_at: Option<u128>,
    /// ever started (docker shows "Created" until then)
    #[serde(default)]
    pub has_started: bool,
    #[serde(default)]
    pub oom_killed: bool,
    /// stopped by `stop`/`kill`: restart policies other than `always` leave it stopped
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub health: Option<Health>,
}

/// `State.Health` as docker shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HealthLog {
    pub start: u128,
    pub end: u128,
    pub exit_code: i32,
    pub output: String,
}

impl State {
    pub fn started(&self) -> Option<SystemTime> {
        self.started_at.map(from_unix_nanos)
    }
    pub fn finished(&self) -> Option<SystemTime> {
        self.finished_at.map(from_unix_nanos)
    }
}

/// What is written to `config.v2.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: u128,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// chain ID of the image's top layer
    pub layer_parent: Option<String>,
    pub state: State,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub mounts: Vec<crate::MountPoint>,
    /// endpoints by network name (addresses set while running)
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, crate::network::Endpoint>,
    /// host ports bound while running
    #[serde(default)]
    pub ports: Vec<crate::network::PortMap>,
    /// a container of a CRI pod sandbox: the namespaces it joins and its log
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodLink>,
}

/// What a container in a CRI pod sandbox shares with the sandbox (set by `berth-cri`, never
/// through the Engine API).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodLink {
    /// the sandbox's network namespace (a path); `None`: the host's (`hostNetwork`)
    pub net: Option<String>,
    /// the sandbox's IPC namespace; `None`: the host's (`hostIPC`)
    pub ipc: Option<String>,
    /// the sandbox's UTS namespace; `None`: the host's (`hostNetwork`)
    pub uts: Option<String>,
    /// the sandbox's PID namespace when the pod shares one (`None`: as `PidMode` says)
    #[serde(default)]
    pub pid: Option<String>,
    /// the pod's `/dev/shm` (a tmpfs every container of the pod shares), if it has one
    #[serde(default)]
    pub shm: Option<PathBuf>,
    /// the directory whose `hosts`, `hostname` and `resolv.conf` are bind-mounted
    pub files: PathBuf,
    /// the CRI log (`<RFC3339Nano> stdout|stderr F|P <line>`) instead of the json-file log
    pub log: Option<PathBuf>,
}

pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Progress that waiters watch: how many exits so far, and whether the container is gone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub exits: u64,
    pub exit_code: i32,
    pub removed: bool,
}

/// Anything a hijacked client stream can be.
pub trait ClientIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ClientIo for T {}

/// An attach reserved before the API answered 101; its stream arrives through `io` once the
/// connection is upgraded.
pub(crate) struct PendingAttach {
    pub opts: crate::AttachOptions,
    pub io: tokio::sync::oneshot::Receiver<Box<dyn ClientIo>>,
}

pub struct Container {
    pub id: String,
    pub(crate) rec: Mutex<Record>,
    pub(crate) progress: tokio::sync::watch::Sender<Progress>,
    pub(crate) pending: Mutex<Vec<PendingAttach>>,
    /// serialises start / stop / remove
    pub(crate) op: tokio::sync::Mutex<()>,
    /// current restart back-off (in memory only)
    pub(crate) backoff: Mutex<std::time::Duration>,
}

impl Container {
    pub(crate) fn new(rec: Record) -> Container {
        let (tx, _) = tokio::sync::watch::channel(Progress {
            exits: 0,
            exit_code: rec.state.exit_code,
            removed: false,
        });
        Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            progress: tx,
            pending: Mutex::new(Vec::new()),
            op: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(std::time::Duration::ZERO),
        }
    }

    pub fn record(&self) -> Record {
        self.rec.lock().expect("record lock").clone()
    }
    pub fn state(&self) -> State {
        self.rec.lock().expect("record lock").state.clone()
    }
    pub fn name(&self) -> String {
        self.rec.lock().expect("record lock").name.clone()
    }
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.rec.lock().expect("record lock"))
    }

    /// Writes the record atomically into `dir/config.v2.json`.
    pub(crate) fn save(&self, dir: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec(&self.record())?;
        write_atomic(&dir.join("config.v2.json"), &data)
    }

    pub(crate) fn notify_exit(&self, code: i32) {
        self.progress.send_modify(|p| {
            p.exits += 1;
            p.exit_code = code;
        });
    }
    pub(crate) fn notify_removed(&self) {
        self.progress.send_modify(|p| p.removed = true);
    }
}
