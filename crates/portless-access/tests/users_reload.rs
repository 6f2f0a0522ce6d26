//! `UsersFile`: reload on a valid change, keep the old users on an invalid one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portless_access::users::{ReloadOutcome, UsersFile};

const BCRYPT: &str = "$2b$05$/BEOxSmn/ht9z/bOjfjKwubqi/VGltvwogUgCfjrmvSmS2E7oO1lG";

fn users(names: &[&str]) -> String {
    let mut text = String::from("users:\n");
    for name in names {
        text.push_str(&format!("  {name}:\n    password: '{BCRYPT}'\n"));
    }
    text
}

fn names(file: &UsersFile) -> Vec<String> {
    file.current()
        .users()
        .map(|u| u.name().to_owned())
        .collect()
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn open_refuses_an_invalid_or_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    let missing = UsersFile::open(&path).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("could not read the users file")
    );
    write(&path, "users:\n  alice:\n    password: hunter2\n");
    let invalid = UsersFile::open(&path).unwrap_err();
    assert!(
        invalid
            .to_string()
            .contains(":3:15: error: the password of user `alice`")
    );
}

#[test]
fn check_now_swaps_in_valid_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    write(&path, &users(&["alice"]));
    let file = UsersFile::open(&path).unwrap();
    assert_eq!(names(&file), ["alice"]);
    let snapshot = file.current();

    assert!(matches!(file.check_now(), ReloadOutcome::Unchanged));

    write(&path, &users(&["alice", "bob"]));
    assert!(matches!(
        file.check_now(),
        ReloadOutcome::Reloaded { users: 2 }
    ));
    assert_eq!(names(&file), ["alice", "bob"]);
    // A snapshot taken before stays as it was.
    assert_eq!(snapshot.len(), 1);

    // Invalid: every error is reported, the previous users stay.
    let invalid = users(&["alice", "bob", "ALICE"]) + "  carol:\n    password: nope\n";
    write(&path, &invalid);
    match file.check_now() {
        ReloadOutcome::Rejected(errors) => assert_eq!(errors.len(), 2, "{errors}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(names(&file), ["alice", "bob"]);
    // The same invalid content again is not re-reported as a change.
    assert!(matches!(file.check_now(), ReloadOutcome::Unchanged));

    // Half-written (empty) and deleted files keep the previous users too.
    write(&path, "");
    assert!(matches!(file.check_now(), ReloadOutcome::Rejected(_)));
    fs::remove_file(&path).unwrap();
    assert!(matches!(file.check_now(), ReloadOutcome::Rejected(_)));
    assert_eq!(names(&file), ["alice", "bob"]);

    write(&path, &users(&["carol"]));
    assert!(matches!(
        file.check_now(),
        ReloadOutcome::Reloaded { users: 1 }
    ));
    assert_eq!(names(&file), ["carol"]);
}

#[tokio::test(start_paused = true)]
async fn watch_polls_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    write(&path, &users(&["alice"]));
    let file = Arc::new(UsersFile::open(&path).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn({
        let file = file.clone();
        async move {
            file.watch(Duration::from_secs(5), async {
                let _ = stopped.await;
            })
            .await;
        }
    });
    write(&path, &users(&["alice", "bob"]));
    // Paused time: the runtime jumps straight to the next poll.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(names(&file), ["alice", "bob"]);
    stop.send(()).unwrap();
    watcher.await.unwrap();
}
