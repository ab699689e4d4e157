//! Atomic metadata writes: temp file, fsync, rename (shared with the other layers).

pub use berth_util::fs::write_atomic;
