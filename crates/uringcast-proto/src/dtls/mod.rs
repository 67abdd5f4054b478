//! DTLS for every session, through OpenSSL, plugged into str0m's crypto
//! provider: this module owns the [`DtlsProvider`] str0m is built with and
//! the certificates it presents.
//!
//! Why not str0m's default: str0m 0.25's DTLS is the `dimpl` crate, which is
//! ECDSA-only by construction. Its DTLS 1.2 CertificateRequest offers only
//! the signature algorithms of `SignatureAndHashAlgorithm::supported()`
//! (ECDSA with SHA-256/384, hard-coded, not taken from the crypto provider),
//! its verifier allow-list (`check_verify_scheme`) has no RSA entry, and as a
//! client it offers only `TLS_ECDHE_ECDSA_*` suites. A peer whose certificate
//! is RSA — GStreamer's `dtlsenc` and most OpenSSL-based encoders make
//! RSA-2048 — therefore sends no certificate when we are the DTLS server
//! ("no client certificate received") and finds no common suite when we are
//! the client. None of that is reachable through dimpl's or str0m's public
//! API, so the fix at the right depth is str0m's own extension point:
//! [`CryptoProvider::dtls_provider`]. Ours runs DTLS 1.2 on OpenSSL (the
//! system's libssl, as Janus and GStreamer do), which accepts RSA, RSA-PSS
//! and ECDSA peers in both roles. Everything else — SRTP, the STUN HMAC, the
//! fingerprint hash — stays on str0m's aws-lc-rs provider, and our own
//! certificate stays ECDSA P-256 (aiortc as DTLS client offers only ECDSA
//! suites).
//!
//! Upstream, the fix belongs in dimpl: derive the CertificateRequest's
//! `signature_algorithms` from what the provider's `SignatureVerifier` can
//! verify, add RSA PKCS#1 v1.5 and PSS (SHA-256/384) to the verify
//! allow-list with an aws-lc-rs verifier, and offer
//! `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` (verifying an RSA
//! ServerKeyExchange signature) as a client.
//!
//! What OpenSSL does that the rest of the core does not: it reads the wall
//! clock for its retransmission timer and draws from its own CSPRNG. The
//! instance maps the timer onto str0m's `now` (see [`instance`]).

mod instance;
pub mod loopback;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions};
use openssl::ssl::{SslSessionCacheMode, SslVerifyMode, SslVersion};
use openssl::x509::{X509, X509NameBuilder};
use str0m::crypto::dtls::{DtlsCert, DtlsImplError, DtlsInstance, DtlsProvider, DtlsVersion};
use str0m::crypto::{CryptoError, CryptoProvider};

/// Why a certificate or a DTLS context could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DtlsSetupError {
    #[error("OpenSSL: {0}")]
    Openssl(#[from] ErrorStack),
    #[error("DTLS version {0} is not supported (only DTLS 1.2)")]
    Version(DtlsVersion),
}

/// The key type of a certificate made by [`certificate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256: what this server presents.
    EcdsaP256,
    /// RSA-2048, as GStreamer and many OpenSSL-based peers present.
    Rsa2048,
}

/// A fresh self-signed certificate (30 days, CN "uringcast") with its key,
/// in DER, for str0m's `set_dtls_cert`. Its identity is the SDP
/// fingerprint, so nothing else in it matters to a peer.
pub fn certificate(key: KeyType) -> Result<DtlsCert, DtlsSetupError> {
    let pkey: PKey<Private> = match key {
        KeyType::EcdsaP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
    };
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "uringcast")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let mut x509 = X509::builder()?;
    x509.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
    x509.set_serial_number(&serial)?;
    x509.set_subject_name(&name)?;
    x509.set_issuer_name(&name)?;
    x509.set_pubkey(&pkey)?;
    x509.set_not_before(&not_before)?;
    x509.set_not_after(&not_after)?;
    x509.sign(&pkey, MessageDigest::sha256())?;
    Ok(DtlsCert {
        certificate: x509.build().to_der()?,
        private_key: pkey.private_key_to_pkcs8()?,
    })
}

/// str0m's aws-lc-rs provider with DTLS swapped for [`OpensslDtls`]: what
/// every `Rtc` of the server and of the project's client is built with.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    static DTLS: OpensslDtls = OpensslDtls::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                dtls_provider: &DTLS,
                ..str0m::crypto::from_feature_flags()
            })
        })
        .clone()
}

/// The ciphers a peer may pick, strongest and cheapest first. Both key
/// types, so either role works with an RSA or an ECDSA peer.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
    ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
    ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";

/// SRTP protection profiles, GCM first (cheaper per packet here: see
/// DESIGN.md), then the one every WebRTC stack has.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";

/// One OpenSSL context per certificate: building one parses the key, so
/// contexts are kept for the few certificates a process presents (the
/// server has one; tests make a handful).
#[derive(Debug, Default)]
struct Contexts {
    by_cert: Vec<(Vec<u8>, SslContext)>,
}

/// Contexts kept at once; the oldest goes first.
const CONTEXTS_KEPT: usize = 8;

impl Contexts {
    fn get(&mut self, cert: &DtlsCert) -> Result<SslContext, DtlsSetupError> {
        if let Some((_, ctx)) = self
            .by_cert
            .iter()
            .find(|(der, _)| *der == cert.certificate)
        {
            return Ok(ctx.clone());
        }
        let ctx = build_context(cert)?;
        if self.by_cert.len() == CONTEXTS_KEPT {
            self.by_cert.remove(0);
        }
        self.by_cert.push((cert.certificate.clone(), ctx.clone()));
        Ok(ctx)
    }
}

fn build_context(cert: &DtlsCert) -> Result<SslContext, DtlsSetupError> {
    let mut b = SslContextBuilder::new(SslMethod::dtls())?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_cipher_list(CIPHERS)?;
    b.set_groups_list("X25519:P-256:P-384")?;
    // OpenSSL's API returns true on failure here.
    if b.set_tlsext_use_srtp(SRTP_PROFILES).is_err() {
        return Err(DtlsSetupError::Openssl(ErrorStack::get()));
    }
    let (x509, key) = (
        X509::from_der(&cert.certificate)?,
        PKey::private_key_from_der(&cert.private_key)?,
    );
    b.set_certificate(&x509)?;
    b.set_private_key(&key)?;
    b.check_private_key()?;
    // The peer's identity is the fingerprint in its SDP, which str0m checks
    // against the certificate we hand it (Output::PeerCert): accept any
    // self-signed certificate here, but require one in both roles.
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    // ICE has already checked return routability: no cookie exchange, no
    // resumption, and the MTU is str0m's, not a socket's.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
    // An idle connection holds no 17 KB read and write buffers.
    b.set_mode(SslMode::RELEASE_BUFFERS);
    Ok(b.build())
}

/// str0m's [`DtlsProvider`] on OpenSSL: DTLS 1.2, RSA and ECDSA peers,
/// DTLS-SRTP. Stateless but for the contexts it keeps per certificate.
#[derive(Debug)]
pub struct OpensslDtls {
    contexts: Mutex<Contexts>,
}

impl OpensslDtls {
    /// A provider with no context yet (one is built per certificate).
    pub const fn new() -> Self {
        Self {
            contexts: Mutex::new(Contexts {
                by_cert: Vec::new(),
            }),
        }
    }
}

impl Default for OpensslDtls {
    fn default() -> Self {
        Self::new()
    }
}

impl DtlsProvider for OpensslDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        certificate(KeyType::EcdsaP256)
            .map_err(|e| tracing::warn!(error = %e, "cannot make a DTLS certificate"))
            .ok()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let setup = || -> Result<_, DtlsSetupError> {
            if !matches!(dtls_version, DtlsVersion::Dtls12 | DtlsVersion::Auto) {
                return Err(DtlsSetupError::Version(dtls_version));
            }
            let ctx = self
                .contexts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(cert)?;
            Ok(instance::Instance::new(&ctx, now, mtu))
        };
        match setup() {
            Ok(instance) => Ok(Box::new(instance)),
            Err(e) => Err(CryptoError::Other(format!("DTLS setup: {e}"))),
        }
    }
}

/// The error str0m is given when OpenSSL fails a handshake (the reason is
/// logged where it happens): a fatal `handshake_failure` alert, which is
/// also what OpenSSL sends the peer.
fn handshake_failed() -> DtlsImplError {
    DtlsImplError::SecurityError(dimpl::SecurityError::FatalAlert { description: 40 })
}
