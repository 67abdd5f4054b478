//! Sessions end for every reason they should, and all their state goes with
//! them: DELETE, a client that vanishes, a session that never connects, a
//! publisher replaced by another (viewers keep playing), and SIGTERM.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Flags, ServerProc, http, publish_offer, spawn_client, spawn_pair};
use uringcast::client::payload::Kind;
use uringcast::client::{ClientOptions, ClientRole};

#[test]
fn delete_frees_a_connected_session() {
    let server = ServerProc::start(&["--shards", "1"]);
    let flags = Flags::default();
    let publisher = spawn_client(
        &server.base,
        "del",
        ClientRole::Publish,
        ClientOptions::default(),
        &flags,
        Duration::from_secs(20),
    );
    assert!(flags.wait_connected(1, Duration::from_secs(10)));
    assert!(server.wait_for(Duration::from_secs(5), |s| s["shards"][0]["peers"] == 1));
    flags.stop.store(true, Ordering::Relaxed);
    let client = publisher.join();
    assert_eq!(client.delete().expect("DELETE"), 200);
    assert_eq!(client.delete().expect("DELETE"), 404);
    assert!(
        server.wait_for(Duration::from_secs(5), |s| s["shards"][0]["peers"] == 0
            && s["sessions"] == 0),
        "the shard dropped the peer: {}",
        server.stats()
    );
}

#[test]
fn a_vanished_client_is_reaped_and_a_never_connected_one_expires() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--ice-timeout",
        "1500ms",
        "--connect-timeout",
        "1s",
    ]);
    let flags = Flags::default();
    let publisher = spawn_client(
        &server.base,
        "gone",
        ClientRole::Publish,
        ClientOptions::default(),
        &flags,
        Duration::from_secs(20),
    );
    assert!(flags.wait_connected(1, Duration::from_secs(10)));
    // An offer whose client never sends STUN.
    let (status, _, _) = http(
        &server.base,
        "POST",
        "/whip/never",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(status, 201);
    assert!(server.wait_for(Duration::from_secs(3), |s| s["sessions"] == 2));
    // The publisher vanishes: no DELETE, no more packets.
    flags.stop.store(true, Ordering::Relaxed);
    drop(publisher.join());
    let started = Instant::now();
    assert!(
        server.wait_for(Duration::from_secs(6), |s| s["sessions"] == 0
            && s["shards"][0]["peers"] == 0),
        "both sessions gone: {}",
        server.stats()
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "not reaped before its timeout ({took:?})"
    );
    let stats = server.stats();
    assert_eq!(
        stats["rooms"].as_array().map(Vec::len),
        Some(0),
        "rooms freed: {stats}"
    );
}

#[test]
fn a_new_publisher_continues_the_viewers_streams() {
    let server = ServerProc::start(&["--shards", "1"]);
    let room = "switch";
    let limit = Duration::from_secs(30);
    // Each client has its own flags: the first publisher stops alone.
    let (first_flags, viewer_flags, second_flags) =
        (Flags::default(), Flags::default(), Flags::default());
    let first = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        ClientOptions {
            tag: 1,
            ..Default::default()
        },
        &first_flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        room,
        ClientRole::Watch,
        ClientOptions::default(),
        &viewer_flags,
        limit,
    );
    assert!(first_flags.wait_connected(1, Duration::from_secs(10)));
    assert!(viewer_flags.wait_connected(1, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    first_flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    first_flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    first_flags.stop.store(true, Ordering::Relaxed);
    let first = first.join();
    assert_eq!(first.delete().expect("DELETE"), 200);

    // Another publisher takes the room; the viewer never reconnects.
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        ClientOptions {
            tag: 2,
            ..Default::default()
        },
        &second_flags,
        limit,
    );
    assert!(second_flags.wait_connected(1, Duration::from_secs(10)));
    second_flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    second_flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    second_flags.stop.store(true, Ordering::Relaxed);
    viewer_flags.stop.store(true, Ordering::Relaxed);
    let second = second.join();
    let viewer = viewer.join();

    for kind in [Kind::Audio, Kind::Video] {
        let got = viewer.received(kind);
        let summary = got.summary();
        let (from_first, from_second) = (got.unique_from(1), got.unique_from(2));
        assert!(
            from_first * 100 >= first.sent(kind) * 99,
            "{kind:?}: {from_first} of {} from the first",
            first.sent(kind)
        );
        assert!(
            from_second * 100 >= second.sent(kind) * 99,
            "{kind:?}: {from_second} of {} from the second",
            second.sent(kind)
        );
        assert_eq!(summary.corrupt, 0);
        assert_eq!(
            summary.rtp_backwards, 0,
            "{kind:?}: sequence numbers never go back: {summary:?}"
        );
        assert_eq!(
            summary.max_rtp_gap, 0,
            "{kind:?}: sequence numbers continue across the switch: {summary:?}"
        );
    }
    assert!(
        second.report().keyframe_requests > 0,
        "the new publisher was asked for a keyframe"
    );
}

#[test]
fn sigterm_exits_within_two_seconds_on_io_uring() {
    sigterm_closes_sessions_and_exits_within_two_seconds("uring");
}

#[test]
fn sigterm_exits_within_two_seconds_on_mmsg() {
    sigterm_closes_sessions_and_exits_within_two_seconds("mmsg");
}

fn sigterm_closes_sessions_and_exits_within_two_seconds(io: &str) {
    let mut server = ServerProc::start(&["--shards", "2", "--io", io]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&server.base, "term", &flags, Duration::from_secs(20));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let sent_at = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(2));
    let took = sent_at.elapsed();
    flags.stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let viewer = viewer.join();
    let status = status.expect("exited within 2 s");
    assert!(status.success(), "clean exit: {status:?} after {took:?}");
    assert!(
        viewer.received(Kind::Video).unique() > 0,
        "media flowed before the signal"
    );
    assert!(
        viewer.closed_by_server(),
        "the server closed the viewer's session (close_notify) before exiting"
    );
    assert!(!server.is_running());
}
