//! berth-util: the few helpers several layers share (a leaf crate: it depends on no other
//! berth crate). Atomic metadata writes, gzip sniffing, `/proc/self/mountinfo` decoding,
//! docker's label filter.

pub mod dockerignore;
pub mod filters;
pub mod fs;
pub mod idmap;
pub mod inroot;
pub mod io;
pub mod limits;
pub mod mountinfo;
pub mod mountns;
pub mod netns;
