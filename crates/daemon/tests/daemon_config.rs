//! `daemon.json`: berthd started with a configuration file, refused files (flag and file
//! both, unknown keys, bad JSON), `--validate`, `SIGHUP` reloads (in `/info`, as a `daemon
//! reload` event through `docker events`, and in the log), a bad file on reload, the journald
//! log format under systemd, and `docker info`'s fields. Texts are compared with the real
//! dockerd where it is installed.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn berthd(args: &[&str]) -> Output {
    Command::new(bin_dir().join("berthd"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run berthd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The message after dockerd's `… with file F: ` frame.
fn after_frame(s: &str) -> String {
    s.lines()
        .rev()
        .find_map(|l| l.split_once(".json: ").map(|(_, m)| m.to_string()))
        .unwrap_or_default()
}

/// dockerd run with a configuration file it must refuse before starting anything: private
/// roots and socket, killed after 20 s if it started after all. `None` without dockerd.
fn dockerd_refusal(dir: &Path, file: &Path, extra: &[&str]) -> Option<String> {
    if !Path::new("/usr/sbin/dockerd").exists() {
        eprintln!("skipping the dockerd comparison: dockerd is not installed");
        return None;
    }
    let r = dir.join("dockerd-refuse");
    let mut child = Command::new("/usr/sbin/dockerd")
        .arg("--config-file")
        .arg(file)
        .args(["--exec-root", r.join("exec").to_str()?])
        .args(["--pidfile", r.join("pid").to_str()?])
        .args(["-H", &format!("unix://{}", r.join("d.sock").display())])
        .args(["--iptables=false", "--ip-masq=false"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dockerd");
    let t0 = std::time::Instant::now();
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            // SAFETY: the dockerd this test started, by pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            cleanup_root(&r);
            panic!("dockerd accepted {}", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("dockerd output");
    cleanup_root(&r);
    Some(text(&out.stderr))
}

#[test]
fn conflict_between_flag_and_file_is_refused_as_dockerd_does() {
    let dir = tmpdir("c1");
    let f = dir.join("daemon.json");
    std::fs::write(&f, r#"{"data-root": "/x/file-root", "debug": true}"#).expect("write");
    let data = dir.join("flag-root");
    let o = berthd(&[
        "--config-file",
        f.to_str().expect("utf8"),
        "--data-root",
        data.to_str().expect("utf8"),
        "--validate",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let want = format!(
        "the following directives are specified both as a flag and in the configuration file: data-root: (from flag: {}, from file: /x/file-root)",
        data.display()
    );
    assert_eq!(
        err.trim(),
        format!(
            "unable to configure the Docker daemon with file {}: {want}",
            f.display()
        )
    );
    // without --validate too, and nothing is created
    let o = berthd(&[
        "--config-file",
        f.to_str().expect("utf8"),
        "--data-root",
        data.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains(&want));
    assert!(
        !data.exists(),
        "a refused configuration touched the data root"
    );
    if let Some(d) = dockerd_refusal(&dir, &f, &["--data-root", data.to_str().expect("utf8")]) {
        assert_eq!(after_frame(&d), want, "dockerd said: {d}");
    }
    // several keys: in key order, repeatable flags as lists, the same text as dockerd's
    std::fs::write(
        &f,
        r#"{"labels": ["a=b"], "debug": true, "mtu": 1400, "insecure-registries": ["r:5000"]}"#,
    )
    .expect("write");
    let flags = [
        "--label",
        "x=y",
        "--label",
        "z=w",
        "-D",
        "--mtu",
        "1500",
        "--insecure-registry",
        "q:1",
    ];
    let mut args = vec!["--validate", "--config-file", f.to_str().expect("utf8")];
    args.extend(flags);
    let ours = after_frame(&text(&berthd(&args).stderr));
    assert_eq!(
        ours,
        "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: true), insecure-registries: (from flag: [q:1], from file: [r:5000]), labels: (from flag: [x=y z=w], from file: [a=b]), mtu: (from flag: 1500, from file: 1400)"
    );
    let dd = dir.join("dd");
    let mut dargs = vec!["--data-root", dd.to_str().expect("utf8")];
    dargs.extend(flags);
    if let Some(d) = dockerd_refusal(&dir, &f, &dargs) {
        assert_eq!(after_frame(&d), ours, "dockerd said: {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_keys_are_named_as_dockerd_names_them() {
    let dir = tmpdir("c2");
    let f = dir.join("daemon.json");
    std::fs::write(&f, r#"{"debug": true, "no-such-key": 1}"#).expect("write");
    let o = berthd(&["--validate", "--config-file", f.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    let ours = after_frame(&text(&o.stderr));
    assert_eq!(
        ours,
        "the following directives don't match any configuration option: no-such-key"
    );
    if let Some(d) = dockerd_refusal(
        &dir,
        &f,
        &["--data-root", dir.join("dd").to_str().expect("utf8")],
    ) {
        assert_eq!(after_frame(&d), ours, "dockerd said: {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_checks_a_file_and_exits() {
    let dir = tmpdir("c3");
    let f = dir.join("daemon.json");
    std::fs::write(
        &f,
        r#"{"labels": ["env=test"], "registry-mirrors": ["https://mirror.example"],
            "insecure-registries": ["10.66.0.0/16"], "live-restore": true, "mtu": 1400,
            "default-address-pools": [{"base": "10.123.0.0/16", "size": 24}],
            "cluster-store": "consul://127.0.0.1:8500", "cluster-advertise": "127.0.0.1:2376",
            "features": {"buildkit": true}, "log-opts": {"max-size": "10m"},
            "storage-driver": "overlay2", "experimental": true}"#,
    )
    .expect("write");
    let o = berthd(&["--validate", "--config-file", f.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "configuration OK\n");
    // malformed JSON: the position
    std::fs::write(&f, "{\"debug\": true,\n  \"mtu\": }").expect("write");
    let o = berthd(&["--validate", "--config-file", f.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("line 2 column 10"),
        "{}",
        text(&o.stderr)
    );
    // a wrong type names the key; a negative count is dockerd's text
    std::fs::write(&f, r#"{"live-restore": "yes"}"#).expect("write");
    let o = berthd(&["--validate", "--config-file", f.to_str().expect("utf8")]);
    assert!(
        text(&o.stderr).contains("\"live-restore\""),
        "{}",
        text(&o.stderr)
    );
    std::fs::write(&f, r#"{"max-concurrent-downloads": -1}"#).expect("write");
    let o = berthd(&["--validate", "--config-file", f.to_str().expect("utf8")]);
    let ours = after_frame(&text(&o.stderr));
    assert_eq!(
        ours,
        "configuration validation from file failed: invalid max concurrent downloads: -1"
    );
    if let Some(d) = dockerd_refusal(
        &dir,
        &f,
        &["--data-root", dir.join("dd").to_str().expect("utf8")],
    ) {
        assert_eq!(after_frame(&d), ours, "dockerd said: {d}");
    }
    // a named file that does not exist is an error; the default one may be absent
    let o = berthd(&[
        "--validate",
        "--config-file",
        "/nonexistent-berth/daemon.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("open /nonexistent-berth/daemon.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `docker info` text of a daemon.
fn docker_info(d: &Daemon) -> Option<(String, String)> {
    let o = d.docker(&["info"])?;
    assert!(o.status.success(), "{}", text(&o.stderr));
    Some((text(&o.stdout), text(&o.stderr)))
}

#[test]
fn file_settings_show_in_info_through_the_docker_cli() {
    let root = tmpdir("c4");
    std::fs::write(
        root.join("daemon.json"),
        r#"{"labels": ["env=test", "zone=a"], "debug": true, "live-restore": true,
            "experimental": true,
            "registry-mirrors": ["https://mirror.example"],
            "insecure-registries": ["10.66.0.0/16", "myreg.example:5000"],
            "default-address-pools": [{"base": "10.123.0.0/16", "size": 24}]}"#,
    )
    .expect("write");
    let d = Daemon::start_on(&root);
    let (st, _, body) = d.http("GET", "/info", None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("info json");
    assert_eq!(v["Debug"], true);
    assert_eq!(v["LiveRestoreEnabled"], true);
    assert_eq!(v["Labels"], serde_json::json!(["env=test", "zone=a"]));
    assert_eq!(
        v["RegistryConfig"]["InsecureRegistryCIDRs"],
        serde_json::json!(["10.66.0.0/16", "127.0.0.0/8"])
    );
    assert_eq!(
        v["RegistryConfig"]["Mirrors"],
        serde_json::json!(["https://mirror.example/"])
    );
    assert_eq!(
        v["DefaultAddressPools"],
        serde_json::json!([{"Base": "10.123.0.0/16", "Size": 24}])
    );
    assert!(
        v["ID"].as_str().is_some_and(|s| s.len() == 59),
        "{}",
        v["ID"]
    );
    // a network without a subnet gets a /24 of the configured pool
    d.ok(&["network", "create", "pooled"]);
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "pooled"])).expect("network json");
    let sub = n[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        sub.trim().starts_with("10.123.") && sub.trim().ends_with(".0/24"),
        "{sub}"
    );
    d.ok(&["network", "rm", "pooled"]);
    let Some((out, _)) = docker_info(&d) else {
        return;
    };
    for want in [
        " Debug Mode: true\n",
        " Labels:\n  env=test\n  zone=a\n",
        " Insecure Registries:\n  myreg.example:5000\n  10.66.0.0/16\n  127.0.0.0/8\n",
        " Registry Mirrors:\n  https://mirror.example/\n",
        " Live Restore Enabled: true\n",
        " Experimental: true\n",
        " Default Address Pools:\n   Base: 10.123.0.0/16, Size: 24\n",
        " Security Options:\n  seccomp\n   Profile: builtin\n",
    ] {
        assert!(out.contains(want), "docker info lacks {want:?}:\n{out}");
    }
    // dockerd with the same file: the same text from `Labels:` to `Live Restore Enabled:`
    let dir = root.join("dk");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let df = dir.join("daemon.json");
    std::fs::copy(root.join("daemon.json"), &df).expect("copy");
    if let Some(dk) =
        dockerd::Dockerd::start_args(&dir, &["--config-file", df.to_str().expect("utf8")])
    {
        let section = |t: &str| -> String {
            let a = t.find(" Labels:").unwrap_or(0);
            let b = t[a..]
                .find(" Live Restore Enabled:")
                .map(|i| a + i)
                .unwrap_or(t.len());
            // dockerd lists its labels in Go map order (random): sort them
            let mut lines: Vec<&str> = t[a..b].lines().collect();
            let start = lines
                .iter()
                .position(|l| *l == " Labels:")
                .map_or(0, |i| i + 1);
            let end = lines[start..]
                .iter()
                .position(|l| !l.starts_with("  "))
                .map_or(lines.len(), |i| start + i);
            lines[start..end].sort_unstable();
            lines.join("\n")
        };
        // (a dockerd just up may not answer info yet: a few tries)
        let mut theirs = String::new();
        for _ in 0..10 {
            theirs = text(&dk.docker(&["info"]).stdout);
            if theirs.contains(" Live Restore Enabled:") {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(
            section(&out),
            section(&theirs),
            "ours:\n{out}\ndockerd's:\n{theirs}"
        );
        assert!(theirs.contains(" Live Restore Enabled: true\n"));
        assert!(theirs.contains(" Default Address Pools:\n   Base: 10.123.0.0/16, Size: 24\n"));
    }
    // berth's own CLI prints the same sections
    let ours = d.ok(&["info"]);
    for want in [
        " Labels:\n  env=test\n  zone=a\n",
        " Insecure Registries:\n  myreg.example:5000\n  10.66.0.0/16\n  127.0.0.0/8\n",
        " Registry Mirrors:\n  https://mirror.example/\n",
        " Live Restore Enabled: true\n",
        " Default Address Pools:\n   Base: 10.123.0.0/16, Size: 24\n",
    ] {
        assert!(ours.contains(want), "berth info lacks {want:?}:\n{ours}");
    }
}

#[test]
fn host_warnings_are_dockerds() {
    let root = tmpdir("c5");
    let d = Daemon::start_on(&root);
    let (_, _, body) = d.http("GET", "/info", None);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("info json");
    let ours: Vec<String> = v["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(String::from))
        .collect();
    // the swap warning follows the host's memory cgroup, as dockerd computes it
    let v1_swap = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        assert_eq!(
            ours.iter().any(|w| w == "WARNING: No swap limit support"),
            !v1_swap,
            "{ours:?}"
        );
        assert_eq!(v["SwapLimit"], v1_swap);
    }
    let Some(dk) = dockerd::Dockerd::start(&root) else {
        return;
    };
    let o = dk.docker(&["info", "--format", "{{json .Warnings}}"]);
    let theirs: Vec<String> = serde_json::from_slice::<Option<Vec<String>>>(&o.stdout)
        .expect("dockerd warnings")
        .unwrap_or_default();
    assert_eq!(ours, theirs, "berth's warnings differ from dockerd's");
    // and the host facts behind them
    let o = dk.docker(&["info", "--format", "{{json .}}"]);
    let dv: serde_json::Value = serde_json::from_slice(&o.stdout).expect("dockerd info");
    // (the CLI 28 no longer decodes BridgeNfIp[6]tables; their warnings are compared above)
    for k in ["MemoryLimit", "SwapLimit", "IPv4Forwarding"] {
        assert_eq!(v[k], dv[k], "{k} differs from dockerd's");
    }
    // the docker CLI prints them on stderr
    if let Some((_, err)) = docker_info(&d) {
        for w in &ours {
            assert!(err.contains(w.as_str()), "{err}");
        }
    }
}

/// `docker events --format {{json .}}` against a daemon, read line by line on a thread.
struct Events {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
}

impl Events {
    fn start(host: &str, cfg: &Path) -> Option<Events> {
        if !Path::new("/usr/local/bin/docker").exists() {
            return None;
        }
        let mut child = Command::new("/usr/local/bin/docker")
            .env("DOCKER_HOST", host)
            .env("DOCKER_CONFIG", cfg)
            .env_remove("DOCKER_API_VERSION")
            .args(["events", "--format", "{{json .}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker events");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        Some(Events { child, rx })
    }

    fn next_reload(&self) -> serde_json::Value {
        loop {
            let l = self
                .rx
                .recv_timeout(Duration::from_secs(20))
                .expect("no daemon reload event within 20 s");
            let v: serde_json::Value = serde_json::from_str(&l).expect("event json");
            if v["Type"] == "daemon" && v["Action"] == "reload" {
                return v;
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        // SAFETY: the docker CLI this test started, by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn hup(pid: i32) {
    // SAFETY: the daemon this test started, by pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

fn info(d: &Daemon) -> serde_json::Value {
    let (_, _, body) = d.http("GET", "/info", None);
    serde_json::from_slice(&body).expect("info json")
}

#[test]
fn sighup_reloads_dockerds_keys_and_keeps_them_on_a_bad_file() {
    let root = tmpdir("c6");
    let file: PathBuf = root.join("daemon.json");
    std::fs::write(&file, r#"{"labels": ["a=b"], "bip": "10.77.0.1/24"}"#).expect("write");
    let d = Daemon::start_on(&root);
    assert_eq!(info(&d)["Labels"], serde_json::json!(["a=b"]));
    assert_eq!(info(&d)["Debug"], false);
    let ev = Events::start(&d.host(), &root.join("docker-config"));
    std::fs::write(
        &file,
        r#"{"labels": ["a=c", "x=y"], "debug": true, "live-restore": true,
            "registry-mirrors": ["https://m.example.com"], "insecure-registries": ["10.1.0.0/16"],
            "max-concurrent-downloads": 7, "features": {"buildkit": true},
            "bip": "10.78.0.1/24"}"#,
    )
    .expect("write");
    hup(d.pid());
    assert!(
        eventually(20, || info(&d)["Labels"]
            == serde_json::json!(["a=c", "x=y"])),
        "labels not reloaded: {}",
        d.log()
    );
    let i = info(&d);
    assert_eq!(i["Debug"], true);
    assert_eq!(i["LiveRestoreEnabled"], true);
    assert_eq!(
        i["RegistryConfig"]["Mirrors"],
        serde_json::json!(["https://m.example.com/"])
    );
    assert_eq!(
        i["RegistryConfig"]["InsecureRegistryCIDRs"],
        serde_json::json!(["10.1.0.0/16", "127.0.0.0/8"])
    );
    let log = d.log();
    assert!(log.contains("Got signal to reload configuration"), "{log}");
    assert!(log.contains("Reloaded configuration"), "{log}");
    assert!(
        log.contains("configuration key \"bip\" changed") && log.contains("cannot be reloaded"),
        "{log}"
    );
    let our_attrs = if let Some(ev) = &ev {
        let v = ev.next_reload();
        assert_eq!(v["Actor"]["ID"], i["ID"]);
        let a = v["Actor"]["Attributes"].clone();
        assert_eq!(a["debug"], "true");
        assert_eq!(a["labels"], r#"["a=c","x=y"]"#);
        assert_eq!(a["registry-mirrors"], r#"["https://m.example.com"]"#);
        assert_eq!(a["insecure-registries"], r#"["10.1.0.0/16"]"#);
        assert_eq!(a["max-concurrent-downloads"], "7");
        assert_eq!(a["live-restore"], "true");
        assert_eq!(a["features"], "map[buildkit:true]");
        assert_eq!(a["name"], i["Name"]);
        Some(a)
    } else {
        None
    };
    // the human form of docker events names it `daemon reload` (until a moment from now:
    // the CLI sends whole seconds)
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 2;
    let until = until.to_string();
    if let Some(o) = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=daemon",
    ]) {
        assert!(
            text(&o.stdout).contains(" daemon reload "),
            "{}",
            text(&o.stdout)
        );
    }

    // a bad file: the settings stay, the log says why
    std::fs::write(&file, "{\"debug\": tru").expect("write");
    hup(d.pid());
    assert!(
        eventually(20, || d
            .log()
            .contains("unable to configure the Docker daemon with file")),
        "no error logged: {}",
        d.log()
    );
    let i = info(&d);
    assert_eq!(i["Labels"], serde_json::json!(["a=c", "x=y"]));
    assert_eq!(i["Debug"], true);
    // an unknown key on reload is refused the same way
    std::fs::write(&file, r#"{"labels": ["q=r"], "bogus": 1}"#).expect("write");
    hup(d.pid());
    assert!(
        eventually(20, || d
            .log()
            .contains("don't match any configuration option: bogus")),
        "{}",
        d.log()
    );
    assert_eq!(info(&d)["Labels"], serde_json::json!(["a=c", "x=y"]));
    drop(ev);

    // dockerd sends the same attribute names
    if let Some(ours) = our_attrs {
        let dir = root.join("dk");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let df = dir.join("daemon.json");
        std::fs::write(&df, r#"{"labels": ["a=b"]}"#).expect("write");
        let Some(dk) =
            dockerd::Dockerd::start_args(&dir, &["--config-file", df.to_str().expect("utf8")])
        else {
            return;
        };
        let ev = Events::start(&dk.host(), &dk.root.join("cfg")).expect("docker events");
        std::fs::write(&df, r#"{"labels": ["a=c"], "debug": true}"#).expect("write");
        let pid: i32 = std::fs::read_to_string(dk.root.join("pid"))
            .expect("dockerd pid")
            .trim()
            .parse()
            .expect("pid");
        hup(pid);
        let theirs = ev.next_reload();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect()
        };
        assert_eq!(keys(&ours), keys(&theirs["Actor"]["Attributes"]));
        assert_eq!(theirs["Actor"]["Attributes"]["labels"], r#"["a=c"]"#);
    }
}

#[test]
fn under_systemd_the_log_has_priority_prefixes() {
    let root = tmpdir("c7");
    let d = Daemon::start_on_with(&root, &[], |c| {
        c.env("JOURNAL_STREAM", "8:12345");
    });
    let (st, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let p = l.get(..3).unwrap_or("");
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&p),
            "a line without a priority prefix: {l:?}"
        );
        assert!(!l.contains("Z  INFO") && !l.starts_with("20"), "{l:?}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("<6>API listening on")),
        "{log}"
    );
}

#[test]
fn container_defaults_come_from_the_file() {
    // a short root: shim sockets live below it (108-byte limit)
    let root = tmpdir("");
    std::fs::write(
        root.join("daemon.json"),
        r#"{"default-shm-size": "96M",
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1111, "Hard": 2222}},
            "dns-search": ["example.test"], "dns-opts": ["ndots:3"],
            "log-opts": {"max-size": "1m", "max-file": "2"}}"#,
    )
    .expect("write");
    let d = Daemon::start_on(&root);
    d.load_busybox();
    let out = d.ok(&[
        "run",
        "--name",
        "defs",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1; cat /etc/resolv.conf",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"1111"), "{out}");
    assert_eq!(lines.get(1), Some(&"2222"), "{out}");
    assert!(
        lines
            .get(2)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("98304")),
        "{out}"
    );
    assert!(out.contains("search example.test"), "{out}");
    assert!(out.contains("options ndots:3"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "defs"])).expect("inspect json");
    let hc = &v[0]["HostConfig"];
    assert_eq!(hc["ShmSize"], 96 * 1024 * 1024);
    assert_eq!(hc["LogConfig"]["Type"], "json-file");
    assert_eq!(hc["LogConfig"]["Config"]["max-size"], "1m");
    assert_eq!(hc["LogConfig"]["Config"]["max-file"], "2");
    // a container's own values win
    let out = d.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=77:88",
        "--shm-size",
        "8m",
        "--dns-search",
        "own.test",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; df -k /dev/shm | tail -1; cat /etc/resolv.conf",
    ]);
    assert!(out.starts_with("77\n"), "{out}");
    assert!(out.contains(" 8192 "), "{out}");
    assert!(
        out.contains("search own.test") && !out.contains("example.test"),
        "{out}"
    );
    d.ok(&["rm", "-f", "defs"]);
}

#[test]
fn the_daemons_seccomp_profile_is_the_containers_default() {
    let root = tmpdir("");
    let prof = root.join("deny-mkdir.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("write profile");
    std::fs::write(
        root.join("daemon.json"),
        format!(r#"{{"seccomp-profile": "{}"}}"#, prof.display()),
    )
    .expect("write");
    let d = Daemon::start_on(&root);
    let v = info(&d);
    assert!(
        v["SecurityOptions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o.as_str() == Some(&format!("name=seccomp,profile={}", prof.display()))),
        "{}",
        v["SecurityOptions"]
    );
    d.load_busybox();
    let o = d.berth(&["run", "--rm", "busybox", "mkdir", "/tmp/x"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("Operation not permitted"),
        "{}",
        text(&o.stderr)
    );
    d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "mkdir",
        "/tmp/x",
    ]);
    // a missing profile stops the start with dockerd's text
    let o = berthd(&["--validate", "--seccomp-profile", "/nonexistent/p.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("opening seccomp profile (/nonexistent/p.json) failed: "),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_mirror_added_by_reload_serves_the_next_pull() {
    let Some(reg) = registry::Registry::start() else {
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&["tag", "busybox", &reg.image("library/mirrored:1")]);
    d.ok(&["push", &reg.image("library/mirrored:1")]);
    let want = d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    // a second daemon, no mirror at start; one comes with a reload (loopback only: no pull
    // is tried before the mirror is there)
    let root = tmpdir("");
    std::fs::write(root.join("daemon.json"), "{}").expect("write");
    let d2 = Daemon::start_on(&root);
    assert_eq!(
        info(&d2)["RegistryConfig"]["Mirrors"],
        serde_json::json!([])
    );
    std::fs::write(
        root.join("daemon.json"),
        format!(
            r#"{{"registry-mirrors": ["http://{}"], "max-concurrent-downloads": 1}}"#,
            reg.addr
        ),
    )
    .expect("write");
    hup(d2.pid());
    assert!(
        eventually(20, || info(&d2)["RegistryConfig"]["Mirrors"]
            == serde_json::json!([format!("http://{}/", reg.addr)])),
        "{}",
        d2.log()
    );
    d2.ok(&["pull", "mirrored:1"]);
    assert_eq!(
        d2.ok(&["image", "inspect", "-f", "{{.Id}}", "mirrored:1"]),
        want
    );
}

#[test]
fn the_file_alone_configures_the_daemon_and_a_reload_turns_debug_on() {
    let root = tmpdir("");
    let sock = root.join("run/berth.sock");
    std::fs::write(
        root.join("daemon.json"),
        serde_json::json!({
            "data-root": root.join("data"),
            "exec-root": root.join("run"),
            "hosts": [format!("unix://{}", sock.display())],
            "pidfile": root.join("berthd.pid"),
            "bridge": bridge_name(&root),
            "dns": ["127.0.0.1"],
            "log-level": "info",
            "labels": ["from=file"],
        })
        .to_string(),
    )
    .expect("write");
    let log = std::fs::File::create(root.join("berthd.log")).expect("log");
    let mut child = Command::new(bin_dir().join("berthd"))
        .arg("--config-file")
        .arg(root.join("daemon.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn berthd");
    let child_pid = child.id() as i32;
    let up = eventually(20, || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let res = std::panic::catch_unwind(|| {
        assert!(up, "berthd did not come up on the file's socket");
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        s.write_all(b"GET /info HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("response");
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let body = if resp
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            String::from_utf8_lossy(&dechunk(body.as_bytes())).into_owned()
        } else {
            body.to_string()
        };
        let v: serde_json::Value = serde_json::from_str(&body).expect("info json");
        assert_eq!(v["DockerRootDir"], serde_json::json!(root.join("data")));
        assert_eq!(v["Labels"], serde_json::json!(["from=file"]));
        assert!(root.join("berthd.pid").exists());
        let log = std::fs::read_to_string(root.join("berthd.log")).unwrap_or_default();
        assert!(
            !log.contains(" DEBUG "),
            "log-level info from the file: {log}"
        );
        // `debug` by reload: the next request is logged at debug level
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("daemon.json")).expect("read"))
                .expect("json");
        v["debug"] = serde_json::json!(true);
        std::fs::write(root.join("daemon.json"), v.to_string()).expect("write");
        // SAFETY: the berthd this test started, by pid.
        assert_eq!(unsafe { libc::kill(child_pid, libc::SIGHUP) }, 0);
        let log_now = || std::fs::read_to_string(root.join("berthd.log")).unwrap_or_default();
        assert!(
            eventually(20, || log_now().contains("Reloaded configuration")),
            "{}",
            log_now()
        );
        let _ = std::os::unix::net::UnixStream::connect(&sock).and_then(|mut s| {
            s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")?;
            let mut r = String::new();
            s.read_to_string(&mut r).map(|_| ())
        });
        assert!(
            eventually(10, || log_now().contains("DEBUG")
                && log_now().contains("/_ping")),
            "{}",
            log_now()
        );
    });
    // SAFETY: the berthd this test started, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    cleanup_root(&root);
    if let Err(e) = res {
        std::panic::resume_unwind(e);
    }
}
