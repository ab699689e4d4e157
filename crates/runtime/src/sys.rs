//! Thin helpers over raw syscalls: errno → `Error::Sys` with context.

use crate::{Error, Result};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) fn cstr(p: impl AsRef<std::ffi::OsStr>) -> Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| Error::Spec(format!("{:?} contains a NUL byte", p.as_ref())))
}

pub(crate) fn last_err(what: impl std::fmt::Display) -> Error {
    Error::Sys(format!("{what}: {}", io::Error::last_os_error()))
}

/// `ret == -1` → error with context.
pub(crate) fn check(ret: libc::c_int, what: impl FnOnce() -> String) -> Result<libc::c_int> {
    if ret == -1 {
        Err(last_err(what()))
    } else {
        Ok(ret)
    }
}

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub(crate) fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let s = src.map(cstr).transpose()?;
    let t = cstr(target)?;
    let f = fstype.map(cstr).transpose()?;
    let d = data.filter(|d| !d.is_empty()).map(cstr).transpose()?;
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            d.as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
        )
    };
    check(r, || {
        format!(
            "mount {} on {} (type {}, flags {flags:#x}, data {:?})",
            src.map_or("none".into(), |s| s.display().to_string()),
            target.display(),
            fstype.unwrap_or("none"),
            data.unwrap_or("")
        )
    })
    .map(|_| ())
}
