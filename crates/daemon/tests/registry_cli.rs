//! The berth CLI's registry commands (pull, push, login, logout, search, run's auto-pull)
//! against a real registry (Debian's docker-registry on loopback):
//! (a) through a private dockerd 20.10, side by side with the docker CLI 28 — this proves the
//!     CLI's requests and output are docker's, independent of berthd;
//! (b) through a real berthd (needs the daemon side of issue 9).

mod common;
use common::dockerd::Dockerd;
use common::registry::Registry;
use common::{stderr, stdout, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `berth -H host args` with its own config directory (never the user's ~/.berth).
fn berth(host: &str, cfg: &Path, args: &[&str]) -> Output {
    berth_in(host, cfg, args, None)
}

fn berth_in(host: &str, cfg: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(common::bin_dir().join("berth"))
        .env("BERTH_CONFIG", cfg)
        .env_remove("BERTH_HOST")
        .arg("-H")
        .arg(host)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    if let Some(i) = input {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(i).expect("write stdin");
    }
    child.wait_with_output().expect("berth output")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}): {}{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// berth's output with `berth` spelled `docker` (usage hints name the program).
fn as_docker(s: &str) -> String {
    s.replace("berth", "docker")
}

/// Runs the same command through docker and berth; both must agree on exit code, stdout
/// and stderr, byte for byte (docker's config-directory paths aside).
fn same(dk: &Dockerd, cfg: &Path, args: &[&str]) -> Output {
    let d = dk.docker(args);
    let b = berth(&dk.host(), cfg, args);
    assert_eq!(
        d.status.code(),
        b.status.code(),
        "{args:?}: exit codes\ndocker: {}{}\nberth: {}{}",
        stdout(&d),
        stderr(&d),
        stdout(&b),
        stderr(&b)
    );
    assert_eq!(stdout(&d), as_docker(&stdout(&b)), "{args:?}: stdout");
    let derr = stderr(&d).replace(&dk.root.join("cfg").display().to_string(), "CFG");
    let berr = stderr(&b).replace(&cfg.display().to_string(), "CFG");
    assert_eq!(derr, as_docker(&berr), "{args:?}: stderr");
    b
}

fn digest_of(push_out: &str) -> String {
    push_out
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("a digest in the push output")
        .to_string()
}

/// (a) push, pull (by tag, by digest, -a, -q, --platform), reference errors, stream errors,
/// run/create auto-pull and --pull, images --digests: berth through a private dockerd 20.10
/// prints what docker 28 prints.
#[test]
fn pull_push_run_match_docker_through_dockerd() {
    let root = common::tmpdir("regcli");
    let Some(reg) = Registry::start() else {
        return;
    };
    let Some(dk) = Dockerd::start(&root) else {
        return;
    };
    let cfg = root.join("berth-cfg");
    let tar = common::busybox_tar().to_str().expect("utf8").to_string();
    assert!(dk.docker(&["load", "-i", &tar]).status.success());
    let img = reg.image("bb:1");
    assert!(dk.docker(&["tag", "busybox", &img]).status.success());

    // first push by berth: the layer is uploaded
    let out = ok(&berth(&dk.host(), &cfg, &["push", &img]), "berth push");
    let name = reg.image("bb");
    assert!(
        out.starts_with(&format!("The push refers to repository [{name}]\n")),
        "{out}"
    );
    assert!(out.contains(": Pushed\n"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let digest = digest_of(&out);
    // again: docker and berth alike say the layer exists
    let b = same(&dk, &cfg, &["push", &img]);
    assert!(stdout(&b).contains(": Layer already exists\n"));
    same(&dk, &cfg, &["push", "-q", &img]);
    same(&dk, &cfg, &["push", "-a", &name]);
    same(&dk, &cfg, &["push", "-a", &img]);
    same(&dk, &cfg, &["push", &reg.image("nosuch:3")]);
    same(&dk, &cfg, &["push", &format!("{name}@{digest}")]);
    assert!(dk
        .docker(&["tag", "busybox", &reg.image("bb:latest")])
        .status
        .success());
    same(&dk, &cfg, &["push", &name]);

    // pull into an engine without the image: per-layer lines, then the reference
    assert!(dk
        .docker(&["rmi", &img, &reg.image("bb:latest"), "busybox"])
        .status
        .success());
    let out = ok(&berth(&dk.host(), &cfg, &["pull", &img]), "berth pull");
    assert!(out.starts_with("1: Pulling from bb\n"), "{out}");
    assert!(out.contains(": Pulling fs layer\n"), "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no cursor movement off a terminal: {out:?}"
    );
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {img}\n{img}\n"
        )),
        "{out}"
    );
    let ls = ok(
        &berth(&dk.host(), &cfg, &["images", "--digests", &name]),
        "images",
    );
    assert!(
        ls.contains(&digest),
        "images --digests shows the pulled digest: {ls}"
    );
    // the same pulls, docker and berth side by side
    same(&dk, &cfg, &["pull", &img]);
    same(&dk, &cfg, &["pull", "-q", &img]);
    let out = ok(&berth(&dk.host(), &cfg, &["pull", &name]), "pull latest");
    assert!(out.starts_with("Using default tag: latest\n"), "{out}");
    same(&dk, &cfg, &["pull", &name]);
    same(&dk, &cfg, &["pull", "-a", &name]);
    same(&dk, &cfg, &["pull", &format!("{name}@{digest}")]);
    same(&dk, &cfg, &["pull", &format!("{img}@{digest}")]);
    same(&dk, &cfg, &["pull", "--platform", "linux/amd64", &img]);
    // errors: from the daemon, from the reference, from the flags
    let b = same(&dk, &cfg, &["pull", &reg.image("nosuch")]);
    assert!(stderr(&b).starts_with("Error response from daemon: manifest for"));
    same(&dk, &cfg, &["pull", "-a", &img]);
    let b = same(&dk, &cfg, &["pull", "Busybox"]);
    assert_eq!(
        stderr(&b),
        "invalid reference format: repository name (library/Busybox) must be lowercase\n"
    );
    same(&dk, &cfg, &["pull", &reg.image("Busybox")]);
    same(&dk, &cfg, &["pull", "a b"]);
    same(&dk, &cfg, &["pull"]);
    same(&dk, &cfg, &["push"]);

    // on a terminal: each layer's line redrawn in place, bars as docker draws them
    assert!(dk.docker(&["rmi", &img, &name]).status.success());
    let typescript = root.join("typescript");
    let st = Command::new("script")
        .env("BERTH_CONFIG", &cfg)
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "stty cols 120; {} -H {} pull {img}",
            common::bin_dir().join("berth").display(),
            dk.host()
        ))
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("script (util-linux)");
    assert!(st.success());
    let tty =
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned();
    assert!(
        tty.contains("1: Pulling from bb\r\n\r\n\x1b[1A\x1b[2K\r"),
        "a new layer line, then up one line and erase it: {tty:?}"
    );
    assert!(tty.contains(": Pull complete \r\x1b[1B"), "{tty:?}");
    assert!(
        tty.contains(&format!(
            "Status: Downloaded newer image for {img}\r\n{img}\r\n"
        )),
        "{tty:?}"
    );

    // run / create of a missing image pull it first (progress on stderr)
    assert!(dk.docker(&["rmi", &img]).status.success());
    let o = berth(&dk.host(), &cfg, &["run", "--rm", &img, "echo", "hi"]);
    assert_eq!(ok(&o, "run auto-pull"), "hi\n");
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "Unable to find image '{img}' locally\n1: Pulling from bb\n"
        )),
        "{e}"
    );
    assert!(
        e.ends_with(&format!("Status: Downloaded newer image for {img}\n")),
        "{e}"
    );
    same(
        &dk,
        &cfg,
        &["run", "--rm", "--pull", "always", &img, "echo", "hi"],
    );
    // -q: the pull says nothing
    assert!(dk.docker(&["rmi", &img]).status.success());
    let o = berth(&dk.host(), &cfg, &["run", "-q", "--rm", &img, "echo", "hi"]);
    assert_eq!(ok(&o, "run -q"), "hi\n");
    assert_eq!(stderr(&o), "");
    same(
        &dk,
        &cfg,
        &["run", "--rm", "--pull", "never", &reg.image("bb:2"), "true"],
    );
    same(
        &dk,
        &cfg,
        &["create", "--pull", "never", &reg.image("bb:2")],
    );
    same(&dk, &cfg, &["run", "--rm", "--pull", "bogus", &img, "true"]);
    same(&dk, &cfg, &["run", "--rm", &reg.image("nosuch"), "true"]);
    same(&dk, &cfg, &["create", &reg.image("nosuch")]);
    same(&dk, &cfg, &["run", "--rm", "Busybox"]);
    drop(dk);
    drop(reg);
    let _ = std::fs::remove_dir_all(&root);
}

/// (a) login/logout against an htpasswd registry through dockerd: docker's messages and
/// exit codes, a config.json byte-identical to docker's (mode 0600), X-Registry-Auth sent
/// from it on push and pull, and nothing sent once logged out.
#[test]
fn login_logout_match_docker_through_dockerd() {
    let root = common::tmpdir("regauth");
    let Some(reg) = Registry::start_htpasswd("alice", "s3cret") else {
        return;
    };
    let Some(dk) = Dockerd::start(&root) else {
        return;
    };
    let cfg = root.join("berth-cfg");
    let server = reg.addr.as_str();
    let b = same(&dk, &cfg, &["login", "-u", "alice", "-p", "s3cret", server]);
    assert_eq!(stdout(&b), "Login Succeeded\n");
    assert!(stderr(&b)
        .starts_with("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"));
    let mine = std::fs::read(cfg.join("config.json")).expect("berth config.json");
    let theirs = std::fs::read(dk.root.join("cfg/config.json")).expect("docker config.json");
    assert_eq!(
        String::from_utf8_lossy(&mine),
        String::from_utf8_lossy(&theirs)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg.join("config.json"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // same credentials again: no new "stored unencrypted" warning, as docker
    same(&dk, &cfg, &["login", "-u", "alice", "-p", "s3cret", server]);
    // no flags: the stored credentials are tried first
    let b = same(&dk, &cfg, &["login", server]);
    assert_eq!(stdout(&b), "Login Succeeded\n");
    assert!(
        stderr(&b).starts_with("Authenticating with existing credentials... [Username: alice]\n")
    );
    same(&dk, &cfg, &["login", "-u", "alice", "-p", "wrong", server]);
    same(&dk, &cfg, &["login", "-u", "alice", server]);
    same(&dk, &cfg, &["login", "--password-stdin", server]);
    same(&dk, &cfg, &["login", "-p", "x", "--password-stdin", server]);
    let o = berth_in(
        &dk.host(),
        &cfg,
        &["login", "-u", "alice", "--password-stdin", server],
        Some(b"s3cret\n"),
    );
    assert_eq!(ok(&o, "login --password-stdin"), "Login Succeeded\n");

    // push and pull with the stored credentials
    let tar = common::busybox_tar().to_str().expect("utf8").to_string();
    assert!(dk.docker(&["load", "-i", &tar]).status.success());
    let img = reg.image("private/bb:1");
    assert!(dk.docker(&["tag", "busybox", &img]).status.success());
    let out = ok(&berth(&dk.host(), &cfg, &["push", &img]), "push with login");
    assert!(out.contains(": Pushed\n"), "{out}");
    assert!(dk.docker(&["rmi", &img]).status.success());
    let out = ok(&berth(&dk.host(), &cfg, &["pull", &img]), "pull with login");
    assert!(out.ends_with(&format!("{img}\n")), "{out}");
    // run's auto-pull sends them too
    assert!(dk.docker(&["rmi", &img]).status.success());
    let o = berth(&dk.host(), &cfg, &["run", "--rm", &img, "echo", "in"]);
    assert_eq!(ok(&o, "run auto-pull with login"), "in\n");
    // a config without credentials: the registry refuses
    let other = root.join("no-login");
    let o = berth(&dk.host(), &other, &["pull", &img]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no basic auth credentials"),
        "{}",
        stderr(&o)
    );

    // on a terminal: prompts, and the password is not echoed
    let tcfg = root.join("tty-cfg");
    let typescript = root.join("typescript");
    let st = Command::new("sh")
        .env("BERTH_CONFIG", &tcfg)
        .arg("-c")
        .arg(format!(
            "(sleep 0.5; echo alice; sleep 0.5; echo s3cret; sleep 1) | script -q -e -c '{} -H {} login {server}' {} >/dev/null",
            common::bin_dir().join("berth").display(),
            dk.host(),
            typescript.display()
        ))
        .status()
        .expect("script (util-linux)");
    assert!(st.success());
    let tty =
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned();
    assert!(tty.contains("Username: alice\r\nPassword: \r\n"), "{tty:?}");
    assert!(!tty.contains("s3cret"), "the password was echoed: {tty:?}");
    assert!(tty.contains("Login Succeeded"), "{tty:?}");
    assert_eq!(
        std::fs::read(tcfg.join("config.json")).expect("config"),
        std::fs::read(cfg.join("config.json")).expect("config")
    );

    let b = same(&dk, &cfg, &["logout", server]);
    assert_eq!(
        stdout(&b),
        format!("Removing login credentials for {server}\n")
    );
    let text = std::fs::read_to_string(cfg.join("config.json")).expect("config");
    assert!(!text.contains(server), "{text}");
    let o = berth(&dk.host(), &cfg, &["pull", &img]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    same(&dk, &cfg, &["logout", server]);
    same(&dk, &cfg, &["logout"]);
    drop(dk);
    drop(reg);
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------- (b) through berthd

fn cfg_dir(d: &Daemon) -> PathBuf {
    d.root.join("berth-cfg")
}

/// (b) berth push and pull through berthd, then run's auto-pull and --pull never.
#[test]
fn berthd_push_pull_and_run_auto_pull() {
    let Some(reg) = Registry::start() else {
        return;
    };
    let d = Daemon::start();
    let cfg = cfg_dir(&d);
    d.load_busybox();
    let img = reg.image("bb:1");
    d.ok(&["tag", "busybox", &img]);
    let out = ok(&berth(&d.host(), &cfg, &["push", &img]), "berth push");
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}]\n",
            reg.image("bb")
        )),
        "{out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let digest = digest_of(&out);
    d.ok(&["rmi", &img, "busybox"]);
    let out = ok(&berth(&d.host(), &cfg, &["pull", &img]), "berth pull");
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {img}\n{img}\n"
        )),
        "{out}"
    );
    let ls = d.ok(&["images", "--digests", &reg.image("bb")]);
    assert!(ls.contains(&digest), "{ls}");
    let out = ok(&berth(&d.host(), &cfg, &["pull", &img]), "pull again");
    assert!(
        out.contains(&format!("Status: Image is up to date for {img}\n")),
        "{out}"
    );
    let o = berth(&d.host(), &cfg, &["pull", &reg.image("nosuch:1")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );

    d.ok(&["rmi", &img]);
    let o = berth(
        &d.host(),
        &cfg,
        &["run", "--rm", "--pull", "never", &img, "true"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    let o = berth(&d.host(), &cfg, &["run", "--rm", &img, "echo", "hi"]);
    assert_eq!(ok(&o, "run auto-pull"), "hi\n");
    assert!(
        stderr(&o).starts_with(&format!("Unable to find image '{img}' locally\n")),
        "{}",
        stderr(&o)
    );
}

/// (b) login/logout with an htpasswd registry through berthd, and push/pull with the
/// stored credentials.
#[test]
fn berthd_login_logout() {
    let Some(reg) = Registry::start_htpasswd("alice", "s3cret") else {
        return;
    };
    let d = Daemon::start();
    let cfg = cfg_dir(&d);
    let o = berth(
        &d.host(),
        &cfg,
        &["login", "-u", "alice", "-p", "wrong", &reg.addr],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Error response from daemon: "),
        "{}",
        stderr(&o)
    );
    assert!(!cfg.join("config.json").exists());
    let o = berth(
        &d.host(),
        &cfg,
        &["login", "-u", "alice", "-p", "s3cret", &reg.addr],
    );
    assert_eq!(ok(&o, "login"), "Login Succeeded\n");
    let text = std::fs::read_to_string(cfg.join("config.json")).expect("config");
    assert!(
        text.contains(&reg.addr) && text.contains("YWxpY2U6czNjcmV0"),
        "{text}"
    );
    d.load_busybox();
    let img = reg.image("p/bb:1");
    d.ok(&["tag", "busybox", &img]);
    ok(&berth(&d.host(), &cfg, &["push", &img]), "push with login");
    d.ok(&["rmi", &img]);
    ok(&berth(&d.host(), &cfg, &["pull", &img]), "pull with login");
    let o = berth(&d.host(), &cfg, &["logout", &reg.addr]);
    assert_eq!(
        ok(&o, "logout"),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    d.ok(&["rmi", &img]);
    let o = berth(&d.host(), &cfg, &["pull", &img]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

/// (b) search: distribution has no v1 search, so berthd searches /v2/_catalog.
#[test]
fn berthd_search_uses_the_catalog() {
    let Some(reg) = Registry::start() else {
        return;
    };
    let d = Daemon::start();
    let cfg = cfg_dir(&d);
    d.load_busybox();
    for n in ["tools/bbsearch", "other"] {
        let img = reg.image(&format!("{n}:1"));
        d.ok(&["tag", "busybox", &img]);
        ok(&berth(&d.host(), &cfg, &["push", &img]), "push");
    }
    let out = ok(
        &berth(&d.host(), &cfg, &["search", &reg.image("bbsearch")]),
        "search",
    );
    let mut lines = out.lines();
    let head = lines.next().unwrap_or("");
    assert!(
        head.starts_with("NAME") && head.contains("DESCRIPTION") && head.contains("STARS"),
        "{out}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|l| l.contains("tools/bbsearch")), "{out}");
    assert!(!rows.iter().any(|l| l.contains("other")), "{out}");
    let out = ok(
        &berth(
            &d.host(),
            &cfg,
            &[
                "search",
                "--format",
                "{{.Name}}",
                "--limit",
                "1",
                &reg.image("bb"),
            ],
        ),
        "search --format",
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// (b) the docker CLI and the berth CLI against the same berthd print the same.
#[test]
fn berthd_docker_and_berth_cli_agree() {
    let Some(reg) = Registry::start_htpasswd("alice", "s3cret") else {
        return;
    };
    let d = Daemon::start();
    if d.docker(&["version"]).is_none() {
        return;
    }
    let cfg = cfg_dir(&d);
    let same_on = |args: &[&str]| -> Output {
        let k = d.docker(args).expect("docker");
        let b = berth(&d.host(), &cfg, args);
        let norm = |s: String, dir: &Path| s.replace(&dir.display().to_string(), "CFG");
        assert_eq!(
            k.status.code(),
            b.status.code(),
            "{args:?}\ndocker: {}{}\nberth: {}{}",
            stdout(&k),
            stderr(&k),
            stdout(&b),
            stderr(&b)
        );
        assert_eq!(stdout(&k), as_docker(&stdout(&b)), "{args:?}: stdout");
        assert_eq!(
            norm(stderr(&k), &d.root.join("docker-config")),
            as_docker(&norm(stderr(&b), &cfg)),
            "{args:?}: stderr"
        );
        b
    };
    let server = reg.addr.as_str();
    same_on(&["login", "-u", "alice", "-p", "nope", server]);
    same_on(&["login", "-u", "alice", "-p", "s3cret", server]);
    same_on(&["login", server]);
    d.load_busybox();
    let img = reg.image("bb:1");
    d.ok(&["tag", "busybox", &img]);
    ok(&berth(&d.host(), &cfg, &["push", &img]), "push");
    same_on(&["push", &img]);
    same_on(&["push", "-q", &img]);
    same_on(&["pull", &img]);
    same_on(&["pull", "-q", &img]);
    same_on(&["pull", &reg.image("nosuch:1")]);
    same_on(&["push", &reg.image("nosuch:1")]);
    same_on(&["run", "--rm", "--pull", "always", &img, "echo", "hi"]);
    same_on(&["run", "--rm", "--pull", "never", &reg.image("bb:2"), "true"]);
    same_on(&["logout", server]);
    same_on(&["pull", &img]);
}
