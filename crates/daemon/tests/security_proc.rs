//! Attacks on the processes around a container (issue 10: host descriptors, entering a
//! container by `exec`, the container's user database, the API under descriptor exhaustion
//! and huge bodies, the API socket). Each test reproduces the attack against a real berthd
//! and checks that it is blocked.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// stdout and stderr together (docker sends an exec's start error in the stream).
fn both(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn marker(what: &str) -> String {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    format!(
        "{what}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// The descriptor numbers listed by `ls /proc/self/fd` (0-2 and ls's own directory handle).
fn fd_names(out: &str) -> Vec<u32> {
    out.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Host descriptors (issue 10, point 2)

/// berthd started with a host directory open on fd 7 without close-on-exec (as
/// `scripts/install.sh`'s nohup start did): neither `run` nor `exec` may reach it.
#[test]
fn inherited_host_descriptor_does_not_reach_containers() {
    let dir = tmpdir("hostfd");
    let secret = marker("host-secret");
    std::fs::write(dir.join("secret"), &secret).expect("write secret");
    let cdir = std::ffi::CString::new(dir.to_str().expect("utf8")).expect("cstr");
    let d = Daemon::start_with(&[], move |cmd| {
        // SAFETY: only open/dup2/close between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(cdir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if fd != 7 {
                    libc::dup2(fd, 7); // dup2 leaves fd 7 without FD_CLOEXEC
                    libc::close(fd);
                }
                Ok(())
            });
        }
    });
    d.load_busybox();

    let o = d.berth(&["run", "--rm", "busybox", "cat", "/proc/self/fd/7/secret"]);
    assert!(
        !stdout(&o).contains(&secret),
        "run read the host through fd 7: {}",
        stdout(&o)
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/proc/self/fd/7/../../../../etc/hostname",
    ]);
    assert!(
        !o.status.success(),
        "host /etc/hostname read: {}",
        stdout(&o)
    );
    let fds = fd_names(&d.ok(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]));
    assert!(
        fds.iter().all(|&fd| fd <= 3),
        "the container's first process holds more than stdio: {fds:?}"
    );
    // a working directory through the leaked descriptor
    let o = d.berth(&[
        "run",
        "--rm",
        "-w",
        "/proc/self/fd/7",
        "busybox",
        "sh",
        "-c",
        "cat secret; pwd",
    ]);
    assert!(
        !stdout(&o).contains(&secret) && !stdout(&o).contains(dir.to_str().expect("utf8")),
        "started in the host directory: {}",
        stdout(&o)
    );
    assert!(!o.status.success(), "a cwd outside the root was accepted");

    // exec into a running container
    d.ok(&["run", "-d", "--name", "fdc", "busybox", "sleep", "1000"]);
    let o = d.berth(&["exec", "fdc", "cat", "/proc/self/fd/7/secret"]);
    assert!(
        !stdout(&o).contains(&secret),
        "exec read the host: {}",
        stdout(&o)
    );
    let fds = fd_names(&d.ok(&["exec", "fdc", "ls", "/proc/self/fd"]));
    assert!(
        fds.iter().all(|&fd| fd <= 3),
        "an exec'd process holds more than stdio: {fds:?}"
    );
    let fds = fd_names(&d.ok(&["exec", "fdc", "ls", "/proc/1/fd"]));
    assert!(
        fds.iter().all(|&fd| fd <= 2),
        "the container's init holds more than stdio: {fds:?}"
    );
    let o = d.berth(&["exec", "-w", "/proc/self/fd/7", "fdc", "cat", "secret"]);
    assert!(!stdout(&o).contains(&secret), "exec -w reached the host");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Entering a container (CVE-2019-5736 class)

/// Runs in the container: opens /proc/<pid>/exe and /proc/<pid>/fd/* of every new process
/// and reports those that are one of the host files given as dev:ino pairs.
const RACER_C: &str = r#"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char done[1 << 19];
static int ntargets; static unsigned long long tdev[8], tino[8];

static int is_target(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    for (int i = 0; i < ntargets; i++)
        if ((unsigned long long)st.st_dev == tdev[i] && (unsigned long long)st.st_ino == tino[i]) return 1;
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc && ntargets < 8; i += 2, ntargets++) {
        tdev[ntargets] = strtoull(argv[i], 0, 10);
        tino[ntargets] = strtoull(argv[i + 1], 0, 10);
    }
    long exe_host = 0, exe_write = 0, fd_host = 0, denied = 0, observed = 0;
    int self = getpid();
    struct stat stop;
    for (unsigned long loop = 0;; loop++) {
        if ((loop & 63) == 0 && stat("/stop", &stop) == 0) break;
        DIR *d = opendir("/proc");
        if (!d) return 2;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == self || pid >= (int)(sizeof(done) * 8)) continue;
            if (done[pid >> 3] & (1 << (pid & 7))) continue;
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/fd", pid);
            DIR *fdd = opendir(p);
            if (fdd) {
                struct dirent *f;
                while ((f = readdir(fdd))) {
                    if (f->d_name[0] == '.') continue;
                    char q[96];
                    snprintf(q, sizeof q, "/proc/%d/fd/%s", pid, f->d_name);
                    int h = open(q, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                    if (h >= 0) { if (is_target(h)) fd_host++; close(h); }
                }
                closedir(fdd);
            }
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                observed++;
                if (is_target(fd)) {
                    exe_host++;
                    int w = open(p, O_WRONLY | O_CLOEXEC);
                    if (w >= 0) { exe_write++; close(w); }
                } else {
                    done[pid >> 3] |= 1 << (pid & 7); /* it runs a container program now */
                }
                close(fd);
            } else if (errno == EACCES || errno == EPERM) {
                denied++;
            } else {
                done[pid >> 3] |= 1 << (pid & 7);
            }
        }
        closedir(d);
    }
    printf("exe_host=%ld exe_write=%ld fd_host=%ld denied=%ld observed=%ld\n",
           exe_host, exe_write, fd_host, denied, observed);
    return 0;
}
"#;

fn dev_ino(p: &Path) -> (u64, u64) {
    let md = std::fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (md.dev(), md.ino())
}

fn field(line: &str, key: &str) -> i64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// While `berth exec` runs again and again, a process in the container races to open
/// `/proc/<pid>/exe` and `/proc/<pid>/fd/*` of every process that appears: it must never get
/// a handle on the host's berth-shim binary or on the container's json log (a host file),
/// and never open the shim binary for writing.
#[test]
fn exec_exposes_no_host_binary_or_descriptor() {
    let work = tmpdir("racer");
    let src = work.join("racer.c");
    std::fs::write(&src, RACER_C).expect("write racer.c");
    let racer = work.join("racer");
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&racer)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc -static failed");

    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    d.ok(&["cp", racer.to_str().expect("utf8"), "victim:/racer"]);
    let log = d.root.join(format!("data/containers/{id}/{id}-json.log"));
    assert!(log.exists(), "json log at {}", log.display());
    let (sd, si) = dev_ino(&bin_dir().join("berth-shim"));
    let (ld, li) = dev_ino(&log);
    let args = format!("/racer {sd} {si} {ld} {li} > /racer.out 2>&1");
    d.ok(&["exec", "-d", "victim", "sh", "-c", &args]);
    std::thread::sleep(Duration::from_millis(300));

    // A long PATH keeps each exec'd process a little longer between entering the container
    // and execve (the lookup stats every entry), so that the racer sees it there.
    let mut path: Vec<String> = (0..3000).map(|i| format!("/nonexistent/{i}")).collect();
    path.push("/bin".into());
    let path = format!("PATH={}", path.join(":"));
    for _ in 0..40 {
        d.ok(&["exec", "-e", &path, "victim", "true"]);
    }
    d.ok(&["exec", "victim", "touch", "/stop"]);
    let mut out = String::new();
    assert!(
        eventually(20, || {
            out = stdout(&d.berth(&["exec", "victim", "cat", "/racer.out"]));
            out.contains("observed=")
        }),
        "the racer did not report: {out}"
    );
    eprintln!("racer: {out}");
    assert!(
        field(&out, "observed") > 0,
        "the racer saw no exec'd process at all: {out}"
    );
    assert_eq!(
        field(&out, "exe_host"),
        0,
        "a process in the container opened the host's berth-shim binary: {out}"
    );
    assert_eq!(
        field(&out, "exe_write"),
        0,
        "host shim opened for writing: {out}"
    );
    assert_eq!(
        field(&out, "fd_host"),
        0,
        "a process in the container opened a host descriptor (json log or shim binary): {out}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

// ---------------------------------------------------------------------------------------
// The container's /etc/passwd (issue 10, point 7)

fn wait_logs(d: &Daemon, name: &str, word: &str) {
    assert!(
        eventually(20, || stdout(&d.berth(&["logs", name])).contains(word)),
        "{name} did not log {word}"
    );
}

/// `/etc/passwd` a FIFO: `exec -u` must answer (an error) at once and the API stay up.
#[test]
fn passwd_fifo_does_not_freeze_the_api() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fifo",
        "busybox",
        "sh",
        "-c",
        "rm /etc/passwd && mkfifo /etc/passwd && echo ready && sleep 1000",
    ]);
    wait_logs(&d, "fifo", "ready");
    let mut child = Command::new(bin_dir().join("berth"))
        .arg("-H")
        .arg(d.host())
        .args(["exec", "-u", "someone", "fifo", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth exec");
    let t0 = Instant::now();
    let mut status = None;
    while t0.elapsed() < Duration::from_secs(15) {
        if let Some(s) = child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        // unblock the daemon (a writer on the FIFO ends its read) before failing; the FIFO
        // is found on disk, the API may be what is frozen
        if let Ok(rd) = std::fs::read_dir(d.root.join("data/overlay2")) {
            for e in rd.flatten() {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(e.path().join("merged/etc/passwd"));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "exec -u with /etc/passwd a FIFO did not answer within 15 s: {}",
            d.log()
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let o = child.wait_with_output().expect("output");
    assert!(!o.status.success());
    assert!(
        both(&o).contains("unable to find user someone"),
        "unexpected: {}",
        both(&o)
    );
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
    // root still works (no passwd needed; `id` would itself block on the FIFO)
    assert_eq!(d.ok(&["exec", "fifo", "echo", "alive"]).trim(), "alive");
}

fn vm_kib(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `/etc/passwd` → `/dev/zero` (and `/etc/group` a device node): berthd must not read it
/// (it used to read until it was OOM-killed; here its address space is capped at 2 GiB so
/// the old behaviour shows as a dead daemon, not as a machine out of memory).
#[test]
fn passwd_device_is_not_read() {
    let d = Daemon::start_with(&[], |cmd| {
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
    });
    d.load_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "zero",
        "busybox",
        "sh",
        "-c",
        "ln -sf /dev/zero /etc/passwd && rm /etc/group && mknod /etc/group c 1 5 && echo ready && sleep 1000",
    ]);
    wait_logs(&d, "zero", "ready");
    let o = d.berth(&["exec", "-u", "someone", "zero", "true"]);
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
    let hwm = vm_kib(d.pid(), "VmHWM:");
    assert!(hwm < 200 * 1024, "berthd peaked at {hwm} KiB");
    assert!(
        both(&o).contains("unable to find user someone") && !o.status.success(),
        "unexpected: {}",
        both(&o)
    );
    let o = d.berth(&["exec", "-u", "0:somegroup", "zero", "true"]);
    assert!(
        both(&o).contains("unable to find group somegroup"),
        "{}",
        both(&o)
    );
}

/// A symlink to a host file must not resolve users against the host; one inside the
/// container's root (absolute) still works.
#[test]
fn passwd_symlink_resolves_inside_the_root() {
    let d = Daemon::start();
    d.load_busybox();
    let host = tmpdir("hostpw");
    let hp = host.join("passwd");
    std::fs::write(&hp, "hostonly:x:4242:4242::/:/bin/sh\n").expect("host passwd");
    let script = format!(
        "cp /etc/passwd /etc/passwd.real && echo 'inner:x:3131:3131::/:/bin/sh' >> /etc/passwd.real && \
         ln -sf {} /etc/passwd && echo ready && sleep 1000",
        hp.display()
    );
    d.ok(&["run", "-d", "--name", "pw", "busybox", "sh", "-c", &script]);
    wait_logs(&d, "pw", "ready");
    let o = d.berth(&["exec", "-u", "hostonly", "pw", "id", "-u"]);
    assert!(
        !stdout(&o).contains("4242"),
        "exec -u resolved a user from the host's file"
    );
    assert!(
        both(&o).contains("unable to find user hostonly"),
        "{}",
        both(&o)
    );
    // an absolute link that stays inside the root is the container's file
    d.ok(&["exec", "pw", "ln", "-sf", "/etc/passwd.real", "/etc/passwd"]);
    assert_eq!(
        d.ok(&["exec", "-u", "inner", "pw", "id", "-u"]).trim(),
        "3131"
    );
    let _ = std::fs::remove_dir_all(&host);
}

// ---------------------------------------------------------------------------------------
// The API under descriptor exhaustion and huge bodies (issue 10, point 8)

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after "pid (comm)": state is field 0, utime 11, stime 12
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// A non-blocking connect (a full backlog answers EAGAIN instead of blocking the test).
fn connect_nb(sock: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain socket calls on a zeroed sockaddr_un we fill within bounds.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return None;
        }
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let p = sock.as_os_str().as_bytes();
        if p.len() >= addr.sun_path.len() {
            return None;
        }
        for (i, b) in p.iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let r = libc::connect(
            fd,
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        (r == 0).then_some(owned)
    }
}

/// With RLIMIT_NOFILE 64 (soft = hard: nothing to raise), more connections than descriptors: the accept
/// loop must not spin nor flood the log, and the API answers again once they close.
#[test]
fn api_survives_descriptor_exhaustion() {
    let d = Daemon::start_with(&[], |cmd| {
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
    // Connect until berthd has used up its descriptors and the listen queue is full (a refused
    // non-blocking connect). How many that takes depends on the host's somaxconn, so the test
    // checks the daemon's descriptor count, not a number of connections.
    let fds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    // this test process runs other tests beside this one: let it have descriptors to spare
    // (soft limit up to the hard one), and open no more connections than needed
    // SAFETY: get/setrlimit on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    let mut conns = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while conns.len() < 150 && std::time::Instant::now() < deadline {
        match connect_nb(&d.sock) {
            Some(c) => conns.push(c),
            None if fds(d.pid()) >= 60 => break,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    // the daemon accepts at its own pace: give it time to run out
    let ran_out = eventually(10, || fds(d.pid()) >= 60);
    // alive, and not a zombie waiting for this test to reap it
    let state = std::fs::read_to_string(format!("/proc/{}/stat", d.pid())).unwrap_or_default();
    let alive = state
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'));
    assert!(alive, "berthd died: {}", d.log());
    assert!(
        ran_out,
        "berthd holds {} descriptors of 64 after {} connections: it never ran out",
        fds(d.pid()),
        conns.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let log0 = std::fs::metadata(d.root.join("berthd.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    let t0 = cpu_ticks(d.pid());
    std::thread::sleep(Duration::from_secs(4));
    let spent = cpu_ticks(d.pid()) - t0;
    let log1 = std::fs::metadata(d.root.join("berthd.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    // SAFETY: sysconf never fails for _SC_CLK_TCK.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    eprintln!(
        "{} connections pending: berthd used {spent} ticks (hz {hz}) and wrote {} log bytes in 4 s",
        conns.len(),
        log1 - log0
    );
    assert!(
        spent < hz / 2,
        "berthd used {spent} ticks (hz {hz}) of CPU in 4 s with {} connections pending: the accept loop spins",
        conns.len()
    );
    assert!(
        log1 - log0 < 64 * 1024,
        "berthd wrote {} bytes of log in 4 s",
        log1 - log0
    );
    drop(conns);
    let mut ok = false;
    assert!(
        eventually(15, || {
            ok = UnixStream::connect(&d.sock).is_ok() && d.http("GET", "/_ping", None).0 == 200;
            ok
        }),
        "the API did not recover after the connections closed"
    );
}

/// A 100 MB JSON body is refused with 413 at once, without berthd buffering it; a chunked one
/// (no Content-Length) too, once past the cap.
#[test]
fn api_refuses_huge_json_bodies() {
    let d = Daemon::start();
    let hwm0 = vm_kib(d.pid(), "VmHWM:");
    let send = |chunked: bool, total: usize| -> (u16, String) {
        let mut s = UnixStream::connect(&d.sock).expect("connect");
        let head = if chunked {
            "POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
        } else {
            format!("POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n")
        };
        s.write_all(head.as_bytes()).expect("head");
        let mut w = s.try_clone().expect("clone");
        let writer = std::thread::spawn(move || {
            let chunk = vec![b' '; 1 << 20];
            let mut sent = 0;
            while sent < total {
                let r = if chunked {
                    w.write_all(b"100000\r\n")
                        .and_then(|_| w.write_all(&chunk))
                        .and_then(|_| w.write_all(b"\r\n"))
                } else {
                    w.write_all(&chunk)
                };
                if r.is_err() {
                    break; // the server answered and closed: what we want
                }
                sent += chunk.len();
            }
        });
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
            // the whole (small) answer is there once its JSON message is
            if resp.windows(3).any(|w| w == b"\"}\n") {
                break;
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    };
    let big = send(false, 100 << 20).0;
    let chunked = send(true, 64 << 20).0;
    let hwm = vm_kib(d.pid(), "VmHWM:");
    eprintln!("100 MB body: {big}, 64 MB chunked: {chunked}; peak RSS {hwm0} KiB → {hwm} KiB");
    assert_eq!(big, 413, "Content-Length 100 MB");
    assert_eq!(chunked, 413, "chunked 64 MB");
    assert!(
        hwm < hwm0 + 48 * 1024,
        "berthd's peak RSS grew from {hwm0} KiB to {hwm} KiB"
    );
    let (st, text) = send(false, 5 << 20);
    assert_eq!(st, 413, "{text}");
    assert!(text.contains("request body too large"), "{text}");
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
}

// ---------------------------------------------------------------------------------------
// The API socket

/// Runs berthd on `root` with `extra` flags expecting it NOT to start; returns its log.
/// If it does start (the old behaviour), it is stopped and the test fails.
fn berthd_refuses(root: &Path, extra: &[&str]) -> String {
    let sock = root.join("run/berth.sock");
    let log = root.join("berthd.log");
    let mut child = Command::new(bin_dir().join("berthd"))
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("run"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .arg("--pidfile")
        .arg(root.join("berthd.pid"))
        .args(["--bridge", &bridge_name(root), "--dns", "127.0.0.1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn berthd");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if status.is_none() {
        // SAFETY: signalling the daemon we spawned, by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        cleanup_root(root);
        panic!("berthd {extra:?} started where it must refuse: {text}");
    }
    assert!(!status.map(|s| s.success()).unwrap_or(true));
    text
}

/// The socket is 0660 root:<group>; `-G` picks the group, an unknown one is an error, and the
/// default (`berth`) when absent leaves it root:root with a warning.
#[test]
fn socket_mode_and_group() {
    // a group that exists here, not root's
    let group = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[2] != "0" && f[0] != "berth")
        .map(|f| (f[0].to_string(), f[2].parse::<u32>().unwrap_or(0)))
        .expect("a non-root group in /etc/group");
    {
        let d = Daemon::start_args(&["-G", &group.0]);
        let md = std::fs::symlink_metadata(&d.sock).expect("socket");
        assert!(md.file_type().is_socket());
        assert_eq!(md.permissions().mode() & 0o7777, 0o660);
        assert_eq!((md.uid(), md.gid()), (0, group.1));
    }
    {
        let d = Daemon::start();
        let md = std::fs::symlink_metadata(&d.sock).expect("socket");
        assert_eq!(md.permissions().mode() & 0o7777, 0o660);
        let berth_gid = std::fs::read_to_string("/etc/group")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("berth:")
                    .and_then(|r| r.split(':').nth(1))
                    .and_then(|g| g.parse::<u32>().ok())
            });
        match berth_gid {
            Some(g) => assert_eq!(md.gid(), g),
            None => {
                assert_eq!((md.uid(), md.gid()), (0, 0));
                assert!(d.log().contains("group berth not found"), "{}", d.log());
            }
        }
    }
    let root = tmpdir("nogroup");
    let log = berthd_refuses(&root, &["-G", "nosuchgroup-bt"]);
    assert!(log.contains("group nosuchgroup-bt not found"), "{log}");
    cleanup_root(&root);
}

/// A symlink (or any file but a socket) at the socket path is never followed nor replaced.
#[test]
fn socket_path_symlink_is_refused() {
    let root = tmpdir("socklink");
    std::fs::create_dir_all(root.join("run")).expect("run dir");
    let victim = root.join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let sock = root.join("run/berth.sock");
    std::os::unix::fs::symlink(&victim, &sock).expect("symlink");
    let log = berthd_refuses(&root, &[]);
    assert!(log.contains("symbolic link"), "{log}");
    let md = std::fs::symlink_metadata(&sock).expect("still there");
    assert!(md.file_type().is_symlink(), "the symlink was replaced");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let victim_md = std::fs::metadata(&victim).expect("victim");
    assert_eq!(victim_md.permissions().mode() & 0o777, 0o644);

    std::fs::remove_file(&sock).expect("rm link");
    std::fs::write(&sock, "a file\n").expect("file");
    let log = berthd_refuses(&root, &[]);
    assert!(log.contains("not a socket"), "{log}");
    std::fs::remove_file(&sock).expect("rm file");

    // with the path clear, the daemon starts
    let d = Daemon::start_on(&root);
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
}

/// berthd raises its soft descriptor limit to the hard one; containers keep the limit the
/// daemon was started with (as they would have without the raise).
#[test]
fn daemon_raises_its_descriptor_limit_not_the_containers() {
    let d = Daemon::start_with(&[], |cmd| {
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 4096,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["4096", "4096"], "{line}");
    d.load_busybox();
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "sh", "-c", "ulimit -n"])
            .trim(),
        "256"
    );
}
