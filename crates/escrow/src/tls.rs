//! TLS for the escrow API: a private CA created at `init` (the only root clients trust: it is
//! pinned, system roots are never consulted) and a server certificate it signs for the names the
//! escrow is reached by. ECDSA P-256 keys, TLS 1.2/1.3 via rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::datadir::TlsPaths;
use crate::error::EscrowError;
use crate::fsutil;

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> EscrowError + '_ {
    move |e| EscrowError::Internal {
        what: format!("{what}: {e}"),
    }
}

/// Creates the CA and a server certificate valid for `hosts` (DNS names or IP addresses).
pub fn create_ca_and_server(paths: &TlsPaths, hosts: &[String]) -> Result<(), EscrowError> {
    if hosts.is_empty() {
        return Err(EscrowError::invalid(
            "escrow host",
            "at least one host name or address is needed for the certificate",
        ));
    }
    let ca_key = KeyPair::generate().map_err(tls_err("generate the CA key"))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err("CA parameters"))?;
    ca.distinguished_name
        .push(DnType::CommonName, "callseal escrow CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(tls_err("self-sign the CA"))?;

    let server_key = KeyPair::generate().map_err(tls_err("generate the server key"))?;
    let mut sp = CertificateParams::new(hosts.to_vec())
        .map_err(|e| EscrowError::invalid("escrow host", e.to_string()))?;
    sp.distinguished_name
        .push(DnType::CommonName, "callseal escrow");
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.not_before = rcgen::date_time_ymd(2024, 1, 1);
    sp.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let issuer = Issuer::new(ca, &ca_key);
    let server_cert = sp
        .signed_by(&server_key, &issuer)
        .map_err(tls_err("sign the server certificate"))?;

    fsutil::write_atomic_private(&paths.ca_key, ca_key.serialize_pem().as_bytes())?;
    fsutil::write_atomic_public(&paths.ca_cert, ca_cert.pem().as_bytes())?;
    fsutil::write_atomic_private(&paths.server_key, server_key.serialize_pem().as_bytes())?;
    fsutil::write_atomic_public(&paths.server_cert, server_cert.pem().as_bytes())?;
    Ok(())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration from the files written by [`create_ca_and_server`].
pub fn server_config(paths: &TlsPaths) -> Result<Arc<rustls::ServerConfig>, EscrowError> {
    let file_err = |p: &Path, r: String| EscrowError::KeyFile {
        path: p.display().to_string(),
        reason: r,
    };
    let certs = CertificateDer::pem_file_iter(&paths.server_cert)
        .map_err(|e| file_err(&paths.server_cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(&paths.server_cert, e.to_string()))?;
    let key_pem = fsutil::read_private(&paths.server_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| file_err(&paths.server_key, e.to_string()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| file_err(&paths.server_cert, e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// A client configuration trusting exactly the CA in `ca_pem` (pinning).
pub fn client_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, EscrowError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| EscrowError::invalid("CA certificate", e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| EscrowError::invalid("CA certificate", e.to_string()))?;
        n += 1;
    }
    if n == 0 {
        return Err(EscrowError::invalid(
            "CA certificate",
            "the file holds no PEM certificate",
        ));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
