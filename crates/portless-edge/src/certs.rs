//! The public listener's certificates: the resolver (static files → ACME → local CA →
//! default, COMMON decision 5), the ACME manager and the tasks that keep both current.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portless_acme::AcmeManager;
use portless_store::Store;
use portless_tls::rustls::ServerConfig;
use portless_tls::{
    LocalCaResolver, PublicResolver, StaticCertificates, public_server_config,
    public_server_config_with_acme,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::edge::EdgeState;
use crate::{EdgeError, EdgeOptions, EdgeTls, PublicTlsOptions};

/// What [`build`] made.
pub(crate) struct PublicCerts {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) acme: Option<Arc<AcmeManager>>,
    pub(crate) statics: Option<Arc<StaticCertificates>>,
}

/// The public TLS config for `options`. Without ACME, served names (`serves`) get local-CA
/// certificates, as before; with ACME, names without a certificate yet get the default.
pub(crate) fn build(
    tls: &EdgeTls,
    options: &PublicTlsOptions,
    store: &Store,
    serves: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Result<PublicCerts, EdgeError> {
    let default = tls.ca.issue(&["localhost".to_owned()])?;
    let mut resolver = PublicResolver::new(default.clone());
    let statics = if options.certificates.is_empty() {
        None
    } else {
        let statics = StaticCertificates::load(options.certificates.clone())?;
        resolver = resolver.with_static(statics.clone());
        Some(statics)
    };
    let acme = match &options.acme {
        Some(acme_options) => {
            let manager = AcmeManager::new(acme_options.clone(), store.clone())?;
            resolver = resolver.with_acme(
                manager.certificates(),
                manager.challenges().alpn_certificates(),
            );
            Some(manager)
        }
        None => {
            resolver =
                resolver.with_local_ca(LocalCaResolver::new(tls.ca.clone(), default, serves));
            None
        }
    };
    let resolver = Arc::new(resolver);
    let config = if acme.is_some() {
        public_server_config_with_acme(resolver)?
    } else {
        public_server_config(resolver)?
    };
    Ok(PublicCerts {
        config,
        acme,
        statics,
    })
}

/// Tells `manager` the names to hold certificates for — exact routes and portal hosts —
/// now and after every route change, until `shutdown`. Left out: passthrough names (their
/// origin holds the only key, and the edge must not obtain one), names whose challenges go
/// to their origin (it manages its own certificates), and names a static file serves.
pub(crate) async fn follow_names(
    manager: Arc<AcmeManager>,
    state: Arc<EdgeState>,
    statics: Option<Arc<StaticCertificates>>,
    portals: Vec<String>,
    mut changes: watch::Receiver<i64>,
    shutdown: CancellationToken,
) {
    loop {
        let mut names = state.routes.exact_names();
        names.extend(portals.iter().cloned());
        names.retain(|name| orders_for(name, &state.options, statics.as_deref()));
        manager.set_names(names);
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// Whether the edge obtains a certificate for `name` itself (see [`follow_names`]).
fn orders_for(name: &str, options: &EdgeOptions, statics: Option<&StaticCertificates>) -> bool {
    !options.passthrough.matches(name)
        && !options.http.challenge_to_origin(name)
        && statics.is_none_or(|s| s.get(name).is_none())
}

/// Reloads the static certificate files when one of them changed (by modification time),
/// until `shutdown`. A file that fails to load keeps the previous certificates served.
pub(crate) async fn watch_static(
    statics: Arc<StaticCertificates>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let stamp = |statics: &StaticCertificates| -> Vec<Option<SystemTime>> {
        statics
            .files()
            .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .collect()
    };
    let mut last = stamp(&statics);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        let now = stamp(&statics);
        if now == last {
            continue;
        }
        match statics.reload() {
            Ok(()) => {
                info!("static certificates reloaded");
                last = now;
            }
            Err(e) => {
                warn!(error = %e, "reloading static certificates failed; keeping the previous ones")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PassthroughHosts;
    use portless_tls::{LocalCa, StaticCertificate};

    #[test]
    fn passthrough_origin_challenge_and_static_names_get_no_order() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::generate("static").unwrap();
        let (chain, key) = ca.issue_pem(&["*.files.test".to_owned()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), chain).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        let statics = StaticCertificates::load(vec![StaticCertificate {
            hostnames: vec!["*.files.test".to_owned()],
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        }])
        .unwrap();
        let mut options = EdgeOptions {
            passthrough: PassthroughHosts::new(["secure.test", "*.e2e.test"]),
            ..EdgeOptions::default()
        };
        options.http.acme_challenge_to_origin = vec!["legacy.test".to_owned()];
        for (name, ordered) in [
            ("app.test", true),
            ("a.b.c.app.test", true),
            ("secure.test", false),
            ("x.e2e.test", false),
            ("legacy.test", false),
            ("www.files.test", false),
            ("files.test", true),
        ] {
            assert_eq!(
                orders_for(name, &options, Some(&statics)),
                ordered,
                "{name}"
            );
        }
        assert!(orders_for("www.files.test", &options, None));
    }
}
