//! A layer of a million entries, generated on the fly (no big file anywhere): unpacked in
//! bounded memory. Alone in its test binary so that the process's peak RSS is its own.

use berth_snapshot::Snapshotter;
use std::io::{self, Read};
use std::time::Instant;

const ENTRIES: u64 = 1_000_000;

/// Streams a tar of `ENTRIES` entries: mostly directory entries naming 1000 directories over
/// and over (each costs no new inode, but each used to cost memory), and every 100th a small
/// file rewritten in its directory.
struct MillionTar {
    i: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl MillionTar {
    fn refill(&mut self) {
        self.buf.clear();
        self.pos = 0;
        if self.i == ENTRIES {
            self.buf.resize(1024, 0);
            self.done = true;
            return;
        }
        let i = self.i;
        self.i += 1;
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000 + i);
        h.set_uid(0);
        h.set_gid(0);
        if i % 100 == 99 {
            h.set_path(format!("d{:03}/f", i % 1000)).unwrap();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(8);
            h.set_cksum();
            self.buf.extend_from_slice(h.as_bytes());
            self.buf.extend_from_slice(&i.to_le_bytes());
            self.buf.resize(1024, 0);
        } else {
            h.set_path(format!("d{:03}/", i % 1000)).unwrap();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            self.buf.extend_from_slice(h.as_bytes());
        }
    }
}

impl Read for MillionTar {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.refill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_million_entries_in_bounded_memory() {
    // on tmpfs when there is one: what is measured is the unpacker, not ext4's inode
    // allocation (a million creates on this host's ext4 take minutes)
    let tmp = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let s = Snapshotter::open(tmp.path()).unwrap();
    let rss_before = status_kib("VmRSS:");
    let t = Instant::now();
    let tar = MillionTar {
        i: 0,
        buf: Vec::new(),
        pos: 0,
        done: false,
    };
    // unhashed: the time measured is the unpacker's (a debug build's SHA-256 of the 0.5 GB
    // stream would dominate); the hashing reader is streaming either way
    let mut unpacked = s
        .unpack_layer_unhashed(tar)
        .expect("unpack a million entries");
    unpacked
        .set_diff_id(&format!("sha256:{}", "1".repeat(64)))
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    let info = unpacked.commit(None).unwrap();
    let d = s.layer_diff_path(&info.chain_id).unwrap();
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1000);
    assert_eq!(
        std::fs::read(d.join("d999/f")).unwrap(),
        (ENTRIES - 1).to_le_bytes()
    );
    eprintln!(
        "a million tar entries: {secs:.1} s, {:.0} entries/s, RSS before {rss_before} KiB, peak {peak} KiB",
        ENTRIES as f64 / secs
    );
    // before: directory mtimes were remembered per entry (~100 MB for this tar)
    assert!(
        peak.saturating_sub(rss_before) < 32 << 10,
        "peak RSS {peak} KiB, {rss_before} KiB before"
    );
}
