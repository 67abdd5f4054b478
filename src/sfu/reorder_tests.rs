//! Reordering and loss on both hops (publisher → server → viewer), in
//! virtual time: every datagram between a client and the server is delayed
//! 30 ± 10 ms, so datagrams overtake each other, and in one test 5 % are
//! dropped, all by a seeded generator. The server must forward, and the
//! viewer receive, every packet the publisher sent, byte for byte, through
//! NACK and RTX. The viewer client drives str0m as `client` does: through a
//! [`StartHold`] (see `recovery`).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Event, Input};

use super::recovery::{START_HOLD, StartHold, allow_resends};
use super::sim::*;
use super::{Forwarded, PeerEvent};

/// SplitMix64: a small seeded generator, so every run impairs the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where a datagram in flight goes.
#[derive(Clone, Copy)]
enum Hop {
    /// From a client (its address) to the server.
    ToServer(SocketAddr),
    /// From the server to a client (its address).
    ToClient(SocketAddr),
}

/// A network that delays every datagram by 30 ± 10 ms and drops
/// `loss_permille` of them — but never the first RTP packet of an SSRC in
/// a direction: a receiver learns that a stream exists from its first
/// packet, so nothing can ask for one lost before it.
struct Impaired {
    rng: Rng,
    loss_permille: u64,
    in_flight: Vec<(Instant, u64, Hop, Vec<u8>)>,
    sent: u64,
    dropped: u64,
    /// (towards the server, SSRC) of every stream seen.
    streams: HashSet<(bool, u32)>,
    /// RTP datagrams sent, by (towards the server, payload type).
    rtp: BTreeMap<(bool, u8), u64>,
}

const BASE_DELAY: Duration = Duration::from_millis(30);
const JITTER: Duration = Duration::from_millis(10);

impl Impaired {
    fn new(seed: u64, loss_permille: u64) -> Self {
        Self {
            rng: Rng(seed),
            loss_permille,
            in_flight: Vec::new(),
            sent: 0,
            dropped: 0,
            streams: HashSet::new(),
            rtp: BTreeMap::new(),
        }
    }

    fn send(&mut self, now: Instant, hop: Hop, data: &[u8]) {
        self.sent += 1;
        let up = matches!(hop, Hop::ToServer(_));
        let mut first_of_stream = false;
        if crate::wire::classify(data) == crate::wire::PacketClass::Rtp
            && let Ok(header) = crate::wire::RtpHeader::parse(data)
        {
            *self.rtp.entry((up, header.payload_type)).or_default() += 1;
            first_of_stream = self.streams.insert((up, header.ssrc));
        }
        if !first_of_stream && self.rng.below(1000) < self.loss_permille {
            self.dropped += 1;
            return;
        }
        let span = JITTER.as_micros() as u64 * 2;
        let delay = BASE_DELAY - JITTER + Duration::from_micros(self.rng.below(span + 1));
        self.in_flight
            .push((now + delay, self.sent, hop, data.to_vec()));
    }

    /// The datagrams due at `now`, in arrival order.
    fn due(&mut self, now: Instant) -> Vec<(Hop, Vec<u8>)> {
        self.in_flight.sort_by_key(|(at, n, _, _)| (*at, *n));
        let split = self.in_flight.partition_point(|(at, _, _, _)| *at <= now);
        self.in_flight
            .drain(..split)
            .map(|(_, _, hop, data)| (hop, data))
            .collect()
    }
}

/// A connected world (one viewer) on an impaired network.
struct Run {
    world: World,
    net: Impaired,
    /// The viewer client's hold, as `client` keeps one.
    viewer_hold: StartHold,
    /// Sequence numbers of every packet the server's publisher peer passed on.
    forwarded: Vec<u64>,
}

impl Run {
    fn new(seed: u64, loss_permille: u64) -> Self {
        let mut world = connected_world(1);
        world.viewers[0].0.events.clear();
        // A browser retransmits without str0m's 15 % cap; so does `client`.
        let mid = world.publisher.0.mid.unwrap();
        allow_resends(&mut world.publisher.0.rtc, [mid]);
        let skip: Vec<u8> = (world.viewers[0].0.rtc.codec_config().params().iter())
            .filter_map(|p| p.resend())
            .map(|pt| *pt)
            .collect();
        Self {
            world,
            net: Impaired::new(seed, loss_permille),
            viewer_hold: StartHold::new(skip),
            forwarded: Vec::new(),
        }
    }

    /// The publisher writes a video frame of 3 packets every 10 ms for
    /// `duration` plus a second (so losses near the end are followed by
    /// packets that reveal them); returns the payloads written during
    /// `duration`, first sequence number 1000.
    fn publish_for(&mut self, duration: Duration) -> Vec<Vec<u8>> {
        let start = self.world.now;
        let checked_until = start + duration;
        let end = checked_until + Duration::from_secs(1);
        let mut written = Vec::new();
        let mut seq = 1000u64;
        let mut ms = 0u64;
        while self.world.now < end {
            self.world.now += Duration::from_millis(1);
            ms += 1;
            if ms.is_multiple_of(10) {
                for _ in 0..3 {
                    let mut payload = seq.to_be_bytes().to_vec();
                    payload.extend((0..300u64).map(|i| (i * 7 + seq) as u8));
                    self.world.publish(seq, payload.clone());
                    if self.world.now < checked_until {
                        written.push(payload);
                    }
                    seq += 1;
                }
            }
            self.step();
        }
        written
    }

    /// One millisecond: clients' timers, datagrams due, server timers.
    fn step(&mut self) {
        let now = self.world.now;
        let mut sent: Vec<(SocketAddr, Transmit)> = Vec::new();
        let world = &mut self.world;
        for end in std::iter::once(&mut world.publisher.0)
            .chain(world.viewers.iter_mut().map(|v| &mut v.0))
        {
            end.rtc.handle_input(Input::Timeout(now)).unwrap();
            drain_client(end, &mut sent);
        }
        if self.viewer_hold.deadline().is_some_and(|due| due <= now) {
            for held in self.viewer_hold.release(now) {
                self.client_receive(held.destination, &held.data, &mut sent);
            }
        }
        for (hop, data) in self.net.due(now) {
            match hop {
                Hop::ToServer(from) => self.server_receive(from, &data),
                Hop::ToClient(to) => {
                    let viewer = self.world.viewers[0].0.addr;
                    if to != viewer
                        || !self.viewer_hold.hold(
                            now,
                            str0m::net::Protocol::Udp,
                            self.world.server,
                            to,
                            &data,
                        )
                    {
                        self.client_receive(to, &data, &mut sent);
                    }
                }
            }
        }
        for (from, t) in sent {
            self.net.send(now, Hop::ToServer(from), &t.contents);
        }
        let world = &mut self.world;
        if world.publisher.1.deadline() <= now {
            world.publisher.1.handle_timeout(now, &mut world.out);
        }
        for (_, peer) in &mut world.viewers {
            if peer.deadline() <= now {
                peer.handle_timeout(now, &mut world.out);
            }
        }
        self.fan_out();
    }

    fn client_receive(
        &mut self,
        to: SocketAddr,
        data: &[u8],
        sent: &mut Vec<(SocketAddr, Transmit)>,
    ) {
        let world = &mut self.world;
        let end = if to == world.publisher.0.addr {
            &mut world.publisher.0
        } else {
            &mut world.viewers[0].0
        };
        let input = Input::Receive(
            world.now,
            Receive {
                proto: Protocol::Udp,
                source: world.server,
                destination: to,
                contents: data.try_into().unwrap(),
            },
        );
        let before = end.events.len();
        end.rtc.handle_input(input).unwrap();
        drain_client(end, sent);
        if to == world.viewers[0].0.addr {
            for event in &world.viewers[0].0.events[before..] {
                if let Event::RtpPacket(packet) = event {
                    self.viewer_hold.confirm(*packet.header.ssrc);
                }
            }
        }
    }

    fn server_receive(&mut self, from: SocketAddr, data: &[u8]) {
        let world = &mut self.world;
        let (now, server) = (world.now, world.server);
        let peer = if from == world.publisher.0.addr {
            &mut world.publisher.1
        } else {
            &mut world.viewers[0].1
        };
        peer.handle_receive(now, from, server, data, &mut world.out);
        self.fan_out();
    }

    /// What the shard does with server events (media to the viewer, then a
    /// flush; keyframe wishes to the publisher), then sends what the
    /// server's peers sent.
    fn fan_out(&mut self) {
        let world = &mut self.world;
        let now = world.now;
        for event in std::mem::take(&mut world.out.events) {
            match event {
                PeerEvent::Media(packet) => {
                    self.forwarded.push(packet.seq);
                    let viewer = &mut world.viewers[0].1;
                    viewer.forward(&packet, &main_feed(&packet), &mut world.out);
                    viewer.flush(now, &mut world.out);
                }
                PeerEvent::WantKeyframe { kind, .. } => {
                    if let Some(track) = world.publisher_track(MediaKind::Video) {
                        world
                            .publisher
                            .1
                            .request_keyframe(now, track, kind, &mut world.out);
                    }
                }
                PeerEvent::Connected { .. } | PeerEvent::FirstMedia { .. } => {}
            }
        }
        for t in std::mem::take(&mut world.out.transmits) {
            self.net
                .send(now, Hop::ToClient(t.destination), &t.contents);
        }
    }

    /// Indexes of `written` the viewer never received.
    fn missing_at_viewer(&self, written: &[Vec<u8>]) -> Vec<usize> {
        let events: &[Event] = &self.world.viewers[0].0.events;
        let got: HashSet<Vec<u8>> = rtp_payloads(events).into_iter().map(|(_, p)| p).collect();
        (0..written.len())
            .filter(|i| !got.contains(&written[*i]))
            .collect()
    }

    /// Indexes of `written` the server never forwarded.
    fn missing_at_server(&self, written: &[Vec<u8>]) -> Vec<usize> {
        let got: HashSet<u64> = self.forwarded.iter().copied().collect();
        (0..written.len())
            .filter(|i| !got.contains(&(1000 + *i as u64)))
            .collect()
    }

    /// RTP datagrams of payload type `pt` sent towards the server (`up`) or from it.
    fn rtp_sent(&self, up: bool, pt: u8) -> u64 {
        self.net.rtp.get(&(up, pt)).copied().unwrap_or(0)
    }
}

/// The publisher's first two packets arrive swapped, and two later ones
/// too: the server passes every one on, in sequence order at the start.
/// (str0m alone drops the first packet: its register starts at the second.)
#[test]
fn a_stream_whose_first_packets_arrive_swapped_loses_none() {
    let mut world = connected_world(1);
    let step = Duration::from_millis(10);
    let sent: Vec<Vec<u8>> = (0..6)
        .map(|_| world.publisher_datagram(100, step))
        .collect();
    let from = world.publisher.0.addr;
    let mut seqs = Vec::new();
    let take = |world: &mut World, seqs: &mut Vec<u64>| {
        for event in std::mem::take(&mut world.out.events) {
            if let PeerEvent::Media(packet) = event {
                let packet: &Forwarded = &packet;
                seqs.push(packet.seq);
            }
        }
        world.out.transmits.clear();
    };
    for i in [1, 0, 2, 3, 5, 4] {
        let now = world.now;
        world
            .publisher
            .1
            .handle_receive(now, from, world.server, &sent[i], &mut world.out);
        take(&mut world, &mut seqs);
    }
    assert!(
        seqs.is_empty(),
        "a new stream's first packets are held: {seqs:?}"
    );
    world.now += START_HOLD;
    assert!(world.publisher.1.deadline() <= world.now);
    let now = world.now;
    world.publisher.1.handle_timeout(now, &mut world.out);
    take(&mut world, &mut seqs);
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "every packet, the start in order");
}

/// 30 ± 10 ms of jitter on both hops, no loss: every packet reaches the viewer.
#[test]
fn reordered_packets_all_reach_the_viewer() {
    for seed in 1..=4 {
        let mut run = Run::new(seed, 0);
        let written = run.publish_for(Duration::from_secs(3));
        assert_eq!(
            run.missing_at_server(&written),
            Vec::<usize>::new(),
            "seed {seed}: at the server"
        );
        assert_eq!(
            run.missing_at_viewer(&written),
            Vec::<usize>::new(),
            "seed {seed}: at the viewer"
        );
        eprintln!(
            "seed {seed}: {} packets, RTX publisher→server {} server→viewer {}",
            written.len(),
            run.rtp_sent(true, 97),
            run.rtp_sent(false, 101)
        );
    }
}

/// The same with 5 % of all datagrams dropped: the server NACKs the
/// publisher, the viewer NACKs the server, both answer with RTX, and every
/// packet reaches the viewer, byte for byte.
#[test]
fn lost_packets_are_recovered_by_nack_and_rtx_on_both_hops() {
    for seed in 1..=4 {
        let mut run = Run::new(seed, 50);
        let written = run.publish_for(Duration::from_secs(3));
        let (up_rtx, down_rtx) = (run.rtp_sent(true, 97), run.rtp_sent(false, 101));
        let figures = format!(
            "seed {seed}: {} packets, network dropped {} of {} datagrams, RTX publisher→server {up_rtx} server→viewer {down_rtx}",
            written.len(),
            run.net.dropped,
            run.net.sent
        );
        eprintln!("{figures}");
        assert!(run.net.dropped > run.net.sent / 30, "{figures}");
        assert!(up_rtx > 0 && down_rtx > 0, "{figures}");
        assert_eq!(
            run.missing_at_server(&written),
            Vec::<usize>::new(),
            "{figures}: at the server"
        );
        assert_eq!(
            run.missing_at_viewer(&written),
            Vec::<usize>::new(),
            "{figures}: at the viewer"
        );
    }
}
