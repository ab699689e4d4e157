//! pflag-style flag parsing, as docker's command line does it:
//! `-it`, `-e K=V`, `-eK=V`, `--env K=V`, `--env=K=V`, `--rm=false`, `--`.

#[derive(Clone, Copy)]
pub struct Spec {
    pub short: Option<char>,
    pub long: &'static str,
    pub value: bool,
}

pub const fn b(short: Option<char>, long: &'static str) -> Spec {
    Spec {
        short,
        long,
        value: false,
    }
}
pub const fn v(short: Option<char>, long: &'static str) -> Spec {
    Spec {
        short,
        long,
        value: true,
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub flags: Vec<(&'static str, String)>,
    pub args: Vec<String>,
    pub help: bool,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v != "false")
            .unwrap_or(false)
    }
    pub fn get(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, long: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Parses `args`. With `interspersed == false`, the first positional
/// argument ends flag parsing (docker run: the rest is the command).
pub fn parse(args: &[String], specs: &[Spec], interspersed: bool) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if name == "help" {
                p.help = true;
                continue;
            }
            let spec = specs
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| format!("unknown flag: --{name}"))?;
            let val = if spec.value {
                match inline {
                    Some(v) => v,
                    None => {
                        if i >= args.len() {
                            return Err(format!("flag needs an argument: --{name}"));
                        }
                        i += 1;
                        args[i - 1].clone()
                    }
                }
            } else {
                match inline.as_deref() {
                    None | Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") | Some("True") => "true".into(),
                    Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") | Some("False") => "false".into(),
                    Some(o) => {
                        return Err(format!(
                            "invalid argument \"{o}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{o}\": invalid syntax"
                        ))
                    }
                }
            };
            p.flags.push((spec.long, val));
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let shorts: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < shorts.len() {
                let c = shorts[j];
                j += 1;
                let Some(spec) = specs.iter().find(|s| s.short == Some(c)) else {
                    if c == 'h' {
                        p.help = true;
                        continue;
                    }
                    return Err(format!("unknown shorthand flag: '{c}' in {a}"));
                };
                if spec.value {
                    let rest: String = shorts[j..].iter().collect();
                    let val = if !rest.is_empty() {
                        rest.strip_prefix('=').unwrap_or(&rest).to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("flag needs an argument: '{c}' in {a}"));
                    };
                    p.flags.push((spec.long, val));
                    break;
                } else if shorts.get(j) == Some(&'=') {
                    let rest: String = shorts[j + 1..].iter().collect();
                    p.flags.push((
                        spec.long,
                        if rest == "false" {
                            "false".into()
                        } else {
                            "true".into()
                        },
                    ));
                    break;
                } else {
                    p.flags.push((spec.long, "true".into()));
                }
            }
            continue;
        }
        p.args.push(a.clone());
        if !interspersed {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &[Spec] = &[
        b(Some('i'), "interactive"),
        b(Some('t'), "tty"),
        b(Some('d'), "detach"),
        b(None, "rm"),
        v(None, "name"),
        v(Some('e'), "env"),
        v(Some('w'), "workdir"),
        v(Some('h'), "hostname"),
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn combined_shorts_and_command() {
        let p = parse(
            &s(&["-it", "--rm", "busybox", "sh", "-c", "exit 3"]),
            RUN,
            false,
        )
        .unwrap();
        assert!(p.has("interactive") && p.has("tty") && p.has("rm") && !p.has("detach"));
        assert_eq!(p.args, s(&["busybox", "sh", "-c", "exit 3"]));
    }

    #[test]
    fn values_in_all_spellings() {
        let p = parse(
            &s(&[
                "-e",
                "A=1",
                "-eB=2",
                "--env",
                "C=3",
                "--env=D=4",
                "--name=x",
                "-w/tmp",
                "-h",
                "host",
                "img",
            ]),
            RUN,
            false,
        )
        .unwrap();
        assert_eq!(p.all("env"), s(&["A=1", "B=2", "C=3", "D=4"]));
        assert_eq!(p.get("name"), Some("x"));
        assert_eq!(p.get("workdir"), Some("/tmp"));
        assert_eq!(p.get("hostname"), Some("host"));
        assert_eq!(p.args, s(&["img"]));
    }

    #[test]
    fn bool_values_and_dashdash() {
        let p = parse(&s(&["--rm=false", "-d", "--", "-img"]), RUN, false).unwrap();
        assert!(!p.has("rm"));
        assert!(p.has("detach"));
        assert_eq!(p.args, s(&["-img"]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&s(&["--foo"]), RUN, false).unwrap_err(),
            "unknown flag: --foo"
        );
        assert_eq!(
            parse(&s(&["-x"]), RUN, false).unwrap_err(),
            "unknown shorthand flag: 'x' in -x"
        );
        assert_eq!(
            parse(&s(&["--name"]), RUN, false).unwrap_err(),
            "flag needs an argument: --name"
        );
        assert_eq!(
            parse(&s(&["-e"]), RUN, false).unwrap_err(),
            "flag needs an argument: 'e' in -e"
        );
        assert!(parse(&s(&["--rm=maybe"]), RUN, false).is_err());
    }

    #[test]
    fn interspersed() {
        let specs = [b(Some('f'), "force")];
        let p = parse(&s(&["a", "-f", "b"]), &specs, true).unwrap();
        assert!(p.has("force"));
        assert_eq!(p.args, s(&["a", "b"]));
        let p = parse(&s(&["--help"]), &specs, true).unwrap();
        assert!(p.help);
    }
}
