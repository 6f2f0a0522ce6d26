//! Reading service token credentials from request headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::HeaderValue;
use portless_access::service_token::{TokenHeaderError, token_from_headers};
use secrecy::ExposeSecret as _;
use support::headers;

mod support;

fn parsed(pairs: &[(&str, &str)]) -> Result<Option<(String, String)>, TokenHeaderError> {
    token_from_headers(&headers(pairs))
        .map(|found| found.map(|(id, secret)| (id, secret.expose_secret().to_owned())))
}

fn pair(id: &str, secret: &str) -> Option<(String, String)> {
    Some((id.to_owned(), secret.to_owned()))
}

#[test]
fn no_token_headers_is_no_token() {
    assert_eq!(parsed(&[]), Ok(None));
    assert_eq!(
        parsed(&[("authorization", "Bearer x"), ("cookie", "a=b")]),
        Ok(None)
    );
}

#[test]
fn either_form_in_any_case_gives_the_pair() {
    assert_eq!(
        parsed(&[
            ("CF-Access-Client-Id", "id"),
            ("CF-Access-Client-Secret", "s")
        ]),
        Ok(pair("id", "s"))
    );
    assert_eq!(
        parsed(&[
            ("portless-client-id", "id"),
            ("PORTLESS-CLIENT-SECRET", "s")
        ]),
        Ok(pair("id", "s"))
    );
    // Mixed forms make a pair too.
    assert_eq!(
        parsed(&[
            ("cf-access-client-id", "id"),
            ("portless-client-secret", "s")
        ]),
        Ok(pair("id", "s"))
    );
}

#[test]
fn both_forms_may_be_sent_if_they_agree() {
    assert_eq!(
        parsed(&[
            ("cf-access-client-id", "id"),
            ("portless-client-id", "id"),
            ("cf-access-client-secret", "s"),
            ("portless-client-secret", "s"),
        ]),
        Ok(pair("id", "s"))
    );
}

#[test]
fn forms_that_disagree_are_refused() {
    assert_eq!(
        parsed(&[
            ("cf-access-client-id", "id"),
            ("portless-client-id", "other"),
            ("cf-access-client-secret", "s"),
        ]),
        Err(TokenHeaderError::Conflicting {
            first: "cf-access-client-id",
            second: "portless-client-id",
        })
    );
    let error = parsed(&[
        ("cf-access-client-id", "id"),
        ("cf-access-client-secret", "s"),
        ("portless-client-secret", "t"),
    ])
    .unwrap_err();
    assert!(matches!(error, TokenHeaderError::Conflicting { .. }));
    assert!(error.to_string().contains("send one of them"), "{error}");
}

#[test]
fn a_repeated_header_is_refused_even_with_equal_values() {
    for value in ["s", "t"] {
        let error = parsed(&[
            ("cf-access-client-id", "id"),
            ("cf-access-client-secret", "s"),
            ("CF-Access-Client-Secret", value),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            TokenHeaderError::Duplicate {
                header: "cf-access-client-secret"
            }
        );
    }
    assert!(matches!(
        parsed(&[
            ("portless-client-id", "id"),
            ("portless-client-id", "id"),
            ("portless-client-secret", "s"),
        ]),
        Err(TokenHeaderError::Duplicate { .. })
    ));
}

#[test]
fn half_a_pair_is_refused() {
    assert_eq!(
        parsed(&[("cf-access-client-id", "id")]),
        Err(TokenHeaderError::MissingSecret)
    );
    assert_eq!(
        parsed(&[("portless-client-secret", "s")]),
        Err(TokenHeaderError::MissingClientId)
    );
    let message = TokenHeaderError::MissingSecret.to_string();
    assert!(
        message.contains("also send CF-Access-Client-Secret"),
        "{message}"
    );
}

#[test]
fn empty_or_non_text_values_are_refused() {
    assert!(matches!(
        parsed(&[
            ("cf-access-client-id", ""),
            ("cf-access-client-secret", "s")
        ]),
        Err(TokenHeaderError::Malformed {
            header: "cf-access-client-id"
        })
    ));
    let mut map = headers(&[("cf-access-client-id", "id")]);
    map.insert(
        "cf-access-client-secret",
        HeaderValue::from_bytes(b"s\xff").unwrap(),
    );
    assert!(matches!(
        token_from_headers(&map),
        Err(TokenHeaderError::Malformed {
            header: "cf-access-client-secret"
        })
    ));
}

#[test]
fn underscore_variants_are_ignored() {
    // The edge strips these separately; they must never count as credentials.
    assert_eq!(
        parsed(&[
            ("cf_access_client_id", "id"),
            ("cf_access_client_secret", "s")
        ]),
        Ok(None)
    );
    assert_eq!(
        parsed(&[
            ("cf-access-client-id", "id"),
            ("cf-access-client-secret", "s"),
            ("cf_access_client_secret", "other"),
        ]),
        Ok(pair("id", "s"))
    );
}

#[test]
fn the_secret_is_not_in_debug_output() {
    let found = token_from_headers(&headers(&[
        ("cf-access-client-id", "id"),
        ("cf-access-client-secret", "supersecret"),
    ]))
    .unwrap();
    assert!(!format!("{found:?}").contains("supersecret"));
}
