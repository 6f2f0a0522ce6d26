//! A software authenticator for the registry's tests: an ES256 key (aws-lc-rs), "none"
//! attestation, hand-encoded CBOR. Just enough of CTAP2/WebAuthn to run the ceremonies
//! against webauthn-rs without a browser, with every field a test may want to get wrong.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// User present, user verified, attested credential data included.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub(super) struct SoftAuthenticator {
    key: EcdsaKeyPair,
    pub(super) credential_id: Vec<u8>,
    pub(super) counter: u32,
    /// Whether it reports user verification.
    pub(super) verifies: bool,
    /// The user handle stored at registration (a resident key).
    pub(super) user_handle: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// CBOR: a major type with its argument (lengths up to 65535 are enough here).
fn head(major: u8, value: usize, out: &mut Vec<u8>) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=255 => out.extend([major | 24, value as u8]),
        _ => {
            out.push(major | 25);
            out.extend((value as u16).to_be_bytes());
        }
    }
}

fn bytes(data: &[u8], out: &mut Vec<u8>) {
    head(2, data.len(), out);
    out.extend(data);
}

fn text(data: &str, out: &mut Vec<u8>) {
    head(3, data.len(), out);
    out.extend(data.as_bytes());
}

/// A small CBOR integer (negative ones as major type 1).
fn int(value: i64, out: &mut Vec<u8>) {
    if value >= 0 {
        head(0, value as usize, out);
    } else {
        head(1, (-1 - value) as usize, out);
    }
}

impl SoftAuthenticator {
    pub(super) fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).unwrap();
        SoftAuthenticator {
            key,
            credential_id,
            counter: 0,
            verifies: true,
            user_handle: Vec::new(),
        }
    }

    fn flags(&self, extra: u8) -> u8 {
        UP | extra | if self.verifies { UV } else { 0 }
    }

    fn cose_key(&self) -> Vec<u8> {
        // Uncompressed point: 0x04 | x | y.
        let point = self.key.public_key().as_ref();
        let mut out = Vec::new();
        head(5, 5, &mut out);
        int(1, &mut out);
        int(2, &mut out); // kty: EC2
        int(3, &mut out);
        int(-7, &mut out); // alg: ES256
        int(-1, &mut out);
        int(1, &mut out); // crv: P-256
        int(-2, &mut out);
        bytes(&point[1..33], &mut out);
        int(-3, &mut out);
        bytes(&point[33..65], &mut out);
        out
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// Answers `navigator.credentials.create(options)` as a browser at `origin` would.
    pub(super) fn register(&mut self, options: &Value, origin: &str) -> String {
        let key = &options["publicKey"];
        let rp_id = key["rp"]["id"].as_str().unwrap();
        self.user_handle = URL_SAFE_NO_PAD
            .decode(key["user"]["id"].as_str().unwrap())
            .unwrap();
        let challenge = key["challenge"].as_str().unwrap();
        let mut auth_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(self.flags(AT));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(5, 3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        head(5, 0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&auth_data, &mut attestation);
        let client_data = Self::client_data("webauthn.create", challenge, origin);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get(options)` for the relying party `rp_id` as a browser
    /// at `origin` would, counting one more signature.
    pub(super) fn assert(&mut self, options: &Value, rp_id: &str, origin: &str) -> String {
        self.counter += 1;
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let mut auth_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(self.flags(0));
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}
