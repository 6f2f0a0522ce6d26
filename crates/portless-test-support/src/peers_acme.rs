//! [`PebblePeer`]: Debian's `pebble` ACME test CA with `pebble-challtestsrv` as its DNS
//! server, started per test on free loopback ports and ended by PID when dropped.
//!
//! Every test name resolves to 127.0.0.1 (challtestsrv's default answer, no AAAA), and pebble
//! validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of that address: the test
//! binds the edge's listeners first and passes their ports here.
//!
//! When the programs are missing, `start` returns `None` after printing why, unless
//! `PORTLESS_REQUIRE_PEBBLE=1` (as `.ci/run` sets), in which case it panics.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portless_tls::LocalCa;
use portless_tls::rustls_pki_types::CertificateDer;
use portless_tls::rustls_pki_types::pem::PemObject as _;

/// EAB key id and HMAC key (base64url) pebble requires when started with
/// [`PebbleSetup::eab_required`].
pub const PEBBLE_EAB_KID: &str = "kid-1";
/// See [`PEBBLE_EAB_KID`].
pub const PEBBLE_EAB_HMAC: &str =
    "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// How to start pebble.
#[derive(Debug, Clone, Copy)]
pub struct PebbleSetup {
    /// The port pebble connects to for HTTP-01 validations.
    pub http_port: u16,
    /// The port pebble connects to for TLS-ALPN-01 validations.
    pub tls_port: u16,
    /// Require external account binding ([`PEBBLE_EAB_KID`], [`PEBBLE_EAB_HMAC`]).
    pub eab_required: bool,
}

/// A running pebble and its DNS server.
pub struct PebblePeer {
    pebble: Child,
    dns: Child,
    /// The ACME directory URL (`https://127.0.0.1:PORT/dir`).
    pub directory: String,
    /// The CA file that verifies pebble's own HTTPS (for `tls.acme.ca_file`).
    pub ca_file: PathBuf,
    management: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for PebblePeer {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    // Bound then released: pebble takes ports only from its config file.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl PebblePeer {
    /// Starts pebble and challtestsrv; `None` when they are not installed.
    pub fn start(setup: PebbleSetup) -> Option<PebblePeer> {
        if !installed("pebble") || !installed("pebble-challtestsrv") {
            assert!(
                !std::env::var("PORTLESS_REQUIRE_PEBBLE").is_ok_and(|v| v == "1"),
                "PORTLESS_REQUIRE_PEBBLE=1 but pebble or pebble-challtestsrv is not installed (apt install pebble)"
            );
            eprintln!("SKIPPED: pebble is not installed (apt install pebble)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::generate("Portless test pebble HTTPS CA").expect("CA");
        let (chain, key) = ca
            .issue_pem(&["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("pebble certificate");
        let cert_path = dir.path().join("pebble.pem");
        let key_path = dir.path().join("pebble-key.pem");
        let ca_file = dir.path().join("pebble-ca.pem");
        std::fs::write(&cert_path, chain).expect("write");
        std::fs::write(&key_path, key).expect("write");
        std::fs::write(&ca_file, ca.cert_pem()).expect("write");
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let management: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let dns: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let mut mac_keys = serde_json::Map::new();
        mac_keys.insert(PEBBLE_EAB_KID.to_owned(), PEBBLE_EAB_HMAC.into());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": cert_path,
                "privateKey": key_path,
                "httpPort": setup.http_port,
                "tlsPort": setup.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": setup.eab_required,
                "externalAccountMACKeys": mac_keys,
            }
        });
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let log = |name: &str| {
            std::fs::File::create(dir.path().join(name))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null())
        };
        let dns_child = Command::new("pebble-challtestsrv")
            .args(["-dns01", &dns.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("start pebble-challtestsrv");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("start pebble");
        let mut peer = PebblePeer {
            pebble,
            dns: dns_child,
            directory: format!("https://{listen}/dir"),
            ca_file,
            management,
            _dir: dir,
        };
        peer.wait_listening(listen);
        peer.wait_listening(management);
        Some(peer)
    }

    fn wait_listening(&mut self, addr: SocketAddr) {
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.pebble.try_wait() {
                panic!("pebble exited ({status}) before listening: {}", self.logs());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "pebble did not listen on {addr}: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// pebble's and challtestsrv's output so far (for failure messages).
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self._dir.path().join(name)).unwrap_or_default();
        format!(
            "pebble: {}{}\nchalltestsrv: {}{}",
            read("pebble.log"),
            read("pebble.err"),
            read("challtestsrv.log"),
            read("challtestsrv.err")
        )
    }

    /// The root that issues pebble's certificates (random per run), from its management
    /// interface (`/roots/0`), fetched with curl trusting [`PebblePeer::ca_file`].
    pub fn issuing_root(&self) -> CertificateDer<'static> {
        let output = Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(&self.ca_file)
            .arg(format!("https://{}/roots/0", self.management))
            .output()
            .expect("run curl");
        assert!(
            output.status.success(),
            "fetching pebble's root failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        CertificateDer::from_pem_slice(&output.stdout).expect("pebble root PEM")
    }
}
