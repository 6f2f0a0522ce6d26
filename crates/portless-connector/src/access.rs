//! Verification of the edge's identity assertion for rules with `originRequest.access`
//! (defence in depth): a request reaches such a rule's origin only with a valid assertion.
//!
//! The edge signs an assertion for every request it admitted to a protected application and
//! sends its key set (JWKS) over each connection's control stream. For a rule whose
//! `originRequest.access` has `required: true`, the connector checks the request's
//! `Cf-Access-Jwt-Assertion` (or `Portless-Jwt-Assertion`) against those keys, the issuer
//! `https://<teamName>` and the rule's `audTag`s, before anything else: a request without a
//! valid assertion is answered `403 access_denied` and the origin is never dialled. So a
//! misrouted request, a bug in the edge's policy layer, or someone who reached the tunnel
//! some other way still cannot get past the connector.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use portless_access::assertion::{
    ASSERTION_HEADERS, AssertionClaims, AssertionVerifier, VerifyError, issuer_for_team,
};
use portless_ingress::AccessPolicy;
use portless_proto::HeaderList;
use tracing::{debug, warn};

/// The key sets received from the edge, one per live control stream, joined: a connector
/// connected to several edges that share a store accepts what any of them signs, even while
/// one of them has not yet picked up a key rotation made by another.
#[derive(Default)]
pub(crate) struct AccessKeys {
    next_link: AtomicU64,
    by_link: Mutex<HashMap<u64, Arc<AssertionVerifier>>>,
    /// The union of `by_link`, rebuilt on every change; `None` until keys arrive.
    joined: RwLock<Option<Arc<AssertionVerifier>>>,
}

impl AccessKeys {
    /// An id for a new control stream's key set.
    pub(crate) fn link(&self) -> u64 {
        self.next_link.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the key set `jwks` received on control stream `link`. An unreadable set is
    /// logged and ignored (the link keeps its previous keys).
    pub(crate) fn receive(&self, link: u64, jwks: &str) {
        match AssertionVerifier::from_jwks_json(jwks) {
            Ok(verifier) => {
                debug!(link, kids = ?verifier.kids(), "received the edge's assertion keys");
                self.update(|links| {
                    links.insert(link, Arc::new(verifier));
                });
            }
            Err(error) => {
                warn!(link, %error, "ignored an unreadable assertion key set from the edge");
            }
        }
    }

    /// Forgets the keys of a control stream that ended.
    pub(crate) fn forget(&self, link: u64) {
        self.update(|links| {
            links.remove(&link);
        });
    }

    /// The keys assertions are checked against now; `None` before any arrived.
    pub(crate) fn current(&self) -> Option<Arc<AssertionVerifier>> {
        match self.joined.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<u64, Arc<AssertionVerifier>>)) {
        let mut links = match self.by_link.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut links);
        let joined = (!links.is_empty())
            .then(|| Arc::new(AssertionVerifier::union(links.values().map(Arc::as_ref))));
        match self.joined.write() {
            Ok(mut guard) => *guard = joined,
            Err(poisoned) => *poisoned.into_inner() = joined,
        }
    }
}

/// Why a request to a rule that requires an assertion was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessDenied {
    /// No assertion header.
    #[error(
        "the request carries no identity assertion (Cf-Access-Jwt-Assertion): the rule requires one; reach it through the edge with access control on"
    )]
    Missing,
    /// Several assertion headers that differ.
    #[error("the request carries several different identity assertions")]
    Conflicting,
    /// An assertion header that is not text.
    #[error("the identity assertion header is not text")]
    NotText,
    /// No key set received from the edge yet.
    #[error(
        "the connector has no assertion keys from the edge yet: the edge has access control off, or is older than the connector"
    )]
    NoKeys,
    /// The assertion did not verify.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
}

impl AccessDenied {
    /// A stable snake_case name for the metric label and logs.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Conflicting => "conflicting",
            Self::NotText => "not_text",
            Self::NoKeys => "no_keys",
            Self::Invalid(error) => error.reason(),
        }
    }
}

/// Checks the assertion of a request with `headers` for a rule with `policy`, against
/// `keys` (the edge's, when received), at `now`.
pub(crate) fn check(
    keys: Option<&AssertionVerifier>,
    policy: &AccessPolicy,
    headers: &HeaderList,
    now: SystemTime,
) -> Result<AssertionClaims, AccessDenied> {
    let token = assertion(headers)?;
    let keys = keys.ok_or(AccessDenied::NoKeys)?;
    let issuer = issuer_for_team(&policy.team_name);
    Ok(keys.verify(token, &issuer, &policy.aud_tags, now)?)
}

/// The one assertion the request carries: every assertion header present must hold the
/// same token, so a second, smuggled header cannot be the one checked while the origin
/// reads the other.
fn assertion(headers: &HeaderList) -> Result<&str, AccessDenied> {
    let mut found: Option<&[u8]> = None;
    for (name, value) in headers {
        if !ASSERTION_HEADERS
            .iter()
            .any(|wanted| name.eq_ignore_ascii_case(wanted))
        {
            continue;
        }
        let value = value.trim_ascii();
        match found {
            None => found = Some(value),
            Some(seen) if seen == value => {}
            Some(_) => return Err(AccessDenied::Conflicting),
        }
    }
    let token = found.ok_or(AccessDenied::Missing)?;
    std::str::from_utf8(token).map_err(|_| AccessDenied::NotText)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use portless_access::assertion::KeyRing;
    use portless_access::{AuthLevel, Identity, Subject};
    use portless_store::Store;

    use super::*;

    fn policy(aud: &[&str]) -> AccessPolicy {
        AccessPolicy {
            required: true,
            team_name: "auth.test".into(),
            aud_tags: aud.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    async fn ring() -> KeyRing {
        let store = Store::open_in_memory().await.unwrap();
        KeyRing::load_or_create(
            &store,
            SystemTime::now(),
            Duration::from_secs(86_400),
            Duration::from_secs(3600),
        )
        .await
        .unwrap()
    }

    fn token(ring: &KeyRing, audience: &str, issuer: &str) -> String {
        let identity = Identity {
            subject: Subject::User {
                name: "alice".into(),
                level: AuthLevel::OneFactor,
                source: portless_access::Source::UsersFile,
            },
            display_name: String::new(),
            email: None,
            groups: vec![],
        };
        let claims = AssertionClaims::for_identity(
            &identity,
            audience,
            issuer,
            SystemTime::now(),
            Duration::from_secs(60),
        );
        ring.sign(&claims).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderList {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn a_valid_assertion_in_either_header_passes() {
        let ring = ring().await;
        let keys = ring.verifier(SystemTime::now());
        let token = token(&ring, "app.test", "https://auth.test");
        for name in ["Cf-Access-Jwt-Assertion", "portless-jwt-assertion"] {
            let claims = check(
                Some(&keys),
                &policy(&["app.test"]),
                &headers(&[(name, &token)]),
                SystemTime::now(),
            )
            .unwrap();
            assert_eq!(claims.sub, "alice");
        }
        // Both headers with the same token, as the edge sends them.
        check(
            Some(&keys),
            &policy(&[]),
            &headers(&[
                ("cf-access-jwt-assertion", &token),
                ("portless-jwt-assertion", &token),
            ]),
            SystemTime::now(),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn refusals_name_their_reason() {
        let ring = ring().await;
        let keys = ring.verifier(SystemTime::now());
        let good = token(&ring, "app.test", "https://auth.test");
        let now = SystemTime::now();
        let reason = |keys: Option<&AssertionVerifier>, policy: &AccessPolicy, h: &HeaderList| {
            check(keys, policy, h, now).unwrap_err().reason()
        };
        let app = policy(&["app.test"]);
        assert_eq!(reason(Some(&keys), &app, &headers(&[])), "missing");
        assert_eq!(
            reason(None, &app, &headers(&[("cf-access-jwt-assertion", &good)])),
            "no_keys"
        );
        assert_eq!(
            reason(
                Some(&keys),
                &app,
                &headers(&[
                    ("cf-access-jwt-assertion", &good),
                    ("portless-jwt-assertion", "other"),
                ])
            ),
            "conflicting"
        );
        let other_app = token(&ring, "other.test", "https://auth.test");
        assert_eq!(
            reason(
                Some(&keys),
                &app,
                &headers(&[("cf-access-jwt-assertion", &other_app)])
            ),
            "audience"
        );
        let other_team = token(&ring, "app.test", "https://evil.test");
        assert_eq!(
            reason(
                Some(&keys),
                &app,
                &headers(&[("cf-access-jwt-assertion", &other_team)])
            ),
            "issuer"
        );
    }

    #[tokio::test]
    async fn key_sets_of_every_live_link_are_joined() {
        let one = ring().await;
        let two = ring().await;
        let now = SystemTime::now();
        let keys = AccessKeys::default();
        assert!(keys.current().is_none());
        let (a, b) = (keys.link(), keys.link());
        keys.receive(a, &one.jwks_json(now));
        keys.receive(b, &two.jwks_json(now));
        keys.receive(b, "garbage");
        assert_eq!(keys.current().unwrap().kids().len(), 2);
        keys.forget(a);
        assert_eq!(keys.current().unwrap().kids(), vec![two.current_kid()]);
        keys.forget(b);
        assert!(keys.current().is_none());
    }
}
