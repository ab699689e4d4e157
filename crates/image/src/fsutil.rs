//! Filesystem helpers shared with the other layers (berth-util).

pub(crate) use berth_util::fs::{sync_dir, unique_suffix, write_atomic};
