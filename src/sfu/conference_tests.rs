//! A conference in virtual time, with no sockets: participants each with a
//! publish transport (a str0m client offering VP8) and a subscribe
//! transport (a str0m client answering the server's offers); "signaling"
//! is the test deciding what each should receive and calling
//! [`Peer::desire`] / [`Peer::accept_subscribe_answer`]; "the router" hands
//! every published packet to every subscribe transport by its track
//! ([`Feed::Track`]), which takes only what it has an outgoing track for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::RtpWrite;
use str0m::{Event, Input};

use super::sim::*;
use super::*;

/// One participant: its publish client and peer, its subscribe client and
/// peer, and the offers it answered.
struct Member {
    publish: (ClientEnd, Peer),
    subscribe: (ClientEnd, Peer),
    seq: u64,
    /// Whether it answers offers (a client that never does is a case).
    answers: bool,
    revisions: Vec<u32>,
}

struct Conference {
    now: Instant,
    server: SocketAddr,
    members: Vec<Member>,
    out: Outputs,
}

impl Conference {
    /// `n` participants, every publisher connected; nobody subscribes yet.
    fn new(n: usize, setup: PeerSetup) -> Self {
        let now = Instant::now();
        let mut members = Vec::new();
        for i in 0..n {
            let addr: SocketAddr = format!("127.0.0.1:{}", 6100 + i).parse().unwrap();
            let (mut end, offer, pending) = client_at(now, addr, Direction::SendOnly, 96, false);
            let (peer, answer) =
                accept_publish(&offer, &setup, "conf", i as u64 + 1, &[], now).expect("publish");
            end.rtc
                .sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                .unwrap();
            let sub_addr: SocketAddr = format!("127.0.0.1:{}", 6200 + i).parse().unwrap();
            let (sub_peer, first) =
                new_subscriber(&setup, "conf", Vec::new(), now).expect("subscribe");
            let (sub_end, sub_answer) = answering_client(now, sub_addr, &first.sdp);
            let mut sub_peer = sub_peer;
            let mut out = Outputs::default();
            sub_peer
                .accept_subscribe_answer(now, first.revision, &sub_answer, &mut out)
                .expect("the first answer");
            members.push(Member {
                publish: (end, peer),
                subscribe: (sub_end, sub_peer),
                seq: 1,
                answers: true,
                revisions: vec![first.revision],
            });
        }
        let mut conf = Self {
            now,
            server: SERVER.parse().unwrap(),
            members,
            out: Outputs::default(),
        };
        conf.run(Duration::from_secs(3), false);
        assert!(
            conf.members
                .iter()
                .all(|m| m.publish.1.is_connected() && m.subscribe.1.is_connected()),
            "every transport connects in virtual time"
        );
        conf
    }

    fn track(&self, i: usize) -> Arc<PublishedTrack> {
        self.members[i]
            .publish
            .1
            .published_media()
            .and_then(|m| m.track(MediaKind::Video))
            .cloned()
            .expect("video")
    }

    /// Signaling: participant `i` should receive the tracks of `from`.
    fn desire(&mut self, i: usize, from: &[usize]) {
        let tracks: Vec<_> = from.iter().map(|j| self.track(*j)).collect();
        let now = self.now;
        let offer = self.members[i]
            .subscribe
            .1
            .desire(now, tracks, &mut self.out);
        if let Some(offer) = offer {
            self.answer(i, offer);
        }
    }

    /// The client of participant `i` answers `offer` (if it answers at
    /// all), and so on while the server has more.
    fn answer(&mut self, i: usize, mut offer: ServerOffer) {
        loop {
            let m = &mut self.members[i];
            if !m.answers {
                return;
            }
            m.revisions.push(offer.revision);
            let answer = answer_again(&mut m.subscribe.0, &offer.sdp);
            let next = m
                .subscribe
                .1
                .accept_subscribe_answer(self.now, offer.revision, &answer, &mut self.out)
                .expect("the answer of the outstanding revision is taken");
            match next {
                Some(next) => offer = next,
                None => return,
            }
        }
    }

    /// Advances time in 10 ms steps for `duration`, every publisher sending
    /// one packet per step when `send`.
    fn run(&mut self, duration: Duration, send: bool) {
        let end = self.now + duration;
        while self.now < end {
            self.now += Duration::from_millis(10);
            if send {
                for (i, m) in self.members.iter_mut().enumerate() {
                    write_packet(&mut m.publish.0, self.now, i as u8, m.seq);
                    m.seq += 1;
                }
            }
            self.pump();
        }
    }

    fn pump(&mut self) {
        let now = self.now;
        let server = self.server;
        let mut carry: Vec<(SocketAddr, Transmit)> = Vec::new();
        for _ in 0..100 {
            let mut moved = !carry.is_empty();
            let mut to_server = std::mem::take(&mut carry);
            for m in &mut self.members {
                for end in [&mut m.publish.0, &mut m.subscribe.0] {
                    end.rtc.handle_input(Input::Timeout(now)).unwrap();
                    drain_client(end, &mut to_server);
                }
            }
            for (from, t) in to_server {
                moved = true;
                for m in &mut self.members {
                    for (end, peer) in [&mut m.publish, &mut m.subscribe] {
                        if end.addr == from {
                            peer.handle_receive(now, from, server, &t.contents, &mut self.out);
                        }
                    }
                }
            }
            for m in &mut self.members {
                m.publish.1.handle_timeout(now, &mut self.out);
                m.subscribe.1.handle_timeout(now, &mut self.out);
            }
            for event in std::mem::take(&mut self.out.events) {
                moved = true;
                if let PeerEvent::Media(packet) = event {
                    let feed = Feed::Track(packet.track.id);
                    for m in &mut self.members {
                        m.subscribe.1.forward(&packet, &feed, &mut self.out);
                        m.subscribe.1.flush(now, &mut self.out);
                    }
                }
            }
            for t in std::mem::take(&mut self.out.transmits) {
                moved = true;
                for m in &mut self.members {
                    for end in [&mut m.publish.0, &mut m.subscribe.0] {
                        if end.addr != t.destination {
                            continue;
                        }
                        let input = Input::Receive(
                            now,
                            Receive {
                                proto: Protocol::Udp,
                                source: server,
                                destination: end.addr,
                                contents: (&*t.contents).try_into().unwrap(),
                            },
                        );
                        end.rtc.handle_input(input).unwrap();
                        drain_client(end, &mut carry);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Packets participant `i`'s subscribe client received from each
    /// publisher (the first payload byte names it).
    fn received(&self, i: usize) -> Vec<usize> {
        let mut counts = vec![0; self.members.len()];
        for e in &self.members[i].subscribe.0.events {
            if let Event::RtpPacket(p) = e
                && let Some(&from) = p.payload.first()
                && let Some(c) = counts.get_mut(usize::from(from))
            {
                *c += 1;
            }
        }
        counts
    }
}

/// One VP8-ish packet from publisher `tag` (its first payload byte).
fn write_packet(end: &mut ClientEnd, now: Instant, tag: u8, seq: u64) {
    let pt = *end
        .rtc
        .codec_config()
        .find(|p| p.spec().codec == Codec::Vp8)
        .unwrap()
        .pt();
    let mid = end.mid.unwrap();
    let mut payload = vec![tag; 100];
    payload[1] = (seq & 0xff) as u8;
    if let Some(stream) = end.rtc.direct_api().stream_tx_by_mid(mid, None) {
        stream.write_rtp(RtpWrite::new(
            pt.into(),
            seq.into(),
            (seq * 3000) as u32,
            now,
            payload,
        ));
    }
}

/// What a scenario produced, to compare two runs.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    received: Vec<Vec<usize>>,
    revisions: Vec<Vec<u32>>,
    sessions: Vec<SessionId>,
}

/// Four participants: everyone receives everyone; then 0 drops 1, and 3
/// leaves (the others stop receiving it).
fn four_participants(setup: PeerSetup) -> Outcome {
    let mut conf = Conference::new(4, setup);
    for i in 0..4 {
        let others: Vec<usize> = (0..4).filter(|j| *j != i).collect();
        conf.desire(i, &others);
    }
    conf.run(Duration::from_millis(1000), true);
    let first: Vec<Vec<usize>> = (0..4).map(|i| conf.received(i)).collect();
    for (i, counts) in first.iter().enumerate() {
        for (j, &n) in counts.iter().enumerate() {
            if i == j {
                assert_eq!(n, 0, "{i} does not receive itself");
            } else {
                assert!(n >= 90, "{i} got {n} of ~100 packets from {j}");
            }
        }
    }
    // 0 no longer wants 1; 3 leaves: nobody wants it.
    conf.desire(0, &[2]);
    for i in 1..3 {
        let others: Vec<usize> = (0..3).filter(|j| *j != i).collect();
        conf.desire(i, &others);
    }
    conf.run(Duration::from_millis(200), true);
    let settled: Vec<Vec<usize>> = (0..4).map(|i| conf.received(i)).collect();
    conf.run(Duration::from_millis(800), true);
    let last: Vec<Vec<usize>> = (0..4).map(|i| conf.received(i)).collect();
    assert_eq!(last[0][1], settled[0][1], "0 gets nothing more of 1");
    assert!(last[0][2] >= settled[0][2] + 70, "0 still gets 2");
    for i in 0..3 {
        assert_eq!(
            last[i][3], settled[i][3],
            "{i} gets nothing more of 3 after it left"
        );
    }
    assert!(last[1][0] >= settled[1][0] + 70, "1 still gets 0");
    Outcome {
        received: last,
        revisions: conf.members.iter().map(|m| m.revisions.clone()).collect(),
        sessions: conf
            .members
            .iter()
            .flat_map(|m| [m.publish.1.id(), m.subscribe.1.id()])
            .collect(),
    }
}

#[test]
fn four_participants_receive_each_other_then_one_drops_a_peer_and_one_leaves() {
    let outcome = four_participants(setup_seeded(11));
    // Revision 1 (nothing), 2 (three tracks), 3 (the changes).
    assert_eq!(outcome.revisions[0], vec![1, 2, 3]);
}

#[test]
fn a_seeded_conference_replays_with_the_same_outcome() {
    let a = four_participants(setup_seeded(21));
    let b = four_participants(setup_seeded(21));
    assert_eq!(a.sessions, b.sessions, "the same identifiers");
    assert_eq!(a.revisions, b.revisions, "the same offers");
    assert_eq!(a.received, b.received, "the same packets delivered");
    let c = four_participants(setup_seeded(22));
    assert_ne!(a.sessions, c.sessions, "another seed, other identifiers");
}

#[test]
fn concurrent_changes_become_one_offer_and_a_client_that_never_answers_harms_nobody() {
    let mut conf = Conference::new(3, setup_seeded(5));
    // 2 never answers: its first change stays outstanding, later ones wait.
    conf.members[2].answers = false;
    let now = conf.now;
    let (t0, t1) = (conf.track(0), conf.track(1));
    let m = &mut conf.members[2].subscribe.1;
    let offer = m
        .desire(now, vec![t0.clone()], &mut conf.out)
        .expect("an offer");
    assert_eq!(offer.revision, 2);
    for _ in 0..50 {
        assert_eq!(
            m.desire(now, vec![t0.clone(), t1.clone()], &mut conf.out),
            None,
            "no second offer while one is outstanding"
        );
    }
    assert_eq!(m.outstanding_offer(), Some(2));
    // Meanwhile 0 and 1 subscribe to each other and get media.
    conf.desire(0, &[1]);
    conf.desire(1, &[0]);
    // 1 changes its mind three times before answering: one offer per
    // answered revision, ending where it asked last.
    let now = conf.now;
    let (t2, t0b) = (conf.track(2), conf.track(0));
    let sub = &mut conf.members[1].subscribe.1;
    let first = sub
        .desire(now, vec![t0b.clone(), t2.clone()], &mut conf.out)
        .expect("offer");
    assert_eq!(sub.desire(now, vec![t2.clone()], &mut conf.out), None);
    assert_eq!(sub.desire(now, vec![t0b.clone()], &mut conf.out), None);
    conf.answer(1, first);
    conf.run(Duration::from_millis(600), true);
    let got = conf.received(1);
    assert!(got[0] >= 40, "1 ends up receiving 0 ({got:?})");
    assert_eq!(
        got[2], 0,
        "and not 2, which it asked for and dropped before answering"
    );
    assert_eq!(
        conf.members[1].revisions,
        vec![1, 2, 3, 4],
        "three changes while revision 3 was out: revision 4 carried the last two"
    );
    assert!(conf.received(0)[1] >= 40, "0 receives 1");
    assert_eq!(
        conf.received(2),
        vec![0, 0, 0],
        "2 never answered: it receives nothing"
    );
    assert!(
        conf.members[2].subscribe.1.is_connected(),
        "and it is not closed for it"
    );
    assert_eq!(conf.members[2].subscribe.1.outstanding_offer(), Some(2));
}

#[test]
fn a_renegotiated_publish_transport_adds_and_drops_a_track_and_keeps_the_others() {
    let mut conf = Conference::new(2, setup_seeded(9));
    let camera = conf.track(0);
    conf.desire(1, &[0]);
    conf.run(Duration::from_millis(300), true);
    let before = conf.received(1)[0];
    assert!(before >= 20, "1 receives 0's camera ({before})");
    // 0's client adds a second video section (its screen).
    let now = conf.now;
    let (end, peer) = &mut conf.members[0].publish;
    let mut change = end.rtc.sdp_api();
    let screen_mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = change.apply().expect("an offer");
    let allowed = [Source::Camera, Source::Microphone];
    let refused =
        peer.renegotiate_publish(now, &offer.to_sdp_string(), &[], &allowed, &mut conf.out);
    assert_eq!(
        refused,
        Err(OfferError::NotAllowed("screen".into())),
        "a source the grant lacks"
    );
    assert_eq!(
        peer.published_tracks().len(),
        1,
        "a refused offer changes nothing"
    );
    let answer = peer
        .renegotiate_publish(
            now,
            &offer.to_sdp_string(),
            &[],
            &Source::ALL,
            &mut conf.out,
        )
        .expect("the renegotiation is answered");
    end.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let tracks = peer.published_tracks().to_vec();
    assert_eq!(tracks.len(), 2);
    assert!(
        Arc::ptr_eq(&tracks[0], &camera),
        "the camera keeps its track (and id)"
    );
    assert_eq!(tracks[1].source, Source::Screen);
    assert_eq!(tracks[1].mid, screen_mid);
    assert_ne!(tracks[1].id, camera.id);
    // The camera keeps flowing through the renegotiation.
    conf.run(Duration::from_millis(300), true);
    assert!(conf.received(1)[0] >= before + 20, "the camera goes on");
    // The client stops its screen: the track is dropped, the camera stays.
    let now = conf.now;
    let (end, peer) = &mut conf.members[0].publish;
    let mut change = end.rtc.sdp_api();
    change.stop_media(screen_mid);
    let (offer, pending) = change.apply().expect("an offer");
    let answer = peer
        .renegotiate_publish(
            now,
            &offer.to_sdp_string(),
            &[],
            &Source::ALL,
            &mut conf.out,
        )
        .expect("answered");
    end.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let tracks = peer.published_tracks().to_vec();
    assert_eq!(tracks.len(), 1, "the screen is gone");
    assert!(Arc::ptr_eq(&tracks[0], &camera));
    let at = conf.received(1)[0];
    conf.run(Duration::from_millis(300), true);
    assert!(conf.received(1)[0] >= at + 20, "the camera still goes on");
}
