//! cgroup v1 (every mounted hierarchy) and the v2 unified mount.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Hierarchy {
    pub mountpoint: PathBuf,
    /// the directory of the hierarchy mounted there (`/` unless a subtree is mounted, as in a
    /// container's view)
    pub root: String,
    /// v1 controllers (superblock options) or empty for cgroup2
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub(crate) fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// Every cgroup hierarchy mounted in this mount namespace, one per superblock.
pub(crate) fn hierarchies() -> Result<Vec<Hierarchy>> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::Sys(format!("read /proc/self/mountinfo: {e}")))?;
    Ok(parse_mountinfo(&info))
}

/// One hierarchy per superblock: the first of its mounts.
fn parse_mountinfo(info: &str) -> Vec<Hierarchy> {
    let mut seen: Vec<&str> = Vec::new();
    cgroup_mounts(info)
        .filter(|(dev, _)| {
            let new = !seen.contains(dev);
            seen.push(dev);
            new
        })
        .map(|(_, h)| h)
        .collect()
}

/// Every cgroup mount of `mountinfo`, with its device (the same hierarchy may be mounted
/// more than once).
fn cgroup_mounts(info: &str) -> impl Iterator<Item = (&str, Hierarchy)> {
    info.lines().filter_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            return None;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            return None;
        }
        let controllers = if fstype == "cgroup" {
            post[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro" | "relatime" | "noexec" | "nosuid" | "nodev"))
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        Some((
            pre[2],
            Hierarchy {
                mountpoint: PathBuf::from(unescape_octal(pre[4])),
                root: unescape_octal(pre[3]),
                controllers,
            },
        ))
    })
}

fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn rel(cgroups_path: &str) -> Result<&str> {
    let r = cgroups_path.trim_start_matches('/');
    if r.is_empty() || r.split('/').any(|c| c == ".." || c == ".") {
        return Err(Error::Spec(format!("bad cgroupsPath {cgroups_path:?}")));
    }
    Ok(r)
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::Sys(format!("open {}: {e}", path.display())))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::Sys(format!("write {value:?} to {}: {e}", path.display())))
}

/// Like `write_file` but a missing file (controller feature not compiled in) is fine.
fn write_optional(path: &Path, value: &str) -> Result<()> {
    if path.exists() {
        write_file(path, value)
    } else {
        Ok(())
    }
}

/// cpuset cgroups start with empty cpus/mems: copy the parent's down to `dir`.
fn init_cpuset(mountpoint: &Path, rel: &str) -> Result<()> {
    let mut parent = mountpoint.to_path_buf();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        let child = parent.join(comp);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = fs::read_to_string(child.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let p = fs::read_to_string(parent.join(f))
                    .map_err(|e| Error::Sys(format!("read {}: {e}", parent.join(f).display())))?;
                write_file(&child.join(f), p.trim())?;
            }
        }
        parent = child;
    }
    Ok(())
}

fn apply_resources(h: &Hierarchy, dir: &Path, r: &LinuxResources) -> Result<()> {
    if h.has("memory") {
        if let Some(m) = r.memory() {
            apply_memory(dir, m)?;
        }
    }
    if let Some(c) = r.cpu() {
        if h.has("cpu") {
            if let Some(s) = c.shares() {
                write_file(&dir.join("cpu.shares"), &s.to_string())?;
            }
            if let Some(p) = c.period() {
                write_file(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = c.quota() {
                write_file(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
        }
        if h.has("cpuset") {
            if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                write_file(&dir.join("cpuset.cpus"), s)?;
            }
            if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                write_file(&dir.join("cpuset.mems"), s)?;
            }
        }
    }
    if h.has("pids") {
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_string()
            };
            write_file(&dir.join("pids.max"), &v)?;
        }
    }
    if h.has("devices") {
        if let Some(rules) = r.devices() {
            write_file(&dir.join("devices.deny"), "a")?;
            for d in rules {
                let f = if d.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write_file(&dir.join(f), &device_rule(d))?;
            }
        }
    }
    if h.has("blkio") {
        if let Some(b) = r.block_io().as_ref() {
            if let Some(w) = b.weight() {
                write_optional(&dir.join("blkio.weight"), &w.to_string())?;
            }
            let throttles = [
                (
                    "blkio.throttle.read_bps_device",
                    b.throttle_read_bps_device(),
                ),
                (
                    "blkio.throttle.write_bps_device",
                    b.throttle_write_bps_device(),
                ),
                (
                    "blkio.throttle.read_iops_device",
                    b.throttle_read_iops_device(),
                ),
                (
                    "blkio.throttle.write_iops_device",
                    b.throttle_write_iops_device(),
                ),
            ];
            for (file, list) in throttles {
                for d in list.as_deref().unwrap_or(&[]) {
                    let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
                    write_file(&dir.join(file), &v)?;
                }
            }
        }
    }
    Ok(())
}

/// A limit as the kernel compares them: -1 (or any negative) = unlimited.
fn limit_value(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// memory.limit_in_bytes must stay ≤ memory.memsw.limit_in_bytes at every step: when the
/// limit goes up, memsw is raised first; when it goes down, memory is lowered first.
fn apply_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let has_memsw = memsw.exists();
    let swap = m.swap().filter(|_| has_memsw);
    if let Some(l) = m.limit() {
        let cur = fs::read_to_string(dir.join("memory.limit_in_bytes"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        let raising = limit_value(l) > cur;
        if raising {
            if let Some(sw) = swap {
                write_file(&memsw, &sw.to_string())?;
            }
        }
        write_file(&dir.join("memory.limit_in_bytes"), &l.to_string())?;
        if !raising {
            if let Some(sw) = swap {
                write_file(&memsw, &sw.to_string())?;
            }
        }
    } else if let Some(sw) = swap {
        write_file(&memsw, &sw.to_string())?;
    }
    if let Some(l) = m.reservation() {
        write_file(&dir.join("memory.soft_limit_in_bytes"), &l.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        write_optional(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_optional(&dir.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

/// `c 1:3 rwm`, with `*` for a missing or negative major/minor.
fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let typ = d.typ().unwrap_or_default();
    if typ == LinuxDeviceType::A {
        return "a".to_string();
    }
    format!(
        "{} {}:{} {}",
        typ.as_str(),
        num(d.major()),
        num(d.minor()),
        d.access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm")
    )
}

/// Applies `resources` to the live cgroups of a container (UPDATE).
pub(crate) fn update(cgroups_path: &str, resources: &LinuxResources) -> Result<()> {
    let rel = rel(cgroups_path)?;
    for h in hierarchies()? {
        let dir = h.mountpoint.join(rel);
        if dir.is_dir() {
            apply_resources(&h, &dir, resources)?;
        }
    }
    Ok(())
}

/// Moves `pid` into the container's cgroup in every hierarchy (exec).
pub(crate) fn join(cgroups_path: &str, pid: i32) -> Result<()> {
    let rel = rel(cgroups_path)?;
    let pid = pid.to_string();
    for h in hierarchies()? {
        let dir = h.mountpoint.join(rel);
        if dir.is_dir() {
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
    }
    Ok(())
}

/// Freezes or thaws the container's cgroup (v1 freezer, else v2 `cgroup.freeze`) and waits
/// until the kernel reports the new state.
pub(crate) fn freeze(cgroups_path: &str, frozen: bool) -> Result<()> {
    let rel = rel(cgroups_path)?;
    let hs = hierarchies()?;
    let v1 = hs.iter().find(|h| h.has("freezer"));
    let (file, value, check_file, want): (PathBuf, &str, PathBuf, &str) = match v1 {
        Some(h) => {
            let dir = h.mountpoint.join(rel);
            let v = if frozen { "FROZEN" } else { "THAWED" };
            (dir.join("freezer.state"), v, dir.join("freezer.state"), v)
        }
        None => {
            let h = hs
                .iter()
                .find(|h| h.controllers.is_empty())
                .ok_or_else(|| Error::Sys("no freezer cgroup".into()))?;
            let dir = h.mountpoint.join(rel);
            let v = if frozen { "1" } else { "0" };
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            (
                dir.join("cgroup.freeze"),
                v,
                dir.join("cgroup.events"),
                want,
            )
        }
    };
    let start = std::time::Instant::now();
    let mut n = 0u32;
    loop {
        // v1 can stay FREEZING while a task is in an uninterruptible sleep: write again
        if n.is_multiple_of(10) {
            write_file(&file, value)?;
        }
        let cur = fs::read_to_string(&check_file)
            .map_err(|e| Error::Sys(format!("read {}: {e}", check_file.display())))?;
        if cur.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if start.elapsed() > std::time::Duration::from_secs(2) {
            if frozen {
                let _ = write_file(&file, if v1.is_some() { "THAWED" } else { "0" });
            }
            return Err(Error::Sys(format!(
                "timed out waiting for the cgroup to be {}",
                if frozen { "frozen" } else { "thawed" }
            )));
        }
        n += 1;
        std::thread::sleep(std::time::Duration::from_micros(if n < 20 {
            100
        } else {
            2000
        }));
    }
}

/// Creates `cgroups_path` in every hierarchy, applies `resources` and moves `pid` in.
pub(crate) fn setup(
    hs: &[Hierarchy],
    cgroups_path: &str,
    resources: Option<&LinuxResources>,
    pid: i32,
) -> Result<()> {
    let rel = rel(cgroups_path)?;
    let pid = pid.to_string();
    for h in hs {
        let dir = h.mountpoint.join(rel);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == ErrorKind::NotFound => fs::create_dir_all(&dir)
                .map_err(|e| Error::Sys(format!("mkdir {}: {e}", dir.display())))?,
            Err(e) => return Err(Error::Sys(format!("mkdir {}: {e}", dir.display()))),
        }
        if h.has("cpuset") {
            init_cpuset(&h.mountpoint, rel)?;
        }
        if let Some(r) = resources {
            apply_resources(h, &dir, r)?;
        }
        write_file(&dir.join("cgroup.procs"), &pid)?;
    }
    Ok(())
}

/// rmdir `cgroups_path` in every hierarchy, with whatever the container made below it (systemd
/// as a container's PID 1 makes `init.scope`, `system.slice`…; an engine inside makes its
/// own tree): children first, as a cgroup with children cannot go. Missing dirs are fine.
pub(crate) fn remove(cgroups_path: &str) -> Result<()> {
    let rel = rel(cgroups_path)?;
    let mut first_err = None;
    for h in hierarchies()? {
        if let Err(e) = rmdir_tree(&h.mountpoint.join(rel)) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Sends `sig` to every process in `cgroups_path` and below it (read from the first
/// hierarchy that has the directory: each holds all of the container's processes). For a
/// container without a PID namespace of its own, whose init dying leaves its children alive.
/// Returns how many processes were signalled.
pub(crate) fn kill_all(cgroups_path: &str, sig: i32) -> Result<usize> {
    let rel = rel(cgroups_path)?;
    for h in hierarchies()? {
        let dir = h.mountpoint.join(rel);
        if !dir.is_dir() {
            continue;
        }
        let mut n = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) of a process listed in the container's own cgroup.
                    if unsafe { libc::kill(pid, sig) } == 0 {
                        n += 1;
                    }
                }
            }
            if let Ok(rd) = fs::read_dir(&d) {
                stack.extend(
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        return Ok(n);
    }
    Ok(0)
}

/// Depth-first rmdir of a cgroup directory (its files are the kernel's and go with it).
fn rmdir_tree(dir: &Path) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Sys(format!("read {}: {e}", dir.display()))),
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path())?;
        }
    }
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            // a just-reaped task can linger for a moment
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(Error::Sys(format!("rmdir {}: {e}", dir.display()))),
        }
    }
}

/// The `cgroup.procs` file of the calling process's own cgroup: in the unified (v2)
/// hierarchy when one is mounted with its root at `/`, else in the first such v1 hierarchy.
/// `mountinfo` is `/proc/self/mountinfo`, `own` is `/proc/self/cgroup`.
fn own_procs_file(mountinfo: &str, own: &str) -> Option<PathBuf> {
    // (hierarchy line of /proc/self/cgroup: its controllers ("" for v2), path)
    let lines: Vec<(&str, &str)> = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctl, path))
        })
        .collect();
    let whole: Vec<Hierarchy> = cgroup_mounts(mountinfo)
        .map(|(_, h)| h)
        .filter(|h| h.root == "/")
        .collect();
    let procs = |h: &Hierarchy, path: &str| {
        h.mountpoint
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs")
    };
    let unified = whole.iter().find(|h| h.controllers.is_empty());
    if let (Some(h), Some((_, path))) = (unified, lines.iter().find(|(c, _)| c.is_empty())) {
        return Some(procs(h, path));
    }
    whole
        .iter()
        .filter(|h| !h.controllers.is_empty())
        .find_map(|h| {
            lines
                .iter()
                .find(|(c, _)| !c.is_empty() && c.split(',').all(|x| h.has(x)))
                .map(|(_, path)| procs(h, path))
        })
}

/// How long after the last container operation the cgroup-move lock is kept ready.
const WARM_FOR: std::time::Duration = std::time::Duration::from_millis(500);
/// How often it is taken meanwhile: under an RCU grace period (about 10 ms here; the kernel
/// lets the lock go cold one grace period after its last user).
const WARM_EVERY: std::time::Duration = std::time::Duration::from_millis(3);

struct Primer {
    until: std::sync::Mutex<Option<std::time::Instant>>,
    wake: std::sync::Condvar,
}

/// The primer's thread, started on first use; `None` where the daemon's own cgroup file
/// cannot be found or opened (nothing is primed then).
fn primer() -> Option<&'static Primer> {
    static PRIMER: std::sync::OnceLock<Option<&'static Primer>> = std::sync::OnceLock::new();
    *PRIMER.get_or_init(|| {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own_procs_file(&mountinfo, &own)?;
        let mut file = fs::OpenOptions::new().write(true).open(path).ok()?;
        let p: &'static Primer = Box::leak(Box::new(Primer {
            until: std::sync::Mutex::new(None),
            wake: std::sync::Condvar::new(),
        }));
        let pid = std::process::id().to_string();
        std::thread::Builder::new()
            .name("cgroup-prime".into())
            .spawn(move || loop {
                {
                    let mut until = p.until.lock().unwrap_or_else(|e| e.into_inner());
                    while !until.is_some_and(|t| std::time::Instant::now() < t) {
                        until = p.wake.wait(until).unwrap_or_else(|e| e.into_inner());
                    }
                }
                // one write is one move request (of this process, into its own cgroup)
                let _ = file.write_all(pid.as_bytes());
                std::thread::sleep(WARM_EVERY);
            })
            .ok()?;
        Some(p)
    })
}

/// Keeps the kernel's lock around cgroup moves ready for the next 500 ms, so that the shim's
/// move of a container (or an exec'd process) into its cgroup does not wait.
///
/// Why: taking that lock (`cgroup_threadgroup_rwsem`) after a quiet spell waits for an RCU
/// grace period, 10-16 ms on this kind of VM and most of a container's start; it stays ready
/// for one grace period after its last user. A thread of the daemon therefore moves the
/// daemon into the cgroup it is already in (a move that changes nothing) at once and then
/// every 3 ms until 500 ms after the last call. Called as a container is created or
/// started, a pod is run or an exec begins: the first wait runs beside that request's own
/// work, and the operations that follow within the window (`run`'s create then start, a
/// kubelet's run-pod, create, start) find the lock ready. It is the kernel's own
/// `favordynmods` trade (fork and exit take a slightly slower path while the lock is
/// ready), confined to bursts of container operations. Errors are of no consequence.
/// Unlike the rest of this crate it may be called from the daemon (a thread and a write).
pub fn prime_cgroup_move() {
    if let Some(p) = primer() {
        *p.until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now() + WARM_FOR);
        p.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_procs_file_prefers_the_unified_hierarchy() {
        let mi = "35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                  36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  30 31 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let own = "5:cpu,cpuacct:/system.slice/berthd.service\n\
                   4:memory:/system.slice/berthd.service\n0::/system.slice/berthd.service\n";
        assert_eq!(
            super::own_procs_file(mi, own),
            Some("/sys/fs/cgroup/unified/system.slice/berthd.service/cgroup.procs".into())
        );
        // v1 only: the first hierarchy whose controllers match a line
        let own_v1 = "5:cpu,cpuacct:/a\n4:memory:/b\n";
        assert_eq!(
            super::own_procs_file(mi, own_v1),
            Some("/sys/fs/cgroup/memory/b/cgroup.procs".into())
        );
        // a hierarchy mounted from below its root (a container's view) is not used
        let mi_sub = "35 31 0:30 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(super::own_procs_file(mi_sub, "4:memory:/\n"), None);
    }

    use super::*;

    #[test]
    fn mountinfo_parsing() {
        let info = "\
25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset
33 25 0:28 / /other/cpuset rw,nosuid - cgroup cgroup rw,cpuset
34 25 0:29 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
";
        let hs = parse_mountinfo(info);
        assert_eq!(hs.len(), 4);
        assert!(hs[0].controllers.is_empty());
        assert!(hs[1].has("cpu") && hs[1].has("cpuacct"));
        assert_eq!(hs[2].mountpoint, PathBuf::from("/sys/fs/cgroup/cpuset"));
        assert!(hs[3].has("name=systemd"));
    }

    #[test]
    fn device_rules() {
        let d: Vec<LinuxDeviceCgroup> = serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"}
        ]))
        .unwrap();
        let got: Vec<String> = d.iter().map(device_rule).collect();
        assert_eq!(got, ["a", "c 1:3 rwm", "c 136:* rwm", "b *:* m"]);
    }

    #[test]
    fn bad_paths() {
        assert!(rel("/").is_err());
        assert!(rel("/a/../b").is_err());
        assert_eq!(rel("/berth/x").ok(), Some("berth/x"));
    }
}
