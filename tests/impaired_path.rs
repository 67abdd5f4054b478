//! A publisher and a viewer whose every datagram to and from the server
//! crosses an impairing UDP relay on loopback: each is delayed 30 ± 10 ms,
//! so datagrams overtake each other, and in the second case 5 % are also
//! dropped. The viewer must end with every packet the publisher sent, byte
//! for byte: the server takes reordered packets (the first ones of a stream
//! included), and NACK and RTX repair the losses on both hops.
//!
//! The relay is seeded, so each run draws the same delays and losses for
//! the same sequence of datagrams (their timing still varies). It never
//! drops the first RTP packet of an SSRC: a receiver learns a stream exists
//! from its first packet and nothing can ask for one lost before it. Loss
//! also stops a second before the publisher does, so every loss is
//! followed by packets that reveal it.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Flags, ServerProc, spawn_client};
use uringcast::wire::{PacketClass, RtpHeader, classify};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole};

#[test]
fn reordering_on_every_datagram_loses_no_packet() {
    let figures = run(Impairment {
        seed: 10,
        loss_permille: 0,
        audio: true,
    });
    eprintln!("reordering: {figures}");
}

#[test]
fn five_percent_loss_with_reordering_is_repaired_by_nack_and_rtx() {
    // Video only: WebRTC does not retransmit Opus (no RTX for audio;
    // str0m sends no NACK for a stream without it), FEC/RED covers audio.
    let figures = run(Impairment {
        seed: 20,
        loss_permille: 50,
        audio: false,
    });
    eprintln!("5 % loss: {figures}");
    assert!(
        figures.dropped * 100 >= figures.relayed * 3,
        "the relays dropped about 5 %: {figures}"
    );
    assert!(
        figures.rtx_up > 0 && figures.rtx_down > 0,
        "both hops retransmitted: {figures}"
    );
}

/// How the relays treat a run.
struct Impairment {
    seed: u64,
    loss_permille: u64,
    audio: bool,
}

/// What the relays saw, for the failure messages and the log.
#[derive(Debug)]
struct Figures {
    sent: u64,
    received: u64,
    relayed: u64,
    dropped: u64,
    /// RTX datagrams publisher → server, and server → viewer.
    rtx_up: u64,
    rtx_down: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packets sent, {} received; relays dropped {} of {} datagrams; RTX publisher→server {}, server→viewer {}",
            self.sent, self.received, self.dropped, self.relayed, self.rtx_up, self.rtx_down
        )
    }
}

/// Publishes for 7 s through one relay and watches through another; checks
/// that every packet arrived intact and returns the figures.
fn run(impairment: Impairment) -> Figures {
    let server = ServerProc::start(&["--shards", "1"]);
    let lossy = Arc::new(AtomicBool::new(false));
    let loss = impairment.loss_permille;
    let up = Impairer::start(server.udp, impairment.seed, loss, lossy.clone());
    let down = Impairer::start(server.udp, impairment.seed + 1, loss, lossy.clone());
    let options = |via: SocketAddr| ClientOptions {
        via: Some(via),
        audio: impairment.audio,
        ..ClientOptions::default()
    };
    let limit = Duration::from_secs(30);
    let flags = Flags::default();
    let publisher = spawn_client(
        &server.base,
        "jitter",
        ClientRole::Publish,
        options(up.front),
        &flags,
        limit,
    );
    let viewer = spawn_client(
        &server.base,
        "jitter",
        ClientRole::Watch,
        options(down.front),
        &flags,
        limit,
    );
    assert!(
        flags.wait_connected(2, Duration::from_secs(10)),
        "both clients connected through the relays"
    );
    lossy.store(true, Ordering::Relaxed);
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(6));
    lossy.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    flags.send.store(false, Ordering::Relaxed);
    // What is in flight, and the last repairs, arrive.
    std::thread::sleep(Duration::from_millis(1500));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();
    let rtx = rtx_pt();
    let (up, down) = (up.finish(), down.finish());
    let kinds: &[Kind] = if impairment.audio {
        &[Kind::Audio, Kind::Video]
    } else {
        &[Kind::Video]
    };
    let sent: u64 = kinds.iter().map(|k| publisher.sent(*k)).sum();
    let figures = Figures {
        sent,
        received: kinds
            .iter()
            .map(|k| viewer.received(*k).unique_from(1))
            .sum(),
        relayed: up.relayed + down.relayed,
        dropped: up.dropped + down.dropped,
        rtx_up: up.rtp.get(&(true, rtx)).copied().unwrap_or(0),
        rtx_down: down.rtp.get(&(false, rtx)).copied().unwrap_or(0),
    };
    assert!(sent > 500, "the publisher sent: {figures}");
    for kind in kinds {
        let counter = viewer.received(*kind);
        let sent = publisher.sent(*kind);
        assert_eq!(
            counter.missing_from(1, sent as u32),
            Vec::<(u32, u32)>::new(),
            "{kind:?}: every packet reached the viewer; {figures}; server {}",
            server.stats()
        );
        assert_eq!(counter.corrupt, 0, "{kind:?}: byte-identical payloads");
    }
    assert_eq!(
        server.shard_sum("rtp_in"),
        sent,
        "the server took every packet once: {figures}"
    );
    figures
}

/// The RTP payload type of VP8 retransmissions (str0m's default, which
/// both clients offer and the server's answers keep).
fn rtx_pt() -> u8 {
    let rtc = str0m::Rtc::builder()
        .clear_codecs()
        .enable_vp8(true)
        .build(Instant::now());
    rtc.codec_config()
        .find(|p| p.spec().codec == str0m::format::Codec::Vp8)
        .and_then(|vp8| vp8.resend())
        .map(|pt| *pt)
        .expect("VP8 has an RTX payload type")
}

/// SplitMix64: a small seeded generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// What one relay counted.
#[derive(Debug, Default)]
struct Counts {
    relayed: u64,
    dropped: u64,
    /// RTP datagrams by (towards the server, payload type).
    rtp: BTreeMap<(bool, u8), u64>,
}

/// A UDP relay between one client (which sends to `front`) and the
/// server, delaying every datagram 30 ± 10 ms and, while `lossy` is set,
/// dropping `loss_permille` of them. Loopback only; it runs at most 40 s,
/// relays at most 500,000 datagrams and holds at most 20,000 in flight.
struct Impairer {
    front: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<Counts>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const BASE_DELAY: Duration = Duration::from_millis(30);
const JITTER_US: u64 = 10_000;
const MAX_RUN: Duration = Duration::from_secs(40);
const MAX_DATAGRAMS: u64 = 500_000;
const MAX_IN_FLIGHT: usize = 20_000;

/// One datagram on its way: when it is due, and whether it goes to the server.
struct InFlight {
    due: Instant,
    up: bool,
    data: Vec<u8>,
}

impl Impairer {
    fn start(server: SocketAddr, seed: u64, loss_permille: u64, lossy: Arc<AtomicBool>) -> Self {
        assert!(server.ip().is_loopback(), "the relay stays on loopback");
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind relay front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind relay back");
        let front_addr = front.local_addr().expect("addr");
        for socket in [&front, &back] {
            socket.set_nonblocking(true).expect("nonblocking");
            let _ = uringcast::net::set_receive_buffer(socket, 4 << 20);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let (halt, tally) = (stop.clone(), counts.clone());
        let thread = std::thread::spawn(move || {
            let mut relay = Relaying {
                rng: Rng(seed),
                loss_permille,
                lossy,
                streams: Default::default(),
                in_flight: Vec::new(),
                counts: Counts::default(),
            };
            let deadline = Instant::now() + MAX_RUN;
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && relay.counts.relayed < MAX_DATAGRAMS
            {
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    relay.take(true, &buf[..n]);
                }
                while let Ok((n, _)) = back.recv_from(&mut buf) {
                    relay.take(false, &buf[..n]);
                }
                let now = Instant::now();
                relay.in_flight.sort_by_key(|d| d.due);
                let due = relay.in_flight.partition_point(|d| d.due <= now);
                for datagram in relay.in_flight.drain(..due) {
                    let _ = match (datagram.up, client) {
                        (true, _) => back.send_to(&datagram.data, server),
                        (false, Some(client)) => front.send_to(&datagram.data, client),
                        (false, None) => continue,
                    };
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            *tally.lock().expect("counts") = relay.counts;
        });
        Self {
            front: front_addr,
            stop,
            counts,
            thread: Some(thread),
        }
    }

    /// Stops the relay; what it counted.
    fn finish(mut self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the relay thread ran");
        }
        std::mem::take(&mut *self.counts.lock().expect("counts"))
    }
}

impl Drop for Impairer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The relay thread's state.
struct Relaying {
    rng: Rng,
    loss_permille: u64,
    lossy: Arc<AtomicBool>,
    /// (towards the server, SSRC) of every RTP stream seen.
    streams: std::collections::HashSet<(bool, u32)>,
    in_flight: Vec<InFlight>,
    counts: Counts,
}

impl Relaying {
    /// Drops `data` or schedules it.
    fn take(&mut self, up: bool, data: &[u8]) {
        self.counts.relayed += 1;
        let mut first_of_stream = false;
        if classify(data) == PacketClass::Rtp
            && let Ok(header) = RtpHeader::parse(data)
        {
            *self
                .counts
                .rtp
                .entry((up, header.payload_type))
                .or_default() += 1;
            first_of_stream = self.streams.insert((up, header.ssrc));
        }
        let lossy = self.lossy.load(Ordering::Relaxed) && !first_of_stream;
        if (lossy && self.rng.below(1000) < self.loss_permille)
            || self.in_flight.len() >= MAX_IN_FLIGHT
        {
            self.counts.dropped += 1;
            return;
        }
        let delay = BASE_DELAY - Duration::from_micros(JITTER_US)
            + Duration::from_micros(self.rng.below(2 * JITTER_US + 1));
        self.in_flight.push(InFlight {
            due: Instant::now() + delay,
            up,
            data: data.to_vec(),
        });
    }
}
