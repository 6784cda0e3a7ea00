//! `serve`'s and `up`'s HTTPS flags, `--tls-cert` and `--tls-key`.

use std::path::PathBuf;

use crate::startup::{ServerTls, StartupError};

// `serve`'s and `up`'s HTTPS flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, env = "CONVEYOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "CONVEYOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The certificate to serve HTTPS with, if any; a file that cannot be used is an error
    /// naming it.
    pub fn load(&self) -> Result<Option<ServerTls>, StartupError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => ServerTls::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }
}
