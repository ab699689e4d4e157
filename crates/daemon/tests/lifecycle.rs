//! The container lifecycle (issue: exec, attach, logs, inspect, top, stats, pause, limits,
//! restart policies, events), driven through the real docker CLI where it is installed and
//! through the raw API.

mod common;
use common::{docker_ok, eventually, stderr, stdout, Daemon};
use std::path::Path;
use std::time::{Duration, Instant};

fn cgroup_file(ctrl: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/berth/{id}/{file}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn pause_unpause_rename_restart_kill() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(id) = docker_ok(
        &d,
        &["run", "-d", "--name", "p1", "busybox", "sleep", "300"],
    ) else {
        return;
    };
    let id = id.trim().to_string();
    docker_ok(&d, &["pause", "p1"]);
    assert_eq!(d.inspect("p1")["State"]["Status"], "paused");
    assert_eq!(cgroup_file("freezer", &id, "freezer.state"), "FROZEN");
    let ps = docker_ok(&d, &["ps"]).unwrap();
    assert!(ps.contains("(Paused)"), "{ps}");
    let o = d.docker(&["exec", "p1", "true"]).unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("is paused"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["pause", "p1"]).unwrap();
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    docker_ok(&d, &["unpause", "p1"]);
    assert_eq!(d.inspect("p1")["State"]["Status"], "running");
    assert_eq!(cgroup_file("freezer", &id, "freezer.state"), "THAWED");
    // rename, and the clash message
    docker_ok(
        &d,
        &["run", "-d", "--name", "other", "busybox", "sleep", "300"],
    );
    docker_ok(&d, &["rename", "p1", "p2"]);
    assert_eq!(d.inspect(&id)["Name"], "/p2");
    let o = d.docker(&["rename", "p2", "other"]).unwrap();
    assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
    // restart gives a new process
    let pid0 = d.inspect("p2")["State"]["Pid"].as_i64().unwrap();
    docker_ok(&d, &["restart", "-t", "0", "p2"]);
    let pid1 = d.inspect("p2")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid0, pid1);
    // kill -s and the not-running errors
    docker_ok(&d, &["kill", "-s", "KILL", "p2"]);
    assert!(eventually(5, || d.inspect("p2")["State"]["ExitCode"] == 137));
    let o = d.docker(&["pause", "p2"]).unwrap();
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    // wait prints the code; prune removes stopped containers only
    assert_eq!(docker_ok(&d, &["wait", "p2"]).unwrap().trim(), "137");
    let out = docker_ok(&d, &["container", "prune", "-f"]).unwrap();
    assert!(out.contains(&id), "{out}");
    assert!(docker_ok(&d, &["ps", "-aq"]).unwrap().lines().count() == 1);
    docker_ok(&d, &["rm", "-f", "other"]);
}

#[test]
fn exec_in_running_container() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &["run", "-d", "--name", "ex", "busybox", "sleep", "300"],
    ) else {
        return;
    };
    assert_eq!(
        docker_ok(&d, &["exec", "ex", "echo", "hi"]).unwrap(),
        "hi\n"
    );
    let o = d
        .docker(&["exec", "ex", "sh", "-c", "echo err >&2; exit 3"])
        .unwrap();
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(3), "err\n"));
    let out = docker_ok(
        &d,
        &[
            "exec",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "ex",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u)",
        ],
    )
    .unwrap();
    assert_eq!(out, "1 /tmp 65534\n");
    // same namespaces: the exec sees the container's PID 1 and hostname
    let out = docker_ok(
        &d,
        &[
            "exec",
            "ex",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; hostname",
        ],
    )
    .unwrap();
    let id = d.inspect("ex")["Id"].as_str().unwrap().to_string();
    assert!(
        out.starts_with("sleep 300") && out.contains(&id[..12]),
        "{out}"
    );
    // and the container's cgroup
    let out = docker_ok(&d, &["exec", "ex", "cat", "/proc/self/cgroup"]).unwrap();
    // (dockerd's default cgroup namespace: the host's on v1, where the path shows; a private
    // one on v2, whose root is the container's cgroup)
    let own = format!("/berth/{id}");
    assert!(
        out.lines().all(|l| l.ends_with(&own) || l.ends_with(":/")),
        "exec is in the container's cgroup: {out}"
    );
    // detached exec
    docker_ok(&d, &["exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/bg"]);
    assert!(eventually(5, || docker_ok(
        &d,
        &["exec", "ex", "cat", "/tmp/bg"]
    )
    .unwrap()
        == "bg\n"));
    // stdin
    let mut child = std::process::Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dc"))
        .args(["exec", "-i", "ex", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    assert_eq!(stdout(&child.wait_with_output().unwrap()), "piped\n");
    // not found → 127, and exec on a stopped container → error
    let o = d.docker(&["exec", "ex", "nosuch"]).unwrap();
    assert_eq!(o.status.code(), Some(127), "{}{}", stdout(&o), stderr(&o));
    docker_ok(&d, &["kill", "ex"]);
    // the exit is recorded when the shim reports it (a moment after the signal under load)
    assert!(eventually(10, || d.inspect("ex")["State"]["Running"] == false));
    let o = d.docker(&["exec", "ex", "true"]).unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("is not running"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn logs_options_rotation_and_none_driver() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "lg",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; sleep 300",
        ],
    ) else {
        return;
    };
    assert!(eventually(5, || d
        .docker(&["logs", "lg"])
        .map(|o| stdout(&o).lines().count() == 5)
        .unwrap_or(false)));
    // the shim reads the two pipes separately, so only the total of the tail is fixed
    let o = d.docker(&["logs", "--tail", "2", "lg"]).unwrap();
    assert_eq!(
        stdout(&o).lines().count() + stderr(&o).lines().count(),
        2,
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = d.docker(&["logs", "lg"]).unwrap();
    assert_eq!(stdout(&o), "out1\nout2\nout3\nout4\nout5\n");
    assert_eq!(stderr(&o), "err1\nerr2\nerr3\nerr4\nerr5\n");
    let o = d.docker(&["logs", "-t", "lg"]).unwrap();
    assert!(
        stdout(&o).lines().all(|l| l.contains("Z out")),
        "{}",
        stdout(&o)
    );
    let o = d
        .docker(&["logs", "--since", "1h", "--until", "1s", "lg"])
        .unwrap();
    assert!(
        stdout(&o).is_empty() || stdout(&o).contains("out1"),
        "until in the past filters recent lines"
    );
    let o = d
        .docker(&["logs", "--until", "2000-01-01T00:00:00Z", "lg"])
        .unwrap();
    assert_eq!(stdout(&o), "");
    // follow ends when the container stops
    let t0 = Instant::now();
    let follower = {
        let host = d.host();
        let cfg = d.root.join("dc");
        std::thread::spawn(move || {
            std::process::Command::new("/usr/local/bin/docker")
                .env("DOCKER_HOST", host)
                .env("DOCKER_CONFIG", cfg)
                .args(["logs", "-f", "lg"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    docker_ok(&d, &["kill", "lg"]);
    let o = follower.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(stdout(&o).contains("out5"));
    // rotation keeps at most max-file files of about max-size each
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "rot",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line$i; done",
        ],
    );
    assert_eq!(docker_ok(&d, &["wait", "rot"]).unwrap().trim(), "0");
    let id = d.inspect("rot")["Id"].as_str().unwrap().to_string();
    let log = d.root.join(format!("data/containers/{id}/{id}-json.log"));
    assert!(
        Path::new(&format!("{}.1", log.display())).exists(),
        "no rotated file"
    );
    assert!(
        !Path::new(&format!("{}.2", log.display())).exists(),
        "more files than max-file"
    );
    assert!(std::fs::metadata(&log).unwrap().len() <= 1100);
    let out = docker_ok(&d, &["logs", "rot"]).unwrap();
    assert!(
        out.ends_with("line200\n") && !out.contains("line1\n"),
        "{out}"
    );
    // --log-driver none: no log, and logs says so
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "nolog",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "x",
        ],
    );
    let o = d.docker(&["logs", "nolog"]).unwrap();
    assert!(
        stderr(&o).contains("does not support reading"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_templates_ps_filters_top_stats() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run", "-d", "--name", "t1", "-l", "tier=web", "busybox", "sleep", "300",
        ],
    ) else {
        return;
    };
    let _ = d.docker(&["run", "--name", "t2", "busybox", "sh", "-c", "exit 3"]);
    std::thread::sleep(Duration::from_millis(20)); // distinct creation times for since/before
    let _ = d.docker(&["run", "--name", "t3", "busybox", "sh", "-c", "exit 3"]);
    let pid = docker_ok(&d, &["inspect", "-f", "{{.State.Pid}}", "t1"]).unwrap();
    assert!(pid.trim().parse::<i32>().unwrap() > 1);
    let cfg = docker_ok(&d, &["inspect", "-f", "{{json .Config.Labels}}", "t1"]).unwrap();
    assert_eq!(cfg.trim(), r#"{"tier":"web"}"#);
    let env = docker_ok(
        &d,
        &["inspect", "-f", "{{range .Config.Env}}{{.}};{{end}}", "t1"],
    )
    .unwrap();
    assert!(env.starts_with("PATH="), "{env}");
    let o = d.docker(&["inspect", "-f", "{{.Nope}}", "t1"]).unwrap();
    assert!(!o.status.success());
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = docker_ok(&d, &a)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&[]), ["t1"]);
    assert_eq!(names(&["-a", "-f", "status=exited"]), ["t2", "t3"]);
    assert_eq!(names(&["-a", "-f", "exited=3"]), ["t2", "t3"]);
    assert_eq!(names(&["-a", "-f", "label=tier=web"]), ["t1"]);
    assert_eq!(names(&["-a", "-f", "name=t2"]), ["t2"]);
    assert_eq!(names(&["-a", "-f", "ancestor=busybox"]).len(), 3);
    assert_eq!(names(&["-a", "-f", "since=t1"]), ["t2", "t3"]);
    assert_eq!(names(&["-a", "-f", "before=t3"]), ["t1", "t2"]);
    assert_eq!(names(&["-l"]), ["t3"]);
    assert_eq!(names(&["-n", "2"]), ["t2", "t3"]);
    let table = docker_ok(
        &d,
        &["ps", "-a", "--format", "table {{.Names}}\t{{.Status}}"],
    )
    .unwrap();
    assert!(table.starts_with("NAMES"), "{table}");
    assert!(table.contains("Exited (3)"), "{table}");
    let sized = docker_ok(&d, &["ps", "-s"]).unwrap();
    assert!(sized.contains("virtual"), "{sized}");
    // top
    let top = docker_ok(&d, &["top", "t1"]).unwrap();
    assert!(top.contains("sleep 300") && top.contains("PID"), "{top}");
    assert_eq!(
        top.lines().count(),
        2,
        "only the container's process: {top}"
    );
    let top = docker_ok(&d, &["top", "t1", "-o", "pid,comm"]).unwrap();
    assert!(top.contains("sleep"), "{top}");
    // stats
    let t0 = Instant::now();
    let st = docker_ok(&d, &["stats", "--no-stream", "t1"]).unwrap();
    eprintln!("stats --no-stream took {:?}", t0.elapsed());
    assert!(st.contains("t1") && st.contains('%'), "{st}");
    let (status, _, body) = d.http("GET", "/containers/t1/stats?stream=0", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(v["pids_stats"]["current"], 1);
}

#[test]
fn limits_and_oom() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(id) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "lim",
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
            "--ulimit",
            "nofile=100:200",
            "--shm-size",
            "2m",
            "busybox",
            "sleep",
            "300",
        ],
    ) else {
        return;
    };
    let id = id.trim().to_string();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        (32 * 1024 * 1024).to_string()
    );
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
    assert_eq!(cgroup_file("cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "20");
    let out = docker_ok(
        &d,
        &[
            "exec",
            "lim",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1",
        ],
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["100", "200"], "{out}");
    assert!(lines[2].contains("2048"), "{out}");
    // docker's default capabilities only
    let caps = docker_ok(&d, &["exec", "lim", "grep", "CapEff", "/proc/self/status"]).unwrap();
    assert!(caps.contains("00000000a80425fb"), "{caps}");
    // a live update
    docker_ok(
        &d,
        &[
            "update",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--pids-limit",
            "30",
            "lim",
        ],
    );
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "30");
    assert_eq!(d.inspect("lim")["HostConfig"]["Memory"], 64 * 1024 * 1024);
    // OOM
    let o = d
        .docker(&[
            "run",
            "--name",
            "oom",
            "-m",
            "8m",
            "--memory-swap",
            "8m",
            "busybox",
            "sh",
            "-c",
            "x=a; while true; do x=$x$x; done",
        ])
        .unwrap();
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(d.inspect("oom")["State"]["OOMKilled"], true);
    // privileged gets every capability
    let caps = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    )
    .unwrap();
    assert!(!caps.contains("a80425fb"), "{caps}");
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "of",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ],
    ) else {
        return;
    };
    assert!(
        eventually(20, || {
            let v = d.inspect("of");
            v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
        }),
        "{}",
        d.inspect("of")
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "al",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2",
        ],
    );
    assert!(eventually(20, || d.inspect("al")["RestartCount"]
        .as_u64()
        .unwrap_or(0)
        >= 3));
    docker_ok(&d, &["stop", "-t", "1", "al"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_ne!(
        d.inspect("al")["State"]["Status"],
        "running",
        "a stopped 'always' container came back"
    );
    let o = d
        .docker(&["run", "--rm", "--restart", "always", "busybox", "true"])
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let (st, _, body) = d.http("POST", "/containers/create", Some(r#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#));
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let ev = docker_ok(
        &d,
        &[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "container=al",
            "--filter",
            "event=restart",
        ],
    )
    .unwrap_or_default();
    let _ = ev; // restarts by policy are `start` events in docker
}

#[test]
fn policies_survive_daemon_restart() {
    let mut d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "alw",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "300",
        ],
    ) else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "uns",
            "--restart",
            "unless-stopped",
            "busybox",
            "sleep",
            "300",
        ],
    );
    docker_ok(&d, &["stop", "-t", "0", "alw", "uns"]);
    d.stop_daemon();
    let d = d.restarted(&[]);
    assert!(
        eventually(5, || d.inspect("alw")["State"]["Status"] == "running"),
        "always comes back on daemon start"
    );
    assert_eq!(
        d.inspect("uns")["State"]["Status"],
        "exited",
        "unless-stopped stays stopped"
    );
}

#[test]
fn health_checks() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "hc",
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "300",
        ],
    ) else {
        return;
    };
    assert!(
        eventually(10, || d.inspect("hc")["State"]["Health"]["Status"]
            == "unhealthy"),
        "{}",
        d.inspect("hc")["State"]
    );
    assert!(docker_ok(&d, &["ps"]).unwrap().contains("(unhealthy)"));
    docker_ok(&d, &["exec", "hc", "touch", "/tmp/ok"]);
    assert!(eventually(10, || d.inspect("hc")["State"]["Health"]
        ["Status"]
        == "healthy"));
    let h = d.inspect("hc");
    assert!(!h["State"]["Health"]["Log"].as_array().unwrap().is_empty());
    assert_eq!(h["State"]["Health"]["FailingStreak"], 0);
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "nohc",
            "--no-healthcheck",
            "busybox",
            "sleep",
            "300",
        ],
    );
    assert!(d.inspect("nohc")["State"]["Health"].is_null());
}

#[test]
fn init_labels_env_file_user() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(out) = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
        ],
    ) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines[0].starts_with("sh "), "PID 1 is the init: {out}");
    assert_ne!(lines[1], "1", "{out}");
    // under --init, TERM ends a sleep at once (sleep as PID 1 would ignore it)
    docker_ok(
        &d,
        &[
            "run", "-d", "--name", "in", "--init", "busybox", "sleep", "300",
        ],
    );
    let t0 = Instant::now();
    docker_ok(&d, &["stop", "in"]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop waited for the timeout"
    );
    assert_eq!(d.inspect("in")["State"]["ExitCode"], 143);
    // env file, label file, user
    let envf = d.root.join("env");
    std::fs::write(&envf, "# comment\nFOO=bar\nEMPTY=\n").unwrap();
    let labf = d.root.join("labels");
    std::fs::write(&labf, "a=1\nb=2\n").unwrap();
    let out = docker_ok(
        &d,
        &[
            "run",
            "--name",
            "usr1",
            "--env-file",
            envf.to_str().unwrap(),
            "--label-file",
            labf.to_str().unwrap(),
            "-u",
            "nobody:nogroup",
            "busybox",
            "sh",
            "-c",
            "echo $FOO; id -u; id -g",
        ],
    );
    let _ = out;
    let o = d.docker(&["logs", "usr1"]).unwrap();
    let out = stdout(&o);
    assert!(out.starts_with("bar\n65534\n"), "{out}");
    assert_eq!(d.inspect("usr1")["Config"]["Labels"]["b"], "2");
}

#[test]
fn events_stream_and_filters() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(&d, &["run", "--rm", "--name", "ev", "busybox", "true"]) else {
        return;
    };
    // `--until 0s` is whole seconds: let the events' second pass (docker behaves the same)
    std::thread::sleep(Duration::from_millis(1100));
    let out = docker_ok(
        &d,
        &[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "container=ev",
            "--format",
            "{{.Action}}",
        ],
    )
    .unwrap();
    let actions: Vec<&str> = out.lines().collect();
    assert_eq!(
        actions,
        ["create", "attach", "start", "die", "destroy"],
        "{out}"
    );
    let (st, _, body) = d.http(
        "GET",
        &format!(
            "/events?since=0&until={}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1
        ),
        None,
    );
    assert_eq!(st, 200);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&body).lines().next().unwrap()).unwrap();
    assert_eq!(first["Type"], "container");
    assert_eq!(first["Actor"]["Attributes"]["name"], "ev");
    assert_eq!(first["status"], "create");
}

#[test]
fn thirty_containers_survive_three_daemon_kills() {
    let mut d = Daemon::start();
    d.load_busybox();
    let mut ids = Vec::new();
    for i in 0..30 {
        let policy = if i % 10 == 0 { "always" } else { "no" };
        let name = format!("load{i}");
        let args = [
            "run",
            "-d",
            "--name",
            &name,
            "--restart",
            policy,
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo l$i; sleep 0.05; done",
        ];
        let Some(id) = docker_ok(&d, &args) else {
            return;
        };
        ids.push(id.trim().to_string());
    }
    let root = d.root.clone();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        d.kill9();
        std::thread::sleep(Duration::from_millis(300));
        if round == 1 {
            // kill one shim while the daemon is down: that container must be reported exited
            let shim_pid = find_shim(&ids[5]);
            // SAFETY: a shim of this test's daemon, found by its container ID.
            unsafe { libc::kill(shim_pid, libc::SIGKILL) };
        }
        std::mem::forget(d);
        d = Daemon::start_on(&root);
    }
    let ps = d.ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.lines().count(), 30, "{ps}");
    let v = d.inspect(&ids[5]);
    assert_eq!(
        v["State"]["Status"], "exited",
        "container of the killed shim: {}",
        v["State"]
    );
    for (i, id) in ids.iter().enumerate() {
        if i == 5 {
            continue;
        }
        assert_eq!(d.inspect(id)["State"]["Status"], "running", "load{i}");
    }
    for id in ids.iter().take(4) {
        d.ok(&["stop", "-t", "0", id]);
        let logs = d.ok(&["logs", id]);
        let nums: Vec<u32> = logs
            .lines()
            .filter_map(|l| l.strip_prefix('l')?.parse().ok())
            .collect();
        assert!(nums.len() > 20);
        for (k, n) in nums.iter().enumerate() {
            assert_eq!(*n as usize, k + 1, "log line missing in {id}");
        }
    }
}

fn find_shim(id: &str) -> i32 {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = String::from_utf8_lossy(
            &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
        )
        .into_owned();
        if cmd.contains("berth-shim") && cmd.contains(id) {
            return pid;
        }
    }
    panic!("no shim for {id}");
}

/// The same lifecycle through the `berth` CLI itself.
#[test]
fn berth_cli_drives_the_lifecycle() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "w1",
            "--restart",
            "on-failure:2",
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "20",
            "--health-cmd",
            "true",
            "--health-interval",
            "300ms",
            "-l",
            "app=x",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    assert_eq!(
        d.ok(&["exec", "w1", "sh", "-c", "hostname"]).trim(),
        &id[..12]
    );
    assert_eq!(
        d.berth(&["exec", "w1", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    assert_eq!(d.berth(&["exec", "w1", "nosuch"]).status.code(), Some(127));
    assert_eq!(
        d.ok(&[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "w1",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "65534\n/tmp\n"
    );
    d.ok(&["pause", "w1"]);
    let table = d.ok(&["ps", "--format", "table {{.Names}}\t{{.Status}}"]);
    assert!(
        table.starts_with("NAMES") && table.contains("(Paused)"),
        "{table}"
    );
    d.ok(&["unpause", "w1"]);
    d.ok(&["rename", "w1", "w2"]);
    let top = d.ok(&["top", "w2"]);
    assert!(top.contains("sleep 300"), "{top}");
    let stats = d.ok(&["stats", "--no-stream", "w2"]);
    assert!(stats.contains("w2") && stats.contains("32MiB"), "{stats}");
    d.ok(&["update", "--pids-limit", "30", "w2"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidsLimit}} {{json .Config.Labels}}",
            "w2"
        ])
        .trim(),
        r#"30 {"app":"x"}"#
    );
    assert!(eventually(5, || d.ok(&["ps"]).contains("(healthy)")));
    let pid0 = d.inspect("w2")["State"]["Pid"].clone();
    d.ok(&["restart", "-t", "0", "w2"]);
    assert_ne!(d.inspect("w2")["State"]["Pid"], pid0);
    d.ok(&["kill", "w2"]);
    assert_eq!(d.ok(&["wait", "w2"]).trim(), "137");
    std::thread::sleep(Duration::from_millis(1100));
    let ev = d.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    for a in [
        "create", "start", "pause", "unpause", "rename", "kill", "die",
    ] {
        assert!(ev.lines().any(|l| l == a), "{a} missing from {ev}");
    }
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(&id), "{pruned}");
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Processes whose command line is exactly `cmd`.
fn procs_running(cmd: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let c = std::fs::read(e.path().join("cmdline")).ok()?;
            (String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmd).then_some(pid)
        })
        .collect()
}

/// A `--pid host` container has no namespace whose init takes the rest along: `kill` ends
/// every process of the container (its cgroup), and so does its init's exit, as with runc.
/// (critest's HostPID spec left such a container's child running after every run.)
#[test]
fn pid_host_containers_end_with_their_init() {
    let d = Daemon::start();
    d.load_busybox();
    let n = 40000 + std::process::id() % 20000;
    let (child, init) = (format!("sleep {n}"), format!("sleep {}", n + 1));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ph1",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        &format!("{child} & {init}"),
    ]);
    assert!(eventually(5, || !procs_running(&child).is_empty()));
    d.ok(&["kill", "ph1"]);
    assert!(
        eventually(5, || procs_running(&child).is_empty()),
        "the container's child outlived kill: {:?}",
        procs_running(&child)
    );
    let child2 = format!("sleep {}", n + 2);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ph2",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        &format!("{child2} & exec sleep 1"),
    ]);
    assert!(eventually(5, || !procs_running(&child2).is_empty()));
    assert_eq!(d.ok(&["wait", "ph2"]).trim(), "0");
    assert!(
        procs_running(&child2).is_empty(),
        "the container's child outlived its init"
    );
    d.ok(&["rm", "-f", "ph1", "ph2"]);
}

/// A client still connected to a container's old shim (a slow attach or stats reader) keeps
/// that shim alive for a while after the exit; a restart meanwhile starts a new shim on the
/// same socket path. The old one must not take the new one's socket (or cgroup) with it when
/// it goes: the container stays reachable (exec, kill) after the old shim's end.
#[test]
fn a_lingering_old_shim_leaves_the_restarted_containers_socket() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .ok(&["run", "-d", "--name", "linger", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let sock = d.root.join("run/containers").join(&id).join("shim.sock");
    // an idle client of the first shim: it sends nothing and never hangs up
    let idle = std::os::unix::net::UnixStream::connect(&sock).expect("connect to the shim");
    let pid0 = d.inspect("linger")["State"]["Pid"].as_i64().unwrap();
    let (code, _, body) = d.http("POST", "/containers/linger/restart?t=0", None);
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&body));
    let pid1 = d.inspect("linger")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid0, pid1);
    // the old shim waits up to 5 s for its clients before it goes
    std::thread::sleep(Duration::from_secs(7));
    drop(idle);
    assert!(
        sock.exists(),
        "the restarted container's shim socket is gone"
    );
    let out = d.ok(&["exec", "linger", "echo", "reachable"]);
    assert_eq!(out.trim(), "reachable");
    // its cgroup is the new init's
    let procs = cgroup_file("memory", &id, "cgroup.procs");
    assert!(procs.lines().any(|l| l == pid1.to_string()), "{procs}");
    d.ok(&["rm", "-f", "linger"]);
}
