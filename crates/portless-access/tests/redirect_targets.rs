//! `rd` validation against the open-redirect tricks of attack class E: each hostile value is
//! refused, each good one comes back normalized.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use portless_access::redirect::{RedirectError, RedirectPolicy};

fn policy() -> RedirectPolicy {
    RedirectPolicy::new(vec!["example.com".into(), "Corp.Internal.".into()]).unwrap()
}

#[test]
fn good_targets_come_back_normalized() {
    let cases = [
        (
            "https://app.example.com/",
            "https://app.example.com/",
            "app.example.com",
        ),
        (
            "https://app.example.com",
            "https://app.example.com/",
            "app.example.com",
        ),
        (
            "https://example.com/x",
            "https://example.com/x",
            "example.com",
        ),
        (
            "HTTPS://APP.Example.COM./Path?Q=1",
            "https://app.example.com/Path?Q=1",
            "app.example.com",
        ),
        (
            "https://a.b.c.example.com/deep/er/",
            "https://a.b.c.example.com/deep/er/",
            "a.b.c.example.com",
        ),
        (
            "https://app.example.com:8443/x",
            "https://app.example.com:8443/x",
            "app.example.com",
        ),
        (
            "https://app.example.com:443/x",
            "https://app.example.com/x",
            "app.example.com",
        ),
        (
            "https://app.example.com?next=1",
            "https://app.example.com/?next=1",
            "app.example.com",
        ),
        (
            "https://app.example.com/a/../b/./c",
            "https://app.example.com/b/c",
            "app.example.com",
        ),
        (
            "https://app.example.com//x",
            "https://app.example.com/x",
            "app.example.com",
        ),
        (
            "https://app.example.com/%7euser?rd=https://evil.com/",
            "https://app.example.com/~user?rd=https://evil.com/",
            "app.example.com",
        ),
        (
            "https://git.corp.internal/repo",
            "https://git.corp.internal/repo",
            "git.corp.internal",
        ),
        (
            "https://app.example.com:50123/",
            "https://app.example.com:50123/",
            "app.example.com",
        ),
    ];
    for (rd, url, host) in cases {
        let target = policy()
            .validate(rd)
            .unwrap_or_else(|e| panic!("{rd:?} refused: {e}"));
        assert_eq!(target.url(), url, "{rd}");
        assert_eq!(target.host(), host, "{rd}");
    }
    let target = policy().validate("https://app.example.com:8443/").unwrap();
    assert_eq!(target.port(), Some(8443));
}

#[test]
fn hostile_targets_are_refused() {
    use RedirectError::*;
    let long = format!("https://app.example.com/{}", "a".repeat(2100));
    let cases: Vec<(&str, RedirectError)> = vec![
        ("", Empty),
        (&long, TooLong(long.len())),
        // other schemes and downgrades
        ("http://app.example.com/", NotHttps),
        ("javascript:alert(1)", NotHttps),
        ("JaVaScRiPt:alert(1)//https://app.example.com/", NotHttps),
        ("data:text/html;base64,PHNjcmlwdD4=", NotHttps),
        ("ftp://app.example.com/", NotHttps),
        ("https:app.example.com", NotHttps),
        ("https:/app.example.com", NotHttps),
        ("https:%2F%2Fevil.com", NotHttps),
        ("%2F%2Fevil.com", NotHttps),
        ("https%3A%2F%2Fevil.com", NotHttps),
        // scheme-relative and relative
        ("//evil.com", NotHttps),
        ("//evil.com/https://app.example.com/", NotHttps),
        ("/\\evil.com", Backslash),
        ("\\\\evil.com", Backslash),
        ("/dashboard", NotHttps),
        // backslashes before the path
        ("https:\\\\evil.com", Backslash),
        ("https://evil.com\\.example.com/", Backslash),
        ("https://evil.com\\@app.example.com/", Backslash),
        ("https://app.example.com\\evil.com", Backslash),
        // userinfo
        ("https://app.example.com@evil.com/", Userinfo),
        ("https://user:pw@app.example.com/", Userinfo),
        ("https://app.example.com:443@evil.com/", Userinfo),
        ("https://evil.com%2F@app.example.com/", Userinfo),
        ("https://@app.example.com/", Userinfo),
        // control characters and whitespace (browsers drop tabs and newlines)
        ("https://app.example.com\t@evil.com/", InvalidCharacter),
        ("https://evil.com\n.example.com/", InvalidCharacter),
        ("java\tscript:alert(1)", InvalidCharacter),
        (" https://app.example.com/", InvalidCharacter),
        ("https://app.example.com/\0", InvalidCharacter),
        ("https://app.example.com/ x", InvalidCharacter),
        (
            "https://app.example.com/\r\nSet-Cookie: x=y",
            InvalidCharacter,
        ),
        ("\u{1}https://app.example.com/", InvalidCharacter),
        // encoded tricks in the authority
        ("https://app.example.com%2F%2Fevil.com", EncodedAuthority),
        ("https://evil.com%5C.example.com", EncodedAuthority),
        ("https://app.example.com%2eevil.com", EncodedAuthority),
        ("https://%65vil.com", EncodedAuthority),
        ("https://app%2Eexample.com/", EncodedAuthority),
        // look-alike hosts
        (
            "https://example.com.evil.com/",
            ForeignHost("example.com.evil.com".into()),
        ),
        (
            "https://evilexample.com/",
            ForeignHost("evilexample.com".into()),
        ),
        ("https://example.co/", ForeignHost("example.co".into())),
        (
            "https://evil.com/.example.com",
            ForeignHost("evil.com".into()),
        ),
        (
            "https://evil.com?.example.com",
            ForeignHost("evil.com".into()),
        ),
        (
            "https://xn--exmple-cua.com/",
            ForeignHost("xn--exmple-cua.com".into()),
        ),
        ("https://127.0.0.1/", ForeignHost("127.0.0.1".into())),
        ("https://[::1]/", ForeignHost("::1".into())),
        // IDN look-alikes and non-ASCII (Cyrillic а, fullwidth dot, ideographic dot)
        ("https://\u{430}pp.example.com/", InvalidCharacter),
        ("https://app.ex\u{430}mple.com/", InvalidCharacter),
        ("https://evil.com\u{ff0e}example.com/", InvalidCharacter),
        ("https://evil.com\u{3002}example.com/", InvalidCharacter),
        // broken hosts and ports
        ("https:///evil.com", MissingHost),
        ("https://", MissingHost),
        ("https://app..example.com/", InvalidHost),
        ("https://.example.com/", InvalidHost),
        ("https://app.example.com:/", InvalidHost),
        ("https://app.example.com:99999/", InvalidPort),
        ("https://app.example.com:0/", InvalidPort),
        ("https://app.example.com:80:80/", InvalidHost),
        ("https://app.example.com:8o/", InvalidHost),
        // fragments and malformed paths
        ("https://evil.com#@app.example.com", Fragment),
        ("https://app.example.com/#frag", Fragment),
        ("https://app.example.com/%zz", InvalidPath),
        ("https://app.example.com/?q=%g0", InvalidPath),
    ];
    assert!(cases.len() >= 30);
    for (rd, expected) in cases {
        let got = policy().validate(rd);
        assert_eq!(got, Err(expected), "{rd:?}");
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let err = policy().validate("https://evil.com/").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the redirect target's host \"evil.com\" is not in the configured domains"
    );
}
