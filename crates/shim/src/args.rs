//! Hand-parsed command line (no clap: start-up time and RSS matter).

use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Args {
    pub id: String,
    pub bundle: PathBuf,
    pub socket: PathBuf,
    pub exit_file: PathBuf,
    /// json-file log; `None` when `--log ''`
    pub log: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub rows: u16,
    pub cols: u16,
    /// json-file rotation: rotate once the log would exceed this many bytes (0 = never)
    pub log_max_size: u64,
    /// files kept, the current one included (`log`, `log.1`, … `log.(N-1)`); at least 1
    pub log_max_file: u32,
    /// `--log-format cri`: the Kubernetes CRI log format instead of json-file
    pub log_cri: bool,
}

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    let (mut id, mut bundle, mut socket, mut exit, mut log) = (None, None, None, None, None);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .ok_or_else(|| format!("flag needs an argument: {name}"))
        };
        match flag.as_str() {
            "--id" => id = Some(val("--id")?),
            "--bundle" => bundle = Some(val("--bundle")?),
            "--socket" => socket = Some(val("--socket")?),
            "--exit-file" => exit = Some(val("--exit-file")?),
            "--log" => log = Some(val("--log")?),
            "--rows" => a.rows = num(&val("--rows")?)?,
            "--cols" => a.cols = num(&val("--cols")?)?,
            "--log-max-size" => {
                let v = val("--log-max-size")?;
                a.log_max_size = v.parse().map_err(|_| format!("invalid number: {v:?}"))?
            }
            "--log-max-file" => {
                let v = val("--log-max-file")?;
                a.log_max_file = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("invalid number: {v:?}"))?
            }
            "--log-format" => match val("--log-format")?.as_str() {
                "json-file" => a.log_cri = false,
                "cri" => a.log_cri = true,
                other => return Err(format!("unknown log format: {other:?}")),
            },
            "--tty" => a.tty = true,
            "--stdin" => a.stdin = true,
            "--stdin-once" => a.stdin_once = true,
            other => return Err(format!("unknown flag: {other}")),
        }
    }
    a.log_max_file = a.log_max_file.max(1);
    a.id = id.ok_or("missing --id")?;
    a.bundle = bundle.ok_or("missing --bundle")?.into();
    a.socket = socket.ok_or("missing --socket")?.into();
    a.exit_file = exit.ok_or("missing --exit-file")?.into();
    a.log = log.ok_or("missing --log")?.filter_empty();
    Ok(a)
}

fn num(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("invalid number: {s:?}"))
}

trait FilterEmpty {
    fn filter_empty(self) -> Option<PathBuf>;
}
impl FilterEmpty for String {
    fn filter_empty(self) -> Option<PathBuf> {
        (!self.is_empty()).then(|| PathBuf::from(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Args, String> {
        parse(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses() {
        let a = p(&[
            "--id",
            "x",
            "--bundle",
            "/b",
            "--socket",
            "/s",
            "--exit-file",
            "/e",
            "--log",
            "",
            "--tty",
            "--rows",
            "24",
            "--cols",
            "80",
        ])
        .unwrap();
        assert_eq!(
            (a.id.as_str(), a.tty, a.rows, a.cols, a.log),
            ("x", true, 24, 80, None)
        );
        assert!(p(&["--id", "x"]).is_err());
        assert!(p(&["--bogus"]).unwrap_err().contains("unknown flag"));
        assert!(p(&["--id"]).is_err());
        let a = p(&[
            "--id",
            "x",
            "--bundle",
            "/b",
            "--socket",
            "/s",
            "--exit-file",
            "/e",
            "--log",
            "/l",
            "--log-max-size",
            "100",
            "--log-max-file",
            "3",
        ])
        .unwrap();
        assert_eq!((a.log_max_size, a.log_max_file), (100, 3));
        assert!(p(&["--log-max-file", "0"]).is_err());
    }
}
