//! berth-cri: the Kubernetes Container Runtime Interface (CRI `runtime.v1`) over gRPC on a
//! unix socket, as a translation layer beside `berth-api` over the same `berth-engine`: pods
//! and their containers are the engine's containers, images the engine's images, so
//! `crictl images` and `berth images` show one store.
//!
//! One file per CRI verb (`pod_run.rs`, `ctr_create.rs`, `image_pull.rs`, …); `service.rs`
//! only routes the gRPC methods to them. A pod sandbox is a `berth-pause` process holding
//! the pod's network, IPC and UTS namespaces (`pause.rs`), networked through CNI (`cni.rs`).

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("runtime.v1");
}

mod authority;
mod cni;
mod ctr_create;
mod ctr_events;
mod ctr_exec_sync;
mod ctr_list;
mod ctr_meta;
mod ctr_remove;
mod ctr_reopen_log;
mod ctr_start;
mod ctr_stats;
mod ctr_status;
mod ctr_stop;
mod ctr_update;
mod image_fsinfo;
mod image_list;
mod image_pull;
mod image_remove;
mod image_status;
mod pause;
mod pod_list;
mod pod_remove;
mod pod_run;
mod pod_stats;
mod pod_status;
mod pod_stop;
mod pod_store;
mod runtime_info;
mod service;
mod shm;
mod spdy;
mod stream_attach;
mod stream_exec;
mod stream_portforward;
mod stream_server;
mod stream_wire;
mod stream_ws;

use berth_engine::Engine;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of the CRI layer; each becomes one gRPC status code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
}
pub type Result<T> = std::result::Result<T, Error>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.to_string())
    }
}
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use berth_engine::Error as E;
        let msg = e.to_string();
        match e {
            Error::NotFound(_) | Error::Engine(E::NotFound(_)) => tonic::Status::not_found(msg),
            Error::InvalidArgument(_) | Error::Engine(E::InvalidParameter(_)) => {
                tonic::Status::invalid_argument(msg)
            }
            Error::FailedPrecondition(_) | Error::Engine(E::Conflict(_)) => {
                tonic::Status::failed_precondition(msg)
            }
            Error::Engine(E::Unauthorized(_)) => tonic::Status::unauthenticated(msg),
            Error::Engine(E::Forbidden(_)) => tonic::Status::permission_denied(msg),
            Error::Unimplemented(_) => tonic::Status::unimplemented(msg),
            Error::DeadlineExceeded(_) => tonic::Status::deadline_exceeded(msg),
            _ => tonic::Status::internal(msg),
        }
    }
}

/// Where the CRI listens and what it uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// the gRPC unix socket
    pub socket: PathBuf,
    /// CNI network configurations (the first `.conflist`/`.conf`/`.json` by name is used)
    pub cni_conf_dir: PathBuf,
    /// where CNI plugin binaries are looked for, in order
    pub cni_bin_dirs: Vec<PathBuf>,
    /// the `berth-pause` binary
    pub pause_path: PathBuf,
    /// where the streaming server (`Exec`, `Attach`, `PortForward` URLs) listens; port 0
    /// picks a free one
    pub stream_addr: std::net::SocketAddr,
}

/// The CRI runtime: state shared by both gRPC services.
pub struct Cri {
    pub(crate) engine: Arc<Engine>,
    pub(crate) cfg: Config,
    pub(crate) pods: pod_store::PodStore,
    /// one pull at a time per reference: a second `PullImage` of the same name waits for the
    /// first and then finds the image up to date (kubelet and critest pull in parallel)
    pub(crate) pulls:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// pulls (shared) against image removals (exclusive): the engine's pull of an image that
    /// is here re-tags it, which must not meet its removal halfway
    pub(crate) image_ops: tokio::sync::RwLock<()>,
    /// the last `ImageFsInfo` count and when it was made (a walk of the layer store is not
    /// free; kubelet asks every few seconds)
    pub(crate) fs_usage: std::sync::Mutex<Option<(std::time::Instant, u64, u64)>>,
    /// the streaming server's address and the URLs handed out
    pub(crate) streaming: stream_server::Tokens,
}

impl Cri {
    /// Opens the pod records under `<data-root>/cri` (its run files under `<exec-root>/cri`).
    pub fn open(engine: Arc<Engine>, cfg: Config) -> Result<Arc<Cri>> {
        let ec = engine.config();
        let pods = pod_store::PodStore::open(
            &ec.data_root.join("cri/pods"),
            &ec.exec_root.join("cri/pods"),
        )?;
        // after a daemon restart: a pod whose pause process died meanwhile is no longer ready
        for mut pod in pods.list() {
            if pod.ready && !pause::is_pause(pod.pid) {
                tracing::warn!(id = %pod.id, pid = pod.pid, "pod sandbox process is gone");
                pod.ready = false;
                pod.pid = 0;
                pods.save(&pod)?;
            }
        }
        Ok(Arc::new(Cri {
            engine,
            cfg,
            pods,
            pulls: Default::default(),
            image_ops: Default::default(),
            fs_usage: Default::default(),
            streaming: Default::default(),
        }))
    }

    /// Binds the gRPC unix socket and the streaming server's port. Done before the daemon
    /// answers anything, so a flood of API connections cannot take the descriptors first.
    pub async fn bind(&self) -> Result<Bound> {
        let path = &self.cfg.socket;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let grpc = tokio::net::UnixListener::bind(path)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        }
        tracing::info!("CRI listening on {}", path.display());
        let streams = self.bind_streams().await?;
        Ok(Bound { grpc, streams })
    }

    /// Serves both services and the streaming server on what [`Cri::bind`] bound, until the
    /// task is dropped.
    pub async fn serve(self: Arc<Self>, bound: Bound) -> Result<()> {
        let Bound {
            grpc: listener,
            streams,
        } = bound;
        let streams = tokio::spawn(self.clone().serve_streams(streams));
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Conn>>(16);
        tokio::spawn(accept_loop(listener, tx));
        let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
        let res = tonic::transport::Server::builder()
            .add_service(pb::runtime_service_server::RuntimeServiceServer::new(
                service::Runtime(self.clone()),
            ))
            .add_service(pb::image_service_server::ImageServiceServer::new(
                service::Images(self.clone()),
            ))
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| Error::Internal(format!("CRI server: {e}")));
        streams.abort();
        res
    }
}

/// The CRI's listening sockets, bound before anything is served.
pub struct Bound {
    grpc: tokio::net::UnixListener,
    streams: tokio::net::TcpListener,
}

/// A client connection as the gRPC server sees it: through [`authority::Rewriter`].
pub(crate) struct Conn(tokio::io::DuplexStream);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepts clients; each is joined to the server through a rewriter of its requests.
async fn accept_loop(
    listener: tokio::net::UnixListener,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Conn>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let client = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                tracing::warn!("CRI accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (server_side, ours) = tokio::io::duplex(256 * 1024);
        if tx.send(Ok(Conn(server_side))).await.is_err() {
            return;
        }
        tokio::spawn(async move {
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = tokio::io::split(ours);
            let up = async {
                let mut rw = authority::Rewriter::default();
                let mut buf = vec![0u8; 64 * 1024];
                let mut out = Vec::with_capacity(64 * 1024);
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    out.clear();
                    rw.feed(&buf[..n], &mut out);
                    if sw.write_all(&out).await.is_err() {
                        break;
                    }
                }
                let _ = sw.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
                let _ = cw.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Unix nanoseconds now.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A new 64-hex-digit ID.
pub(crate) fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
