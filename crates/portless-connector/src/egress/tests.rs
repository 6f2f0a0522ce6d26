use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn every_address_form_gets_its_class() {
    use AddressClass as C;
    let table = [
        // IPv4
        ("8.8.8.8", C::Public),
        ("1.1.1.1", C::Public),
        ("127.0.0.1", C::Loopback),
        ("127.255.0.9", C::Loopback),
        ("10.1.2.3", C::Private),
        ("172.16.0.1", C::Private),
        ("172.31.255.255", C::Private),
        ("172.32.0.1", C::Public),
        ("192.168.1.1", C::Private),
        ("169.254.1.1", C::LinkLocal),
        ("169.254.169.254", C::Metadata),
        ("100.100.100.200", C::Metadata),
        ("100.64.0.1", C::Cgnat),
        ("100.127.255.255", C::Cgnat),
        ("100.128.0.1", C::Public),
        ("0.0.0.0", C::Unspecified),
        ("0.1.2.3", C::Unspecified),
        ("224.0.0.1", C::Multicast),
        ("239.255.255.250", C::Multicast),
        ("255.255.255.255", C::Multicast),
        ("240.0.0.1", C::Reserved),
        // IPv6
        ("2606:4700::1111", C::Public),
        ("::1", C::Loopback),
        ("::", C::Unspecified),
        ("fe80::1", C::LinkLocal),
        ("febf::1", C::LinkLocal),
        ("fc00::1", C::UniqueLocal),
        ("fd12:3456::1", C::UniqueLocal),
        ("fec0::1", C::UniqueLocal),
        ("fd00:ec2::254", C::Metadata),
        ("ff02::1", C::Multicast),
        // IPv4-mapped
        ("::ffff:127.0.0.1", C::Loopback),
        ("::ffff:169.254.169.254", C::Metadata),
        ("::ffff:10.0.0.1", C::Private),
        ("::ffff:0.0.0.0", C::Unspecified),
        ("::ffff:8.8.8.8", C::Public),
        ("::ffff:7f00:1", C::Loopback),
        // IPv4-compatible (deprecated, still routed by some stacks)
        ("::127.0.0.1", C::Loopback),
        ("::169.254.169.254", C::Metadata),
        ("::8.8.8.8", C::Public),
        // NAT64
        ("64:ff9b::169.254.169.254", C::Metadata),
        ("64:ff9b::7f00:1", C::Loopback),
        ("64:ff9b::8.8.8.8", C::Public),
        // 6to4
        ("2002:a9fe:a9fe::", C::Metadata),
        ("2002:7f00:1::1", C::Loopback),
        ("2002:c0a8:101::1", C::Private),
        ("2002:808:808::1", C::Public),
    ];
    for (written, class) in table {
        assert_eq!(AddressClass::of(ip(written)), class, "{written}");
    }
}

#[test]
fn hosts_are_literal_localhost_or_names() {
    assert_eq!(
        NamedHost::parse("127.0.0.1"),
        NamedHost::Literal(ip("127.0.0.1"))
    );
    assert_eq!(NamedHost::parse("[::1]"), NamedHost::Literal(ip("::1")));
    assert_eq!(
        NamedHost::parse("LocalHost."),
        NamedHost::Localhost("localhost".into())
    );
    assert_eq!(
        NamedHost::parse("app.localhost"),
        NamedHost::Localhost("app.localhost".into())
    );
    assert_eq!(
        NamedHost::parse("notlocalhost"),
        NamedHost::Name("notlocalhost".into())
    );
    // Not a canonical literal (a resolver may read it as 127.0.0.1): it is a name.
    assert_eq!(
        NamedHost::parse("2130706433"),
        NamedHost::Name("2130706433".into())
    );
}

#[test]
fn the_policy_allows_only_what_the_rule_names() {
    let name = NamedHost::parse("db.internal");
    let localhost = NamedHost::parse("localhost");
    let literal = |s: &str| NamedHost::parse(s);
    // (host, address, allowed)
    let table = [
        (&name, "93.184.216.34", true),
        (&name, "10.0.0.5", true),
        (&name, "fd12::5", true),
        (&name, "100.64.1.1", true),
        (&name, "::ffff:192.168.1.1", true),
        (&name, "127.0.0.1", false),
        (&name, "::1", false),
        (&name, "::ffff:127.0.0.1", false),
        (&name, "169.254.169.254", false),
        (&name, "64:ff9b::a9fe:a9fe", false),
        (&name, "fd00:ec2::254", false),
        (&name, "100.100.100.200", false),
        (&name, "fe80::1", false),
        (&name, "0.0.0.0", false),
        (&name, "::", false),
        (&name, "224.0.0.1", false),
        (&name, "255.255.255.255", false),
        (&localhost, "127.0.0.1", true),
        (&localhost, "::1", true),
        (&localhost, "::ffff:127.0.0.1", true),
        (&localhost, "169.254.169.254", false),
        (&localhost, "0.0.0.0", false),
    ];
    for (host, address, allowed) in table {
        assert_eq!(host.permits(ip(address)), allowed, "{host} -> {address}");
    }
    // A literal allows exactly itself, whatever its class.
    for written in ["127.0.0.1", "169.254.169.254", "0.0.0.0", "::1", "fe80::1"] {
        assert!(literal(written).permits(ip(written)), "{written}");
    }
    assert!(!literal("127.0.0.1").permits(ip("127.0.0.2")));
}

#[tokio::test]
async fn resolution_keeps_allowed_addresses_and_refuses_when_none_is_left() {
    let policy = EgressPolicy::default().with_hosts([
        ("mixed.test", vec![ip("169.254.169.254"), ip("10.0.0.7")]),
        (
            "meta.test",
            vec![ip("169.254.169.254"), ip("::ffff:127.0.0.1")],
        ),
    ]);
    let mixed = policy
        .resolve(1, &NamedHost::parse("Mixed.Test"))
        .await
        .unwrap();
    assert_eq!(
        mixed,
        vec![ip("10.0.0.7")],
        "only the allowed address is dialed"
    );
    let denied = policy
        .resolve(2, &NamedHost::parse("meta.test"))
        .await
        .unwrap_err();
    let text = denied.to_string();
    assert!(
        text.contains("rule #2")
            && text.contains("169.254.169.254 metadata")
            && text.contains("::ffff:127.0.0.1 loopback"),
        "{text}"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(denied);
    assert!(denied_in(boxed.as_ref()).is_some());
}
