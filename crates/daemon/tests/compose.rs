//! Debian's docker-compose (1.29, Python, on docker-py) against berthd, for a project that
//! needs no networking (`network_mode: none` everywhere, so compose creates no network).

mod common;
use common::{eventually, stderr, stdout, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const COMPOSE: &str = "/usr/bin/docker-compose";

const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; echo web-started; echo persisted > /data/f; while :; do sleep 1; done"]
    network_mode: none
    volumes: ["vol:/data"]
    labels: {com.example.tier: front}
    group_add: [users]
  job:
    image: busybox:latest
    command: ["sh", "-c", "echo job-says-hi; echo FOO=$$FOO; grep -q web-started /proc/1/cmdline && echo shares-web-pids"]
    network_mode: none
    environment: {FOO: bar}
    depends_on: [web]
    pid: "service:web"
volumes:
  vol: {}
"#;

/// `docker-compose -p <dir's name> args…` in `dir` against `d`; killed after two minutes.
fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(COMPOSE)
        .current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .arg("-p")
        .arg(dir.file_name().expect("project dir name"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker-compose");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait docker-compose").is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("docker-compose output")
}

/// compose runs `exec` and `run` (not detached) through the `docker` CLI on PATH, as
/// `docker exec` / `docker start --attach --interactive`. (Its own client for those, chosen by
/// COMPOSE_INTERACTIVE_NO_CLI=1, attaches only after the start and loses early output,
/// against dockerd too.)
fn docker_cli_on_path() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("docker").is_file()))
        .unwrap_or(false)
}

fn compose_ok(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed ({:?}):\n{}{}\n--- berthd log tail ---\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 40)
    );
    o
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The project's containers as the API lists them (compose's own filter).
fn project_containers(d: &Daemon, project: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22com.docker.compose.project%3D{project}%22%5D%7D"
    );
    let (st, _, body) = d.http("GET", &path, None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<Vec<serde_json::Value>>(&body).expect("list json")
}

/// The `ps` table row of one container.
fn ps_row<'a>(ps: &'a str, name: &str) -> Vec<&'a str> {
    ps.lines()
        .filter(|l| l.split_whitespace().next() == Some(name))
        .collect()
}

#[test]
fn compose_up_ps_logs_run_down_without_networks() {
    if !Path::new(COMPOSE).exists() {
        eprintln!("skipping: {COMPOSE} is not installed (apt-get install docker-compose)");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let dir: PathBuf = d.root.join("bt");
    std::fs::create_dir_all(&dir).expect("mkdir project");
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE_FILE).expect("write compose file");

    // config is compose alone, but proves the file parses
    let cfg = compose_ok(&d, &dir, &["config", "--services"]);
    let cfg = stdout(&cfg);
    let mut services: Vec<&str> = cfg.lines().map(str::trim).collect();
    services.sort();
    assert_eq!(services, ["job", "web"]);

    // up -d: volume, then web, then job (depends_on)
    let up = compose_ok(&d, &dir, &["up", "-d"]);
    let err = stderr(&up);
    assert!(
        err.contains("Creating volume \"bt_vol\" with default driver"),
        "{err}"
    );
    assert!(!err.contains("network"), "compose created a network: {err}");
    for name in ["bt_web_1", "bt_job_1"] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("Creating {name}")) && l.contains("done")),
            "{name} not created: {err}"
        );
    }
    let list = project_containers(&d, "bt");
    assert_eq!(list.len(), 2, "{list:#?}");
    for c in &list {
        let labels = &c["Labels"];
        let svc = labels["com.docker.compose.service"].as_str().unwrap_or("");
        assert!(svc == "web" || svc == "job", "{c:#}");
        assert_eq!(labels["com.docker.compose.container-number"], "1", "{c:#}");
        assert_eq!(labels["com.docker.compose.oneoff"], "False", "{c:#}");
        assert_eq!(c["HostConfig"]["NetworkMode"], "none", "{c:#}");
    }
    let web = d.inspect("bt_web_1");
    assert_eq!(web["Config"]["Labels"]["com.example.tier"], "front");
    assert_eq!(web["State"]["Running"], true);
    assert!(
        web["Mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["Name"] == "bt_vol" && m["Destination"] == "/data"),
        "{:#}",
        web["Mounts"]
    );

    // ps: web up, job exited 0 once it has run; each container listed once
    let mut ps = String::new();
    let done = eventually(30, || {
        ps = stdout(&compose_ok(&d, &dir, &["ps"]));
        ps_row(&ps, "bt_job_1")
            .first()
            .is_some_and(|r| r.contains("Exit 0"))
    });
    assert!(done, "job did not exit 0:\n{ps}");
    let web_rows = ps_row(&ps, "bt_web_1");
    assert_eq!(web_rows.len(), 1, "{ps}");
    assert!(web_rows[0].contains(" Up"), "{ps}");
    assert_eq!(ps_row(&ps, "bt_job_1").len(), 1, "{ps}");
    let ids = stdout(&compose_ok(&d, &dir, &["ps", "-q"]));
    assert_eq!(ids.split_whitespace().count(), 2, "{ids}");

    // logs of both services, with compose's prefixes
    let logs = stdout(&compose_ok(&d, &dir, &["logs", "--no-color"]));
    for want in [
        "web_1  | web-started",
        "job_1  | job-says-hi",
        "job_1  | FOO=bar",
        "job_1  | shares-web-pids",
    ] {
        assert!(
            logs.lines().any(|l| l.trim_end() == want),
            "{want:?} in:\n{logs}"
        );
    }
    let one = stdout(&compose_ok(
        &d,
        &dir,
        &["logs", "--no-color", "--tail=1", "job"],
    ));
    assert!(one.contains("job_1  | shares-web-pids"), "{one}");
    assert!(!one.contains("FOO=bar"), "{one}");
    assert!(!one.contains("web_1"), "{one}");

    // exec into the running service sees the named volume and the service's group_add
    let cli = docker_cli_on_path();
    if cli {
        let ex = compose_ok(
            &d,
            &dir,
            &["exec", "-T", "web", "sh", "-c", "cat /data/f; id -G"],
        );
        assert_eq!(stdout(&ex), "persisted\n0 10 100\n");
    } else {
        eprintln!("skipping exec and run: no docker CLI on PATH for compose to call");
    }

    // unchanged config: nothing to do; --force-recreate: stop, rename aside, create, remove
    let again = compose_ok(&d, &dir, &["up", "-d", "web"]);
    assert!(
        stderr(&again).contains("bt_web_1 is up-to-date"),
        "{}",
        stderr(&again)
    );
    let old_id = web["Id"].as_str().expect("id").to_string();
    let re = compose_ok(
        &d,
        &dir,
        &["up", "-d", "--force-recreate", "--no-deps", "web"],
    );
    assert!(
        stderr(&re)
            .lines()
            .any(|l| l.contains("Recreating bt_web_1") && l.contains("done")),
        "{}",
        stderr(&re)
    );
    let web2 = d.inspect("bt_web_1");
    assert_ne!(web2["Id"], old_id.as_str());
    assert_eq!(web2["State"]["Running"], true);
    assert_eq!(
        project_containers(&d, "bt").len(),
        2,
        "the old web container stayed"
    );

    // a one-off container: attach, wait, start, then removed with its anonymous volumes
    if cli {
        let run = compose_ok(
            &d,
            &dir,
            &["run", "--rm", "-T", "job", "sh", "-c", "echo run-$FOO"],
        );
        assert_eq!(stdout(&run).trim(), "run-bar", "{}", stderr(&run));
        assert_eq!(
            project_containers(&d, "bt").len(),
            2,
            "run --rm left its container"
        );
    }

    // down -v: both containers stopped and removed, the volume gone
    let down = compose_ok(&d, &dir, &["down", "-v"]);
    let err = stderr(&down);
    assert!(err.contains("Stopping bt_web_1"), "{err}");
    assert!(err.contains("Removing bt_job_1"), "{err}");
    assert!(err.contains("Removing volume bt_vol"), "{err}");
    assert!(project_containers(&d, "bt").is_empty());
    let (st, _, _) = d.http("GET", "/volumes/bt_vol", None);
    assert_eq!(st, 404, "bt_vol survived down -v");
    let ps = stdout(&compose_ok(&d, &dir, &["ps", "-q"]));
    assert!(ps.trim().is_empty(), "{ps}");
}

/// A free TCP port on the host (bound and released; the daemon binds it again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET /` on 127.0.0.1:port; the response body, or "" when nothing answers.
fn http_get_local(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The project of issue 5 (two services on a user network, one publishing a port, the other
/// reaching it by service name), for what compose reads back beyond tests/network.rs's run of
/// it: the network's labels and endpoints, `port`, the aliases compose connects with (service
/// name and short ID) surviving stop/start without a reconnect, and the port published again.
#[test]
fn compose_network_port_aliases_stop_start() {
    if !Path::new(COMPOSE).exists() {
        eprintln!("skipping: {COMPOSE} is not installed (apt-get install docker-compose)");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let dir: PathBuf = d.root.join("btn");
    std::fs::create_dir_all(&dir).expect("mkdir project");
    let port = free_port();
    let file = format!(
        r#"version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    networks: [appnet]
    stop_grace_period: 2s
  client:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do wget -qO- http://web/ || echo fail; sleep 1; done"]
    networks: [appnet]
    depends_on: [web]
networks:
  appnet: {{}}
"#
    );
    std::fs::write(dir.join("docker-compose.yml"), file).expect("write compose file");

    let up = compose_ok(&d, &dir, &["up", "-d"]);
    let err = stderr(&up);
    assert!(
        err.contains("Creating network \"btn_appnet\" with the default driver"),
        "{err}"
    );
    let (st, _, body) = d.http("GET", "/networks/btn_appnet", None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let net: serde_json::Value = serde_json::from_slice(&body).expect("network json");
    assert_eq!(net["Labels"]["com.docker.compose.network"], "appnet");
    assert_eq!(net["Containers"].as_object().map(|m| m.len()), Some(2));

    // the published port, as `port` shows it and from the host
    let p = stdout(&compose_ok(&d, &dir, &["port", "web", "80"]));
    assert_eq!(p.trim(), format!("0.0.0.0:{port}"));
    let mut page = String::new();
    assert!(
        eventually(10, || {
            page = http_get_local(port);
            page.contains("hello-from-web")
        }),
        "127.0.0.1:{port}: {page:?}"
    );

    // compose's aliases: the service name and the short ID, kept over stop/start
    let web = d.inspect("btn_web_1");
    let short = &web["Id"].as_str().expect("id")[..12];
    let aliases = web["NetworkSettings"]["Networks"]["btn_appnet"]["Aliases"].clone();
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "web") && a.iter().any(|x| x == short)),
        "{aliases}"
    );
    compose_ok(&d, &dir, &["stop"]);
    compose_ok(&d, &dir, &["start"]);
    let ok = eventually(30, || http_get_local(port).contains("hello-from-web"));
    assert!(ok, "web not published again after stop/start");

    let down = compose_ok(&d, &dir, &["down", "-v"]);
    assert!(
        stderr(&down).contains("Removing network btn_appnet"),
        "{}",
        stderr(&down)
    );
    let (st, _, _) = d.http("GET", "/networks/btn_appnet", None);
    assert_eq!(st, 404, "btn_appnet survived down");
    assert!(project_containers(&d, "btn").is_empty());
}
