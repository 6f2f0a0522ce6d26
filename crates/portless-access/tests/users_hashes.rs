//! Every supported hash format, verified against hashes made by independent implementations
//! (argon2-cffi, passlib, Python's hashlib and bcrypt, OpenSSL: see
//! `users/generate_fixtures.py`), and against hashes Portless makes itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use portless_access::users::{
    AuthFailure, HashAlgorithm, PasswordHash, UsersDatabase, verify_password,
};

const PASSWORD: &str = "correct horse battery staple";
const UNICODE: &str = "Pässwörd-🔑-ünïcode";

fn fixtures() -> UsersDatabase {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/users/all_formats.yml");
    UsersDatabase::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// (user in the fixture file, the algorithm its hash must be read as)
const FORMATS: &[(&str, HashAlgorithm)] = &[
    ("argon2id-default", HashAlgorithm::Argon2id),
    ("argon2id-small", HashAlgorithm::Argon2id),
    ("argon2i", HashAlgorithm::Argon2i),
    ("argon2d", HashAlgorithm::Argon2d),
    ("scrypt-passlib", HashAlgorithm::Scrypt),
    ("scrypt-hashlib", HashAlgorithm::Scrypt),
    ("pbkdf2-sha512", HashAlgorithm::Pbkdf2Sha512),
    ("pbkdf2-sha256", HashAlgorithm::Pbkdf2Sha256),
    ("pbkdf2-sha1", HashAlgorithm::Pbkdf2Sha1),
    ("pbkdf2-sha256-phc", HashAlgorithm::Pbkdf2Sha256),
    ("pbkdf2-sha512-phc", HashAlgorithm::Pbkdf2Sha512),
    ("sha512crypt-openssl", HashAlgorithm::Sha512Crypt),
    ("sha512crypt-passlib", HashAlgorithm::Sha512Crypt),
    ("sha256crypt-openssl", HashAlgorithm::Sha256Crypt),
    ("bcrypt-2b", HashAlgorithm::Bcrypt),
    ("bcrypt-2a", HashAlgorithm::Bcrypt),
    ("bcrypt-2y", HashAlgorithm::Bcrypt),
];

#[test]
fn every_independent_fixture_verifies_and_refuses_wrong_passwords() {
    let db = fixtures();
    assert_eq!(db.len(), FORMATS.len() + 1);
    for &(name, algorithm) in FORMATS {
        let hash = db.get(name).unwrap().password_hash();
        assert_eq!(hash.algorithm(), algorithm, "{name}");
        assert!(
            verify_password(hash, PASSWORD),
            "{name}: right password refused"
        );
        for wrong in [
            "",
            "correct horse battery stapl",
            "Correct horse battery staple",
            UNICODE,
        ] {
            assert!(!verify_password(hash, wrong), "{name}: {wrong:?} accepted");
        }
    }
}

#[test]
fn every_fixture_user_logs_in_through_authenticate() {
    let db = fixtures();
    for &(name, algorithm) in FORMATS {
        let user = db.authenticate(name, PASSWORD).unwrap();
        assert_eq!(user.hash_algorithm, algorithm);
        // Only argon2id at the default cost is current; the rest should be rehashed.
        assert_eq!(user.needs_rehash, name != "argon2id-default", "{name}");
        let by_email = db.authenticate(&format!("{}@EXAMPLE.com", name.to_uppercase()), PASSWORD);
        assert_eq!(by_email.unwrap().name, name);
        assert_eq!(
            db.authenticate(name, "nope"),
            Err(AuthFailure::WrongPassword)
        );
    }
}

#[test]
fn non_ascii_passwords_are_hashed_as_utf8() {
    let db = fixtures();
    assert!(db.authenticate("unicode", UNICODE).is_ok());
    assert!(db.authenticate("unicode", "Passwörd-🔑-ünïcode").is_err());
}

#[test]
fn new_argon2id_hashes_verify_here_and_have_the_documented_parameters() {
    let hash = PasswordHash::new_argon2id(UNICODE).unwrap();
    assert!(hash.as_str().starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    assert!(verify_password(&hash, UNICODE));
    assert!(!verify_password(&hash, PASSWORD));
    // Written and read back as text, as the users file stores it.
    let reread = PasswordHash::parse(hash.as_str()).unwrap();
    assert!(verify_password(&reread, UNICODE));
}

#[test]
fn a_truncated_or_altered_hash_is_refused_at_load() {
    for text in [
        "$argon2id$v=19$m=8192,t=2,p=1$GzRRX+nNESSgW+YMhYaNLw",
        "$scrypt$ln=12,r=8$",
        "$pbkdf2-sha512$10000$P6d0DuH8H6O0lhKCsHYOgQ",
        "$6$2musdCvw8ypT8xIu$8YWzjzd57oV7gO1TAa4cIaq878beRYJyELLlP7Lh15nM1v0lAYRe0zRPcd",
        "$2b$05$/BEOxSmn/ht9z/bOjfjKwubqi/VGltvwogUgCfjrmvSmS2E7oO1l",
        "correct horse battery staple",
    ] {
        assert!(PasswordHash::parse(text).is_err(), "{text}");
    }
}
