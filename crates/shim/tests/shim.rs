//! Runs the real berth-shim binary against busybox containers (root only).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "true", "sleep", "tty", "ls", "head", "tr", "ps", "id", "hostname",
];

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str], tty: bool) -> Bundle {
        Self::with(name, args, tty, |_| {})
    }
    fn with(
        name: &str,
        args: &[&str],
        tty: bool,
        patch: impl Fn(&mut serde_json::Value),
    ) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        let id = format!("shimtest-{}-{name}", std::process::id());
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": root},
            "hostname": "shimtest",
            "process": {
                "terminal": tty,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/"
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}
            ],
            "linux": {
                "cgroupsPath": format!("/berth/{id}"),
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]
            }
        });
        let mut spec = spec;
        patch(&mut spec);
        fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        Bundle { dir, id }
    }
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn cgroup_gone(&self) -> bool {
        !Path::new("/sys/fs/cgroup/memory/berth")
            .join(&self.id)
            .exists()
            && !Path::new("/sys/fs/cgroup/unified/berth")
                .join(&self.id)
                .exists()
    }
}

/// Spawns the shim; returns the first line it prints (READY/ERROR).
fn spawn(b: &Bundle, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
        .args(["--id", &b.id, "--bundle"])
        .arg(b.dir.path())
        .arg("--socket")
        .arg(b.path("shim.sock"))
        .arg("--exit-file")
        .arg(b.path("exit"))
        .arg("--log")
        .arg(b.path("json.log"))
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(child.wait().unwrap().success());
    line
}

fn request(b: &Bundle, cmd: &str) -> String {
    try_request(b, cmd).unwrap()
}

fn try_request(b: &Bundle, cmd: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(b.path("shim.sock"))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn attach(b: &Bundle, flags: &str) -> UnixStream {
    let mut s = UnixStream::connect(b.path("shim.sock")).unwrap();
    s.write_all(format!("ATTACH {flags}\n").as_bytes()).unwrap();
    s
}

/// Parses stdcopy frames into (stream, bytes) pairs, merged per stream.
fn demux(mut data: &[u8]) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        assert_eq!(&data[1..4], &[0, 0, 0]);
        let payload = &data[8..8 + len];
        match data[0] {
            1 => out.extend_from_slice(payload),
            2 => err.extend_from_slice(payload),
            s => panic!("bad stream {s}"),
        }
        data = &data[8 + len..];
    }
    assert!(data.is_empty());
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn wait_gone(b: &Bundle) {
    let t = Instant::now();
    while b.path("shim.sock").exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "shim did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(b.cgroup_gone(), "cgroup left behind");
    remove_parent_cgroups();
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

fn log_lines(b: &Bundle) -> Vec<serde_json::Value> {
    fs::read_to_string(b.path("json.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn output_exit_code_log() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(
        "out",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
    );
    let ready = spawn(&b, &[]);
    assert!(ready.starts_with("READY "), "{ready}");
    let pid: i32 = ready[6..].trim().parse().unwrap();
    assert_eq!(request(&b, "STATE\n"), format!("CREATED {pid}\n"));
    let mut a = attach(&b, "0 1 1");
    std::thread::sleep(Duration::from_millis(20)); // let the shim register the attach
    assert_eq!(request(&b, "START\n"), format!("OK {pid}\n"));
    let mut data = Vec::new();
    a.read_to_end(&mut data).unwrap();
    assert_eq!(demux(&data), ("out\n".to_string(), "err\n".to_string()));
    let wait = fs::read_to_string(b.path("exit")).unwrap();
    assert!(wait.starts_with("3 "), "{wait}");
    let logs = log_lines(&b);
    let mut got: Vec<(String, String)> = logs
        .iter()
        .map(|v| {
            (
                v["log"].as_str().unwrap().into(),
                v["stream"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("err\n".into(), "stderr".into()),
            ("out\n".into(), "stdout".into())
        ]
    );
    assert!(logs[0]["time"].as_str().unwrap().ends_with('Z'));
    wait_gone(&b);
}

#[test]
fn wait_and_kill() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("kill", &["sleep", "100"], false);
    let ready = spawn(&b, &[]);
    let pid: i32 = ready.trim_start_matches("READY ").trim().parse().unwrap();
    // the shim is the container's parent, and not a child of ours
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ppid = |s: &str| -> i32 {
        s.lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let shim = ppid(&status);
    let shim_status = fs::read_to_string(format!("/proc/{shim}/status")).unwrap();
    assert_ne!(ppid(&shim_status), std::process::id() as i32);
    let mut w = UnixStream::connect(b.path("shim.sock")).unwrap();
    w.write_all(b"WAIT\n").unwrap();
    assert_eq!(request(&b, "START\n"), format!("OK {pid}\n"));
    assert_eq!(request(&b, "STATE\n"), format!("RUNNING {pid}\n"));
    if let Some(rss) = shim_status.lines().find(|l| l.starts_with("VmRSS")) {
        eprintln!("shim {rss}");
    }
    assert_eq!(request(&b, "RESIZE 30 100\n"), "OK\n");
    assert_eq!(request(&b, "KILL 9\n"), "OK\n");
    let mut out = String::new();
    w.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("EXITED 137 "), "{out}");
    assert!(fs::read_to_string(b.path("exit"))
        .unwrap()
        .starts_with("137 "));
    wait_gone(&b);
}

#[test]
fn kill_before_start() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("killcreated", &["true"], false);
    assert!(spawn(&b, &[]).starts_with("READY"));
    assert_eq!(request(&b, "KILL 15\n"), "OK\n");
    // The shim may already be on its way out when WAIT arrives (the init dies at once):
    // then, as the engine does, the exit file tells.
    let out = try_request(&b, "WAIT\n").unwrap_or_else(|_| {
        format!(
            "EXITED {}",
            fs::read_to_string(b.path("exit")).unwrap_or_default()
        )
    });
    assert!(out.starts_with("EXITED 143 "), "{out}");
    wait_gone(&b);
}

#[test]
fn tty() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("tty", &["sh", "-c", "echo hi; tty"], true);
    assert!(spawn(&b, &["--tty", "--rows", "40", "--cols", "120"]).starts_with("READY"));
    let mut a = attach(&b, "0 1 1");
    std::thread::sleep(Duration::from_millis(20));
    assert!(request(&b, "START\n").starts_with("OK"));
    let mut data = String::new();
    a.read_to_string(&mut data).unwrap();
    assert_eq!(data, "hi\r\n/dev/pts/0\r\n");
    let logs = log_lines(&b);
    assert_eq!(logs[0]["log"], "hi\r\n");
    assert_eq!(logs[0]["stream"], "stdout");
    assert!(fs::read_to_string(b.path("exit"))
        .unwrap()
        .starts_with("0 "));
    wait_gone(&b);
}

#[test]
fn stdin_once() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("stdin", &["cat"], false);
    assert!(spawn(&b, &["--stdin", "--stdin-once"]).starts_with("READY"));
    let mut a = attach(&b, "1 1 1");
    std::thread::sleep(Duration::from_millis(20));
    assert!(request(&b, "START\n").starts_with("OK"));
    a.write_all(b"hello\nworld\n").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let mut data = Vec::new();
    a.read_to_end(&mut data).unwrap();
    assert_eq!(demux(&data).0, "hello\nworld\n");
    assert!(fs::read_to_string(b.path("exit"))
        .unwrap()
        .starts_with("0 "));
    wait_gone(&b);
}

#[test]
fn half_closed_attach_still_gets_output() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("halfclose", &["sh", "-c", "sleep 0.2; echo late"], false);
    assert!(spawn(&b, &["--stdin"]).starts_with("READY"));
    let mut a = attach(&b, "1 1 1");
    a.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(request(&b, "START\n").starts_with("OK"));
    let mut data = Vec::new();
    a.read_to_end(&mut data).unwrap();
    assert_eq!(demux(&data).0, "late\n");
    wait_gone(&b);
}

#[test]
fn exec_not_found() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("nosuch", &["nosuch"], false);
    let line = spawn(&b, &[]);
    assert_eq!(
        line,
        "ERROR exec: \"nosuch\": executable file not found in $PATH\n"
    );
    wait_gone(&b);
}

#[test]
fn bad_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ERROR unknown flag: --nope\n"
    );
}

/// `cargo test -p berth-shim --release -- --ignored --nocapture bench_true`
#[test]
#[ignore]
fn bench_true() {
    let b = Bundle::new("bench", &["true"], false);
    let mut times = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        assert!(spawn(&b, &[]).starts_with("READY"));
        let mut w = UnixStream::connect(b.path("shim.sock")).unwrap();
        w.write_all(b"WAIT\n").unwrap();
        assert!(request(&b, "START\n").starts_with("OK"));
        let mut out = String::new();
        w.read_to_string(&mut out).unwrap();
        times.push(t.elapsed());
        wait_gone(&b);
    }
    times.sort();
    eprintln!(
        "spawn→READY→START→WAIT of `true`: min {:?} median {:?} p90 {:?}",
        times[0], times[50], times[90]
    );
}

fn exec_req(b: &Bundle, id: &str, args: &[&str], tty: bool, stdin: bool) -> (UnixStream, String) {
    let req = serde_json::json!({
        "id": id,
        "process": {"args": args, "env": ["PATH=/bin"], "cwd": "/", "terminal": tty,
                    "user": {"uid": 0, "gid": 0}},
        "stdin": stdin, "rows": 24, "cols": 80
    });
    let mut s = UnixStream::connect(b.path("shim.sock")).unwrap();
    s.write_all(format!("EXEC {req}\n").as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    (s, String::from_utf8(line).unwrap())
}

fn start_running(b: &Bundle, extra: &[&str]) -> i32 {
    let ready = spawn(b, extra);
    let pid: i32 = ready.trim_start_matches("READY ").trim().parse().unwrap();
    assert_eq!(request(b, "START\n"), format!("OK {pid}\n"));
    pid
}

#[test]
fn exec_pause_update() {
    if !is_root() {
        return;
    }
    let b = Bundle::new("exec", &["sleep", "100"], false);
    let pid = start_running(&b, &[]);
    // non-tty exec with stdin: stdcopy frames, stdin EOF closes its stdin
    let (mut s, ok) = exec_req(
        &b,
        "e1",
        &["sh", "-c", "cat; echo err >&2; hostname; exit 5"],
        false,
        true,
    );
    assert!(ok.starts_with("OK "), "{ok}");
    s.write_all(b"from stdin\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut data = Vec::new();
    s.read_to_end(&mut data).unwrap();
    assert_eq!(
        demux(&data),
        ("from stdin\nshimtest\n".into(), "err\n".into())
    );
    let w = request(&b, "EXECWAIT e1\n");
    assert!(w.starts_with("EXITED 5 "), "{w}");
    // tty exec: the pty is allocated inside the container
    let (mut s, ok) = exec_req(&b, "e2", &["tty"], true, false);
    assert!(ok.starts_with("OK "), "{ok}");
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(request(&b, "EXECWAIT e2\n").starts_with("EXITED 0 "));
    // not found
    let (_, err) = exec_req(&b, "e3", &["nosuch"], false, false);
    assert_eq!(
        err,
        "ERROR exec: \"nosuch\": executable file not found in $PATH"
    );
    assert_eq!(request(&b, "EXECWAIT zzz\n"), "ERROR no such exec\n");
    // an exec still running when the container dies gets its wait answered
    let (_s4, ok) = exec_req(&b, "e4", &["sleep", "100"], false, false);
    assert!(ok.starts_with("OK "), "{ok}");
    // update
    assert_eq!(
        request(
            &b,
            "UPDATE {\"cpu\":{\"shares\":300},\"pids\":{\"limit\":20}}\n"
        ),
        "OK\n"
    );
    let cg = format!("berth/{}", b.id);
    assert_eq!(
        fs::read_to_string(Path::new("/sys/fs/cgroup/pids").join(&cg).join("pids.max")).unwrap(),
        "20\n"
    );
    assert!(request(&b, "UPDATE nope\n").starts_with("ERROR invalid resources"));
    // pause / resume / kill while paused
    assert_eq!(request(&b, "PAUSE\n"), "OK\n");
    assert_eq!(request(&b, "STATE\n"), format!("PAUSED {pid}\n"));
    let (_, err) = exec_req(&b, "e5", &["true"], false, false);
    assert_eq!(err, "ERROR cannot exec in a paused container");
    assert_eq!(request(&b, "RESUME\n"), "OK\n");
    assert_eq!(request(&b, "STATE\n"), format!("RUNNING {pid}\n"));
    assert_eq!(request(&b, "PAUSE\n"), "OK\n");
    let mut w = UnixStream::connect(b.path("shim.sock")).unwrap();
    w.write_all(b"WAIT\n").unwrap();
    let mut w4 = UnixStream::connect(b.path("shim.sock")).unwrap();
    w4.write_all(b"EXECWAIT e4\n").unwrap();
    assert_eq!(request(&b, "KILL 9\n"), "OK\n");
    let mut out = String::new();
    w.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("EXITED 137 "), "{out}");
    let mut out = String::new();
    w4.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("EXITED 137 "), "{out}");
    wait_gone(&b);
}

/// `cargo test -p berth-shim --release -- --ignored --nocapture bench_exec`
#[test]
#[ignore]
fn bench_exec() {
    let b = Bundle::new("benchexec", &["sleep", "100"], false);
    start_running(&b, &[]);
    let mut times = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let id = format!("b{i}");
        let (mut s, ok) = exec_req(&b, &id, &["true"], false, false);
        assert!(ok.starts_with("OK "));
        let mut d = Vec::new();
        s.read_to_end(&mut d).unwrap();
        assert!(request(&b, &format!("EXECWAIT {id}\n")).starts_with("EXITED 0"));
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "EXEC→OK→exit→EXITED of `true`: min {:?} median {:?} max {:?}",
        times[0], times[25], times[49]
    );
    assert_eq!(request(&b, "KILL 9\n"), "OK\n");
    wait_gone(&b);
}

#[test]
fn oom_is_reported() {
    if !is_root() {
        return;
    }
    let b = Bundle::with(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        false,
        |v| {
            v["linux"]["resources"] =
                serde_json::json!({"memory": {"limit": 8 << 20, "swap": 8 << 20}});
        },
    );
    start_running(&b, &[]);
    let out = request(&b, "WAIT\n");
    assert!(
        out.starts_with("EXITED 137 ") && out.ends_with(" oom\n"),
        "{out}"
    );
    let f = fs::read_to_string(b.path("exit")).unwrap();
    assert!(f.starts_with("137 ") && f.ends_with(" oom\n"), "{f}");
    wait_gone(&b);
}

#[test]
fn init_forwards_term() {
    if !is_root() {
        return;
    }
    let b = Bundle::with("init", &["sleep", "100"], false, |v| {
        v["annotations"] = serde_json::json!({"io.berth.init": "true"});
    });
    start_running(&b, &[]);
    let (mut s, ok) = exec_req(&b, "ps", &["ps", "-o", "pid,comm"], false, false);
    assert!(ok.starts_with("OK "), "{ok}");
    let mut d = Vec::new();
    s.read_to_end(&mut d).unwrap();
    let ps = demux(&d).0;
    let pid1 = ps
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(!pid1.contains("sleep"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("2 ") && l.contains("sleep")),
        "{ps}"
    );
    assert_eq!(request(&b, "KILL 15\n"), "OK\n");
    // The shim may already be on its way out when WAIT arrives (the init dies at once):
    // then, as the engine does, the exit file tells.
    let out = try_request(&b, "WAIT\n").unwrap_or_else(|_| {
        format!(
            "EXITED {}",
            fs::read_to_string(b.path("exit")).unwrap_or_default()
        )
    });
    assert!(out.starts_with("EXITED 143 "), "{out}");
    wait_gone(&b);
}

#[test]
fn log_rotation() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ],
        false,
    );
    start_running(&b, &["--log-max-size", "1000", "--log-max-file", "3"]);
    assert!(request(&b, "WAIT\n").starts_with("EXITED 0 "));
    for f in ["json.log", "json.log.1", "json.log.2"] {
        let t = fs::read_to_string(b.path(f)).unwrap();
        assert!(!t.is_empty() && t.len() <= 1000, "{f}: {}", t.len());
    }
    assert!(!b.path("json.log.3").exists());
    assert!(fs::read_to_string(b.path("json.log"))
        .unwrap()
        .contains("line 199"));
    wait_gone(&b);
}
