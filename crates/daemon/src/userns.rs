//! `--userns-remap`: which host ids the containers' root and users become.
//!
//! `default` uses the user and group `berthremap` (docker's is `dockremap`), created as a
//! system user if missing, with a range of 65536 subordinate ids appended to `/etc/subuid` and
//! `/etc/subgid` if it has none. `user[:group]` and `uid[:gid]` name an existing user (and
//! group; by default the group named like the user, or the gid equal to a numeric uid) whose
//! ranges must already be listed. Several ranges are chained as docker does.

use anyhow::{bail, Context, Result};
use berth_util::idmap::{next_free_start, subid_ranges, IdMaps};
use std::io::Write;
use std::path::Path;

/// The user (and group) `--userns-remap default` uses.
pub const DEFAULT_USER: &str = "berthremap";
const DEFAULT_RANGE: u64 = 65536;

/// `(name, id)` of the entry of a passwd/group text matching `key` by name or by number.
fn lookup(text: &str, key: &str) -> Option<(String, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let id: u32 = f[2].parse().ok()?;
        (f[0] == key || f[2] == key).then(|| (f[0].to_string(), id))
    })
}

fn read(p: &str) -> Result<String> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {p}")),
    }
}

/// Creates the `berthremap` user and its ranges if missing.
fn ensure_default_user() -> Result<()> {
    if lookup(&read("/etc/passwd")?, DEFAULT_USER).is_none() {
        tracing::info!("creating the user {DEFAULT_USER} for --userns-remap default");
        let st = std::process::Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/bin/false",
                DEFAULT_USER,
            ])
            .status()
            .context("running useradd")?;
        if !st.success() {
            bail!("useradd {DEFAULT_USER} failed ({st})");
        }
    }
    let (subuid, subgid) = (read("/etc/subuid")?, read("/etc/subgid")?);
    let has_uid = !subid_ranges(&subuid, DEFAULT_USER, None).is_empty();
    let has_gid = !subid_ranges(&subgid, DEFAULT_USER, None).is_empty();
    if !has_uid || !has_gid {
        // one start beyond every range of both files, so the uid and gid ranges line up
        let start = next_free_start(&subuid).max(next_free_start(&subgid));
        if start + DEFAULT_RANGE > u32::MAX as u64 {
            bail!("no room left in /etc/subuid or /etc/subgid for {DEFAULT_USER}");
        }
        let line = format!("{DEFAULT_USER}:{start}:{DEFAULT_RANGE}\n");
        for (file, has) in [("/etc/subuid", has_uid), ("/etc/subgid", has_gid)] {
            if !has {
                append(Path::new(file), &line)?;
            }
        }
    }
    Ok(())
}

fn append(p: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .with_context(|| format!("opening {}", p.display()))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", p.display()))
}

/// Resolves the `--userns-remap` value to the id maps of the daemon's containers.
pub fn resolve(spec: &str) -> Result<IdMaps> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        bail!("Invalid user/group specification in --userns-remap: {spec:?}");
    }
    let user_key = if parts[0] == "default" {
        ensure_default_user()?;
        DEFAULT_USER
    } else {
        parts[0]
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    let numeric = user_key.parse::<u32>().is_ok();
    let (uname, uid) = lookup(&passwd, user_key).with_context(|| {
        if numeric {
            format!("Uid {user_key} has no entry in /etc/passwd")
        } else {
            format!("user {user_key:?} not found in /etc/passwd")
        }
    })?;
    let group_key = match parts.get(1) {
        Some(g) => g.to_string(),
        None if numeric => uid.to_string(),
        None => uname.clone(),
    };
    let (gname, gid) = lookup(&group, &group_key)
        .with_context(|| format!("group {group_key:?} not found in /etc/group"))?;
    let uids = subid_ranges(&read("/etc/subuid")?, &uname, Some(uid));
    if uids.is_empty() {
        bail!("Can't create ID mappings: No subuid ranges found for user {uname:?}");
    }
    let gids = subid_ranges(&read("/etc/subgid")?, &gname, Some(gid));
    if gids.is_empty() {
        bail!("Can't create ID mappings: No subgid ranges found for group {gname:?}");
    }
    let uids: Vec<(u32, u32)> = uids;
    Ok(IdMaps::from_host_ranges(&uids, &gids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_name_or_number() {
        let t = "root:x:0:0::/root:/bin/sh\nberthremap:x:998:997::/:/bin/false\n";
        assert_eq!(lookup(t, "berthremap"), Some(("berthremap".into(), 998)));
        assert_eq!(lookup(t, "0"), Some(("root".into(), 0)));
        assert_eq!(lookup(t, "nobody"), None);
    }

    #[test]
    fn bad_specs() {
        for s in ["a:b:c", ":x", "x:"] {
            let e = resolve(s).unwrap_err().to_string();
            assert!(e.contains("Invalid user/group specification"), "{e}");
        }
    }
}
