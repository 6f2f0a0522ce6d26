//! `tls:`: the public listener's certificates (static files, ACME) and HSTS
//! (docs/certificates.md).
//!
//! Everything a file names is checked while loading, so a typo fails at startup with the
//! file's position rather than at the first handshake: static certificate files are read and
//! matched against their keys, the ACME directory must be HTTPS, and HTTP-01 alone needs the
//! port-80 listener of `http:`.

use std::time::Duration;

use portless_acme::{AcmeOptions, ChallengeKind, Directory, Eab};
use portless_tls::{StaticCertificate, StaticCertificates};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::{Checker, Text};
use super::keys::{Child, Section};
use crate::{Hsts, PublicTlsOptions};

/// The shortest HSTS max-age the browsers' preload list accepts.
const PRELOAD_MIN_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `tls:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTls {
    pub hsts: Option<Spanned<RawHsts>>,
    pub acme: Option<Spanned<RawAcme>>,
    pub certificates: Option<Vec<Spanned<RawCertificate>>>,
}

/// `tls.hsts` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHsts {
    pub max_age: Option<Text>,
    pub include_subdomains: Option<Text>,
    pub preload: Option<Text>,
}

/// `tls.acme` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAcme {
    pub directory: Option<Text>,
    pub email: Option<Text>,
    pub ca_file: Option<Text>,
    pub eab: Option<Spanned<RawEab>>,
    pub challenge: Option<Spanned<Vec<Text>>>,
    pub renew_before: Option<Text>,
}

/// `tls.acme.eab` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawEab {
    pub kid: Option<Text>,
    pub hmac_key: Option<Text>,
}

/// One entry of `tls.certificates` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCertificate {
    pub hostnames: Option<Spanned<Vec<Text>>>,
    pub cert: Option<Text>,
    pub key: Option<Text>,
}

/// The validated `tls:` section.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// `hsts:`; `None`: no `Strict-Transport-Security` header.
    pub hsts: Option<Hsts>,
    /// `acme:`; `None`: no ACME (the local CA serves names without a static certificate).
    pub acme: Option<AcmeOptions>,
    /// `certificates:`, in file order (each file already loaded once successfully).
    pub certificates: Vec<StaticCertificate>,
}

impl TlsConfig {
    /// The edge options this section sets (the rest keep their defaults).
    pub fn public_tls_options(&self) -> PublicTlsOptions {
        PublicTlsOptions {
            hsts: self.hsts.clone(),
            acme: self.acme.clone(),
            certificates: self.certificates.clone(),
            ..PublicTlsOptions::default()
        }
    }
}

static HSTS: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawHsts>,
    children: &[],
};

static EAB: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawEab>,
    children: &[],
};

static ACME: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawAcme>,
    children: &[("eab", Child::Map("`eab`", &EAB))],
};

static CERTIFICATE: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawCertificate>,
    children: &[],
};

/// The keys of `tls:` and its nested sections.
pub(crate) static SECTION: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawTls>,
    children: &[
        ("hsts", Child::Map("`hsts`", &HSTS)),
        ("acme", Child::Map("`acme`", &ACME)),
        (
            "certificates",
            Child::List("certificates entry", &CERTIFICATE),
        ),
    ],
};

/// `http_listener`: whether `http:` has a `listen` (HTTP-01 is answered there).
pub(crate) fn validate(raw: RawTls, http_listener: bool, ck: &mut Checker) -> TlsConfig {
    TlsConfig {
        hsts: raw.hsts.as_ref().and_then(|hsts| validate_hsts(hsts, ck)),
        acme: raw
            .acme
            .as_ref()
            .and_then(|acme| validate_acme(acme, http_listener, ck)),
        certificates: raw
            .certificates
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| validate_certificate(entry, i, ck))
            .collect(),
    }
}

fn validate_hsts(raw: &Spanned<RawHsts>, ck: &mut Checker) -> Option<Hsts> {
    let key = |name: &str| format!("`{name}` of `hsts` of `tls`");
    let hsts = &raw.value;
    let max_age = match &hsts.max_age {
        Some(text) => ck.duration(text, &key("max_age"))?,
        None => {
            ck.invalid(
                raw,
                "`hsts` of `tls`",
                "`max_age` is missing",
                "add `max_age: 1y` (how long browsers remember to use HTTPS only)",
            );
            return None;
        }
    };
    let include_subdomains = match &hsts.include_subdomains {
        Some(text) => ck.boolean(text, &key("include_subdomains"))?,
        None => false,
    };
    let preload = match &hsts.preload {
        Some(text) => ck.boolean(text, &key("preload"))?,
        None => false,
    };
    if preload && let Some(text) = &hsts.preload {
        if !include_subdomains {
            ck.invalid(
                text,
                &key("preload"),
                "the preload list only accepts HSTS with includeSubDomains",
                "add `include_subdomains: true` (every subdomain must then serve HTTPS), or \
                 remove `preload`",
            );
            return None;
        }
        if max_age < PRELOAD_MIN_AGE {
            ck.invalid(
                text,
                &key("preload"),
                format!(
                    "the preload list needs a max_age of at least one year, not {}s",
                    max_age.as_secs()
                ),
                "write `max_age: 1y` (or longer), or remove `preload`",
            );
            return None;
        }
    }
    Some(Hsts {
        max_age,
        include_subdomains,
        preload,
    })
}

fn validate_acme(
    raw: &Spanned<RawAcme>,
    http_listener: bool,
    ck: &mut Checker,
) -> Option<AcmeOptions> {
    let key = |name: &str| format!("`{name}` of `acme` of `tls`");
    let acme = &raw.value;
    let directory = match &acme.directory {
        Some(text) => directory(text, &key("directory"), ck),
        None => {
            ck.invalid(
                raw,
                "`acme` of `tls`",
                "`directory` is missing",
                "add `directory: production` (Let's Encrypt), `staging`, or your CA's https:// \
                 directory URL",
            );
            None
        }
    };
    let email = acme.email.as_ref().and_then(|text| {
        let written = text.value.trim();
        let address = written.strip_prefix("mailto:").unwrap_or(written);
        match address.split_once('@') {
            Some((user, domain)) if !user.is_empty() && domain.contains('.') => {
                Some(address.to_owned())
            }
            _ => {
                ck.invalid(
                    text,
                    &key("email"),
                    format!("`{written}` is not an email address"),
                    "write the address the CA sends expiry notices to, e.g. `ops@example.com`",
                );
                None
            }
        }
    });
    let ca_file = acme
        .ca_file
        .as_ref()
        .and_then(|text| ck.readable_file(text, &key("ca_file"), "a PEM CA certificate file"));
    let eab = acme.eab.as_ref().and_then(|raw| eab(raw, ck));
    let challenges = match &acme.challenge {
        Some(list) => challenges(list, &key("challenge"), ck),
        None => Some(vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01]),
    };
    if let (Some(list), Some(kinds)) = (&acme.challenge, &challenges)
        && !http_listener
        && kinds.iter().all(|kind| *kind == ChallengeKind::Http01)
    {
        ck.invalid(
            list,
            &key("challenge"),
            "HTTP-01 is answered on port 80, but `http:` has no `listen`",
            "add `http: { listen: 0.0.0.0:80 }`, or add `tls-alpn-01` to `challenge`",
        );
        return None;
    }
    let renew_before = match &acme.renew_before {
        Some(text) => Some(ck.duration(text, &key("renew_before"))?),
        None => None,
    };
    let failed = acme.email.is_some() && email.is_none()
        || acme.ca_file.is_some() && ca_file.is_none()
        || acme.eab.is_some() && eab.is_none();
    let (Some(directory), Some(challenges), false) = (directory, challenges, failed) else {
        return None;
    };
    let mut options = AcmeOptions::new(directory);
    options.email = email;
    options.ca_file = ca_file;
    options.eab = eab;
    options.challenges = challenges;
    options.renew_before = renew_before;
    Some(options)
}

fn directory(text: &Text, key: &str, ck: &mut Checker) -> Option<Directory> {
    let written = text.value.trim();
    match written.to_ascii_lowercase().as_str() {
        "production" => return Some(Directory::Production),
        "staging" => return Some(Directory::Staging),
        _ => {}
    }
    if let Some(rest) = written.strip_prefix("https://") {
        if rest.is_empty() || rest.starts_with('/') {
            ck.invalid(
                text,
                key,
                format!("`{written}` has no host"),
                "write the CA's full directory URL, e.g. `https://acme.example.com/directory`",
            );
            return None;
        }
        return Some(Directory::Url(written.to_owned()));
    }
    if written.starts_with("http://") {
        ck.invalid(
            text,
            key,
            format!(
                "`{written}` is plain HTTP: the account key and orders would travel unprotected"
            ),
            "write the directory's https:// URL (RFC 8555 requires HTTPS)",
        );
        return None;
    }
    ck.invalid(
        text,
        key,
        format!("unknown ACME directory `{written}`"),
        "write `production` (Let's Encrypt), `staging` (Let's Encrypt staging) or an https:// \
         directory URL",
    );
    None
}

fn eab(raw: &Spanned<RawEab>, ck: &mut Checker) -> Option<Eab> {
    let key = |name: &str| format!("`{name}` of `eab` of `acme` of `tls`");
    let (Some(kid), Some(hmac_key)) = (&raw.value.kid, &raw.value.hmac_key) else {
        ck.invalid(
            raw,
            "`eab` of `acme` of `tls`",
            "external account binding needs both `kid` and `hmac_key`",
            "copy both values from your CA's account page",
        );
        return None;
    };
    if kid.value.trim().is_empty() {
        ck.invalid(
            kid,
            &key("kid"),
            "the key id is empty",
            "copy the key id from your CA's account page",
        );
        return None;
    }
    match Eab::new(kid.value.trim().to_owned(), &hmac_key.value) {
        Ok(eab) if !eab.hmac_key.is_empty() => Some(eab),
        _ => {
            // The key itself is a secret: the message does not repeat it.
            ck.invalid(
                hmac_key,
                &key("hmac_key"),
                "the HMAC key is not base64url",
                "paste the key exactly as the CA shows it (letters, digits, `-` and `_`)",
            );
            None
        }
    }
}

fn challenges(
    list: &Spanned<Vec<Text>>,
    key: &str,
    ck: &mut Checker,
) -> Option<Vec<ChallengeKind>> {
    if list.value.is_empty() {
        ck.invalid(
            list,
            key,
            "no challenge type is listed",
            "write `[tls-alpn-01, http-01]`, or remove `challenge` for that default",
        );
        return None;
    }
    let mut kinds = Vec::new();
    let mut ok = true;
    for text in &list.value {
        match text
            .value
            .trim()
            .to_ascii_lowercase()
            .parse::<ChallengeKind>()
        {
            Ok(kind) if kinds.contains(&kind) => {
                ck.invalid(
                    text,
                    key,
                    format!("`{kind}` is listed twice"),
                    "list each challenge type once, most preferred first",
                );
                ok = false;
            }
            Ok(kind) => kinds.push(kind),
            Err(_) => {
                ck.invalid(
                    text,
                    key,
                    format!("unknown challenge type `{}`", text.value.trim()),
                    "write `tls-alpn-01` (answered on the HTTPS port) or `http-01` (answered \
                     on port 80)",
                );
                ok = false;
            }
        }
    }
    ok.then_some(kinds)
}

fn validate_certificate(
    raw: &Spanned<RawCertificate>,
    index: usize,
    ck: &mut Checker,
) -> Option<StaticCertificate> {
    let label = format!("certificates entry #{} of `tls`", index + 1);
    let key = |name: &str| format!("`{name}` of {label}");
    let entry = &raw.value;
    let missing = |ck: &mut Checker, name: &str, fix: &str| {
        ck.invalid(raw, &label, format!("`{name}` is missing"), fix);
    };
    let hostnames = match &entry.hostnames {
        None => {
            missing(
                ck,
                "hostnames",
                "add `hostnames: [app.example.com]`: the names this certificate serves",
            );
            None
        }
        Some(list) if list.value.is_empty() => {
            ck.invalid(
                list,
                &key("hostnames"),
                "no hostname is listed",
                "list the names this certificate serves, e.g. `[app.example.com, \"*.example.com\"]`",
            );
            None
        }
        Some(list) => {
            let names: Vec<String> = list
                .value
                .iter()
                .filter_map(|text| ck.host_pattern(text, &key("hostnames")))
                .collect();
            (names.len() == list.value.len()).then_some(names)
        }
    };
    let cert = match &entry.cert {
        None => {
            missing(ck, "cert", "add `cert: PATH` (the PEM chain, leaf first)");
            None
        }
        Some(text) => Some((text, ck.path(text))),
    };
    let key_file = match &entry.key {
        None => {
            missing(ck, "key", "add `key: PATH` (the PEM private key)");
            None
        }
        Some(text) => Some(ck.path(text)),
    };
    let (Some(hostnames), Some((cert_text, cert)), Some(key_file)) = (hostnames, cert, key_file)
    else {
        return None;
    };
    let certificate = StaticCertificate {
        hostnames,
        cert,
        key: key_file,
    };
    // Loaded once here so an unreadable or mismatched file is a startup error with this
    // position; the edge loads them again (and reloads them when they change).
    if let Err(e) = StaticCertificates::load(vec![certificate.clone()]) {
        ck.invalid(
            cert_text,
            &label,
            e.to_string(),
            "give a PEM certificate chain (leaf first) in `cert` and the private key of its \
             leaf in `key`",
        );
        return None;
    }
    Some(certificate)
}
