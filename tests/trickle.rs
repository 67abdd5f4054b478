//! Trickle ICE and ICE restarts over `PATCH` (WHIP §4.3, RFC 8840) against
//! the real binary: every status the spec names, CORS preflights on the
//! session URL, a client that trickles its candidates, and restarts of a
//! publisher and a viewer while media flows (plus a refused one).

mod common;

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Flags, ServerProc, header, headers_named, http, publish_offer, request};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{
    Candidates, Client, ClientError, ClientOptions, ClientRole, Signaling,
};

const FRAG: &str = "application/trickle-ice-sdpfrag";

/// A POSTed publisher session: (session path, ETag).
fn create(server: &ServerProc, room: &str) -> (String, String) {
    let (status, headers, body) = http(
        &server.base,
        "POST",
        &format!("/whip/{room}"),
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(status, 201, "{body}");
    (
        header(&headers, "location").expect("Location").to_owned(),
        header(&headers, "etag").expect("ETag").to_owned(),
    )
}

fn patch(
    server: &ServerProc,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    request(&server.base, "PATCH", path, headers, body)
}

fn problem_detail(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).expect("problem JSON");
    json["detail"].as_str().unwrap_or("").to_owned()
}

#[test]
fn patch_answers_every_status_the_spec_names() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (path, etag) = create(&server, "trickle");
    let candidates = "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n\
        a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n\
        a=candidate:3 1 udp 2122262783 0a1b2c3d-1111-2222-3333-444455556666.local 55123 typ host\r\n\
        a=end-of-candidates\r\n";
    let ct = ("Content-Type", FRAG);

    // No If-Match: 428.
    let (s, _, b) = patch(&server, &path, &[ct], candidates);
    assert_eq!(s, 428, "{b}");
    // A stale ETag: 412.
    let (s, _, b) = patch(&server, &path, &[ct, ("If-Match", "\"stale\"")], candidates);
    assert_eq!(s, 412, "{b}");
    // Wrong content type: 415, also for application/sdp (no counter-offer was made).
    let (s, _, b) = patch(
        &server,
        &path,
        &[("Content-Type", "text/plain"), ("If-Match", &etag)],
        candidates,
    );
    assert_eq!(s, 415, "{b}");
    let (s, _, b) = patch(
        &server,
        &path,
        &[("Content-Type", "application/sdp"), ("If-Match", &etag)],
        candidates,
    );
    assert_eq!(s, 415, "{b}");
    let (s, _, _) = patch(&server, &path, &[("If-Match", &etag)], candidates);
    assert_eq!(s, 415, "no content type");
    // Malformed: 400 naming the line.
    let (s, _, b) = patch(
        &server,
        &path,
        &[ct, ("If-Match", &etag)],
        "a=candidate:garbage\r\n",
    );
    assert_eq!(s, 400, "{b}");
    assert!(problem_detail(&b).contains("line 1"), "{b}");
    let (s, _, b) = patch(&server, &path, &[ct, ("If-Match", &etag)], "hello world");
    assert_eq!(s, 400, "{b}");
    // Unknown session: 404.
    let (s, _, _) = patch(
        &server,
        "/session/00000000000000000000000000000000",
        &[ct, ("If-Match", "*")],
        candidates,
    );
    assert_eq!(s, 404);

    // Candidates only, with the ETag, with *, with "*", and with an ETag
    // request header instead of If-Match: 204, no body.
    for if_match in [
        ("If-Match", etag.as_str()),
        ("If-Match", "*"),
        ("If-Match", "\"*\""),
        ("ETag", etag.as_str()),
    ] {
        let (s, h, b) = patch(&server, &path, &[ct, if_match], candidates);
        assert_eq!(s, 204, "{if_match:?}: {b}");
        assert!(b.is_empty(), "no body");
        assert_eq!(header(&h, "content-length").unwrap_or("0"), "0");
    }
    let signaling = &server.stats()["signaling"];
    assert_eq!(signaling["trickles"], 4, "{signaling}");
    // Per PATCH: one UDP candidate added; TCP and mDNS skipped silently.
    assert_eq!(signaling["candidates_added"], 4, "{signaling}");
    assert_eq!(signaling["candidates_skipped"], 8, "{signaling}");

    // Nothing above restarted ICE: the ETag is unchanged.
    let (s, _, _) = patch(&server, &path, &[ct, ("If-Match", &etag)], "");
    assert_eq!(s, 204);

    // A DELETE ignores ETags; afterwards PATCH finds nothing.
    let (s, _, _) = request(
        &server.base,
        "DELETE",
        &path,
        &[("If-Match", "\"whatever\"")],
        "",
    );
    assert_eq!(s, 200);
    let (s, _, _) = patch(&server, &path, &[ct, ("If-Match", "*")], candidates);
    assert_eq!(s, 404);
}

#[test]
fn a_restart_of_a_pending_session_answers_with_a_fragment_and_a_new_etag() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (path, etag) = create(&server, "restart");
    let restart = "a=ice-ufrag:NeWu\r\na=ice-pwd:abcdefghijklmnopqrstuvwxyz\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
        a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n";
    // A refused restart (stale ETag) changes nothing.
    let (s, _, _) = patch(
        &server,
        &path,
        &[("Content-Type", FRAG), ("If-Match", "\"old\"")],
        restart,
    );
    assert_eq!(s, 412);
    let (s, h, body) = patch(
        &server,
        &path,
        &[("Content-Type", FRAG), ("If-Match", &etag)],
        restart,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(header(&h, "content-type"), Some(FRAG));
    let new_etag = header(&h, "etag").expect("a new ETag").to_owned();
    assert_ne!(new_etag, etag);
    let ufrag = body
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("our new ufrag");
    assert_eq!(new_etag, format!("\"{ufrag}\""));
    assert!(
        body.lines()
            .any(|l| l.starts_with("a=ice-pwd:") && l.len() >= 10 + 22)
    );
    assert!(
        body.contains(&format!("{} typ host", server.udp.port())),
        "our candidate: {body}"
    );
    assert!(body.contains("a=end-of-candidates"));
    // The old ETag is stale now; the new one works.
    let (s, _, _) = patch(
        &server,
        &path,
        &[("Content-Type", FRAG), ("If-Match", &etag)],
        "",
    );
    assert_eq!(s, 412);
    let (s, _, _) = patch(
        &server,
        &path,
        &[("Content-Type", FRAG), ("If-Match", &new_etag)],
        "",
    );
    assert_eq!(s, 204);
    assert_eq!(server.stats()["signaling"]["ice_restarts"], 1);
}

#[test]
fn patch_and_delete_have_their_own_cors_preflight_on_the_session_url() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (path, _) = create(&server, "cors");
    for method in ["PATCH", "DELETE"] {
        let (s, h, _) = request(
            &server.base,
            "OPTIONS",
            &path,
            &[
                ("Origin", "https://page.example"),
                ("Access-Control-Request-Method", method),
                (
                    "Access-Control-Request-Headers",
                    "content-type, if-match, authorization, etag",
                ),
            ],
            "",
        );
        assert_eq!(s, 204, "{method} preflight");
        assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
        let methods = header(&h, "access-control-allow-methods").unwrap_or("");
        assert!(methods.contains(method), "{methods}");
        let allowed = header(&h, "access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        for name in ["content-type", "if-match", "authorization", "etag"] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert!(
            headers_named(&h, "link").is_empty(),
            "no ICE servers on a preflight"
        );
    }
    // The PATCH itself, from a page: ETag readable.
    let (s, h, _) = patch(
        &server,
        &path,
        &[
            ("Origin", "https://page.example"),
            ("Content-Type", FRAG),
            ("If-Match", "*"),
        ],
        "a=ice-ufrag:PaGe\r\na=ice-pwd:abcdefghijklmnopqrstuvwxyz\r\n",
    );
    assert_eq!(s, 200);
    let exposed = header(&h, "access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("link"),
        "{exposed}"
    );
}

#[test]
fn a_client_that_trickles_its_candidates_connects_and_gets_media() {
    let server = ServerProc::start(&["--shards", "1"]);
    let flags = Flags::default();
    let limit = Duration::from_secs(20);
    let trickling = ClientOptions {
        signaling: Signaling {
            candidates: Candidates::Trickle,
            ..Default::default()
        },
        ..Default::default()
    };
    let publisher = common::spawn_client(
        &server.base,
        "tr",
        ClientRole::Publish,
        trickling.clone(),
        &flags,
        limit,
    );
    let viewer = common::spawn_client(
        &server.base,
        "tr",
        ClientRole::Watch,
        trickling,
        &flags,
        limit,
    );
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    flags.stop.store(true, Ordering::Relaxed);
    let viewer = viewer.join();
    let publisher = publisher.join();
    let signaling = &server.stats()["signaling"];
    assert_eq!(signaling["trickles"], 2, "{signaling}");
    assert_eq!(signaling["candidates_added"], 2, "{signaling}");
    let sent = publisher.sent(Kind::Video);
    let got = viewer.received(Kind::Video).unique();
    assert!(sent > 100 && got * 100 >= sent * 95, "{got} of {sent}");
}

/// Runs `client` on a thread: connects, then at `at` (after connecting)
/// calls `action`, then runs until `flags.stop`.
fn run_with<T: Send + 'static>(
    mut client: Client,
    flags: &Flags,
    at: Duration,
    action: impl FnOnce(&mut Client) -> T + Send + 'static,
) -> JoinHandle<(Client, T)> {
    let flags = flags.clone();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(30);
        let slice = || Instant::now() + Duration::from_millis(20);
        while !client.is_connected() && Instant::now() < end {
            client.run(slice(), &flags.send, &flags.stop).expect("run");
        }
        flags.connected.fetch_add(1, Ordering::Relaxed);
        let action_at = Instant::now() + at;
        while Instant::now() < action_at {
            client.run(slice(), &flags.send, &flags.stop).expect("run");
        }
        let result = action(&mut client);
        while !flags.stop.load(Ordering::Relaxed) && Instant::now() < end {
            client.run(slice(), &flags.send, &flags.stop).expect("run");
        }
        (client, result)
    })
}

#[test]
fn ice_restarts_keep_media_flowing_and_a_refused_one_keeps_the_session() {
    // Consent must follow the new credentials: 5 s without an authenticated
    // check ends a session (str0m clients check every 3 s at the slowest).
    let server = ServerProc::start(&["--shards", "2", "--ice-timeout", "5s"]);
    let flags = Flags::default();
    let connect = |role| {
        Client::connect(&server.base, "rs", role, ClientOptions::default()).expect("connect")
    };
    let publisher = connect(ClientRole::Publish);
    let viewer = connect(ClientRole::Watch);
    flags.send.store(true, Ordering::Relaxed);
    let publisher = run_with(publisher, &flags, Duration::from_millis(1000), |c| {
        let old = c.etag().map(str::to_owned);
        let refused = c.restart_ice_with(Some("\"stale\""));
        let at_restart = c.sent(Kind::Video);
        let restarted = c.restart_ice();
        (
            old,
            refused,
            restarted,
            at_restart,
            c.etag().map(str::to_owned),
        )
    });
    let viewer = run_with(viewer, &flags, Duration::from_millis(1500), |c| {
        let old = c.etag().map(str::to_owned);
        (old, c.restart_ice(), c.etag().map(str::to_owned))
    });
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    // Well past the ICE timeout after both restarts.
    std::thread::sleep(Duration::from_millis(1500 + 6500));
    assert_eq!(
        server.stats()["sessions"],
        2,
        "both sessions alive: {}",
        server.stats()
    );
    flags.stop.store(true, Ordering::Relaxed);
    let (publisher, (old, refused, restarted, at_restart, new)) =
        publisher.join().expect("publisher");
    let (viewer, (viewer_old, viewer_restarted, viewer_new)) = viewer.join().expect("viewer");

    match refused {
        Err(ClientError::Status { status: 412, .. }) => {}
        other => panic!("a stale If-Match is refused with 412: {other:?}"),
    }
    restarted.expect("the publisher restarted ICE");
    viewer_restarted.expect("the viewer restarted ICE");
    assert_ne!(old, new, "a new ETag");
    assert_ne!(viewer_old, viewer_new);
    assert!(publisher.is_connected() && !publisher.closed_by_server());
    assert!(viewer.is_connected() && !viewer.closed_by_server());

    let sent = publisher.sent(Kind::Video);
    let got = viewer.received(Kind::Video).unique();
    assert!(
        sent > at_restart + 500,
        "{sent} sent, {at_restart} before the restart"
    );
    assert!(got * 100 >= sent * 95, "the viewer got {got} of {sent}");
    assert_eq!(viewer.received(Kind::Video).summary().corrupt, 0);
    assert_eq!(server.stats()["signaling"]["ice_restarts"], 2);
    assert_eq!(publisher.delete().expect("DELETE"), 200);
}
