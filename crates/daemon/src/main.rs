//! berthd: the berth daemon.

mod cluster;
mod config;
mod log;
mod notify;
mod reload;
mod socket;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser};
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
    /// Daemon socket to listen on (unix:///path, or fd:// / fd://N for sockets passed by systemd)
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
    /// Enable IPv6 on the default bridge (its subnet: --fixed-cidr-v6)
    #[arg(long)]
    ipv6: bool,
    /// The default bridge's IPv6 subnet, e.g. fd00:b::/64 (with --ipv6)
    #[arg(long)]
    fixed_cidr_v6: Option<String>,
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
    /// Daemon configuration file (docker's daemon.json keys)
    #[arg(long, default_value = config::DEFAULT_FILE)]
    config_file: PathBuf,
    /// Check the configuration file and the flags, print `configuration OK` and exit
    #[arg(long)]
    validate: bool,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// DNS search domain for containers; repeatable
    #[arg(long)]
    dns_search: Vec<String>,
    /// DNS option for containers; repeatable
    #[arg(long = "dns-opt")]
    dns_opts: Vec<String>,
    /// A `key=value` label of the daemon; repeatable
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Report live restore as enabled (berth's containers always outlive the daemon)
    #[arg(long)]
    live_restore: bool,
    /// Default logging driver of containers
    #[arg(long, default_value = "json-file")]
    log_driver: String,
    /// A default `key=value` option of the logging driver; repeatable
    #[arg(long = "log-opt")]
    log_opts: Vec<String>,
    /// Path of the default seccomp profile
    #[arg(long)]
    seccomp_profile: Option<String>,
    /// Seconds containers get to stop when the daemon shuts down
    #[arg(long, default_value_t = 15)]
    shutdown_timeout: u64,
    /// Default size of containers' /dev/shm
    #[arg(long, default_value = "64M")]
    default_shm_size: String,
    /// Attempts of each layer download
    #[arg(long, default_value_t = 5)]
    max_download_attempts: u32,
    /// Storage driver (berth has overlay2)
    #[arg(short = 's', long, default_value = "overlay2")]
    storage_driver: String,
    /// Report experimental features as enabled
    #[arg(long)]
    experimental: bool,
    /// The Kubernetes CRI socket (gRPC); '' turns the CRI off (default: cri.sock beside the
    /// first API socket)
    #[arg(long)]
    cri_socket: Option<String>,
    /// Where the CRI streaming server (exec, attach, port-forward URLs) listens; port 0
    /// picks a free one
    #[arg(long, default_value = "127.0.0.1:0")]
    cri_stream_address: std::net::SocketAddr,
    /// CNI network configurations of CRI pods
    #[arg(long, default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked for; repeatable (default: /opt/cni/bin, /usr/lib/cni)
    #[arg(long = "cni-bin-dir")]
    cni_bin_dirs: Vec<PathBuf>,
    /// A mirror of one registry domain, `DOMAIN=URL` (`registry.k8s.io=http://127.0.0.1:5000`),
    /// tried before the domain itself; repeatable (containerd's hosts.toml mirrors)
    #[arg(long = "registry-host-mirror", value_parser = parse_host_mirror)]
    registry_host_mirrors: Vec<(String, String)>,
    /// The server that answers for a registry domain in its place, `DOMAIN=URL`, with no
    /// fallback to the domain (containerd's hosts.toml `server`); repeatable
    #[arg(long = "registry-host-server", value_parser = parse_host_mirror)]
    registry_host_servers: Vec<(String, String)>,
    /// The berth-pause binary of CRI pod sandboxes (default: next to berthd)
    #[arg(long)]
    pause: Option<PathBuf>,
    /// Join hosts through this etcd: `etcd://HOST:PORT[,HOST:PORT…]` (issue 14)
    #[arg(long)]
    cluster_store: Option<String>,
    /// This host's address for the cluster: an IPv4 address or an interface name
    #[arg(long)]
    cluster_advertise: Option<String>,
    /// Seconds this host's subnet lease lives without renewal (renewed every third)
    #[arg(long, default_value_t = 20, hide = true)]
    cluster_lease_ttl: i64,
}

/// Each berthd flag that dockerd also has, and its daemon.json key.
pub const FLAG_KEYS: &[(&str, &str)] = &[
    ("data_root", "data-root"),
    ("exec_root", "exec-root"),
    ("host", "hosts"),
    ("pidfile", "pidfile"),
    ("group", "group"),
    ("log_level", "log-level"),
    ("debug", "debug"),
    ("bridge", "bridge"),
    ("bip", "bip"),
    ("fixed_cidr", "fixed-cidr"),
    ("mtu", "mtu"),
    ("dns", "dns"),
    ("dns_search", "dns-search"),
    ("dns_opts", "dns-opts"),
    ("registry_mirrors", "registry-mirrors"),
    ("insecure_registries", "insecure-registries"),
    ("max_concurrent_downloads", "max-concurrent-downloads"),
    ("max_concurrent_uploads", "max-concurrent-uploads"),
    ("max_download_attempts", "max-download-attempts"),
    ("log_driver", "log-driver"),
    ("log_opts", "log-opts"),
    ("default_shm_size", "default-shm-size"),
    ("live_restore", "live-restore"),
    ("labels", "labels"),
    ("userns_remap", "userns-remap"),
    ("seccomp_profile", "seccomp-profile"),
    ("no_new_privileges", "no-new-privileges"),
    ("shutdown_timeout", "shutdown-timeout"),
    ("storage_driver", "storage-driver"),
    ("experimental", "experimental"),
    ("cluster_store", "cluster-store"),
    ("cluster_advertise", "cluster-advertise"),
];

/// The daemon.json keys set on the command line, with the flag's value as dockerd prints it
/// (a repeatable flag as `[a b]`), in key order as dockerd lists them.
fn flags_given(m: &clap::ArgMatches) -> Vec<(&'static str, String)> {
    let cmd = Args::command();
    let repeatable = |id: &str| {
        cmd.get_arguments()
            .find(|a| a.get_id() == id)
            .is_some_and(|a| matches!(a.get_action(), clap::ArgAction::Append))
    };
    let mut v: Vec<(&'static str, String)> = FLAG_KEYS
        .iter()
        .filter(|(id, _)| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|(id, key)| {
            let vals: Vec<String> = m
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let shown = if repeatable(id) || vals.len() != 1 {
                format!("[{}]", vals.join(" "))
            } else {
                vals[0].clone()
            };
            (*key, shown)
        })
        .collect();
    v.sort();
    v
}

/// The file's values for the keys not given as flags.
fn apply_file(a: &mut Args, f: &config::FileConfig) {
    fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
        if let Some(v) = src {
            *dst = v.clone();
        }
    }
    set(&mut a.data_root, &f.data_root);
    set(&mut a.exec_root, &f.exec_root);
    set(&mut a.host, &f.hosts);
    if f.pidfile.is_some() {
        a.pidfile = f.pidfile.clone();
    }
    set(&mut a.group, &f.group);
    set(&mut a.log_level, &f.log_level);
    set(&mut a.debug, &f.debug);
    set(&mut a.bridge, &f.bridge);
    if f.bip.is_some() {
        a.bip = f.bip.clone();
    }
    if f.fixed_cidr.is_some() {
        a.fixed_cidr = f.fixed_cidr.clone();
    }
    set(&mut a.mtu, &f.mtu);
    if a.cluster_store.is_none() {
        a.cluster_store = f.cluster_store.clone();
    }
    if a.cluster_advertise.is_none() {
        a.cluster_advertise = f.cluster_advertise.clone();
    }
    set(&mut a.dns, &f.dns);
    set(&mut a.dns_search, &f.dns_search);
    set(&mut a.dns_opts, &f.dns_opts);
    set(&mut a.registry_mirrors, &f.registry_mirrors);
    set(&mut a.insecure_registries, &f.insecure_registries);
    if let Some(n) = f.max_concurrent_downloads {
        a.max_concurrent_downloads = n.max(1) as usize;
    }
    if let Some(n) = f.max_concurrent_uploads {
        a.max_concurrent_uploads = n.max(1) as usize;
    }
    if let Some(n) = f.max_download_attempts {
        a.max_download_attempts = n.max(1) as u32;
    }
    set(&mut a.log_driver, &f.log_driver);
    if let Some(o) = &f.log_opts {
        a.log_opts = o.iter().map(|(k, v)| format!("{k}={v}")).collect();
    }
    set(&mut a.default_shm_size, &f.default_shm_size);
    set(&mut a.live_restore, &f.live_restore);
    set(&mut a.labels, &f.labels);
    if f.userns_remap.is_some() {
        a.userns_remap = f.userns_remap.clone();
    }
    if f.seccomp_profile.is_some() {
        a.seccomp_profile = f.seccomp_profile.clone();
    }
    set(&mut a.no_new_privileges, &f.no_new_privileges);
    set(&mut a.storage_driver, &f.storage_driver);
    set(&mut a.experimental, &f.experimental);
    if let Some(n) = f.shutdown_timeout {
        a.shutdown_timeout = n.max(0) as u64;
    }
}

/// The flags' checks (after the file's values are in).
fn check_args(args: &Args) -> Result<(), String> {
    for r in &args.insecure_registries {
        berth_registry::validate_insecure(r).map_err(|e| e.to_string())?;
    }
    for m in &args.registry_mirrors {
        config::validate_mirror(m)?;
    }
    if args.max_concurrent_downloads == 0 || args.max_concurrent_uploads == 0 {
        return Err(
            "--max-concurrent-downloads and --max-concurrent-uploads must be at least 1".into(),
        );
    }
    config::parse_level(&args.log_level)?;
    for l in &args.labels {
        if !l.contains('=') || l.starts_with('=') {
            return Err(format!("bad attribute format: {l}"));
        }
    }
    config::parse_size(&args.default_shm_size)
        .ok_or_else(|| format!("invalid size: '{}'", args.default_shm_size))?;
    if let Some(p) = &args.seccomp_profile {
        berth_engine::seccomp::set_daemon_profile(p).map_err(|e| e.to_string())?;
    }
    config::check_storage_driver(&args.storage_driver)?;
    // berth's log drivers
    if !matches!(args.log_driver.as_str(), "json-file" | "none") {
        return Err(format!(
            "failed to set log opts: logger: no log driver named '{}' is registered",
            args.log_driver
        ));
    }
    for o in &args.log_opts {
        if !o.contains('=') {
            return Err(format!("invalid key value pair format in log opts: {o}"));
        }
    }
    Ok(())
}

/// The flags and the configuration file, merged and checked: what the daemon starts with.
struct Boot {
    args: Args,
    file: Option<config::Loaded>,
    explicit_file: bool,
    flags: Vec<(&'static str, String)>,
}

fn boot() -> Result<Boot, String> {
    let m = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&m).map_err(|e| e.to_string())?;
    let explicit_file =
        m.value_source("config_file") == Some(clap::parser::ValueSource::CommandLine);
    let flags = flags_given(&m);
    let file = config::load(&args.config_file, explicit_file)?;
    if let Some(l) = &file {
        config::conflicts(&l.raw, &flags).map_err(|e| config::wrap(&args.config_file, &e))?;
        apply_file(&mut args, &l.cfg);
    }
    check_args(&args)?;
    Ok(Boot {
        args,
        file,
        explicit_file,
        flags,
    })
}

/// The engine's settings from the merged flags and file.
fn settings_of(a: &Args, f: Option<&config::FileConfig>) -> berth_engine::settings::Settings {
    let d = berth_engine::settings::Settings::default();
    berth_engine::settings::Settings {
        debug: a.debug,
        labels: a.labels.clone(),
        live_restore: a.live_restore,
        max_concurrent_downloads: a.max_concurrent_downloads,
        max_concurrent_uploads: a.max_concurrent_uploads,
        max_download_attempts: a.max_download_attempts,
        shutdown_timeout: a.shutdown_timeout,
        features: f.and_then(|f| f.features.clone()).unwrap_or_default(),
        default_ulimits: f
            .and_then(|f| f.default_ulimits.clone())
            .unwrap_or_default(),
        default_shm_size: config::parse_size(&a.default_shm_size).unwrap_or(d.default_shm_size),
        default_address_pools: f
            .and_then(|f| f.default_address_pools.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| berth_engine::settings::AddressPool {
                base: p.base,
                size: p.size,
            })
            .collect(),
        experimental: a.experimental,
        log_driver: a.log_driver.clone(),
        log_opts: a
            .log_opts
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cluster_store: a
            .cluster_store
            .clone()
            .or_else(|| f.and_then(|f| f.cluster_store.clone()))
            .unwrap_or_default(),
        cluster_advertise: a
            .cluster_advertise
            .clone()
            .or_else(|| f.and_then(|f| f.cluster_advertise.clone()))
            .unwrap_or_default(),
        cluster_lease: String::new(),
    }
}

fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("unsupported host {host:?}: only unix:///path and fd:// are supported"),
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

/// `--registry-host-mirror DOMAIN=URL` and `--registry-host-server DOMAIN=URL`
fn parse_host_mirror(v: &str) -> std::result::Result<(String, String), String> {
    let (d, u) = v
        .split_once('=')
        .ok_or_else(|| format!("{v}: want DOMAIN=URL"))?;
    if d.is_empty() || d.contains('/') || !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(format!("{v}: want DOMAIN=http[s]://HOST[:PORT]"));
    }
    Ok((d.to_string(), u.to_string()))
}

/// The CRI's settings, or `None` when `--cri-socket ''` turns it off.
fn cri_config(args: &Args, api_socket: Option<&PathBuf>) -> Result<Option<berth_cri::Config>> {
    let socket = match args.cri_socket.as_deref() {
        Some("") => return Ok(None),
        Some(s) => PathBuf::from(s.strip_prefix("unix://").unwrap_or(s)),
        None => api_socket
            .and_then(|p| p.parent())
            .unwrap_or(&args.exec_root)
            .join("cri.sock"),
    };
    let pause_path = match args.pause.clone() {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("berth-pause"))
            .context("locating berth-pause")?,
    };
    let cni_bin_dirs = if args.cni_bin_dirs.is_empty() {
        vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
    } else {
        args.cni_bin_dirs.clone()
    };
    Ok(Some(berth_cri::Config {
        socket,
        cni_conf_dir: args.cni_conf_dir.clone(),
        stream_addr: args.cri_stream_address,
        cni_bin_dirs,
        pause_path,
    }))
}

fn main() -> Result<()> {
    notify::init();
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

/// The log level the merged settings ask for (`debug` wins over `log-level`).
fn level_of(debug: bool, log_level: &str) -> &'static str {
    if debug {
        "debug"
    } else {
        config::parse_level(log_level).unwrap_or("info")
    }
}

async fn daemon() -> Result<()> {
    // a configuration error is dockerd's one line on stderr and exit status 1
    let boot = match boot() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if boot.args.validate {
        println!("configuration OK");
        return Ok(());
    }
    let Boot {
        args,
        file,
        explicit_file,
        flags,
    } = boot;
    let log = log::init(level_of(args.debug, &args.log_level));
    // from here on a SIGHUP reloads (once the engine is up) instead of killing the daemon
    // (SIGHUP's default action): one sent while state is read waits for the loop below
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    if let Some(l) = &file {
        tracing::info!(
            "read configuration file {} ({} keys)",
            args.config_file.display(),
            l.raw.len()
        );
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("berthd needs to be started with root privileges");
    }
    socket::raise_nofile();
    let socket_gid = socket::group_id(&args.group)?;
    let shim = match args.shim.clone() {
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
        .clone()
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
    // (path, listener, ours: made here and removed at exit; systemd's sockets stay)
    let mut listeners = Vec::new();
    for h in &hosts {
        if h.starts_with("fd://") {
            for l in socket::activated(h)? {
                let path = l
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                    .unwrap_or_default();
                listeners.push((path, l, false));
            }
            continue;
        }
        let path = socket_path(h)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let l = socket::bind(&path, socket_gid)?;
        listeners.push((path, l, true));
    }
    socket::clear_activation_env();
    // cluster mode: the subnet lease decides the default bridge's address and MTU
    let mut bip = args.bip.clone();
    let mut mtu = args.mtu;
    let cluster = cluster::join(&args).await?;
    if let Some(j) = &cluster {
        if bip.is_some() {
            tracing::warn!("--bip is ignored in cluster mode: the bridge takes the leased subnet");
        }
        bip = Some(j.bip());
        mtu = mtu.min(j.mtu);
    }
    let mut settings = settings_of(&args, file.as_ref().map(|l| &l.cfg));
    if let Some(j) = &cluster {
        settings.cluster_lease = j.describe();
    }
    let engine = berth_engine::Engine::open(berth_engine::Config {
        data_root,
        exec_root: args.exec_root.clone(),
        shim_path: shim,
        net: berth_engine::NetConfig {
            bridge: args.bridge.clone(),
            bip,
            fixed_cidr: args.fixed_cidr.clone(),
            ipv6: args.ipv6,
            fixed_cidr_v6: args.fixed_cidr_v6.clone(),
            mtu,
            dns: args.dns.clone(),
            dns_search: args.dns_search.clone(),
            dns_opts: args.dns_opts.clone(),
            address_pools: file
                .as_ref()
                .and_then(|l| l.cfg.default_address_pools.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.base, p.size.min(32) as u8))
                .collect(),
            cluster_network: cluster.as_ref().map(|j| j.config.network.clone()),
        },
        settings,
        userns: ids,
        no_new_privileges: args.no_new_privileges,
        default_cgroupns_mode: args.default_cgroupns_mode.clone(),
        registry: berth_registry::Config {
            insecure: args.insecure_registries.clone(),
            mirrors: args.registry_mirrors.clone(),
            host_mirrors: args.registry_host_mirrors.clone(),
            host_servers: args.registry_host_servers.clone(),
            certs_dir: args.registry_certs_dir.clone(),
            connect_timeout: std::time::Duration::from_secs(10),
            read_timeout: std::time::Duration::from_secs(args.registry_timeout.max(1)),
        },
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening state: {e}"))?;

    if let Some(j) = cluster {
        // overlay networks: the records, hosts and endpoints read before the API answers
        engine
            .overlay_start(berth_engine::OverlayConfig {
                client: j.client.clone(),
                local: j.public_ip,
                underlay: j.underlay,
                mtu: j.mtu,
                lease: j.lease.clone(),
            })
            .await
            .map_err(|e| anyhow::anyhow!("overlay networks: {e}"))?;
        tokio::spawn(berth_cluster::agent::run(j));
    }

    // the handlers before the API answers
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sockets = Vec::new();
    let api_paths: Vec<PathBuf> = listeners.iter().map(|(p, _, _)| p.clone()).collect();
    // the CRI's state and sockets before the API answers: a flood of API connections must not
    // take the descriptors they need
    if let Some(cfg) = cri_config(&args, api_paths.first())? {
        let sock = cfg.socket.clone();
        let cri = berth_cri::Cri::open(engine.clone(), cfg)
            .map_err(|e| anyhow::anyhow!("opening the CRI state: {e}"))?;
        let bound = cri
            .bind()
            .await
            .map_err(|e| anyhow::anyhow!("CRI sockets: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = cri.serve(bound).await {
                tracing::error!("CRI: {e}");
            }
        });
        sockets.push(sock);
    }
    for (path, listener, ours) in listeners {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        tracing::info!("API listening on {}", path.display());
        tokio::spawn(berth_api::serve(engine.clone(), listener));
        if ours {
            sockets.push(path);
        }
    }

    let mut reloader = reload::Reloader {
        path: args.config_file.clone(),
        explicit: explicit_file,
        flags,
        raw: file.map(|l| l.raw).unwrap_or_default(),
        log_level: args.log_level.clone(),
        log,
    };
    notify::notify("READY=1");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reloader.reload(&engine),
        }
    }
    notify::notify("STOPPING=1");
    engine.shutdown();
    tracing::info!("shutting down; running containers keep running");
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_key_is_a_file_key_and_every_flag_id_exists() {
        let m = Args::command().get_matches_from(["berthd", "--data-root", "/d", "--label", "a=b"]);
        for (id, key) in FLAG_KEYS {
            assert!(config::KEYS.contains(key), "{key}");
            // an unknown id would panic here
            let _ = m.value_source(id);
        }
        let given = flags_given(&m);
        assert_eq!(
            given,
            vec![
                ("data-root", "/d".to_string()),
                ("labels", "[a=b]".to_string())
            ]
        );
    }

    #[test]
    fn file_values_fill_what_flags_left() {
        let m = Args::command().get_matches_from(["berthd", "--mtu", "1400"]);
        let mut a = Args::from_arg_matches(&m).expect("args");
        let l = config::parse(r#"{"bridge":"br9","max-concurrent-downloads":6,"labels":["x=y"]}"#)
            .expect("parse");
        apply_file(&mut a, &l.cfg);
        assert_eq!(a.bridge, "br9");
        assert_eq!(a.mtu, 1400);
        assert_eq!(a.max_concurrent_downloads, 6);
        let s = settings_of(&a, Some(&l.cfg));
        assert_eq!(s.labels, vec!["x=y"]);
        assert_eq!(s.max_concurrent_downloads, 6);
        assert_eq!(s.default_shm_size, 64 << 20);
        assert_eq!(level_of(true, "warn"), "debug");
        assert_eq!(level_of(false, "fatal"), "error");
    }
}
