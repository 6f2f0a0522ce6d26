//! A new user's values end up in headers sent to applications: a control character in any of
//! them is refused with a message that says which value, and nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use portless_access::users::{EditError, NewUser, add_user};
use secrecy::SecretString;

fn user(name: &str, display: &str, email: Option<&str>, group: &str) -> NewUser {
    NewUser {
        name: name.to_owned(),
        displayname: display.to_owned(),
        email: email.map(str::to_owned),
        groups: vec![group.to_owned()],
        password_plain: SecretString::from("a long enough password".to_owned()),
    }
}

#[test]
fn control_characters_are_refused_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users_database.yml");
    for (new, field) in [
        (
            user("trudy", "Tru\r\nRemote-User: admin", None, "dev"),
            "display name",
        ),
        (user("tru\tdy", "Trudy", None, "dev"), "username"),
        (user("trudy", "Trudy", Some("t@x.test\n"), "dev"), "email"),
        (user("trudy", "Trudy", None, "dev\u{0}"), "group"),
    ] {
        let error = add_user(&path, new).unwrap_err();
        assert!(
            matches!(error, EditError::ControlCharacter { field: f } if f == field),
            "{error}"
        );
        assert!(error.to_string().contains(field), "{error}");
        assert!(!path.exists(), "nothing written");
    }
}
