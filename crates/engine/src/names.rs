//! Random container names, `adjective_noun` like docker's (our own word lists).

use rand::seq::SliceRandom;

const LEFT: &[&str] = &[
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "daring",
    "eager", "fancy", "fierce", "gentle", "glad", "golden", "happy", "humble", "jolly", "keen",
    "kind", "lively", "lucid", "merry", "mellow", "nimble", "noble", "patient", "plucky", "proud",
    "quick", "quiet", "rapid", "serene", "sharp", "shiny", "silent", "sleepy", "smart", "steady",
    "stoic", "sunny", "swift", "tender", "tidy", "vivid", "warm", "witty", "zealous",
];
const RIGHT: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "cabin", "canal", "cargo", "clipper", "compass", "coral",
    "crane", "current", "dock", "ferry", "fjord", "galley", "gull", "harbor", "hull", "island",
    "jetty", "keel", "lagoon", "lantern", "mast", "mooring", "oar", "orca", "pier", "pilot",
    "quay", "reef", "rudder", "sail", "schooner", "shoal", "skiff", "sloop", "tide", "tugboat",
    "voyage", "wharf", "whale", "yacht",
];

pub fn random_name() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}",
        LEFT.choose(&mut rng).unwrap_or(&"calm"),
        RIGHT.choose(&mut rng).unwrap_or(&"harbor")
    )
}

/// docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}
