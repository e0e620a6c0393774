//! TLS for the node: the HTTP side (`tls_cert_file`, `tls_key_file`),
//! mutual TLS between peers on the Raft port (`peer_tls_ca_file`,
//! `peer_tls_cert_file`, `peer_tls_key_file`), and what the node's own
//! HTTP client trusts.
//!
//! One stack: rustls on ring, for all three.
//!
//! Files are re-read when they change, without a restart: every file is
//! looked at (its modification time and size) at most once per
//! [`CHECK_EVERY`], when a handshake needs it, and a changed set is loaded
//! anew; handshakes from then on use it, connections already open keep
//! theirs. A set that does not load (a half-written file, a key that does
//! not match its certificate) is logged and the previous one kept, so a
//! rotation cannot take a node off the air; at start-up it stops the node.
//!
//! A peer's name. Every peer's certificate must be issued by the cluster CA
//! and name the member it belongs to: a DNS subject alternative name
//! `node-<id>` ([`node_name`]), where `<id>` is the node id the peer proves
//! in its hello (the HMAC challenge on top of TLS). The dialing side checks
//! the accepting side's certificate for the name of the node it dials; the
//! accepting side checks the dialer's once its hello has said who it is.
//! A certificate may name several nodes (one certificate shared by a small
//! cluster), at the cost that any holder can speak as any of them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// How often, at most, a file is looked at for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A TLS file or set of files that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The DNS name a peer's certificate must carry to speak as node `id`.
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// Whether `cert` (DER) carries the name of node `id` ([`node_name`]).
/// Only the name: that a CA the cluster trusts issued it is the
/// handshake's check.
pub fn cert_names_node(cert: &CertificateDer<'_>, id: u64) -> bool {
    let Ok(name) = ServerName::try_from(node_name(id)) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError(format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        ))
    })
}

/// A certificate chain (leaf first) and its key, checked to belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    let certified = CertifiedKey::from_der(chain, der, &provider())
        .map_err(|e| TlsError(format!("{} and {}: {e}", cert.display(), key.display())))?;
    Ok(certified)
}

/// The CA certificates in `path`, as trust roots.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{}: not a CA certificate: {e}", path.display())))?;
    }
    Ok(roots)
}

/// What a watched file looked like: modification time and size.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

struct WatchState<T> {
    value: Arc<T>,
    stamp: Stamp,
    checked: Instant,
}

/// A value built from files, rebuilt when they change (see the module).
pub struct Watched<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    build: Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>,
    state: Mutex<WatchState<T>>,
}

impl<T> Watched<T> {
    /// Builds the value once; an error here is the caller's to report.
    pub fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        build: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Watched<T>, TlsError> {
        let stamp = stamp(&paths);
        let value = Arc::new(build()?);
        Ok(Watched {
            what,
            paths,
            build: Box::new(build),
            state: Mutex::new(WatchState {
                value,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The current value, reloaded first if a file changed since the last
    /// look (at most one look per [`CHECK_EVERY`]).
    pub fn get(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let now = stamp(&self.paths);
            if now != state.stamp {
                match (self.build)() {
                    Ok(value) => {
                        tracing::info!(what = self.what, files = ?self.paths, "reloaded TLS files");
                        state.value = Arc::new(value);
                        state.stamp = now;
                    }
                    // Not retried until the files change again: a set
                    // caught half-written changes again when it is done.
                    Err(e) => {
                        tracing::warn!(what = self.what, error = %e, "changed TLS files do not load; keeping the previous ones");
                        state.stamp = now;
                    }
                }
            }
        }
        state.value.clone()
    }
}

/// The HTTP side's certificate, for every handshake: the current one.
struct ReloadingCert(Watched<CertifiedKey>);

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCert({:?})", self.0.paths)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

/// The HTTP server's TLS: `tls_cert_file` and `tls_key_file`, reloaded.
pub fn http_server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let (c, k) = (cert.to_path_buf(), key.to_path_buf());
    let watched = Watched::new("http", vec![c.clone(), k.clone()], move || {
        load_certified_key(&c, &k)
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ReloadingCert(watched)));
    Ok(config)
}

/// The files of peer TLS: the cluster CA, this node's certificate and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Both sides of a peer link, as the files are now.
pub struct PeerConfigs {
    /// Accepting: a client certificate from the CA is required.
    pub server: Arc<ServerConfig>,
    /// Dialing: the acceptor's certificate from the CA, naming the node dialed.
    pub client: Arc<ClientConfig>,
}

/// Mutual TLS between peers, reloaded when any of its files changes.
#[derive(Clone)]
pub struct PeerTls(Arc<Watched<PeerConfigs>>);

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerTls({:?})", self.0.paths)
    }
}

fn peer_configs(files: &PeerTlsFiles) -> Result<PeerConfigs, TlsError> {
    let roots = Arc::new(load_roots(&files.ca)?);
    let certified = load_certified_key(&files.cert, &files.key)?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| TlsError(format!("{}: {e}", files.ca.display())))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certified.cert.clone(), load_key(&files.key)?)
        .map_err(|e| TlsError(format!("{}: {e}", files.cert.display())))?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certified.cert.clone(), load_key(&files.key)?)
        .map_err(|e| TlsError(format!("{}: {e}", files.cert.display())))?;
    Ok(PeerConfigs {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

impl PeerTls {
    pub fn new(files: PeerTlsFiles) -> Result<PeerTls, TlsError> {
        let paths = vec![files.ca.clone(), files.cert.clone(), files.key.clone()];
        let watched = Watched::new("peer", paths, move || peer_configs(&files))?;
        Ok(PeerTls(Arc::new(watched)))
    }

    /// The configs for a handshake starting now.
    pub fn configs(&self) -> Arc<PeerConfigs> {
        self.0.get()
    }
}

/// What the node's own HTTP client trusts: the public roots, and the extra
/// CA file (the cluster CA), re-read when it changes.
pub struct ClientTrust(Option<Watched<ClientConfig>>);

fn client_config(extra_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = extra_ca {
        for cert in load_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| TlsError(format!("{}: not a CA certificate: {e}", ca.display())))?;
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl ClientTrust {
    /// Trusts `extra_ca` besides the public roots.
    pub fn new(extra_ca: Option<PathBuf>) -> Result<ClientTrust, TlsError> {
        match extra_ca {
            None => Ok(ClientTrust(None)),
            Some(ca) => Ok(ClientTrust(Some(Watched::new(
                "client",
                vec![ca.clone()],
                move || client_config(Some(&ca)),
            )?))),
        }
    }

    /// The config for a connection opened now.
    pub fn config(&self) -> Arc<ClientConfig> {
        match &self.0 {
            Some(watched) => watched.get(),
            None => {
                static PUBLIC: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
                PUBLIC
                    .get_or_init(|| {
                        Arc::new(client_config(None).expect("the public roots make a config"))
                    })
                    .clone()
            }
        }
    }
}

/// Why a TLS handshake on the Raft port failed, as the refusal metric's
/// `reason`: no client certificate, a certificate the cluster CA did not
/// issue (or expired, or not for clients), or anything else (a peer
/// speaking plain TCP, a broken handshake).
pub fn handshake_reason(e: &std::io::Error) -> &'static str {
    let rustls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(rustls::Error::NoCertificatesPresented) => "no_client_cert",
        Some(rustls::Error::InvalidCertificate(_)) => "bad_cert",
        _ => "tls_handshake",
    }
}

#[cfg(test)]
mod tests;
