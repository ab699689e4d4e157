//! berth: docker's command line over the Engine API.

mod auth;
mod build;
mod client;
mod cmds;
mod commands;
mod completion;
mod cp;
mod ctr;
mod flags;
mod http;
mod img;
mod jv;
mod mountopts;
mod net;
mod netopts;
mod ports;
mod progress;
mod reference;
mod registry;
mod run;
mod stdcopy;
mod support;
mod sys;
mod term;
mod tmpl;
mod units;
mod vol;

use client::{Client, DaemonError};
use std::fmt;

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// An error already worded for the user, with the exit code to use.
#[derive(Debug)]
pub struct CliError {
    pub msg: String,
    pub code: i32,
}
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}
impl std::error::Error for CliError {}

pub fn fail(msg: impl Into<String>, code: i32) -> anyhow::Error {
    CliError {
        msg: msg.into(),
        code,
    }
    .into()
}

/// Usage line for each command (after `berth CMD `).
pub fn usage_of(cmd: &str) -> &'static str {
    match cmd {
        "run" | "create" => "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        "ps" | "version" | "info" | "load" | "events" | "container prune" => "[OPTIONS]",
        "exec" => "[OPTIONS] CONTAINER COMMAND [ARG...]",
        "attach" => "[OPTIONS] CONTAINER",
        "rename" => "CONTAINER NEW_NAME",
        "top" => "CONTAINER [ps OPTIONS]",
        "stats" => "[OPTIONS] [CONTAINER...]",
        "images" | "image ls" => "[OPTIONS] [REPOSITORY[:TAG]]",
        "image prune" | "system prune" | "volume prune" | "system df" | "volume ls" => "[OPTIONS]",
        "rmi" | "image rm" | "save" | "image save" => "[OPTIONS] IMAGE [IMAGE...]",
        "history" | "image history" => "[OPTIONS] IMAGE",
        "image inspect" => "[OPTIONS] IMAGE [IMAGE...]",
        "tag" => "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "commit" => "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        "diff" => "CONTAINER",
        "export" => "[OPTIONS] CONTAINER",
        "import" | "image import" => "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        "cp" => "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        "volume create" => "[OPTIONS] [VOLUME]",
        "volume inspect" | "volume rm" => "[OPTIONS] VOLUME [VOLUME...]",
        "logs" => "[OPTIONS] CONTAINER",
        "inspect" => "[OPTIONS] NAME|ID [NAME|ID...]",
        "port" => "CONTAINER [PRIVATE_PORT[/PROTO]]",
        "network inspect" => "[OPTIONS] NETWORK [NETWORK...]",
        "pull" => "[OPTIONS] NAME[:TAG|@DIGEST]",
        "build" | "image build" => "[OPTIONS] PATH | URL | -",
        "push" => "[OPTIONS] NAME[:TAG]",
        "login" => "[OPTIONS] [SERVER]",
        "logout" => "[SERVER]",
        "search" => "[OPTIONS] TERM",
        "network ls" | "network prune" => "[OPTIONS]",
        "network create" => "[OPTIONS] NETWORK",
        "network rm" => "NETWORK [NETWORK...]",
        "network connect" | "network disconnect" => "[OPTIONS] NETWORK CONTAINER",
        _ => "[OPTIONS] CONTAINER [CONTAINER...]",
    }
}

/// The command as it was invoked, when that was through a group: (handler key, path).
static INVOKED: std::sync::OnceLock<(&'static str, String)> = std::sync::OnceLock::new();

/// The name texts show for the command whose handler key is `cmd`: the group path it was
/// invoked by (`container attach`, `container ls` for key `ps`), as cobra names commands by
/// their path; else `cmd`.
pub fn shown(cmd: &str) -> String {
    match INVOKED.get() {
        Some((key, path)) if *key == cmd => path.clone(),
        _ => cmd.to_string(),
    }
}

/// docker's flag error: message, usage, hint; exit 125.
pub fn flag_error(cmd: &str, msg: &str) -> anyhow::Error {
    let usage = usage_of(cmd);
    let cmd = shown(cmd);
    fail(
        format!(
            "{msg}\n\nUsage:  berth {cmd} {usage}\n\nRun 'berth {cmd} --help' for more information"
        ),
        125,
    )
}

/// docker's "requires at least N argument(s)" error; exit 1.
pub fn args_error(cmd: &str, what: &str) -> anyhow::Error {
    // cobra's MinArgs says "See", the exact/range checks say "Run".
    let verb = if what.starts_with("requires at least") && !what.contains("at most") {
        "See"
    } else {
        "Run"
    };
    let usage = usage_of(cmd);
    let cmd = shown(cmd);
    fail(
        format!(
            "berth: 'berth {cmd}' {what}\n\nUsage:  berth {cmd} {usage}\n\n{verb} 'berth {cmd} --help' for more information"
        ),
        1,
    )
}

pub fn help_text(cmd: &str, specs: &[flags::Spec]) -> String {
    let mut s = format!(
        "Usage:  berth {} {}\n\n{}Options:\n",
        shown(cmd),
        usage_of(cmd),
        commands::about_section(cmd)
    );
    // docker keeps these spellings working but out of the help
    const HIDDEN: [&str; 3] = ["net", "net-alias", "dns-opt"];
    for sp in specs.iter().filter(|s| !HIDDEN.contains(&s.long)) {
        let short = sp
            .short
            .map(|c| format!("-{c}, "))
            .unwrap_or_else(|| "    ".into());
        s.push_str(&format!(
            "  {short}--{}{}\n",
            sp.long,
            if sp.value { " string" } else { "" }
        ));
    }
    s
}

fn real_main() -> anyhow::Result<i32> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut host = std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty());
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "-H" | "--host" => {
                let v = argv
                    .get(i + 1)
                    .ok_or_else(|| fail(format!("flag needs an argument: {a}"), 125))?;
                host = Some(v.clone());
                i += 2;
            }
            _ if a.starts_with("--host=") => {
                host = Some(a["--host=".len()..].to_string());
                i += 1;
            }
            _ if a.starts_with("-H") && a.len() > 2 => {
                host = Some(a[2..].trim_start_matches('=').to_string());
                i += 1;
            }
            "-v" | "--version" => {
                println!("berth version {}", env!("CARGO_PKG_VERSION"));
                return Ok(0);
            }
            "--help" | "-h" => {
                print!("{}", commands::main_help());
                return Ok(0);
            }
            "-D" | "--debug" => i += 1,
            _ if a.starts_with('-') => {
                return Err(fail(format!("unknown flag: {a}\n\nUsage:  berth [OPTIONS] COMMAND\n\nRun 'berth --help' for more information"), 125));
            }
            _ => break,
        }
    }
    let Some(first) = argv.get(i) else {
        // docker: the help on stderr, exit 0
        eprint!("{}", commands::main_help());
        return Ok(0);
    };
    let socket = client::parse_host(host.as_deref().unwrap_or(DEFAULT_HOST))?;
    let connect = || Client::connect(socket.clone());
    dispatch(&connect, first, &argv[i + 1..])
}

/// `berth CMD ARGS…`: a top-level command, a group and its subcommand,
/// or `help [CMD…]`.
fn dispatch(connect: commands::Connect, word: &str, rest: &[String]) -> anyhow::Result<i32> {
    // hidden from the help, as docker 28's is
    if word == "completion" {
        return completion::completion(rest);
    }
    if word == "help" {
        return help_topic(connect, rest);
    }
    if let Some(c) = commands::top_level(word) {
        return (c.run)(connect, c.key, rest);
    }
    let Some(g) = commands::group(word) else {
        return Err(fail(
            format!(
                "berth: unknown command: berth {word}\n\nRun 'berth --help' for more information"
            ),
            1,
        ));
    };
    let Some(sub) = rest.first() else {
        eprint!("{}", commands::group_help(g));
        return Ok(0);
    };
    if let Some(c) = g.sub(sub) {
        let _ = INVOKED.set((c.key, format!("{} {}", g.name, c.name)));
        return (c.run)(connect, c.key, &rest[1..]);
    }
    let usage = format!("Usage:  berth {}{}", g.name, g.bare_usage);
    let more = format!("Run 'berth {} --help' for more information", g.name);
    match sub.as_str() {
        "--help" | "-h" => {
            print!("{}", commands::group_help(g));
            Ok(0)
        }
        s if s.starts_with('-') => {
            Err(fail(format!("unknown flag: {s}\n\n{usage}\n\n{more}"), 125))
        }
        s => Err(fail(
            format!(
                "berth: unknown command: berth {} {s}\n\n{usage}\n\n{more}",
                g.name
            ),
            1,
        )),
    }
}

/// `berth help [CMD [SUB]]`: the command's `--help`, or docker's
/// "unknown help topic".
fn help_topic(connect: commands::Connect, topic: &[String]) -> anyhow::Result<i32> {
    let Some(word) = topic.first() else {
        print!("{}", commands::main_help());
        return Ok(0);
    };
    let help = ["--help".to_string()];
    if let Some(c) = commands::top_level(word) {
        return (c.run)(connect, c.key, &help);
    }
    if word == "help" {
        print!("Usage:  berth help [command]\n\nHelp about the command\n");
        return Ok(0);
    }
    let Some(g) = commands::group(word) else {
        return Err(fail(format!("unknown help topic: {word}"), 1));
    };
    match topic.get(1) {
        None => {
            print!("{}", commands::group_help(g));
            Ok(0)
        }
        Some(s) => match g.sub(s) {
            Some(c) => {
                let _ = INVOKED.set((c.key, format!("{} {}", g.name, c.name)));
                (c.run)(connect, c.key, &help)
            }
            None => Err(fail(format!("unknown help topic: {s}"), 1)),
        },
    }
}

fn main() {
    let code = match real_main() {
        Ok(c) => c,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<CliError>() {
                if !c.msg.is_empty() {
                    eprintln!("{}", c.msg);
                }
                c.code
            } else if let Some(d) = e.downcast_ref::<DaemonError>() {
                eprintln!("{d}");
                1
            } else {
                eprintln!("{e}");
                1
            }
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
