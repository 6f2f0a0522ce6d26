//! The store against real SQLite: in memory and in files under temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use portless_store::{HostnameError, Store, StoreError};
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("store.db")
}

/// The bytes of the store file and its -wal/-shm companions, wherever the data currently sits.
fn store_bytes(path: &Path) -> Vec<u8> {
    let dir = path.parent().unwrap();
    let prefix = path.file_name().unwrap().to_str().unwrap();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_str().unwrap().starts_with(prefix) {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn verify_accepts_only_the_right_secret_of_a_known_tunnel() {
    let store = Store::open_in_memory().await.unwrap();
    let new = store.create_tunnel("web").await.unwrap();
    let id = new.tunnel.id;

    let verified = store
        .verify_tunnel_secret(id, new.secret.expose())
        .await
        .unwrap();
    assert_eq!(verified.as_ref(), Some(&new.tunnel));

    let mut wrong = new.secret.expose().to_vec();
    wrong[0] ^= 1;
    assert_eq!(store.verify_tunnel_secret(id, &wrong).await.unwrap(), None);
    assert_eq!(store.verify_tunnel_secret(id, b"").await.unwrap(), None);
    let unknown = Uuid::new_v4();
    assert_eq!(
        store
            .verify_tunnel_secret(unknown, new.secret.expose())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn tunnels_are_found_by_name_or_id_and_listed() {
    let store = Store::open_in_memory().await.unwrap();
    let web = store.create_tunnel("web").await.unwrap().tunnel;
    let db = store.create_tunnel("db").await.unwrap().tunnel;

    assert_eq!(web.account_tag, store.account_tag().await.unwrap());
    assert!(web.created_at > 1_700_000_000);
    assert_eq!(store.tunnel("web").await.unwrap(), Some(web.clone()));
    assert_eq!(
        store.tunnel(&web.id.to_string()).await.unwrap(),
        Some(web.clone())
    );
    assert_eq!(store.tunnel("nope").await.unwrap(), None);
    assert_eq!(
        store.tunnel(&Uuid::new_v4().to_string()).await.unwrap(),
        None
    );
    assert_eq!(
        store.tunnels().await.unwrap(),
        vec![db.clone(), web.clone()]
    );

    assert!(store.delete_tunnel(db.id).await.unwrap());
    assert!(!store.delete_tunnel(db.id).await.unwrap());
    assert_eq!(store.tunnels().await.unwrap(), vec![web]);
}

#[tokio::test]
async fn tunnel_names_are_validated_and_unique() {
    let store = Store::open_in_memory().await.unwrap();
    let err = store.create_tunnel("x y").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidTunnelName { .. }));
    assert_eq!(
        err.to_string(),
        "tunnel name \"x y\" is invalid: use letters, digits, '.', '_' or '-'"
    );

    store.create_tunnel("web").await.unwrap();
    let err = store.create_tunnel("web").await.unwrap_err();
    assert!(
        matches!(err, StoreError::TunnelNameTaken { ref name } if name == "web"),
        "{err}"
    );
    assert!(err.to_string().contains("choose another name"));
    assert_eq!(store.tunnels().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_store_file_never_holds_a_plain_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path).await.unwrap();
    let mut secrets = Vec::new();
    for name in ["a", "b", "c"] {
        secrets.push(store.create_tunnel(name).await.unwrap());
    }
    let rotated = store
        .rotate_tunnel_secret(secrets[0].tunnel.id, HOUR)
        .await
        .unwrap();

    let bytes = store_bytes(&path);
    let mut all = vec![rotated.expose().to_vec()];
    all.extend(secrets.iter().map(|n| n.secret.expose().to_vec()));
    for secret in &all {
        let sha = digest(&SHA256, secret);
        // The hash is there, so the bytes searched are the ones the store wrote...
        assert!(contains(&bytes, hex(sha.as_ref()).as_bytes()));
        // ...and no form of the secret is.
        assert!(!contains(&bytes, secret));
        assert!(!contains(&bytes, hex(secret).as_bytes()));
        let b64 = base64_of(secret);
        assert!(!contains(&bytes, b64.as_bytes()));
        assert!(!contains(&bytes, b64.trim_end_matches('=').as_bytes()));
    }
}

fn base64_of(secret: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(secret)
}

#[tokio::test]
async fn routes_are_canonical_and_rerouting_replaces() {
    let store = Store::open_in_memory().await.unwrap();
    let a = store.create_tunnel("a").await.unwrap().tunnel.id;
    let b = store.create_tunnel("b").await.unwrap().tunnel.id;

    let first = store.route("App.Example.COM.", a).await.unwrap();
    assert_eq!(first.route.hostname, "app.example.com");
    assert_eq!(first.route.tunnel_id, a);
    assert_eq!(first.replaced, None);

    let moved = store.route("app.example.com", b).await.unwrap();
    assert_eq!(moved.route.tunnel_id, b);
    assert_eq!(moved.replaced, Some(a));
    let same = store.route("APP.example.com", b).await.unwrap();
    assert_eq!(same.replaced, None);

    store.route("*.Example.com", a).await.unwrap();
    let hosts: Vec<_> = store
        .routes()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.hostname, r.tunnel_id))
        .collect();
    assert_eq!(
        hosts,
        vec![("*.example.com".into(), a), ("app.example.com".into(), b)]
    );

    assert!(store.unroute("APP.EXAMPLE.COM.").await.unwrap());
    assert!(!store.unroute("app.example.com").await.unwrap());
    assert_eq!(store.routes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_routes_are_refused_with_the_fix() {
    let store = Store::open_in_memory().await.unwrap();
    let a = store.create_tunnel("a").await.unwrap().tunnel.id;

    let err = store
        .route("https://app.example.com/", a)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidHostname(HostnameError::Scheme { .. })
    ));
    assert!(err.to_string().contains("use \"app.example.com\""), "{err}");
    let err = store.route("app.example.com:443", a).await.unwrap_err();
    assert!(err.to_string().contains("use \"app.example.com\""), "{err}");

    let unknown = Uuid::new_v4();
    let err = store.route("app.example.com", unknown).await.unwrap_err();
    assert!(matches!(err, StoreError::TunnelNotFound { id } if id == unknown));
    assert!(store.routes().await.unwrap().is_empty());
}

#[tokio::test]
async fn routes_version_moves_on_every_change_and_only_then() {
    let store = Store::open_in_memory().await.unwrap();
    let v0 = store.routes_version().await.unwrap();

    let a = store.create_tunnel("a").await.unwrap().tunnel.id;
    let v1 = store.routes_version().await.unwrap();
    assert!(v1 > v0);

    store.route("app.example.com", a).await.unwrap();
    let v2 = store.routes_version().await.unwrap();
    assert!(v2 > v1);

    // No change, no bump: re-routing to the same tunnel, failed or empty operations.
    store.route("app.example.com", a).await.unwrap();
    store.create_tunnel("a").await.unwrap_err();
    store
        .route("x.example.com", Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(!store.unroute("other.example.com").await.unwrap());
    assert!(!store.delete_tunnel(Uuid::new_v4()).await.unwrap());
    store.set_setting("k", "v").await.unwrap();
    assert_eq!(store.routes_version().await.unwrap(), v2);

    store.rotate_tunnel_secret(a, HOUR).await.unwrap();
    let v3 = store.routes_version().await.unwrap();
    assert!(v3 > v2);

    // Deleting the tunnel takes its routes with it.
    assert!(store.delete_tunnel(a).await.unwrap());
    assert!(store.routes_version().await.unwrap() > v3);
    assert!(store.routes().await.unwrap().is_empty());
}

#[tokio::test]
async fn rotation_keeps_the_previous_secret_for_the_grace_period() {
    let store = Store::open_in_memory().await.unwrap();
    let new = store.create_tunnel("web").await.unwrap();
    let id = new.tunnel.id;
    let verifies = async |secret: &[u8]| {
        store
            .verify_tunnel_secret(id, secret)
            .await
            .unwrap()
            .is_some()
    };

    let second = store.rotate_tunnel_secret(id, HOUR).await.unwrap();
    assert!(verifies(second.expose()).await);
    assert!(
        verifies(new.secret.expose()).await,
        "previous secret within grace"
    );

    // A second rotation ends the first one's grace: only the last two secrets count.
    let third = store.rotate_tunnel_secret(id, HOUR).await.unwrap();
    assert!(verifies(third.expose()).await);
    assert!(verifies(second.expose()).await);
    assert!(!verifies(new.secret.expose()).await);

    // No grace: the replaced secret stops working at once.
    let fourth = store
        .rotate_tunnel_secret(id, Duration::ZERO)
        .await
        .unwrap();
    assert!(verifies(fourth.expose()).await);
    assert!(!verifies(third.expose()).await);

    let unknown = Uuid::new_v4();
    let err = store.rotate_tunnel_secret(unknown, HOUR).await.unwrap_err();
    assert!(matches!(err, StoreError::TunnelNotFound { id } if id == unknown));
}

#[tokio::test]
async fn reopening_a_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (tag, tunnel, secret) = {
        let store = Store::open(&path).await.unwrap();
        let new = store.create_tunnel("web").await.unwrap();
        store.route("app.example.com", new.tunnel.id).await.unwrap();
        store
            .set_setting("acme.email", "ops@example.com")
            .await
            .unwrap();
        (store.account_tag().await.unwrap(), new.tunnel, new.secret)
    };

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.account_tag().await.unwrap(), tag);
    assert_eq!(store.tunnels().await.unwrap(), vec![tunnel.clone()]);
    assert_eq!(store.routes().await.unwrap()[0].tunnel_id, tunnel.id);
    assert_eq!(
        store.setting("acme.email").await.unwrap().as_deref(),
        Some("ops@example.com")
    );
    assert!(
        store
            .verify_tunnel_secret(tunnel.id, secret.expose())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_can_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    // Opened at the same time, so the first-open migrations race too.
    let (one, two) = tokio::join!(Store::open(&path), Store::open(&path));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(
        one.account_tag().await.unwrap(),
        two.account_tag().await.unwrap()
    );

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        for (store, side) in [(one.clone(), "one"), (two.clone(), "two")] {
            tasks.spawn(async move {
                let tunnel = store.create_tunnel(&format!("{side}-{i}")).await?.tunnel;
                store
                    .route(&format!("{side}-{i}.example.com"), tunnel.id)
                    .await?;
                Ok::<_, StoreError>(())
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(one.tunnels().await.unwrap().len(), 40);
    assert_eq!(two.routes().await.unwrap().len(), 40);
    assert_eq!(one.routes_version().await.unwrap(), 80);
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_store_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path).await.unwrap();
    store.create_tunnel("web").await.unwrap();

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let wal = path.with_extension("db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
}

#[tokio::test]
async fn an_unusable_path_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("store.db");
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::FileAccess { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!(
        "the store file {} is not writable",
        path.display()
    )));
}

#[tokio::test]
async fn account_tag_is_32_hex_and_stable() {
    let store = Store::open_in_memory().await.unwrap();
    let tag = store.account_tag().await.unwrap();
    assert_eq!(tag.len(), 32);
    assert!(
        tag.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(store.clone().account_tag().await.unwrap(), tag);
    let other = Store::open_in_memory().await.unwrap();
    assert_ne!(other.account_tag().await.unwrap(), tag);
}

#[tokio::test]
async fn settings_round_trip() {
    let store = Store::open_in_memory().await.unwrap();
    assert_eq!(store.setting("edge.name").await.unwrap(), None);
    store.set_setting("edge.name", "fra-1").await.unwrap();
    store.set_setting("edge.name", "fra-2").await.unwrap();
    assert_eq!(
        store.setting("edge.name").await.unwrap().as_deref(),
        Some("fra-2")
    );
    assert!(matches!(
        store.set_setting("", "x").await,
        Err(StoreError::EmptySettingKey)
    ));
}

#[tokio::test]
async fn tunnel_configs_are_versioned_per_tunnel_and_bump_the_routes_version() {
    let store = Store::open_in_memory().await.unwrap();
    let a = store.create_tunnel("a").await.unwrap().tunnel.id;
    let b = store.create_tunnel("b").await.unwrap().tunnel.id;
    assert_eq!(store.tunnel_config(a).await.unwrap(), None);

    let before = store.routes_version().await.unwrap();
    assert_eq!(store.set_tunnel_config(a, "one").await.unwrap(), 1);
    assert!(store.routes_version().await.unwrap() > before);
    assert_eq!(store.set_tunnel_config(a, "two").await.unwrap(), 2);
    assert_eq!(store.set_tunnel_config(b, "other").await.unwrap(), 1);
    assert_eq!(
        store.tunnel_config(a).await.unwrap(),
        Some((2, "two".to_owned()))
    );

    // The same text again is not a new version, and does not make the edge poll-reload.
    let unchanged = store.routes_version().await.unwrap();
    assert_eq!(store.set_tunnel_config(a, "two").await.unwrap(), 2);
    assert_eq!(store.routes_version().await.unwrap(), unchanged);

    let unknown = Uuid::new_v4();
    assert!(matches!(
        store.set_tunnel_config(unknown, "x").await,
        Err(StoreError::TunnelNotFound { id }) if id == unknown
    ));

    assert!(store.delete_tunnel(a).await.unwrap());
    assert_eq!(store.tunnel_config(a).await.unwrap(), None);
    assert_eq!(
        store.tunnel_config(b).await.unwrap(),
        Some((1, "other".to_owned()))
    );
}
