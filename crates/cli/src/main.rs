//! berth: docker's command line over the Engine API.

mod auth;
mod build;
mod client;
mod cmds;
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
        _ => "[OPTIONS] CONTAINER [CONTAINER...]",
    }
}

/// docker's flag error: message, usage, hint; exit 125.
pub fn flag_error(cmd: &str, msg: &str) -> anyhow::Error {
    fail(
        format!(
            "{msg}\n\nUsage:  berth {cmd} {}\n\nRun 'berth {cmd} --help' for more information",
            usage_of(cmd)
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
    fail(
        format!(
            "berth: 'berth {cmd}' {what}\n\nUsage:  berth {cmd} {}\n\n{verb} 'berth {cmd} --help' for more information",
            usage_of(cmd)
        ),
        1,
    )
}

pub fn help_text(cmd: &str, specs: &[flags::Spec]) -> String {
    let mut s = format!("\nUsage:  berth {cmd} {}\n\nOptions:\n", usage_of(cmd));
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

const COMMANDS: &[(&str, &str)] = &[
    (
        "attach",
        "Attach local standard input, output, and error streams to a running container",
    ),
    ("build", "Build an image from a Dockerfile"),
    ("container", "Manage containers"),
    (
        "cp",
        "Copy files/folders between a container and the local filesystem",
    ),
    ("create", "Create a new container"),
    ("events", "Get real time events from the server"),
    ("exec", "Execute a command in a running container"),
    ("images", "List images"),
    ("info", "Display system-wide information"),
    ("inspect", "Return low-level information on Docker objects"),
    ("kill", "Kill one or more running containers"),
    ("load", "Load an image from a tar archive or STDIN"),
    ("login", "Authenticate to a registry"),
    ("logout", "Log out from a registry"),
    ("logs", "Fetch the logs of a container"),
    ("network", "Manage networks"),
    ("pause", "Pause all processes within one or more containers"),
    (
        "port",
        "List port mappings or a specific mapping for the container",
    ),
    ("ps", "List containers"),
    ("pull", "Download an image from a registry"),
    ("push", "Upload an image to a registry"),
    ("rename", "Rename a container"),
    ("restart", "Restart one or more containers"),
    ("rm", "Remove one or more containers"),
    ("run", "Create and run a new container from an image"),
    ("search", "Search Docker Hub for images"),
    ("start", "Start one or more stopped containers"),
    (
        "stats",
        "Display a live stream of container(s) resource usage statistics",
    ),
    ("stop", "Stop one or more running containers"),
    ("system", "Manage Docker"),
    ("top", "Display the running processes of a container"),
    (
        "unpause",
        "Unpause all processes within one or more containers",
    ),
    ("update", "Update configuration of one or more containers"),
    (
        "wait",
        "Block until one or more containers stop, then print their exit codes",
    ),
    ("version", "Show the Docker version information"),
    ("volume", "Manage volumes"),
];

fn main_help() -> String {
    let mut s = String::from(
        "\nUsage:  berth [OPTIONS] COMMAND\n\nA container engine speaking the Docker Engine API\n\nCommands:\n",
    );
    for (c, d) in COMMANDS {
        s.push_str(&format!("  {c:<10}{d}\n"));
    }
    s.push_str("\nGlobal Options:\n  -H, --host string   Daemon socket to connect to (env BERTH_HOST, default unix:///run/berth/berth.sock)\n  -v, --version       Print version information and quit\n");
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
            "--help" | "-h" | "help" => {
                print!("{}", main_help());
                return Ok(0);
            }
            "-D" | "--debug" => i += 1,
            _ if a.starts_with('-') => {
                return Err(fail(format!("unknown flag: {a}\n\nUsage:  berth [OPTIONS] COMMAND\n\nRun 'berth --help' for more information"), 125));
            }
            _ => break,
        }
    }
    if i >= argv.len() {
        print!("{}", main_help());
        return Ok(0);
    }
    let mut cmd = argv[i].as_str();
    let mut rest = &argv[i + 1..];
    // `container X` is X (and `container ls`/`list` is ps).
    if cmd == "container" && !rest.is_empty() {
        cmd = match rest[0].as_str() {
            "ls" | "list" => "ps",
            "prune" => "container prune",
            "remove" => "rm",
            other => other,
        };
        rest = &rest[1..];
    } else if cmd == "image" && !rest.is_empty() {
        cmd = match rest[0].as_str() {
            "ls" | "list" => "image ls",
            "rm" | "remove" => "image rm",
            "prune" => "image prune",
            "inspect" => "image inspect",
            "history" => "image history",
            "tag" => "tag",
            "build" => "image build",
            "load" => "load",
            "save" => "image save",
            "import" => "image import",
            "pull" => "pull",
            "push" => "push",
            other => other,
        };
        rest = &rest[1..];
    } else if (cmd == "system" || cmd == "volume") && !rest.is_empty() {
        let sub = format!("{cmd} {}", rest[0]);
        cmd = match sub.as_str() {
            "system df" => "system df",
            "system prune" => "system prune",
            "system info" => "info",
            "system events" => "events",
            "volume create" => "volume create",
            "volume ls" | "volume list" => "volume ls",
            "volume inspect" => "volume inspect",
            "volume rm" | "volume remove" => "volume rm",
            "volume prune" => "volume prune",
            _ => cmd,
        };
        if cmd != "system" && cmd != "volume" {
            rest = &rest[1..];
        }
    }
    let socket = client::parse_host(host.as_deref().unwrap_or(DEFAULT_HOST))?;
    let connect = || Client::connect(socket.clone());
    match cmd {
        "run" => run::cmd_run(connect, rest, false),
        "create" => run::cmd_run(connect, rest, true),
        "start" => run::cmd_start(connect, rest),
        "ps" => cmds::ps(connect, rest),
        "images" | "image ls" => img::images(connect, cmd, rest),
        "image inspect" => cmds::inspect_as(connect, cmd, rest, Some("image")),
        "rmi" | "image rm" => img::rmi(connect, cmd, rest),
        "image prune" => img::image_prune(connect, rest),
        "history" | "image history" => img::history(connect, cmd, rest),
        "tag" => img::tag(connect, rest),
        "commit" => img::commit(connect, rest),
        "diff" => img::diff(connect, cmd, rest),
        "export" => img::export(connect, cmd, rest),
        "save" | "image save" => img::save(connect, cmd, rest),
        "import" | "image import" => img::import(connect, cmd, rest),
        "logs" => cmds::logs(connect, rest),
        "stop" | "kill" | "rm" => cmds::lifecycle(connect, cmd, rest),
        "inspect" => cmds::inspect(connect, rest),
        "exec" => ctr::exec(connect, rest),
        "attach" => ctr::attach(connect, rest),
        "restart" | "pause" | "unpause" => ctr::simple(connect, cmd, rest),
        "rename" => ctr::rename(connect, rest),
        "wait" => ctr::wait(connect, rest),
        "update" => ctr::update(connect, rest),
        "container prune" => ctr::prune(connect, rest),
        "top" => ctr::top(connect, rest),
        "stats" => ctr::stats(connect, rest),
        "events" => ctr::events(connect, rest),
        "load" => cmds::load(connect, rest),
        "pull" => registry::pull(connect, rest),
        "build" | "image build" => build::build(connect, cmd, rest),
        "push" => registry::push(connect, rest),
        "search" => registry::search(connect, rest),
        "login" => auth::login(connect, rest),
        "logout" => auth::logout(rest),
        "version" => cmds::version(connect, rest),
        "info" => cmds::info(connect, rest),
        "network" => net::network(connect, rest),
        "port" => ports::port(connect, rest),
        "cp" => cp::cp(connect, rest),
        "volume create" => vol::create(connect, rest),
        "volume ls" => vol::ls(connect, rest),
        "volume inspect" => vol::inspect(connect, rest),
        "volume rm" => vol::rm(connect, rest),
        "volume prune" => vol::prune(connect, rest),
        "volume" => vol::volume(rest),
        "system df" => sys::df(connect, rest),
        "system prune" => sys::prune(connect, rest),
        "system" => sys::system(rest),
        _ => Err(fail(
            format!(
                "berth: unknown command: berth {cmd}\n\nRun 'berth --help' for more information"
            ),
            1,
        )),
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
