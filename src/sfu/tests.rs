//! The sfu core in virtual time, with no sockets: str0m client `Rtc`s and
//! our server `Peer`s exchange datagrams through an in-memory "network", and
//! time is an `Instant` we advance by hand. Covers forwarding, PT mapping,
//! keyframe aggregation/throttling and panic isolation.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;

const SERVER: &str = "127.0.0.1:5000";

struct ClientEnd {
    rtc: Rtc,
    addr: SocketAddr,
    events: Vec<Event>,
    mid: Option<Mid>,
}

/// One publisher and some viewers, all wired to server peers.
struct World {
    now: Instant,
    server: SocketAddr,
    publisher: (ClientEnd, Peer),
    viewers: Vec<(ClientEnd, Peer)>,
    out: Outputs,
    keyframe_asks: usize,
}

fn setup() -> PeerSetup {
    PeerSetup {
        candidates: vec![SERVER.parse().unwrap()],
        connect_timeout: Duration::from_secs(15),
        ice_timeout: Duration::from_secs(15),
        keyframe_interval: Duration::from_millis(500),
    }
}

/// A str0m client offering one video section: VP8 on payload type `vp8_pt`
/// (RTX on the next one), and H264 too when `h264`.
fn client(
    now: Instant,
    port: u16,
    direction: Direction,
    vp8_pt: u8,
    h264: bool,
) -> (ClientEnd, String, str0m::change::SdpPendingOffer) {
    let mut config = Rtc::builder().set_rtp_mode(true).clear_codecs();
    if h264 {
        config = config.enable_h264(true);
    }
    config.codec_config().add_config(
        vp8_pt.into(),
        Some((vp8_pt + 1).into()),
        Codec::Vp8,
        str0m::media::Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    let mut rtc = config.build(now);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Video, direction, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let end = ClientEnd {
        rtc,
        addr,
        events: Vec::new(),
        mid: Some(mid),
    };
    (end, offer.to_sdp_string(), pending)
}

impl World {
    fn new(viewers: usize) -> Self {
        let now = Instant::now();
        let (mut pc, offer, pending) = client(now, 6000, Direction::SendOnly, 96, false);
        let (publisher, answer) =
            accept_offer(Role::Publisher, &offer, &setup(), "test", None, 1, now).unwrap();
        pc.rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let media = publisher.published_media().unwrap().clone();
        let viewers = (0..viewers)
            .map(|i| {
                // Viewers number VP8 differently from the publisher (100, not 96).
                let (mut vc, offer, pending) =
                    client(now, 7000 + i as u16, Direction::RecvOnly, 100, true);
                let (peer, answer) =
                    accept_offer(Role::Viewer, &offer, &setup(), "test", Some(&media), 0, now)
                        .unwrap();
                vc.rtc
                    .sdp_api()
                    .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                    .unwrap();
                (vc, peer)
            })
            .collect();
        Self {
            now,
            server: SERVER.parse().unwrap(),
            publisher: (pc, publisher),
            viewers,
            out: Outputs::default(),
            keyframe_asks: 0,
        }
    }

    /// Moves time forward by `step`, delivering every datagram, until `until`.
    fn run(&mut self, duration: Duration, step: Duration, mut each: impl FnMut(&mut World)) {
        let end = self.now + duration;
        while self.now < end {
            self.now += step;
            each(self);
            self.pump();
        }
    }

    /// Delivers datagrams and events until everything is quiet.
    fn pump(&mut self) {
        let now = self.now;
        let mut carry: Vec<(SocketAddr, Transmit)> = Vec::new();
        for _ in 0..100 {
            let mut moved = !carry.is_empty();
            // Clients → server.
            let mut to_server = std::mem::take(&mut carry);
            for end in std::iter::once(&mut self.publisher.0)
                .chain(self.viewers.iter_mut().map(|v| &mut v.0))
            {
                end.rtc.handle_input(Input::Timeout(now)).unwrap();
                drain_client(end, &mut to_server);
            }
            for (from, t) in to_server {
                moved = true;
                let peer = if from == self.publisher.0.addr {
                    &mut self.publisher.1
                } else {
                    match self.viewers.iter_mut().find(|v| v.0.addr == from) {
                        Some(v) => &mut v.1,
                        None => continue,
                    }
                };
                peer.handle_receive(now, from, self.server, &t.contents, &mut self.out);
            }
            self.publisher.1.handle_timeout(now, &mut self.out);
            for (_, peer) in &mut self.viewers {
                peer.handle_timeout(now, &mut self.out);
            }
            // Server events: media to every viewer, keyframe wishes to the publisher.
            let events = std::mem::take(&mut self.out.events);
            for event in events {
                moved = true;
                match event {
                    PeerEvent::Media(packet) => {
                        for (_, viewer) in &mut self.viewers {
                            viewer.forward(now, &packet, &mut self.out);
                        }
                    }
                    PeerEvent::WantKeyframe(kind) => {
                        self.keyframe_asks += 1;
                        self.publisher.1.request_keyframe(now, kind, &mut self.out);
                    }
                    PeerEvent::Connected => {}
                }
            }
            // Server → clients.
            for t in std::mem::take(&mut self.out.transmits) {
                moved = true;
                let end = if t.destination == self.publisher.0.addr {
                    &mut self.publisher.0
                } else {
                    match self.viewers.iter_mut().find(|v| v.0.addr == t.destination) {
                        Some(v) => &mut v.0,
                        None => continue,
                    }
                };
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source: self.server,
                        destination: end.addr,
                        contents: (&*t.contents).try_into().unwrap(),
                    },
                );
                end.rtc.handle_input(input).unwrap();
                drain_client(end, &mut carry);
            }
            if !moved {
                return;
            }
        }
    }

    fn all_connected(&self) -> bool {
        self.publisher.1.is_connected() && self.viewers.iter().all(|(_, p)| p.is_connected())
    }

    /// The publisher client writes one VP8 packet.
    fn publish(&mut self, seq: u64, payload: Vec<u8>) {
        let now = self.now;
        let end = &mut self.publisher.0;
        let pt = *end
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        let mid = end.mid.unwrap();
        let mut api = end.rtc.direct_api();
        let stream = api.stream_tx_by_mid(mid, None).unwrap();
        stream.write_rtp(
            RtpWrite::new(pt.into(), seq.into(), (seq * 3000) as u32, now, payload).nackable(true),
        );
    }
}

fn drain_client(end: &mut ClientEnd, out: &mut Vec<(SocketAddr, Transmit)>) {
    loop {
        match end.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return,
            Output::Transmit(t) => out.push((end.addr, t)),
            Output::Event(e) => end.events.push(e),
        }
    }
}

fn connected_world(viewers: usize) -> World {
    let mut world = World::new(viewers);
    world.run(Duration::from_secs(3), Duration::from_millis(10), |_| {});
    assert!(
        world.all_connected(),
        "ICE and DTLS complete in virtual time"
    );
    world
}

fn rtp_payloads(events: &[Event]) -> Vec<(u8, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RtpPacket(p) => Some((*p.header.payload_type, p.payload.to_vec())),
            _ => None,
        })
        .collect()
}

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
