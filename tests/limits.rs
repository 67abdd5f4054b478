//! Limits that hold, through the real binary: pending sessions (capped and
//! expiring), sessions per client IP, viewers per room, and the per-session
//! bitrate limits. (Body size, total sessions and the request rate are in
//! tests/signaling.rs and tests/auth_and_limits.rs.)

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Flags, ServerProc, header, offer, publish_offer, request, spawn_client};
use str0m::media::{Direction, MediaKind};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole};

fn post(server: &ServerProc, path: &str, sdp: &str) -> (u16, Vec<(String, String)>, String) {
    request(
        &server.base,
        "POST",
        path,
        &[("Content-Type", "application/sdp")],
        sdp,
    )
}

fn viewer_offer() -> String {
    offer(
        &[MediaKind::Audio, MediaKind::Video],
        Direction::RecvOnly,
        |c| c,
    )
}

fn assert_problem(headers: &[(String, String)]) {
    assert_eq!(
        header(headers, "content-type"),
        Some("application/problem+json")
    );
}

#[test]
fn pending_sessions_are_capped_with_503_and_expire() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--max-pending",
        "3",
        "--connect-timeout",
        "1s",
    ]);
    for room in ["a", "b", "c"] {
        let (s, _, b) = post(&server, &format!("/whip/{room}"), &publish_offer());
        assert_eq!(s, 201, "{b}");
    }
    assert_eq!(server.stats()["pending_sessions"], 3);
    let (s, h, b) = post(&server, "/whip/d", &publish_offer());
    assert_eq!(s, 503, "{b}");
    assert!(b.contains("waiting to connect"), "{b}");
    assert!(header(&h, "retry-after").is_some_and(|v| v.parse::<u32>().is_ok()));
    assert_problem(&h);
    assert_eq!(server.stats()["signaling"]["pending_full"], 1);
    // Never connected: gone after --connect-timeout (swept once a second).
    assert!(
        server.wait_for(Duration::from_secs(6), |s| s["pending_sessions"] == 0
            && s["sessions"] == 0),
        "pending sessions expire: {}",
        server.stats()
    );
    assert_eq!(server.stats()["signaling"]["pending_expired"], 3);
    let (s, _, b) = post(&server, "/whip/d", &publish_offer());
    assert_eq!(s, 201, "room again once they expired: {b}");
}

#[test]
fn sessions_per_client_ip_are_capped_with_429() {
    let server = ServerProc::start(&["--shards", "1", "--max-sessions-per-ip", "2"]);
    let (s, h, b) = post(&server, "/whip/a", &publish_offer());
    assert_eq!(s, 201, "{b}");
    let first = header(&h, "location").unwrap().to_owned();
    let (s, _, b) = post(&server, "/whep/a", &viewer_offer());
    assert_eq!(s, 201, "{b}");
    let (s, h, b) = post(&server, "/whip/b", &publish_offer());
    assert_eq!(s, 429, "{b}");
    assert!(b.contains("this client IP"), "{b}");
    assert!(header(&h, "retry-after").is_some_and(|v| v.parse::<u32>().is_ok()));
    assert_problem(&h);
    assert_eq!(server.stats()["signaling"]["per_ip_refused"], 1);
    // Ending a session frees a slot.
    let (s, _, _) = request(&server.base, "DELETE", &first, &[], "");
    assert_eq!(s, 200);
    let (s, _, b) = post(&server, "/whip/b", &publish_offer());
    assert_eq!(s, 201, "{b}");
}

#[test]
fn a_room_holds_at_most_room_size_viewers_then_403() {
    let server = ServerProc::start(&["--shards", "1", "--room-size", "2"]);
    let (s, _, b) = post(&server, "/whip/full", &publish_offer());
    assert_eq!(s, 201, "{b}");
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let (s, h, b) = post(&server, "/whep/full", &viewer_offer());
        assert_eq!(s, 201, "{b}");
        viewers.push(header(&h, "location").unwrap().to_owned());
    }
    let (s, h, b) = post(&server, "/whep/full", &viewer_offer());
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("2 viewers"), "{b}");
    assert_problem(&h);
    assert_eq!(server.stats()["signaling"]["room_full"], 1);
    // Another room is not affected; a viewer leaving makes room.
    let (s, _, b) = post(&server, "/whip/other", &publish_offer());
    assert_eq!(s, 201, "{b}");
    let (s, _, b) = post(&server, "/whep/other", &viewer_offer());
    assert_eq!(s, 201, "{b}");
    let (s, _, _) = request(&server.base, "DELETE", &viewers[0], &[], "");
    assert_eq!(s, 200);
    let (s, _, b) = post(&server, "/whep/full", &viewer_offer());
    assert_eq!(s, 201, "{b}");
}

/// A 1 Mbit/s publisher and a viewer capped at 300 kbit/s out: the viewer
/// loses video (not audio); an uncapped server delivers everything (see
/// tests/forwarding.rs), so the loss is the limit's.
#[test]
fn a_viewer_over_max_bitrate_out_loses_video_but_not_audio() {
    over_the_limit("--max-bitrate-out");
}

/// The same with the publisher capped at 300 kbit/s in.
#[test]
fn a_publisher_over_max_bitrate_in_loses_video_but_not_audio() {
    over_the_limit("--max-bitrate-in");
}

fn over_the_limit(flag: &str) {
    let server = ServerProc::start(&["--shards", "1", flag, "300000"]);
    let flags = Flags::default();
    let limit = Duration::from_secs(30);
    let options = ClientOptions::default();
    let publisher = spawn_client(
        &server.base,
        "capped",
        ClientRole::Publish,
        options.clone(),
        &flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        "capped",
        ClientRole::Watch,
        options,
        &flags,
        limit,
    );
    assert!(
        flags.wait_connected(2, Duration::from_secs(10)),
        "connected"
    );
    std::thread::sleep(Duration::from_millis(300));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let stats = server.stats();
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();
    let (audio_sent, video_sent) = (publisher.sent(Kind::Audio), publisher.sent(Kind::Video));
    let audio = viewer.received(Kind::Audio).unique_from(1);
    let video = viewer.received(Kind::Video).unique_from(1);
    eprintln!("{flag}: audio {audio}/{audio_sent}, video {video}/{video_sent}");
    assert!(video_sent > 100 && audio_sent > 100);
    assert!(
        audio * 100 >= audio_sent * 99,
        "audio is never dropped by the limit: {audio} of {audio_sent}"
    );
    // 1 Mbit/s of video through 300 kbit/s (less audio) over ~4.5 s with a
    // 0.5 s burst: well under 60 % can pass.
    assert!(
        video * 100 < video_sent * 60,
        "video over the limit is dropped: {video} of {video_sent}"
    );
    assert!(video > 0, "video under the limit still flows");
    // Every packet the viewer missed was dropped by the limit and counted
    // (per room; per shard too once the shard copies its totals).
    let counter = if flag == "--max-bitrate-in" {
        "dropped_bitrate_in"
    } else {
        "dropped_bitrate_out"
    };
    let dropped = stats["rooms"][0][counter].as_u64().unwrap_or(0);
    assert!(
        dropped + video + 2 >= video_sent && dropped <= video_sent - video,
        "{counter} {dropped}, video {video} of {video_sent}: {stats}"
    );
}
