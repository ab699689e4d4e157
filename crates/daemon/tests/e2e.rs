//! End to end: a real berthd, the berth CLI and the real docker CLI (issue: berth end to end).

mod common;
use common::{eventually, stderr, stdout, Daemon};
use std::process::Command;

#[test]
fn api_ping_version_and_errors() {
    let d = Daemon::start();
    let (st, head, body) = d.http("HEAD", "/_ping", None);
    assert_eq!(st, 200);
    let h = head.to_ascii_lowercase();
    assert!(h.contains("api-version: 1.41"), "{head}");
    assert!(
        h.contains("ostype: linux") && h.contains("docker-experimental: false"),
        "{head}"
    );
    assert!(body.is_empty());
    let (st, _, body) = d.http("GET", "/_ping", None);
    assert_eq!((st, body.as_slice()), (200, &b"OK"[..]));
    let (st, _, body) = d.http("GET", "/v1.41/version", None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["ApiVersion"], "1.41");
    assert_eq!(v["Os"], "linux");
    let (st, _, _) = d.http("GET", "/v1.24/info", None);
    assert_eq!(st, 200);
    let (st, _, body) = d.http("GET", "/v1.99/version", None);
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("too new"));
    let (st, _, body) = d.http("GET", "/nope", None);
    assert_eq!(st, 404);
    assert!(String::from_utf8_lossy(&body).contains("page not found"));
    let (st, _, body) = d.http("POST", "/containers/create", Some("{not json"));
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let (st, _, body) = d.http("GET", "/containers/nosuch/json", None);
    assert_eq!(st, 404);
    assert!(String::from_utf8_lossy(&body).contains("No such container: nosuch"));
}

#[test]
fn load_images_and_inspect() {
    let d = Daemon::start();
    let out = d.ok(&["load", "-i", common::busybox_tar().to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let images = d.ok(&["images"]);
    assert!(
        images.lines().next().unwrap().starts_with("REPOSITORY"),
        "{images}"
    );
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox") && l.contains("latest")),
        "{images}"
    );
    // normalised references resolve to the same image
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
    ] {
        let (st, _, body) = d.http("GET", &format!("/images/{name}/json"), None);
        assert_eq!(st, 200, "{name}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["Id"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(v["Config"]["Cmd"][0], "sh");
        assert_eq!(v["RepoTags"][0], "busybox:latest");
    }
    // loading again is idempotent
    d.load_busybox();
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn load_rejects_garbage_and_keeps_nothing() {
    let d = Daemon::start();
    let o = d.berth_stdin(&["load"], b"this is not a tar archive at all");
    assert!(!o.status.success());
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    let (st, _, body) = d.http("GET", "/images/json", None);
    assert_eq!((st, body.as_slice()), (200, &b"[]\n"[..]));
}

#[test]
fn run_rm_echo_and_exit_codes() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.berth(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
    assert!(
        d.ok(&["ps", "-aq"]).trim().is_empty(),
        "--rm left the container"
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = d.berth(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Unable to find image 'nosuchimage:latest' locally"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "-e",
        "A=b c",
        "-w",
        "/tmp",
        "-h",
        "boat",
        "busybox",
        "sh",
        "-c",
        "echo \"$A\" $(pwd) $(hostname)",
    ]);
    assert_eq!(stdout(&o), "b c /tmp boat\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]);
    assert_eq!(stdout(&o), "from entrypoint\n", "{}", stderr(&o));
    let o = d.berth_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"hello stdin\n");
    assert_eq!(stdout(&o), "hello stdin\n", "{}", stderr(&o));
}

#[test]
fn isolation_pid1_hostname_namespaces() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&["run", "-d", "--name", "iso", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$; hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1; ps -o pid,comm",
    ]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1].len(), 12, "{out}");
    // its own network namespace: loopback and its end of the default bridge
    let mut links = lines[2..4].to_vec();
    links.sort_unstable();
    assert_eq!(links, ["eth0", "lo"], "{out}");
    assert_eq!(lines[4].split_whitespace().next(), Some("PID"), "{out}");
    // only the container's own processes: sh exec'd ps as its last command, so ps is PID 1
    assert_eq!(&lines[5..], ["1 ps"], "{out}");
    assert!(!out.contains("berth"), "host processes visible: {out}");
    // the host pid from inspect enters the same namespaces (nsenter)
    let info = d.inspect("iso");
    let pid = info["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 1);
    assert_eq!(info["State"]["Status"], "running");
    let o = Command::new("nsenter")
        .args([
            "--target",
            &pid.to_string(),
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "hostname",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), &id[..12]);
    // the container's cgroup exists
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("/berth/{id}")), "{cg}");
    d.ok(&["rm", "-f", "iso"]);
    assert!(eventually(5, || !std::path::Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    for ctrl in ["memory", "pids", "cpu"] {
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/{ctrl}/berth/{id}")).exists(),
            "cgroup {ctrl} left"
        );
    }
}

#[test]
fn rw_layer_is_the_containers_own() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rw1",
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile; rm /bin/vi; sleep 300",
    ]);
    let info = d.inspect("rw1");
    let upper = info["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    let lower = info["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(5, || std::path::Path::new(&upper).join("newfile").exists()),
        "write not in upper dir {upper}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{upper}/newfile")).unwrap(),
        "data\n"
    );
    for l in lower.split(':') {
        assert!(
            !std::path::Path::new(l).join("newfile").exists(),
            "write leaked into image layer {l}"
        );
    }
    assert!(
        lower
            .split(':')
            .any(|l| std::path::Path::new(l).join("bin/vi").exists()),
        "image lost a file"
    );
    // a new container does not see the other's change
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ls /newfile; ls /bin/vi",
    ]);
    assert!(
        stdout(&o).contains("/bin/vi") && !stdout(&o).contains("/newfile\n"),
        "{}",
        stdout(&o)
    );
    d.ok(&["rm", "-f", "rw1"]);
    assert!(
        !std::path::Path::new(&upper).exists(),
        "RW layer left after rm"
    );
    for l in lower.split(':') {
        assert!(
            std::path::Path::new(l).exists(),
            "image layer removed with the container"
        );
    }
}

#[test]
fn ps_logs_stop_kill_rm() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "lg",
            "busybox",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; sleep 300",
        ])
        .trim()
        .to_string();
    let ps = d.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains("lg") && ps.contains("Up "),
        "{ps}"
    );
    assert!(eventually(5, || d.berth(&["logs", "lg"]).stdout == b"out1\nout2\n"));
    let o = d.berth(&["logs", "lg"]);
    assert_eq!(stderr(&o), "err1\n");
    // json-file log is docker's format
    let log = std::fs::read_to_string(d.root.join(format!("data/containers/{id}/{id}-json.log")))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out1\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // rm of a running container is refused
    let o = d.berth(&["rm", "lg"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("You cannot remove a running container"),
        "{}",
        stderr(&o)
    );
    // stop: sh as PID 1 ignores TERM, so it is killed after the timeout
    d.ok(&["stop", "-t", "1", "lg"]);
    let info = d.inspect("lg");
    assert_eq!(info["State"]["Status"], "exited");
    assert_eq!(info["State"]["ExitCode"], 137);
    assert!(d.ok(&["ps"]).lines().count() == 1);
    assert!(d.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert!(
        d.ok(&["logs", "lg"]).contains("out2"),
        "logs of a stopped container"
    );
    d.ok(&["start", "lg"]);
    assert_eq!(d.inspect("lg")["State"]["Status"], "running");
    d.ok(&["kill", "lg"]);
    assert!(eventually(5, || d.inspect("lg")["State"]["Status"] == "exited"));
    let o = d.berth(&["kill", "lg"]);
    assert!(
        !o.status.success() && stderr(&o).contains("is not running"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "lg"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    let o = d.berth(&["rm", "lg"]);
    assert!(
        stderr(&o).contains("No such container: lg"),
        "{}",
        stderr(&o)
    );
    // names clash
    d.ok(&["create", "--name", "dup", "busybox"]);
    let o = d.berth(&["create", "--name", "dup", "busybox"]);
    assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
}

#[test]
fn wait_answers_headers_at_once_and_body_at_exit() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&["create", "busybox", "sh", "-c", "sleep 1; exit 4"])
        .trim()
        .to_string();
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    write!(s, "POST /v1.41/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut head = [0u8; 512];
    let n = s.read(&mut head).unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "headers must come before start"
    );
    let t0 = std::time::Instant::now();
    d.ok(&["start", &id]);
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&rest).contains("StatusCode") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(t0.elapsed() >= std::time::Duration::from_millis(800));
    assert!(
        String::from_utf8_lossy(&rest).contains("\"StatusCode\":4"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn daemon_kill9_loses_nothing() {
    let mut d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); echo line$i; sleep 0.02; done",
        ])
        .trim()
        .to_string();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let d = d.restarted(&[]);
    let ps = d.ok(&["ps"]);
    assert!(ps.contains("ticker") && !ps.contains("quitter"), "{ps}");
    let q = d.inspect("quitter");
    assert_eq!(q["State"]["Status"], "exited");
    assert_eq!(q["State"]["ExitCode"], 7);
    let t = d.inspect("ticker");
    assert_eq!(t["State"]["Status"], "running");
    assert_eq!(t["Id"], id.as_str());
    d.ok(&["stop", "-t", "1", "ticker"]);
    let logs = d.ok(&["logs", "ticker"]);
    let nums: Vec<u32> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("line")?.parse().ok())
        .collect();
    assert!(nums.len() > 50, "too few lines: {}", nums.len());
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n as usize, i + 1, "a log line is missing around {n}");
    }
    d.ok(&["rm", "ticker", "quitter"]);
}

#[test]
fn docker_cli_works_against_berthd() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(o) = d.docker(&["version"]) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1.41"), "{}", stdout(&o));
    let o = d.docker(&["images"]).unwrap();
    assert!(stdout(&o).contains("busybox"), "{}", stdout(&o));
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hi"]).unwrap();
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    let o = d
        .docker(&["run", "--rm", "busybox", "sh", "-c", "exit 9"])
        .unwrap();
    assert_eq!(o.status.code(), Some(9));
    let o = d
        .docker(&[
            "run",
            "-d",
            "--name",
            "dk",
            "busybox",
            "sh",
            "-c",
            "echo from-docker; sleep 300",
        ])
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["ps"]).unwrap();
    assert!(stdout(&o).contains("dk"), "{}", stdout(&o));
    assert!(eventually(5, || stdout(
        &d.docker(&["logs", "dk"]).unwrap()
    ) == "from-docker\n"));
    let o = d.docker(&["stop", "-t", "1", "dk"]).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["rm", "-f", "dk"]).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "nosuch"])
        .unwrap();
    assert!(!o.status.success());
}

/// Runs `cmd` in a detached tmux session, types `keys`, and returns what the command wrote to
/// `rcfile` (its exit code) plus the screen.
fn tmux_session(name: &str, cmd: &str, keys: &[&str], d: &Daemon) -> (String, String) {
    let rcfile = d.root.join(format!("{name}.rc"));
    let full = format!("{cmd}; echo $? > {}", rcfile.display());
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            &full,
        ])
        .status();
    if !matches!(ok, Ok(s) if s.success()) {
        return (String::new(), "tmux unavailable".into());
    }
    let pane = || {
        stdout(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", name])
                .output()
                .unwrap(),
        )
    };
    let prompts = || pane().matches("/ #").count();
    // keys typed before the shell is up would be echoed by the tty, not run: wait for its
    // prompt, then after each line for the next prompt (or the end)
    eventually(20, || prompts() > 0);
    let mut screen = String::new();
    for k in keys {
        let before = prompts();
        Command::new("tmux")
            .args(["send-keys", "-t", name, k, "Enter"])
            .status()
            .unwrap();
        eventually(10, || prompts() > before || rcfile.exists());
        screen.push_str(&pane());
    }
    eventually(10, || rcfile.exists());
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", name])
        .status();
    (
        std::fs::read_to_string(&rcfile)
            .unwrap_or_default()
            .trim()
            .to_string(),
        screen,
    )
}

#[test]
fn interactive_tty_with_berth_and_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let berth = common::bin_dir().join("berth");
    let (rc, screen) = tmux_session(
        &format!("bt{}", std::process::id()),
        &format!(
            "{} -H {} run -it --rm busybox sh",
            berth.display(),
            d.host()
        ),
        &["echo $((6*7)) $$; stty size", "exit 5"],
        &d,
    );
    if screen == "tmux unavailable" {
        eprintln!("skipping: tmux not installed");
        return;
    }
    assert!(
        screen.contains("42 1"),
        "rc={rc} screen={screen} log={}",
        d.log()
    );
    assert!(screen.contains("30 100"), "tty size not passed: {screen}");
    assert_eq!(rc, "5", "{screen}");
    if std::path::Path::new("/usr/local/bin/docker").exists() {
        let (rc, screen) = tmux_session(
            &format!("dk{}", std::process::id()),
            &format!(
                "DOCKER_HOST={} DOCKER_CONFIG={} /usr/local/bin/docker run -it --rm busybox sh",
                d.host(),
                d.root.join("dc").display()
            ),
            &["echo $((6*7)) $$", "exit 6"],
            &d,
        );
        assert!(screen.contains("42 1"), "{screen}");
        assert_eq!(rc, "6", "{screen}");
    }
}

#[test]
fn detach_with_ctrl_p_ctrl_q_then_attach_again() {
    let pane = |session: &str| {
        stdout(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", session])
                .output()
                .unwrap(),
        )
    };
    let d = Daemon::start();
    d.load_busybox();
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipping: tmux not installed");
        return;
    }
    let berth = common::bin_dir().join("berth");
    let s1 = format!("dt{}", std::process::id());
    let rc1 = d.root.join("rc1");
    let cmd = format!(
        "{} -H {} run -it --name t1 busybox sh; echo $? > {}; sleep 2",
        berth.display(),
        d.host(),
        rc1.display()
    );
    Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &s1,
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ])
        .status()
        .unwrap();
    // keys typed before the CLI makes the terminal raw go to the line
    // discipline (which eats ^Q as XON): wait for the shell's prompt first
    assert!(
        eventually(20, || pane(&s1).contains("/ #")),
        "no prompt from run -it: {}",
        pane(&s1)
    );
    Command::new("tmux")
        .args(["send-keys", "-t", &s1, "C-p", "C-q"])
        .status()
        .unwrap();
    assert!(eventually(5, || rc1.exists()), "run -it did not detach");
    assert_eq!(std::fs::read_to_string(&rc1).unwrap().trim(), "0");
    assert_eq!(
        d.inspect("t1")["State"]["Status"],
        "running",
        "detaching stopped the container"
    );
    let s2 = format!("at{}", std::process::id());
    let rc2 = d.root.join("rc2");
    let cmd = format!(
        "{} -H {} attach t1; echo $? > {}; sleep 2",
        berth.display(),
        d.host(),
        rc2.display()
    );
    Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &s2,
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ])
        .status()
        .unwrap();
    // attach prints nothing until the shell answers: press Enter until a prompt shows
    assert!(
        eventually(20, || {
            Command::new("tmux")
                .args(["send-keys", "-t", &s2, "Enter"])
                .status()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            pane(&s2).contains("/ #")
        }),
        "attach shows no prompt: {}",
        pane(&s2)
    );
    Command::new("tmux")
        .args(["send-keys", "-t", &s2, "echo again$((1+1))", "Enter"])
        .status()
        .unwrap();
    eventually(10, || pane(&s2).contains("again2"));
    let screen = pane(&s2);
    Command::new("tmux")
        .args(["send-keys", "-t", &s2, "exit 7", "Enter"])
        .status()
        .unwrap();
    assert!(
        eventually(5, || rc2.exists()),
        "attach did not end: {screen}"
    );
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &s1])
        .status();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &s2])
        .status();
    assert!(screen.contains("again2"), "{screen}");
    assert_eq!(std::fs::read_to_string(&rc2).unwrap().trim(), "7");
    assert_eq!(d.inspect("t1")["State"]["ExitCode"], 7);
}
