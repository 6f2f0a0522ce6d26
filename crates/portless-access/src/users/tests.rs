//! Unit tests of parsing, validation messages, lookups and login.

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;

use super::*;
use crate::{AuthLevel, Subject};

/// bcrypt cost 5 of "correct horse battery staple" (python `bcrypt`): cheap to verify.
const BCRYPT: &str = "$2b$05$/BEOxSmn/ht9z/bOjfjKwubqi/VGltvwogUgCfjrmvSmS2E7oO1lG";
const PASSWORD: &str = "correct horse battery staple";

fn parse(src: &str) -> Result<UsersDatabase, UsersError> {
    UsersDatabase::from_yaml_str(src, Path::new("users_database.yml"))
}

fn errors(src: &str) -> String {
    parse(src).unwrap_err().to_string()
}

fn sample() -> UsersDatabase {
    parse(&format!(
        "users:
  Alice:
    displayname: Alice Doe
    password: '{BCRYPT}'
    email: Alice@Example.com
    groups: [admins, dev]
  bob:
    displayname: Bob
    password: '{BCRYPT}'
    email: bob@example.com
    disabled: true
  carol:
    password: '{BCRYPT}'
"
    ))
    .unwrap()
}

// === parsing ===

#[test]
fn reads_users_with_their_fields_in_file_order() {
    let db = sample();
    assert_eq!(db.len(), 3);
    let names: Vec<&str> = db.users().map(User::name).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let alice = db.get("alice").unwrap();
    assert_eq!(alice.written_name(), "Alice");
    assert_eq!(alice.display_name(), "Alice Doe");
    assert_eq!(alice.email(), Some("Alice@Example.com"));
    assert_eq!(alice.groups(), ["admins", "dev"]);
    assert!(!alice.is_disabled());
    assert_eq!(alice.password_hash().algorithm(), HashAlgorithm::Bcrypt);
    assert!(db.get("bob").unwrap().is_disabled());
    let carol = db.get("carol").unwrap();
    assert_eq!((carol.display_name(), carol.email()), ("", None));
    assert!(carol.groups().is_empty());
}

#[test]
fn keeps_the_optional_profile_fields() {
    let db = parse(&format!(
        "users:
  alice:
    password: '{BCRYPT}'
    given_name: Alice
    family_name: Doe
    birthdate: 1990-01-31
    phone_number: '+1 555 0100'
    locale: en-GB
    address:
      street_address: 1 Main St
      locality: Springfield
    extra:
      employee_id: 42
      tags: [a, b]
"
    ))
    .unwrap();
    let profile = db.get("alice").unwrap().profile();
    assert_eq!(profile.given_name.as_deref(), Some("Alice"));
    assert_eq!(profile.family_name.as_deref(), Some("Doe"));
    assert_eq!(profile.birthdate.as_deref(), Some("1990-01-31"));
    assert_eq!(profile.phone_number.as_deref(), Some("+1 555 0100"));
    assert_eq!(profile.locale.as_deref(), Some("en-GB"));
    let address = profile.address.as_ref().unwrap();
    assert_eq!(address["locality"], "Springfield");
    let extra = profile.extra.as_ref().unwrap();
    assert_eq!(extra["employee_id"], 42);
    assert_eq!(extra["tags"][1], "b");
}

#[test]
fn empty_users_mapping_is_valid_but_a_blank_file_is_not() {
    assert!(parse("users: {}\n").unwrap().is_empty());
    assert!(parse("users:\n").unwrap().is_empty());
    assert_eq!(
        errors("# nothing yet\n\n"),
        "users_database.yml: error: the users file is empty\n  \
         fix: start the file with `users:`, or add a user with `portless user add NAME`"
    );
}

#[test]
fn plain_text_password_is_an_error_naming_the_user_and_position() {
    let message = errors("users:\n  alice:\n    password: hunter2\n");
    assert!(
        message.starts_with(
            "users_database.yml:3:15: error: the password of user `alice` is not a recognised hash"
        ),
        "{message}"
    );
    assert!(message.contains("fix: set a password hash with `portless user passwd alice`"));
}

#[test]
fn missing_password_is_an_error() {
    let message = errors("users:\n  alice:\n    email: a@example.com\n");
    assert!(
        message.starts_with("users_database.yml:2:3: error: user `alice` has no password"),
        "{message}"
    );
}

#[test]
fn usernames_differing_only_by_case_are_an_error() {
    let message = errors(&format!(
        "users:\n  alice:\n    password: '{BCRYPT}'\n  ALICE:\n    password: '{BCRYPT}'\n"
    ));
    assert!(
        message.starts_with(
            "users_database.yml:4:3: error: user `ALICE` is the same as user `alice` (line 2): \
             usernames are case-insensitive"
        ),
        "{message}"
    );
}

#[test]
fn exact_duplicate_usernames_are_a_yaml_error() {
    let message = errors(&format!(
        "users:\n  alice:\n    password: '{BCRYPT}'\n  alice:\n    password: '{BCRYPT}'\n"
    ));
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn duplicate_emails_are_an_error_whatever_their_case() {
    let message = errors(&format!(
        "users:
  alice:
    password: '{BCRYPT}'
    email: alice@example.com
  bob:
    password: '{BCRYPT}'
    email: ALICE@example.COM
"
    ));
    assert!(
        message.starts_with(
            "users_database.yml:7:12: error: user `bob` has the email address ALICE@example.COM \
             of user `alice`"
        ),
        "{message}"
    );
}

#[test]
fn a_username_that_is_another_users_email_is_an_error() {
    let message = errors(&format!(
        "users:
  alice:
    password: '{BCRYPT}'
    email: boss@example.com
  boss@example.com:
    password: '{BCRYPT}'
"
    ));
    assert!(
        message.contains("username `boss@example.com` is the email address of user `alice`"),
        "{message}"
    );
}

#[test]
fn multi_at_emails_and_bad_groups_are_errors_all_reported_at_once() {
    let message = errors(&format!(
        "users:
  alice:
    password: '{BCRYPT}'
    email: alice@evil.com@example.com
    groups: ['admins,dev', '']
  'bad name':
    password: nope
"
    ));
    let lines: Vec<&str> = message
        .lines()
        .filter(|l| !l.starts_with("  fix"))
        .collect();
    assert_eq!(lines.len(), 4, "{message}");
    assert!(lines[0].contains("4:12: error: the email of user `alice` is not a single address"));
    assert!(lines[1].contains("5:14: error: user `alice` has an invalid group \"admins,dev\""));
    assert!(lines[2].contains("error: user `alice` has an invalid group \"\""));
    assert!(lines[3].contains("6:3: error: invalid username \"bad name\""));
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    // `disable: true` silently ignored would leave the user enabled.
    let message = errors(&format!(
        "users:\n  alice:\n    password: '{BCRYPT}'\n    disable: true\n"
    ));
    assert!(
        message.contains("error: unknown key `disable`"),
        "{message}"
    );
    assert!(
        message.contains("fix: did you mean `disabled`?"),
        "{message}"
    );
    assert!(message.starts_with("users_database.yml:4:"), "{message}");
}

#[test]
fn wrong_types_name_the_position() {
    let message = errors(&format!(
        "users:\n  alice:\n    password: '{BCRYPT}'\n    groups: admins\n"
    ));
    assert!(message.starts_with("users_database.yml:4:"), "{message}");
    assert!(message.contains("error: wrong type"), "{message}");
}

#[test]
fn control_characters_in_display_names_are_refused() {
    let message = errors(&format!(
        "users:\n  alice:\n    password: '{BCRYPT}'\n    displayname: \"Alice\\r\\nX-Evil: 1\"\n"
    ));
    assert!(message.contains("the displayname of user `alice` contains control characters"));
}

// === lookups ===

#[test]
fn usernames_are_case_insensitive() {
    let db = sample();
    for login in ["alice", "Alice", "ALICE"] {
        assert_eq!(db.get(login).unwrap().name(), "alice", "{login}");
    }
    assert!(db.get("alic").is_none());
}

#[test]
fn email_lookup_is_case_insensitive_and_refuses_several_at_signs() {
    let db = sample();
    assert_eq!(
        db.find_by_email("alice@example.com").unwrap().name(),
        "alice"
    );
    assert_eq!(
        db.find_by_email("ALICE@EXAMPLE.COM").unwrap().name(),
        "alice"
    );
    for bad in [
        "alice@example.com@evil.com",
        "alice@evil.com@example.com",
        "alice@@example.com",
        "alice",
        "",
    ] {
        assert!(db.find_by_email(bad).is_none(), "{bad}");
        assert!(db.find_login(bad).is_none_or(|u| u.name() == bad), "{bad}");
    }
    assert_eq!(db.find_login("Alice@Example.com").unwrap().name(), "alice");
}

#[test]
fn every_name_of_a_user_has_one_canonical_login() {
    let db = sample();
    for login in ["alice", "ALICE", "alice@example.com", "Alice@EXAMPLE.com"] {
        assert_eq!(db.canonical_login(login), "alice", "{login}");
    }
    assert_eq!(db.canonical_login("Nobody"), "nobody");
    // Not an address of alice's: its own key, never alice's counter.
    assert_eq!(
        db.canonical_login("alice@example.com@evil.com"),
        "alice@example.com@evil.com"
    );
}

// === login ===

#[test]
fn right_password_authenticates_with_the_canonical_name() {
    let db = sample();
    for login in ["alice", "ALICE", "alice@example.com"] {
        let user = db.authenticate(login, PASSWORD).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["admins", "dev"]);
        assert_eq!(user.hash_algorithm, HashAlgorithm::Bcrypt);
        assert!(user.needs_rehash);
    }
    let identity = db
        .authenticate("alice", PASSWORD)
        .unwrap()
        .identity(AuthLevel::OneFactor);
    assert_eq!(
        identity.subject,
        Subject::User {
            name: "alice".into(),
            level: AuthLevel::OneFactor,
            source: crate::Source::UsersFile,
        }
    );
    assert_eq!(identity.email.as_deref(), Some("Alice@Example.com"));
}

#[test]
fn wrong_unknown_and_disabled_are_refused_each_with_one_verification() {
    let db = sample();
    let cases = [
        ("alice", "wrong password", AuthFailure::WrongPassword, 0),
        ("nobody", PASSWORD, AuthFailure::UnknownUser, 1),
        (
            "alice@example.com@evil.com",
            PASSWORD,
            AuthFailure::UnknownUser,
            1,
        ),
        // The right password of a disabled user is refused, without checking it.
        ("bob", PASSWORD, AuthFailure::Disabled, 1),
        ("bob@example.com", "wrong", AuthFailure::Disabled, 1),
    ];
    for (login, password, failure, dummies) in cases {
        let before = (db.verification_count(), db.dummy_verification_count());
        assert_eq!(db.authenticate(login, password), Err(failure), "{login}");
        let after = (db.verification_count(), db.dummy_verification_count());
        assert_eq!(
            after.0 - before.0,
            1,
            "{login}: one verification per attempt"
        );
        assert_eq!(after.1 - before.1, dummies, "{login}");
    }
}

#[tokio::test]
async fn authenticate_blocking_verifies_off_the_runtime() {
    let db = Arc::new(sample());
    let ok = db
        .clone()
        .authenticate_blocking("alice".into(), SecretString::from(PASSWORD))
        .await;
    assert_eq!(ok.unwrap().name, "alice");
    let wrong = db
        .clone()
        .authenticate_blocking("alice".into(), SecretString::from("nope"))
        .await;
    assert_eq!(wrong, Err(AuthFailure::WrongPassword));
    // Many at once: all complete through the bounded pool of permits.
    let attempts: Vec<_> = (0..3 * MAX_CONCURRENT_VERIFICATIONS)
        .map(|_| {
            tokio::spawn(
                db.clone()
                    .authenticate_blocking("nobody".into(), SecretString::from("x")),
            )
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), Err(AuthFailure::UnknownUser));
    }
}

/// What an administrator reads for the common mistakes (snapshot).
#[test]
fn error_messages_gallery() {
    let mut shown = String::new();
    for src in [
        format!("users:\n  alice:\n    password: '{BCRYPT}'\n    disable: true\n"),
        format!("users:\n  alice:\n    password: '{BCRYPT}'\n    groups: admins\n"),
        format!("users:\n  alice:\n    password: '{BCRYPT}'\n  alice:\n    password: '{BCRYPT}'\n"),
        format!("users:\n  alice:\n    password: '{BCRYPT}'\n    disabled: maybe\n"),
        format!("user:\n  alice:\n    password: '{BCRYPT}'\n"),
        "users:\n  alice:\n    password: '$argon2id$v=19$m=65536,t=3,p=4$abc'\n".to_owned(),
        "users:\n  alice:\n  password: x\n".to_owned(),
        "users:\n\talice:\n".to_owned(),
    ] {
        shown.push_str(&errors(&src));
        shown.push_str("\n\n");
    }
    insta::assert_snapshot!(shown);
}
