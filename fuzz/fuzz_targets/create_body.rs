//! Request-body decoding of `POST /containers/create` (crates/api reads the body with
//! serde_json into berth_types::CreateRequest): never panics, and what decodes re-encodes
//! into JSON that decodes again to the same encoding (no value the daemon accepts becomes one
//! it cannot write back into its records).
#![no_main]

use berth_types::CreateRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<CreateRequest>(data) else {
        return;
    };
    let enc = serde_json::to_vec(&req).expect("a decoded create body encodes");
    let again: CreateRequest = serde_json::from_slice(&enc).unwrap_or_else(|e| {
        panic!(
            "re-encoded body does not decode: {e}: {}",
            String::from_utf8_lossy(&enc)
        )
    });
    let enc2 = serde_json::to_vec(&again).expect("encodes");
    assert_eq!(
        String::from_utf8_lossy(&enc),
        String::from_utf8_lossy(&enc2),
        "encoding is not stable"
    );
    // what inspect renders from it
    let hc = serde_json::to_value(&req.host_config).expect("host config encodes");
    let _ = berth_types::overlay(berth_types::HOST_CONFIG_DEFAULTS, &hc);
});
