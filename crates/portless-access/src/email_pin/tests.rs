//! Unit tests for the PIN book: every rule with injected time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use super::*;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn browser(name: &str) -> BrowserBinding {
    BrowserBinding::new(format!("session-{name}"))
}

fn allow_all(_: &EmailAddress) -> bool {
    true
}

/// Requests a PIN that must be issued and returns its code.
fn issue(
    book: &PinBook,
    address: &str,
    b: &BrowserBinding,
    from: IpAddr,
    now: SystemTime,
) -> String {
    let req = book.request(address, b, from, now, allow_all).unwrap();
    assert!(req.sent(), "{:?}", req.withheld);
    req.pin.unwrap().code().to_owned()
}

fn wrong_pin(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[test]
fn an_issued_pin_logs_in_the_browser_that_asked_once() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "Alice@Example.com", &b, ip(1), t(0));
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|c| c.is_ascii_digit()));
    let ok = book.verify("alice@example.com", &code, &b, t(30)).unwrap();
    assert_eq!(ok.address.as_str(), "alice@example.com");
    // Single use: the same code again is refused.
    assert_eq!(
        book.verify("alice@example.com", &code, &b, t(31)),
        Err(PinError::NonePending)
    );
}

#[test]
fn no_pin_for_an_address_no_rule_could_allow() {
    let book = PinBook::default();
    let mut asked = None;
    let req = book
        .request("mallory@evil.test", &browser("a"), ip(1), t(0), |a| {
            asked = Some(a.clone());
            false
        })
        .unwrap();
    assert!(!req.sent());
    assert_eq!(req.withheld, Some(Withheld::NotAllowed));
    assert_eq!(asked.unwrap().as_str(), "mallory@evil.test");
    assert_eq!(book.pending(), 0);
}

#[test]
fn the_predicate_sees_the_canonical_address() {
    let book = PinBook::default();
    let req = book
        .request(" BOB@Example.COM ", &browser("a"), ip(1), t(0), |a| {
            a.as_str() == "bob@example.com"
        })
        .unwrap();
    assert!(req.sent());
    assert_eq!(req.pin.unwrap().address().as_str(), "bob@example.com");
}

#[test]
fn malformed_addresses_are_refused_before_anything_is_counted() {
    let book = PinBook::default();
    let err = book
        .request("a@b.test@c.test", &browser("a"), ip(1), t(0), allow_all)
        .unwrap_err();
    assert_eq!(err, RequestError::Address(AddressError::At));
    assert_eq!(
        book.verify("a@b.test@c.test", "123456", &browser("a"), t(0)),
        Err(PinError::Address(AddressError::At))
    );
}

#[test]
fn a_pin_expires_after_ten_minutes() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "alice@example.com", &b, ip(1), t(0));
    assert_eq!(
        book.verify("alice@example.com", &code, &b, t(600)),
        Err(PinError::NonePending)
    );
    let code = issue(&book, "alice@example.com", &b, ip(1), t(1000));
    assert!(book.verify("alice@example.com", &code, &b, t(1599)).is_ok());
}

#[test]
fn the_right_pin_from_another_browser_fails_and_burns_it() {
    let book = PinBook::default();
    let victim = browser("victim");
    let code = issue(&book, "alice@example.com", &victim, ip(1), t(0));
    assert_eq!(
        book.verify("alice@example.com", &code, &browser("attacker"), t(5)),
        Err(PinError::OtherBrowser)
    );
    // Burned: not even the browser that asked can use it now.
    assert_eq!(
        book.verify("alice@example.com", &code, &victim, t(6)),
        Err(PinError::NonePending)
    );
}

#[test]
fn three_wrong_tries_burn_a_pin() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "alice@example.com", &b, ip(1), t(0));
    let wrong = wrong_pin(&code);
    for n in 1..=3 {
        let burned = n == 3;
        assert_eq!(
            book.verify("alice@example.com", &wrong, &b, t(n)),
            Err(PinError::Wrong { burned })
        );
    }
    assert_eq!(
        book.verify("alice@example.com", &code, &b, t(10)),
        Err(PinError::NonePending)
    );
}

#[test]
fn two_wrong_tries_still_leave_the_right_one() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "alice@example.com", &b, ip(1), t(0));
    for n in 1..=2 {
        assert!(
            book.verify("alice@example.com", &wrong_pin(&code), &b, t(n))
                .is_err()
        );
    }
    assert!(book.verify("alice@example.com", &code, &b, t(3)).is_ok());
}

#[test]
fn wrong_tries_from_other_browsers_count_too() {
    let book = PinBook::default();
    let victim = browser("victim");
    let code = issue(&book, "alice@example.com", &victim, ip(1), t(0));
    let wrong = wrong_pin(&code);
    for n in 0..3 {
        let attacker = browser(&format!("attacker-{n}"));
        assert!(
            book.verify("alice@example.com", &wrong, &attacker, t(n + 1))
                .is_err()
        );
    }
    assert_eq!(
        book.verify("alice@example.com", &code, &victim, t(10)),
        Err(PinError::NonePending)
    );
}

#[test]
fn a_pin_is_for_its_address_only() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "alice@example.com", &b, ip(1), t(0));
    assert_eq!(
        book.verify("bob@example.com", &code, &b, t(1)),
        Err(PinError::NonePending)
    );
    assert!(book.verify("alice@example.com", &code, &b, t(2)).is_ok());
}

#[test]
fn a_successful_login_ends_every_other_pending_pin() {
    let book = PinBook::default();
    let b = browser("a");
    let first = issue(&book, "alice@example.com", &b, ip(1), t(0));
    let second = issue(&book, "alice@example.com", &b, ip(1), t(10));
    assert_eq!(book.pending(), 2);
    assert!(book.verify("alice@example.com", &second, &b, t(20)).is_ok());
    assert_eq!(book.pending(), 0);
    assert!(book.verify("alice@example.com", &first, &b, t(21)).is_err());
}

#[test]
fn input_that_is_not_six_digits_is_refused_without_a_try() {
    let book = PinBook::default();
    let b = browser("a");
    let code = issue(&book, "alice@example.com", &b, ip(1), t(0));
    for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
        assert_eq!(
            book.verify("alice@example.com", bad, &b, t(1)),
            Err(PinError::Malformed),
            "{bad:?}"
        );
    }
    // Surrounding whitespace from a paste is fine, and no try was used up.
    assert!(
        book.verify("alice@example.com", &format!(" {code}\n"), &b, t(2))
            .is_ok()
    );
}

#[test]
fn requests_are_limited_per_address_whatever_the_spelling() {
    let book = PinBook::default();
    for (n, spelling) in [
        "alice@example.com",
        "Alice@example.com",
        "ALICE@EXAMPLE.COM",
    ]
    .iter()
    .enumerate()
    {
        let from = ip(u8::try_from(n).unwrap());
        issue(&book, spelling, &browser("a"), from, t(0));
    }
    let req = book
        .request("alice@Example.com", &browser("a"), ip(9), t(60), allow_all)
        .unwrap();
    assert_eq!(req.withheld, Some(Withheld::AddressRateLimited));
    assert!(!req.sent());
    // The window slides: ten minutes after the first request, one more is allowed.
    issue(&book, "alice@example.com", &browser("a"), ip(9), t(600));
}

#[test]
fn requests_are_limited_per_ip() {
    let book = PinBook::default();
    for n in 0..10 {
        issue(
            &book,
            &format!("user{n}@example.com"),
            &browser("a"),
            ip(1),
            t(n),
        );
    }
    let req = book
        .request("user10@example.com", &browser("a"), ip(1), t(20), allow_all)
        .unwrap();
    assert_eq!(req.withheld, Some(Withheld::IpRateLimited));
    // Another client is not affected.
    issue(&book, "user10@example.com", &browser("b"), ip(2), t(20));
}

#[test]
fn refused_addresses_count_against_the_limits_too() {
    let book = PinBook::default();
    for n in 0..3 {
        let req = book
            .request("mallory@evil.test", &browser("a"), ip(n), t(0), |_| false)
            .unwrap();
        assert_eq!(req.withheld, Some(Withheld::NotAllowed));
    }
    let req = book
        .request("mallory@evil.test", &browser("a"), ip(7), t(1), |_| false)
        .unwrap();
    assert_eq!(req.withheld, Some(Withheld::AddressRateLimited));
}

#[test]
fn pins_are_uniformly_spread_and_distinct() {
    let book = PinBook::new(PinPolicy {
        per_address: RateLimit {
            max: u32::MAX,
            window: Duration::from_secs(1),
        },
        per_ip: RateLimit {
            max: u32::MAX,
            window: Duration::from_secs(1),
        },
        ..PinPolicy::default()
    });
    let mut first_digits = [0u32; 10];
    let mut seen = std::collections::HashSet::new();
    for n in 0..2000 {
        let code = issue(&book, "alice@example.com", &browser("a"), ip(1), t(n));
        first_digits[usize::from(code.as_bytes()[0] - b'0')] += 1;
        seen.insert(code);
    }
    // 2000 draws from a million: collisions are rare, a constant is not.
    assert!(seen.len() > 1990, "{}", seen.len());
    assert!(first_digits.iter().all(|&n| n > 100), "{first_digits:?}");
}

#[test]
fn sweep_forgets_what_no_longer_matters() {
    let book = PinBook::default();
    issue(&book, "alice@example.com", &browser("a"), ip(1), t(0));
    assert_eq!(book.pending(), 1);
    // One PIN, one address counter, one IP counter.
    assert_eq!(book.sweep(t(700)), 3);
    assert_eq!(book.pending(), 0);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let book = PinBook::default();
    let b = BrowserBinding::new("very-secret-session");
    let req = book
        .request("alice@example.com", &b, ip(1), t(0), allow_all)
        .unwrap();
    let code = req.pin.as_ref().unwrap().code().to_owned();
    let shown = format!("{req:?} {b:?} {book:?}");
    assert!(!shown.contains(&code), "{shown}");
    assert!(!shown.contains("very-secret-session"), "{shown}");
}
