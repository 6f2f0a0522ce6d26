//! Helpers shared by the integration tests that build requests.

use http::{HeaderMap, HeaderName, HeaderValue};

/// A header map with `pairs` appended in order (a name may repeat).
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}
