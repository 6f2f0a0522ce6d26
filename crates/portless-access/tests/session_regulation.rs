//! Brute-force regulation (attack class H): bans per canonical user and per client address,
//! with injected time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use portless_access::regulation::Regulator;

/// The reference defaults: 3 retries, find_time 2m, ban_time 5m.
fn regulator() -> Regulator {
    Regulator::new(3, Duration::from_secs(120), Duration::from_secs(300))
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What the portal does: resolve the login name to the canonical user (lowercase username;
/// an email address to the user it belongs to).
fn canonical(login: &str) -> &'static str {
    match login.to_lowercase().as_str() {
        "alice" | "alice@example.com" => "alice",
        "bob" | "bob@example.com" => "bob",
        _ => "nobody",
    }
}

#[test]
fn three_failures_within_find_time_ban_for_ban_time() {
    let r = regulator();
    let from = ip("192.0.2.1");
    assert!(!r.record_failure(Some("alice"), from, t(0)));
    assert!(!r.record_failure(Some("alice"), from, t(10)));
    assert!(!r.is_banned(Some("alice"), from, t(11)));
    assert!(r.record_failure(Some("alice"), from, t(20)));
    assert!(r.is_banned(Some("alice"), from, t(20)));
    assert!(r.is_banned(Some("alice"), from, t(20 + 299)));
    assert!(
        !r.is_banned(Some("alice"), from, t(20 + 300)),
        "the ban ends"
    );
    // Counting starts again from zero after the ban.
    r.record_failure(Some("alice"), from, t(400));
    assert!(!r.is_banned(Some("alice"), from, t(401)));
}

#[test]
fn failures_older_than_find_time_do_not_count() {
    let r = regulator();
    let from = ip("192.0.2.1");
    r.record_failure(Some("alice"), from, t(0));
    r.record_failure(Some("alice"), from, t(60));
    r.record_failure(Some("alice"), from, t(121)); // the first one has left the window
    assert!(!r.is_banned(Some("alice"), from, t(121)));
    r.record_failure(Some("alice"), from, t(130)); // 60, 121, 130
    assert!(r.is_banned(Some("alice"), from, t(130)));
}

#[test]
fn a_user_is_counted_once_across_case_and_email_forms() {
    let r = regulator();
    let from = ip("192.0.2.1");
    for (i, login) in ["Alice", "alice@example.com", "ALICE@EXAMPLE.COM"]
        .iter()
        .enumerate()
    {
        // A different address each time, so only the user counter can trigger.
        r.record_failure(Some(canonical(login)), ip(&format!("198.51.100.{i}")), t(0));
    }
    assert!(r.is_banned(Some(canonical("alice")), from, t(1)));
    assert!(r.is_banned(Some(canonical("alice@EXAMPLE.com")), from, t(1)));
    // The regulator lowercases too, in case a caller forgets.
    let r = regulator();
    for (i, name) in ["Alice", "ALICE", "alice"].iter().enumerate() {
        r.record_failure(Some(name), ip(&format!("203.0.113.{i}")), t(0));
    }
    assert!(r.is_banned(Some("alice"), ip("192.0.2.200"), t(1)));
}

#[test]
fn a_banned_user_is_refused_from_any_address_and_others_are_not() {
    let r = regulator();
    r.record_failure(Some("alice"), ip("192.0.2.1"), t(0));
    r.record_failure(Some("alice"), ip("198.51.100.2"), t(1));
    r.record_failure(Some("alice"), ip("203.0.113.3"), t(2));
    let fresh = ip("192.0.2.99");
    assert!(r.is_banned(Some("alice"), fresh, t(3)));
    assert!(!r.is_banned(Some("bob"), fresh, t(3)));
    assert!(!r.is_banned(None, fresh, t(3)));
}

#[test]
fn one_address_failing_for_several_users_is_banned_for_everyone() {
    let r = regulator();
    let attacker = ip("192.0.2.66");
    r.record_failure(Some("alice"), attacker, t(0));
    r.record_failure(Some("bob"), attacker, t(1));
    r.record_failure(None, attacker, t(2)); // an unknown user
    assert!(r.is_banned(Some("carol"), attacker, t(3)));
    assert!(r.is_banned(None, attacker, t(3)));
    // The users themselves are not banned elsewhere.
    assert!(!r.is_banned(Some("alice"), ip("198.51.100.1"), t(3)));
}

#[test]
fn ipv6_addresses_in_one_64_share_a_counter() {
    let r = regulator();
    r.record_failure(None, ip("2001:db8:5:6::1"), t(0));
    r.record_failure(None, ip("2001:db8:5:6::2"), t(1));
    r.record_failure(None, ip("2001:db8:5:6:ffff:ffff:ffff:ffff"), t(2));
    assert!(r.is_banned(None, ip("2001:db8:5:6::abcd"), t(3)));
    assert!(!r.is_banned(None, ip("2001:db8:5:7::1"), t(3)));
}

#[test]
fn a_ban_holds_even_after_a_correct_password() {
    let r = regulator();
    let from = ip("192.0.2.1");
    for i in 0..3 {
        r.record_failure(Some("alice"), from, t(i));
    }
    // The portal checks first and never gets to the password: even if it did record a
    // success, the ban stays.
    assert!(r.is_banned(Some("alice"), from, t(5)));
    r.record_success("alice");
    assert!(r.is_banned(Some("alice"), ip("198.51.100.1"), t(6)));
    // More failures during a ban do not extend it.
    r.record_failure(Some("alice"), from, t(200));
    assert!(!r.is_banned(Some("alice"), from, t(302)));
}

#[test]
fn success_clears_the_user_count_but_not_the_address_count() {
    let r = regulator();
    let from = ip("192.0.2.1");
    r.record_failure(Some("alice"), from, t(0));
    r.record_failure(Some("alice"), from, t(1));
    r.record_success("alice");
    // Alice's count restarted; the address still has two failures.
    r.record_failure(Some("alice"), ip("198.51.100.1"), t(2));
    assert!(!r.is_banned(Some("alice"), ip("198.51.100.1"), t(3)));
    r.record_failure(Some("mallory"), from, t(4));
    assert!(r.is_banned(None, from, t(5)));
}

#[test]
fn max_retries_zero_disables_regulation() {
    let r = Regulator::new(0, Duration::from_secs(120), Duration::from_secs(300));
    assert!(!r.is_enabled());
    for i in 0..100 {
        assert!(!r.record_failure(Some("alice"), ip("192.0.2.1"), t(i)));
    }
    assert!(!r.is_banned(Some("alice"), ip("192.0.2.1"), t(100)));
    assert_eq!(r.tracked(), 0);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_names() {
    let r = regulator().with_max_entries(100);
    for i in 0..1_000u32 {
        let addr = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
        r.record_failure(Some(&format!("user{i}")), addr, t(u64::from(i)));
        assert!(r.tracked() <= 100);
    }
    r.sweep(t(10_000));
    assert_eq!(r.tracked(), 0);
}
