use super::*;

const SHA1_SEED: &[u8] = b"12345678901234567890";
const SHA256_SEED: &[u8] = b"12345678901234567890123456789012";
const SHA512_SEED: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

fn seed(bytes: &[u8]) -> TotpSecret {
    TotpSecret::from_bytes(bytes.to_vec()).unwrap()
}

fn eight(algorithm: TotpAlgorithm) -> TotpParams {
    TotpParams {
        algorithm,
        digits: 8,
        ..TotpParams::default()
    }
}

/// The code for unix time `at`, computed independently of `verify`.
fn code_at(params: &TotpParams, secret: &TotpSecret, at: u64) -> String {
    build(params, secret).unwrap().generate(at).to_string()
}

#[test]
fn defaults_are_what_apps_expect() {
    let params = TotpParams::default();
    assert_eq!(params.algorithm, TotpAlgorithm::Sha1);
    assert_eq!((params.digits, params.period, params.skew), (6, 30, 1));
    assert_eq!(params.validate(), Ok(()));
}

#[test]
fn rfc_6238_vectors_verify_with_8_digits() {
    // RFC 6238, appendix B.
    let cases: &[(u64, &str, &str, &str)] = &[
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    for &(time, sha1, sha256, sha512) in cases {
        for (algorithm, seed_bytes, code) in [
            (TotpAlgorithm::Sha1, SHA1_SEED, sha1),
            (TotpAlgorithm::Sha256, SHA256_SEED, sha256),
            (TotpAlgorithm::Sha512, SHA512_SEED, sha512),
        ] {
            let step = verify(&eight(algorithm), &seed(seed_bytes), code, time, None)
                .unwrap_or_else(|e| panic!("{algorithm:?} at {time}: {e}"));
            assert_eq!(step, time / 30, "{algorithm:?} at {time}");
        }
    }
}

#[test]
fn a_6_digit_code_is_the_last_6_digits() {
    // RFC 4226 truncation: the 6-digit code is the 8-digit one modulo 10^6.
    let step = verify(&TotpParams::default(), &seed(SHA1_SEED), "287082", 59, None).unwrap();
    assert_eq!(step, 1);
}

#[test]
fn skew_accepts_one_step_either_side_and_no_more() {
    let params = TotpParams::default();
    let secret = seed(SHA1_SEED);
    let now = 1_700_000_000;
    let current = now / 30;
    for offset in [-1i64, 0, 1] {
        let at = (now as i64 + offset * 30) as u64;
        let code = code_at(&params, &secret, at);
        let step = verify(&params, &secret, &code, now, None).unwrap();
        assert_eq!(step as i64, current as i64 + offset);
    }
    for offset in [-3i64, -2, 2, 3] {
        let at = (now as i64 + offset * 30) as u64;
        let code = code_at(&params, &secret, at);
        assert!(
            matches!(
                verify(&params, &secret, &code, now, None),
                Err(TotpError::Wrong)
            ),
            "offset {offset} must be refused"
        );
    }
}

#[test]
fn skew_zero_accepts_only_the_current_step() {
    let params = TotpParams {
        skew: 0,
        ..TotpParams::default()
    };
    let secret = seed(SHA1_SEED);
    let now = 1_700_000_010;
    assert!(verify(&params, &secret, &code_at(&params, &secret, now), now, None).is_ok());
    let next = code_at(&params, &secret, now + 30);
    assert!(matches!(
        verify(&params, &secret, &next, now, None),
        Err(TotpError::Wrong)
    ));
}

#[test]
fn a_used_step_or_an_earlier_one_is_a_replay() {
    let params = TotpParams::default();
    let secret = seed(SHA1_SEED);
    let now = 1_700_000_000;
    let code = code_at(&params, &secret, now);
    let step = verify(&params, &secret, &code, now, None).unwrap();
    assert!(matches!(
        verify(&params, &secret, &code, now, Some(step)),
        Err(TotpError::Replayed)
    ));
    // The previous step's code, still inside the skew window, is refused once a later step
    // was used.
    let previous = code_at(&params, &secret, now - 30);
    assert!(matches!(
        verify(&params, &secret, &previous, now, Some(step)),
        Err(TotpError::Replayed)
    ));
    // The next step's code is still fine.
    let next = code_at(&params, &secret, now + 30);
    assert_eq!(
        verify(&params, &secret, &next, now, Some(step)).unwrap(),
        step + 1
    );
}

#[test]
fn malformed_codes_are_refused_before_any_check() {
    let params = TotpParams::default();
    let secret = seed(SHA1_SEED);
    let good = code_at(&params, &secret, 1_700_000_000);
    for code in [
        "",
        "12345",
        "1234567",
        "+12345",
        "-12345",
        " 12345",
        "12345 ",
        "12 345",
        "١٢٣٤٥٦", // Arabic-Indic digits
        "12345a",
        &format!("{good}\0"),
    ] {
        assert!(
            matches!(
                verify(&params, &secret, code, 1_700_000_000, None),
                Err(TotpError::Malformed { digits: 6 })
            ),
            "{code:?}"
        );
    }
    // An 8-digit config refuses a 6-digit code.
    assert!(matches!(
        verify(
            &eight(TotpAlgorithm::Sha1),
            &secret,
            &good,
            1_700_000_000,
            None
        ),
        Err(TotpError::Malformed { digits: 8 })
    ));
}

#[test]
fn invalid_settings_are_refused() {
    let secret = seed(SHA1_SEED);
    for (params, expected) in [
        (
            TotpParams {
                digits: 7,
                ..TotpParams::default()
            },
            TotpParamsError::Digits { digits: 7 },
        ),
        (
            TotpParams {
                period: 0,
                ..TotpParams::default()
            },
            TotpParamsError::Period,
        ),
        (
            TotpParams {
                skew: 3,
                ..TotpParams::default()
            },
            TotpParamsError::Skew { skew: 3 },
        ),
    ] {
        assert_eq!(params.validate(), Err(expected.clone()));
        assert!(matches!(
            verify(&params, &secret, "123456", 0, None),
            Err(TotpError::Params(e)) if e == expected
        ));
    }
}

#[test]
fn secrets_are_random_20_bytes_and_never_debug_printed() {
    let a = TotpSecret::generate().unwrap();
    let b = TotpSecret::generate().unwrap();
    assert_eq!(a.as_bytes().len(), SECRET_LEN);
    assert_ne!(a.as_bytes(), b.as_bytes());
    let text = format!("{a:?}");
    assert_eq!(text, "TotpSecret(<redacted>)");
    assert!(!text.contains(&a.to_base32()));
    assert!(matches!(
        TotpSecret::from_bytes(vec![0; 10]),
        Err(TotpError::SecretTooShort { len: 10 })
    ));
}

#[test]
fn base32_display_is_rfc_4648_unpadded() {
    assert_eq!(
        seed(SHA1_SEED).to_base32(),
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
}

#[test]
fn provisioning_uri_carries_label_secret_and_non_default_settings() {
    let secret = seed(SHA1_SEED);
    let uri = provisioning_uri(&TotpParams::default(), &secret, "Portless", "alice").unwrap();
    assert_eq!(
        uri,
        "otpauth://totp/Portless:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portless"
    );
    let params = TotpParams {
        algorithm: TotpAlgorithm::Sha256,
        digits: 8,
        period: 60,
        skew: 1,
    };
    let uri = provisioning_uri(&params, &secret, "auth.example.com", "bob@example.com").unwrap();
    assert!(
        uri.starts_with("otpauth://totp/auth.example.com:bob%40example.com?"),
        "{uri}"
    );
    for part in [
        "digits=8",
        "algorithm=SHA256",
        "period=60",
        "issuer=auth.example.com",
    ] {
        assert!(uri.contains(part), "{uri} lacks {part}");
    }
    assert!(matches!(
        provisioning_uri(&TotpParams::default(), &secret, "Portless", "a:b"),
        Err(TotpError::Account { .. })
    ));
    assert!(matches!(
        provisioning_uri(&TotpParams::default(), &secret, "Port:less", "alice"),
        Err(TotpError::Params(TotpParamsError::Issuer { .. }))
    ));
}
