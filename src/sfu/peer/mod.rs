//! One WebRTC session: a str0m `Rtc` in RTP mode plus what uringcast keeps
//! beside it — its role, its room, its liveness deadlines, and for a
//! subscriber its outgoing tracks (each fed by one [`Feed`], with its
//! payload-type map and rewriter); for a publisher its published tracks and
//! the keyframe throttles of its video tracks.
//!
//! Every call into str0m runs under `catch_unwind` and is followed by a full
//! drain of `poll_output` (str0m's single-mutation contract). A panic closes
//! this peer only; the shard sees [`Peer::closed`] and removes it.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Receive, Transmit};
use str0m::rtp::Ssrc;
use str0m::{Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcError};
use tracing::{debug, warn};

use super::bitrate::BitrateLimit;
use super::egress::Egress;
use super::keyframe::KeyframeThrottle;
use super::recovery::{StartHold, allow_resends};
use super::rewrite::Rewriter;
use super::room::{PublishedMedia, PublishedTrack, RoomShared};
use super::router::FeedSource;
use super::stun_repair::{Repair, repair_binding_request};
use super::{Feed, IdRng, PeerAddr, Role, SessionId, TrackId};

mod media;
mod patch;
mod republish;
mod subscribe;

pub(super) use media::can_receive;

pub use subscribe::{AnswerError, ServerOffer};
pub(super) use subscribe::{Negotiation, msid};

/// Why a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// DELETE on its session URL.
    Deleted,
    /// ICE and DTLS did not complete within the connect timeout.
    NeverConnected,
    /// Nothing heard from a connected peer within the ICE timeout.
    Silent,
    /// str0m reported ICE disconnected or the DTLS session closed.
    Disconnected,
    /// str0m returned an error we cannot continue from.
    Failed,
    /// A call into str0m panicked.
    Panicked,
    /// The server is shutting down.
    Shutdown,
}

/// One RTP packet of a published track, shared by `Arc` between every
/// subscriber and every shard it reaches.
#[derive(Debug)]
pub struct Forwarded {
    pub room_id: u64,
    pub track: Arc<PublishedTrack>,
    /// Its publisher fed the room's main feed when it was sent: WHEP
    /// viewers of the room get it too.
    pub main: bool,
    /// Track id and SSRC: changes when the source changes.
    pub source: u64,
    pub pt: u8,
    pub clock_rate: u32,
    /// Extended sequence number (no wraps).
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub payload: Arc<[u8]>,
    pub received: Instant,
}

/// Something a peer asks of the shard after a call.
#[derive(Debug)]
pub enum PeerEvent {
    /// The publisher received a media packet: fan it out to the room.
    Media(Arc<Forwarded>),
    /// A subscriber wants a keyframe on `feed` (it connected, the source
    /// switched, or it sent PLI/FIR): ask that feed's publisher.
    WantKeyframe {
        feed: Feed,
        kind: KeyframeRequestKind,
    },
    /// ICE and DTLS completed, `after` the session was created (its offer
    /// answered).
    Connected { after: Duration },
    /// The session's first media packet: a publisher's first received, a
    /// subscriber's first sent, `after` the session was created.
    FirstMedia { after: Duration },
}

/// What calls into peers produce: datagrams to send and events for the shard.
/// Reused across calls so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct Outputs {
    pub transmits: Vec<Transmit>,
    pub events: Vec<PeerEvent>,
    /// Packets a viewer could not take (no matching payload type, or older
    /// than its stream start).
    pub dropped: u64,
    /// Packets written to viewers.
    pub forwarded: u64,
    /// Publisher packets dropped over `--max-bitrate-in`.
    pub dropped_bitrate_in: u64,
    /// Viewer packets dropped over `--max-bitrate-out`.
    pub dropped_bitrate_out: u64,
    /// Times a session's media moved to another address of its client (not
    /// its first nomination).
    pub path_moves: u64,
    /// Of those, moves by a check without USE-CANDIDATE taking over a
    /// silent path (see `egress`).
    pub path_takeovers: u64,
}

/// The shape of a session's tracks, by role.
#[derive(Debug)]
pub(super) enum Side {
    Publisher(PublisherSide),
    Subscriber(SubscriberSide),
}

#[derive(Debug)]
pub(super) struct PublisherSide {
    pub media: Arc<PublishedMedia>,
    /// SSRC → index in `media.tracks`, learned on first packet of each SSRC.
    pub ssrcs: Vec<(Ssrc, usize)>,
    /// Video tracks' keyframe throttles.
    pub keyframes: Vec<(Mid, KeyframeThrottle)>,
    /// The index the next track added by a renegotiation gets (its
    /// [`TrackId`]); at `u8::MAX` no more can be added.
    pub next_index: u8,
    /// `--keyframe-interval`, for the throttles of tracks added later.
    pub keyframe_interval: Duration,
}

#[derive(Debug)]
pub(super) struct SubscriberSide {
    pub outs: Vec<TrackOut>,
    /// A conference subscribe transport's offers (`None`: WHEP, whose
    /// client offered).
    pub negotiation: Option<Negotiation>,
}

/// One outgoing track of a subscriber: an m-line of its `Rtc` fed by one
/// [`Feed`].
#[derive(Debug)]
pub(super) struct TrackOut {
    pub mid: Mid,
    pub kind: MediaKind,
    pub source: FeedSource,
    /// `source.feed()`, kept so a packet finds its track without a pointer
    /// chase per outgoing track.
    pub feed: Feed,
    /// Publisher PT → our PT (`NO_PT`: the subscriber did not negotiate it).
    pub pt_map: [u8; 128],
    /// The track `pt_map` was built for (`None`: none yet).
    pub map_track: Option<TrackId>,
    pub rewriter: Rewriter,
}

const NO_PT: u8 = u8::MAX;

impl TrackOut {
    pub(super) fn new(mid: Mid, kind: MediaKind, source: FeedSource) -> Self {
        Self {
            mid,
            kind,
            feed: source.feed(),
            source,
            pt_map: [NO_PT; 128],
            map_track: None,
            rewriter: Rewriter::default(),
        }
    }
}

/// Liveness limits of one peer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub ice: Duration,
}

/// Bytes counted for an RTP header against a bitrate limit.
const RTP_HEADER_BYTES: usize = 12;

/// Least interval between two keyframes asked for a viewer whose video
/// lost packets to `--max-bitrate-out`.
const GAP_KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);

/// Least interval between two REMBs asked of a publisher over its limit.
const REMB_INTERVAL: Duration = Duration::from_secs(1);

/// One session's state machine.
#[derive(Debug)]
pub struct Peer {
    id: SessionId,
    role: Role,
    room: Arc<RoomShared>,
    ufrag: String,
    /// Our ICE password (checks MESSAGE-INTEGRITY of requests we repair).
    pwd: String,
    /// The client's current ICE credentials (a PATCH naming others restarts ICE).
    remote_ice: Option<IceCreds>,
    /// Remote candidates trickled into the current ICE session.
    remote_candidates: usize,
    /// ICE-CONTROLLING tiebreaker for repaired requests.
    tiebreaker: u64,
    /// Where an ICE restart's credentials come from (the setup's source).
    rng: IdRng,
    rtc: Rtc,
    side: Side,
    timeouts: Timeouts,
    created: Instant,
    last_heard: Instant,
    connected: bool,
    rtc_deadline: Instant,
    closed: Option<CloseReason>,
    /// Packets were written since the last flush.
    unflushed: bool,
    /// `--max-bitrate-in` (a publisher) or `--max-bitrate-out` (a viewer).
    bitrate_limit: Option<BitrateLimit>,
    /// When a REMB was last asked of this publisher for going over its limit.
    last_remb: Option<Instant>,
    /// The address the client last nominated, if str0m sends elsewhere.
    egress: Egress,
    /// A viewer: a video packet was dropped over `--max-bitrate-out`.
    video_gap: bool,
    /// When a keyframe was last asked for because of such a gap.
    gap_keyframe_at: Option<Instant>,
    /// A publisher: the first packets of each new stream, held so str0m
    /// takes them in order (see `recovery`).
    start_hold: Option<StartHold>,
    /// The first media packet went through (a [`PeerEvent::FirstMedia`]
    /// was given).
    media_seen: bool,
    /// `session` (debug level: at the default info level it is disabled
    /// and entering it costs a branch), with the session's id and room;
    /// every call into str0m runs inside it, so str0m's own debug lines
    /// name the session.
    span: tracing::Span,
}

impl Peer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: SessionId,
        role: Role,
        room: Arc<RoomShared>,
        local_ice: IceCreds,
        remote_ice: Option<IceCreds>,
        mut rtc: Rtc,
        side: Side,
        timeouts: Timeouts,
        rng: IdRng,
        now: Instant,
    ) -> Self {
        let start_hold = match &side {
            Side::Publisher(p) => Some(StartHold::new(
                p.media
                    .tracks
                    .iter()
                    .flat_map(|t| t.params.iter().filter_map(|p| p.resend()))
                    .map(|pt| *pt),
            )),
            Side::Subscriber(v) => {
                allow_resends(&mut rtc, v.outs.iter().map(|t| t.mid));
                None
            }
        };
        let span = tracing::debug_span!(
            "session",
            id = ?id,
            room = %room.name,
        );
        Self {
            id,
            role,
            room,
            ufrag: local_ice.ufrag,
            pwd: local_ice.pass,
            remote_ice,
            remote_candidates: 0,
            tiebreaker: rng.u64(),
            rng,
            rtc,
            side,
            timeouts,
            created: now,
            last_heard: now,
            connected: false,
            rtc_deadline: now,
            closed: None,
            unflushed: false,
            bitrate_limit: None,
            last_remb: None,
            egress: Egress::default(),
            video_gap: false,
            gap_keyframe_at: None,
            start_hold,
            media_seen: false,
            span,
        }
    }

    /// Sets the session's bitrate limit (bits/s, 0: none): for a publisher
    /// what it may send (`--max-bitrate-in`), for a viewer what it is sent
    /// (`--max-bitrate-out`). Excess packets are dropped and counted in
    /// [`Outputs`]; a publisher is asked by REMB to stay under its limit.
    pub fn limit_bitrate(&mut self, max_in: u64, max_out: u64) {
        self.bitrate_limit = BitrateLimit::new(match self.role {
            Role::Publisher => max_in,
            Role::Viewer => max_out,
        });
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn room(&self) -> &Arc<RoomShared> {
        &self.room
    }

    /// Attaches the peer to the directory's room of the same name (a peer is
    /// built with a detached placeholder so no room exists for an offer that
    /// is refused or abandoned).
    /// A subscriber's main feeds follow it to the real room.
    pub fn set_room(&mut self, room: Arc<RoomShared>) {
        self.span = tracing::debug_span!("session", id = ?self.id, room = %room.name);
        if let Side::Subscriber(s) = &mut self.side {
            for out in &mut s.outs {
                if let FeedSource::Main(_, kind) = out.source {
                    out.source = FeedSource::Main(room.clone(), kind);
                    out.feed = out.source.feed();
                }
            }
        }
        self.room = room;
    }

    /// Our ICE ufrag: the first half of USERNAME in the STUN this peer sends.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// The session's strong ETag: our current ICE ufrag, quoted. It changes
    /// exactly when the ICE session does (a restart).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.ufrag)
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Why the peer ended, once it has.
    pub fn closed(&self) -> Option<CloseReason> {
        self.closed
    }

    /// What this publisher sends (`None` for a subscriber).
    pub fn published_media(&self) -> Option<&Arc<PublishedMedia>> {
        match &self.side {
            Side::Publisher(p) => Some(&p.media),
            Side::Subscriber(_) => None,
        }
    }

    /// The tracks this peer publishes (none for a subscriber).
    pub fn published_tracks(&self) -> &[Arc<PublishedTrack>] {
        match &self.side {
            Side::Publisher(p) => &p.media.tracks,
            Side::Subscriber(_) => &[],
        }
    }

    /// The feeds this peer receives (none for a publisher).
    pub fn feeds(&self) -> impl Iterator<Item = &FeedSource> {
        let outs = match &self.side {
            Side::Subscriber(s) => s.outs.as_slice(),
            Side::Publisher(_) => &[],
        };
        outs.iter().map(|o| &o.source)
    }

    /// The earliest instant at which [`Peer::handle_timeout`] has work.
    pub fn deadline(&self) -> Instant {
        let liveness = if self.connected {
            self.last_heard + self.timeouts.ice
        } else {
            self.created + self.timeouts.connect
        };
        let mut at = self.rtc_deadline.min(liveness);
        if let Some(due) = self.start_hold.as_ref().and_then(StartHold::deadline) {
            at = at.min(due);
        }
        if let Side::Publisher(p) = &self.side {
            for (_, throttle) in &p.keyframes {
                if let Some(due) = throttle.deadline() {
                    at = at.min(due);
                }
            }
        }
        at
    }

    /// Feeds one datagram that arrived from `source` at our `destination`.
    /// Returns whether it was an authenticated STUN binding request: str0m
    /// answers one only when its MESSAGE-INTEGRITY checked out, so an answer
    /// to `source` proves the address (RFC 7675 consent). Only that keeps the
    /// peer alive; anything else could come from a spoofed source.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: impl Into<PeerAddr>,
        destination: SocketAddr,
        data: &[u8],
        out: &mut Outputs,
    ) -> bool {
        let source = source.into();
        let is_stun = crate::wire::classify(data) == crate::wire::PacketClass::Stun;
        // A Binding request without PRIORITY (FFmpeg) is rebuilt with one,
        // and a check that takes over a silent path (see `egress`) with
        // USE-CANDIDATE, if, and only if, its MESSAGE-INTEGRITY verifies
        // with our password.
        let repaired;
        let takes_over = is_stun && self.connected && self.egress.takes_over(now, source, data);
        let data = match is_stun
            .then(|| repair_binding_request(data, self.pwd.as_bytes(), self.tiebreaker, takes_over))
        {
            Some(Repair::Repaired(fixed)) => {
                repaired = fixed;
                &repaired[..]
            }
            Some(Repair::Rejected) => {
                out.dropped += 1;
                return false;
            }
            Some(Repair::NotNeeded) | None => data,
        };
        if let Some(hold) = &mut self.start_hold
            && hold.hold(now, source.proto, source.addr, destination, data)
        {
            self.release_held(now, out);
            return false;
        }
        let before = out.transmits.len();
        self.feed(now, source, destination, data, out);
        self.release_held(now, out);
        let authenticated = is_stun
            && out
                .transmits
                .get(before..)
                .is_some_and(|sent| sent.iter().any(|t| is_stun_to(t, source)));
        if authenticated {
            self.last_heard = now;
            if self.egress.on_authenticated(now, source, data) {
                out.path_moves += 1;
                if takes_over {
                    debug!(session = ?self.id, to = %source, "the old path fell silent; a check took it over");
                    out.path_takeovers += 1;
                }
            }
        }
        authenticated
    }

    /// Hands one datagram to str0m (and drains it).
    fn feed(
        &mut self,
        now: Instant,
        source: PeerAddr,
        destination: SocketAddr,
        data: &[u8],
        out: &mut Outputs,
    ) {
        let Ok(contents) = data.try_into() else {
            // Not STUN, DTLS, RTP or RTCP: nothing str0m can use.
            out.dropped += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: source.proto,
                source: source.addr,
                destination,
                contents,
            },
        );
        self.guarded(now, out, |rtc, _| rtc.handle_input(input));
    }

    /// Feeds the held packets whose hold ended by `now`, in order.
    fn release_held(&mut self, now: Instant, out: &mut Outputs) {
        let Some(hold) = &mut self.start_hold else {
            return;
        };
        if hold.deadline().is_none_or(|due| due > now) {
            return;
        }
        for held in hold.release(now) {
            let source = PeerAddr {
                proto: held.proto,
                addr: held.source,
            };
            self.feed(now, source, held.destination, &held.data, out);
        }
    }

    /// Advances timers: str0m's, keyframe throttles, liveness.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Outputs) {
        if self.closed.is_some() {
            return;
        }
        if !self.connected && now >= self.created + self.timeouts.connect {
            debug!(session = ?self.id, "never connected");
            return self.close(now, CloseReason::NeverConnected, out);
        }
        if self.connected && now >= self.last_heard + self.timeouts.ice {
            debug!(session = ?self.id, "silent for the ICE timeout");
            return self.close(now, CloseReason::Silent, out);
        }
        if let Side::Publisher(p) = &mut self.side {
            let due: Vec<(Mid, KeyframeRequestKind)> = p
                .keyframes
                .iter_mut()
                .filter_map(|(mid, t)| t.poll(now).map(|kind| (*mid, kind)))
                .collect();
            for (mid, kind) in due {
                self.send_keyframe_request(now, mid, kind, out);
            }
        }
        self.release_held(now, out);
        if now >= self.rtc_deadline {
            self.guarded(now, out, |rtc, now| rtc.handle_input(Input::Timeout(now)));
        }
    }

    /// A publisher: a subscriber asked for a keyframe on track `track`
    /// (merged and throttled per track).
    pub fn request_keyframe(
        &mut self,
        now: Instant,
        track: TrackId,
        kind: KeyframeRequestKind,
        out: &mut Outputs,
    ) {
        let Side::Publisher(p) = &mut self.side else {
            return;
        };
        let Some(mid) = p.media.tracks.iter().find(|t| t.id == track).map(|t| t.mid) else {
            return;
        };
        let due = p
            .keyframes
            .iter_mut()
            .find(|(m, _)| *m == mid)
            .and_then(|(_, t)| t.request(now, kind));
        if let Some(kind) = due {
            self.send_keyframe_request(now, mid, kind, out);
        }
    }

    fn send_keyframe_request(
        &mut self,
        now: Instant,
        mid: Mid,
        kind: KeyframeRequestKind,
        out: &mut Outputs,
    ) {
        let id = self.id;
        self.guarded(now, out, |rtc, _| {
            match rtc.direct_api().stream_rx_by_mid(mid, None) {
                Some(stream) => stream.request_keyframe(kind),
                None => debug!(session = ?id, %mid, "keyframe wanted before the publisher's first packet"),
            }
            Ok(())
        });
    }

    /// Sends what [`Peer::forward`] queued: one str0m timeout (which moves
    /// the queued packets out) and one drain.
    pub fn flush(&mut self, now: Instant, out: &mut Outputs) {
        if std::mem::take(&mut self.unflushed) {
            self.guarded(now, out, |rtc, now| rtc.handle_input(Input::Timeout(now)));
        }
    }

    /// Ends the session: str0m sends RTCP BYE and DTLS close_notify.
    pub fn close(&mut self, now: Instant, reason: CloseReason, out: &mut Outputs) {
        if self.closed.is_some() {
            return;
        }
        self.guarded(now, out, |rtc, _| rtc.close());
        self.closed.get_or_insert(reason);
    }

    /// Runs `call` on the `Rtc`, then drains `poll_output` to its timeout,
    /// all under `catch_unwind`. Errors and panics close the peer.
    pub(super) fn guarded(
        &mut self,
        now: Instant,
        out: &mut Outputs,
        call: impl FnOnce(&mut Rtc, Instant) -> Result<(), RtcError>,
    ) {
        if self.closed.is_some() {
            return;
        }
        // Only an enabled span is entered: a disabled one (the default info
        // level) cost ~200 instructions per call to clone and enter, and
        // this runs per viewer per loop turn.
        let span = (!self.span.is_disabled()).then(|| self.span.clone());
        let _entered = span.as_ref().map(tracing::Span::enter);
        let result = catch_unwind(AssertUnwindSafe(|| {
            call(&mut self.rtc, now)?;
            self.drain(now, out)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(session = ?self.id, error = %e, "str0m error");
                // Errors from one bad datagram are not fatal; a dead Rtc is.
                // A failed input can still change str0m's state and timers:
                // drain so the deadline we keep is str0m's current one.
                let drained = catch_unwind(AssertUnwindSafe(|| self.drain(now, out)));
                if !matches!(drained, Ok(Ok(()))) || !self.rtc.is_alive() {
                    self.closed.get_or_insert(CloseReason::Failed);
                }
            }
            Err(_) => {
                warn!(session = ?self.id, "str0m panicked; closing this peer");
                self.closed = Some(CloseReason::Panicked);
            }
        }
    }

    fn drain(&mut self, now: Instant, out: &mut Outputs) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => {
                    self.rtc_deadline = at;
                    return Ok(());
                }
                Output::Transmit(mut t) => {
                    self.egress.redirect(&mut t);
                    out.transmits.push(t);
                }
                Output::Event(event) => self.handle_event(now, event, out),
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event, out: &mut Outputs) {
        match event {
            Event::Connected => {
                debug!(session = ?self.id, role = ?self.role, "connected");
                self.connected = true;
                out.events.push(PeerEvent::Connected {
                    after: now.saturating_duration_since(self.created),
                });
                if let Side::Subscriber(s) = &self.side {
                    for o in s.outs.iter().filter(|o| o.kind == MediaKind::Video) {
                        out.events.push(PeerEvent::WantKeyframe {
                            feed: o.source.feed(),
                            kind: KeyframeRequestKind::Pli,
                        });
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                debug!(session = ?self.id, "ICE disconnected");
                self.closed.get_or_insert(CloseReason::Disconnected);
            }
            Event::Closed => {
                self.closed.get_or_insert(CloseReason::Disconnected);
            }
            Event::RtpPacket(packet) => self.handle_rtp(packet, out),
            Event::KeyframeRequest(request) => {
                if let Side::Subscriber(s) = &self.side
                    && let Some(o) = s.outs.iter().find(|o| o.mid == request.mid)
                {
                    out.events.push(PeerEvent::WantKeyframe {
                        feed: o.source.feed(),
                        kind: request.kind,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Reports a session's first media packet (at `at`) once: `seen` is its
/// peer's flag, `created` when the peer was made. (A function of fields,
/// not of the peer, so a caller holding a borrow of its side can call it.)
pub(super) fn note_media(seen: &mut bool, created: Instant, at: Instant, out: &mut Outputs) {
    if !*seen {
        *seen = true;
        out.events.push(PeerEvent::FirstMedia {
            after: at.saturating_duration_since(created),
        });
    }
}

/// Whether `t` is STUN (from an ICE-lite agent: a response) sent to `to`.
/// Other datagrams str0m happens to send there while it handles a request
/// (a DTLS retransmission, media) prove nothing.
fn is_stun_to(t: &Transmit, to: PeerAddr) -> bool {
    PeerAddr::of(t) == to && crate::wire::classify(&t.contents) == crate::wire::PacketClass::Stun
}
