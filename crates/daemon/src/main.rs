//! berthd: the berth daemon.

mod socket;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod userns;

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "berth container engine daemon")]
struct Args {
    /// Root directory of persistent state
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root directory for execution state (bundles, shim sockets)
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Daemon socket to listen on (unix:///path)
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Path of the pid file (default: <exec-root>/berthd.pid)
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Log level: debug, info, warn, error, fatal
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// The berth-shim binary (default: next to berthd)
    #[arg(long)]
    shim: Option<PathBuf>,
    /// Name of the default bridge (created if missing)
    #[arg(short = 'b', long, default_value = "berth0")]
    bridge: String,
    /// The default bridge's address and prefix, e.g. 172.30.0.1/16
    #[arg(long)]
    bip: Option<String>,
    /// Containers on the default bridge get addresses from this subnet of --bip's
    #[arg(long)]
    fixed_cidr: Option<String>,
    /// MTU of the default bridge and its containers' interfaces
    #[arg(long, default_value_t = 1500)]
    mtu: u32,
    /// DNS server for containers (and upstream of the embedded DNS); repeatable
    #[arg(long)]
    dns: Vec<String>,
    /// User/Group setting for user namespaces: `default` (the user berthremap),
    /// `user[:group]` or `uid[:gid]`, with ranges in /etc/subuid and /etc/subgid
    #[arg(long)]
    userns_remap: Option<String>,
    /// Group for the unix socket (root:GROUP 0660; root:root if the default group is absent)
    #[arg(short = 'G', long, default_value = socket::DEFAULT_GROUP)]
    group: String,
    /// Cgroup namespace mode of containers that do not ask for one: `host` or `private`
    /// (default: `host` on cgroup v1 and hybrid hosts, `private` on cgroup v2 hosts)
    #[arg(long)]
    default_cgroupns_mode: Option<String>,
    /// Set no-new-privileges by default for new containers (docker's daemon option)
    #[arg(long)]
    no_new_privileges: bool,
    /// A registry (host:port or CIDR) spoken to over plain HTTP; repeatable (loopback always is)
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// A mirror of docker.io tried first for docker.io images (http[s]://host[:port]); repeatable
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// Layers a pull fetches at once
    #[arg(long, default_value_t = 3)]
    max_concurrent_downloads: usize,
    /// Layers a push sends at once
    #[arg(long, default_value_t = 5)]
    max_concurrent_uploads: usize,
    /// Per-registry certificates: <dir>/<host:port>/{ca.crt,client.cert,client.key}
    #[arg(long, default_value = "/etc/berth/certs.d")]
    registry_certs_dir: PathBuf,
    /// Seconds without a byte from a registry before the request fails
    #[arg(long, default_value_t = 60)]
    registry_timeout: u64,
}

fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("unsupported host {host:?}: only unix:///path is supported"),
    }
}

/// Refuses to start if the pid file names a live berthd; otherwise writes ours.
fn write_pidfile(path: &Path) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if pid != std::process::id() as i32 && comm.trim() == "berthd" {
                bail!(
                    "pid file found, ensure berthd is not running or delete {}",
                    path.display()
                );
            }
        }
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    // Whatever descriptor we inherited (a shell's, an init script's) stays ours and is never
    // passed on to a shim, a helper or a container.
    // SAFETY: no other thread exists yet; plain syscall.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    // glibc keeps freed memory in per-thread arenas; two arenas and mmap for big buffers
    // (log batches, archive chunks) let the daemon give memory back after heavy requests.
    // SAFETY: mallopt only tunes the allocator; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * 1024);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(daemon())
}

async fn daemon() -> Result<()> {
    let args = Args::parse();
    for r in &args.insecure_registries {
        berth_registry::validate_insecure(r).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for m in &args.registry_mirrors {
        if !(m.starts_with("http://") || m.starts_with("https://")) {
            bail!("invalid mirror: unsupported scheme in {m:?}: must use either 'https://' or 'http://'");
        }
    }
    if args.max_concurrent_downloads == 0 || args.max_concurrent_uploads == 0 {
        bail!("--max-concurrent-downloads and --max-concurrent-uploads must be at least 1");
    }
    let level = match args.log_level.as_str() {
        "fatal" => "error",
        l => l,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,berthd={level},berth_engine={level},berth_api={level},berth_snapshot={level},berth_image={level},berth_registry={level}"
        )))
        .with_writer(std::io::stderr)
        .init();
    if !nix::unistd::geteuid().is_root() {
        bail!("berthd needs to be started with root privileges");
    }
    socket::raise_nofile();
    let socket_gid = socket::group_id(&args.group)?;
    let shim = match args.shim {
        Some(s) => s,
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("berth-shim"))
            .context("locating berth-shim")?,
    };
    if !shim.exists() {
        bail!("berth-shim not found at {}", shim.display());
    }
    if let Some(m) = args
        .default_cgroupns_mode
        .as_deref()
        .filter(|m| !matches!(*m, "host" | "private"))
    {
        bail!("default cgroup namespace mode ({m}) is invalid: use \"host\" or \"private\"");
    }
    std::fs::create_dir_all(&args.exec_root)?;
    std::fs::create_dir_all(&args.data_root)?;
    let ids = match &args.userns_remap {
        Some(spec) => Some(userns::resolve(spec)?),
        None => None,
    };
    // docker's layout: a remapped daemon keeps all its state in `<data-root>/<uid>.<gid>`,
    // whose owners are shifted; the data root must let the remapped root pass through
    let data_root = match &ids {
        Some(ids) => {
            let (uid, gid) = ids.root();
            let mode = std::fs::metadata(&args.data_root)?.permissions().mode() & 0o7777;
            std::fs::set_permissions(
                &args.data_root,
                std::fs::Permissions::from_mode(mode | 0o001),
            )?;
            let sub = args.data_root.join(format!("{uid}.{gid}"));
            if !sub.exists() {
                std::fs::create_dir(&sub)?;
                std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o710))?;
            }
            tracing::info!(uid, gid, root = %sub.display(), "user namespaces: containers' root is remapped");
            sub
        }
        None => args.data_root.clone(),
    };
    let pidfile = args
        .pidfile
        .unwrap_or_else(|| args.exec_root.join("berthd.pid"));
    write_pidfile(&pidfile)?;

    let hosts = if args.host.is_empty() {
        vec![format!(
            "unix://{}",
            args.exec_root.join("berth.sock").display()
        )]
    } else {
        args.host.clone()
    };
    // the sockets first: a path we must refuse stops the daemon before it touches any state
    let mut listeners = Vec::new();
    for h in &hosts {
        let path = socket_path(h)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let l = socket::bind(&path, socket_gid)?;
        listeners.push((path, l));
    }
    let engine = berth_engine::Engine::open(berth_engine::Config {
        data_root,
        exec_root: args.exec_root.clone(),
        shim_path: shim,
        net: berth_engine::NetConfig {
            bridge: args.bridge.clone(),
            bip: args.bip.clone(),
            fixed_cidr: args.fixed_cidr.clone(),
            mtu: args.mtu,
            dns: args.dns.clone(),
        },
        userns: ids,
        no_new_privileges: args.no_new_privileges,
        default_cgroupns_mode: args.default_cgroupns_mode.clone(),
        registry: berth_registry::Config {
            insecure: args.insecure_registries.clone(),
            mirrors: args.registry_mirrors.clone(),
            certs_dir: args.registry_certs_dir.clone(),
            connect_timeout: std::time::Duration::from_secs(10),
            read_timeout: std::time::Duration::from_secs(args.registry_timeout.max(1)),
        },
        max_concurrent_downloads: args.max_concurrent_downloads,
        max_concurrent_uploads: args.max_concurrent_uploads,
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening state: {e}"))?;

    let mut sockets = Vec::new();
    for (path, listener) in listeners {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        tracing::info!("API listening on {}", path.display());
        tokio::spawn(berth_api::serve(engine.clone(), listener));
        sockets.push(path);
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    engine.shutdown();
    tracing::info!("shutting down; running containers keep running");
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
