use super::*;

use std::fs;

#[test]
fn load_or_create_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let created = LocalCa::load_or_create(&state).unwrap();
    let loaded = LocalCa::load_or_create(&state).unwrap();
    assert_eq!(created.pin(), loaded.pin());
    assert_eq!(created.cert_der(), loaded.cert_der());
    assert_eq!(created.cert_pem(), loaded.cert_pem());
    // The reloaded CA can still issue (its subject and key identifier were read back).
    let leaf = loaded.issue(&["app.example.com".to_owned()]).unwrap();
    assert_eq!(leaf.cert[1], *created.cert_der());
    // Only the two files, no temporaries left behind.
    let mut names: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [CA_KEY_FILE, CA_CERT_FILE]);
}

#[cfg(unix)]
#[test]
fn key_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    LocalCa::load_or_create(dir.path()).unwrap();
    let mode = fs::metadata(dir.path().join(CA_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn corrupt_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    LocalCa::load_or_create(dir.path()).unwrap();
    fs::write(dir.path().join(CA_KEY_FILE), "not a key").unwrap();
    let err = LocalCa::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(err.contains(CA_KEY_FILE), "{err}");
    assert!(err.contains("no PEM private key"), "{err}");
}

#[test]
fn corrupt_cert_is_named() {
    let dir = tempfile::tempdir().unwrap();
    LocalCa::load_or_create(dir.path()).unwrap();
    fs::write(dir.path().join(CA_CERT_FILE), "garbage").unwrap();
    let err = LocalCa::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(err.contains(CA_CERT_FILE), "{err}");
}

#[test]
fn key_of_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    LocalCa::load_or_create(dir.path()).unwrap();
    let other = LocalCa::generate("other").unwrap();
    fs::write(
        dir.path().join(CA_KEY_FILE),
        other.issuer.key().serialize_pem(),
    )
    .unwrap();
    let err = LocalCa::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
}

#[test]
fn half_a_ca_is_not_silently_replaced() {
    let dir = tempfile::tempdir().unwrap();
    LocalCa::load_or_create(dir.path()).unwrap();
    fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
    let err = LocalCa::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(err.contains("ca-key.pem is missing"), "{err}");
}

#[test]
fn unreadable_dir_is_named() {
    let err = LocalCa::load(
        Path::new("/nonexistent/ca.pem"),
        Path::new("/nonexistent/k.pem"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn issue_rejects_empty_names() {
    let ca = LocalCa::generate("t").unwrap();
    assert!(matches!(ca.issue(&[]), Err(TlsError::NoNames)));
}

#[test]
fn issue_pem_writes_loadable_files() {
    let ca = LocalCa::generate("t").unwrap();
    let (chain, key) = ca
        .issue_pem(&["a.example.com".to_owned(), "127.0.0.1".to_owned()])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    fs::write(&cert_path, chain).unwrap();
    fs::write(&key_path, key).unwrap();
    let loaded = crate::load_pem_chain_and_key(&cert_path, &key_path).unwrap();
    assert_eq!(loaded.cert.len(), 2);
    assert_eq!(loaded.cert[1], *ca.cert_der());
}

#[test]
fn debug_does_not_print_the_key() {
    let ca = LocalCa::generate("t").unwrap();
    let debug = format!("{ca:?}");
    assert!(debug.contains("sha256:"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}
