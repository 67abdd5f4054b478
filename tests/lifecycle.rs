//! Sessions end for every reason they should, and all their state goes with
//! them: DELETE, a client that vanishes, a session that never connects, a
//! publisher replaced by another (viewers keep playing), and SIGTERM. A
//! session that ended by itself still answers one DELETE with 200 within
//! `--connect-timeout`.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{Flags, ServerProc, http, publish_offer, request, spawn_client, spawn_pair};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use uringcast::sfu::SessionId;
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole, Signaling};

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

/// SIGTERM drains; with no drain time left (`--drain-timeout 0s`) the
/// sessions are closed at once (the drain with time is in
/// `tests/operations.rs`).
fn sigterm_closes_sessions_and_exits_within_two_seconds(io: &str) {
    let mut server = ServerProc::start(&["--shards", "2", "--io", io, "--drain-timeout", "0s"]);
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

const KEY: &[u8] = b"a test key of at least thirty-two bytes";

/// A JWT for `room` and `role`, valid for ten minutes.
fn token(room: &str, role: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({"room": room, "role": role, "exp": now + 600});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY),
    )
    .expect("a token")
}

/// A publisher in `room` that connected (ICE + DTLS), given back from its
/// thread without having closed or deleted anything.
fn connected_publisher(server: &ServerProc, room: &str, token: Option<String>) -> Client {
    let flags = Flags::default();
    let options = ClientOptions {
        signaling: Signaling {
            token,
            ..Signaling::default()
        },
        ..ClientOptions::default()
    };
    let running = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        options,
        &flags,
        Duration::from_secs(20),
    );
    assert!(
        flags.wait_connected(1, Duration::from_secs(10)),
        "{room} connects"
    );
    flags.stop.store(true, Ordering::Relaxed);
    running.join()
}

/// `/session/{id}` of `client`'s session.
fn session_path(server: &ServerProc, client: &Client) -> String {
    let url = client.session_url();
    url.strip_prefix(server.base.as_str())
        .unwrap_or(url)
        .to_owned()
}

/// The medooze `whip-whep` library's `stop()`: close the PeerConnection
/// (DTLS close_notify ends the session), then DELETE. The DELETE gets 200,
/// once; it needs a token for the session's room and role as for a live
/// session; PATCH on the ended session stays 404; a URL never issued is
/// 404.
#[test]
fn a_client_that_closes_first_then_deletes_gets_200_once() {
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    let server = ServerProc::start(&["--shards", "1", "--auth-key", &key]);
    let publish = token("closer", "publish");
    let mut client = connected_publisher(&server, "closer", Some(publish.clone()));
    let path = session_path(&server, &client);
    client.close().expect("the client closes its side");
    assert!(
        server.wait_for(Duration::from_secs(5), |s| s["sessions"] == 0
            && s["shards"][0]["peers"] == 0),
        "the session ended on the client's close: {}",
        server.stats()
    );

    let bearer = |t: &str| format!("Bearer {t}");
    let (s, _, b) = request(
        &server.base,
        "PATCH",
        &path,
        &[
            ("Content-Type", "application/trickle-ice-sdpfrag"),
            ("If-Match", "*"),
            ("Authorization", &bearer(&publish)),
        ],
        "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n",
    );
    assert_eq!(s, 404, "PATCH of an ended session: {b}");
    // The tombstone keeps the DELETE's token check: its room and its role.
    let delete_with = |auth: &[(&str, &str)]| request(&server.base, "DELETE", &path, auth, "").0;
    assert_eq!(delete_with(&[]), 401, "no token");
    let other_room = bearer(&token("elsewhere", "publish"));
    assert_eq!(delete_with(&[("Authorization", &other_room)]), 403);
    let watcher = bearer(&token("closer", "watch"));
    assert_eq!(delete_with(&[("Authorization", &watcher)]), 403);
    assert_eq!(client.delete().expect("DELETE"), 200, "close, then DELETE");
    assert_eq!(
        client.delete().expect("DELETE"),
        404,
        "a tombstone answers one DELETE, as a live session does"
    );

    let anything = bearer(&token("*", "*"));
    let never = format!("/session/{}", SessionId::random());
    let (s, _, b) = request(
        &server.base,
        "DELETE",
        &never,
        &[("Authorization", &anything)],
        "",
    );
    assert_eq!(s, 404, "a URL never issued: {b}");
    let stats = server.stats();
    assert_eq!(stats["signaling"]["deleted_after_end"], 1, "{stats}");
}

/// Tombstones last `--connect-timeout`: a DELETE right after a session
/// ended by itself (the client's close, or expiry before its first STUN)
/// is 200, one after the window is 404.
#[test]
fn delete_after_a_session_ended_by_itself_is_404_once_the_connect_timeout_passed() {
    let window = Duration::from_secs(2);
    let server = ServerProc::start(&["--shards", "1", "--connect-timeout", "2s"]);
    let mut early = connected_publisher(&server, "early", None);
    let mut late = connected_publisher(&server, "late", None);
    early.close().expect("close");
    late.close().expect("close");
    assert!(
        server.wait_for(Duration::from_secs(5), |s| s["sessions"] == 0),
        "both ended on their client's close: {}",
        server.stats()
    );
    let ended_at = Instant::now();
    assert_eq!(early.delete().expect("DELETE"), 200, "within the window");

    // A session whose client never sends STUN expires pending, and is
    // deletable right after too.
    let (s, h, b) = http(
        &server.base,
        "POST",
        "/whip/never",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(s, 201, "{b}");
    let pending = common::header(&h, "location").expect("Location").to_owned();
    assert!(
        server.wait_for(
            Duration::from_secs(6),
            |s| s["signaling"]["pending_expired"] == 1
        ),
        "expired pending: {}",
        server.stats()
    );
    assert_eq!(http(&server.base, "DELETE", &pending, None, "").0, 200);

    let wait = (window + Duration::from_millis(500)).saturating_sub(ended_at.elapsed());
    std::thread::sleep(wait);
    assert_eq!(
        late.delete().expect("DELETE"),
        404,
        "after --connect-timeout the tombstone is gone"
    );
    assert_eq!(server.stats()["signaling"]["deleted_after_end"], 2);
}
