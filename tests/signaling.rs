//! The HTTP surface of WHIP/WHEP against the real binary: status codes,
//! headers and RFC 9457 bodies for every error a client can cause.

mod common;

use common::{ServerProc, header, http, offer, publish_offer};
use str0m::media::{Direction, MediaKind};

fn assert_problem(
    status: u16,
    headers: &[(String, String)],
    body: &str,
    want: u16,
    mentions: &str,
) {
    assert_eq!(status, want, "status (body: {body})");
    assert_eq!(
        header(headers, "content-type"),
        Some("application/problem+json")
    );
    let json: serde_json::Value = serde_json::from_str(body).expect("problem JSON");
    assert_eq!(json["status"], want);
    let detail = json["detail"].as_str().expect("detail");
    assert!(
        detail.contains(mentions),
        "detail {detail:?} mentions {mentions:?}"
    );
}

#[test]
fn whip_post_answers_201_with_location_etag_and_sdp() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (status, headers, body) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp; charset=utf-8"),
        &publish_offer(),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/sdp"));
    let location = header(&headers, "location").expect("Location");
    let id = location.strip_prefix("/session/").expect("session URL");
    assert_eq!(id.len(), 32, "128 random bits in hex");
    let etag = header(&headers, "etag").expect("ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "strong ETag {etag}"
    );
    assert!(body.starts_with("v=0"));
    assert!(body.contains("a=recvonly"), "WHIP answer is recvonly");
    assert!(body.contains("a=ice-lite"));
    assert!(
        body.contains(&format!("{} typ host", server.udp.port())),
        "answer lists our candidate"
    );

    // A second publisher in the same room: 409.
    let (status, headers, body) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_problem(status, &headers, &body, 409, "already has a publisher");

    // DELETE: 200, then 404; the room's publisher slot is free again.
    let (status, _, _) = http(&server.base, "DELETE", location, None, "");
    assert_eq!(status, 200);
    let (status, headers, body) = http(&server.base, "DELETE", location, None, "");
    assert_problem(status, &headers, &body, 404, "no such session");
    let (status, _, _) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(status, 201);
}

#[test]
fn client_errors_are_4xx_problems() {
    let server = ServerProc::start(&["--shards", "1", "--max-body", "8192"]);
    let base = &server.base;

    let (s, h, b) = http(
        base,
        "POST",
        "/whip/r",
        Some("text/plain"),
        &publish_offer(),
    );
    assert_problem(s, &h, &b, 415, "application/sdp");
    let (s, h, b) = http(base, "POST", "/whip/r", None, &publish_offer());
    assert_problem(s, &h, &b, 415, "application/sdp");

    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), "hello");
    assert_problem(s, &h, &b, 400, "v=0");
    let (s, h, b) = http(
        base,
        "POST",
        "/whip/r",
        Some("application/sdp"),
        "v=0\r\ns=-\r\n",
    );
    assert_problem(s, &h, &b, 400, "no media");

    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(4000));
    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), &big);
    assert_problem(s, &h, &b, 413, "larger than 8192");

    let recvonly = offer(&[MediaKind::Video], Direction::RecvOnly, |c| c);
    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), &recvonly);
    assert_problem(s, &h, &b, 422, "sendonly");

    let (s, h, b) = http(
        base,
        "POST",
        "/whip/bad%20room",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_problem(s, &h, &b, 400, "room names");

    let (s, h, b) = http(
        base,
        "POST",
        "/whep/empty",
        Some("application/sdp"),
        &offer(&[MediaKind::Video], Direction::RecvOnly, |c| c),
    );
    assert_problem(s, &h, &b, 409, "nothing is published");
    assert_eq!(header(&h, "retry-after"), Some("2"));

    let (s, h, b) = http(
        base,
        "DELETE",
        "/session/00000000000000000000000000000000",
        None,
        "",
    );
    assert_problem(s, &h, &b, 404, "no such session");
    let (s, h, b) = http(base, "DELETE", "/session/nothex", None, "");
    assert_problem(s, &h, &b, 404, "no such session");

    // Nothing above left a session or a room behind.
    let stats = server.stats();
    assert_eq!(stats["sessions"], 0);
    assert_eq!(stats["rooms"].as_array().map(Vec::len), Some(0), "{stats}");
}

#[test]
fn a_viewer_that_cannot_receive_the_publishers_codec_gets_422_naming_it() {
    let server = ServerProc::start(&["--shards", "1"]);
    let vp8_only = offer(&[MediaKind::Video], Direction::SendOnly, |c| {
        c.clear_codecs().enable_vp8(true)
    });
    let (s, _, b) = http(
        &server.base,
        "POST",
        "/whip/codec",
        Some("application/sdp"),
        &vp8_only,
    );
    assert_eq!(s, 201, "{b}");
    let h264_viewer = offer(&[MediaKind::Video], Direction::RecvOnly, |c| {
        c.clear_codecs().enable_h264(true)
    });
    let (s, h, b) = http(
        &server.base,
        "POST",
        "/whep/codec",
        Some("application/sdp"),
        &h264_viewer,
    );
    assert_problem(s, &h, &b, 422, "Vp8");
    let vp8_viewer = offer(&[MediaKind::Video], Direction::RecvOnly, |c| {
        c.clear_codecs().enable_vp8(true).enable_h264(true)
    });
    let (s, _, b) = http(
        &server.base,
        "POST",
        "/whep/codec",
        Some("application/sdp"),
        &vp8_viewer,
    );
    assert_eq!(s, 201, "{b}");
    assert!(b.contains("a=sendonly"), "WHEP answer is sendonly");
}

#[test]
fn options_and_cors_preflight() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (s, h, _) = http(&server.base, "OPTIONS", "/whip/r", None, "");
    assert!(s == 200 || s == 204, "OPTIONS status {s}");
    assert_eq!(header(&h, "accept-post"), Some("application/sdp"));

    // A browser's preflight: no auth, asks for POST with content-type.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .options(format!("{}/whep/r", server.base))
        .header("Origin", "https://example.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, authorization",
        )
        .call()
        .expect("preflight");
    assert!(response.status().is_success());
    let h = response.headers();
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let methods = h
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = h
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    // A cross-origin POST can read Location and ETag.
    let response = agent
        .post(format!("{}/whip/r", server.base))
        .header("Origin", "https://example.test")
        .header("Content-Type", "application/sdp")
        .send(publish_offer())
        .expect("post");
    assert_eq!(response.status().as_u16(), 201);
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("location") && exposed.contains("etag"),
        "{exposed}"
    );
}
