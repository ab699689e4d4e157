//! The command table: every command and management group the CLI has,
//! with docker's one-line descriptions. Dispatch, `berth --help`,
//! `berth GROUP --help` and the "Aliases:" of each command's help all read
//! this one table, so a command cannot work without being listed.

use crate::client::Client;
use crate::{auth, build, cmds, cp, ctr, img, net, ports, registry, run, sys, vol};
use anyhow::Result;

/// How a handler reaches the daemon (connects lazily).
pub type Connect<'a> = &'a dyn Fn() -> Result<Client>;
/// A command's handler: the dispatch key (the name used in its messages)
/// and the arguments after the command.
pub type Handler = fn(Connect, &'static str, &[String]) -> Result<i32>;

pub struct Cmd {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub about: &'static str,
    /// The name the handler uses in its usage and error texts.
    pub key: &'static str,
    /// For a top-level shortcut, the group command it stands for
    /// (`ps` → `container ls`); it shares that command's aliases.
    pub shortcut_of: &'static str,
    pub run: Handler,
}

pub struct Group {
    pub name: &'static str,
    pub about: &'static str,
    /// What follows `berth NAME` in the usage line of its errors.
    pub bare_usage: &'static str,
    pub subs: &'static [Cmd],
}

const fn top(
    name: &'static str,
    about: &'static str,
    shortcut_of: &'static str,
    run: Handler,
) -> Cmd {
    Cmd {
        name,
        aliases: &[],
        about,
        key: name,
        shortcut_of,
        run,
    }
}

const fn sub(
    name: &'static str,
    aliases: &'static [&'static str],
    about: &'static str,
    key: &'static str,
    run: Handler,
) -> Cmd {
    Cmd {
        name,
        aliases,
        about,
        key,
        shortcut_of: "",
        run,
    }
}

/// docker's "Common Commands", in its order.
pub const COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

const ATTACH: &str =
    "Attach local standard input, output, and error streams to a running container";
const BUILD: &str = "Build an image from a Dockerfile";
const COMMIT: &str = "Create a new image from a container's changes";
const CP: &str = "Copy files/folders between a container and the local filesystem";
const CREATE: &str = "Create a new container";
const DIFF: &str = "Inspect changes to files or directories on a container's filesystem";
const EVENTS: &str = "Get real time events from the server";
const EXEC: &str = "Execute a command in a running container";
const EXPORT: &str = "Export a container's filesystem as a tar archive";
const HISTORY: &str = "Show the history of an image";
const IMPORT: &str = "Import the contents from a tarball to create a filesystem image";
const INFO: &str = "Display system-wide information";
const KILL: &str = "Kill one or more running containers";
const LOAD: &str = "Load an image from a tar archive or STDIN";
const LOGS: &str = "Fetch the logs of a container";
const PAUSE: &str = "Pause all processes within one or more containers";
const PORT: &str = "List port mappings or a specific mapping for the container";
const PS: &str = "List containers";
const PULL: &str = "Download an image from a registry";
const PUSH: &str = "Upload an image to a registry";
const RENAME: &str = "Rename a container";
const RESTART: &str = "Restart one or more containers";
const RM: &str = "Remove one or more containers";
const RMI: &str = "Remove one or more images";
const RUN: &str = "Create and run a new container from an image";
const SAVE: &str = "Save one or more images to a tar archive (streamed to STDOUT by default)";
const START: &str = "Start one or more stopped containers";
const STATS: &str = "Display a live stream of container(s) resource usage statistics";
const STOP: &str = "Stop one or more running containers";
const TAG: &str = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE";
const TOP: &str = "Display the running processes of a container";
const UNPAUSE: &str = "Unpause all processes within one or more containers";
const UPDATE: &str = "Update configuration of one or more containers";
const WAIT: &str = "Block until one or more containers stop, then print their exit codes";

/// Every top-level command (groups aside), sorted by name.
pub const TOP_LEVEL: &[Cmd] = &[
    top("attach", ATTACH, "container attach", |c, _, a| {
        ctr::attach(c, a)
    }),
    top("build", BUILD, "image build", |c, k, a| {
        build::build(c, k, a)
    }),
    top("commit", COMMIT, "container commit", |c, _, a| {
        img::commit(c, a)
    }),
    top("cp", CP, "container cp", |c, _, a| cp::cp(c, a)),
    top("create", CREATE, "container create", |c, _, a| {
        run::cmd_run(c, a, true)
    }),
    top("diff", DIFF, "container diff", |c, k, a| img::diff(c, k, a)),
    top("events", EVENTS, "system events", |c, _, a| {
        ctr::events(c, a)
    }),
    top("exec", EXEC, "container exec", |c, _, a| ctr::exec(c, a)),
    top("export", EXPORT, "container export", |c, k, a| {
        img::export(c, k, a)
    }),
    top("history", HISTORY, "image history", |c, k, a| {
        img::history(c, k, a)
    }),
    top("images", "List images", "image ls", |c, k, a| {
        img::images(c, k, a)
    }),
    top("import", IMPORT, "image import", |c, k, a| {
        img::import(c, k, a)
    }),
    top("info", INFO, "system info", |c, _, a| cmds::info(c, a)),
    top(
        "inspect",
        "Return low-level information on berth objects",
        "",
        |c, _, a| cmds::inspect(c, a),
    ),
    top("kill", KILL, "container kill", |c, k, a| {
        cmds::lifecycle(c, k, a)
    }),
    top("load", LOAD, "image load", |c, _, a| cmds::load(c, a)),
    top("login", "Authenticate to a registry", "", |c, _, a| {
        auth::login(c, a)
    }),
    top("logout", "Log out from a registry", "", |_, _, a| {
        auth::logout(a)
    }),
    top("logs", LOGS, "container logs", |c, _, a| cmds::logs(c, a)),
    top("pause", PAUSE, "container pause", |c, k, a| {
        ctr::simple(c, k, a)
    }),
    top("port", PORT, "container port", |c, _, a| ports::port(c, a)),
    top("ps", PS, "container ls", |c, _, a| cmds::ps(c, a)),
    top("pull", PULL, "image pull", |c, _, a| registry::pull(c, a)),
    top("push", PUSH, "image push", |c, _, a| registry::push(c, a)),
    top("rename", RENAME, "container rename", |c, _, a| {
        ctr::rename(c, a)
    }),
    top("restart", RESTART, "container restart", |c, k, a| {
        ctr::simple(c, k, a)
    }),
    top("rm", RM, "container rm", |c, k, a| cmds::lifecycle(c, k, a)),
    top("rmi", RMI, "image rm", |c, k, a| img::rmi(c, k, a)),
    top("run", RUN, "container run", |c, _, a| {
        run::cmd_run(c, a, false)
    }),
    top("save", SAVE, "image save", |c, k, a| img::save(c, k, a)),
    top("search", "Search Docker Hub for images", "", |c, _, a| {
        registry::search(c, a)
    }),
    top("start", START, "container start", |c, _, a| {
        run::cmd_start(c, a)
    }),
    top("stats", STATS, "container stats", |c, _, a| {
        ctr::stats(c, a)
    }),
    top("stop", STOP, "container stop", |c, k, a| {
        cmds::lifecycle(c, k, a)
    }),
    top("tag", TAG, "image tag", |c, _, a| img::tag(c, a)),
    top("top", TOP, "container top", |c, _, a| ctr::top(c, a)),
    top("unpause", UNPAUSE, "container unpause", |c, k, a| {
        ctr::simple(c, k, a)
    }),
    top("update", UPDATE, "container update", |c, _, a| {
        ctr::update(c, a)
    }),
    top(
        "version",
        "Show the berth version information",
        "",
        |c, _, a| cmds::version(c, a),
    ),
    top("wait", WAIT, "container wait", |c, _, a| ctr::wait(c, a)),
];

/// The management groups, sorted by name; their subcommands likewise.
pub const GROUPS: &[Group] = &[
    Group {
        name: "container",
        about: "Manage containers",
        bare_usage: "",
        subs: &[
            sub("attach", &[], ATTACH, "attach", |c, _, a| ctr::attach(c, a)),
            sub("commit", &[], COMMIT, "commit", |c, _, a| img::commit(c, a)),
            sub("cp", &[], CP, "cp", |c, _, a| cp::cp(c, a)),
            sub("create", &[], CREATE, "create", |c, _, a| {
                run::cmd_run(c, a, true)
            }),
            sub("diff", &[], DIFF, "diff", |c, k, a| img::diff(c, k, a)),
            sub("exec", &[], EXEC, "exec", |c, _, a| ctr::exec(c, a)),
            sub("export", &[], EXPORT, "export", |c, k, a| {
                img::export(c, k, a)
            }),
            sub(
                "inspect",
                &[],
                "Display detailed information on one or more containers",
                "container inspect",
                |c, k, a| cmds::inspect_as(c, k, a, Some("container")),
            ),
            sub("kill", &[], KILL, "kill", |c, k, a| {
                cmds::lifecycle(c, k, a)
            }),
            sub("logs", &[], LOGS, "logs", |c, _, a| cmds::logs(c, a)),
            sub("ls", &["list", "ps"], PS, "ps", |c, _, a| cmds::ps(c, a)),
            sub("pause", &[], PAUSE, "pause", |c, k, a| ctr::simple(c, k, a)),
            sub("port", &[], PORT, "port", |c, _, a| ports::port(c, a)),
            sub(
                "prune",
                &[],
                "Remove all stopped containers",
                "container prune",
                |c, _, a| ctr::prune(c, a),
            ),
            sub("rename", &[], RENAME, "rename", |c, _, a| ctr::rename(c, a)),
            sub("restart", &[], RESTART, "restart", |c, k, a| {
                ctr::simple(c, k, a)
            }),
            sub("rm", &["remove"], RM, "rm", |c, k, a| {
                cmds::lifecycle(c, k, a)
            }),
            sub("run", &[], RUN, "run", |c, _, a| run::cmd_run(c, a, false)),
            sub("start", &[], START, "start", |c, _, a| run::cmd_start(c, a)),
            sub("stats", &[], STATS, "stats", |c, _, a| ctr::stats(c, a)),
            sub("stop", &[], STOP, "stop", |c, k, a| {
                cmds::lifecycle(c, k, a)
            }),
            sub("top", &[], TOP, "top", |c, _, a| ctr::top(c, a)),
            sub("unpause", &[], UNPAUSE, "unpause", |c, k, a| {
                ctr::simple(c, k, a)
            }),
            sub("update", &[], UPDATE, "update", |c, _, a| ctr::update(c, a)),
            sub("wait", &[], WAIT, "wait", |c, _, a| ctr::wait(c, a)),
        ],
    },
    Group {
        name: "image",
        about: "Manage images",
        bare_usage: "",
        subs: &[
            sub("build", &[], BUILD, "image build", |c, k, a| {
                build::build(c, k, a)
            }),
            sub("history", &[], HISTORY, "image history", |c, k, a| {
                img::history(c, k, a)
            }),
            sub("import", &[], IMPORT, "image import", |c, k, a| {
                img::import(c, k, a)
            }),
            sub(
                "inspect",
                &[],
                "Display detailed information on one or more images",
                "image inspect",
                |c, k, a| cmds::inspect_as(c, k, a, Some("image")),
            ),
            sub("load", &[], LOAD, "load", |c, _, a| cmds::load(c, a)),
            sub("ls", &["list"], "List images", "image ls", |c, k, a| {
                img::images(c, k, a)
            }),
            sub(
                "prune",
                &[],
                "Remove unused images",
                "image prune",
                |c, _, a| img::image_prune(c, a),
            ),
            sub("pull", &[], PULL, "pull", |c, _, a| registry::pull(c, a)),
            sub("push", &[], PUSH, "push", |c, _, a| registry::push(c, a)),
            sub("rm", &["remove"], RMI, "image rm", |c, k, a| {
                img::rmi(c, k, a)
            }),
            sub("save", &[], SAVE, "image save", |c, k, a| {
                img::save(c, k, a)
            }),
            sub("tag", &[], TAG, "tag", |c, _, a| img::tag(c, a)),
        ],
    },
    Group {
        name: "network",
        about: "Manage networks",
        bare_usage: "",
        subs: &[
            sub(
                "connect",
                &[],
                "Connect a container to a network",
                "network connect",
                |c, _, a| net::connect_cmd(c, a),
            ),
            sub(
                "create",
                &[],
                "Create a network",
                "network create",
                |c, _, a| net::create(c, a),
            ),
            sub(
                "disconnect",
                &[],
                "Disconnect a container from a network",
                "network disconnect",
                |c, _, a| net::disconnect(c, a),
            ),
            sub(
                "inspect",
                &[],
                "Display detailed information on one or more networks",
                "network inspect",
                |c, _, a| net::inspect(c, a),
            ),
            sub("ls", &["list"], "List networks", "network ls", |c, _, a| {
                net::ls(c, a)
            }),
            sub(
                "prune",
                &[],
                "Remove all unused networks",
                "network prune",
                |c, _, a| net::prune(c, a),
            ),
            sub(
                "rm",
                &["remove"],
                "Remove one or more networks",
                "network rm",
                |c, _, a| net::rm(c, a),
            ),
        ],
    },
    Group {
        name: "system",
        about: "Manage berth",
        bare_usage: "",
        subs: &[
            sub(
                "df",
                &[],
                "Show berth disk usage",
                "system df",
                |c, _, a| sys::df(c, a),
            ),
            sub("events", &[], EVENTS, "events", |c, _, a| ctr::events(c, a)),
            sub("info", &[], INFO, "info", |c, _, a| cmds::info(c, a)),
            sub(
                "prune",
                &[],
                "Remove unused data",
                "system prune",
                |c, _, a| sys::prune(c, a),
            ),
        ],
    },
    Group {
        name: "volume",
        about: "Manage volumes",
        bare_usage: " COMMAND",
        subs: &[
            sub(
                "create",
                &[],
                "Create a volume",
                "volume create",
                |c, _, a| vol::create(c, a),
            ),
            sub(
                "inspect",
                &[],
                "Display detailed information on one or more volumes",
                "volume inspect",
                |c, _, a| vol::inspect(c, a),
            ),
            sub("ls", &["list"], "List volumes", "volume ls", |c, _, a| {
                vol::ls(c, a)
            }),
            sub(
                "prune",
                &[],
                "Remove unused local volumes",
                "volume prune",
                |c, _, a| vol::prune(c, a),
            ),
            sub(
                "rm",
                &["remove"],
                "Remove one or more volumes",
                "volume rm",
                |c, _, a| vol::rm(c, a),
            ),
        ],
    },
];

pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

pub fn top_level(name: &str) -> Option<&'static Cmd> {
    TOP_LEVEL.iter().find(|c| c.name == name)
}

impl Group {
    pub fn sub(&self, word: &str) -> Option<&'static Cmd> {
        self.subs
            .iter()
            .find(|c| c.name == word || c.aliases.contains(&word))
    }
}

fn row(s: &mut String, name: &str, about: &str) {
    s.push_str(&format!("  {name:<11} {about}\n"));
}

/// `berth --help`.
pub fn main_help() -> String {
    let mut s = String::from(
        "Usage:  berth [OPTIONS] COMMAND\n\nA container engine speaking the Docker Engine API\n\nCommon Commands:\n",
    );
    for name in COMMON {
        if let Some(c) = top_level(name) {
            row(&mut s, c.name, c.about);
        }
    }
    s.push_str("\nManagement Commands:\n");
    for g in GROUPS {
        row(&mut s, g.name, g.about);
    }
    s.push_str("\nCommands:\n");
    for c in TOP_LEVEL.iter().filter(|c| !COMMON.contains(&c.name)) {
        row(&mut s, c.name, c.about);
    }
    s.push_str(
        "\nGlobal Options:\n  -H, --host string   Daemon socket to connect to (env BERTH_HOST, default unix:///run/berth/berth.sock)\n  -v, --version       Print version information and quit\n\nRun 'berth COMMAND --help' for more information on a command.\n",
    );
    s
}

/// `berth GROUP --help`.
pub fn group_help(g: &Group) -> String {
    let mut s = format!(
        "Usage:  berth {} COMMAND\n\n{}\n\nCommands:\n",
        g.name, g.about
    );
    for c in g.subs {
        row(&mut s, c.name, c.about);
    }
    s.push_str(&format!(
        "\nRun 'berth {} COMMAND --help' for more information on a command.\n",
        g.name
    ));
    s
}

/// The spellings of a command, as docker's "Aliases:" lists them: the
/// group command with its aliases, then the top-level shortcut. Empty when
/// there is only one spelling.
fn aliases_of(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((gname, name)) = path.split_once(' ') {
        if let Some(c) = group(gname).and_then(|g| g.sub(name)) {
            out.push(format!("berth {gname} {}", c.name));
            out.extend(c.aliases.iter().map(|a| format!("berth {gname} {a}")));
        }
    }
    out.extend(
        TOP_LEVEL
            .iter()
            .filter(|c| c.shortcut_of == path)
            .map(|c| format!("berth {}", c.name)),
    );
    if out.len() < 2 {
        out.clear();
    }
    out
}

/// The description and "Aliases:" part of a command's help, by the key
/// its handler uses; empty for a key the table does not have.
pub fn about_section(key: &str) -> String {
    let found = TOP_LEVEL
        .iter()
        .find(|c| c.key == key)
        .map(|c| {
            let path = if c.shortcut_of.is_empty() {
                c.name
            } else {
                c.shortcut_of
            };
            (c, path.to_string())
        })
        .or_else(|| {
            GROUPS.iter().find_map(|g| {
                g.subs
                    .iter()
                    .find(|c| c.key == key)
                    .map(|c| (c, format!("{} {}", g.name, c.name)))
            })
        });
    let Some((c, path)) = found else {
        return String::new();
    };
    let mut s = format!("{}\n\n", c.about);
    let aliases = aliases_of(&path);
    if !aliases.is_empty() {
        s.push_str(&format!("Aliases:\n  {}\n\n", aliases.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_listed() {
        let main = main_help();
        for c in TOP_LEVEL {
            assert!(
                main.contains(&format!("\n  {:<11} {}\n", c.name, c.about)),
                "{} missing from berth --help",
                c.name
            );
        }
        for g in GROUPS {
            assert!(main.contains(&format!("\n  {:<11} {}\n", g.name, g.about)));
            let gh = group_help(g);
            for c in g.subs {
                assert!(
                    gh.contains(&format!("\n  {:<11} {}\n", c.name, c.about)),
                    "{} {} missing from its group help",
                    g.name,
                    c.name
                );
            }
        }
    }

    #[test]
    fn shortcuts_name_real_group_commands() {
        for c in TOP_LEVEL.iter().filter(|c| !c.shortcut_of.is_empty()) {
            let (g, s) = c.shortcut_of.split_once(' ').unwrap();
            let target = group(g).and_then(|g| g.sub(s));
            assert!(target.is_some(), "{} → {}", c.name, c.shortcut_of);
            assert_eq!(target.unwrap().about, c.about, "{}", c.name);
        }
    }

    #[test]
    fn aliases_as_docker_lists_them() {
        assert_eq!(
            about_section("ps"),
            "List containers\n\nAliases:\n  berth container ls, berth container list, berth container ps, berth ps\n\n"
        );
        assert_eq!(
            about_section("rmi"),
            "Remove one or more images\n\nAliases:\n  berth image rm, berth image remove, berth rmi\n\n"
        );
        assert_eq!(about_section("system df"), "Show berth disk usage\n\n");
        assert_eq!(
            about_section("inspect"),
            "Return low-level information on berth objects\n\n"
        );
    }
}
