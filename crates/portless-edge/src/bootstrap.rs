//! The edge's state directory: local CA, tunnel certificate, public certificates, store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portless_tls::{
    CaPin, KxCounters, LocalCa, LocalCaResolver, public_server_config,
    tunnel_server_config_with_counters,
};

use crate::EdgeError;

/// Where an edge keeps its state: `portless.db` (the store), `ca.pem` and `ca-key.pem`.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.0.join("portless.db")
    }

    /// The CA certificate file, to hand to clients (`curl --cacert`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.0.join(portless_tls::CA_CERT_FILE)
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn ensure(&self) -> Result<(), EdgeError> {
        create_private_dir(&self.0)
    }
}

fn create_private_dir(path: &Path) -> Result<(), EdgeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| EdgeError::Io {
            context: format!(
                "cannot create the state directory {}: choose a writable one with --state-dir",
                path.display()
            ),
            source,
        })
}

/// TLS material of an edge issued by its local CA.
pub struct EdgeTls {
    /// The CA.
    pub ca: Arc<LocalCa>,
    /// Tunnel listener config (TLS 1.3, tunnel ALPN).
    pub tunnel: Arc<portless_tls::rustls::ServerConfig>,
    /// Key-exchange groups negotiated on the tunnel listener.
    pub tunnel_kx: Arc<KxCounters>,
    /// The names in the tunnel certificate.
    pub tunnel_names: Vec<String>,
}

impl EdgeTls {
    /// Issues the tunnel certificate for `names` (plus `localhost` and loopback addresses).
    pub fn from_ca(ca: Arc<LocalCa>, names: &[String]) -> Result<Self, EdgeError> {
        let mut tunnel_names: Vec<String> = names.to_vec();
        for default in ["localhost", "127.0.0.1", "::1"] {
            if !tunnel_names.iter().any(|n| n == default) {
                tunnel_names.push(default.to_owned());
            }
        }
        let tunnel_kx = KxCounters::new();
        let tunnel = tunnel_server_config_with_counters(ca.issue(&tunnel_names)?, &tunnel_kx)?;
        Ok(Self {
            ca,
            tunnel,
            tunnel_kx,
            tunnel_names,
        })
    }

    /// Loads or creates the CA in `dir`, then issues as [`EdgeTls::from_ca`].
    pub fn load(dir: &StateDir, names: &[String]) -> Result<Self, EdgeError> {
        let ca = Arc::new(LocalCa::load_or_create(&dir.0)?);
        Self::from_ca(ca, names)
    }

    /// The pin connectors use to trust this edge.
    pub fn pin(&self) -> CaPin {
        self.ca.pin()
    }

    /// The public listener config: a certificate from the local CA for every hostname
    /// `serves` accepts, issued at its first handshake.
    pub fn public_config(
        &self,
        serves: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Result<Arc<portless_tls::rustls::ServerConfig>, EdgeError> {
        let default = self.ca.issue(&["localhost".to_owned()])?;
        let resolver = LocalCaResolver::new(self.ca.clone(), default, serves);
        Ok(public_server_config(Arc::new(resolver))?)
    }
}
