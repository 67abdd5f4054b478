//! A WebRTC client built on str0m over a real UDP socket: it publishes with
//! WHIP (synthetic VP8 video with valid payload descriptors and periodic
//! keyframes, plus Opus-sized audio at 50 packets/s) or watches with WHEP and
//! accounts for every packet. The integration tests drive the server with it;
//! the load tool grows from it.

pub mod conference;
pub mod driver;
pub mod payload;
pub mod report;
pub mod signaling;
pub mod swarm;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

use payload::{Kind, Trailer};
use report::{TrackCounter, TrackSummary};
pub use signaling::{Candidates, Setup, Signaling};
pub use uringcast_proto::dtls::KeyType;
use uringcast_proto::recovery::{StartHold, allow_resends};

/// Why a client could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("SDP: {0}")]
    Sdp(String),
    #[error("DTLS certificate: {0}")]
    Dtls(String),
    #[error("str0m: {0}")]
    Rtc(#[from] RtcError),
}

/// Publish or watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClientRole {
    Publish,
    Watch,
}

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Local IP to bind the client's UDP socket to.
    pub bind: IpAddr,
    pub audio: bool,
    pub video: bool,
    /// Video bitrate in bits/s (publisher).
    pub video_bitrate: u32,
    /// Frames per second (publisher).
    pub fps: u32,
    /// Written into every payload's trailer, to tell publishers apart.
    pub tag: u32,
    /// Time between two keyframes sent unasked.
    pub keyframe_interval: Duration,
    /// Send every datagram to this address instead of the server's, and take
    /// what comes back from it as coming from the server: a relay standing in
    /// for a NAT in tests.
    pub via: Option<SocketAddr>,
    /// Token, trickle, and the quirks of real clients to imitate.
    pub signaling: Signaling,
    /// The key of the client's DTLS certificate: ECDSA P-256 as browsers
    /// have, or RSA-2048 as GStreamer and other OpenSSL-based clients have.
    pub dtls_key: KeyType,
    /// The RFC 6464 audio level (−dBov, 0 loudest) written on every audio
    /// packet, with the voice flag set from −50 up; `None`: no level.
    pub audio_level: Option<i8>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            audio: true,
            video: true,
            video_bitrate: 1_000_000,
            fps: 30,
            tag: 1,
            keyframe_interval: Duration::from_secs(2),
            via: None,
            signaling: Signaling::default(),
            dtls_key: KeyType::EcdsaP256,
            audio_level: None,
        }
    }
}

/// How far a publisher's media schedule may fall behind before it skips
/// ahead (see `send_due_media`).
const MAX_LAG: Duration = Duration::from_millis(200);

/// Largest video packet payload the publisher writes.
const VIDEO_PACKET: usize = 1100;
/// Audio payload size (a typical Opus packet at ~40 kbit/s).
const AUDIO_PACKET: usize = 100;

#[derive(Debug)]
struct TrackTx {
    mid: Mid,
    pt: u8,
    seq: u64,
    ts: u32,
    trailer_seq: u32,
}

#[derive(Debug)]
struct Sender {
    audio: Option<TrackTx>,
    video: Option<TrackTx>,
    next_audio: Instant,
    next_video: Instant,
    last_keyframe: Option<Instant>,
    force_keyframe: bool,
    picture_id: u16,
}

/// One client session.
pub struct Client {
    role: ClientRole,
    options: ClientOptions,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    agent: ureq::Agent,
    session_url: String,
    started: Instant,
    connected_at: Option<Instant>,
    first_media_at: Option<Instant>,
    sender: Sender,
    kinds: Vec<(Ssrc, Kind)>,
    audio_rx: TrackCounter,
    video_rx: TrackCounter,
    keyframe_requests: u64,
    keyframes_received: u64,
    /// The server address str0m sends to (learned from its transmits).
    server: Option<SocketAddr>,
    /// The server closed DTLS (close_notify).
    closed_by_server: bool,
    /// The session's ETag (changes at an ICE restart).
    etag: Option<String>,
    /// The server's SDP (answer), with the ICE credentials of the current session.
    remote_sdp: String,
    /// The server's current ICE password.
    remote_pwd: String,
    /// Binding requests sent without PRIORITY (FFmpeg imitation).
    stun_rewritten: u64,
    /// The first packets of each stream the server sends, held so str0m
    /// takes them in order (see `sfu::recovery`).
    start_hold: StartHold,
    buf: Vec<u8>,
    /// A conference subscriber: the server's offers (from its event
    /// stream), answered as they come.
    offers: Option<conference::OfferInbox>,
    /// When the first packet of each publisher tag arrived.
    first_from: Vec<(u32, Instant)>,
}

/// What a client measured.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub role: ClientRole,
    /// From the POST to ICE+DTLS connected.
    pub setup_ms: Option<u64>,
    /// From the POST to the first media packet (viewer).
    pub first_media_ms: Option<u64>,
    pub sent_audio: u64,
    pub sent_video: u64,
    pub keyframe_requests: u64,
    pub keyframes_received: u64,
    pub audio: TrackSummary,
    pub video: TrackSummary,
}

impl Client {
    /// Creates the session: `POST {base}/whip/{room}` or `…/whep/{room}`.
    pub fn connect(
        base: &str,
        room: &str,
        role: ClientRole,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let path = match role {
            ClientRole::Publish => "whip",
            ClientRole::Watch => "whep",
        };
        let url = format!("{}/{path}/{room}", base.trim_end_matches('/'));
        Self::connect_to(base, &url, role, options)
    }

    /// Creates the session by offering to `url` (a WHIP or WHEP endpoint,
    /// or a conference participant's publish URL).
    pub fn connect_to(
        base: &str,
        url: &str,
        role: ClientRole,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let now = Instant::now();
        let (socket, local, mut rtc) = client_rtc(&options, now)?;
        let direction = match role {
            ClientRole::Publish => Direction::SendOnly,
            ClientRole::Watch => Direction::RecvOnly,
        };
        let mut change = rtc.sdp_api();
        let audio_mid = options
            .audio
            .then(|| change.add_media(MediaKind::Audio, direction, None, None, None));
        let video_mid = options
            .video
            .then(|| change.add_media(MediaKind::Video, direction, None, None, None));
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Sdp("no media to offer".into()))?;

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(signaling::tls_config(&options.signaling))
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let endpoint = signaling::Endpoint {
            agent: &agent,
            base,
            url,
        };
        let negotiated = signaling::negotiate(
            endpoint,
            role,
            &options.signaling,
            &mut rtc,
            pending,
            &offer.to_sdp_string(),
        )?;

        // Retransmit as a browser does, beyond str0m's 15 % cap.
        allow_resends(&mut rtc, audio_mid.into_iter().chain(video_mid));
        let rtx_pts: Vec<u8> = (rtc.codec_config().params().iter())
            .filter_map(|p| p.resend())
            .map(|pt| *pt)
            .collect();

        let pt_of = |rtc: &Rtc, codec: Codec| {
            rtc.codec_config()
                .find(|p| p.spec().codec == codec)
                .map(|p| *p.pt())
        };
        let track = |mid: Option<Mid>, codec| -> Option<TrackTx> {
            Some(TrackTx {
                mid: mid?,
                pt: pt_of(&rtc, codec)?,
                seq: 1000,
                ts: 0,
                trailer_seq: 0,
            })
        };
        let sender = Sender {
            audio: track(audio_mid, Codec::Opus),
            video: track(video_mid, Codec::Vp8),
            next_audio: now,
            next_video: now,
            last_keyframe: None,
            force_keyframe: true,
            picture_id: 0,
        };
        Ok(Self {
            role,
            options,
            rtc,
            socket,
            local,
            agent,
            session_url: negotiated.session_url,
            started: now,
            connected_at: None,
            first_media_at: None,
            sender,
            kinds: Vec::new(),
            audio_rx: TrackCounter::default(),
            video_rx: TrackCounter::default(),
            keyframe_requests: 0,
            keyframes_received: 0,
            server: None,
            closed_by_server: false,
            etag: negotiated.etag,
            remote_pwd: signaling::ice_pwd(&negotiated.remote_sdp),
            remote_sdp: negotiated.remote_sdp,
            stun_rewritten: 0,
            start_hold: StartHold::new(rtx_pts),
            buf: vec![0; 2048],
            offers: None,
            first_from: Vec::new(),
        })
    }

    /// The session URL the server gave (`Location`).
    pub fn session_url(&self) -> &str {
        &self.session_url
    }

    pub fn is_connected(&self) -> bool {
        self.connected_at.is_some()
    }

    /// Whether the server ended the session (DTLS close_notify arrived).
    pub fn closed_by_server(&self) -> bool {
        self.closed_by_server
    }

    /// The viewer's accounting of one kind.
    pub fn received(&self, kind: Kind) -> &TrackCounter {
        match kind {
            Kind::Audio => &self.audio_rx,
            Kind::Video => &self.video_rx,
        }
    }

    /// Packets the publisher sent of one kind.
    pub fn sent(&self, kind: Kind) -> u64 {
        let track = match kind {
            Kind::Audio => &self.sender.audio,
            Kind::Video => &self.sender.video,
        };
        track.as_ref().map_or(0, |t| u64::from(t.trailer_seq))
    }

    /// Drives the session until `until` or until `stop` is set. A publisher
    /// sends media only while `send` is set (so viewers can connect first).
    pub fn run(
        &mut self,
        until: Instant,
        send: &AtomicBool,
        stop: &AtomicBool,
    ) -> Result<(), ClientError> {
        loop {
            self.answer_offers()?;
            let timeout = self.drain()?;
            let now = Instant::now();
            if now >= until || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut wake = timeout.min(until);
            if self.role == ClientRole::Publish
                && self.is_connected()
                && send.load(Ordering::Relaxed)
            {
                self.send_due_media(now)?;
                wake = wake.min(self.sender.next_audio).min(self.sender.next_video);
            } else if self.role == ClientRole::Publish {
                wake = wake.min(now + Duration::from_millis(5));
            }
            let wait = wake
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(500), Duration::from_millis(50));
            self.socket.set_read_timeout(Some(wait))?;
            let received = self.socket.recv_from(&mut self.buf);
            let input = match received {
                Ok((n, source)) => {
                    self.feed(n, source)?;
                    continue;
                }
                // ICMP port unreachable (the server went away) is like a lost
                // packet to a UDP client, not an error of ours.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    Input::Timeout(Instant::now())
                }
                Err(e) => return Err(e.into()),
            };
            self.release_held(Instant::now())?;
            self.rtc.handle_input(input)?;
        }
    }

    /// Milliseconds from this client's start to the first packet of each
    /// publisher it received from.
    pub fn first_packet_per_peer_ms(&self) -> Vec<u64> {
        self.first_from
            .iter()
            .map(|(_, at)| at.duration_since(self.started).as_millis() as u64)
            .collect()
    }

    /// Ends the session with `DELETE`; returns the HTTP status.
    pub fn delete(&self) -> Result<u16, ClientError> {
        self.delete_session()
    }

    /// Closes this side first, as a browser's `pc.close()` does: str0m
    /// sends RTCP BYE and DTLS close_notify now, and the server ends the
    /// session. No DELETE is sent ([`Client::delete`] may follow).
    pub fn close(&mut self) -> Result<(), ClientError> {
        self.rtc.close()?;
        self.drain()?;
        Ok(())
    }

    /// Everything measured so far.
    pub fn report(&self) -> ClientReport {
        let ms =
            |at: Option<Instant>| at.map(|t| t.duration_since(self.started).as_millis() as u64);
        ClientReport {
            role: self.role,
            setup_ms: ms(self.connected_at),
            first_media_ms: ms(self.first_media_at),
            sent_audio: self.sent(Kind::Audio),
            sent_video: self.sent(Kind::Video),
            keyframe_requests: self.keyframe_requests,
            keyframes_received: self.keyframes_received,
            audio: self.audio_rx.summary(),
            video: self.video_rx.summary(),
        }
    }

    /// Feeds the `n` bytes just received into `buf` from `source`, then
    /// drains. Bytes that are no WebRTC datagram are ignored, like a network
    /// stack would.
    fn feed(&mut self, n: usize, source: SocketAddr) -> Result<(), ClientError> {
        let Some(data) = self.buf.get(..n) else {
            return Ok(());
        };
        let Ok(contents) = data.try_into() else {
            return Ok(());
        };
        let source = match (self.options.via, self.server) {
            (Some(via), Some(server)) if source == via => server,
            _ => source,
        };
        let now = Instant::now();
        if !self
            .start_hold
            .hold(now, str0m::net::Protocol::Udp, source, self.local, data)
        {
            let input = udp_input(now, source, self.local, contents);
            self.rtc.handle_input(input)?;
            self.drain()?;
        }
        self.release_held(now)
    }

    /// Feeds the held packets whose hold ended by `now`, in order.
    fn release_held(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.start_hold.deadline().is_none_or(|due| due > now) {
            return Ok(());
        }
        for held in self.start_hold.release(now) {
            let Ok(contents) = held.data.as_slice().try_into() else {
                continue;
            };
            let input = udp_input(now, held.source, held.destination, contents);
            self.rtc.handle_input(input)?;
            self.drain()?;
        }
        Ok(())
    }

    /// Drains str0m: sends transmits, handles events; returns its next
    /// timeout (or the end of a start hold, if sooner).
    fn drain(&mut self) -> Result<Instant, ClientError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => {
                    return Ok(self.start_hold.deadline().map_or(at, |due| due.min(at)));
                }
                Output::Transmit(t) => {
                    // A full socket buffer loses this datagram like a network would.
                    self.server = Some(t.destination);
                    let to = self.options.via.unwrap_or(t.destination);
                    let quirks = &self.options.signaling;
                    let rewritten = signaling::quirky_check(
                        &t.contents,
                        &self.remote_pwd,
                        quirks.stun_without_priority,
                        quirks.nominate_once && self.connected_at.is_some(),
                    );
                    self.stun_rewritten += u64::from(rewritten.is_some());
                    let _ = self
                        .socket
                        .send_to(rewritten.as_deref().unwrap_or(&t.contents), to);
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected_at = Some(Instant::now()),
            Event::Closed => self.closed_by_server = true,
            Event::KeyframeRequest(_) => {
                self.keyframe_requests += 1;
                self.sender.force_keyframe = true;
            }
            Event::RtpPacket(packet) => {
                let ssrc = packet.header.ssrc;
                self.start_hold.confirm(*ssrc);
                let kind = match self.kinds.iter().find(|(s, _)| *s == ssrc) {
                    Some((_, kind)) => *kind,
                    None => {
                        let mid = self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid());
                        let kind = match mid.and_then(|m| self.rtc.media(m)).map(|m| m.kind()) {
                            Some(MediaKind::Audio) => Kind::Audio,
                            Some(MediaKind::Video) => Kind::Video,
                            None => return,
                        };
                        self.kinds.push((ssrc, kind));
                        kind
                    }
                };
                self.first_media_at.get_or_insert_with(Instant::now);
                let counter = match kind {
                    Kind::Audio => &mut self.audio_rx,
                    Kind::Video => &mut self.video_rx,
                };
                match payload::check(&packet.payload) {
                    Ok(trailer) if trailer.kind == kind => {
                        if !self.first_from.iter().any(|(t, _)| *t == trailer.tag) {
                            self.first_from.push((trailer.tag, Instant::now()));
                        }
                        let latency = payload::now_us().saturating_sub(trailer.sent_us);
                        counter.record(trailer.tag, trailer.seq, latency, *packet.seq_no);
                        if kind == Kind::Video && is_vp8_keyframe_start(&packet.payload) {
                            self.keyframes_received += 1;
                        }
                    }
                    other => {
                        tracing::debug!(
                            ?kind,
                            ?other,
                            len = packet.payload.len(),
                            "payload did not verify"
                        );
                        counter.record_corrupt()
                    }
                }
            }
            _ => {}
        }
    }

    /// Writes every audio packet and video frame whose time has come.
    fn send_due_media(&mut self, now: Instant) -> Result<(), ClientError> {
        // A live source does not send what it missed while paused (or while
        // this thread was not scheduled): a schedule that fell behind by
        // more than `MAX_LAG` restarts at `now` instead of bursting.
        // Its RTP clock is its capture clock: it skips ahead too.
        let tracks = [
            (&mut self.sender.next_audio, &mut self.sender.audio, 48_000),
            (&mut self.sender.next_video, &mut self.sender.video, 90_000),
        ];
        for (next, track, rate) in tracks {
            let lag = now.saturating_duration_since(*next);
            if lag > MAX_LAG {
                *next = now;
                if let Some(track) = track {
                    let ticks = lag.as_micros() * rate / 1_000_000;
                    track.ts = track.ts.wrapping_add(ticks as u32);
                }
            }
        }
        let audio_period = Duration::from_millis(20);
        while self.sender.audio.is_some() && self.sender.next_audio <= now {
            self.sender.next_audio += audio_period;
            let tag = self.options.tag;
            let Some(track) = self.sender.audio.as_mut() else {
                break;
            };
            let trailer = Trailer {
                tag,
                kind: Kind::Audio,
                seq: track.trailer_seq,
                sent_us: payload::now_us(),
            };
            track.trailer_seq += 1;
            let data = payload::audio_payload(trailer, AUDIO_PACKET);
            let write = (track.mid, track.pt, track.seq, track.ts, false, data);
            track.seq += 1;
            track.ts = track.ts.wrapping_add(960);
            self.write(now, write)?;
        }
        let fps = self.options.fps.max(1);
        let frame_period = Duration::from_secs(1) / fps;
        while self.sender.video.is_some() && self.sender.next_video <= now {
            self.sender.next_video += frame_period;
            let keyframe = self.sender.force_keyframe
                || self
                    .sender
                    .last_keyframe
                    .is_none_or(|at| now.duration_since(at) >= self.options.keyframe_interval);
            if keyframe {
                self.sender.force_keyframe = false;
                self.sender.last_keyframe = Some(now);
            }
            let frame_bytes = (self.options.video_bitrate / 8 / fps).max(200) as usize;
            let packets = frame_bytes.div_ceil(VIDEO_PACKET);
            let size = frame_bytes / packets;
            self.sender.picture_id = (self.sender.picture_id + 1) & 0x7fff;
            let picture_id = self.sender.picture_id;
            for i in 0..packets {
                let tag = self.options.tag;
                let Some(track) = self.sender.video.as_mut() else {
                    break;
                };
                let trailer = Trailer {
                    tag,
                    kind: Kind::Video,
                    seq: track.trailer_seq,
                    sent_us: payload::now_us(),
                };
                track.trailer_seq += 1;
                let data = payload::vp8_payload(picture_id, i == 0, keyframe, trailer, size);
                let write = (
                    track.mid,
                    track.pt,
                    track.seq,
                    track.ts,
                    i + 1 == packets,
                    data,
                );
                track.seq += 1;
                self.write(now, write)?;
            }
            if let Some(track) = self.sender.video.as_mut() {
                track.ts = track.ts.wrapping_add(90_000 / fps);
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        now: Instant,
        (mid, pt, seq, ts, marker, data): (Mid, u8, u64, u32, bool, Vec<u8>),
    ) -> Result<(), ClientError> {
        let video = self.sender.video.as_ref().is_some_and(|t| t.mid == mid);
        let mut write = RtpWrite::new(pt.into(), seq.into(), ts, now, data)
            .marker(marker)
            .nackable(video);
        if let Some(level) = self.options.audio_level.filter(|_| !video) {
            write = write.ext_vals(str0m::rtp::ExtensionValues {
                audio_level: Some(level),
                voice_activity: Some(level >= uringcast_proto::VOICE_LEVEL),
                ..Default::default()
            });
        }
        if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            stream.write_rtp(write);
        }
        self.drain()?;
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain()?;
        Ok(())
    }
}

/// The client's socket (bound on `options.bind`, any port), its address,
/// and an `Rtc` in RTP mode with VP8 and Opus, our DTLS, and that address
/// as its one host candidate: what every session of the client starts from.
pub(super) fn client_rtc(
    options: &ClientOptions,
    now: Instant,
) -> Result<(UdpSocket, SocketAddr, Rtc), ClientError> {
    let socket = UdpSocket::bind(SocketAddr::new(options.bind, 0))?;
    let local = socket.local_addr()?;
    let cert = uringcast_proto::dtls::certificate(options.dtls_key)
        .map_err(|e| ClientError::Dtls(e.to_string()))?;
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_vp8(true)
        .enable_opus(true, false)
        .set_crypto_provider(uringcast_proto::dtls::crypto_provider())
        .set_dtls_cert(cert)
        .build(now);
    let candidate = Candidate::host(local, "udp").map_err(|e| ClientError::Sdp(e.to_string()))?;
    rtc.add_local_candidate(candidate);
    Ok((socket, local, rtc))
}

/// Our synthetic VP8: descriptor is 4 bytes; a frame's first packet has S set;
/// the payload header's P bit (bit 0) is 0 for a key frame.
fn is_vp8_keyframe_start(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & 0x10 != 0) && payload.get(4).is_some_and(|b| b & 0x01 == 0)
}

/// Resolves a `Location` that may be relative to `base`'s origin.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}{}", &base[..origin_end], location)
}

/// A UDP datagram from `source` to `destination`, as str0m takes it.
fn udp_input<'a>(
    now: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    contents: str0m::net::DatagramRecv<'a>,
) -> Input<'a> {
    Input::Receive(
        now,
        Receive {
            proto: Protocol::Udp,
            source,
            destination,
            contents,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_origin() {
        assert_eq!(
            resolve("http://h:1/x/y", "/session/a"),
            "http://h:1/session/a"
        );
        assert_eq!(resolve("http://h:1", "/session/a"), "http://h:1/session/a");
        assert_eq!(resolve("http://h:1", "http://o/s"), "http://o/s");
    }
}
