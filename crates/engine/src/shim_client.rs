//! The daemon's side of the shim protocol (docs/ARCHITECTURE.md, "The shim protocol").

use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Sends one command and reads the one-line answer.
pub async fn request(sock: &Path, line: &str) -> std::io::Result<String> {
    let mut s = connect(sock, line).await?;
    let mut r = BufReader::new(&mut s);
    let mut out = String::new();
    r.read_line(&mut out).await?;
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "shim closed the connection",
        ));
    }
    Ok(out.trim_end().to_string())
}

/// Opens a connection and sends the command line; the caller uses the stream afterwards.
pub async fn connect(sock: &Path, line: &str) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(sock).await?;
    s.write_all(line.as_bytes()).await?;
    s.write_all(b"\n").await?;
    Ok(s)
}

/// How a process ended, as the shim reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// unix nanoseconds (0 = unknown)
    pub at: u128,
    /// the memory cgroup recorded an OOM kill
    pub oom: bool,
}

/// `EXITED <code> <nanos> [oom]` → Exit.
pub fn parse_exited(line: &str) -> Option<Exit> {
    let mut it = line.split_whitespace();
    if it.next()? != "EXITED" {
        return None;
    }
    let code = it.next()?.parse().ok()?;
    let at = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let oom = it.next() == Some("oom");
    Some(Exit { code, at, oom })
}

/// The exit file a shim leaves: `<code> <nanos> [oom]`.
pub fn read_exit_file(path: &Path) -> Option<Exit> {
    let s = std::fs::read_to_string(path).ok()?;
    parse_exited(&format!("EXITED {}", s.trim()))
}

/// Connects `WAIT` and returns the exit, or None if the shim is gone without saying.
pub async fn wait_exit(sock: &Path) -> Option<Exit> {
    let line = request(sock, "WAIT").await.ok()?;
    parse_exited(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exit_lines() {
        assert_eq!(
            parse_exited("EXITED 3 1700000000000000000"),
            Some(Exit {
                code: 3,
                at: 1_700_000_000_000_000_000,
                oom: false
            })
        );
        assert!(parse_exited("EXITED 137 5 oom").unwrap().oom);
        assert_eq!(parse_exited("RUNNING 42"), None);
    }
}
