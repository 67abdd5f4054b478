//! An in-memory WebRTC network in virtual time: str0m client `Rtc`s (one
//! publisher, N viewers) and our server [`Peer`]s exchange datagrams without
//! sockets, and time is an `Instant` advanced by hand. The sfu's unit tests
//! and the `forward` benchmark build on it. A harness: it panics when setup
//! fails, which in a test or bench is the right report. Its server peers
//! draw their identifiers from a seeded [`IdRng`] ([`setup`], [`setup_seeded`]),
//! so a run can be replayed; never use that setup for a real server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{
    Feed, Forwarded, IdRng, Outputs, Peer, PeerEvent, PeerSetup, Role, TrackId, accept_offer,
};

/// The server's (virtual) address.
pub const SERVER: &str = "127.0.0.1:5000";

/// A str0m client and what it received.
pub struct ClientEnd {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub events: Vec<Event>,
    pub mid: Option<Mid>,
}

/// One publisher and some viewers, all wired to server peers.
pub struct World {
    pub now: Instant,
    pub server: SocketAddr,
    pub publisher: (ClientEnd, Peer),
    pub viewers: Vec<(ClientEnd, Peer)>,
    pub out: Outputs,
    /// The server's SDP answers: the publisher's, then each viewer's.
    pub answers: Vec<String>,
    pub keyframe_asks: usize,
    /// Keyframe requests each viewer made while media was written to it.
    pub viewer_keyframe_asks: Vec<usize>,
    /// The publisher's last RTP sequence number (see [`World::publisher_datagram`]).
    pub next_seq: u64,
    /// Client datagrams to deliver on the next [`World::pump`].
    held: Vec<(SocketAddr, Transmit)>,
}

/// The seed of [`setup`]'s identifiers.
pub const SEED: u64 = 0x5eed_0000_0000_0011;

/// The setup every simulated server peer gets: [`setup_seeded`] with
/// [`SEED`]. Peers built from one setup (or its clones) get distinct
/// identifiers; two setups made by two calls repeat each other's.
pub fn setup() -> PeerSetup {
    setup_seeded(SEED)
}

/// The simulated setup with identifiers from [`IdRng::insecure_seeded`]
/// (`seed`): the same seed and the same calls give the same session ids and
/// ICE credentials.
pub fn setup_seeded(seed: u64) -> PeerSetup {
    PeerSetup {
        candidates: vec![SERVER.parse().unwrap()],
        connect_timeout: Duration::from_secs(15),
        ice_timeout: Duration::from_secs(15),
        keyframe_interval: Duration::from_millis(500),
        max_bitrate_in: 0,
        max_bitrate_out: 0,
        dtls_cert: Some(shared_cert()),
        crypto: crate::dtls::crypto_provider(),
        rng: IdRng::insecure_seeded(seed),
        codecs: super::CodecList::default(),
        ice_tcp: false,
    }
}

/// One DTLS certificate for every simulated server peer of this process,
/// as the server has one for all its sessions.
fn shared_cert() -> str0m::config::DtlsCert {
    static CERT: std::sync::OnceLock<str0m::config::DtlsCert> = std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        crate::dtls::certificate(crate::dtls::KeyType::EcdsaP256).expect("a DTLS certificate")
    })
    .clone()
}

/// A str0m client at 127.0.0.1:`port`; see [`client_at`].
fn client(
    now: Instant,
    port: u16,
    direction: Direction,
    vp8_pt: u8,
    h264: bool,
) -> (ClientEnd, String, str0m::change::SdpPendingOffer) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    client_at(now, addr, direction, vp8_pt, h264)
}

/// A str0m client (full ICE, controlling) with one host candidate at
/// `addr`, offering one video section: VP8 on payload type `vp8_pt` (RTX on
/// the next one), and H264 too when `h264`. Returns it with its offer and
/// the pending change its answer completes.
pub fn client_at(
    now: Instant,
    addr: SocketAddr,
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
    /// A publisher (VP8 on PT 96) and `viewers` viewers (VP8 on PT 100, H264
    /// too), answered but not yet connected; server peers built from
    /// [`setup`].
    pub fn new(viewers: usize) -> Self {
        Self::with_setup(viewers, &setup())
    }

    /// Like [`World::new`], every server peer built from `setup` (one
    /// identifier stream for them all, publisher first).
    pub fn with_setup(viewers: usize, setup: &PeerSetup) -> Self {
        let now = Instant::now();
        let (mut pc, offer, pending) = client(now, 6000, Direction::SendOnly, 96, false);
        let (publisher, answer) =
            accept_offer(Role::Publisher, &offer, setup, "test", None, 1, now).unwrap();
        pc.rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let mut answers = vec![answer];
        let media = publisher.published_media().unwrap().clone();
        let count = viewers;
        let viewers = (0..count)
            .map(|i| {
                // Viewers number VP8 differently from the publisher (100, not 96).
                let (mut vc, offer, pending) =
                    client(now, 7000 + i as u16, Direction::RecvOnly, 100, true);
                let (peer, answer) =
                    accept_offer(Role::Viewer, &offer, setup, "test", Some(&media), 0, now)
                        .unwrap();
                vc.rtc
                    .sdp_api()
                    .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                    .unwrap();
                answers.push(answer);
                (vc, peer)
            })
            .collect();
        Self {
            now,
            server: SERVER.parse().unwrap(),
            publisher: (pc, publisher),
            viewers,
            out: Outputs::default(),
            answers,
            keyframe_asks: 0,
            viewer_keyframe_asks: vec![0; count],
            next_seq: 0,
            held: Vec::new(),
        }
    }

    /// Moves time forward by `step`, delivering every datagram, until `until`.
    /// Advances time by `step` until `duration` passed, calling `each` and
    /// delivering everything after every step.
    pub fn run(&mut self, duration: Duration, step: Duration, mut each: impl FnMut(&mut World)) {
        let end = self.now + duration;
        while self.now < end {
            self.now += step;
            each(self);
            self.pump();
        }
    }

    /// Delivers datagrams and events until everything is quiet.
    pub fn pump(&mut self) {
        let now = self.now;
        let mut carry: Vec<(SocketAddr, Transmit)> = std::mem::take(&mut self.held);
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
                        for (i, (_, viewer)) in self.viewers.iter_mut().enumerate() {
                            let before = self.out.events.len();
                            // A WHEP viewer gets it by the main feed, a
                            // conference subscriber by its track.
                            viewer.forward(&packet, &main_feed(&packet), &mut self.out);
                            viewer.forward(&packet, &Feed::Track(packet.track.id), &mut self.out);
                            viewer.flush(now, &mut self.out);
                            self.viewer_keyframe_asks[i] += self.out.events[before..]
                                .iter()
                                .filter(|e| matches!(e, PeerEvent::WantKeyframe { .. }))
                                .count();
                        }
                    }
                    PeerEvent::WantKeyframe { feed, kind } => {
                        self.keyframe_asks += 1;
                        // Every viewer here watches the publisher's main feed.
                        let track = match feed {
                            Feed::Main { kind: media, .. } => self.publisher_track(media),
                            Feed::Track(id) => Some(id),
                        };
                        if let Some(track) = track {
                            self.publisher
                                .1
                                .request_keyframe(now, track, kind, &mut self.out);
                        }
                    }
                    PeerEvent::Connected { .. } | PeerEvent::FirstMedia { .. } => {}
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

    /// Adds a client and its server peer (answered, not yet connected).
    pub fn add_viewer(&mut self, end: ClientEnd, peer: Peer) {
        self.viewers.push((end, peer));
        self.viewer_keyframe_asks.push(0);
    }

    /// Whether every server peer completed ICE and DTLS.
    pub fn all_connected(&self) -> bool {
        self.publisher.1.is_connected() && self.viewers.iter().all(|(_, p)| p.is_connected())
    }

    /// The publisher client writes one VP8 packet.
    pub fn publish(&mut self, seq: u64, payload: Vec<u8>) {
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

/// Polls `end` until its next timeout: its datagrams go to `out` (with
/// its address), its events to `end.events`.
pub fn drain_client(end: &mut ClientEnd, out: &mut Vec<(SocketAddr, Transmit)>) {
    loop {
        match end.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return,
            Output::Transmit(t) => out.push((end.addr, t)),
            Output::Event(e) => end.events.push(e),
        }
    }
}

/// A world whose peers all connected (3 s of virtual time).
pub fn connected_world(viewers: usize) -> World {
    let mut world = World::new(viewers);
    world.run(Duration::from_secs(3), Duration::from_millis(10), |_| {});
    assert!(
        world.all_connected(),
        "ICE and DTLS complete in virtual time"
    );
    world
}

/// PT and payload of every RTP packet among `events`.
pub fn rtp_payloads(events: &[Event]) -> Vec<(u8, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RtpPacket(p) => Some((*p.header.payload_type, p.payload.to_vec())),
            _ => None,
        })
        .collect()
}

impl World {
    /// One SRTP datagram from the publisher client: a VP8 packet of
    /// `payload_len` bytes with the next sequence number. Time advances by
    /// `step`. Other datagrams the client sends meanwhile (RTCP) are dropped.
    pub fn publisher_datagram(&mut self, payload_len: usize, step: Duration) -> Vec<u8> {
        self.now += step;
        self.next_seq += 1;
        let seq = self.next_seq;
        let payload: Vec<u8> = (0..payload_len).map(|i| (i as u64 + seq) as u8).collect();
        self.publish(seq, payload);
        let now = self.now;
        let end = &mut self.publisher.0;
        end.rtc.handle_input(Input::Timeout(now)).unwrap();
        let mut sent = Vec::new();
        drain_client(end, &mut sent);
        // The media packet is the largest; the rest (consent STUN, RTCP)
        // waits for the next `pump`, or the server would see silence.
        let media = (0..sent.len()).max_by_key(|&i| sent[i].1.contents.len());
        let datagram = media
            .map(|i| sent.swap_remove(i).1.contents.to_vec())
            .unwrap_or_default();
        self.held.extend(sent);
        datagram
    }

    /// What a shard does with one datagram from the publisher: the server
    /// publisher peer takes it, every packet it yields is written to every
    /// viewer, and the viewers are flushed. Returns how many datagrams the
    /// server would send (they are discarded: viewers' clients see nothing
    /// until [`World::pump`]).
    pub fn ingest(&mut self, datagram: &[u8]) -> usize {
        self.ingest_burst(std::slice::from_ref(&datagram.to_vec()))
    }

    /// The id of the publisher's track of `kind`.
    pub fn publisher_track(&self, kind: MediaKind) -> Option<TrackId> {
        Some(self.publisher.1.published_media()?.track(kind)?.id)
    }

    /// Like [`World::ingest`] for datagrams that arrive in one loop turn
    /// (a video frame): all are written, then each viewer is flushed once.
    pub fn ingest_burst(&mut self, datagrams: &[Vec<u8>]) -> usize {
        let now = self.now;
        let from = self.publisher.0.addr;
        for datagram in datagrams {
            self.publisher
                .1
                .handle_receive(now, from, self.server, datagram, &mut self.out);
            let events = std::mem::take(&mut self.out.events);
            for event in events {
                if let PeerEvent::Media(packet) = event {
                    for (_, viewer) in &mut self.viewers {
                        viewer.forward(&packet, &main_feed(&packet), &mut self.out);
                    }
                }
            }
        }
        for (_, viewer) in &mut self.viewers {
            viewer.flush(now, &mut self.out);
        }
        self.out.events.clear();
        let sent = self.out.transmits.len();
        self.out.transmits.clear();
        sent
    }
}

/// The feed a viewer of this world gets `packet` by: its placeholder room's
/// main feed (the world has no directory, so no room ids).
pub fn main_feed(packet: &Forwarded) -> Feed {
    Feed::Main {
        room: packet.room_id,
        kind: packet.track.kind,
    }
}

/// A str0m client (full ICE) at `addr` that answers a server's `offer`
/// (VP8 on payload type 100, Opus): a conference subscriber. Returns it with
/// its answer.
pub fn answering_client(now: Instant, addr: SocketAddr, offer: &str) -> (ClientEnd, String) {
    let mut config = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false);
    config.codec_config().add_config(
        100.into(),
        Some(101.into()),
        Codec::Vp8,
        str0m::media::Frequency::NINETY_KHZ,
        None,
        Default::default(),
    );
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let offer = str0m::change::SdpOffer::from_sdp_string(offer).expect("our offer parses");
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .expect("the client answers");
    let end = ClientEnd {
        rtc,
        addr,
        events: Vec::new(),
        mid: None,
    };
    (end, answer.to_sdp_string())
}

/// The client's answer to a later offer of the server's.
pub fn answer_again(end: &mut ClientEnd, offer: &str) -> String {
    let offer = str0m::change::SdpOffer::from_sdp_string(offer).expect("our offer parses");
    end.rtc
        .sdp_api()
        .accept_offer(offer)
        .expect("the client answers")
        .to_sdp_string()
}
