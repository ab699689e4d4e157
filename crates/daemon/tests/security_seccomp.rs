//! Seccomp and no-new-privileges (issue 10, points 1 and 6): real containers try the
//! syscalls docker's default profile denies, through a tiny static C program
//! (`tests/data/sysprobe.c`, built with `gcc -static` once per test process) bind-mounted
//! into busybox. Every attack here succeeded before the filter existed.

mod common;
use common::{stderr, stdout, tmpdir, Daemon};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A directory holding `sysprobe` (0755) and `suid-probe` (root, 04755), built once per test
/// process under `target/` (nothing left in /tmp).
fn probe_dir() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = common::bin_dir().join("sysprobe");
        std::fs::create_dir_all(&d).expect("mkdir sysprobe");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sysprobe.c");
        let out = d.join("sysprobe");
        let o = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("run gcc");
        assert!(o.status.success(), "gcc: {}", stderr(&o));
        let suid = d.join("suid-probe");
        std::fs::copy(&out, &suid).expect("copy probe");
        std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        d
    })
}

fn vol() -> String {
    format!("{}:/t:ro", probe_dir().display())
}

/// `berth run --rm <opts> busybox /t/sysprobe <what>`: the probe's one-line answer.
fn probe(d: &Daemon, opts: &[&str], what: &str) -> String {
    let v = vol();
    let mut args = vec!["run", "--rm", "-v", &v];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "/t/sysprobe", what]);
    let o = d.berth(&args);
    let out = stdout(&o).trim().to_string();
    assert!(!out.is_empty(), "{what}: no answer; stderr: {}", stderr(&o));
    out
}

/// Same through the raw API, for HostConfig fields the berth CLI does not have.
fn probe_api(d: &Daemon, host_config: serde_json::Value, what: &str) -> String {
    let mut hc = host_config;
    hc["Binds"] = serde_json::json!([vol()]);
    let body =
        serde_json::json!({"Image": "busybox", "Cmd": ["/t/sysprobe", what], "HostConfig": hc});
    let (st, _, b) = d.http("POST", "/containers/create", Some(&body.to_string()));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
    let id = serde_json::from_slice::<serde_json::Value>(&b).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, b) = d.http("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(st, 204, "{}", String::from_utf8_lossy(&b));
    d.ok(&["wait", &id]);
    let out = d.ok(&["logs", &id]).trim().to_string();
    d.ok(&["rm", "-f", &id]);
    out
}

#[test]
fn default_profile_denies_what_docker_denies() {
    let d = Daemon::start();
    d.load_busybox();
    for what in [
        "unshare_user",
        "unshare_mnt",
        "clone_newuser",
        "clone_newns",
        "keyctl",
        "add_key",
        "perf_event_open",
        "mbind",
        "set_mempolicy",
        "personality_bad",
    ] {
        assert_eq!(probe(&d, &[], what), "EPERM", "{what}");
    }
    // clone3 answers ENOSYS (libc then falls back to clone), plain clone/fork work
    assert_eq!(probe(&d, &[], "clone3"), "ENOSYS");
    assert_eq!(probe(&d, &[], "clone"), "ok");
    // a call newer than the profile: ENOSYS too, so libc falls back (fchmodat2 → fchmodat)
    assert_eq!(probe(&d, &[], "fchmodat2"), "ENOSYS");
    assert_eq!(
        probe(&d, &["--security-opt", "seccomp=unconfined"], "fchmodat2"),
        "ok"
    );
    // busybox's own unshare, as a user would try it
    let o = d.berth(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // an ordinary program still runs: threads, pipes, sh, ls
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ls / | wc -l; echo done",
    ]);
    assert!(o.contains("done"), "{o}");
    // --init's minimal PID 1 and the process it forks live under the filter too
    let v = vol();
    let o = d.ok(&[
        "run",
        "--rm",
        "--init",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "echo pid=$$; /t/sysprobe unshare_user; true",
    ]);
    assert!(o.contains("pid=2") && o.contains("EPERM"), "{o}");
}

#[test]
fn capabilities_unconfined_and_privileged_lift_the_filter() {
    let d = Daemon::start();
    d.load_busybox();
    // CAP_SYS_ADMIN: namespaces, mount and a real clone3, as with docker
    let admin = serde_json::json!({"CapAdd": ["SYS_ADMIN"]});
    assert_eq!(probe_api(&d, admin.clone(), "unshare_mnt"), "ok");
    assert_eq!(probe_api(&d, admin.clone(), "clone_newns"), "ok");
    assert_eq!(probe_api(&d, admin, "clone3"), "ok");
    // CAP_SYS_NICE: the NUMA calls
    let nice = serde_json::json!({"CapAdd": ["SYS_NICE"]});
    assert_eq!(probe_api(&d, nice, "set_mempolicy"), "ok");
    // no CAP_SYS_CHROOT: chroot goes with it (checked by busybox chroot)
    let o = d.berth(&["run", "--rm", "busybox", "chroot", "/", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // unconfined / privileged: no filter at all
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    assert_eq!(probe(&d, &unconfined, "unshare_user"), "ok");
    assert_eq!(probe(&d, &unconfined, "keyctl"), "ok");
    assert_eq!(probe(&d, &unconfined, "clone3"), "ok");
    assert_eq!(probe(&d, &["--privileged"], "unshare_user"), "ok");
    assert_eq!(probe(&d, &["--privileged"], "unshare_mnt"), "ok");
    let info = d.inspect_json_of_run(&unconfined);
    assert_eq!(
        info["HostConfig"]["SecurityOpt"],
        serde_json::json!(["seccomp=unconfined"])
    );
}

trait InspectRun {
    fn inspect_json_of_run(&self, opts: &[&str]) -> serde_json::Value;
}

impl InspectRun for Daemon {
    /// Creates (not starts) a container with `opts` and returns its inspect JSON.
    fn inspect_json_of_run(&self, opts: &[&str]) -> serde_json::Value {
        let mut args = vec!["create"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["busybox", "true"]);
        let id = self.ok(&args).trim().to_string();
        let v = self.inspect(&id);
        self.ok(&["rm", "-f", &id]);
        v
    }
}

const DENY_MKDIR: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
  ]
}"#;

#[test]
fn custom_profile_from_a_file_berth_and_docker_cli() {
    let d = Daemon::start();
    d.load_busybox();
    let dir = tmpdir("seccomp-prof");
    let prof = dir.join("p.json");
    std::fs::write(&prof, DENY_MKDIR).unwrap();
    let opt = format!("seccomp={}", prof.display());
    assert_eq!(probe(&d, &["--security-opt", &opt], "mkdir"), "EACCES");
    // default-allow: what the default profile denies is allowed by this one
    assert_eq!(probe(&d, &["--security-opt", &opt], "unshare_user"), "ok");
    // without it, mkdir works
    assert_eq!(probe(&d, &[], "mkdir"), "ok");
    // the profile's content travels in SecurityOpt (the docker CLI's way) and shows in inspect
    let v = d.inspect_json_of_run(&["--security-opt", &opt]);
    let so = v["HostConfig"]["SecurityOpt"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(so.starts_with("seccomp={"), "{so}");
    assert!(so.contains("mkdirat"), "{so}");
    // the real docker CLI reads the file itself and sends the same
    let v = vol();
    if let Some(o) = d.docker(&[
        "run",
        "--rm",
        "-v",
        &v,
        "--security-opt",
        &opt,
        "busybox",
        "/t/sysprobe",
        "mkdir",
    ]) {
        assert_eq!(stdout(&o).trim(), "EACCES", "{}", stderr(&o));
        // what docker CLI 28 sends: the file's JSON, compacted, in SecurityOpt
        let o = d
            .docker(&["create", "--security-opt", &opt, "busybox", "true"])
            .unwrap();
        let id = stdout(&o).trim().to_string();
        let sent = d.inspect(&id)["HostConfig"]["SecurityOpt"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            sent.starts_with("seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\""),
            "{sent}"
        );
        assert!(!sent.contains('\n'), "{sent}");
        d.ok(&["rm", "-f", &id]);
        let o = d
            .docker(&[
                "run",
                "--rm",
                "--security-opt",
                "seccomp=unconfined",
                "-v",
                &v,
                "busybox",
                "/t/sysprobe",
                "keyctl",
            ])
            .unwrap();
        assert_eq!(stdout(&o).trim(), "ok", "{}", stderr(&o));
    }
    // a missing file: the CLI's error, nothing created
    let o = d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("opening seccomp profile (/nonexistent.json) failed"),
        "{}",
        stderr(&o)
    );
    // a profile that is not JSON (sent raw through the API): docker's decode error
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"SecurityOpt": ["seccomp={not json"]}});
    let (st, _, b) = d.http("POST", "/containers/create", Some(&body.to_string()));
    assert_eq!(st, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&b).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, b) = d.http("POST", &format!("/containers/{id}/start"), None);
    assert!(st >= 400, "{st}");
    assert!(
        String::from_utf8_lossy(&b).contains("Decoding seccomp profile failed"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    d.ok(&["rm", "-f", &id]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exec_gets_the_container_filter() {
    let d = Daemon::start();
    d.load_busybox();
    let v = vol();
    d.ok(&[
        "run", "-d", "--name", "sc", "-v", &v, "busybox", "sleep", "300",
    ]);
    let o = d.berth(&["exec", "sc", "/t/sysprobe", "unshare_user"]);
    assert_eq!(stdout(&o).trim(), "EPERM", "{}", stderr(&o));
    let o = d.berth(&["exec", "sc", "/t/sysprobe", "clone3"]);
    assert_eq!(stdout(&o).trim(), "ENOSYS", "{}", stderr(&o));
    let o = d.berth(&["exec", "sc", "unshare", "-U", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // the filter is in place in the exec'd process
    let st = d.ok(&["exec", "sc", "grep", "Seccomp:", "/proc/self/status"]);
    assert!(st.contains('2'), "{st}");
    // an unconfined container's exec has none
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sc2",
        "--security-opt",
        "seccomp=unconfined",
        "-v",
        &v,
        "busybox",
        "sleep",
        "300",
    ]);
    let o = d.berth(&["exec", "sc2", "/t/sysprobe", "unshare_user"]);
    assert_eq!(stdout(&o).trim(), "ok", "{}", stderr(&o));
    d.ok(&["rm", "-f", "sc", "sc2"]);
}

#[test]
fn no_new_privileges_stops_setuid() {
    let d = Daemon::start();
    d.load_busybox();
    let v = vol();
    let euid = |opts: &[&str]| {
        let mut a = vec!["run", "--rm", "-u", "1000", "-v", &v];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["busybox", "/t/suid-probe", "euid"]);
        let o = d.berth(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    // docker's default: a set-uid root binary gives euid 0
    assert_eq!(euid(&[]), "0");
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        assert_eq!(euid(&["--security-opt", opt]), "1000", "{opt}");
    }
    assert_eq!(euid(&["--security-opt", "no-new-privileges=false"]), "0");
    // with no_new_privs the filter still goes in (last), and exec inherits the setting
    d.ok(&[
        "run",
        "-d",
        "--name",
        "nnp",
        "-u",
        "1000",
        "--security-opt",
        "no-new-privileges",
        "-v",
        &v,
        "busybox",
        "sleep",
        "300",
    ]);
    let o = d.berth(&["exec", "nnp", "/t/suid-probe", "euid"]);
    assert_eq!(stdout(&o).trim(), "1000", "{}", stderr(&o));
    let o = d.berth(&["exec", "nnp", "/t/sysprobe", "unshare_user"]);
    assert_eq!(stdout(&o).trim(), "EPERM", "{}", stderr(&o));
    let st = d.ok(&["exec", "nnp", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(st.contains('1'), "{st}");
    d.ok(&["rm", "-f", "nnp"]);
}

/// `berthd --no-new-privileges`: the default for every container, which may still say
/// `no-new-privileges=false`; `/info` lists it, as docker's.
#[test]
fn daemon_default_no_new_privileges() {
    let d = Daemon::start_args(&["--no-new-privileges"]);
    d.load_busybox();
    let v = vol();
    let euid = |opts: &[&str]| {
        let mut a = vec!["run", "--rm", "-u", "1000", "-v", &v];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["busybox", "/t/suid-probe", "euid"]);
        let o = d.berth(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    assert_eq!(euid(&[]), "1000");
    assert_eq!(euid(&["--security-opt", "no-new-privileges=false"]), "0");
    let (_, _, b) = d.http("GET", "/info", None);
    let info: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert!(
        info["SecurityOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "name=no-new-privileges"),
        "{}",
        info["SecurityOptions"]
    );
}

#[test]
fn info_lists_the_security_options() {
    let d = Daemon::start();
    let (st, _, b) = d.http("GET", "/info", None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let opts = v["SecurityOptions"].as_array().unwrap();
    assert!(
        opts.iter().any(|o| o == "name=seccomp,profile=builtin"),
        "{opts:?}"
    );
    assert!(
        !opts.iter().any(|o| o == "name=no-new-privileges"),
        "{opts:?}"
    );
    if let Some(o) = d.docker(&["info", "--format", "{{json .SecurityOptions}}"]) {
        assert!(
            stdout(&o).contains("name=seccomp,profile=builtin"),
            "{}",
            stdout(&o)
        );
    }
}

/// The same probes under a private dockerd (20.10 + runc): berth answers as docker does.
#[test]
fn answers_match_a_private_dockerd() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(dk) = common::dockerd::Dockerd::start(&d.root) else {
        return;
    };
    let o = dk.docker(&["load", "-i", common::busybox_tar().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = vol();
    let cases: &[(&[&str], &str)] = &[
        (&[], "unshare_user"),
        (&[], "unshare_mnt"),
        (&[], "clone_newns"),
        (&[], "keyctl"),
        (&[], "add_key"),
        (&[], "perf_event_open"),
        (&[], "mbind"),
        (&[], "set_mempolicy"),
        (&[], "personality_bad"),
        (&[], "clone3"),
        (&[], "clone"),
        (&["--cap-add", "SYS_ADMIN"], "unshare_mnt"),
        (&["--cap-add", "SYS_ADMIN"], "clone3"),
        (&["--cap-add", "SYS_NICE"], "set_mempolicy"),
        (&["--security-opt", "seccomp=unconfined"], "unshare_user"),
        // (no --privileged here: runc cannot give all caps on this host, "unable to apply caps")
        (&["-u", "1000"], "suid:euid"),
        (
            &["-u", "1000", "--security-opt", "no-new-privileges"],
            "suid:euid",
        ),
    ];
    let mut diffs = Vec::new();
    for (opts, what) in cases {
        let (bin, what) = match what.strip_prefix("suid:") {
            Some(w) => ("/t/suid-probe", w),
            None => ("/t/sysprobe", *what),
        };
        let mut args = vec!["run", "--rm", "-v", &v];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["busybox", bin, what]);
        let ours = stdout(&d.docker(&args).expect("docker CLI"))
            .trim()
            .to_string();
        let o = dk.docker(&args);
        let theirs = stdout(&o).trim().to_string();
        assert!(
            !theirs.is_empty(),
            "dockerd gave no answer for {opts:?} {what}: {}",
            stderr(&o)
        );
        if ours != theirs {
            diffs.push(format!("{opts:?} {what}: berth {ours}, docker {theirs}"));
        }
    }
    assert!(diffs.is_empty(), "{diffs:#?}");
}
