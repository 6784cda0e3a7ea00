//! TLS for every client conveyor runs — the runner's calls to its orchestrators, the
//! `conveyor` CLI's, the forge status reports and the Redis queue: one crypto provider (ring)
//! and one notion of whom to trust, [`Trust`]: the system's roots (named instead by
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when they are set, as for OpenSSL and curl) plus the CA
//! certificates of `--ca-cert`.
//!
//! It lives in the runner crate because the runner is the lowest crate that makes HTTP
//! calls; the orchestrator depends on it already. Postgres connections go through sqlx,
//! which has its own TLS settings in the URL (`sslmode`, `sslrootcert`).

#[cfg(feature = "testing")]
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// What to tell a user whose server's certificate was not trusted.
pub const UNTRUSTED_HINT: &str = "the server's certificate is not signed by a CA this client \
trusts: pass the CA's certificate (PEM) with --ca-cert, or give the server a certificate \
from a public CA";

/// Makes ring the process's rustls provider. Both binaries call it first thing; calling it
/// again does nothing. Clients built here name ring themselves, so a library user who never
/// calls it still gets working HTTP clients; the Redis client relies on the process default.
pub fn install_crypto_provider() {
    // An error only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The installed provider, or ring.
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Why a client could not be set up to trust what it was told to.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA certificates in {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Whom a client trusts: the system's roots plus the CA certificates of `--ca-cert`.
#[derive(Clone, Default)]
pub struct Trust {
    extra: Vec<CertificateDer<'static>>,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("ca_file", &self.ca_file)
            .field("extra", &self.extra.len())
            .finish()
    }
}

impl Trust {
    /// The system's roots only.
    pub fn system() -> Trust {
        Trust::default()
    }

    /// The system's roots plus every certificate in the PEM file `ca_cert`, when one is given.
    pub fn with_ca_file(ca_cert: Option<&Path>) -> Result<Trust, TlsError> {
        let Some(path) = ca_cert else {
            return Ok(Trust::system());
        };
        let read = |reason: String| TlsError::Read {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| read(e.to_string()))?;
        let extra = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read(e.to_string()))?;
        if extra.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        Ok(Trust {
            extra,
            ca_file: Some(path.to_path_buf()),
        })
    }

    /// The `--ca-cert` file, if any (the orchestrator also hands it to Postgres).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The roots: the system's and the extra ones.
    fn roots(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        system_roots().iter().chain(&self.extra)
    }

    /// A rustls client configuration over these roots, with this process's provider.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let mut store = RootCertStore::empty();
        let (_, ignored) = store.add_parsable_certificates(self.roots().cloned());
        if ignored > 0 {
            tracing::debug!(ignored, "some root certificates could not be used");
        }
        Ok(ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth())
    }

    /// An HTTP client builder that trusts these roots; callers add timeouts and the like.
    pub fn http(&self) -> Result<reqwest::ClientBuilder, TlsError> {
        Ok(reqwest::Client::builder().tls_backend_preconfigured(self.client_config()?))
    }

    /// A Redis client for `url`; a `rediss://` one trusts these roots.
    pub fn redis(&self, url: &str) -> redis::RedisResult<redis::Client> {
        if !url.starts_with("rediss://") && !url.starts_with("valkeys://") {
            return redis::Client::open(url);
        }
        redis::Client::build_with_tls(url, self.redis_certificates())
    }

    /// These roots as the redis crate takes them (PEM, used instead of the system's).
    pub fn redis_certificates(&self) -> redis::TlsCertificates {
        let mut pem = String::new();
        for der in self.roots() {
            pem_encode(der, &mut pem);
        }
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.into_bytes()),
        }
    }
}

/// The system's roots, read once per process (`SSL_CERT_FILE` and `SSL_CERT_DIR` name them
/// instead when set). A system without any leaves only `--ca-cert` to trust.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("reading the system's CA certificates: {e}");
        }
        found.certs
    })
}

fn pem_encode(der: &CertificateDer<'_>, out: &mut String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
}

/// An HTTP client builder that trusts exactly the certificate `cert`, whatever name the
/// server is reached by: how `conveyor up`'s own runners reach its HTTPS server on a
/// loopback address that the certificate need not name.
pub fn pinned_http(cert: CertificateDer<'static>) -> Result<reqwest::ClientBuilder, TlsError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(config))
}

/// Accepts one certificate, byte for byte, and checks the handshake was signed by its key.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `e`, or an error it was caused by, is a peer certificate this client rejected.
pub fn is_untrusted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if matches!(tls_error(c), Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The rustls error `e` is or wraps: I/O errors carry it inside, and the redis crate hands
/// its causes on as `Arc`s.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        Some(tls)
    } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
        io.get_ref().and_then(|inner| tls_error(inner))
    } else {
        e.downcast_ref::<Shared>()
            .and_then(|shared| tls_error(shared.as_ref()))
    }
}

/// An error and its causes in one line — reqwest's own message names only the request — with
/// a hint when the server's certificate was not trusted.
pub fn explain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    if is_untrusted(e) {
        text.push_str(&format!(" ({UNTRUSTED_HINT})"));
    }
    text
}

#[cfg(test)]
mod tests;
