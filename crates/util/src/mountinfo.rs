//! `/proc/self/mountinfo`.

use std::path::PathBuf;

/// Decodes mountinfo's octal escapes (`\040` for a space, …); the bytes need not be UTF-8.
pub fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Every mount point of this process's mount namespace.
pub fn mount_points() -> std::io::Result<Vec<PathBuf>> {
    let s = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(s.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape("/x\\134y"), PathBuf::from("/x\\y"));
    }
}
