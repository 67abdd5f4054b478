//! End to end over real UDP on loopback: one WHIP publisher (synthetic VP8 +
//! Opus-sized audio), several WHEP viewers, through the real binary. Checks
//! delivery (≥ 99 %), byte-identical payloads (the trailer's checksum), and
//! for two shards that the cross-shard path carried the packets.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Flags, ServerProc, spawn_client};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole};

const SEND_FOR: Duration = Duration::from_secs(4);

/// Publishes to `viewers` viewers through `server`, returns the publisher and viewers.
fn fan_out(server: &ServerProc, room: &str, viewers: usize) -> (Client, Vec<Client>) {
    let flags = Flags::default();
    let limit = Duration::from_secs(30);
    let options = ClientOptions::default();
    let publisher = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        options.clone(),
        &flags,
        limit,
    );
    let watchers: Vec<_> = (0..viewers)
        .map(|_| {
            spawn_client(
                &server.base,
                room,
                ClientRole::Watch,
                options.clone(),
                &flags,
                limit,
            )
        })
        .collect();
    assert!(
        flags.wait_connected(viewers + 1, Duration::from_secs(10)),
        "all {} clients connect (got {})",
        viewers + 1,
        flags.connected.load(Ordering::Relaxed)
    );
    // Give the server a moment to see every DTLS handshake complete too.
    std::thread::sleep(Duration::from_millis(300));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(SEND_FOR);
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewers = watchers.into_iter().map(|w| w.join()).collect();
    (publisher, viewers)
}

fn assert_delivery(publisher: &Client, viewers: &[Client]) {
    for kind in [Kind::Audio, Kind::Video] {
        let sent = publisher.sent(kind);
        assert!(sent > 100, "{kind:?}: the publisher sent {sent} packets");
        for (i, viewer) in viewers.iter().enumerate() {
            let got = viewer.received(kind);
            let summary = got.summary();
            assert_eq!(
                summary.corrupt, 0,
                "viewer {i} {kind:?}: payloads arrive byte-identical"
            );
            assert_eq!(summary.duplicates, 0, "viewer {i} {kind:?}: no duplicates");
            let unique = got.unique_from(1);
            assert!(
                unique * 100 >= sent * 99,
                "viewer {i} {kind:?}: {unique} of {sent} packets arrived (need ≥ 99 %)"
            );
        }
    }
}

fn one_publisher_three_viewers(io: &str) {
    let server = ServerProc::start(&["--shards", "1", "--io", io]);
    let (publisher, viewers) = fan_out(&server, "fanout", 3);
    assert_delivery(&publisher, &viewers);
    let stats = server.stats();
    assert_eq!(stats["shards"][0]["io"], io, "the asked backend ran");
    let forwarded = server.shard_sum("forwarded");
    let sent = publisher.sent(Kind::Audio) + publisher.sent(Kind::Video);
    assert!(
        forwarded >= sent * 3 * 99 / 100,
        "forwarded {forwarded} for {sent} sent to 3 viewers"
    );
    let report = viewers[0].report();
    eprintln!(
        "{io}: sent {sent}, forwarded {forwarded}, viewer 0 video latency p50 {} µs p99 {} µs, setup {:?} ms",
        report.video.latency_p50_us, report.video.latency_p99_us, report.setup_ms
    );
}

#[test]
fn uring_backend_delivers_to_every_viewer() {
    one_publisher_three_viewers("uring");
}

#[test]
fn mmsg_backend_delivers_to_every_viewer() {
    one_publisher_three_viewers("mmsg");
}

#[test]
fn two_shards_carry_packets_across() {
    let server = ServerProc::start(&["--shards", "2"]);
    // The kernel spreads client 4-tuples over the two sockets; add viewers
    // until both shards hold a peer (bounded).
    let flags = Flags::default();
    let limit = Duration::from_secs(30);
    let options = ClientOptions::default();
    let room = "cross";
    let publisher = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        options.clone(),
        &flags,
        limit,
    );
    let mut watchers = Vec::new();
    for _ in 0..12 {
        watchers.push(spawn_client(
            &server.base,
            room,
            ClientRole::Watch,
            options.clone(),
            &flags,
            limit,
        ));
        assert!(
            flags.wait_connected(watchers.len() + 1, Duration::from_secs(10)),
            "clients connect"
        );
        let stats = server.stats();
        let on_both = stats["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .all(|s| s["peers"].as_u64() > Some(0));
        if on_both && watchers.len() >= 3 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(SEND_FOR);
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewers: Vec<Client> = watchers.into_iter().map(|w| w.join()).collect();
    assert_delivery(&publisher, &viewers);
    let stats = server.stats();
    let peers: Vec<u64> = stats["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["peers"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        peers.iter().all(|&p| p > 0),
        "peers on both shards: {peers:?}"
    );
    let sent = publisher.sent(Kind::Audio) + publisher.sent(Kind::Video);
    let out = server.shard_sum("cross_shard_out");
    let inn = server.shard_sum("cross_shard_in");
    assert!(
        out * 100 >= sent * 99,
        "cross-shard queue carried {out} of {sent} packets"
    );
    assert_eq!(out, inn, "every packet queued across was received across");
    assert_eq!(server.shard_sum("drop_queue_full"), 0);
    // Routes and keyframe requests have a lane of their own: every shard
    // reports `control_lost`, and none was lost.
    let stats = server.stats();
    let shards = stats["shards"].as_array().expect("shards");
    assert!(
        shards.iter().all(|s| s["control_lost"].as_u64() == Some(0)),
        "{shards:?}"
    );

    // DELETE reaches the shard that holds each session.
    for client in viewers.iter().chain(std::iter::once(&publisher)) {
        assert_eq!(client.delete().expect("DELETE"), 200);
    }
    assert!(
        server.wait_for(Duration::from_secs(5), |s| {
            s["sessions"] == 0
                && s["shards"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|x| x["peers"] == 0))
        }),
        "every shard dropped its peers: {}",
        server.stats()
    );
}
