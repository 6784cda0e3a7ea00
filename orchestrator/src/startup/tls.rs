//! HTTPS for `conveyor serve` and `conveyor up` (`--tls-cert`, `--tls-key`): the certificate
//! chain and key read from PEM files into a rustls server configuration, and a listener for
//! `axum::serve` that hands it a connection once its TLS handshake is done — so axum's own
//! connection handling and graceful shutdown serve HTTPS as they serve HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::StartupError;
use crate::http::ClientAddr;

/// How long a client may take over its handshake; a slow one holds only its own task.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Connections whose handshake is done, waiting for axum to take them.
const READY: usize = 64;

/// What a node serves HTTPS with.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    cert: CertificateDer<'static>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Reads the certificate chain (`cert`, the server's certificate first) and its private
    /// key (`key`), both PEM.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, StartupError> {
        let tls_err = StartupError::Tls;
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_err(pem_problem(cert, "certificate", &e)))?;
        let Some(first) = chain.first().cloned() else {
            return Err(tls_err(pem_problem(
                cert,
                "certificate",
                &pem::Error::NoItemsFound,
            )));
        };
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| tls_err(pem_problem(key, "private key", &e)))?;
        let provider = conveyor_runner::tls::provider();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => tls_err(format!(
                    "the private key {} does not belong to the certificate {}",
                    key.display(),
                    cert.display()
                )),
                other => tls_err(format!(
                    "the certificate {} or the key {} cannot be used: {other}",
                    cert.display(),
                    key.display()
                )),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            cert: first,
        })
    }

    /// The server's own certificate (what `up`'s local runners pin).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A listener for `axum::serve` that speaks TLS on `tcp`.
    pub fn listen(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (ready, incoming) = mpsc::channel(READY);
        let acceptor = TlsAcceptor::from(self.config.clone());
        tokio::spawn(accept_loop(tcp, acceptor, ready));
        Ok(TlsListener { incoming, addr })
    }
}

/// Why a PEM file could not be used, naming it.
fn pem_problem(path: &Path, what: &str, e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => format!(
            "{} holds no {what}: expected PEM (-----BEGIN {}-----)",
            path.display(),
            if what == "certificate" {
                "CERTIFICATE"
            } else {
                "PRIVATE KEY"
            }
        ),
        pem::Error::Io(io) => format!("cannot read the {what} {}: {io}", path.display()),
        other => format!("the {what} {} is not valid PEM: {other}", path.display()),
    }
}

/// Connections over TLS, for `axum::serve`.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Accepts TCP connections and shakes hands with each in a task of its own, until the
/// listener is dropped (axum drops it when it shuts down).
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = ready.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// As axum does for plain TCP: a connection's own failure is skipped; anything else (too
/// many open files) waits a second rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
