#![allow(clippy::unwrap_used)]

use super::*;

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conveyor-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_by_name() {
    let path = temp_file("empty.pem", "not a certificate\n");
    let err = Trust::with_ca_file(Some(&path)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)",
            path.display()
        )
    );
    let missing = PathBuf::from("/nonexistent/ca.pem");
    let err = Trust::with_ca_file(Some(&missing)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the CA certificates in /nonexistent/ca.pem: "),
        "{err}"
    );
}

#[test]
fn extra_roots_survive_the_round_trip_through_pem() {
    let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x05]);
    let mut pem = String::new();
    pem_encode(&der, &mut pem);
    pem_encode(&der, &mut pem);
    let back: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, vec![der.clone(), der]);
}

#[test]
fn an_untrusted_certificate_is_explained_with_the_flag_that_fixes_it() {
    let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
    assert!(is_untrusted(&io));
    assert_eq!(
        explain(&io),
        format!("invalid peer certificate: UnknownIssuer ({UNTRUSTED_HINT})")
    );
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert!(!is_untrusted(&refused));
    assert!(!explain(&refused).contains("--ca-cert"));
}
