//! Verifying an identity assertion against a published key set, strictly.
//!
//! The checks are the ones past JWT libraries got wrong (attack class G): only ES256 is
//! accepted, whatever the header says (no `none`, no HS256 keyed with the public key, no RSA
//! or EdDSA); the key is looked up by `kid` among the published keys only (a key or URL
//! embedded in the header is never used); `exp`, `nbf` and `iat` must be JSON integers (a
//! string `exp` is refused, not read as "no expiry"); times are checked against the `now`
//! the caller passes, with [`LEEWAY`]; the issuer must match exactly and the audience must
//! intersect the accepted ones. jsonwebtoken checks the signature; every claim is checked
//! here, because its own time checks read the system clock and skip `nbf` by default.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{AssertionClaims, CLI_MAX_TTL, CliClaims, Jwks, LEEWAY, unix_seconds};

/// Longest token accepted, in bytes: ours are well under 2 KiB; this bounds the work a
/// hostile header can cause.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a key set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The text is not a JWKS.
    #[error("the key set is not a JWKS (`{{\"keys\":[...]}}`): {0}")]
    Json(#[from] serde_json::Error),
    /// A P-256 key has unusable coordinates.
    #[error(
        "key {kid:?} of the key set is not a usable P-256 key ({reason}): publish the edge's JWKS unchanged"
    )]
    BadKey {
        /// The key's id.
        kid: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why an assertion was refused. Each message says what was wrong and what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWT (three base64url parts with JSON header and payload), or too long.
    #[error(
        "the assertion is not a well-formed JWT ({0}): it was damaged or not made by a Portless edge"
    )]
    Malformed(String),
    /// The header names an algorithm other than ES256 (`none`, HS256, RS256, EdDSA...).
    #[error(
        "the assertion uses algorithm {alg:?}; only ES256 is accepted: it was not signed by a Portless edge"
    )]
    Algorithm {
        /// The algorithm the header names.
        alg: String,
    },
    /// The header has a `crit` member: no extension is understood, so none may be required.
    #[error("the assertion's header requires extensions ({0}) this verifier does not implement")]
    CriticalHeader(String),
    /// The header names no key.
    #[error("the assertion's header has no `kid`: it was not signed by a Portless edge")]
    MissingKeyId,
    /// The header names a key that is not published.
    #[error(
        "the assertion is signed with key {kid:?}, which is not in the edge's key set: it is forged, or older than the key rotation overlap"
    )]
    UnknownKey {
        /// The key id the header names.
        kid: String,
    },
    /// The signature does not match the named key.
    #[error("the assertion's signature is invalid: it was forged or altered")]
    BadSignature,
    /// A required claim is missing.
    #[error("the assertion has no `{0}` claim")]
    MissingClaim(&'static str),
    /// A time claim is not a JSON integer (a string `exp`, a float...).
    #[error(
        "the assertion's `{0}` claim is not a number of seconds: it was not made by a Portless edge"
    )]
    ClaimType(&'static str),
    /// `exp` is past (beyond the leeway).
    #[error(
        "the assertion expired at {exp} (now {now}): the client must go through the edge again; if this repeats, check the clocks of the edge and connector hosts"
    )]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's time.
        now: u64,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error(
        "the assertion is not valid before {not_before} (now {now}): check the clocks of the edge and connector hosts"
    )]
    NotYetValid {
        /// The token's `nbf` (or `iat`, when that is later).
        not_before: u64,
        /// The verifier's time.
        now: u64,
    },
    /// `iss` is not the expected issuer.
    #[error(
        "the assertion was issued by {got:?}, not {expected:?}: check `teamName` (the edge's auth hostname)"
    )]
    Issuer {
        /// The token's `iss`.
        got: String,
        /// The issuer required.
        expected: String,
    },
    /// `aud` names none of the accepted audiences.
    #[error(
        "the assertion is for {got:?}, none of the accepted audiences {accepted:?}: check `audTag` (the application's hostname)"
    )]
    Audience {
        /// The token's `aud`.
        got: Vec<String>,
        /// The audiences accepted.
        accepted: Vec<String>,
    },
    /// `type` is not the one expected (`app` for an assertion, `cli` for a client token).
    #[error(
        "the token's type is {got:?}, not {expected:?}: an application assertion and an access-client token are not interchangeable"
    )]
    Type {
        /// The token's `type`.
        got: String,
        /// The type required.
        expected: &'static str,
    },
    /// A client token whose `exp` is further from its `iat` than any edge signs.
    #[error(
        "the token lives {seconds} s, longer than an edge ever signs: it was not made by a Portless edge"
    )]
    Lifetime {
        /// `exp - iat`.
        seconds: u64,
    },
}

impl VerifyError {
    /// A stable snake_case name for metrics labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Algorithm { .. } => "algorithm",
            Self::CriticalHeader(_) => "critical_header",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKey { .. } => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::ClaimType(_) => "claim_type",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Issuer { .. } => "issuer",
            Self::Audience { .. } => "audience",
            Self::Type { .. } => "type",
            Self::Lifetime { .. } => "lifetime",
        }
    }
}

/// A JWK as read from a key set: lenient, so keys of other types can be skipped.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

/// Verifies identity assertions against a published key set.
#[derive(Clone)]
pub struct AssertionVerifier {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for AssertionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("AssertionVerifier")
            .field("kids", &kids)
            .finish()
    }
}

// === impl AssertionVerifier ===

impl AssertionVerifier {
    /// A verifier for the keys of a JWKS (`{"keys":[...]}`). Only P-256 signing keys are kept;
    /// keys of other types, curves or algorithms are skipped, since no token signed with
    /// them is accepted anyway. A key set with no usable key is valid: it refuses everything.
    pub fn from_jwks_json(text: &str) -> Result<AssertionVerifier, JwksError> {
        let raw: RawJwks = serde_json::from_str(text)?;
        let mut keys = HashMap::new();
        for jwk in raw.keys {
            if let Some((kid, key)) = usable_key(jwk)? {
                keys.insert(kid, key);
            }
        }
        Ok(AssertionVerifier { keys })
    }

    /// A verifier for the keys of `jwks` (keys with unusable coordinates are skipped).
    pub fn from_jwks(jwks: &Jwks) -> AssertionVerifier {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = decoding_key(&jwk.x, &jwk.y).ok()?;
                Some((jwk.kid.clone(), key))
            })
            .collect();
        AssertionVerifier { keys }
    }

    /// A verifier that accepts the keys of every one of `verifiers` (a connector joins the
    /// key sets received from each edge it is connected to).
    pub fn union<'a>(verifiers: impl IntoIterator<Item = &'a AssertionVerifier>) -> Self {
        let mut keys = HashMap::new();
        for verifier in verifiers {
            for (kid, key) in &verifier.keys {
                keys.entry(kid.clone()).or_insert_with(|| key.clone());
            }
        }
        AssertionVerifier { keys }
    }

    /// The ids of the keys this verifier accepts, sorted.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }

    /// Verifies `token`: signed with ES256 by one of the keys, issued by `expected_issuer`
    /// exactly, for one of `accepted_audiences` (any audience when empty), valid at `now`
    /// within [`LEEWAY`], of type `app`. Returns its claims.
    pub fn verify(
        &self,
        token: &str,
        expected_issuer: &str,
        accepted_audiences: &[String],
        now: SystemTime,
    ) -> Result<AssertionClaims, VerifyError> {
        let (claims, _) = self.verify_typed(
            token,
            expected_issuer,
            accepted_audiences,
            now,
            AssertionClaims::APP_TYPE,
        )?;
        Ok(claims)
    }

    /// Verifies an access-client token like [`AssertionVerifier::verify`], but of type `cli`
    /// (an application assertion is refused) and living at most [`CLI_MAX_TTL`].
    pub fn verify_cli(
        &self,
        token: &str,
        expected_issuer: &str,
        accepted_audiences: &[String],
        now: SystemTime,
    ) -> Result<CliClaims, VerifyError> {
        let (claims, payload) = self.verify_typed(
            token,
            expected_issuer,
            accepted_audiences,
            now,
            CliClaims::CLI_TYPE,
        )?;
        if claims.exp.saturating_sub(claims.iat) > CLI_MAX_TTL.as_secs() {
            return Err(VerifyError::Lifetime {
                seconds: claims.exp.saturating_sub(claims.iat),
            });
        }
        serde_json::from_value(payload).map_err(|e| VerifyError::Malformed(format!("claims: {e}")))
    }

    /// The checks every token type shares, then its `type`; returns the common claims and
    /// the whole payload.
    fn verify_typed(
        &self,
        token: &str,
        expected_issuer: &str,
        accepted_audiences: &[String],
        now: SystemTime,
        expected_type: &'static str,
    ) -> Result<(AssertionClaims, Value), VerifyError> {
        let header = parse_header(token)?;
        let key = self.key_for(&header)?;
        let payload = verify_signature(token, key)?;
        let claims = parse_claims(payload.clone())?;
        check_times(&claims, unix_seconds(now))?;
        if claims.iss != expected_issuer {
            return Err(VerifyError::Issuer {
                got: claims.iss,
                expected: expected_issuer.to_owned(),
            });
        }
        if !accepted_audiences.is_empty()
            && !claims
                .aud
                .iter()
                .any(|aud| accepted_audiences.contains(aud))
        {
            return Err(VerifyError::Audience {
                got: claims.aud,
                accepted: accepted_audiences.to_vec(),
            });
        }
        if claims.r#type != expected_type {
            return Err(VerifyError::Type {
                got: claims.r#type,
                expected: expected_type,
            });
        }
        Ok((claims, payload))
    }

    /// The published key the header names, after refusing any algorithm but ES256.
    fn key_for(&self, header: &Map<String, Value>) -> Result<&DecodingKey, VerifyError> {
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(VerifyError::Malformed("`alg` is not a string".to_owned())),
            None => return Err(VerifyError::Malformed("the header has no `alg`".to_owned())),
        };
        if alg != "ES256" {
            return Err(VerifyError::Algorithm { alg: alg.clone() });
        }
        if let Some(crit) = header.get("crit") {
            return Err(VerifyError::CriticalHeader(crit.to_string()));
        }
        let Some(Value::String(kid)) = header.get("kid") else {
            return Err(VerifyError::MissingKeyId);
        };
        self.keys
            .get(kid)
            .ok_or_else(|| VerifyError::UnknownKey { kid: kid.clone() })
    }
}

/// The keys of a raw JWK worth keeping: `None` for other key types; an error for a P-256
/// key whose coordinates are unusable.
fn usable_key(jwk: RawJwk) -> Result<Option<(String, DecodingKey)>, JwksError> {
    let p256 = jwk.kty.as_deref() == Some("EC")
        && jwk.crv.as_deref() == Some("P-256")
        && jwk.alg.as_deref().is_none_or(|alg| alg == "ES256")
        && jwk
            .key_use
            .as_deref()
            .is_none_or(|key_use| key_use == "sig");
    let Some(kid) = jwk.kid.filter(|_| p256) else {
        return Ok(None);
    };
    let (Some(x), Some(y)) = (jwk.x, jwk.y) else {
        return Err(JwksError::BadKey {
            kid,
            reason: "no x or y",
        });
    };
    match decoding_key(&x, &y) {
        Ok(key) => Ok(Some((kid, key))),
        Err(reason) => Err(JwksError::BadKey { kid, reason }),
    }
}

/// The verification key for base64url coordinates of 32 bytes each.
fn decoding_key(x: &str, y: &str) -> Result<DecodingKey, &'static str> {
    let length_ok = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == 32)
    };
    if !length_ok(x) || !length_ok(y) {
        return Err("x and y must be 32 bytes of base64url each");
    }
    DecodingKey::from_ec_components(x, y).map_err(|_| "x or y is not base64url")
}

/// The header of a compact JWT as a JSON object, after checking the token's shape.
fn parse_header(token: &str) -> Result<Map<String, Value>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed(format!(
            "longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, _, _] = parts.as_slice() else {
        return Err(VerifyError::Malformed(
            "not three dot-separated parts".to_owned(),
        ));
    };
    json_object(header, "header")
}

/// A base64url part of the token decoded as a JSON object.
fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(VerifyError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}

/// Checks the ES256 signature with `key` and returns the payload. Claims are not validated
/// here (see the module doc).
fn verify_signature(token: &str, key: &DecodingKey) -> Result<Value, VerifyError> {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => VerifyError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                VerifyError::Algorithm {
                    alg: "(not ES256)".to_owned(),
                }
            }
            _ => VerifyError::Malformed(error.to_string()),
        }),
    }
}

/// The claims of a verified payload, with the time claims required to be JSON integers.
fn parse_claims(payload: Value) -> Result<AssertionClaims, VerifyError> {
    let Value::Object(object) = &payload else {
        return Err(VerifyError::Malformed(
            "the payload is not a JSON object".to_owned(),
        ));
    };
    for claim in ["exp", "nbf", "iat", "iss", "sub", "aud", "type"] {
        if !object.contains_key(claim) {
            return Err(VerifyError::MissingClaim(claim));
        }
    }
    for claim in ["exp", "nbf", "iat"] {
        if object.get(claim).and_then(Value::as_u64).is_none() {
            return Err(VerifyError::ClaimType(claim));
        }
    }
    serde_json::from_value(payload).map_err(|e| VerifyError::Malformed(format!("claims: {e}")))
}

fn check_times(claims: &AssertionClaims, now: u64) -> Result<(), VerifyError> {
    let leeway = LEEWAY.as_secs();
    if claims.exp.saturating_add(leeway) < now {
        return Err(VerifyError::Expired {
            exp: claims.exp,
            now,
        });
    }
    let not_before = claims.nbf.max(claims.iat);
    if not_before > now.saturating_add(leeway) {
        return Err(VerifyError::NotYetValid { not_before, now });
    }
    Ok(())
}
