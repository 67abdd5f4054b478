//! A client whose packets reach a different shard than the one its peer
//! lives on: here a NAT rebinding mid-session, chosen so that the client's
//! new 4-tuple hashes to the other shard. Its STUN is handed to the owner,
//! authenticated there, and the other shard is told to route the client's
//! media straight to the owner; the client's nomination from its new
//! address moves the server's sending there, and media sent from then on
//! reaches the viewer. A client that nominated only once (Firefox) sends
//! no nomination from its new address: its check takes the path over once
//! the old address has sent no check for 4 s, and media sent from then on
//! reaches it too.

mod common;

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Flags, Relay, ServerProc, shard_of, spawn_client};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole, Signaling};

#[test]
fn a_rebound_viewer_is_routed_across_shards_and_media_follows_its_new_address() {
    rebound_viewer_gets_media(false);
}

#[test]
fn a_rebound_viewer_that_nominated_once_gets_media_after_the_old_path_fell_silent() {
    rebound_viewer_gets_media(true);
}

/// A publisher and a viewer behind a NAT that rebinds it mid-session to a
/// 4-tuple of the other shard; the viewer nominates once when
/// `nominate_once`, on every check otherwise.
fn rebound_viewer_gets_media(nominate_once: bool) {
    let server = ServerProc::start(&["--shards", "2"]);
    let first = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let first_shard = shard_of(&server, &first);
    // Another upstream socket whose 4-tuple the kernel hashes to the other shard.
    let second = (0..64)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .find(|s| shard_of(&server, s) != first_shard)
        .expect("a socket that reaches the other shard");
    let relay = Relay::start(server.udp, vec![first, second]);

    let limit = Duration::from_secs(30);
    let (publisher_flags, viewer_flags) = (Flags::default(), Flags::default());
    let publisher = spawn_client(
        &server.base,
        "nat",
        ClientRole::Publish,
        ClientOptions::default(),
        &publisher_flags,
        limit,
    );
    let through_nat = ClientOptions {
        via: Some(relay.front),
        signaling: Signaling {
            nominate_once,
            ..Signaling::default()
        },
        ..ClientOptions::default()
    };
    let viewer = spawn_client(
        &server.base,
        "nat",
        ClientRole::Watch,
        through_nat,
        &viewer_flags,
        limit,
    );
    assert!(publisher_flags.wait_connected(1, Duration::from_secs(10)));
    assert!(viewer_flags.wait_connected(1, Duration::from_secs(10)));
    publisher_flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    publisher_flags.send.store(false, Ordering::Relaxed);
    // Let what is in flight arrive before the old mapping dies.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.shard_sum("handed_off"),
        0,
        "before the rebinding nothing crosses"
    );

    // The NAT moves the viewer; its old mapping is dead from now on. What
    // the server sends before the client's next consent check is lost (no
    // server can know the new address sooner), so the publisher pauses.
    relay.switch_to(1);
    // The client's consent checks now come from the new 4-tuple, on the
    // other shard: handed to the owner, authenticated, then routed there;
    // the check nominates the new address, so media follows it.
    assert!(
        server.wait_for(Duration::from_secs(10), |s| {
            s["shards"][1 - first_shard]["handed_off"].as_u64() >= Some(3)
        }),
        "the other shard handed the client's packets to the peer's shard: {}",
        server.stats()
    );
    if nominate_once {
        // No nomination comes: a check takes the path over once the old
        // address has sent no check for 4 s (the relay dropped it).
        assert!(
            server.wait_for(Duration::from_secs(10), |s| {
                s["shards"][first_shard]["path_takeovers"].as_u64() == Some(1)
            }),
            "no check took the silent path over: {}",
            server.stats()
        );
    } else {
        // Its nomination from the new address moved the media.
        let shard = &server.stats()["shards"][first_shard];
        assert_eq!(shard["path_takeovers"].as_u64(), Some(0), "{shard}");
        assert!(shard["path_moves"].as_u64() >= Some(1), "{shard}");
    }
    publisher_flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    publisher_flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    publisher_flags.stop.store(true, Ordering::Relaxed);
    viewer_flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();
    for kind in [Kind::Audio, Kind::Video] {
        let got = viewer.received(kind).unique_from(1);
        let sent = publisher.sent(kind);
        assert!(
            got * 100 >= sent * 99,
            "{kind:?}: {got} of {sent} sent before the rebinding or after the new address authenticated; missing {:?}; {}",
            viewer.received(kind).missing_from(1, sent as u32),
            server.stats()
        );
    }
    // Ending the session frees the route on both shards.
    assert_eq!(viewer.delete().expect("DELETE"), 200);
    assert_eq!(publisher.delete().expect("DELETE"), 200);
    assert!(server.wait_for(Duration::from_secs(5), |s| {
        s["shards"]
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x["peers"] == 0))
    }));
}
