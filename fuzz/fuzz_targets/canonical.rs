//! Canonicalization of hosts and paths: never panics, and is idempotent (the canonical form
//! of a canonical form is itself), which is what keeps routing and policy in agreement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portless_proto::{canonical_host, canonical_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(path) = canonical_path(text) {
        assert_eq!(canonical_path(&path).as_deref(), Ok(path.as_str()));
        assert!(!path.contains("/../") && !path.contains("//"), "{path}");
    }
    if let Ok(host) = canonical_host(text) {
        assert_eq!(canonical_host(&host).as_deref(), Ok(host.as_str()));
    }
});
