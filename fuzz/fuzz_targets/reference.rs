//! Image reference parsing: never panics, and a parsed reference's normalised form
//! (`docker.io/library/busybox:latest`) parses back to the same reference, as does its
//! familiar form (`busybox:latest`) unless the path on docker.io starts with a component that
//! reads as a registry (`docker.io/foo.com/bar` is shown as `foo.com/bar`, as docker shows it:
//! found by this target, kept for docker's sake; Docker Hub namespaces cannot contain a dot).
#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let full = r.full();
    let again = Reference::parse(&full)
        .unwrap_or_else(|e| panic!("{s:?} parsed as {full:?}, which does not parse: {e}"));
    assert_eq!(again, r, "{s:?} -> {full:?} parses differently");
    let first = r.path.split('/').next().unwrap_or("");
    let domain_like = first.contains('.') || first.contains(':') || first == "localhost";
    if r.domain == "docker.io" && domain_like {
        return;
    }
    let familiar = r.familiar();
    let again = Reference::parse(&familiar)
        .unwrap_or_else(|e| panic!("{s:?} familiar {familiar:?} does not parse: {e}"));
    assert_eq!(again, r, "{s:?} -> familiar {familiar:?} parses differently");
    // the derived names are consistent with each other
    assert!(full.starts_with(&r.name()));
    let _ = r.familiar_name();
});
