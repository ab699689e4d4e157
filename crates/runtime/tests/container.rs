//! Root-only tests of real containers. `harness = false`: the runtime clones from the
//! calling process, which must be single-threaded, so the cases run sequentially in `main`.

use berth_runtime::{create, freeze, remove_cgroups, stats, update_resources, Error, Stdio};
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "hostname", "ls", "ps", "true", "false", "sleep", "wc", "touch", "id",
    "pwd", "ip", "grep",
];

fn rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
}

fn spec(
    root: &Path,
    args: &[&str],
    cg: &str,
    extra_mounts: serde_json::Value,
    patch: &dyn Fn(&mut serde_json::Value),
) -> oci_spec::runtime::Spec {
    let mut mounts = serde_json::json!([
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}
    ]);
    if let (Some(m), Some(e)) = (mounts.as_array_mut(), extra_mounts.as_array()) {
        m.extend(e.iter().cloned());
    }
    let v = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": root, "readonly": false},
        "hostname": "berthtest",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        },
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cg,
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    let mut v = v;
    patch(&mut v);
    serde_json::from_value(v).unwrap()
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

fn cg_exists(cg: &str) -> bool {
    Path::new("/sys/fs/cgroup/memory")
        .join(cg.trim_start_matches('/'))
        .exists()
        || Path::new("/sys/fs/cgroup/unified")
            .join(cg.trim_start_matches('/'))
            .exists()
}

/// create + start + wait; cleans up its cgroups.
fn run(root: &Path, args: &[&str], extra: serde_json::Value) -> Result<Out, Error> {
    run_patched(root, args, extra, &|_| {})
}

/// `run` with the spec JSON changed by `patch` first.
fn run_patched(
    root: &Path,
    args: &[&str],
    extra: serde_json::Value,
    patch: &dyn Fn(&mut serde_json::Value),
) -> Result<Out, Error> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cg = format!(
        "/berth/rt-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let spec = spec(root, args, &cg, extra, patch);
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let devnull = OwnedFd::from(fs::File::open("/dev/null").unwrap());
    let res = create(
        "t",
        &spec,
        Stdio {
            stdin: devnull,
            stdout: out_w,
            stderr: err_w,
            terminal: false,
        },
    );
    let mut c = match res {
        Ok(c) => c,
        Err(e) => {
            assert!(!cg_exists(&cg), "cgroup left behind after failed create");
            return Err(e);
        }
    };
    assert!(cg_exists(&cg));
    let started = c.start();
    let mut status = 0;
    unsafe { libc::waitpid(c.pid(), &mut status, 0) };
    drop(c);
    let mut stdout = String::new();
    fs::File::from(out_r).read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    fs::File::from(err_r).read_to_string(&mut stderr).unwrap();
    remove_cgroups(&cg).unwrap();
    assert!(!cg_exists(&cg));
    remove_parent_cgroups();
    started?;
    let status = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Out {
        status,
        stdout,
        stderr,
    })
}

/// Best-effort removal of the shared `/berth` parent cgroups the tests may have created
/// (fails harmlessly while another container still uses them).
fn remove_parent_cgroups() {
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Ok(rd) = fs::read_dir(base) {
            for e in rd.flatten() {
                let _ = fs::remove_dir(e.path().join("berth"));
            }
        }
    }
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("container tests need root: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    rootfs(&root);
    let none = serde_json::json!([]);
    let mut passed = 0;

    // PID 1, hostname, only lo, only our processes
    let o = run(
        &root,
        &[
            "sh",
            "-c",
            "echo $$; hostname; cat /proc/net/dev | grep -c :; ps -o pid= | wc -l; ls /dev",
        ],
        none.clone(),
    )
    .unwrap();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "1", "{o:?}", o = o.stdout);
    assert_eq!(lines[1], "berthtest");
    assert_eq!(
        lines[2].trim(),
        "1",
        "only lo in /proc/net/dev: {}",
        o.stdout
    );
    assert!(
        lines[3].trim().parse::<u32>().unwrap() <= 3,
        "ps: {}",
        o.stdout
    );
    for d in ["null", "zero", "urandom", "pts", "shm", "ptmx", "fd"] {
        assert!(
            o.stdout.lines().any(|l| l == d),
            "/dev/{d} missing: {}",
            o.stdout
        );
    }
    assert_eq!(o.status, 0, "{}", o.stderr);
    passed += 1;

    // exit codes and stderr
    let o = run(&root, &["sh", "-c", "echo oops >&2; exit 3"], none.clone()).unwrap();
    assert_eq!((o.status, o.stderr.as_str()), (3, "oops\n"));
    passed += 1;

    // masked and read-only paths; loopback up
    let o = run(&root, &["sh", "-c", "cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ostype || echo ro; ip link"], none.clone()).unwrap();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(&lines[..3], &["0", "0", "ro"], "{}", o.stdout);
    assert!(
        o.stdout.contains("lo:") && o.stdout.contains("UP"),
        "{}",
        o.stdout
    );
    passed += 1;

    // not found in PATH
    match run(&root, &["nosuch"], none.clone()) {
        Err(Error::Exec(m)) => {
            assert_eq!(m, "exec: \"nosuch\": executable file not found in $PATH")
        }
        other => panic!("{:?}", other.map(|o| o.stdout)),
    }
    passed += 1;
    match run(&root, &["/etc"], none.clone()) {
        Err(Error::Exec(m)) => assert!(m.contains("permission denied"), "{m}"),
        other => panic!("{:?}", other.map(|o| o.stdout)),
    }
    passed += 1;

    // read-only bind mount, through a symlinked destination that must stay inside root
    let host = dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "hello\n").unwrap();
    std::os::unix::fs::symlink("/../../../../data", root.join("escape")).unwrap();
    let m = serde_json::json!([{"destination": "/escape", "type": "bind", "source": host, "options": ["rbind", "ro"]}]);
    let o = run(
        &root,
        &[
            "sh",
            "-c",
            "cat /data/f; touch /data/g 2>/dev/null || echo rofs",
        ],
        m,
    )
    .unwrap();
    assert_eq!(o.stdout, "hello\nrofs\n");
    assert!(root.join("data").is_dir() && !host.join("g").exists());
    passed += 1;

    passed += caps_and_limits(&root);
    passed += resources_stats_freeze(&root);
    passed += init_and_exec(&root);
    passed += user_namespace(dir.path());
    println!("container tests: {passed} passed");
}

const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing in {out}"))
}

fn caps_and_limits(root: &Path) -> u32 {
    let none = serde_json::json!([]);
    let status = &["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"];
    let mut passed = 0;

    // docker's default set: bounding = effective = permitted = 0xa80425fb
    let o = run_patched(root, status, none.clone(), &|v| {
        v["process"]["capabilities"] = serde_json::json!({
            "bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS
        });
        v["process"]["noNewPrivileges"] = serde_json::json!(true);
    })
    .unwrap();
    for k in ["CapBnd:", "CapEff:", "CapPrm:"] {
        assert_eq!(
            status_field(&o.stdout, k),
            "00000000a80425fb",
            "{}",
            o.stdout
        );
    }
    assert_eq!(status_field(&o.stdout, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&o.stdout, "NoNewPrivs:"), "1");
    passed += 1;

    // privileged: every capability the kernel has
    let last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let all: Vec<&str> = berth_runtime::capability_names()[..=last as usize].to_vec();
    // all the kernel has, as far as this test process holds them itself
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let full = status_field(&own, "CapBnd:");
    assert_eq!(
        u64::from_str_radix(&full, 16).unwrap() & !((1u64 << (last + 1)) - 1),
        0
    );
    let o = run_patched(root, status, none.clone(), &|v| {
        v["process"]["capabilities"] = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all
        });
    })
    .unwrap();
    assert_eq!(status_field(&o.stdout, "CapBnd:"), full);
    assert_eq!(status_field(&o.stdout, "CapEff:"), full);
    assert_eq!(status_field(&o.stdout, "NoNewPrivs:"), "0");
    passed += 1;

    // a non-root user: nothing effective unless ambient; ambient caps survive exec
    let o = run_patched(root, status, none.clone(), &|v| {
        v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
        v["process"]["capabilities"] = serde_json::json!({
            "bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS,
            "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    })
    .unwrap();
    assert_eq!(
        status_field(&o.stdout, "CapEff:"),
        "0000000000000400",
        "{}",
        o.stdout
    );
    assert_eq!(status_field(&o.stdout, "CapAmb:"), "0000000000000400");
    assert_eq!(status_field(&o.stdout, "CapBnd:"), "00000000a80425fb");
    let o = run_patched(root, &["id"], none.clone(), &|v| {
        v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
        v["process"]["capabilities"] = serde_json::json!({"bounding": DOCKER_CAPS});
    })
    .unwrap();
    assert_eq!(o.stdout, "uid=1000 gid=1000 groups=5\n");
    passed += 1;

    // rlimits
    let o = run_patched(
        root,
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"],
        none.clone(),
        &|v| {
            v["process"]["rlimits"] = serde_json::json!([
                {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
            ]);
        },
    )
    .unwrap();
    assert_eq!(o.stdout, "123\n456\n0\n");
    passed += 1;
    // more than the hard limit allows: a clear error at create
    match run_patched(root, &["true"], none.clone(), &|v| {
        v["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NOFILE", "soft": 100, "hard": u64::MAX - 1}
        ]);
    }) {
        Err(e) => assert!(
            e.to_string()
                .starts_with("setrlimit RLIMIT_NOFILE (soft 100, hard 18446744073709551614): "),
            "{e}"
        ),
        Ok(_) => panic!("setrlimit above nr_open accepted"),
    }
    passed += 1;
    passed
}

fn cgfile(ctrl: &str, cg: &str, f: &str) -> String {
    fs::read_to_string(
        Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join(cg.trim_start_matches('/'))
            .join(f),
    )
    .unwrap_or_else(|e| panic!("{ctrl}/{f}: {e}"))
    .trim()
    .to_string()
}

fn resources_stats_freeze(root: &Path) -> u32 {
    let mut passed = 0;
    let none = serde_json::json!([]);
    let cg = format!("/berth/rt-res-{}", std::process::id());
    let resources = serde_json::json!({
        "memory": {"limit": 64 << 20, "swap": 128 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"},
            {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ]
    });
    let spec = spec(
        root,
        &[
            "sh",
            "-c",
            "head -c 1 /dev/urandom >/dev/null 2>&1 || echo denied; head -c 3 /dev/zero | wc -c; sleep 30",
        ],
        &cg,
        none,
        &|v| v["linux"]["resources"] = resources.clone(),
    );
    let (out_r, out_w) = pipe();
    let devnull = OwnedFd::from(fs::File::open("/dev/null").unwrap());
    let errfd = OwnedFd::from(fs::File::create("/dev/null").unwrap());
    let mut c = create(
        "t",
        &spec,
        Stdio {
            stdin: devnull,
            stdout: out_w,
            stderr: errfd,
            terminal: false,
        },
    )
    .unwrap();
    assert_eq!(
        cgfile("memory", &cg, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            cgfile("memory", &cg, "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
    }
    assert_eq!(cgfile("cpu", &cg, "cpu.shares"), "512");
    assert_eq!(cgfile("cpu", &cg, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgfile("cpu", &cg, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgfile("cpuset", &cg, "cpuset.cpus"), "0");
    assert_eq!(cgfile("pids", &cg, "pids.max"), "50");
    let list = cgfile("devices", &cg, "devices.list");
    assert!(
        list.contains("c 1:3 rwm") && !list.contains("a *:* rwm"),
        "{list}"
    );
    c.start().unwrap();
    let pid = c.pid();
    // wait for the first output: the shell is running
    let mut out = fs::File::from(out_r);
    let mut buf = [0u8; 64];
    let mut got = String::new();
    while !got.ends_with("3\n") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "{got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(got, "denied\n3\n");
    passed += 1;

    // stats of the running container
    // `wc` has printed "3" but may not have exited yet: let the pid count settle first
    let settle = std::time::Instant::now();
    while stats::stats(&cg).unwrap().pids_current > 1
        && settle.elapsed() < std::time::Duration::from_secs(5)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let t = std::time::Instant::now();
    let st = stats::stats(&cg).unwrap();
    let took = t.elapsed();
    eprintln!("stats() took {took:?}");
    assert!(st.cpu_total_ns > 0, "{st:?}");
    assert!(!st.cpu_percpu_ns.is_empty());
    assert!(st.mem_usage > 0 && st.mem_limit == 64 << 20, "{st:?}");
    assert!(st.mem_stats.contains_key("total_rss") || st.mem_stats.contains_key("rss"));
    assert_eq!((st.pids_current, st.pids_limit), (1, 50), "{st:?}");
    assert_eq!(st.oom_kills, 0);
    let pids = stats::pids(&cg).unwrap();
    assert_eq!(pids, [pid]);
    passed += 1;

    // live update: raise memory above the old memsw (memsw first), then lower it again
    let up: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 256 << 20, "swap": 512 << 20},
        "cpu": {"shares": 256},
        "pids": {"limit": 0}
    }))
    .unwrap();
    update_resources(&cg, &up).unwrap();
    assert_eq!(
        cgfile("memory", &cg, "memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(cgfile("cpu", &cg, "cpu.shares"), "256");
    assert_eq!(cgfile("pids", &cg, "pids.max"), "max");
    let down: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 32 << 20, "swap": 48 << 20}
    }))
    .unwrap();
    update_resources(&cg, &down).unwrap();
    assert_eq!(
        cgfile("memory", &cg, "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(stats::stats(&cg).unwrap().pids_limit, 0);
    passed += 1;

    // freeze / thaw
    freeze(&cg, true).unwrap();
    assert_eq!(cgfile("freezer", &cg, "freezer.state"), "FROZEN");
    let state = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        state.contains("State:\tS") || state.contains("State:\tD"),
        "{state}"
    );
    freeze(&cg, false).unwrap();
    assert_eq!(cgfile("freezer", &cg, "freezer.state"), "THAWED");
    passed += 1;

    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    drop(c);
    remove_cgroups(&cg).unwrap();
    assert!(!cg_exists(&cg));
    remove_parent_cgroups();
    passed
}

fn init_and_exec(root: &Path) -> u32 {
    let mut passed = 0;
    let none = serde_json::json!([]);
    let with_init = |v: &mut serde_json::Value| {
        v["annotations"] = serde_json::json!({"io.berth.init": "true"});
    };
    // PID 1 is not the user's command; orphans get reaped; exit code passes through
    let o = run_patched(
        root,
        &[
            "sh",
            "-c",
            "echo $$; (sleep 0.1 &); sleep 0.4; cat /proc/1/comm; ps -o stat= | grep -c Z; exit 7",
        ],
        none.clone(),
        &with_init,
    )
    .unwrap();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "2", "{}", o.stdout);
    assert_ne!(lines[1], "sh");
    assert_eq!(lines[2], "0", "zombie left: {}", o.stdout);
    assert_eq!(o.status, 7);
    passed += 1;
    // exec errors still come before start
    match run_patched(root, &["nosuch"], none.clone(), &with_init) {
        Err(Error::Exec(m)) => assert!(m.contains("executable file not found"), "{m}"),
        other => panic!("{:?}", other.map(|o| o.stdout)),
    }
    passed += 1;

    // a running container under init: SIGTERM reaches sleep (143); exec joins it
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let cg = format!("/berth/rt-exec-{}", std::process::id());
    let sp = spec(root, &["sleep", "30"], &cg, none, &with_init);
    let devnull = || OwnedFd::from(fs::File::open("/dev/null").unwrap());
    let mut c = create(
        "t",
        &sp,
        Stdio {
            stdin: devnull(),
            stdout: devnull(),
            stderr: devnull(),
            terminal: false,
        },
    )
    .unwrap();
    c.start().unwrap();
    let pid = c.pid();
    let proc_json = serde_json::json!({
        "args": ["sh", "-c", "echo $$ $(hostname) $(cat /proc/1/comm); grep CapBnd /proc/self/status; id -u"],
        "env": ["PATH=/bin"], "cwd": "/etc", "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": ["CAP_KILL"]}
    });
    let process: oci_spec::runtime::Process = serde_json::from_value(proc_json).unwrap();
    let (out_r, out_w) = pipe();
    let e = berth_runtime::exec(
        pid,
        &cg,
        &process,
        None,
        Stdio {
            stdin: devnull(),
            stdout: out_w,
            stderr: devnull(),
            terminal: false,
        },
    )
    .unwrap();
    let mut st = 0;
    assert_eq!(unsafe { libc::waitpid(e.pid(), &mut st, 0) }, e.pid());
    assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
    let mut out = String::new();
    fs::File::from(out_r).read_to_string(&mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let first: Vec<&str> = lines[0].split(' ').collect();
    assert!(first[0].parse::<u32>().unwrap() > 2, "{out}");
    assert_eq!(first[1], "berthtest");
    assert_eq!(
        lines[1].split_whitespace().nth(1),
        Some("0000000000000020"),
        "{out}"
    );
    assert_eq!(lines[2], "1000");
    // not found: docker's message, nothing left running
    let mut bad = process.clone();
    bad.set_args(Some(vec!["nosuch".into()]));
    match berth_runtime::exec(
        pid,
        &cg,
        &bad,
        None,
        Stdio {
            stdin: devnull(),
            stdout: devnull(),
            stderr: devnull(),
            terminal: false,
        },
    ) {
        Err(Error::Exec(m)) => {
            assert_eq!(m, "exec: \"nosuch\": executable file not found in $PATH")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("exec of nosuch succeeded"),
    }
    // reap the failed exec child (a child of ours via the subreaper)
    unsafe { libc::waitpid(-1, &mut st, 0) };
    passed += 1;

    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 143,
        "{st:#x}"
    );
    drop(c);
    remove_cgroups(&cg).unwrap();
    remove_parent_cgroups();
    passed += 1;
    passed
}

/// A new user namespace: root inside is 0 there and host uid 200000 outside; what it makes in
/// its rootfs belongs to 200000 on the host; sysfs/proc/mqueue/devpts mount; ro bind works.
fn user_namespace(dir: &Path) -> u32 {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const HOST: u32 = 200000;
    // the path to the rootfs must be traversable by the mapped root (tempdirs are 0700)
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).unwrap();
    let root = dir.join("userns-rootfs");
    rootfs(&root);
    fs::create_dir_all(root.join("data")).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-hR", &format!("{HOST}:{HOST}")])
        .arg(&root)
        .status()
        .unwrap();
    assert!(chown.success());
    let host = dir.join("userns-host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "hostfile\n").unwrap();
    let m = serde_json::json!([{"destination": "/data", "type": "bind", "source": host, "options": ["rbind", "ro", "nosuid"]}]);
    let map = serde_json::json!([{"containerID": 0, "hostID": HOST, "size": 65536}]);
    let o = run_patched(
        &root,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /made; \
             cat /data/f; touch /data/g 2>/dev/null || echo rofs; ls /sys/class/net; ls /dev/null",
        ],
        m,
        &|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] = map.clone();
            v["linux"]["gidMappings"] = map.clone();
        },
    )
    .unwrap();
    assert_eq!(o.status, 0, "{} {}", o.stdout, o.stderr);
    let lines: Vec<String> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], format!("0 {HOST} 65536"), "{}", o.stdout);
    assert_eq!(lines[1], format!("0 {HOST} 65536"), "{}", o.stdout);
    assert_eq!(
        &lines[2..6],
        &["0", "0", "hostfile", "rofs"],
        "{}",
        o.stdout
    );
    assert!(lines.iter().any(|l| l == "lo"), "{}", o.stdout);
    let md = fs::metadata(root.join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (HOST, HOST));
    assert!(!host.join("g").exists());

    // a new user namespace in a network namespace made elsewhere (owned by the host's user
    // namespace): the parent enters it for the clone; sysfs, which cannot be mounted there,
    // is the host's bound read-only
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let netns = format!("/proc/{}/ns/net", holder.id());
    assert!(eventually_differs(&netns));
    let want = fs::read_link(&netns).unwrap();
    let res = run_patched(
        &root,
        &["sh", "-c", "readlink /proc/self/ns/net; id -u; ls /sys/class >/dev/null && echo sys; touch /sys/x 2>/dev/null || echo rosys"],
        serde_json::json!([]),
        &|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network");
            ns.push(serde_json::json!({"type": "network", "path": netns}));
            ns.push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] = map.clone();
            v["linux"]["gidMappings"] = map.clone();
        },
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let o = res.unwrap();
    assert_eq!(
        o.stdout,
        format!("{}\n0\nsys\nrosys\n", want.to_string_lossy()),
        "{}",
        o.stderr
    );
    2
}

/// Until `unshare` has entered its new namespace (the link differs from ours).
fn eventually_differs(ns: &str) -> bool {
    for _ in 0..200 {
        if let (Ok(a), Ok(b)) = (fs::read_link(ns), fs::read_link("/proc/self/ns/net")) {
            if a != b {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}
