//! `add_user`, `set_password`, `set_disabled` on real files: atomic, mode kept, every other
//! user and comment intact, refusals before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use portless_access::users::{
    AuthFailure, EditError, HashAlgorithm, NewUser, UsersDatabase, add_user, set_disabled,
    set_password,
};
use secrecy::SecretString;

const BCRYPT: &str = "$2b$05$/BEOxSmn/ht9z/bOjfjKwubqi/VGltvwogUgCfjrmvSmS2E7oO1lG";
const OLD_PASSWORD: &str = "correct horse battery staple";

fn existing_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join("users_database.yml");
    let text = format!(
        "# Users of the example deployment.
users:
  alice:  # the admin
    displayname: Alice Doe
    password: '{BCRYPT}'
    email: alice@example.com
    groups: [admins, dev]
    given_name: Alice
    extra:
      employee_id: 42

  # Bob is on leave.
  Bob:
    displayname: \"Bob\"
    password: \"{BCRYPT}\"
    email: bob@example.com
    disabled: false
"
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn new_user(name: &str, email: Option<&str>) -> NewUser {
    NewUser {
        name: name.into(),
        displayname: "Carol Example".into(),
        email: email.map(Into::into),
        groups: vec!["dev".into(), "ops team".into()],
        password_plain: SecretString::from("carol's new password"),
    }
}

fn load(path: &Path) -> UsersDatabase {
    UsersDatabase::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The file with the lines of `changed` user values removed: what must not change.
fn without_lines_containing(text: &str, needles: &[&str]) -> String {
    text.lines()
        .filter(|line| !needles.iter().any(|n| line.contains(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn add_user_appends_one_block_and_keeps_mode_comments_and_other_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = existing_file(dir.path(), 0o640);
    let before_text = fs::read_to_string(&path).unwrap();
    let before = load(&path);

    let outcome = add_user(&path, new_user("carol", Some("carol@example.com"))).unwrap();
    assert_eq!(outcome.user, "carol");
    assert_eq!(outcome.algorithm, Some(HashAlgorithm::Argon2id));
    assert!(!outcome.created && outcome.changed);

    assert_eq!(mode(&path), 0o640);
    let after_text = fs::read_to_string(&path).unwrap();
    assert!(
        after_text.starts_with(&before_text),
        "the old text is kept verbatim"
    );
    let after = load(&path);
    assert_eq!(after.len(), 3);
    for user in before.users() {
        assert_eq!(after.get(user.name()), Some(user));
    }
    let carol = after.get("carol").unwrap();
    assert_eq!(carol.display_name(), "Carol Example");
    assert_eq!(carol.groups(), ["dev", "ops team"]);
    assert!(
        after
            .authenticate("carol@example.com", "carol's new password")
            .is_ok()
    );
    // No temporary file left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn add_user_refuses_an_existing_name_or_email_whatever_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = existing_file(dir.path(), 0o600);
    let before = fs::read(&path).unwrap();
    let exists = add_user(&path, new_user("ALICE", None)).unwrap_err();
    assert!(matches!(&exists, EditError::UserExists { name, .. } if name == "alice"));
    assert!(
        exists
            .to_string()
            .contains("use `portless user passwd alice`"),
        "{exists}"
    );
    let bob = add_user(&path, new_user("bob", None)).unwrap_err();
    assert!(matches!(bob, EditError::UserExists { .. }));
    let email = add_user(&path, new_user("carol", Some("Alice@Example.COM"))).unwrap_err();
    assert!(
        matches!(&email, EditError::EmailTaken { user, .. } if user == "alice"),
        "{email}"
    );
    let multi_at = add_user(&path, new_user("carol", Some("carol@evil.com@example.com")));
    assert!(matches!(multi_at, Err(EditError::InvalidNewUser(_))));
    let spaces = add_user(&path, new_user("carol smith", None));
    assert!(matches!(spaces, Err(EditError::InvalidNewUser(_))));
    assert_eq!(fs::read(&path).unwrap(), before, "nothing written");
}

#[test]
fn add_user_creates_a_missing_file_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new_users.yml");
    let outcome = add_user(&path, new_user("carol", Some("carol@example.com"))).unwrap();
    assert!(outcome.created);
    assert_eq!(mode(&path), 0o600);
    let db = load(&path);
    assert_eq!(db.len(), 1);
    assert!(db.authenticate("carol", "carol's new password").is_ok());
    // A second user is appended to the file the first one created.
    let mut dave = new_user("dave", None);
    dave.displayname = String::new();
    add_user(&path, dave).unwrap();
    assert_eq!(load(&path).len(), 2);
}

#[test]
fn add_user_fills_an_empty_users_mapping_and_keeps_its_comments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    fs::write(&path, "# managed by portless user\nusers: {}\n").unwrap();
    add_user(&path, new_user("carol", None)).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# managed by portless user\nusers:\n  carol:\n"),
        "{text}"
    );
    assert_eq!(load(&path).len(), 1);
}

#[test]
fn set_password_replaces_one_value_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = existing_file(dir.path(), 0o640);
    let before_text = fs::read_to_string(&path).unwrap();
    let before = load(&path);

    let outcome = set_password(&path, "BOB", &SecretString::from("a brand new secret")).unwrap();
    assert_eq!(
        (outcome.user.as_str(), outcome.algorithm),
        ("bob", Some(HashAlgorithm::Argon2id))
    );
    assert_eq!(mode(&path), 0o640);

    let after_text = fs::read_to_string(&path).unwrap();
    let after = load(&path);
    assert_eq!(after.get("alice"), before.get("alice"));
    assert!(after.authenticate("bob", "a brand new secret").is_ok());
    assert_eq!(
        after.authenticate("bob", OLD_PASSWORD),
        Err(AuthFailure::WrongPassword)
    );
    // Only Bob's password line differs.
    let bob_password = format!("password: \"{BCRYPT}\"");
    assert_eq!(
        without_lines_containing(&before_text, &[&bob_password]),
        without_lines_containing(&after_text, &["$argon2id$"]),
    );
}

#[test]
fn set_disabled_replaces_or_inserts_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = existing_file(dir.path(), 0o640);
    let before = load(&path);

    // Bob has `disabled: false`: the value is replaced.
    set_disabled(&path, "bob", true).unwrap();
    let db = load(&path);
    assert!(db.get("bob").unwrap().is_disabled());
    assert_eq!(
        db.authenticate("bob", OLD_PASSWORD),
        Err(AuthFailure::Disabled)
    );
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("    disabled: true\n")
    );

    // Alice has no `disabled`: a line is inserted under her password.
    set_disabled(&path, "Alice", true).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("    password: '{BCRYPT}'\n    disabled: true\n")),
        "{text}"
    );
    assert!(load(&path).get("alice").unwrap().is_disabled());
    assert!(text.contains("# Bob is on leave.") && text.contains("alice:  # the admin"));

    // Enabling again; a no-op edit reports that nothing changed.
    set_disabled(&path, "alice", false).unwrap();
    set_disabled(&path, "bob", false).unwrap();
    let outcome = set_disabled(&path, "bob", false).unwrap();
    assert!(!outcome.changed);
    assert_eq!(load(&path), before);
    assert_eq!(mode(&path), 0o640);
}

#[test]
fn edits_of_unknown_users_and_invalid_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = existing_file(dir.path(), 0o600);
    let secret = SecretString::from("whatever password");
    assert!(matches!(
        set_password(&path, "nobody", &secret),
        Err(EditError::NoSuchUser { .. })
    ));
    assert!(matches!(
        set_disabled(&path, "nobody", true),
        Err(EditError::NoSuchUser { .. })
    ));

    fs::write(&path, "users:\n  alice:\n    password: hunter2\n").unwrap();
    let invalid = set_disabled(&path, "alice", true).unwrap_err();
    assert!(matches!(invalid, EditError::Invalid(_)));
    assert!(
        invalid
            .to_string()
            .contains("users_database.yml:3:15: error"),
        "{invalid}"
    );
    assert!(matches!(
        set_password(&dir.path().join("missing.yml"), "alice", &secret),
        Err(EditError::Io { .. })
    ));
}

#[test]
fn flow_style_files_are_refused_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    let text = format!("users: {{alice: {{password: '{BCRYPT}'}}}}\n");
    fs::write(&path, &text).unwrap();
    assert!(matches!(
        add_user(&path, new_user("carol", None)),
        Err(EditError::Layout { .. })
    ));
    assert!(matches!(
        set_disabled(&path, "alice", true),
        Err(EditError::Layout { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Replacing a value works in flow style too.
    set_password(&path, "alice", &SecretString::from("another password")).unwrap();
    assert!(
        load(&path)
            .authenticate("alice", "another password")
            .is_ok()
    );
}

#[test]
fn edits_through_a_symlink_change_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = existing_file(dir.path(), 0o640);
    let link = dir.path().join("link.yml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    set_disabled(&link, "alice", true).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(load(&target).get("alice").unwrap().is_disabled());
}
