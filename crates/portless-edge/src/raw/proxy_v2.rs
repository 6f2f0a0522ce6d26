//! The PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2): the first bytes
//! toward the origin on a public TCP port with `proxy_protocol: v2`, so the origin sees the
//! real client address. The connector splices it through unchanged.
//!
//! Only the `PROXY` command over TCP is written, without TLVs: 16 fixed bytes, then the
//! addresses (12 bytes for IPv4, 36 for IPv6). Written here rather than with a crate: the
//! encoder is a few lines, fully pinned down by the tests against the spec's layout.

use std::net::{IpAddr, SocketAddr};

/// The 12-byte signature every v2 header starts with.
const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Version 2 (high nibble), command PROXY (low nibble 1).
const VERSION_PROXY: u8 = 0x21;
/// Address family INET (high nibble 1) / INET6 (2), transport STREAM (low nibble 1).
const TCP_OVER_IPV4: u8 = 0x11;
const TCP_OVER_IPV6: u8 = 0x21;

/// The header for a connection from `client` to `local` (the edge's address it arrived
/// at). Mixed families (an IPv4 client on a dual-stack IPv6 socket) are written as IPv6,
/// with the IPv4 address mapped; IPv4-mapped pairs are written as IPv4.
pub(crate) fn header(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let (src, dst) = (client.ip().to_canonical(), local.ip().to_canonical());
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&SIGNATURE);
    out.push(VERSION_PROXY);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.push(TCP_OVER_IPV4);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(TCP_OVER_IPV6);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(src).octets());
            out.extend_from_slice(&v6(dst).octets());
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&local.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ipv4_matches_the_spec_layout() {
        let h = header(
            "192.0.2.10:51000".parse().unwrap(),
            "203.0.113.5:2222".parse().unwrap(),
        );
        let mut expected = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        expected.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
        expected.extend_from_slice(&[192, 0, 2, 10, 203, 0, 113, 5]);
        expected.extend_from_slice(&51000u16.to_be_bytes());
        expected.extend_from_slice(&[0x08, 0xAE]);
        assert_eq!(h, expected);
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn ipv6_and_mixed_families() {
        let h = header(
            "[2001:db8::1]:40000".parse().unwrap(),
            "[2001:db8::2]:443".parse().unwrap(),
        );
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(h[16 + 15], 1);
        assert_eq!(h[32 + 15], 2);
        assert_eq!(&h[48..], &[0x9C, 0x40, 0x01, 0xBB]);
        // An IPv4 client on a dual-stack socket: mapped pair → IPv4.
        let h = header(
            "[::ffff:192.0.2.1]:1000".parse().unwrap(),
            "[::ffff:192.0.2.2]:2000".parse().unwrap(),
        );
        assert_eq!(h[13], 0x11);
        // Truly mixed: written as IPv6 with the IPv4 side mapped.
        let h = header(
            "192.0.2.1:1000".parse().unwrap(),
            "[2001:db8::2]:2000".parse().unwrap(),
        );
        assert_eq!(h[13], 0x21);
        assert_eq!(
            &h[16..32],
            &"::ffff:192.0.2.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }
}
