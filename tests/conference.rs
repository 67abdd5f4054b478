//! Conference rooms with real str0m clients over real UDP: participants
//! join over HTTP, read their event streams, publish audio and video on a
//! publish transport and receive everyone else's on a subscribe transport
//! the server offers (and re-offers as participants come and go).

mod common;

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::room::{Member, SEND_FOR, join, wait_for};
use common::{Flags, Running, ServerProc};
use serde_json::json;
use uringcast_load::client::conference::{Participant, RoomEvent};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, swarm};

#[test]
fn six_participants_each_receive_the_other_five_across_two_shards() {
    let server = ServerProc::start(&["--shards", "2"]);
    let flags = Flags::default();
    let members: Vec<Member> = (1..=6)
        .map(|i| join(&server, "standup", &format!("p{i}"), i, &flags))
        .collect();
    // 6 publish + 6 subscribe transports.
    assert!(
        flags.wait_connected(12, Duration::from_secs(20)),
        "every transport connects"
    );
    // Let the last offers (each later joiner's tracks) be answered.
    std::thread::sleep(Duration::from_millis(1500));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(SEND_FOR);
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    let stats = server.stats();
    let peers: Vec<u64> = stats["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["peers"].as_u64().unwrap_or(0))
        .collect();
    // 12 transports hashed over 2 sockets: all on one has odds of 1 in 2048.
    assert!(
        peers.iter().all(|&p| p > 0),
        "transports on both shards: {peers:?}"
    );
    assert!(
        server.shard_sum("cross_shard_out") > 0,
        "packets crossed shards"
    );
    let ended: Vec<(u32, Client, Client)> = members
        .into_iter()
        .map(|m| (m.tag, m.publisher.join(), m.subscriber.join()))
        .collect();
    let mut streams = 0;
    for (tag, _, subscriber) in &ended {
        for (from, publisher, _) in ended.iter().filter(|(t, _, _)| t != tag) {
            for kind in [Kind::Audio, Kind::Video] {
                let sent = publisher.sent(kind);
                assert!(sent > 50, "p{from} sent {sent} {kind:?} packets");
                let got = subscriber.received_from(kind, *from);
                assert!(
                    got * 100 >= sent * 99,
                    "p{tag} got {got} of {sent} {kind:?} packets from p{from} (need ≥ 99 %)"
                );
                streams += usize::from(kind == Kind::Video);
            }
        }
        for kind in [Kind::Audio, Kind::Video] {
            let summary = subscriber.received(kind).summary();
            assert_eq!(
                summary.corrupt, 0,
                "p{tag} {kind:?}: payloads byte-identical"
            );
            assert_eq!(summary.duplicates, 0, "p{tag} {kind:?}: no duplicates");
            assert_eq!(
                subscriber.received_from(kind, *tag),
                0,
                "p{tag} does not get its own media"
            );
        }
    }
    assert_eq!(streams, 30, "30 video streams checked");
}

#[test]
fn joins_leaves_info_broadcasts_and_messages_reach_the_others() {
    let server = ServerProc::start(&[]);
    let base = &server.base;
    let ana = Participant::join(
        base,
        "talk",
        &json!({ "id": "ana", "info": { "name": "Ana" } }),
        Default::default(),
    )
    .expect("ana joins");
    let (ana_events, _) = ana.events().expect("ana's stream");
    let first = ana_events
        .recv_timeout(Duration::from_secs(5))
        .expect("a first event");
    assert_eq!(first.name, "snapshot");
    assert_eq!(first.data["participants"], json!([]), "nobody else yet");
    let bo = Participant::join(base, "talk", &json!({ "id": "bo" }), Default::default())
        .expect("bo joins");
    assert_eq!(
        bo.snapshot["participants"][0]["id"], "ana",
        "bo's snapshot lists ana"
    );
    assert_eq!(bo.snapshot["participants"][0]["info"]["name"], "Ana");
    let (bo_events, _) = bo.events().expect("bo's stream");
    let next = |rx: &Receiver<RoomEvent>, name: &str| -> RoomEvent {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let e = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {name} event within 5 s"));
            if e.name == name {
                return e;
            }
        }
    };
    assert_eq!(
        next(&ana_events, "participantJoined").data["participant"]["id"],
        "bo"
    );
    assert_eq!(bo.post("info", &json!({ "muted": true })).unwrap(), 204);
    let info = next(&ana_events, "info");
    assert_eq!(
        info.data,
        json!({ "participant": "bo", "info": { "muted": true } })
    );
    assert_eq!(
        ana.post("broadcast", &json!({ "text": "hi all" })).unwrap(),
        204
    );
    let said = next(&bo_events, "broadcast");
    assert_eq!(
        said.data,
        json!({ "from": "ana", "payload": { "text": "hi all" } })
    );
    assert_eq!(
        bo.post("message/ana", &json!({ "sdp": "v=0…" })).unwrap(),
        204
    );
    let direct = next(&ana_events, "message");
    assert_eq!(
        direct.data,
        json!({ "from": "bo", "payload": { "sdp": "v=0…" } })
    );
    assert_eq!(
        bo.post("message/nobody", &json!({})).unwrap(),
        404,
        "an unknown recipient"
    );
    let big = json!({ "blob": "x".repeat(17 * 1024) });
    assert_eq!(
        bo.post("broadcast", &big).unwrap(),
        413,
        "over the 16 KiB cap"
    );
    assert_eq!(
        bo.post("info", &json!([1, 2])).unwrap(),
        400,
        "info must be an object"
    );
    assert_eq!(bo.leave().unwrap(), 200);
    assert_eq!(next(&ana_events, "participantLeft").data["id"], "bo");
    assert_eq!(bo.leave().unwrap(), 404, "a second leave");
}

#[test]
fn a_stale_answer_is_a_conflict_and_a_late_publisher_is_offered_to_everyone() {
    let server = ServerProc::start(&[]);
    let flags = Flags::default();
    let watcher = Participant::join(
        &server.base,
        "late",
        &json!({ "id": "w" }),
        Default::default(),
    )
    .expect("join");
    let (w_events, offers) = watcher.events().expect("stream");
    let subscriber = watcher
        .subscribe(ClientOptions::default(), offers)
        .expect("subscribe: revision 1 answered");
    let stale = watcher
        .post("answer", &json!({ "revision": 1, "sdp": "v=0\r\n" }))
        .unwrap();
    assert_eq!(stale, 409, "revision 1 was answered already");
    assert_eq!(watcher.post("answer", &json!({ "sdp": 3 })).unwrap(), 400);
    let subscriber = Running::from(
        swarm::run(subscriber, "sub-w".into(), &flags, Duration::from_secs(30)).expect("thread"),
    );
    // A participant publishes later: the watcher is offered its tracks.
    let late = join(&server, "late", "p7", 7, &flags);
    let seen = wait_for(&w_events, Duration::from_secs(5), |e| {
        e.name == "offer" && e.data["tracks"].as_array().is_some_and(|t| t.len() == 2)
    });
    let seen = seen.expect("an offer with p7's two tracks within 5 s");
    for track in seen.data["tracks"].as_array().unwrap() {
        assert_eq!(track["participant"], "p7");
    }
    assert!(
        flags.wait_connected(3, Duration::from_secs(15)),
        "all three transports connect"
    );
    std::thread::sleep(Duration::from_millis(800));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(400));
    flags.stop.store(true, Ordering::Relaxed);
    let subscriber = subscriber.join();
    let publisher = late.publisher.join();
    let _ = late.subscriber.join();
    let sent = publisher.sent(Kind::Video);
    let got = subscriber.received_from(Kind::Video, 7);
    assert!(
        got * 100 >= sent * 95,
        "the watcher got {got} of {sent} video packets of p7"
    );
}

#[test]
fn a_second_event_stream_replaces_the_first_and_a_vanished_participant_is_reaped() {
    let server = ServerProc::start(&["--connect-timeout", "1s"]);
    let base = &server.base;
    let ana = Participant::join(base, "reap", &json!({ "id": "ana" }), Default::default())
        .expect("ana joins");
    let (first, _) = ana.events().expect("a first stream");
    assert_eq!(
        first
            .recv_timeout(Duration::from_secs(5))
            .expect("snapshot")
            .name,
        "snapshot"
    );
    let (second, _) = ana.events().expect("a second stream");
    assert_eq!(
        second
            .recv_timeout(Duration::from_secs(5))
            .expect("snapshot")
            .name,
        "snapshot"
    );
    // The first stream ends: its reader sees the end of the body.
    let ended = Instant::now() + Duration::from_secs(15);
    loop {
        match first.recv_timeout(Duration::from_millis(200)) {
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            _ if Instant::now() > ended => panic!("the replaced stream did not end"),
            _ => {}
        }
    }
    // A participant that joins and never opens its stream or a transport
    // is gone after --connect-timeout.
    let ghost = Participant::join(base, "reap", &json!({ "id": "ghost" }), Default::default())
        .expect("ghost joins");
    let left = wait_for(&second, Duration::from_secs(6), |e| {
        e.name == "participantLeft" && e.data["id"] == "ghost"
    })
    .expect("the ghost is reaped");
    assert_eq!(left.data["reason"], "gone");
    assert_eq!(ghost.post("info", &json!({})).unwrap(), 404);
    assert_eq!(
        ana.post("info", &json!({ "still": "here" })).unwrap(),
        204,
        "ana streams: kept"
    );
}
