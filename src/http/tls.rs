//! HTTPS for the signaling endpoint (WHIP and WHEP require it outside
//! localhost): rustls with the aws-lc-rs provider — the same crypto str0m
//! uses for SRTP (DTLS is OpenSSL's, `crate::dtls`) — TLS 1.2 and 1.3, ALPN `http/1.1`, a certificate chain
//! and key read from PEM files at start (`--tls-cert`, `--tls-key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The acceptor in force, swapped whole when SIGHUP reloads the
/// certificate and key; each connection takes the one current when it
/// arrives.
pub type TlsReload = Arc<arc_swap::ArcSwap<TlsAcceptor>>;

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("--tls-key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate and key do not make a TLS server: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor serving the chain in `cert` (PEM, leaf first) with the
/// private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_mismatched_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("uringcast-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        let other_key_path = dir.join("other-key.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other_key_path, other.signing_key.serialize_pem()).unwrap();

        let error = |cert: &Path, key: &Path| match acceptor(cert, key) {
            Ok(_) => panic!("{} and {} were accepted", cert.display(), key.display()),
            Err(e) => e,
        };
        assert!(acceptor(&cert_path, &key_path).is_ok());
        let missing = error(&dir.join("nope.pem"), &key_path);
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let not_a_cert = error(&key_path, &key_path);
        assert!(
            not_a_cert.to_string().contains("--tls-cert"),
            "{not_a_cert}"
        );
        let not_a_key = error(&cert_path, &cert_path);
        assert!(not_a_key.to_string().contains("--tls-key"), "{not_a_key}");
        let mismatched = error(&cert_path, &other_key_path);
        assert!(matches!(mismatched, TlsError::Config(_)), "{mismatched}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
