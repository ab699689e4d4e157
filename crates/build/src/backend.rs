//! What the executor needs of the engine, as a trait (so that the executor's logic is tested
//! without root, with a backend of its own in the tests), and [`EngineBackend`]: the trait
//! over `Arc<berth_engine::Engine>`, driving its create / attach / start / wait / remove and
//! its build additions (`image_build.rs`). The executor is synchronous (it runs in a blocking
//! task); the engine backend enters the runtime for the engine's async calls.

use crate::Error;
use berth_engine::{AttachOptions, Engine, WaitCondition};
use berth_image::ImageConfig;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// An image as the builder sees it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    pub config: ImageConfig,
}

/// A RUN container.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// the image it runs on (an ID)
    pub image: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// the HostConfig fields the build options set (NetworkMode, ExtraHosts, ShmSize,
    /// Memory, MemorySwap, CpuShares, CpuPeriod, CpuQuota, CpusetCpus, CpusetMems)
    pub host_config: serde_json::Map<String, Value>,
}

/// A rootfs mounted for reading.
pub trait Mounted: Send {
    fn path(&self) -> &Path;
}

/// What the executor drives.
pub trait Backend: Send + Sync {
    /// A local image by reference or ID.
    fn lookup(&self, name: &str) -> Result<Option<ImageInfo>, Error>;
    /// Pulls `name`, passing the pull's progress messages to `progress`.
    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
        credentials: Option<&Value>,
        progress: &mut dyn FnMut(&Value),
    ) -> Result<ImageInfo, Error>;
    /// Creates a container, calls `started` with its ID, runs it to its end passing its
    /// output (stdout and stderr) to `output`; returns the ID and the exit code. The
    /// container is left for [`Backend::commit`] / [`Backend::remove`]; on an error after
    /// the create, the ID is in the error's place (`Err((Some(id), e))`).
    fn run(
        &self,
        spec: &RunSpec,
        started: &mut dyn FnMut(&str),
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<(String, i64), (Option<String>, Error)>;
    /// The container's changes as a layer (on its image's layers); the diff ID.
    fn commit(&self, container: &str) -> Result<String, Error>;
    /// Removes a container (killing it if it runs).
    fn remove(&self, container: &str) -> Result<(), Error>;
    /// A layer from the tar `produce` writes, on `parent`'s layers; the diff ID.
    fn add_layer(
        &self,
        parent: Option<&str>,
        produce: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<String, Error>;
    /// Stores an image config; returns its ID.
    fn put_image(
        &self,
        config: &[u8],
        parent: Option<&str>,
        durable: bool,
    ) -> Result<String, Error>;
    /// Makes an image written with `durable: false` durable (the final image).
    fn persist(&self, _image: &str) -> Result<(), Error> {
        Ok(())
    }
    /// The parent recorded for a built image.
    fn parent(&self, image: &str) -> Option<String>;
    /// Mounts an image's rootfs (`None`: scratch, empty) for reading.
    fn mount(&self, image: Option<&str>) -> Result<Box<dyn Mounted>, Error>;
    /// Points `reference` at `id`; returns the familiar form (`Successfully tagged …`).
    fn tag(&self, id: &str, reference: &str) -> Result<String, Error>;
    /// The client went away: stop.
    fn cancelled(&self) -> bool;
}

/// The engine behind the trait.
pub struct EngineBackend {
    pub engine: Arc<Engine>,
    pub rt: tokio::runtime::Handle,
    /// becomes true when the client disconnects
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

struct EngineMount(berth_engine::MountedImage);

impl Mounted for EngineMount {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What the RUN task tells the build thread.
enum RunEvent {
    Started(String),
    Output(Vec<u8>),
    Done(Result<(String, i64), (Option<String>, Error)>),
}

impl EngineBackend {
    fn info(img: berth_image::Image) -> ImageInfo {
        ImageInfo {
            id: img.id.as_str().to_string(),
            config: img.config,
        }
    }
}

/// The RUN container's life, on the runtime; events go to the build thread (which may block
/// on its output: the callbacks are never called inside the runtime).
async fn run_task(
    e: Arc<Engine>,
    mut cancel: tokio::sync::watch::Receiver<bool>,
    spec: RunSpec,
    tx: &tokio::sync::mpsc::Sender<RunEvent>,
) -> Result<(String, i64), (Option<String>, Error)> {
    let mut hc = spec.host_config.clone();
    hc.entry("NetworkMode".to_string())
        .or_insert_with(|| json!("default"));
    let body = json!({
        "Image": spec.image,
        "Cmd": spec.cmd,
        "Entrypoint": [""],
        "Env": spec.env,
        "User": spec.user,
        "WorkingDir": spec.workdir,
        "AttachStdout": true,
        "AttachStderr": true,
        "HostConfig": hc,
    });
    let req: berth_types::CreateRequest =
        serde_json::from_value(body).map_err(|x| (None, Error::Internal(x.to_string())))?;
    let (id, _) = e.create(None, req).await.map_err(|x| (None, x.into()))?;
    let _ = tx.send(RunEvent::Started(id.clone())).await;
    let fail = |x: berth_engine::Error| (Some(id.clone()), Error::from(x));
    let ticket = e
        .attach_prepare(
            &id,
            AttachOptions {
                stdin: false,
                stdout: true,
                stderr: true,
                logs: false,
                stream: true,
                detach_keys: None,
            },
        )
        .map_err(fail)?;
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    e.attach(ticket, Box::new(theirs)).await.map_err(fail)?;
    let wait = e.wait(&id, WaitCondition::NextExit).map_err(fail)?;
    e.start(&id).await.map_err(fail)?;
    let mut demux = berth_types::stdcopy::Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut killed = false;
    loop {
        tokio::select! {
            n = ours.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut chunks = Vec::new();
                    demux.feed(&buf[..n], &mut |_, b| chunks.push(b.to_vec()));
                    for c in chunks {
                        let _ = tx.send(RunEvent::Output(c)).await;
                    }
                }
            },
            _ = async { let _ = cancel.wait_for(|c| *c).await; }, if !killed => {
                killed = true;
                let _ = e.kill(&id, Some("KILL")).await;
            }
        }
    }
    let code = wait.await;
    if killed || *cancel.borrow() {
        return Err((Some(id), Error::Cancelled));
    }
    Ok((id, code as i64))
}

impl Backend for EngineBackend {
    fn lookup(&self, name: &str) -> Result<Option<ImageInfo>, Error> {
        match self.engine.images().get(name) {
            Ok(img) => Ok(Some(Self::info(img))),
            Err(berth_image::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(Error::Internal(e.to_string())),
        }
    }

    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
        credentials: Option<&Value>,
        progress: &mut dyn FnMut(&Value),
    ) -> Result<ImageInfo, Error> {
        let r = berth_image::Reference::parse(name)
            .map_err(|_| Error::User("invalid reference format".into()))?;
        let creds = match credentials {
            Some(v) => berth_registry::Credentials::from_json(v.to_string().as_bytes())
                .map_err(|e| Error::User(e.to_string()))?,
            None => Default::default(),
        };
        let req = berth_engine::PullRequest {
            image: r.name(),
            tag: r
                .digest
                .clone()
                .or_else(|| r.tag.clone())
                .unwrap_or_else(|| "latest".into()),
            platform: platform.map(String::from),
            creds,
        };
        let engine = self.engine.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
        let task = self.rt.spawn(async move {
            let p = berth_engine::Progress::new(tx);
            engine.image_pull(req, &p).await
        });
        // the progress is passed on from this thread (the output may block)
        while let Some(v) = rx.blocking_recv() {
            progress(&v);
        }
        self.rt
            .block_on(task)
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.lookup(&r.full())?
            .ok_or_else(|| Error::Internal(format!("{name}: not found after the pull")))
    }

    fn run(
        &self,
        spec: &RunSpec,
        started: &mut dyn FnMut(&str),
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<(String, i64), (Option<String>, Error)> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RunEvent>(64);
        let (e, cancel, spec) = (self.engine.clone(), self.cancel.clone(), spec.clone());
        self.rt.spawn(async move {
            let r = run_task(e, cancel, spec, &tx).await;
            let _ = tx.send(RunEvent::Done(r)).await;
        });
        while let Some(ev) = rx.blocking_recv() {
            match ev {
                RunEvent::Started(id) => started(&id),
                RunEvent::Output(b) => output(&b),
                RunEvent::Done(r) => return r,
            }
        }
        Err((None, Error::Internal("the RUN task ended early".into())))
    }

    fn commit(&self, container: &str) -> Result<String, Error> {
        Ok(self.engine.build_commit_layer(container)?)
    }

    fn remove(&self, container: &str) -> Result<(), Error> {
        let e = self.engine.clone();
        let id = container.to_string();
        Ok(self.rt.block_on(async move { e.remove(&id, true).await })?)
    }

    fn add_layer(
        &self,
        parent: Option<&str>,
        produce: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<String, Error> {
        Ok(self.engine.build_add_layer(parent, produce)?)
    }

    fn put_image(
        &self,
        config: &[u8],
        parent: Option<&str>,
        durable: bool,
    ) -> Result<String, Error> {
        Ok(self.engine.build_put_image(config, parent, durable)?)
    }

    fn persist(&self, image: &str) -> Result<(), Error> {
        Ok(self.engine.build_sync_image(image)?)
    }

    fn parent(&self, image: &str) -> Option<String> {
        self.engine.image_parent(image)
    }

    fn mount(&self, image: Option<&str>) -> Result<Box<dyn Mounted>, Error> {
        Ok(Box::new(EngineMount(self.engine.build_mount(image)?)))
    }

    fn tag(&self, id: &str, reference: &str) -> Result<String, Error> {
        let r = berth_image::Reference::parse(reference)
            .map_err(|_| Error::User("invalid reference format".into()))?;
        self.engine.image_tag(id, &r.full(), None)?;
        Ok(r.familiar())
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }
}
