//! Tokens (JWT and static), ICE server links with TURN credentials, the
//! session limit, the per-IP rate limit, and GET/HEAD on the endpoints,
//! against the real binary.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{
    Flags, ServerProc, header, headers_named, http, offer, publish_offer, request, spawn_client,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use str0m::media::{Direction, MediaKind};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole, Signaling};

const KEY: &[u8] = b"a test key of at least thirty-two bytes";

fn key_arg() -> String {
    base64::engine::general_purpose::STANDARD.encode(KEY)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(room: &str, role: &str, exp: u64) -> String {
    let claims = serde_json::json!({"room": room, "role": role, "exp": exp});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY),
    )
    .unwrap()
}

fn post(
    server: &ServerProc,
    path: &str,
    headers: &[(&str, &str)],
    sdp: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut all = vec![("Content-Type", "application/sdp")];
    all.extend_from_slice(headers);
    request(&server.base, "POST", path, &all, sdp)
}

fn viewer_offer() -> String {
    offer(
        &[MediaKind::Audio, MediaKind::Video],
        Direction::RecvOnly,
        |c| c,
    )
}

#[test]
fn jwt_tokens_guard_post_patch_and_delete_but_never_a_preflight() {
    let server = ServerProc::start(&["--shards", "1", "--auth-key", &key_arg()]);
    let publish = token("r1", "publish", now() + 600);
    let bearer = |t: &str| format!("Bearer {t}");

    // No token, a bad one, an expired one, `Bearer undefined`: 401 + challenge.
    let expired = token("r1", "publish", now() - 3600);
    let wrong_key = encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"room": "r1", "role": "publish", "exp": now() + 600}),
        &EncodingKey::from_secret(b"another key, also thirty-two bytes long"),
    )
    .unwrap();
    let missing: &[(&str, &str)] = &[];
    for headers in [
        missing.to_vec(),
        vec![("Authorization", "Bearer undefined")],
        vec![("Authorization", bearer(&expired).leak() as &str)],
        vec![("Authorization", bearer(&wrong_key).leak() as &str)],
        vec![("Authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let (s, h, b) = post(&server, "/whip/r1", &headers, &publish_offer());
        assert_eq!(s, 401, "{headers:?}: {b}");
        let challenge = header(&h, "www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    // Valid, but for another room or the other role: 403.
    let (s, _, b) = post(
        &server,
        "/whip/r2",
        &[("Authorization", &bearer(&publish))],
        &publish_offer(),
    );
    assert_eq!(s, 403, "{b}");
    let watch = token("r1", "watch", now() + 600);
    let (s, _, _) = post(
        &server,
        "/whip/r1",
        &[("Authorization", &bearer(&watch))],
        &publish_offer(),
    );
    assert_eq!(s, 403);
    // Valid: 201; also from ?token=.
    let (s, h, b) = post(
        &server,
        "/whip/r1",
        &[("Authorization", &bearer(&publish))],
        &publish_offer(),
    );
    assert_eq!(s, 201, "{b}");
    let session = header(&h, "location").unwrap().to_owned();
    let any_room = token("*", "watch", now() + 600);
    let (s, _, b) = post(
        &server,
        &format!("/whep/r1?token={any_room}"),
        &[],
        &viewer_offer(),
    );
    assert_eq!(s, 201, "{b}");

    // CORS preflights never need a token.
    let (s, _, _) = request(
        &server.base,
        "OPTIONS",
        "/whip/r1",
        &[
            ("Origin", "https://x.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert_eq!(s, 204, "preflight");
    let (s, _, _) = request(
        &server.base,
        "OPTIONS",
        &session,
        &[("Access-Control-Request-Method", "DELETE")],
        "",
    );
    assert_eq!(s, 204);

    // PATCH and DELETE: the same rules as the POST that made the session.
    let frag = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("If-Match", "*"),
    ];
    let (s, _, _) = request(&server.base, "PATCH", &session, &frag, "");
    assert_eq!(s, 401);
    let other_room = token("r2", "publish", now() + 600);
    let with = |t: &str| {
        let mut h = frag.to_vec();
        h.push(("Authorization", bearer(t).leak()));
        h
    };
    let (s, _, _) = request(&server.base, "PATCH", &session, &with(&other_room), "");
    assert_eq!(s, 403);
    let (s, _, _) = request(&server.base, "PATCH", &session, &with(&publish), "");
    assert_eq!(s, 204);
    let (s, _, _) = request(&server.base, "DELETE", &session, &[], "");
    assert_eq!(s, 401);
    let (s, _, _) = request(
        &server.base,
        "DELETE",
        &session,
        &[("Authorization", &bearer(&watch))],
        "",
    );
    assert_eq!(s, 403, "a watch token cannot end a publisher");
    let (s, _, _) = request(
        &server.base,
        "DELETE",
        &session,
        &[("Authorization", &bearer(&publish))],
        "",
    );
    assert_eq!(s, 200);
    assert!(server.stats()["signaling"]["auth_refused"].as_u64() >= Some(10));

    // GET/HEAD need no token and never fail.
    let (s, _, _) = request(&server.base, "GET", "/whip/r1", &[], "");
    assert!((200..300).contains(&s));
}

#[test]
fn clients_with_tokens_publish_and_watch() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--auth-key",
        &key_arg(),
        "--bearer-token",
        "static-secret",
    ]);
    let flags = Flags::default();
    let limit = Duration::from_secs(20);
    let with_token = |t: String| ClientOptions {
        signaling: Signaling {
            token: Some(t),
            ..Default::default()
        },
        ..Default::default()
    };
    let publisher = spawn_client(
        &server.base,
        "tok",
        ClientRole::Publish,
        with_token(token("tok", "publish", now() + 600)),
        &flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        "tok",
        ClientRole::Watch,
        with_token("static-secret".into()),
        &flags,
        limit,
    );
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    flags.stop.store(true, Ordering::Relaxed);
    let viewer = viewer.join();
    let publisher = publisher.join();
    assert!(viewer.received(Kind::Video).unique() > 50);
    // DELETE carries the token too.
    assert_eq!(viewer.delete().expect("DELETE"), 200);
    assert_eq!(publisher.delete().expect("DELETE"), 200);
    // Without one, a client cannot even start.
    let refused = uringcast_load::client::Client::connect(
        &server.base,
        "tok",
        ClientRole::Publish,
        ClientOptions::default(),
    );
    assert!(matches!(
        refused,
        Err(uringcast_load::client::ClientError::Status { status: 401, .. })
    ));
}

#[test]
fn bearer_undefined_is_ignored_when_auth_is_off() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (s, _, b) = post(
        &server,
        "/whip/u",
        &[("Authorization", "Bearer undefined")],
        &publish_offer(),
    );
    assert_eq!(s, 201, "{b}");
    let (s, _, b) = post(
        &server,
        "/whep/u?token=whatever",
        &[("Authorization", "Bearer undefined")],
        &viewer_offer(),
    );
    assert_eq!(s, 201, "{b}");
}

#[test]
fn ice_servers_are_linked_with_turn_rest_credentials() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--ice-server",
        "stun:stun.example.net:3478",
        "--ice-server",
        "turn:turn.example.net:3478?transport=udp",
        "--turn-secret",
        "north-pole-secret",
        "--turn-ttl",
        "1h",
    ]);
    let before = now();
    let (s, h, b) = post(&server, "/whip/links", &[], &publish_offer());
    assert_eq!(s, 201, "{b}");
    let links = headers_named(&h, "link");
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0], "<stun:stun.example.net:3478>; rel=\"ice-server\"");
    let turn = links[1];
    assert!(
        turn.starts_with(
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\""
        ),
        "{turn}"
    );
    assert!(turn.ends_with("; credential-type=\"password\""), "{turn}");
    let field = |name: &str| {
        let start = turn.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        turn[start..].split('"').next().unwrap().to_owned()
    };
    let username = field("username");
    let (expiry, id) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert!((before + 3600..=now() + 3600).contains(&expiry), "{expiry}");
    assert_eq!(id, "links");
    assert_eq!(
        field("credential"),
        uringcast::http::turn_rest_credential(b"north-pole-secret", &username)
    );

    // A plain OPTIONS lists them; a CORS preflight does not.
    let (s, h, _) = request(&server.base, "OPTIONS", "/whip/links", &[], "");
    assert_eq!(s, 204);
    assert_eq!(headers_named(&h, "link").len(), 2);
    assert_eq!(header(&h, "accept-post"), Some("application/sdp"));
    let (_, h, _) = request(
        &server.base,
        "OPTIONS",
        "/whip/links",
        &[
            ("Origin", "https://x.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert!(headers_named(&h, "link").is_empty(), "preflight: {h:?}");
}

#[test]
fn static_ice_credentials_and_links_only_for_token_holders() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--ice-server",
        "turns:turn.example.net:443?transport=tcp",
        "--ice-username",
        "user",
        "--ice-credential",
        "pass",
        "--bearer-token",
        "tok",
    ]);
    let want = "<turns:turn.example.net:443?transport=tcp>; rel=\"ice-server\"; username=\"user\"; credential=\"pass\"; credential-type=\"password\"";
    let (s, h, b) = post(
        &server,
        "/whip/s",
        &[("Authorization", "Bearer tok")],
        &publish_offer(),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(headers_named(&h, "link"), [want]);
    // OPTIONS: credentials only with a token.
    let (_, h, _) = request(&server.base, "OPTIONS", "/whip/s", &[], "");
    assert!(headers_named(&h, "link").is_empty());
    let (_, h, _) = request(
        &server.base,
        "OPTIONS",
        "/whip/s",
        &[("Authorization", "Bearer tok")],
        "",
    );
    assert_eq!(headers_named(&h, "link"), [want]);
}

#[test]
fn a_full_server_answers_503_with_retry_after() {
    let server = ServerProc::start(&["--shards", "1", "--max-sessions", "2"]);
    let (s, h, _) = post(&server, "/whip/a", &[], &publish_offer());
    assert_eq!(s, 201);
    let first = header(&h, "location").unwrap().to_owned();
    let (s, _, _) = post(&server, "/whip/b", &[], &publish_offer());
    assert_eq!(s, 201);
    let (s, h, b) = post(&server, "/whip/c", &[], &publish_offer());
    assert_eq!(s, 503, "{b}");
    assert!(header(&h, "retry-after").is_some_and(|v| v.parse::<u32>().is_ok()));
    assert_eq!(header(&h, "content-type"), Some("application/problem+json"));
    assert_eq!(server.stats()["signaling"]["full"], 1);
    let (s, _, _) = request(&server.base, "DELETE", &first, &[], "");
    assert_eq!(s, 200);
    let (s, _, _) = post(&server, "/whip/c", &[], &publish_offer());
    assert_eq!(s, 201);
}

#[test]
fn post_patch_and_delete_are_rate_limited_per_ip() {
    let server = ServerProc::start(&["--shards", "1", "--rate-limit", "1", "--rate-burst", "3"]);
    for room in ["a", "b", "c"] {
        let (s, _, b) = post(&server, &format!("/whip/{room}"), &[], &publish_offer());
        assert_eq!(s, 201, "{b}");
    }
    let (s, h, b) = post(&server, "/whip/d", &[], &publish_offer());
    assert_eq!(s, 429, "{b}");
    let wait: u32 = header(&h, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let (s, _, _) = request(
        &server.base,
        "DELETE",
        "/session/00000000000000000000000000000000",
        &[],
        "",
    );
    assert_eq!(s, 429, "DELETE counts too");
    let (s, _, _) = request(
        &server.base,
        "PATCH",
        "/session/00000000000000000000000000000000",
        &[
            ("Content-Type", "application/trickle-ice-sdpfrag"),
            ("If-Match", "*"),
        ],
        "",
    );
    assert_eq!(s, 429, "PATCH counts too");
    // Reads are not limited.
    for _ in 0..5 {
        assert_eq!(http(&server.base, "GET", "/v1/stats", None, "").0, 200);
        let (s, _, _) = request(&server.base, "OPTIONS", "/whip/a", &[], "");
        assert_eq!(s, 204);
    }
    assert!(server.stats()["signaling"]["rate_limited"].as_u64() >= Some(3));
    // The bucket refills.
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _, b) = post(&server, "/whip/d", &[], &publish_offer());
    assert_eq!(s, 201, "{b}");
}

#[test]
fn get_and_head_on_the_endpoints_are_2xx_without_a_body() {
    let server = ServerProc::start(&["--shards", "1"]);
    for path in ["/whip/x", "/whep/x"] {
        for method in ["GET", "HEAD"] {
            let (s, h, b) = request(&server.base, method, path, &[], "");
            assert!((200..300).contains(&s), "{method} {path}: {s}");
            assert!(b.is_empty(), "{method} {path}: no body");
            if path.starts_with("/whep") {
                assert_eq!(
                    header(&h, "content-type"),
                    Some("application/sdp"),
                    "{method} {path}"
                );
            }
        }
    }
    // Even for a room name we would refuse on POST.
    let (s, _, _) = request(&server.base, "HEAD", "/whep/bad%20name", &[], "");
    assert!((200..300).contains(&s));
}
