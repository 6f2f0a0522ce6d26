//! The connector's YAML config: arbitrary text gives a config or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portless_ingress::TunnelConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = TunnelConfig::from_yaml_str(text, std::path::Path::new("fuzz.yml")) {
        let _ = loaded.config.ingress.find("a.example.com", "/x");
    }
});
