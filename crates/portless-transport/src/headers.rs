//! Conversions between `http` header maps and the wire's header lists.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use portless_proto::HeaderList;

use crate::TransportError;

/// Copies a header map into a wire header list (names are already lowercase in `http`).
pub fn to_header_list(map: &HeaderMap) -> HeaderList {
    map.iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Builds a header map from a wire list, refusing names or values HTTP does not allow
/// (CR, LF, NUL...), so nothing smuggled through the tunnel reaches a parser.
pub fn to_header_map(list: &HeaderList) -> Result<HeaderMap, TransportError> {
    let mut map = HeaderMap::with_capacity(list.len());
    for (name, value) in list {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TransportError::InvalidHeader(name.chars().take(64).collect()))?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| TransportError::InvalidHeader(name.as_str().to_owned()))?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_repeated_headers_in_order() {
        let mut map = HeaderMap::new();
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        map.append("x-bytes", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let list = to_header_list(&map);
        assert_eq!(to_header_map(&list).unwrap(), map);
    }

    #[test]
    fn control_characters_are_refused() {
        let list = vec![("x-evil".to_owned(), b"a\r\nb: c".to_vec())];
        assert!(to_header_map(&list).is_err());
        let list = vec![("bad name".to_owned(), b"v".to_vec())];
        assert!(to_header_map(&list).is_err());
    }
}
