//! The sfu core in virtual time, with no sockets (see [`super::sim`]):
//! forwarding, PT mapping, keyframe aggregation/throttling, panic isolation,
//! consent and reaping.

use std::time::{Duration, Instant};

use str0m::Event;
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind};

use super::sim::*;
use super::*;

#[test]
fn a_publishers_packets_reach_every_viewer_with_their_own_payload_type() {
    let mut world = connected_world(2);
    let mut seq = 100u64;
    world.run(Duration::from_millis(500), Duration::from_millis(10), |w| {
        let payload: Vec<u8> = (0..200u32).map(|i| (i as u64 + seq) as u8).collect();
        w.publish(seq, payload);
        seq += 1;
    });
    let sent = (seq - 100) as usize;
    let publisher_pt = *world
        .publisher
        .0
        .rtc
        .codec_config()
        .find(|p| p.spec().codec == Codec::Vp8)
        .unwrap()
        .pt();
    for (end, _) in &world.viewers {
        let got = rtp_payloads(&end.events);
        assert!(
            got.len() >= sent - 1,
            "{} of {sent} packets arrived",
            got.len()
        );
        let viewer_vp8 = *end
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        assert_ne!(viewer_vp8, publisher_pt, "the test covers PT mapping");
        for (pt, payload) in &got {
            assert_eq!(
                *pt, viewer_vp8,
                "rewritten to the viewer's VP8 payload type"
            );
            let first = payload[0];
            let expected: Vec<u8> = (0..200u32).map(|i| first.wrapping_add(i as u8)).collect();
            assert_eq!(payload, &expected, "payload byte-identical");
        }
    }
}

#[test]
fn viewers_keyframe_requests_are_merged_and_throttled() {
    let mut world = connected_world(2);
    let mut seq = 1u64;
    world.run(Duration::from_millis(200), Duration::from_millis(10), |w| {
        w.publish(seq, vec![0x10; 100]);
        seq += 1;
    });
    let before = world
        .publisher
        .0
        .events
        .iter()
        .filter(|e| matches!(e, Event::KeyframeRequest(_)))
        .count();
    // Both viewers send a PLI every 50 ms for 2 s: 80 requests.
    let mut tick = 0u32;
    world.run(Duration::from_secs(2), Duration::from_millis(10), |w| {
        w.publish(seq, vec![0x10; 100]);
        seq += 1;
        tick += 1;
        if tick.is_multiple_of(5) {
            for (end, _) in &mut w.viewers {
                let ssrc = end
                    .rtc
                    .direct_api()
                    .stream_rx_by_mid(end.mid.unwrap(), None)
                    .map(|s| s.ssrc());
                if let Some(ssrc) = ssrc {
                    end.rtc
                        .direct_api()
                        .stream_rx(&ssrc)
                        .unwrap()
                        .request_keyframe(KeyframeRequestKind::Pli);
                }
            }
        }
    });
    let after = world
        .publisher
        .0
        .events
        .iter()
        .filter(|e| matches!(e, Event::KeyframeRequest(_)))
        .count();
    let reached = after - before;
    assert!(
        world.keyframe_asks >= 40,
        "viewers' PLIs reached the server: {}",
        world.keyframe_asks
    );
    // One per 500 ms over 2 s, plus the edges: never anywhere near 80.
    assert!(
        (3..=6).contains(&reached),
        "{reached} keyframe requests reached the publisher"
    );
}

#[test]
fn a_panic_inside_a_peer_closes_that_peer_only() {
    let mut world = connected_world(2);
    let now = world.now;
    let mut out = Outputs::default();
    world.viewers[0]
        .1
        .guarded(now, &mut out, |_, _| panic!("injected"));
    assert_eq!(world.viewers[0].1.closed(), Some(CloseReason::Panicked));
    assert_eq!(world.viewers[1].1.closed(), None);
    assert_eq!(world.publisher.1.closed(), None);
    // The closed peer takes no more calls; the others keep working.
    world.viewers[0].1.handle_timeout(now, &mut out);
    let mut seq = 1u64;
    world.run(Duration::from_millis(300), Duration::from_millis(10), |w| {
        w.publish(seq, vec![0x10; 64]);
        seq += 1;
    });
    assert!(rtp_payloads(&world.viewers[1].0.events).len() >= 20);
}

#[test]
fn consent_keeps_peers_alive_and_silence_reaps_them() {
    let mut world = connected_world(1);
    // 20 s of virtual time, longer than the ICE timeout: the clients' str0m
    // sends its consent checks, and nobody is reaped.
    world.run(Duration::from_secs(20), Duration::from_millis(50), |_| {});
    assert_eq!(world.publisher.1.closed(), None);
    assert_eq!(world.viewers[0].1.closed(), None);

    // The viewer's client vanishes: its server peer only sees time pass.
    let mut out = Outputs::default();
    let silent_since = world.now;
    let viewer = &mut world.viewers[0].1;
    let mut now = silent_since;
    while viewer.closed().is_none() && now < silent_since + Duration::from_secs(30) {
        now += Duration::from_millis(100);
        viewer.handle_timeout(now, &mut out);
    }
    let took = now - silent_since;
    assert!(
        matches!(
            viewer.closed(),
            Some(CloseReason::Silent | CloseReason::Disconnected)
        ),
        "{:?}",
        viewer.closed()
    );
    assert!(
        took >= Duration::from_secs(10) && took <= Duration::from_millis(15_200),
        "reaped after {took:?} of silence (ICE timeout 15 s)"
    );

    let fresh = World::new(0);
    let (_, mut publisher) = fresh.publisher;
    publisher.handle_timeout(fresh.now + Duration::from_secs(14), &mut out);
    assert_eq!(publisher.closed(), None);
    publisher.handle_timeout(fresh.now + Duration::from_secs(15), &mut out);
    assert_eq!(publisher.closed(), Some(CloseReason::NeverConnected));
}

/// One DTLS certificate per server: every answer carries the same
/// fingerprint, and sessions still connect (each DTLS handshake makes its
/// own keys). Without one, str0m makes a certificate per session.
#[test]
fn sessions_share_the_servers_dtls_certificate_when_it_has_one() {
    let fingerprint = |answer: &str| {
        answer
            .lines()
            .find(|l| l.starts_with("a=fingerprint:"))
            .expect("a fingerprint")
            .to_owned()
    };
    let offer = |port| {
        let (_, offer, _) = client_at(
            Instant::now(),
            format!("127.0.0.1:{port}").parse().unwrap(),
            Direction::SendOnly,
            96,
            false,
        );
        offer
    };
    let answer = |setup: &PeerSetup, port| {
        let now = Instant::now();
        let (_, answer) =
            accept_offer(Role::Publisher, &offer(port), setup, "r", None, 1, now).unwrap();
        fingerprint(&answer)
    };
    let shared = setup();
    assert_eq!(answer(&shared, 6000), answer(&shared, 6001));
    let own = PeerSetup {
        dtls_cert: None,
        ..setup()
    };
    assert_ne!(answer(&own, 6002), answer(&own, 6003));
    // Three viewers and a publisher on the shared certificate connect.
    let world: World = connected_world(3);
    assert!(world.all_connected());
}
