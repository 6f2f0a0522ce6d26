//! Reading the users file: YAML text → raw structs with positions → checked users.
//!
//! Checks keep going after the first problem so every error is reported at once. The
//! positions of each user's key and values are kept (as [`UserLayout`]) so that edits can
//! change one value in the text and leave the rest of the file, comments included, as it was.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use portless_diagnostics::{parser_message, plain_parser_message};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::database::{User, UserProfile, UsersDatabase};
use super::error::{Position, UsersError, UsersErrorKind, UsersFileError};
use super::hash::PasswordHash;

// === raw format ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: Option<RawUsers>,
}

/// The `users:` mapping in file order (serde's maps would lose the order and the key spans).
struct RawUsers(Vec<(Spanned<String>, Spanned<RawUser>)>);

impl<'de> Deserialize<'de> for RawUsers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawUsers, D::Error> {
        deserializer.deserialize_any(RawUsersVisitor)
    }
}

struct RawUsersVisitor;

impl<'de> Visitor<'de> for RawUsersVisitor {
    type Value = RawUsers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of usernames to users")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawUsers, E> {
        Ok(RawUsers(Vec::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawUsers, E> {
        Ok(RawUsers(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawUsers, A::Error> {
        let mut users = Vec::new();
        while let Some(entry) = map.next_entry()? {
            users.push(entry);
        }
        Ok(RawUsers(users))
    }
}

/// The keys of one user, as the incumbent's format names them.
pub(crate) const USER_KEYS: &[&str] = &[
    "displayname",
    "password",
    "email",
    "groups",
    "disabled",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "gender",
    "birthdate",
    "website",
    "profile",
    "picture",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_extension",
    "address",
    "extra",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    displayname: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    groups: Option<Vec<Spanned<String>>>,
    disabled: Option<Spanned<bool>>,
    given_name: Option<String>,
    family_name: Option<String>,
    middle_name: Option<String>,
    nickname: Option<String>,
    gender: Option<String>,
    birthdate: Option<String>,
    website: Option<String>,
    profile: Option<String>,
    picture: Option<String>,
    zoneinfo: Option<String>,
    locale: Option<String>,
    phone_number: Option<String>,
    phone_extension: Option<String>,
    address: Option<serde_json::Value>,
    extra: Option<serde_json::Value>,
}

// === parse result ===

/// A parsed file: the database, and where each user's parts are in the text.
pub(crate) struct Parsed {
    pub(crate) database: UsersDatabase,
    pub(crate) layouts: Vec<UserLayout>,
}

/// Where one user's parts are in the text, for edits.
pub(crate) struct UserLayout {
    /// Canonical name.
    pub(crate) name: String,
    /// The username key.
    pub(crate) key: Location,
    /// The `password` value.
    pub(crate) password: Option<Location>,
    /// The `disabled` value.
    pub(crate) disabled: Option<Location>,
}

/// Reads and parses the file at `path`.
pub(crate) fn load(path: &Path) -> Result<Parsed, UsersError> {
    let src = std::fs::read_to_string(path)
        .map_err(|source| UsersError::one(path, None, UsersErrorKind::Read { source }))?;
    parse(&src, path)
}

/// Parses users-file text; `origin` names the file in messages.
pub(crate) fn parse(src: &str, origin: &Path) -> Result<Parsed, UsersError> {
    if portless_diagnostics::is_blank(src) {
        return Err(UsersError::one(origin, None, UsersErrorKind::Empty));
    }
    let raw: RawFile = serde_saphyr::from_str(src).map_err(|e| parser_error(&e, origin))?;
    let entries = raw.users.map(|users| users.0).unwrap_or_default();
    let mut checker = Checker {
        origin,
        errors: Vec::new(),
    };
    let (users, layouts) = checker.users(entries);
    if !checker.errors.is_empty() {
        return Err(UsersError::new(checker.errors));
    }
    Ok(Parsed {
        database: UsersDatabase::new(users),
        layouts,
    })
}

fn parser_error(e: &serde_saphyr::Error, origin: &Path) -> UsersError {
    let position = Position::of_error(e);
    let message = plain_parser_message(&parser_message(e));
    let kind = if let Some(key) = unknown_field(&message) {
        UsersErrorKind::UnknownKey {
            suggestion: closest_key(&key),
            key,
        }
    } else if ["invalid type", "invalid boolean", "expected"]
        .iter()
        .any(|m| message.contains(m))
    {
        UsersErrorKind::WrongType { message }
    } else {
        UsersErrorKind::Syntax { message }
    };
    UsersError::one(origin, position, kind)
}

/// The key of serde's "unknown field `x`, expected one of …".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split_once("unknown field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

/// The valid key a misspelt one was most likely meant to be (at most two edits away).
fn closest_key(key: &str) -> Option<&'static str> {
    let keys = USER_KEYS.iter().chain(std::iter::once(&"users"));
    keys.map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

// === checks ===

struct Checker<'a> {
    origin: &'a Path,
    errors: Vec<UsersFileError>,
}

/// Where each canonical name or address was first seen.
struct Seen {
    names: HashMap<String, (String, u32)>,
    emails: HashMap<String, String>,
}

impl Checker<'_> {
    fn error(&mut self, at: Location, kind: UsersErrorKind) {
        let position = Position::from_location(at);
        self.errors
            .push(UsersFileError::new(self.origin, position, kind));
    }

    fn users(
        &mut self,
        entries: Vec<(Spanned<String>, Spanned<RawUser>)>,
    ) -> (Vec<User>, Vec<UserLayout>) {
        let mut seen = Seen {
            names: HashMap::new(),
            emails: HashMap::new(),
        };
        let mut users = Vec::new();
        let mut layouts = Vec::new();
        for (key, raw) in entries {
            let layout = UserLayout {
                name: key.value.to_lowercase(),
                key: key.referenced,
                password: raw.value.password.as_ref().map(|p| p.referenced),
                disabled: raw.value.disabled.as_ref().map(|d| d.referenced),
            };
            if let Some(user) = self.user(&key, raw.value, &mut seen) {
                users.push(user);
                layouts.push(layout);
            }
        }
        self.usernames_are_not_addresses(&users, &layouts);
        (users, layouts)
    }

    fn user(&mut self, key: &Spanned<String>, raw: RawUser, seen: &mut Seen) -> Option<User> {
        let written = key.value.clone();
        let name = self.username(key, seen)?;
        let email = self.email(&written, raw.email.as_ref(), seen);
        let groups = self.groups(&written, raw.groups.unwrap_or_default());
        let display_name = self.display_name(&written, raw.displayname);
        let password = self.password(key, raw.password)?;
        Some(User {
            name,
            written_name: written,
            display_name,
            email: email?,
            groups,
            disabled: raw.disabled.is_some_and(|d| d.value),
            password,
            profile: UserProfile {
                given_name: raw.given_name,
                family_name: raw.family_name,
                middle_name: raw.middle_name,
                nickname: raw.nickname,
                gender: raw.gender,
                birthdate: raw.birthdate,
                website: raw.website,
                profile: raw.profile,
                picture: raw.picture,
                zoneinfo: raw.zoneinfo,
                locale: raw.locale,
                phone_number: raw.phone_number,
                phone_extension: raw.phone_extension,
                address: raw.address,
                extra: raw.extra,
            },
        })
    }

    /// The canonical name, or `None` (and an error) when it is invalid or taken.
    fn username(&mut self, key: &Spanned<String>, seen: &mut Seen) -> Option<String> {
        let written = &key.value;
        let reason = if written.is_empty() {
            Some("it is empty")
        } else if written.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains spaces or control characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            let kind = UsersErrorKind::InvalidUsername {
                name: written.clone(),
                reason,
            };
            self.error(key.referenced, kind);
            return None;
        }
        let name = written.to_lowercase();
        let line = u32::try_from(key.referenced.line()).unwrap_or(0);
        if let Some((first, first_line)) = seen.names.get(&name) {
            let kind = UsersErrorKind::DuplicateUsername {
                name: written.clone(),
                first: first.clone(),
                first_line: *first_line,
            };
            self.error(key.referenced, kind);
            return None;
        }
        seen.names.insert(name.clone(), (written.clone(), line));
        Some(name)
    }

    /// `Some(None)` without an email, `None` when the email is invalid or taken.
    fn email(
        &mut self,
        user: &str,
        email: Option<&Spanned<String>>,
        seen: &mut Seen,
    ) -> Option<Option<String>> {
        let Some(email) = email else {
            return Some(None);
        };
        if !is_single_address(&email.value) {
            let kind = UsersErrorKind::InvalidEmail {
                user: user.to_owned(),
                email: email.value.clone(),
            };
            self.error(email.referenced, kind);
            return None;
        }
        let canonical = email.value.to_lowercase();
        if let Some(first) = seen.emails.get(&canonical) {
            let kind = UsersErrorKind::DuplicateEmail {
                user: user.to_owned(),
                email: email.value.clone(),
                first: first.clone(),
            };
            self.error(email.referenced, kind);
            return None;
        }
        seen.emails.insert(canonical, user.to_owned());
        Some(Some(email.value.clone()))
    }

    fn groups(&mut self, user: &str, groups: Vec<Spanned<String>>) -> Vec<String> {
        let mut valid = Vec::with_capacity(groups.len());
        for group in groups {
            let bad =
                group.value.is_empty() || group.value.chars().any(|c| c == ',' || c.is_control());
            if bad {
                let kind = UsersErrorKind::InvalidGroup {
                    user: user.to_owned(),
                    group: group.value.clone(),
                };
                self.error(group.referenced, kind);
            } else {
                valid.push(group.value);
            }
        }
        valid
    }

    fn display_name(&mut self, user: &str, display_name: Option<Spanned<String>>) -> String {
        let Some(display_name) = display_name else {
            return String::new();
        };
        if display_name.value.chars().any(char::is_control) {
            let kind = UsersErrorKind::InvalidDisplayName {
                user: user.to_owned(),
            };
            self.error(display_name.referenced, kind);
        }
        display_name.value
    }

    fn password(
        &mut self,
        key: &Spanned<String>,
        password: Option<Spanned<String>>,
    ) -> Option<PasswordHash> {
        let user = key.value.clone();
        let Some(password) = password else {
            self.error(key.referenced, UsersErrorKind::MissingPassword { user });
            return None;
        };
        match PasswordHash::parse(&password.value) {
            Ok(hash) => Some(hash),
            Err(source) => {
                let kind = UsersErrorKind::BadPassword { user, source };
                self.error(password.referenced, kind);
                None
            }
        }
    }

    /// A username containing `@` that is another user's address would make a login
    /// ambiguous (which user does `bob@example.com` name?).
    fn usernames_are_not_addresses(&mut self, users: &[User], layouts: &[UserLayout]) {
        let owners: HashMap<String, &str> = users
            .iter()
            .filter_map(|u| Some((u.email.as_deref()?.to_lowercase(), u.name.as_str())))
            .collect();
        for (user, layout) in users.iter().zip(layouts) {
            match owners.get(&user.name) {
                Some(owner) if *owner != user.name => {
                    let kind = UsersErrorKind::UsernameIsEmail {
                        name: user.written_name.clone(),
                        owner: (*owner).to_owned(),
                    };
                    self.error(layout.key, kind);
                }
                _ => {}
            }
        }
    }
}

/// `local@domain` with exactly one `@`, both parts non-empty, no spaces or control
/// characters (an address with several `@` is how logins get confused: attack class H).
pub(crate) fn is_single_address(email: &str) -> bool {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}
