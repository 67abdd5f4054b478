//! HTTPS on the signaling endpoint (`--tls-cert`, `--tls-key`): a rustls
//! client that trusts only our freshly made certificate gets stats, posts
//! a WHIP offer and deletes the session over TLS 1.3 with ALPN http/1.1;
//! plain HTTP sent to the TLS port and a connection that never starts its
//! handshake are closed and counted. The project's own client (what
//! `uringcast-load` uses) publishes and watches through HTTPS signaling,
//! and refuses a server whose certificate it was not told to trust.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use common::{
    Flags, ServerProc, certificate, closed_by_server, publish_offer, spawn_client, start_https,
};
use rustls::pki_types::{CertificateDer, ServerName};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole, Signaling};

/// One HTTPS request (Connection: close) → (status, head, body, protocol, ALPN).
fn https(
    server: &ServerProc,
    trusted: &CertificateDer<'static>,
    request: &str,
) -> (u16, String, String, String, Vec<u8>) {
    try_https(server, trusted, request).expect("send over TLS")
}

/// [`https`], or the error of a handshake that failed (say, a certificate
/// not trusted).
fn try_https(
    server: &ServerProc,
    trusted: &CertificateDer<'static>,
    request: &str,
) -> std::io::Result<(u16, String, String, String, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).expect("trust our certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let addr = server.base.trim_start_matches("https://");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    // The server closes after answering (Connection: close); a missing
    // close_notify is not an error worth failing on.
    let _ = tls.read_to_end(&mut response);
    let protocol = format!("{:?}", tls.conn.protocol_version());
    let alpn = tls.conn.alpn_protocol().unwrap_or_default().to_vec();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_owned(), body.to_owned(), protocol, alpn))
}

fn stats_over_tls(server: &ServerProc, trusted: &CertificateDer<'static>) -> serde_json::Value {
    let (status, _, body, _, _) = https(
        server,
        trusted,
        "GET /v1/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("stats JSON")
}

#[test]
fn whip_over_https_and_what_is_not_tls_is_closed_and_counted() {
    let (cert, key, der) = certificate("https");
    let server = start_https(&cert, &key, &["--header-timeout", "1s"]);
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let (status, _, body, protocol, alpn) = https(
        &server,
        &der,
        "GET /v1/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(protocol, "Some(TLSv1_3)");
    assert_eq!(alpn, b"http/1.1");

    let offer = publish_offer();
    let (status, head, answer, _, _) = https(
        &server,
        &der,
        &format!(
            "POST /whip/tls HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{offer}",
            offer.len()
        ),
    );
    assert_eq!(status, 201, "{head}\n{answer}");
    assert!(answer.starts_with("v=0"), "{answer}");
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .expect("a Location header")
        .to_owned();
    assert_eq!(stats_over_tls(&server, &der)["sessions"], 1);
    let (status, _, _, _, _) = https(
        &server,
        &der,
        &format!("DELETE {location} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);

    // Plain HTTP to the TLS port: no HTTP answer, the connection is closed.
    let addr = server.base.trim_start_matches("https://").to_owned();
    let mut plain = TcpStream::connect(&addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may close as soon as the first bytes fail the handshake,
    // so a write can meet a closed connection.
    let _ = plain.write_all(format!("GET /v1/stats HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));
    // A connection that never says hello is closed after --header-timeout.
    let mut silent = TcpStream::connect(&addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert!(
        closed_by_server(&mut silent),
        "a silent connection was left open"
    );

    let stats = stats_over_tls(&server, &der);
    assert_eq!(stats["sessions"], 0, "{stats}");
    assert!(
        stats["signaling"]["tls_failures"].as_u64() >= Some(2),
        "{stats}"
    );
    let _ = std::fs::remove_dir_all(cert.parent().expect("dir"));
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_start_with_a_reason() {
    let (cert, _, _) = certificate("wrong-key");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("key");
    let wrong_key = cert.with_file_name("wrong-key.pem");
    std::fs::write(&wrong_key, other.signing_key.serialize_pem()).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_uringcast"))
        .args(["--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&wrong_key)
        .output()
        .expect("run uringcast");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HTTPS"), "{stderr}");
    let _ = std::fs::remove_dir_all(cert.parent().expect("dir"));
}

/// Client options that trust only `cert` for HTTPS signaling.
fn trusting(cert: &CertificateDer<'static>) -> ClientOptions {
    ClientOptions {
        signaling: Signaling {
            roots: Some(ureq::tls::RootCerts::new_with_certs(&[
                ureq::tls::Certificate::from_der(cert.as_ref()).to_owned(),
            ])),
            ..Signaling::default()
        },
        ..ClientOptions::default()
    }
}

#[test]
fn the_project_client_publishes_and_watches_through_https_signaling() {
    let (cert, key, der) = certificate("client");
    let server = start_https(&cert, &key, &[]);
    let trusting = trusting(&der);

    // With the WebPKI roots, a self-signed server is refused before any offer.
    let refused = Client::connect(
        &server.base,
        "tls",
        ClientRole::Publish,
        ClientOptions::default(),
    );
    match refused {
        Ok(_) => panic!("an untrusted certificate was accepted"),
        Err(e) => assert!(e.to_string().contains("UnknownIssuer"), "{e}"),
    }

    let flags = Flags::default();
    let limit = Duration::from_secs(20);
    let publisher = spawn_client(
        &server.base,
        "tls",
        ClientRole::Publish,
        trusting.clone(),
        &flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        "tls",
        ClientRole::Watch,
        trusting,
        &flags,
        limit,
    );
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();
    for kind in [Kind::Audio, Kind::Video] {
        let (got, sent) = (viewer.received(kind).unique_from(1), publisher.sent(kind));
        assert!(
            sent > 0 && got * 100 >= sent * 99,
            "{kind:?}: {got} of {sent}"
        );
    }
    // DELETE goes over HTTPS too.
    assert_eq!(viewer.delete().expect("DELETE"), 200);
    assert_eq!(publisher.delete().expect("DELETE"), 200);
    assert_eq!(stats_over_tls(&server, &der)["sessions"], 0);
    let _ = std::fs::remove_dir_all(cert.parent().expect("dir"));
}

#[test]
fn sighup_swaps_the_certificate_while_a_session_flows() {
    let (cert, key, first) = certificate("reload");
    let server = start_https(&cert, &key, &[]);
    let trusting_first = trusting(&first);
    let flags = Flags::default();
    let limit = Duration::from_secs(30);
    let publisher = spawn_client(
        &server.base,
        "reload",
        ClientRole::Publish,
        trusting_first.clone(),
        &flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        "reload",
        ClientRole::Watch,
        trusting_first,
        &flags,
        limit,
    );
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let before = stats_over_tls(&server, &first);

    // A new certificate and key in the same files, then SIGHUP.
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    let second = made.cert.der().clone();
    server.signal(libc::SIGHUP);
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while try_https(&server, &second, request).map_or(0, |r| r.0) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "new connections get the new certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let old = try_https(&server, &first, request);
    assert!(
        old.as_ref()
            .is_err_and(|e| e.to_string().contains("invalid peer certificate")),
        "the old certificate is no longer presented: {:?}",
        old.map(|r| r.0)
    );
    std::thread::sleep(Duration::from_millis(1000));
    let after = stats_over_tls(&server, &second);
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();

    let forwarded = |s: &serde_json::Value| s["shards"][0]["forwarded"].as_u64().unwrap_or(0);
    assert!(
        forwarded(&after) > forwarded(&before) + 20,
        "media went on across the reload: {} → {}",
        forwarded(&before),
        forwarded(&after)
    );
    assert_eq!(after["sessions"], 2, "no session was dropped");
    for kind in [Kind::Audio, Kind::Video] {
        let (got, sent) = (viewer.received(kind).unique_from(1), publisher.sent(kind));
        assert!(
            sent > 0 && got * 100 >= sent * 99,
            "{kind:?}: {got} of {sent}"
        );
    }
    let _ = std::fs::remove_dir_all(cert.parent().expect("dir"));
}
