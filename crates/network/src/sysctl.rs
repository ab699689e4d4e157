//! Kernel switches, written under /proc/sys.

use crate::Result;

/// `set("net.ipv4.ip_forward", "1")`; writes only when the value differs.
pub fn set(key: &str, value: &str) -> Result<()> {
    let _ = (key, value);
    todo!()
}

pub fn get(key: &str) -> Result<String> {
    let _ = key;
    todo!()
}
