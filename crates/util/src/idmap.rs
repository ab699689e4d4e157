//! User-namespace id maps (`berthd --userns-remap`): which host ids the container's ids
//! 0..n become, read from `/etc/subuid` and `/etc/subgid` as docker does.

/// One contiguous range: container ids `container..container+size` are host ids
/// `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The uid and gid maps of a remapped daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.container)?;
        (off < r.size).then(|| r.host + off)
    })
}

fn to_container(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.host)?;
        (off < r.size).then(|| r.container + off)
    })
}

impl IdMaps {
    /// Container ids from 0 upwards over the host ranges in the order given (docker's rule
    /// when a user has several subordinate ranges).
    pub fn from_host_ranges(uids: &[(u32, u32)], gids: &[(u32, u32)]) -> IdMaps {
        fn chain(r: &[(u32, u32)]) -> Vec<IdRange> {
            let mut next = 0u32;
            r.iter()
                .map(|&(host, size)| {
                    let c = next;
                    next = next.saturating_add(size);
                    IdRange {
                        container: c,
                        host,
                        size,
                    }
                })
                .collect()
        }
        IdMaps {
            uids: chain(uids),
            gids: chain(gids),
        }
    }

    pub fn uid_to_host(&self, id: u32) -> Option<u32> {
        to_host(&self.uids, id)
    }
    pub fn gid_to_host(&self, id: u32) -> Option<u32> {
        to_host(&self.gids, id)
    }
    pub fn uid_to_container(&self, id: u32) -> Option<u32> {
        to_container(&self.uids, id)
    }
    pub fn gid_to_container(&self, id: u32) -> Option<u32> {
        to_container(&self.gids, id)
    }

    /// The host uid and gid of the container's root (the name of the data-root subdir).
    pub fn root(&self) -> (u32, u32) {
        (
            self.uid_to_host(0).unwrap_or(0),
            self.gid_to_host(0).unwrap_or(0),
        )
    }
}

/// The subordinate ranges `(start, count)` of `name` (or of its numeric id) in the text of
/// `/etc/subuid` or `/etc/subgid` (`name:start:count` lines), in file order.
pub fn subid_ranges(text: &str, name: &str, id: Option<u32>) -> Vec<(u32, u32)> {
    let id = id.map(|i| i.to_string());
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != name && Some(who) != id.as_deref() {
                return None;
            }
            let (start, count) = (start.trim().parse().ok()?, count.trim().parse().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// Where a new range of `count` ids may start: after every range already listed (so it
/// overlaps none), and not below 100000.
pub fn next_free_start(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let _ = f.next()?;
            let start: u64 = f.next()?.trim().parse().ok()?;
            let count: u64 = f.next()?.trim().parse().ok()?;
            Some(start + count)
        })
        .fold(100_000, u64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id() {
        let t = "# c\nalice:100000:65536\nberthremap:165536:65536\n1234:300000:10\nberthremap:400000:5\nbad:x:1\n";
        assert_eq!(
            subid_ranges(t, "berthremap", Some(999)),
            vec![(165536, 65536), (400000, 5)]
        );
        assert_eq!(subid_ranges(t, "bob", Some(1234)), vec![(300000, 10)]);
        assert!(subid_ranges(t, "nobody", None).is_empty());
        assert_eq!(next_free_start(t), 400005);
        assert_eq!(next_free_start(""), 100000);
    }

    #[test]
    fn maps_both_ways() {
        let m = IdMaps::from_host_ranges(&[(100000, 10), (500000, 5)], &[(200000, 65536)]);
        assert_eq!(m.uid_to_host(0), Some(100000));
        assert_eq!(m.uid_to_host(9), Some(100009));
        assert_eq!(m.uid_to_host(10), Some(500000));
        assert_eq!(m.uid_to_host(15), None);
        assert_eq!(m.uid_to_container(500004), Some(14));
        assert_eq!(m.uid_to_container(0), None);
        assert_eq!(m.gid_to_host(65535), Some(265535));
        assert_eq!(m.root(), (100000, 200000));
    }
}
