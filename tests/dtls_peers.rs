//! DTLS with RSA and ECDSA peers in every role: a client whose certificate
//! is RSA-2048 (GStreamer, OpenSSL-based encoders) or ECDSA P-256
//! (browsers) connects and gets media whether its offer says `actpass`,
//! `active` or `passive` — so uringcast is DTLS server in the first two and
//! DTLS client in the third. str0m's default DTLS (dimpl) fails every RSA
//! case (see `src/dtls/mod.rs`).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Flags, ServerProc, media_flows, spawn_client};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole, KeyType, Setup, Signaling};

const SETUPS: [Setup; 3] = [Setup::ActPass, Setup::Active, Setup::Passive];
const KEYS: [KeyType; 2] = [KeyType::Rsa2048, KeyType::EcdsaP256];

fn options(key: KeyType, setup: Setup) -> ClientOptions {
    ClientOptions {
        dtls_key: key,
        signaling: Signaling {
            setup,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn rsa_and_ecdsa_peers_get_media_as_dtls_client_and_as_dtls_server() {
    let server = ServerProc::start(&["--shards", "2"]);
    let flags = Flags::default();
    let limit = Duration::from_secs(30);
    let mut pairs = Vec::new();
    for key in KEYS {
        for setup in SETUPS {
            let room = format!("{key:?}-{setup:?}").to_lowercase();
            let publisher = spawn_client(
                &server.base,
                &room,
                ClientRole::Publish,
                options(key, setup),
                &flags,
                limit,
            );
            let viewer = spawn_client(
                &server.base,
                &room,
                ClientRole::Watch,
                options(key, setup),
                &flags,
                limit,
            );
            pairs.push((room, publisher, viewer));
        }
    }
    let sessions = 2 * pairs.len();
    assert!(
        flags.wait_connected(sessions, Duration::from_secs(20)),
        "all {sessions} sessions connected: {}",
        server.stats()
    );
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2000));
    flags.stop.store(true, Ordering::Relaxed);
    for (room, publisher, viewer) in pairs {
        let (publisher, viewer) = (publisher.join(), viewer.join());
        for kind in [Kind::Video, Kind::Audio] {
            let sent = publisher.sent(kind);
            let got = viewer.received(kind).unique();
            assert!(
                sent > 50 && got * 100 >= sent * 95,
                "{room} {kind:?}: {got} of {sent}"
            );
            assert_eq!(viewer.received(kind).summary().corrupt, 0, "{room}");
        }
    }
}

#[test]
fn an_rsa_publisher_reaches_an_ecdsa_viewer() {
    let server = ServerProc::start(&["--shards", "1"]);
    media_flows(
        &server,
        "mixed",
        options(KeyType::Rsa2048, Setup::ActPass),
        options(KeyType::EcdsaP256, Setup::Passive),
    );
}
