//! `args[0]` → the file to exec, the way docker/runc report failures.

use crate::{Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn executable(p: &Path) -> std::result::Result<(), std::io::Error> {
    let md = std::fs::metadata(p)?;
    if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

/// Resolves `arg0` (relative to the current root and cwd) using PATH from `env`.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        return match executable(Path::new(arg0)) {
            Ok(()) => Ok(PathBuf::from(arg0)),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                Err(Error::Exec(format!("exec: {arg0:?}: permission denied")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Exec(format!(
                "exec: {arg0:?}: stat {arg0}: no such file or directory"
            ))),
            Err(e) => Err(Error::Exec(format!("exec: {arg0:?}: {e}"))),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        match executable(&cand) {
            Ok(()) => return Ok(cand),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        return Err(Error::Exec(format!("exec: {arg0:?}: permission denied")));
    }
    Err(Error::Exec(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message() {
        let e = lookup("nosuch-berth", &["PATH=/bin:/usr/bin".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"nosuch-berth\": executable file not found in $PATH"
        );
        assert!(lookup("/etc", &[])
            .unwrap_err()
            .to_string()
            .contains("permission denied"));
        assert_eq!(
            lookup("sh", &["PATH=/bin".into()]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
