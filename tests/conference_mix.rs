//! Conference rooms meeting WHIP and WHEP, selective subscription, and
//! participants joining late and leaving mid-run, with real str0m clients
//! over real UDP.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::room::{join, wait_for};
use common::{Flags, Running, ServerProc, spawn_client};
use serde_json::json;
use uringcast_load::client::conference::Participant;
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole, swarm};

fn options(tag: u32) -> ClientOptions {
    ClientOptions {
        tag,
        video_bitrate: 300_000,
        ..ClientOptions::default()
    }
}

/// Runs `client` for `for_` with its own flags (publishers elsewhere keep
/// sending), then gives it back.
fn run_for(client: Client, for_: Duration) -> Client {
    let flags = Flags::default();
    let running = Running::from(swarm::run(client, "phase".into(), &flags, for_).expect("thread"));
    std::thread::sleep(for_);
    flags.stop.store(true, Ordering::Relaxed);
    running.join()
}

#[test]
fn a_whip_publisher_is_a_participant_and_whep_follows_the_main_one_or_the_named_one() {
    let server = ServerProc::start(&[]);
    let flags = Flags::default();
    let limit = Duration::from_secs(40);
    // A conference participant publishes; then OBS-like WHIP joins.
    let ana = join(&server, "mix", "ana", 1, &flags);
    let whip = spawn_client(
        &server.base,
        "mix",
        ClientRole::Publish,
        options(9),
        &flags,
        limit,
    );
    let joined = wait_for(&ana.events, Duration::from_secs(5), |e| {
        e.name == "participantJoined"
            && e.data["participant"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("whip-"))
    })
    .expect("the WHIP publisher joins as a participant");
    let whip_id = joined.data["participant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        joined.data["participant"]["tracks"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // WHEP without a name: the WHIP publisher (main). With a name: ana.
    let main_viewer = spawn_client(
        &server.base,
        "mix",
        ClientRole::Watch,
        options(0),
        &flags,
        limit,
    );
    let named = Client::connect_to(
        &server.base,
        &format!("{}/whep/mix?participant=ana", server.base),
        ClientRole::Watch,
        options(0),
    )
    .expect("a WHEP viewer of ana");
    let named = Running::from(swarm::run(named, "named".into(), &flags, limit).expect("thread"));
    // ana's publish and subscribe transports, the WHIP one, two WHEP viewers.
    assert!(
        flags.wait_connected(5, Duration::from_secs(15)),
        "every transport connects"
    );
    std::thread::sleep(Duration::from_millis(1200));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(400));
    flags.stop.store(true, Ordering::Relaxed);
    let (whip, main_viewer, named) = (whip.join(), main_viewer.join(), named.join());
    let ana_pub = ana.publisher.join();
    let ana_sub = ana.subscriber.join();
    for kind in [Kind::Audio, Kind::Video] {
        let sent = whip.sent(kind);
        let got = main_viewer.received_from(kind, 9);
        assert!(
            got * 100 >= sent * 95,
            "WHEP main: {got} of {sent} {kind:?} from WHIP"
        );
        assert_eq!(main_viewer.received_from(kind, 1), 0, "not ana's");
        let sent = ana_pub.sent(kind);
        let got = named.received_from(kind, 1);
        assert!(
            got * 100 >= sent * 95,
            "WHEP ?participant=ana: {got} of {sent} {kind:?}"
        );
        assert_eq!(named.received_from(kind, 9), 0, "not the WHIP publisher's");
        let sent = whip.sent(kind);
        let got = ana_sub.received_from(kind, 9);
        assert!(
            got * 100 >= sent * 95,
            "ana got {got} of {sent} {kind:?} from WHIP"
        );
    }
    // The WHIP session ends: its participant leaves.
    assert_eq!(whip.delete().expect("DELETE"), 200);
    let left = wait_for(&ana.events, Duration::from_secs(5), |e| {
        e.name == "participantLeft"
    });
    assert_eq!(
        left.expect("the WHIP participant leaves").data["id"],
        whip_id.as_str()
    );
}

#[test]
fn an_unsubscribed_camera_stops_arriving_while_the_microphone_goes_on() {
    let server = ServerProc::start(&[]);
    let flags = Flags::default();
    let ana = join(&server, "pick", "ana", 1, &flags);
    let bo = Participant::join(
        &server.base,
        "pick",
        &json!({ "id": "bo" }),
        Default::default(),
    )
    .expect("bo joins");
    let (bo_events, offers) = bo.events().expect("bo's stream");
    let sub = bo.subscribe(options(0), offers).expect("bo subscribes");
    assert!(
        flags.wait_connected(2, Duration::from_secs(15)),
        "ana connects"
    );
    flags.send.store(true, Ordering::Relaxed);
    let sub = run_for(sub, Duration::from_millis(2000));
    let (video_a, audio_a) = (
        sub.received_from(Kind::Video, 1),
        sub.received_from(Kind::Audio, 1),
    );
    assert!(
        video_a > 30 && audio_a > 30,
        "bo gets ana's camera ({video_a}) and mic ({audio_a})"
    );
    assert_eq!(
        bo.post("subscription", &json!({ "ana": { "camera": false } }))
            .unwrap(),
        204
    );
    assert_eq!(
        bo.post("subscription", &json!({ "nobody": { "camera": false } }))
            .unwrap(),
        404
    );
    assert_eq!(
        bo.post("subscription", &json!({ "ana": { "lens": false } }))
            .unwrap(),
        400
    );
    let offer = wait_for(&bo_events, Duration::from_secs(5), |e| e.name == "offer")
        .expect("an offer that stops the camera");
    assert_eq!(
        offer.data["tracks"].as_array().map(Vec::len),
        Some(1),
        "only the microphone left"
    );
    // The answer goes out; the camera's last packets drain.
    let sub = run_for(sub, Duration::from_millis(800));
    let (video_b, audio_b) = (
        sub.received_from(Kind::Video, 1),
        sub.received_from(Kind::Audio, 1),
    );
    let sub = run_for(sub, Duration::from_millis(1500));
    let (video_c, audio_c) = (
        sub.received_from(Kind::Video, 1),
        sub.received_from(Kind::Audio, 1),
    );
    flags.stop.store(true, Ordering::Relaxed);
    assert_eq!(video_c, video_b, "no camera packet after the stop");
    assert!(
        audio_c >= audio_b + 50,
        "the microphone goes on ({audio_b} → {audio_c})"
    );
    let _ = (ana.publisher.join(), ana.subscriber.join());
}

#[test]
fn a_late_joiner_and_a_leaver_are_seen_by_everyone_within_a_second() {
    let server = ServerProc::start(&[]);
    let flags = Flags::default();
    let members: Vec<_> = (1..=3)
        .map(|i| join(&server, "late", &format!("p{i}"), i, &flags))
        .collect();
    for m in &members {
        while m.events.try_recv().is_ok() {}
    }
    let started = Instant::now();
    let late = join(&server, "late", "p4", 4, &flags);
    for m in &members {
        let seen = wait_for(&m.events, Duration::from_secs(1), |e| {
            e.name == "participantJoined" && e.data["participant"]["id"] == "p4"
        });
        let seen = seen.unwrap_or_else(|| panic!("p{} did not see p4 join within 1 s", m.tag));
        assert!(seen.at.duration_since(started) < Duration::from_secs(1));
    }
    let left_at = Instant::now();
    assert_eq!(members[0].participant.leave().unwrap(), 200);
    for m in members.iter().skip(1).chain(std::iter::once(&late)) {
        let seen = wait_for(&m.events, Duration::from_secs(1), |e| {
            e.name == "participantLeft" && e.data["id"] == "p1"
        });
        let seen = seen.unwrap_or_else(|| panic!("p{} did not see p1 leave within 1 s", m.tag));
        assert!(seen.at.duration_since(left_at) < Duration::from_secs(1));
    }
    flags.stop.store(true, Ordering::Relaxed);
}

#[test]
fn whep_follows_the_participant_that_speaks() {
    let server = ServerProc::start(&[]);
    let flags = Flags::default();
    let limit = Duration::from_secs(40);
    let speaking = |tag, level| ClientOptions {
        audio_level: Some(level),
        ..options(tag)
    };
    // ana speaks (RFC 6464 level −20 dBov); bo publishes later, silent, so
    // it is the main participant at first.
    let ana = Participant::join(
        &server.base,
        "talk",
        &json!({ "id": "ana" }),
        Default::default(),
    )
    .expect("ana");
    let (_ana_events, _) = ana.events().expect("stream");
    let ana_pub = ana.publish(speaking(1, -20), "").expect("ana publishes");
    let ana_pub = Running::from(swarm::run(ana_pub, "ana".into(), &flags, limit).expect("thread"));
    assert!(flags.wait_connected(1, Duration::from_secs(10)));
    let bo = Participant::join(
        &server.base,
        "talk",
        &json!({ "id": "bo" }),
        Default::default(),
    )
    .expect("bo");
    let (_bo_events, _) = bo.events().expect("stream");
    let bo_pub = bo.publish(speaking(2, -127), "").expect("bo publishes");
    let bo_pub = Running::from(swarm::run(bo_pub, "bo".into(), &flags, limit).expect("thread"));
    let viewer = spawn_client(
        &server.base,
        "talk",
        ClientRole::Watch,
        options(0),
        &flags,
        limit,
    );
    assert!(
        flags.wait_connected(3, Duration::from_secs(15)),
        "connected"
    );
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    flags.stop.store(true, Ordering::Relaxed);
    let (viewer, _, _) = (viewer.join(), ana_pub.join(), bo_pub.join());
    let from_ana = viewer.received_from(Kind::Audio, 1);
    let from_bo = viewer.received_from(Kind::Audio, 2);
    assert!(
        from_ana >= 50,
        "the viewer switched to the speaker: {from_ana} audio packets of ana, {from_bo} of bo"
    );
    assert_eq!(viewer.received(Kind::Audio).summary().corrupt, 0);
}
