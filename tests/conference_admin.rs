//! The conference room's control plane over real HTTP: the admin API
//! (create, list, show, disconnect, close), join approval by an owner, and
//! the grants of a participant's JWT.

mod common;

use std::sync::mpsc::Receiver;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{ServerProc, request};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use uringcast_load::client::Signaling;
use uringcast_load::client::conference::{Participant, RoomEvent};

const KEY: &[u8] = b"a conference key of at least 32 bytes!";
const ADMIN: &str = "admin-secret-0123456789";

fn jwt(claims: Value) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut claims = claims;
    claims["exp"] = json!(exp);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY),
    )
    .unwrap()
}

fn with_token(token: &str) -> Signaling {
    Signaling {
        token: Some(token.to_owned()),
        ..Signaling::default()
    }
}

fn server() -> ServerProc {
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    ServerProc::start(&[
        "--auth-key",
        &key,
        "--admin-token",
        ADMIN,
        "--approval-timeout",
        "2s",
    ])
}

fn admin(server: &ServerProc, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {ADMIN}");
    let (status, _, text) = request(
        &server.base,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn next(rx: &Receiver<RoomEvent>, name: &str) -> RoomEvent {
    next_within(rx, name, Duration::from_secs(5))
}

#[test]
fn the_admin_api_creates_lists_shows_disconnects_and_closes_rooms() {
    let server = server();
    let base = &server.base;
    let (status, _, _) = request(
        base,
        "POST",
        "/v1/rooms",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(status, 401, "no token");
    let owner_token = jwt(json!({ "room": "*", "role": "*", "owner": true }));
    let auth = format!("Bearer {owner_token}");
    let (status, _, _) = request(base, "GET", "/v1/rooms", &[("Authorization", &auth)], "");
    assert_eq!(status, 403, "an owner is not an admin");
    let (status, created) = admin(
        &server,
        "POST",
        "/v1/rooms",
        r#"{"name": "board", "size": 2}"#,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["join"], "/v1/rooms/board/participants");
    assert_eq!(
        admin(&server, "POST", "/v1/rooms", r#"{"name": "board"}"#).0,
        409,
        "exists"
    );
    assert_eq!(
        admin(&server, "POST", "/v1/rooms", r#"{"size": "two"}"#).0,
        400
    );
    assert_eq!(
        admin(&server, "POST", "/v1/rooms", r#"{"name": "no/slash"}"#).0,
        400
    );
    // The room stays though nobody is in it.
    let (_, rooms) = admin(&server, "GET", "/v1/rooms", "");
    assert_eq!(rooms[0]["name"], "board");
    assert_eq!(rooms[0]["config"], json!({ "size": 2, "approval": false }));
    let token = |sub: &str| {
        jwt(json!({ "room": "board", "role": "*", "sub": sub, "name": sub.to_uppercase() }))
    };
    let ana = Participant::join(base, "board", &json!({}), with_token(&token("ana"))).expect("ana");
    assert_eq!(ana.id, "ana", "the id is the token's sub");
    let (ana_events, _) = ana.events().expect("stream");
    let bo = Participant::join(
        base,
        "board",
        &json!({ "id": "mallory" }),
        with_token(&token("bo")),
    )
    .expect("bo");
    assert_eq!(bo.id, "bo", "a body cannot override the token's sub");
    let third = Participant::join(base, "board", &json!({}), with_token(&token("cy")));
    assert!(
        format!("{third:?}").contains("403"),
        "the room's size is 2: {third:?}"
    );
    let other_room = jwt(json!({ "room": "elsewhere", "role": "*" }));
    let refused = Participant::join(base, "board", &json!({}), with_token(&other_room));
    assert!(format!("{refused:?}").contains("403"), "{refused:?}");
    let (status, detail) = admin(&server, "GET", "/v1/rooms/board", "");
    assert_eq!(status, 200);
    let ids: Vec<&str> = detail["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ana", "bo"]);
    assert_eq!(
        detail["participants"][1]["info"]["name"], "BO",
        "the token's name"
    );
    assert_eq!(
        admin(&server, "POST", "/v1/rooms/board/disconnect/bo", "").0,
        200
    );
    let left = next(&ana_events, "participantLeft");
    assert_eq!(left.data, json!({ "id": "bo", "reason": "disconnected" }));
    assert_eq!(bo.post("info", &json!({})).unwrap(), 404, "bo is gone");
    assert_eq!(
        admin(&server, "POST", "/v1/rooms/board/disconnect/bo", "").0,
        404
    );
    assert_eq!(admin(&server, "DELETE", "/v1/rooms/board", "").0, 200);
    assert_eq!(
        admin(&server, "GET", "/v1/rooms/board", "").0,
        404,
        "closed"
    );
    assert_eq!(
        ana.post("info", &json!({})).unwrap(),
        404,
        "ana left with the room"
    );
    assert_eq!(admin(&server, "DELETE", "/v1/rooms/board", "").0, 404);
}

#[test]
fn an_approval_room_holds_joiners_until_an_owner_answers() {
    let server = server();
    let base = &server.base;
    assert_eq!(
        admin(
            &server,
            "POST",
            "/v1/rooms",
            r#"{"name": "vip", "approval": true}"#
        )
        .0,
        201
    );
    let owner = Participant::join(
        base,
        "vip",
        &json!({}),
        with_token(&jwt(
            json!({ "room": "vip", "role": "*", "sub": "host", "owner": true }),
        )),
    )
    .expect("an owner joins at once");
    let (owner_events, _) = owner.events().expect("stream");
    let guest = |sub: &str| jwt(json!({ "room": "vip", "role": "*", "sub": sub }));
    let ana = Participant::join(
        base,
        "vip",
        &json!({ "info": { "why": "hi" } }),
        with_token(&guest("ana")),
    )
    .expect("ana asks to join (202)");
    assert_eq!(ana.snapshot["admission"], "waiting");
    let (ana_events, _) = ana.events().expect("a waiting joiner has a stream");
    let asked = next(&owner_events, "joinRequest");
    assert_eq!(asked.data["participant"]["id"], "ana");
    assert_eq!(asked.data["participant"]["info"]["why"], "hi");
    assert_eq!(
        ana.post("broadcast", &json!({})).unwrap(),
        403,
        "not before approval"
    );
    let mallory = Participant::join(base, "vip", &json!({}), with_token(&guest("mallory")))
        .expect("mallory asks");
    let (mallory_events, _) = mallory.events().expect("stream");
    // Only an owner answers.
    let as_ana = ana.post("approve/mallory", &json!({})).unwrap();
    assert_eq!(as_ana, 403);
    assert_eq!(owner.post("approve/ana", &json!({})).unwrap(), 204);
    let snapshot = next(&ana_events, "snapshot");
    let snapshot = if snapshot.data["admission"] == "waiting" {
        next(&ana_events, "snapshot")
    } else {
        snapshot
    };
    assert_eq!(
        snapshot.data["participants"][0]["id"], "host",
        "admitted: the room as it is"
    );
    assert_eq!(
        next(&owner_events, "participantJoined").data["participant"]["id"],
        "ana"
    );
    assert_eq!(ana.post("broadcast", &json!({ "x": 1 })).unwrap(), 204);
    assert_eq!(
        owner
            .post("reject/mallory", &json!({ "reason": "not on the list" }))
            .unwrap(),
        204
    );
    let rejected = next(&mallory_events, "rejected");
    assert_eq!(rejected.data["reason"], "not on the list");
    let (status, _, body) = request(
        base,
        "POST",
        &format!("{}/info", mallory.url.trim_start_matches(base.as_str())),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {}", guest("mallory"))),
        ],
        "{}",
    );
    assert_eq!(status, 403);
    assert!(body.contains("not on the list"), "the 403 says why: {body}");
    assert_eq!(
        owner.post("approve/mallory", &json!({})).unwrap(),
        404,
        "no longer waiting"
    );
}

#[test]
fn a_token_without_the_publish_grant_cannot_publish_a_source() {
    let server = server();
    let base = &server.base;
    let token = jwt(json!({ "room": "r", "role": "*", "sub": "s", "publish": ["microphone"] }));
    let p = Participant::join(base, "r", &json!({}), with_token(&token)).expect("join");
    let options = uringcast_load::client::ClientOptions {
        signaling: with_token(&token),
        ..Default::default()
    };
    let refused = p.publish(options.clone(), "").map(|_| ());
    assert!(
        format!("{refused:?}").contains("403"),
        "camera not granted: {refused:?}"
    );
    let audio_only = uringcast_load::client::ClientOptions {
        video: false,
        ..options
    };
    assert!(
        p.publish(audio_only, "").is_ok(),
        "the microphone is granted"
    );
    let watcher = jwt(json!({ "room": "r", "role": "publish", "sub": "w" }));
    let w = Participant::join(base, "r", &json!({}), with_token(&watcher)).expect("join");
    let (_, offers) = w.events().expect("stream");
    let sub = w.subscribe(
        uringcast_load::client::ClientOptions {
            signaling: with_token(&watcher),
            ..Default::default()
        },
        offers,
    );
    assert!(
        format!("{:?}", sub.map(|_| ())).contains("403"),
        "role publish does not subscribe"
    );
}

#[test]
fn a_join_request_nobody_answers_expires_as_a_rejection() {
    let server = server();
    let base = &server.base;
    assert_eq!(
        admin(
            &server,
            "POST",
            "/v1/rooms",
            r#"{"name": "quiet", "approval": true}"#
        )
        .0,
        201
    );
    let token = jwt(json!({ "room": "quiet", "role": "*", "sub": "ana" }));
    let ana = Participant::join(base, "quiet", &json!({}), with_token(&token)).expect("ana asks");
    let (events, _) = ana.events().expect("stream");
    let started = std::time::Instant::now();
    let rejected = next_within(&events, "rejected", Duration::from_secs(6));
    assert!(
        rejected.data["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no owner answered")),
        "{}",
        rejected.data
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before --approval-timeout"
    );
    assert_eq!(ana.post("info", &json!({})).unwrap(), 403);
}

fn next_within(rx: &Receiver<RoomEvent>, name: &str, limit: Duration) -> RoomEvent {
    let end = std::time::Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let e = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {name} event within {limit:?}"));
        if e.name == name {
            return e;
        }
    }
}

#[test]
fn patch_on_the_publish_transport_refuses_what_the_grant_or_the_state_does_not_allow() {
    use str0m::media::{Direction, MediaKind};
    let server = server();
    let base = &server.base;
    let token =
        jwt(json!({ "room": "p", "role": "*", "sub": "ana", "publish": ["microphone", "camera"] }));
    let ana = Participant::join(base, "p", &json!({}), with_token(&token)).expect("join");
    let path = format!("{}/publish", ana.url.trim_start_matches(base.as_str()));
    let auth = format!("Bearer {token}");
    let sdp = |kinds: &[MediaKind]| common::offer(kinds, Direction::SendOnly, |c| c);
    let send = |method: &str, path: &str, ct: &str, body: &str| {
        request(
            base,
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", ct)],
            body,
        )
    };
    let av = sdp(&[MediaKind::Audio, MediaKind::Video]);
    let (status, _, body) = send("PATCH", &path, "application/sdp", &av);
    assert_eq!(status, 404, "no publish transport yet: {body}");
    let (status, _, body) = send("POST", &path, "application/sdp", &av);
    assert_eq!(status, 201, "{body}");
    let with_screen = sdp(&[MediaKind::Audio, MediaKind::Video, MediaKind::Video]);
    let (status, _, body) = send("PATCH", &path, "application/sdp", &with_screen);
    assert_eq!(status, 403, "the token does not grant the screen: {body}");
    assert!(body.contains("screen"), "{body}");
    let (status, _, _) = send("PATCH", &path, "text/plain", &av);
    assert_eq!(status, 415);
    let (status, _, _) = send("PATCH", &format!("{path}?lens=1"), "application/sdp", &av);
    assert_eq!(status, 400, "an unknown source in the query");
    let (status, _, _) = send("PATCH", &path, "application/sdp", "v=0\r\nnot sdp");
    assert_eq!(status, 400);
    // The transport is unharmed: the room still lists ana's two tracks.
    let (_, detail) = admin(&server, "GET", "/v1/rooms/p", "");
    assert_eq!(
        detail["participants"][0]["tracks"].as_array().map(Vec::len),
        Some(2),
        "{detail}"
    );
}
