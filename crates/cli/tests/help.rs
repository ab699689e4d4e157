//! `berth --help` against the commands the binary really dispatches:
//! every listed command and group subcommand answers `--help` (and
//! `berth help …`) with its own usage; every word the dispatcher accepts
//! is listed; unknown words get docker's texts and exit codes. No daemon
//! is needed: help never connects.

use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        // a socket that does not exist: help must not need the daemon
        .env("BERTH_HOST", "unix:///nonexistent/berth-help-test.sock")
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `NAME  description` rows of one `Title:` section of a help text.
fn section(text: &str, title: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line == title {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if line.is_empty() {
            break;
        }
        let body = line.strip_prefix("  ").expect("indented row");
        let (name, about) = body.split_once(' ').expect("name and description");
        rows.push((name.to_string(), about.trim_start().to_string()));
    }
    rows
}

fn sections(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.ends_with(':') && !l.starts_with(' '))
        .map(|l| l.to_string())
        .collect()
}

/// Asserts `berth <path> --help` and `berth help <path>` print the same
/// help, naming the command in its usage line and with `about` under it.
fn check_command_help(path: &[&str], about: &str) {
    let mut args = path.to_vec();
    args.push("--help");
    let o = berth(&args);
    let joined = path.join(" ");
    assert!(o.status.success(), "berth {joined} --help: {}", stderr(&o));
    let text = stdout(&o);
    // cobra names a command by the path it was invoked by
    assert!(
        text.starts_with(&format!("Usage:  berth {joined} ")),
        "berth {joined} --help:\n{text}"
    );
    assert!(
        text.contains(&format!("\n\n{about}")),
        "berth {joined} --help does not say {about:?}:\n{text}"
    );
    let mut args = vec!["help"];
    args.extend_from_slice(path);
    let h = berth(&args);
    assert!(h.status.success(), "berth help {joined}: {}", stderr(&h));
    assert_eq!(stdout(&h), text, "berth help {joined}");
}

#[test]
fn main_help_has_docker_sections_and_every_command() {
    let o = berth(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert_eq!(
        sections(&text),
        [
            "Common Commands:",
            "Management Commands:",
            "Commands:",
            "Global Options:"
        ],
        "{text}"
    );
    assert!(!text.contains("Docker version") && !text.contains("Manage Docker"));
    let common = section(&text, "Common Commands:");
    let groups = section(&text, "Management Commands:");
    let others = section(&text, "Commands:");
    assert!(common.iter().any(|(n, _)| n == "run"));
    assert_eq!(
        groups.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["container", "image", "network", "system", "volume"]
    );
    // docker sorts the other commands by name
    let names: Vec<&str> = others.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for (name, about) in common.iter().chain(&others) {
        assert!(!about.contains("Docker version") && !about.contains("Docker objects"));
        check_command_help(&[name], about);
    }
    let mut listed_subs = 0;
    for (group, about) in &groups {
        let o = berth(&[group, "--help"]);
        assert!(o.status.success(), "berth {group} --help");
        let gh = stdout(&o);
        assert!(
            gh.starts_with(&format!("Usage:  berth {group} COMMAND\n\n{about}\n")),
            "{gh}"
        );
        // `berth GROUP` alone: the same help on stderr, exit 0, as docker
        let bare = berth(&[group]);
        assert!(bare.status.success());
        assert_eq!(stderr(&bare), gh);
        assert_eq!(stdout(&berth(&["help", group])), gh);
        for (sub, sub_about) in section(&gh, "Commands:") {
            check_command_help(&[group, &sub], &sub_about);
            listed_subs += 1;
        }
    }
    assert!(listed_subs >= 50, "{listed_subs} group subcommands listed");
}

/// Every word the dispatcher accepts appears in the help: words that are
/// not listed must be refused as unknown, and the aliases each help
/// names must be accepted and listed.
#[test]
fn every_accepted_spelling_is_listed() {
    let text = stdout(&berth(&["--help"]));
    let mut listed: Vec<String> = section(&text, "Common Commands:")
        .into_iter()
        .chain(section(&text, "Commands:"))
        .map(|(n, _)| n)
        .collect();
    let groups: Vec<String> = section(&text, "Management Commands:")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for g in &groups {
        let gh = stdout(&berth(&[g, "--help"]));
        let subs: Vec<String> = section(&gh, "Commands:")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for s in &subs {
            let h = stdout(&berth(&[g, s, "--help"]));
            // each spelling in "Aliases:" works and leads back to a listed command
            if let Some(line) = h.split("Aliases:\n  ").nth(1) {
                let line = line.lines().next().unwrap_or("");
                for alias in line.split(", ") {
                    let words: Vec<&str> = alias.split(' ').skip(1).collect();
                    match words.as_slice() {
                        [top] => assert!(
                            listed.iter().any(|l| l == top),
                            "alias {alias} is not listed in berth --help"
                        ),
                        [grp, sub] => {
                            assert_eq!(grp, g, "{alias}");
                            let mut a = words.clone();
                            a.push("--help");
                            let o = berth(&a);
                            assert!(o.status.success(), "{alias} --help");
                            assert_eq!(stdout(&o), h, "{alias} is not the same command as {g} {s}");
                            let _ = sub;
                        }
                        _ => panic!("odd alias {alias}"),
                    }
                }
            }
        }
        listed.extend(subs.iter().map(|s| format!("{g} {s}")));
    }
    // words close to real ones but not commands are refused with docker's text
    for bogus in [
        "images2", "volumes", "networks", "builder", "swarm", "plugin", "context",
    ] {
        let o = berth(&[bogus]);
        assert_eq!(o.status.code(), Some(1), "{bogus}");
        assert_eq!(
            stderr(&o),
            format!("berth: unknown command: berth {bogus}\n\nRun 'berth --help' for more information\n")
        );
        assert!(!listed.contains(&bogus.to_string()));
    }
    for g in &groups {
        let o = berth(&[g, "frobnicate"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).starts_with(&format!(
                "berth: unknown command: berth {g} frobnicate\n\nUsage:  berth {g}"
            )),
            "{}",
            stderr(&o)
        );
        let o = berth(&[g, "--frobnicate"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).starts_with("unknown flag: --frobnicate\n\nUsage:  berth "));
    }
    let o = berth(&["help", "frobnicate"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "unknown help topic: frobnicate\n");
}

/// The same sections and command rows as the docker CLI's help, with
/// berth where docker names itself; only the commands docker has that
/// berth does not implement (and its swarm section) are missing.
#[test]
fn matches_docker_help_when_installed() {
    let docker = "/usr/local/bin/docker";
    if !std::path::Path::new(docker).exists() {
        eprintln!("no docker CLI: skipped");
        return;
    }
    let dout = |args: &[&str]| {
        let o = Command::new(docker)
            .args(args)
            .env(
                "DOCKER_CONFIG",
                std::env::temp_dir().join("berth-help-test-docker"),
            )
            .output()
            .expect("run docker");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let product = |s: &str| {
        s.replace("Docker version", "berth version")
            .replace("Docker objects", "berth objects")
            .replace("Manage Docker", "Manage berth")
            .replace("docker disk usage", "berth disk usage")
    };
    let ours = stdout(&berth(&["--help"]));
    let theirs = dout(&["--help"]);
    for title in ["Common Commands:", "Commands:"] {
        let b = section(&ours, title);
        let d: Vec<(String, String)> = section(&theirs, title)
            .into_iter()
            .map(|(n, a)| (n, product(&a)))
            .collect();
        // docker's rows in docker's order, each one berth lists
        assert_eq!(b, d, "{title}");
    }
    let b = section(&ours, "Management Commands:");
    let d = section(&theirs, "Management Commands:");
    for row in &b {
        let want = d
            .iter()
            .find(|(n, _)| *n == row.0)
            .expect("docker has the group");
        assert_eq!(row.1, product(&want.1));
        let bg = section(&stdout(&berth(&[&row.0, "--help"])), "Commands:");
        let dg: Vec<(String, String)> = section(&dout(&[&row.0, "--help"]), "Commands:")
            .into_iter()
            .map(|(n, a)| (n, product(&a)))
            .collect();
        for r in &bg {
            assert!(dg.contains(r), "{} {} differs from docker's", row.0, r.0);
        }
        // docker's `volume update` is for cluster volumes, which need a swarm
        let missing: Vec<&String> = dg
            .iter()
            .filter(|r| !bg.contains(r))
            .map(|r| &r.0)
            .collect();
        assert!(
            missing.is_empty() || (row.0 == "volume" && missing == ["update"]),
            "berth {} lacks {missing:?}",
            row.0
        );
    }
}
