//! The ACME account (created once per directory, kept in the store) and one order: one
//! hostname, its challenge answered by the edge's listeners, the certificate downloaded.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use portless_store::{Store, StoredCertificate};
use tracing::{debug, info};

use crate::cert::to_unix;
use crate::http::AcmeHttp;
use crate::{AcmeError, AcmeOptions, ChallengeKind, Challenges};

/// The account at the configured directory: the stored one, or a new one (then stored).
pub(crate) async fn account(options: &AcmeOptions, store: &Store) -> Result<Account, AcmeError> {
    let directory = options.directory.url().to_owned();
    let http = AcmeHttp::new(options.ca_file.as_deref())?;
    if let Some(json) = store.acme_account(&directory).await? {
        let credentials: AccountCredentials =
            serde_json::from_str(&json).map_err(|e| AcmeError::Config(format!(
                "the stored ACME account for {directory} is unreadable ({e}); delete its row in acme_accounts to create a new one"
            )))?;
        return Account::builder_with_http(Box::new(http))
            .from_credentials(credentials)
            .await
            .map_err(AcmeError::protocol("loading the stored account"));
    }
    let contact = options
        .email
        .as_ref()
        .map(|email| format!("mailto:{email}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = options
        .eab
        .as_ref()
        .map(|eab| ExternalAccountKey::new(eab.kid.clone(), &eab.hmac_key));
    let (_, credentials) = Account::builder_with_http(Box::new(http.clone()))
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(AcmeError::protocol(format!(
            "creating an account at {directory}"
        )))?;
    let json = serde_json::to_string(&credentials)
        .map_err(|e| AcmeError::Config(format!("cannot serialize the account ({e})")))?;
    let kept = store
        .put_acme_account(&directory, &json, to_unix(SystemTime::now()))
        .await?;
    info!(%directory, "ACME account created");
    // Another edge may have stored its account first: use that one, as every edge must.
    let credentials: AccountCredentials = serde_json::from_str(&kept)
        .map_err(|e| AcmeError::Config(format!("the stored ACME account is unreadable ({e})")))?;
    Account::builder_with_http(Box::new(http))
        .from_credentials(credentials)
        .await
        .map_err(AcmeError::protocol("loading the account"))
}

/// Removes the answers of one order when it ends, however it ends.
struct Published {
    challenges: Arc<Challenges>,
    tokens: Vec<String>,
    alpn_name: Option<String>,
}

impl Drop for Published {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.challenges.remove_http(token);
        }
        if let Some(name) = &self.alpn_name {
            self.challenges.alpn_certificates().remove(name);
        }
    }
}

fn acme_type(kind: ChallengeKind) -> ChallengeType {
    match kind {
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        ChallengeKind::Http01 => ChallengeType::Http01,
    }
}

/// Orders a certificate for `name`, answering its challenge with the first of `kinds` the CA
/// offers. `replaces` names the certificate being renewed (ARI).
pub(crate) async fn obtain(
    account: &Account,
    options: &AcmeOptions,
    challenges: &Arc<Challenges>,
    name: &str,
    replaces: Option<CertificateIdentifier<'static>>,
) -> Result<StoredCertificate, AcmeError> {
    let step = |what: &str| AcmeError::protocol(format!("{what} for {name}"));
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut new_order = NewOrder::new(&identifiers);
    if let Some(replaces) = replaces {
        new_order = new_order.replaces(replaces);
    }
    let mut order = match account.new_order(&new_order).await {
        Ok(order) => order,
        // A CA without ARI (or refusing `replaces`) still issues a plain order.
        Err(instant_acme::Error::Unsupported(_)) => account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(step("creating an order"))?,
        Err(e) => return Err(step("creating an order")(e)),
    };
    let mut published = Published {
        challenges: challenges.clone(),
        tokens: Vec::new(),
        alpn_name: None,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(step("reading an authorization"))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(AcmeError::Order {
                    name: name.to_owned(),
                    reason: format!("authorization is {other:?}"),
                });
            }
        }
        let offered: Vec<ChallengeType> =
            authz.challenges.iter().map(|c| c.r#type.clone()).collect();
        let Some(kind) = options
            .challenges
            .iter()
            .copied()
            .find(|kind| offered.contains(&acme_type(*kind)))
        else {
            return Err(AcmeError::Order {
                name: name.to_owned(),
                reason: format!(
                    "the CA offers none of the enabled challenges ({:?}); enable another in tls.acme.challenge",
                    options.challenges
                ),
            });
        };
        let Some(mut challenge) = authz.challenge(acme_type(kind)) else {
            continue;
        };
        let key_authorization = challenge.key_authorization();
        match kind {
            ChallengeKind::Http01 => {
                challenges.put_http(&challenge.token, key_authorization.as_str());
                published.tokens.push(challenge.token.clone());
            }
            ChallengeKind::TlsAlpn01 => {
                let cert = portless_tls::tls_alpn_challenge_cert(
                    name,
                    key_authorization.digest().as_ref(),
                )?;
                challenges.alpn_certificates().insert(name, cert);
                published.alpn_name = Some(name.to_owned());
            }
        }
        debug!(name, challenge = %kind, "challenge published");
        challenge
            .set_ready()
            .await
            .map_err(step("answering the challenge"))?;
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(options.order_timeout);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(step("waiting for validation"))?;
    if status != OrderStatus::Ready {
        let reason = match &order.state().error {
            Some(problem) => problem.to_string(),
            None => format!("the order is {status:?} (the challenge was not validated)"),
        };
        return Err(AcmeError::Order {
            name: name.to_owned(),
            reason,
        });
    }
    drop(published);
    let key_pem = order.finalize().await.map_err(step("finalizing"))?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(step("downloading the certificate"))?;
    let now = to_unix(SystemTime::now());
    let mut stored = StoredCertificate {
        hostname: name.to_owned(),
        chain_pem,
        key_pem,
        not_before: 0,
        not_after: 0,
        issuer: options.directory.url().to_owned(),
        updated_at: now,
    };
    let held = crate::cert::Held::from_stored(&stored)?;
    stored.not_before = to_unix(held.not_before);
    stored.not_after = to_unix(held.not_after);
    info!(name, not_after = stored.not_after, "certificate issued");
    Ok(stored)
}
