//! Kernel switches, written under /proc/sys.

use crate::{Error, Result};
use std::path::PathBuf;

/// `/proc/sys/<key with dots as slashes>`; a key with an empty part or a `/` is refused.
fn path(key: &str) -> Result<PathBuf> {
    if key.is_empty() || key.contains('/') || key.split('.').any(|p| p.is_empty()) {
        return Err(Error::InvalidParameter(format!(
            "invalid sysctl key '{key}'"
        )));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// `set("net.ipv4.ip_forward", "1")`; writes only when the value differs.
pub fn set(key: &str, value: &str) -> Result<()> {
    let p = path(key)?;
    let current = std::fs::read_to_string(&p)?;
    if current.trim() == value.trim() {
        return Ok(());
    }
    tracing::debug!(key, value, "sysctl");
    std::fs::write(&p, value.trim().as_bytes())?;
    Ok(())
}

pub fn get(key: &str) -> Result<String> {
    let p = path(key)?;
    Ok(std::fs::read_to_string(p)?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys() {
        assert_eq!(
            path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        for bad in ["", "net..ipv4", "net/ipv4", ".net", "net."] {
            assert!(path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_a_value() {
        // present on every Linux host
        let v = get("kernel.ostype").unwrap();
        assert_eq!(v, "Linux");
        // same value: no write (works even where /proc/sys is read-only)
        set("kernel.ostype", "Linux").unwrap();
        assert!(get("net.nosuch.key").is_err());
    }
}
