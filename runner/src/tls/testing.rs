//! Test helpers (feature `testing`): a CA and a server certificate for `localhost` and
//! `127.0.0.1` made at test time, and a private Redis that speaks only TLS with them.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Certificates written to a directory, as PEM files.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed `cert`.
    pub ca: PathBuf,
    /// The server's certificate, for `localhost` and `127.0.0.1`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// A CA that signed nothing here: trusting it instead of `ca` must fail.
    pub other_ca: PathBuf,
}

impl Pki {
    /// Generates the certificates into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("certificate dir");
        let (ca_pem, issuer) = ca("conveyor test CA");
        let (other_pem, _) = ca("conveyor unrelated CA");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("valid names");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let key = KeyPair::generate().expect("key pair");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            other_ca: dir.join("other-ca.pem"),
        };
        std::fs::write(&pki.ca, ca_pem).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        std::fs::write(&pki.other_ca, other_pem).unwrap();
        pki
    }
}

/// A self-signed CA: its certificate (PEM) and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A private `redis-server` that speaks only TLS (`--port 0 --tls-port N`) with a [`Pki`]'s
/// server certificate, asking clients for none; killed when dropped.
pub struct TlsRedis {
    child: Child,
    pub port: u16,
}

impl TlsRedis {
    /// Starts it on a free port; returns once it accepts connections.
    pub fn start(pki: &Pki) -> TlsRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&pki.cert)
            .arg("--tls-key-file")
            .arg(&pki.key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args(["--tls-auth-clients", "no", "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = TlsRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server --tls-port {port} did not start (built without TLS?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// `rediss://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
