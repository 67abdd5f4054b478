//! Running it in production, through the real binary: `/metrics` counts
//! what `/v1/stats` counts, `/healthz` and `/readyz`, draining (SIGTERM and
//! the admin API: media goes on, new sessions get 503, a second SIGTERM
//! stops), the admin reset, and the codec allow-lists.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Flags, ServerProc, header, http, media_flows, request, spawn_pair};
use str0m::media::{Direction, MediaKind};
use uringcast_load::client::ClientOptions;
use uringcast_load::client::payload::Kind;

/// `GET /metrics` → (status, content type, body).
fn scrape(server: &ServerProc) -> (u16, String, String) {
    let (status, headers, body) = http(&server.base, "GET", "/metrics", None, "");
    let kind = header(&headers, "content-type").unwrap_or("").to_owned();
    (status, kind, body)
}

/// The sum of every sample of `name` (any labels) in a scrape.
fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (bounded) until `GET path` answers `status`.
fn wait_status(server: &ServerProc, path: &str, status: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if http(&server.base, "GET", path, None, "").0 == status {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn metrics_count_what_the_stats_count() {
    let server = ServerProc::start(&["--shards", "2"]);
    media_flows(
        &server,
        "xylophone",
        ClientOptions::default(),
        ClientOptions::default(),
    );
    // The clients have stopped: the counters stand still once the last
    // packets are counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, kind, body) = loop {
        let forwarded = server.shard_sum("forwarded") as f64;
        let scraped = scrape(&server);
        if metric_sum(&scraped.2, "uringcast_shard_forwarded_total") == forwarded
            || Instant::now() >= deadline
        {
            break scraped;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let stats = server.stats();
    let forwarded = server.shard_sum("forwarded") as f64;
    assert!(forwarded > 100.0, "{stats}");
    assert_eq!(
        metric_sum(&body, "uringcast_shard_forwarded_total"),
        forwarded
    );
    assert_eq!(
        metric_sum(&body, "uringcast_shard_rtp_in_total"),
        server.shard_sum("rtp_in") as f64
    );
    // One sample per shard, and drops by reason.
    assert!(
        body.contains("uringcast_shard_received_total{shard=\"1\"}"),
        "{body}"
    );
    assert!(
        body.contains("uringcast_dropped_total{shard=\"0\",reason=\"unknown_ufrag\"}"),
        "{body}"
    );
    assert!(
        body.contains("uringcast_signaling_trickles_total 0"),
        "{body}"
    );
    // Both sessions connected and carried media: setup and first-media
    // times were observed for each.
    assert!(
        metric_sum(&body, "uringcast_session_setup_seconds_count") >= 2.0,
        "{body}"
    );
    assert!(
        metric_sum(&body, "uringcast_first_media_seconds_count") >= 2.0,
        "{body}"
    );
    assert!(
        body.contains("uringcast_session_setup_seconds_bucket{shard=\"0\",le=\"+Inf\"}"),
        "{body}"
    );
    assert_eq!(metric_sum(&body, "uringcast_shard_running"), 2.0);
    // Bounded labels: no room, no session id, unless asked for.
    assert!(!body.contains("room="), "{body}");
    assert!(!body.contains("xylophone"), "the room's name leaks: {body}");

    let per_room = ServerProc::start(&["--shards", "1", "--metrics-per-room"]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&per_room.base, "lobby", &flags, Duration::from_secs(20));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    let (_, _, body) = scrape(&per_room);
    flags.stop.store(true, Ordering::Relaxed);
    let _ = (publisher.join(), viewer.join());
    assert_eq!(
        metric_sum(&body, "uringcast_room_sessions{room=\"lobby\"}"),
        2.0,
        "{body}"
    );
    assert_eq!(metric_sum(&body, "uringcast_sessions"), 2.0, "{body}");
}

#[test]
fn health_readiness_and_a_drain_asked_over_the_admin_api() {
    let mut server = ServerProc::start(&["--admin-token", "adm1n"]);
    assert_eq!(http(&server.base, "GET", "/healthz", None, "").0, 200);
    assert_eq!(http(&server.base, "GET", "/readyz", None, "").0, 200);
    let (status, _, _) = request(&server.base, "POST", "/v1/admin/drain", &[], "");
    assert_eq!(status, 401, "the admin API needs its token");
    assert_eq!(http(&server.base, "GET", "/readyz", None, "").0, 200);

    // A session (answered, never connected) keeps the drain going.
    let sdp = [("Content-Type", "application/sdp")];
    let (status, headers, _) = request(
        &server.base,
        "POST",
        "/whip/kept",
        &sdp,
        &common::publish_offer(),
    );
    assert_eq!(status, 201);
    let location = header(&headers, "location").expect("Location").to_owned();

    let auth = [("Authorization", "Bearer adm1n")];
    let (status, _, body) = request(&server.base, "POST", "/v1/admin/drain", &auth, "");
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = http(&server.base, "GET", "/readyz", None, "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    assert_eq!(
        http(&server.base, "GET", "/healthz", None, "").0,
        200,
        "still alive"
    );
    let (status, _, _) = request(
        &server.base,
        "POST",
        "/whip/new",
        &sdp,
        &common::publish_offer(),
    );
    assert_eq!(status, 503);
    assert!(server.is_running());
    // The last session ends: the drain is over and the process ends.
    assert_eq!(request(&server.base, "DELETE", &location, &[], "").0, 200);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits after the drain");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_drains_media_goes_on_new_sessions_get_503_and_a_second_sigterm_stops() {
    let mut server = ServerProc::start(&["--shards", "2", "--drain-timeout", "60s"]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&server.base, "drain", &flags, Duration::from_secs(30));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));

    server.signal(libc::SIGTERM);
    assert!(
        wait_status(&server, "/readyz", 503, Duration::from_secs(5)),
        "readyz turns 503"
    );
    let (status, headers, body) = http(
        &server.base,
        "POST",
        "/whip/another",
        Some("application/sdp"),
        &common::publish_offer(),
    );
    assert_eq!(status, 503, "{body}");
    assert!(header(&headers, "retry-after").is_some());
    assert!(body.contains("draining"), "{body}");
    let (status, _, _) = http(&server.base, "POST", "/v1/rooms/r/participants", None, "");
    assert_eq!(status, 503, "a new participant is refused too");

    // The session in place goes on.
    let before = server.shard_sum("forwarded");
    std::thread::sleep(Duration::from_millis(1000));
    let after = server.shard_sum("forwarded");
    assert!(
        after > before + 20,
        "media flows while draining: {before} → {after}"
    );
    assert!(server.is_running());
    let (_, _, metrics) = scrape(&server);
    assert_eq!(metric_sum(&metrics, "uringcast_draining"), 1.0);
    assert_eq!(
        metric_sum(&metrics, "uringcast_signaling_draining_refused_total"),
        2.0
    );

    let sent_at = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(3));
    flags.stop.store(true, Ordering::Relaxed);
    let (_, viewer) = (publisher.join(), viewer.join());
    let status = status.expect("a second SIGTERM stops at once");
    assert!(status.success(), "{status:?} after {:?}", sent_at.elapsed());
    assert!(viewer.closed_by_server(), "sessions were closed cleanly");
}

#[test]
fn a_drain_ends_when_the_last_session_ends() {
    let mut server = ServerProc::start(&["--shards", "1", "--drain-timeout", "60s"]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&server.base, "last", &flags, Duration::from_secs(30));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    server.signal(libc::SIGTERM);
    assert!(wait_status(&server, "/readyz", 503, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.is_running(), "two sessions are still open");
    flags.stop.store(true, Ordering::Relaxed);
    let (publisher, viewer) = (publisher.join(), viewer.join());
    assert_eq!(viewer.delete().expect("DELETE"), 200);
    assert!(server.is_running(), "the publisher is still open");
    assert_eq!(publisher.delete().expect("DELETE"), 200);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits once drained");
    assert!(status.success());
}

#[test]
fn a_drain_timeout_closes_what_is_left() {
    let mut server = ServerProc::start(&["--shards", "1", "--drain-timeout", "1s"]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&server.base, "late", &flags, Duration::from_secs(30));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    let sent_at = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(6));
    let took = sent_at.elapsed();
    flags.stop.store(true, Ordering::Relaxed);
    let (_, viewer) = (publisher.join(), viewer.join());
    assert!(status.expect("exits after the drain timeout").success());
    assert!(
        took >= Duration::from_millis(900),
        "waited for the drain: {took:?}"
    );
    assert!(viewer.closed_by_server());
}

#[test]
fn an_admin_reset_closes_every_session_and_keeps_serving() {
    let server = ServerProc::start(&["--shards", "2", "--admin-token", "adm1n"]);
    let flags = Flags::default();
    let (publisher, viewer) = spawn_pair(&server.base, "reset", &flags, Duration::from_secs(30));
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    let auth = [("Authorization", "Bearer adm1n")];
    let (status, _, body) = request(&server.base, "POST", "/v1/admin/reset", &auth, "");
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["closed"], 2);
    assert!(server.wait_for(Duration::from_secs(5), |s| s["sessions"] == 0));
    flags.stop.store(true, Ordering::Relaxed);
    let (_, viewer) = (publisher.join(), viewer.join());
    assert!(
        viewer.closed_by_server(),
        "the viewer was told (close_notify)"
    );
    // Still serving: a new publisher and viewer get media.
    assert_eq!(http(&server.base, "GET", "/readyz", None, "").0, 200);
    media_flows(
        &server,
        "after",
        ClientOptions::default(),
        ClientOptions::default(),
    );
}

#[test]
fn codec_allow_lists_shape_every_answer() {
    let server = ServerProc::start(&["--video-codecs", "h264", "--audio-codecs", "opus"]);
    let vp8_only = common::offer(&[MediaKind::Video], Direction::SendOnly, |c| {
        c.clear_codecs().enable_vp8(true)
    });
    let (status, _, body) = http(
        &server.base,
        "POST",
        "/whip/a",
        Some("application/sdp"),
        &vp8_only,
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Opus and H264"), "{body}");

    let (status, _, answer) = http(
        &server.base,
        "POST",
        "/whip/b",
        Some("application/sdp"),
        &common::publish_offer(),
    );
    assert_eq!(status, 201, "{answer}");
    let rtpmaps: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=rtpmap:"))
        .collect();
    assert!(rtpmaps.iter().any(|l| l.contains("H264/90000")), "{answer}");
    assert!(rtpmaps.iter().any(|l| l.contains("opus/48000")), "{answer}");
    for other in ["VP8", "VP9", "AV1", "H265"] {
        assert!(!answer.contains(other), "{other} in {answer}");
    }

    // Media flows with the codec left: the project's client sends VP8, so
    // a server allowing VP8 carries it, and one allowing only H264 does not.
    let vp8 = ServerProc::start(&["--video-codecs", "vp8,h264"]);
    let (_, viewer) = media_flows(
        &vp8,
        "v",
        ClientOptions::default(),
        ClientOptions::default(),
    );
    assert!(viewer.received(Kind::Video).unique() > 0);
}
