//! Portal and application sessions with injected time: expiry rules and attack class G
//! (fixation, cross-application replay, code reuse, sessions surviving logout).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use portless_access::AuthLevel;
use portless_access::session::{
    AppSessionId, CODE_TTL, REAUTH_WINDOW, SessionId, SessionLimits, SessionStore, SessionView,
};

const APP_A: &str = "app-a.example.com";
const APP_B: &str = "app-b.example.com";
const MINUTE: u64 = 60;
const DAY: u64 = 24 * 60 * MINUTE;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn sessions() -> SessionStore {
    SessionStore::new(SessionLimits::default())
}

/// An anonymous visit, then a password login of `user` at `at`.
fn logged_in(store: &SessionStore, user: &str, at: u64) -> SessionId {
    let (anon, _) = store.create_anonymous(t(at));
    store.first_factor(&anon, user, false, t(at))
}

/// A code exchange on `host` at `at`.
fn app_session(store: &SessionStore, portal: &SessionId, host: &str, at: u64) -> AppSessionId {
    let code = store.issue_code(portal, host, t(at)).unwrap();
    store.redeem_code(code.as_str(), host, t(at)).unwrap()
}

// --- fixation: a new id at every step ---

#[test]
fn login_gives_a_new_id_and_the_pre_login_id_is_dead() {
    let s = sessions();
    let (anon, before) = s.create_anonymous(t(0));
    assert_eq!(before.user, None);
    assert_eq!(before.level, None);
    let id = s.first_factor(&anon, "alice", false, t(1));
    assert_ne!(id, anon);
    assert_eq!(
        s.get(&anon, t(2)),
        None,
        "the planted id must not be logged in"
    );
    let after = s.get(&id, t(2)).unwrap();
    assert_eq!(after.user.as_deref(), Some("alice"));
    assert_eq!(after.level, Some(AuthLevel::OneFactor));
    assert_eq!(after.first_factor_at, Some(t(1)));
    assert_eq!(after.second_factor_at, None);
    assert_ne!(after.csrf_token, before.csrf_token, "a new CSRF token too");
}

#[test]
fn the_second_factor_gives_a_new_id_and_needs_a_live_login() {
    let s = sessions();
    let one = logged_in(&s, "alice", 0);
    let two = s.second_factor(&one, t(10)).unwrap();
    assert_ne!(two, one);
    assert_eq!(s.get(&one, t(11)), None);
    let session = s.get(&two, t(11)).unwrap();
    assert_eq!(session.level, Some(AuthLevel::TwoFactor));
    assert_eq!(session.second_factor_at, Some(t(10)));

    let (anon, _) = s.create_anonymous(t(20));
    assert_eq!(
        s.second_factor(&anon, t(21)),
        None,
        "no second factor without a first"
    );
    assert_eq!(
        s.second_factor(&one, t(21)),
        None,
        "the rotated-away id is dead"
    );
    let stale = logged_in(&s, "bob", 0);
    assert_eq!(
        s.second_factor(&stale, t(5 * MINUTE)),
        None,
        "an expired login cannot be stepped up"
    );
}

#[test]
fn a_new_login_resets_the_second_factor() {
    let s = sessions();
    let one = logged_in(&s, "alice", 0);
    let two = s.second_factor(&one, t(1)).unwrap();
    let again = s.first_factor(&two, "alice", false, t(2));
    let session = s.get(&again, t(3)).unwrap();
    assert_eq!(session.level, Some(AuthLevel::OneFactor));
    assert_eq!(session.second_factor_at, None);
    assert_eq!(s.get(&two, t(3)), None);
}

#[test]
fn credentials_may_change_only_shortly_after_a_reauthentication() {
    let s = sessions();
    let one = logged_in(&s, "alice", 0);
    let two = s.second_factor(&one, t(1)).unwrap();
    assert!(!s.get(&two, t(2)).unwrap().may_change_credentials(t(2)));
    let reauth = s.reauthenticated(&two, t(3)).unwrap();
    assert_ne!(reauth, two);
    assert_eq!(s.get(&two, t(4)), None);
    let session = s.get(&reauth, t(4)).unwrap();
    assert_eq!(session.reauthenticated_at, Some(t(3)));
    assert!(session.may_change_credentials(t(4)));
    let window = REAUTH_WINDOW.as_secs();
    assert!(session.may_change_credentials(t(3 + window - 1)));
    assert!(!session.may_change_credentials(t(3 + window)));
    let (anon, _) = s.create_anonymous(t(5));
    assert_eq!(s.reauthenticated(&anon, t(5)), None);
}

// --- expiry ---

#[test]
fn inactivity_expires_a_session_and_use_refreshes_it() {
    let s = sessions();
    let id = logged_in(&s, "alice", 0);
    assert!(s.get(&id, t(5 * MINUTE - 1)).is_some());
    // Used at 4:59, so alive until 9:59.
    assert!(s.get(&id, t(10 * MINUTE - 2)).is_some());
    assert_eq!(
        s.get(&id, t(15 * MINUTE - 2)),
        None,
        "idle for exactly 5 minutes"
    );
    assert_eq!(s.get(&id, t(15 * MINUTE - 3)), None, "and it stays removed");
}

#[test]
fn the_absolute_expiry_ends_even_an_active_session() {
    let s = sessions();
    let id = logged_in(&s, "alice", 0);
    for minute in 1..60 {
        assert!(s.get(&id, t(minute * MINUTE)).is_some(), "minute {minute}");
    }
    assert_eq!(s.get(&id, t(60 * MINUTE)), None);
}

#[test]
fn remember_me_ignores_inactivity_but_not_its_own_lifetime() {
    let s = sessions();
    let (anon, _) = s.create_anonymous(t(0));
    let id = s.first_factor(&anon, "alice", true, t(0));
    assert!(s.get(&id, t(0)).unwrap().remember_me);
    assert!(s.get(&id, t(3 * DAY)).is_some(), "idle for days");
    assert!(s.get(&id, t(30 * DAY - 1)).is_some());
    assert_eq!(s.get(&id, t(30 * DAY)), None);

    let no_remember = SessionStore::new(SessionLimits {
        remember_me: None,
        ..SessionLimits::default()
    });
    let (anon, _) = no_remember.create_anonymous(t(0));
    let id = no_remember.first_factor(&anon, "alice", true, t(0));
    assert!(!no_remember.get(&id, t(1)).unwrap().remember_me);
    assert_eq!(no_remember.get(&id, t(6 * MINUTE)), None);
}

#[test]
fn an_anonymous_session_expires_after_the_sign_in_idle_time() {
    // Anonymous sessions hold a sign-in in progress (a PIN, a provider login, both valid
    // 10 minutes): they may idle that long, not longer.
    let s = sessions();
    let (anon, _) = s.create_anonymous(t(0));
    assert!(s.get(&anon, t(9 * MINUTE)).is_some());
    assert_eq!(s.get(&anon, t(19 * MINUTE + 1)), None);
}

// --- CSRF ---

#[test]
fn the_csrf_check_wants_the_exact_token() {
    let s = sessions();
    let (_, session) = s.create_anonymous(t(0));
    let token = session.csrf_token.clone();
    assert!(session.csrf_ok(&token));
    assert!(!session.csrf_ok(""));
    assert!(!session.csrf_ok(&token[..token.len() - 1]));
    assert!(!session.csrf_ok(&format!("{token}x")));
    assert!(!session.csrf_ok(&token.to_uppercase()));
    let (_, other) = s.create_anonymous(t(0));
    assert!(!session.csrf_ok(&other.csrf_token));
}

// --- one-time codes and application sessions ---

#[test]
fn a_code_opens_a_session_on_its_host_only() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let app = app_session(&s, &portal, APP_A, 1);
    assert_eq!(
        s.app_session(&app, APP_A, t(2)),
        Some(SessionView {
            user: "alice".into(),
            level: AuthLevel::OneFactor,
            external: None,
        })
    );
    // Cookie of app A replayed on app B (or on another spelling of the host).
    assert_eq!(s.app_session(&app, APP_B, t(3)), None);
    assert_eq!(s.app_session(&app, "APP-A.example.com", t(3)), None);
    assert_eq!(s.app_session(&app, "app-a.example.com.", t(3)), None);
    // It still works on A: trying it elsewhere does not grant anything, nor break A.
    assert!(s.app_session(&app, APP_A, t(4)).is_some());
    // The portal id is not an application session id.
    let portal_as_app = AppSessionId::parse(portal.as_str()).unwrap();
    assert_eq!(s.app_session(&portal_as_app, APP_A, t(5)), None);
}

#[test]
fn a_code_is_single_use() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let code = s.issue_code(&portal, APP_A, t(1)).unwrap();
    assert!(s.redeem_code(code.as_str(), APP_A, t(2)).is_some());
    assert_eq!(s.redeem_code(code.as_str(), APP_A, t(3)), None);
}

#[test]
fn a_code_tried_on_the_wrong_host_is_burnt() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let code = s.issue_code(&portal, APP_A, t(1)).unwrap();
    assert_eq!(s.redeem_code(code.as_str(), APP_B, t(2)), None);
    assert_eq!(s.redeem_code(code.as_str(), APP_A, t(3)), None);
}

#[test]
fn a_code_expires_after_60_seconds() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let ttl = CODE_TTL.as_secs();
    let code = s.issue_code(&portal, APP_A, t(1)).unwrap();
    assert_eq!(s.redeem_code(code.as_str(), APP_A, t(1 + ttl)), None);
    let code = s.issue_code(&portal, APP_A, t(100)).unwrap();
    assert!(
        s.redeem_code(code.as_str(), APP_A, t(100 + ttl - 1))
            .is_some()
    );
}

#[test]
fn codes_need_a_logged_in_portal_session() {
    let s = sessions();
    let (anon, _) = s.create_anonymous(t(0));
    assert_eq!(s.issue_code(&anon, APP_A, t(1)), None);
    let stale = logged_in(&s, "alice", 0);
    assert_eq!(s.issue_code(&stale, APP_A, t(5 * MINUTE)), None);
    assert_eq!(s.redeem_code("not-a-code", APP_A, t(1)), None);
}

#[test]
fn logout_kills_application_sessions_and_outstanding_codes() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let a = app_session(&s, &portal, APP_A, 1);
    let b = app_session(&s, &portal, APP_B, 1);
    let pending = s.issue_code(&portal, APP_A, t(2)).unwrap();
    assert!(s.revoke(&portal));
    assert_eq!(s.get(&portal, t(3)), None);
    assert_eq!(s.app_session(&a, APP_A, t(3)), None);
    assert_eq!(s.app_session(&b, APP_B, t(3)), None);
    assert_eq!(s.redeem_code(pending.as_str(), APP_A, t(3)), None);
    assert!(!s.revoke(&portal));
    assert_eq!(s.counts().application, 0);
    assert_eq!(s.counts().codes, 0);
}

#[test]
fn logout_from_an_application_host_ends_the_portal_session_too() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let a = app_session(&s, &portal, APP_A, 1);
    let b = app_session(&s, &portal, APP_B, 1);
    assert!(s.revoke_via_app(&a));
    assert_eq!(s.get(&portal, t(2)), None);
    assert_eq!(s.app_session(&b, APP_B, t(2)), None);
}

#[test]
fn application_sessions_die_with_their_portal_session() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let a = app_session(&s, &portal, APP_A, 1);
    // Used on the application every 4 minutes, never on the portal: the portal session stays
    // alive through it...
    for minute in (4..60).step_by(4) {
        assert!(
            s.app_session(&a, APP_A, t(minute * MINUTE)).is_some(),
            "minute {minute}"
        );
    }
    assert!(
        s.get(&portal, t(59 * MINUTE)).is_some(),
        "app use refreshed the portal"
    );
    // ...until the portal's absolute expiry, which ends the application session too.
    assert_eq!(s.app_session(&a, APP_A, t(60 * MINUTE)), None);
    assert_eq!(s.get(&portal, t(60 * MINUTE)), None);
}

#[test]
fn an_idle_application_session_expires_even_if_the_portal_is_active() {
    let s = sessions();
    let portal = logged_in(&s, "alice", 0);
    let a = app_session(&s, &portal, APP_A, 0);
    s.get(&portal, t(4 * MINUTE)).unwrap();
    assert_eq!(s.app_session(&a, APP_A, t(5 * MINUTE)), None);
    assert!(s.get(&portal, t(5 * MINUTE)).is_some());
}

#[test]
fn application_sessions_follow_the_portal_through_rotations_and_step_up() {
    let s = sessions();
    let one = logged_in(&s, "alice", 0);
    let a = app_session(&s, &one, APP_A, 1);
    let two = s.second_factor(&one, t(2)).unwrap();
    assert_eq!(
        s.app_session(&a, APP_A, t(3)).unwrap().level,
        AuthLevel::TwoFactor,
        "the level is read live from the portal session"
    );
    let reauth = s.reauthenticated(&two, t(4)).unwrap();
    assert!(s.app_session(&a, APP_A, t(5)).is_some());
    s.revoke(&reauth);
    assert_eq!(s.app_session(&a, APP_A, t(6)), None);
}

#[test]
fn another_login_in_the_same_browser_ends_the_previous_users_sessions() {
    let s = sessions();
    let alice = logged_in(&s, "alice", 0);
    let a = app_session(&s, &alice, APP_A, 1);
    let bob = s.first_factor(&alice, "bob", false, t(2));
    assert_eq!(s.app_session(&a, APP_A, t(3)), None);
    assert_eq!(s.get(&bob, t(3)).unwrap().user.as_deref(), Some("bob"));
}

#[test]
fn revoking_a_user_ends_all_their_sessions_and_no_one_elses() {
    let s = sessions();
    let laptop = logged_in(&s, "alice", 0);
    let phone = logged_in(&s, "alice", 0);
    let bob = logged_in(&s, "bob", 0);
    let a = app_session(&s, &phone, APP_A, 1);
    let b = app_session(&s, &bob, APP_A, 1);
    assert_eq!(s.revoke_user("alice"), 2);
    assert_eq!(s.get(&laptop, t(2)), None);
    assert_eq!(s.get(&phone, t(2)), None);
    assert_eq!(s.app_session(&a, APP_A, t(2)), None);
    assert!(s.get(&bob, t(2)).is_some());
    assert!(s.app_session(&b, APP_A, t(2)).is_some());
}

#[test]
fn unknown_and_malformed_ids_find_nothing() {
    let s = sessions();
    let (real, _) = s.create_anonymous(t(0));
    let mut forged = real.as_str().to_owned();
    let last = if forged.ends_with('A') { "Q" } else { "A" };
    forged.replace_range(42.., last);
    if let Some(forged) = SessionId::parse(&forged) {
        assert_eq!(s.get(&forged, t(1)), None);
    }
    assert_eq!(SessionId::parse("../../etc/passwd"), None);
    assert_eq!(SessionId::parse(""), None);
}
