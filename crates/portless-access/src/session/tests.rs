//! Bookkeeping that the public API cannot observe directly: identifier shape, caps, sweeps.

use super::*;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn store(max: usize) -> SessionStore {
    SessionStore::with_capacity(SessionLimits::default(), max)
}

#[test]
fn identifiers_are_43_base64url_characters_and_parse_back() {
    let (id, session) = store(10).create_anonymous(t(0));
    assert_eq!(id.as_str().len(), ID_LEN);
    assert!(
        id.as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
    assert_eq!(session.csrf_token.len(), ID_LEN);
    assert_ne!(session.csrf_token, id.as_str());
}

#[test]
fn malformed_identifiers_do_not_parse() {
    let (id, _) = store(10).create_anonymous(t(0));
    let good = id.as_str();
    for bad in [
        String::new(),
        good[..42].to_owned(),
        format!("{good}A"),
        format!("{}=", &good[..42]),
        format!("{}+", &good[..42]),
        format!("{}/", &good[..42]),
        format!("{} ", &good[..42]),
        "é".repeat(21) + "a",
    ] {
        assert_eq!(SessionId::parse(&bad), None, "{bad:?}");
    }
}

#[test]
fn debug_output_never_shows_ids_or_tokens() {
    let s = store(10);
    let (id, session) = s.create_anonymous(t(0));
    let id = s.first_factor(&id, "alice", false, t(1));
    let code = s.issue_code(&id, "app.example.com", t(2)).unwrap();
    let app = s
        .redeem_code(code.as_str(), "app.example.com", t(3))
        .unwrap();
    let session_text = format!("{session:?}");
    assert!(
        !session_text.contains(&session.csrf_token),
        "{session_text}"
    );
    for (text, secret) in [
        (format!("{id:?}"), id.as_str().to_owned()),
        (format!("{code:?}"), code.as_str().to_owned()),
        (format!("{app:?}"), app.as_str().to_owned()),
        (format!("{s:?}"), id.as_str().to_owned()),
    ] {
        assert!(!text.contains(&secret), "{text}");
    }
}

#[test]
fn a_flood_of_anonymous_sessions_evicts_only_anonymous_ones() {
    let s = store(50);
    let (anon, _) = s.create_anonymous(t(0));
    let alice = s.first_factor(&anon, "alice", false, t(1));
    for i in 0..500 {
        s.create_anonymous(t(2 + i / 100));
        assert!(s.counts().portal <= 50);
    }
    assert!(
        s.get(&alice, t(10)).is_some(),
        "the logged-in session survived"
    );
}

#[test]
fn a_full_store_of_logins_ends_the_least_recently_used() {
    let s = store(3);
    let mut ids = Vec::new();
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        let (anon, _) = s.create_anonymous(t(i as u64));
        ids.push(s.first_factor(&anon, user, false, t(i as u64)));
    }
    s.get(&ids[0], t(10)); // "a" is now the most recently used
    let (anon, _) = s.create_anonymous(t(11));
    let d = s.first_factor(&anon, "d", false, t(11));
    assert!(s.get(&ids[0], t(12)).is_some());
    assert!(s.get(&ids[1], t(12)).is_none(), "b was least recently used");
    assert!(s.get(&ids[2], t(12)).is_some());
    assert!(s.get(&d, t(12)).is_some());
}

#[test]
fn one_user_cannot_hold_more_than_the_per_user_cap() {
    let s = store(1_000);
    let cap = state::MAX_SESSIONS_PER_USER;
    let mut first = None;
    for i in 0..(cap + 10) {
        let (anon, _) = s.create_anonymous(t(i as u64));
        let id = s.first_factor(&anon, "alice", false, t(i as u64));
        first.get_or_insert(id);
    }
    assert_eq!(s.counts().portal, cap);
    assert_eq!(
        s.get(&first.unwrap(), t(100)),
        None,
        "the oldest login ended"
    );
}

#[test]
fn codes_and_app_sessions_are_capped_per_portal_session() {
    let s = store(1_000);
    let (anon, _) = s.create_anonymous(t(0));
    let id = s.first_factor(&anon, "alice", false, t(0));
    let first = s.issue_code(&id, "a.example.com", t(1)).unwrap();
    for _ in 0..20 {
        s.issue_code(&id, "a.example.com", t(1)).unwrap();
    }
    assert_eq!(s.counts().codes, state::MAX_CODES_PER_SESSION);
    assert_eq!(s.redeem_code(first.as_str(), "a.example.com", t(2)), None);

    for i in 0..100 {
        let host = format!("app{i}.example.com");
        let code = s.issue_code(&id, &host, t(3)).unwrap();
        s.redeem_code(code.as_str(), &host, t(3)).unwrap();
    }
    assert_eq!(s.counts().application, state::MAX_APPS_PER_SESSION);
}

#[test]
fn a_new_app_session_on_the_same_host_replaces_the_old_one() {
    let s = store(10);
    let (anon, _) = s.create_anonymous(t(0));
    let id = s.first_factor(&anon, "alice", false, t(0));
    let host = "app.example.com";
    let code = s.issue_code(&id, host, t(1)).unwrap();
    let first = s.redeem_code(code.as_str(), host, t(1)).unwrap();
    let code = s.issue_code(&id, host, t(2)).unwrap();
    let second = s.redeem_code(code.as_str(), host, t(2)).unwrap();
    assert_eq!(s.app_session(&first, host, t(3)), None);
    assert!(s.app_session(&second, host, t(3)).is_some());
    assert_eq!(s.counts().application, 1);
}

#[test]
fn sweep_removes_everything_expired_and_keeps_the_rest() {
    let s = SessionStore::new(SessionLimits::default());
    let (stale, _) = s.create_anonymous(t(0));
    let (anon, _) = s.create_anonymous(t(0));
    let alice = s.first_factor(&anon, "alice", false, t(0));
    let code = s.issue_code(&alice, "app.example.com", t(0)).unwrap();
    let app = s
        .redeem_code(code.as_str(), "app.example.com", t(0))
        .unwrap();
    s.issue_code(&alice, "other.example.com", t(0)).unwrap();
    assert_eq!(
        s.counts(),
        SessionCounts {
            portal: 2,
            application: 1,
            codes: 1
        }
    );
    // At 4 minutes: alice stays active through the portal, the code has expired, the
    // anonymous session is still within its inactivity.
    s.get(&alice, t(240)).unwrap();
    assert_eq!(s.sweep(t(240)), 0);
    assert_eq!(s.counts().codes, 0);
    // At 11 minutes the anonymous session (idle since 0, past the sign-in idle time) and the
    // application session (idle since 0) are gone, alice's portal session (active at 4 and
    // 8 min) is not.
    s.get(&alice, t(480)).unwrap();
    assert_eq!(s.sweep(t(660)), 1);
    assert_eq!(s.get(&stale, t(660)), None);
    assert_eq!(s.app_session(&app, "app.example.com", t(660)), None);
    assert_eq!(
        s.counts(),
        SessionCounts {
            portal: 1,
            application: 0,
            codes: 0
        }
    );
}

#[test]
fn a_clock_going_backwards_does_not_expire_or_revive_anything() {
    let s = SessionStore::new(SessionLimits::default());
    let (anon, _) = s.create_anonymous(t(100));
    let id = s.first_factor(&anon, "alice", false, t(100));
    let session = s.get(&id, t(50)).unwrap();
    assert_eq!(session.last_active, t(100), "last_active never moves back");
    assert!(s.get(&id, t(100 + 299)).is_some());
}

fn pin_login(email: &str) -> ExternalLogin {
    ExternalLogin {
        provider: None,
        email: email.to_owned(),
        name: None,
        groups: Vec::new(),
    }
}

#[test]
fn external_logins_are_never_users_file_users() {
    let s = store(10);
    let (anon, _) = s.create_anonymous(t(0));
    let login = ExternalLogin {
        provider: Some("corp".to_owned()),
        email: "alice".to_owned(),
        name: Some("Alice".to_owned()),
        groups: vec!["dev".to_owned()],
    };
    let id = s.external_login(&anon, login.clone(), AuthLevel::OneFactor, t(1));
    assert_ne!(id, anon);
    assert!(s.get(&anon, t(1)).is_none(), "the pre-login id is revoked");
    let session = s.get(&id, t(2)).unwrap();
    // Even a provider that reports a bare name cannot alias the users-file user `alice`.
    assert_ne!(session.user.as_deref(), Some("alice"));
    assert!(session.user.as_deref().unwrap().starts_with('\u{1}'));
    assert_eq!(session.external.as_ref(), Some(&login));
    // TOTP and passkeys are for users-file accounts: no step-up, no enrolment.
    assert!(s.second_factor(&id, t(3)).is_none());
    let id = s.reauthenticated(&id, t(3)).unwrap();
    assert!(!s.get(&id, t(3)).unwrap().may_change_credentials(t(3)));
    // Applications see the whole login.
    let code = s.issue_code(&id, "app.example.com", t(4)).unwrap();
    let app = s
        .redeem_code(code.as_str(), "app.example.com", t(4))
        .unwrap();
    let view = s.app_session(&app, "app.example.com", t(5)).unwrap();
    assert_eq!(view.external, Some(login));
    assert_eq!(view.level, AuthLevel::OneFactor);
}

#[test]
fn an_external_login_can_count_as_two_factors_and_keys_differ_by_source() {
    let s = store(10);
    let (anon, _) = s.create_anonymous(t(0));
    let id = s.external_login(
        &anon,
        pin_login("a@example.com"),
        AuthLevel::TwoFactor,
        t(1),
    );
    let session = s.get(&id, t(1)).unwrap();
    assert_eq!(session.level, Some(AuthLevel::TwoFactor));
    assert!(session.second_factor_at.is_some());
    let oidc = ExternalLogin {
        provider: Some("corp".to_owned()),
        ..pin_login("a@example.com")
    };
    assert_ne!(pin_login("a@example.com").session_key(), oidc.session_key());
    assert_eq!(s.revoke_user(&oidc.session_key()), 0);
    assert_eq!(s.revoke_user(&pin_login("a@example.com").session_key()), 1);
}

#[test]
fn a_sign_in_in_progress_outlives_the_inactivity_limit_but_not_the_pin() {
    let s = store(10);
    let (anon, _) = s.create_anonymous(t(0));
    // Six minutes reading the PIN mail: past the 5-minute inactivity, still there.
    assert!(s.get(&anon, t(6 * 60)).is_some());
    // Ten idle minutes: gone, like the PIN.
    assert!(s.get(&anon, t(6 * 60 + SIGN_IN_IDLE.as_secs())).is_none());
    // Logged-in sessions keep the configured inactivity.
    let (anon, _) = s.create_anonymous(t(0));
    let id = s.first_factor(&anon, "alice", false, t(0));
    assert!(s.get(&id, t(6 * 60)).is_none());
}
