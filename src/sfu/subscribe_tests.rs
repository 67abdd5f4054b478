//! A conference subscribe transport in virtual time: the server offers, a
//! str0m client answers, packets flow by track; later changes become one
//! offer at a time, stale answers are refused, and a dropped track stops.

use std::time::Duration;

use str0m::format::Codec;
use str0m::media::MediaKind;

use super::sim::*;
use super::*;

/// A connected publisher and a connected subscriber of its video track;
/// returns the world (the subscriber is `viewers[0]`), the video track and
/// the mid the first offer sent it on.
fn subscribed_world() -> (World, std::sync::Arc<PublishedTrack>, String) {
    let mut world = connected_world(0);
    let video = world
        .publisher
        .1
        .published_media()
        .and_then(|m| m.track(MediaKind::Video))
        .cloned()
        .expect("the publisher sends video");
    let setup = setup();
    let (mut peer, offer) = new_subscriber(&setup, "test", vec![video.clone()], world.now)
        .expect("a subscribe transport");
    assert_eq!(offer.revision, 1);
    assert_eq!(offer.mids.len(), 1, "one m-line for the one track");
    assert_eq!(offer.mids[0].1, video.id);
    assert!(
        offer.sdp.contains("m=application"),
        "a data channel so it connects with nothing to receive"
    );
    let (end, answer) = answering_client(world.now, "127.0.0.1:7100".parse().unwrap(), &offer.sdp);
    let mut out = Outputs::default();
    let next = peer
        .accept_subscribe_answer(world.now, 1, &answer, &mut out)
        .expect("the answer is taken");
    assert_eq!(next, None, "nothing changed meanwhile");
    world.add_viewer(end, peer);
    world.run(Duration::from_secs(3), Duration::from_millis(10), |_| {});
    assert!(world.all_connected(), "the subscribe transport connects");
    (world, video, offer.mids[0].0.clone())
}

fn received(world: &World) -> usize {
    rtp_payloads(&world.viewers[0].0.events).len()
}

#[test]
fn a_subscriber_receives_the_track_its_server_offer_added() {
    let (mut world, _, _) = subscribed_world();
    let mut seq = 1u64;
    world.run(Duration::from_millis(500), Duration::from_millis(10), |w| {
        let payload: Vec<u8> = (0..120u32).map(|i| (i as u64 + seq) as u8).collect();
        w.publish(seq, payload);
        seq += 1;
    });
    let sent = (seq - 1) as usize;
    let got = rtp_payloads(&world.viewers[0].0.events);
    assert!(
        got.len() >= sent - 1,
        "{} of {sent} packets arrived",
        got.len()
    );
    let end = &world.viewers[0].0;
    for (pt, payload) in &got {
        let codec = end
            .rtc
            .codec_config()
            .find(|p| *p.pt() == *pt)
            .map(|p| p.spec().codec);
        assert_eq!(codec, Some(Codec::Vp8), "PT {pt} is VP8 as negotiated");
        let first = payload[0];
        let expected: Vec<u8> = (0..120u32).map(|i| first.wrapping_add(i as u8)).collect();
        assert_eq!(payload, &expected, "payload byte-identical");
    }
}

#[test]
fn changes_wait_for_the_outstanding_answer_and_stale_answers_change_nothing() {
    let (mut world, video, first_mid) = subscribed_world();
    let now = world.now;
    let mut out = Outputs::default();
    let (end, peer) = &mut world.viewers[0];
    assert_eq!(peer.outstanding_offer(), None);
    // The track goes away: one offer, revision 2, stopping its m-line.
    let offer = peer
        .desire(now, Vec::new(), &mut out)
        .expect("dropping a track needs an offer");
    assert_eq!(offer.revision, 2);
    assert!(offer.mids.is_empty());
    // It comes back before the answer: no second offer while one is out.
    assert_eq!(peer.desire(now, vec![video.clone()], &mut out), None);
    assert_eq!(peer.outstanding_offer(), Some(2));
    let answer = answer_again(end, &offer.sdp);
    let stale = peer.accept_subscribe_answer(now, 1, &answer, &mut out);
    assert_eq!(
        stale,
        Err(AnswerError::Stale {
            given: 1,
            current: Some(2)
        })
    );
    assert_eq!(
        peer.outstanding_offer(),
        Some(2),
        "a stale answer changes nothing"
    );
    let garbage = peer.accept_subscribe_answer(now, 2, "v=0\r\nnot sdp", &mut out);
    assert!(
        matches!(garbage, Err(AnswerError::Malformed(_))),
        "{garbage:?}"
    );
    assert_eq!(
        peer.outstanding_offer(),
        Some(2),
        "a malformed answer changes nothing"
    );
    // The right answer: the waiting change (the track again) is the next
    // offer, on a new mid (a stopped m-line is never reused).
    let next = peer
        .accept_subscribe_answer(now, 2, &answer, &mut out)
        .expect("the answer is taken")
        .expect("the waiting change is offered at once");
    assert_eq!(next.revision, 3);
    assert_eq!(next.mids.len(), 1);
    assert_eq!(next.mids[0].1, video.id);
    assert_ne!(next.mids[0].0, first_mid, "a new mid");
}

#[test]
fn a_stopped_track_stops_arriving() {
    let (mut world, _, _) = subscribed_world();
    let mut seq = 1u64;
    let mut publish = |w: &mut World, ms| {
        w.run(Duration::from_millis(ms), Duration::from_millis(10), |w| {
            w.publish(seq, vec![7; 80]);
            seq += 1;
        })
    };
    publish(&mut world, 300);
    let before = received(&world);
    assert!(before > 20, "{before} packets while subscribed");
    let now = world.now;
    let mut out = Outputs::default();
    let (end, peer) = &mut world.viewers[0];
    let offer = peer.desire(now, Vec::new(), &mut out).expect("an offer");
    let answer = answer_again(end, &offer.sdp);
    assert_eq!(
        peer.accept_subscribe_answer(now, offer.revision, &answer, &mut out),
        Ok(None)
    );
    assert!(peer.feeds().next().is_none(), "no feed left once answered");
    publish(&mut world, 300);
    assert_eq!(received(&world), before, "nothing arrives after the stop");
}
