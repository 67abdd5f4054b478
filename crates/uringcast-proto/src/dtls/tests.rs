//! Handshakes between DTLS instances in memory: ours (OpenSSL) with RSA and
//! ECDSA certificates in both roles, against each other and against str0m's
//! default (dimpl), plus the retransmission timer and close_notify.

use std::time::{Duration, Instant};

use str0m::crypto::dtls::{DtlsCert, DtlsProvider};

use super::loopback::{Endpoint as Side, handshake};
use super::{KeyType, OpensslDtls, certificate};

fn assert_connected(c: &Side, s: &Side, client_cert: &DtlsCert, server_cert: &DtlsCert) {
    assert!(c.seen.connected, "client not connected: {:?}", c.seen.error);
    assert!(s.seen.connected, "server not connected: {:?}", s.seen.error);
    assert_eq!(
        c.seen.peer_cert.as_deref(),
        Some(&server_cert.certificate[..])
    );
    assert_eq!(
        s.seen.peer_cert.as_deref(),
        Some(&client_cert.certificate[..])
    );
    let (ck, cp) = c.seen.keying.as_ref().expect("client keying material");
    let (sk, sp) = s.seen.keying.as_ref().expect("server keying material");
    assert_eq!(ck, sk, "both ends derive the same SRTP keys");
    assert_eq!(cp, sp);
    // OpenSSL takes the client's order among ours: GCM either way.
    assert!(cp.starts_with("AEAD_AES_"), "{cp}");
}

fn ours() -> OpensslDtls {
    OpensslDtls::new()
}

fn dimpl() -> &'static dyn DtlsProvider {
    str0m::crypto::from_feature_flags().dtls_provider
}

#[test]
fn an_rsa_client_connects_to_our_ecdsa_server() {
    let (p, rsa, ec) = (ours(), certificate(KeyType::Rsa2048).unwrap(), ecdsa());
    let (c, s) = handshake((&p, &rsa), (&p, &ec)).expect("DTLS instances");
    assert_connected(&c, &s, &rsa, &ec);
    let profile = c.seen.keying.as_ref().map(|k| k.1.as_str());
    assert_eq!(
        profile,
        Some("AEAD_AES_128_GCM"),
        "our own order: 128-bit GCM first"
    );
}

#[test]
fn our_ecdsa_client_connects_to_an_rsa_server() {
    let (p, rsa, ec) = (ours(), certificate(KeyType::Rsa2048).unwrap(), ecdsa());
    let (c, s) = handshake((&p, &ec), (&p, &rsa)).expect("DTLS instances");
    assert_connected(&c, &s, &ec, &rsa);
}

#[test]
fn ecdsa_peers_connect_in_both_roles() {
    let (p, a, b) = (ours(), ecdsa(), ecdsa());
    let (c, s) = handshake((&p, &a), (&p, &b)).expect("DTLS instances");
    assert_connected(&c, &s, &a, &b);
}

#[test]
fn str0ms_default_dtls_interoperates_with_ours_in_both_roles() {
    let (p, a, b) = (ours(), ecdsa(), ecdsa());
    let (c, s) = handshake((dimpl(), &a), (&p, &b)).expect("DTLS instances");
    assert_connected(&c, &s, &a, &b);
    let (c, s) = handshake((&p, &a), (dimpl(), &b)).expect("DTLS instances");
    assert_connected(&c, &s, &a, &b);
}

/// The root cause of issue 10: str0m's default DTLS (dimpl) asks an RSA
/// client for an ECDSA certificate, which it does not have. If a str0m
/// upgrade makes this pass, the OpenSSL provider may no longer be needed.
#[test]
fn str0ms_default_dtls_refuses_an_rsa_client() {
    let (p, rsa, ec) = (ours(), certificate(KeyType::Rsa2048).unwrap(), ecdsa());
    let (c, s) = handshake((&p, &rsa), (dimpl(), &ec)).expect("DTLS instances");
    assert!(!s.seen.connected && !c.seen.connected);
    let error = s.seen.error.clone().unwrap_or_default();
    assert!(error.contains("certificate"), "dimpl's error: {error:?}");
}

#[test]
fn application_data_and_close_notify_reach_the_peer() {
    let (p, a, b) = (ours(), ecdsa(), ecdsa());
    let (mut c, mut s) = handshake((&p, &a), (&p, &b)).expect("DTLS instances");
    assert_eq!(c.dtls.send_application_data(b"sctp bytes"), Ok(10));
    let (to_server, _) = c.drain();
    s.receive(to_server);
    s.drain();
    assert_eq!(s.seen.data, vec![b"sctp bytes".to_vec()]);
    c.dtls.close().unwrap();
    let (to_server, _) = c.drain();
    assert!(c.dtls.is_closed());
    s.receive(to_server);
    s.drain();
    assert!(s.seen.close_notify, "the server saw close_notify");
}

#[test]
fn a_lost_client_hello_is_sent_again_when_the_timer_fires() {
    let p = ours();
    let cert = ecdsa();
    let now = Instant::now();
    let mut c = Side::new(&p, &cert, now).expect("an instance");
    c.dtls.set_active(true);
    let (first, timer) = c.drain();
    assert_eq!(first.len(), 1, "one ClientHello");
    assert!(
        timer > now && timer <= now + Duration::from_secs(2),
        "{timer:?}"
    );
    // Nothing before the timer; a retransmission once it has passed (OpenSSL
    // counts on its own clock, so wait for that too).
    c.dtls.handle_timeout(now).unwrap();
    assert!(c.drain().0.is_empty());
    std::thread::sleep(timer - now + Duration::from_millis(20));
    c.dtls.handle_timeout(Instant::now()).unwrap();
    let (again, next) = c.drain();
    assert_eq!(again.len(), 1, "the ClientHello again");
    assert!(next > timer, "the timer backs off");
}

#[test]
fn junk_instead_of_a_client_hello_connects_nothing_and_panics_nowhere() {
    // A handshake record with a truncated body, then random bytes: the
    // server stays unconnected and at most says why.
    let p = ours();
    let cert = ecdsa();
    let now = Instant::now();
    let mut s = Side::new(&p, &cert, now).expect("an instance");
    s.dtls.set_active(false);
    let junk = vec![
        0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5,
    ];
    let _ = s.dtls.handle_packet(&junk);
    let _ = s.dtls.handle_packet(&[0xff; 300]);
    let (sent, _) = s.drain();
    assert!(!s.seen.connected);
    // At most a fatal alert (content type 21): never a ServerHello.
    assert!(sent.iter().all(|d| d.first() == Some(&21)), "{sent:?}");
}

fn ecdsa() -> DtlsCert {
    certificate(KeyType::EcdsaP256).expect("an ECDSA certificate")
}
