//! Capabilities with raw `capset`/`prctl`: bounding, effective, permitted, inheritable,
//! ambient. Names as in the OCI spec (`CAP_CHOWN`) → kernel numbers.

use crate::sys::{check, last_err};
use crate::{Error, Result};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Kernel capability numbers, index = number (linux/capability.h).
const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability name this runtime knows, by number (the kernel may have fewer:
/// `/proc/sys/kernel/cap_last_cap`).
pub(crate) fn names() -> &'static [&'static str] {
    NAMES
}

pub(crate) fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// A set of capabilities as a 64-bit mask; `None` in the spec = empty set.
pub(crate) fn mask(set: Option<&Capabilities>) -> Result<u64> {
    let mut m = 0u64;
    for c in set.into_iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let n = number(&name).ok_or_else(|| Error::Spec(format!("unknown capability {name:?}")))?;
        m |= 1 << n;
    }
    Ok(m)
}

/// The highest capability the running kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// The five sets, resolved to masks before any of them is applied.
pub(crate) struct CapSets {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
}

impl CapSets {
    pub fn from_spec(c: &LinuxCapabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: mask(c.bounding().as_ref())?,
            effective: mask(c.effective().as_ref())?,
            permitted: mask(c.permitted().as_ref())?,
            inheritable: mask(c.inheritable().as_ref())?,
            ambient: mask(c.ambient().as_ref())?,
        })
    }

    /// Step 1, while still root with CAP_SETPCAP: shrink the bounding set and keep the
    /// permitted set across the coming setuid.
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in 0..=last_cap().min(63) {
            if self.bounding & (1 << cap) == 0 {
                // SAFETY: plain prctl.
                let r =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                // EINVAL: a capability this kernel does not have
                if r == -1 && crate::sys::errno() != libc::EINVAL {
                    return Err(last_err(format!("drop capability {cap} from bounding set")));
                }
            }
        }
        // SAFETY: plain prctl.
        check(
            unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) },
            || "PR_SET_KEEPCAPS".into(),
        )?;
        Ok(())
    }

    /// Step 2, after setuid: effective/permitted/inheritable, then ambient. Capabilities this
    /// process does not hold itself (e.g. a host that runs us without CAP_SYS_RESOURCE)
    /// cannot be granted: they are left out rather than failing the container.
    pub fn apply(&self) -> Result<()> {
        let have = current_permitted()?;
        set_caps(
            self.effective & have,
            self.permitted & have,
            self.inheritable & have,
        )?;
        // SAFETY: plain prctls.
        unsafe {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
            // kernels without ambient capabilities answer EINVAL: nothing to clear then
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
        }
        for cap in 0..64u32 {
            if self.ambient & (1 << cap) != 0 {
                // SAFETY: plain prctl.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                // as runc: an ambient cap not in permitted+inheritable is skipped
                if r == -1 && crate::sys::errno() != libc::EPERM {
                    return Err(last_err(format!("raise ambient capability {cap}")));
                }
            }
        }
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Whether `CAP_SYS_ADMIN` is in the caller's effective set (seccomp's rule for installing a
/// filter without no_new_privs).
pub(crate) fn has_sys_admin() -> bool {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a 2-element data array in the v3 layout.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    r == 0 && data[0].effective & (1 << 21) != 0 // CAP_SYS_ADMIN
}

fn current_permitted() -> Result<u64> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a 2-element data array in the v3 layout.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r == -1 {
        return Err(last_err("capget"));
    }
    Ok(data[0].permitted as u64 | (data[1].permitted as u64) << 32)
}

fn set_caps(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a 2-element data array in the v3 layout.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r == -1 {
        return Err(last_err("capset"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask() {
        let spec: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
        }))
        .unwrap();
        let s = CapSets::from_spec(&spec).unwrap();
        assert_eq!(s.bounding, 0xa804_25fb);
        assert_eq!(s.ambient, 0);
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }
}
