//! From an SDP offer to a [`Peer`] and its answer: validate the offer against
//! the WHIP/WHEP rules for the role, build the `Rtc` (RTP mode, ICE-lite,
//! credentials from the setup's [`IdRng`], our host candidates), let str0m
//! negotiate, and check that what was negotiated can be served — else a 422
//! naming why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::TcpType;
use str0m::{Candidate, IceCreds, Rtc};

use super::keyframe::KeyframeThrottle;
use super::peer::{
    Negotiation, PublisherSide, ServerOffer, Side, SubscriberSide, Timeouts, TrackOut, can_receive,
    msid,
};
use super::room::{PublishedMedia, PublishedTrack, RoomShared};
use super::router::FeedSource;
use super::sdp::{self, SectionDirection, SectionKind};
use super::{CodecList, IdRng, Peer, Role, Source, TrackId};

/// What every new peer is built with.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// Our host candidates: the media address and any public IPs on its port.
    pub candidates: Vec<SocketAddr>,
    pub connect_timeout: Duration,
    pub ice_timeout: Duration,
    pub keyframe_interval: Duration,
    /// `--max-bitrate-in`: most bits/s a publisher may send (0: no limit).
    pub max_bitrate_in: u64,
    /// `--max-bitrate-out`: most bits/s sent to one viewer (0: no limit).
    pub max_bitrate_out: u64,
    /// The DTLS certificate every session presents: one per server, as
    /// Janus and mediasoup do (making one per session made answering an
    /// offer ~16 % slower: 1.49 against 1.26 ms). Each session's SRTP keys
    /// still come from its own ECDHE handshake. `None`: str0m makes one
    /// per session.
    pub dtls_cert: Option<DtlsCert>,
    /// The crypto every `Rtc` is built with: the server passes
    /// `crate::dtls::crypto_provider()` (DTLS on OpenSSL, so RSA peers
    /// connect; SRTP on aws-lc-rs). The core only hands it to str0m.
    pub crypto: Arc<CryptoProvider>,
    /// Where session ids, ICE credentials (also an ICE restart's) and ICE
    /// tiebreakers come from: [`IdRng::os`] in the server; a seeded one in
    /// `sim` so that a test replays a run. Every peer keeps a clone.
    pub rng: IdRng,
    /// The codecs sessions may negotiate (`--audio-codecs`, `--video-codecs`).
    pub codecs: CodecList,
    /// Also offer ICE-TCP (RFC 6544): a passive TCP host candidate on the
    /// media port beside each UDP one (`--ice-tcp`).
    pub ice_tcp: bool,
}

impl PeerSetup {
    /// Our ICE candidates, as every answer, offer and ICE restart gives
    /// them: a UDP host candidate per address, then (with ICE-TCP) a
    /// passive TCP one per address. UDP first: adding TCP leaves the UDP
    /// candidates' priorities as they were, and TCP's are lower.
    pub fn local_candidates(&self) -> Result<Vec<Candidate>, OfferError> {
        let mut out = Vec::with_capacity(self.candidates.len() * 2);
        for addr in &self.candidates {
            let candidate = Candidate::host(*addr, "udp")
                .map_err(|e| OfferError::Unacceptable(format!("server candidate {addr}: {e}")))?;
            out.push(candidate);
        }
        if self.ice_tcp {
            for addr in &self.candidates {
                let candidate = Candidate::builder()
                    .tcp()
                    .host(*addr)
                    .tcptype(TcpType::Passive)
                    .build()
                    .map_err(|e| {
                        OfferError::Unacceptable(format!("server TCP candidate {addr}: {e}"))
                    })?;
                out.push(candidate);
            }
        }
        Ok(out)
    }
}

/// Why an offer was refused; the HTTP layer maps these to 400 and 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The text is not an SDP offer we can parse (400).
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// A well-formed offer this server cannot serve (422).
    #[error("{0}")]
    Unacceptable(String),
    /// A source the participant's token does not grant (403).
    #[error("the token does not allow to publish {0}")]
    NotAllowed(String),
}

/// Builds a peer for `role` in room `room` from `offer`. A viewer's offer is
/// checked against `publisher` (the room's current publisher media), which it
/// must be able to receive; its tracks are fed by the room's main feeds. A
/// publisher's session gets `generation` as its publisher number (never 0),
/// its tracks' ids derive from it. The peer's room is a detached placeholder
/// until the directory attaches the real one ([`Peer::set_room`]).
pub fn accept_offer(
    role: Role,
    offer: &str,
    setup: &PeerSetup,
    room: &str,
    publisher: Option<&PublishedMedia>,
    generation: u64,
    now: Instant,
) -> Result<(Peer, String), OfferError> {
    let publishing = match role {
        Role::Publisher => Publishing::Whip { generation },
        Role::Viewer => Publishing::Watch { by_track: false },
    };
    accept(role, offer, setup, room, publisher, publishing, now)
}

/// A WHEP viewer of one participant: fed by `media`'s tracks themselves
/// rather than the room's main feed (`POST /whep/{room}?participant=…`).
pub fn accept_watch_tracks(
    offer: &str,
    setup: &PeerSetup,
    room: &str,
    media: &PublishedMedia,
    now: Instant,
) -> Result<(Peer, String), OfferError> {
    let watching = Publishing::Watch { by_track: true };
    accept(Role::Viewer, offer, setup, room, Some(media), watching, now)
}

/// Builds a conference participant's publish transport from its `offer`:
/// up to one audio (the microphone) and two video sections (camera and
/// screen). `sources` names which mid carries which source; a section it
/// does not name is the microphone (audio), else the camera, else the
/// screen (video). Tracks' ids derive from `publisher` (never 0).
pub fn accept_publish(
    offer: &str,
    setup: &PeerSetup,
    room: &str,
    publisher: u64,
    sources: &[(Source, String)],
    now: Instant,
) -> Result<(Peer, String), OfferError> {
    let publishing = Publishing::Conference {
        generation: publisher,
        sources,
    };
    accept(Role::Publisher, offer, setup, room, None, publishing, now)
}

/// Builds a conference participant's subscribe transport and its first
/// offer (revision 1): a data channel m-line, so that it connects with
/// nothing to receive, and one sendonly m-line for each of `tracks`.
pub fn new_subscriber(
    setup: &PeerSetup,
    room: &str,
    tracks: Vec<Arc<PublishedTrack>>,
    now: Instant,
) -> Result<(Peer, ServerOffer), OfferError> {
    let (mut rtc, local_ice) = new_rtc(setup, now)?;
    let mut api = rtc.sdp_api();
    api.add_channel("uringcast".into());
    let adds: Vec<(Mid, Arc<PublishedTrack>)> = tracks
        .iter()
        .map(|t| {
            let (stream, track) = msid(t);
            let mid = api.add_media(t.kind, Direction::SendOnly, Some(stream), Some(track), None);
            (mid, t.clone())
        })
        .collect();
    let (offer, pending) = api
        .apply()
        .ok_or_else(|| OfferError::Unacceptable("str0m made no offer".into()))?;
    let first = ServerOffer {
        revision: 1,
        sdp: offer.to_sdp_string(),
        mids: adds.iter().map(|(m, t)| (m.to_string(), t.id)).collect(),
    };
    let side = Side::Subscriber(SubscriberSide {
        outs: Vec::new(),
        negotiation: Some(Negotiation::first(pending, adds, tracks)),
    });
    let timeouts = Timeouts {
        connect: setup.connect_timeout,
        ice: setup.ice_timeout,
    };
    let placeholder = Arc::new(RoomShared::new(0, room.to_owned()));
    let mut peer = Peer::new(
        setup.rng.session_id(),
        Role::Viewer,
        placeholder,
        local_ice,
        None,
        rtc,
        side,
        timeouts,
        setup.rng.clone(),
        now,
    );
    peer.limit_bitrate(setup.max_bitrate_in, setup.max_bitrate_out);
    Ok((peer, first))
}

/// What a publisher's offer is for.
enum Publishing<'a> {
    /// A viewer, fed by the room's main feed or (`by_track`) by the
    /// given media's tracks.
    Watch { by_track: bool },
    /// WHIP: one audio and one video section.
    Whip { generation: u64 },
    /// A conference participant: microphone, camera and screen.
    Conference {
        generation: u64,
        sources: &'a [(Source, String)],
    },
}

fn accept(
    role: Role,
    offer: &str,
    setup: &PeerSetup,
    room: &str,
    publisher: Option<&PublishedMedia>,
    publishing: Publishing<'_>,
    now: Instant,
) -> Result<(Peer, String), OfferError> {
    let max_video = match publishing {
        Publishing::Conference { .. } => 2,
        _ => 1,
    };
    let media_sections = check_sections(role, offer, max_video)?;
    let parsed = SdpOffer::from_sdp_string(offer)
        .map_err(|e| OfferError::Malformed(scrub(&e.to_string())))?;

    // The client's credentials, before str0m takes the offer (a PATCH that
    // names others is an ICE restart).
    let remote_ice = parsed
        .session
        .ice_creds()
        .or_else(|| parsed.media_lines.iter().find_map(|m| m.ice_creds()));
    let (mut rtc, local_ice) = new_rtc(setup, now)?;
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| OfferError::Unacceptable(format!("cannot answer this offer: {e}")))?;

    let placeholder = Arc::new(RoomShared::new(0, room.to_owned()));
    let side = match publishing {
        Publishing::Whip { generation } => {
            let sections = assign_sources(&media_sections, &[], &[])?;
            publisher_side(&rtc, &sections, generation, setup)?
        }
        Publishing::Conference {
            generation,
            sources,
        } => {
            let sections = assign_sources(&media_sections, sources, &[])?;
            publisher_side(&rtc, &sections, generation, setup)?
        }
        Publishing::Watch { by_track } => {
            let publisher = publisher
                .ok_or_else(|| OfferError::Unacceptable("the room has no publisher".into()))?;
            viewer_side(&rtc, &media_sections, publisher, &placeholder, by_track)?
        }
    };
    let timeouts = Timeouts {
        connect: setup.connect_timeout,
        ice: setup.ice_timeout,
    };
    let mut peer = Peer::new(
        setup.rng.session_id(),
        role,
        placeholder,
        local_ice,
        remote_ice,
        rtc,
        side,
        timeouts,
        setup.rng.clone(),
        now,
    );
    peer.limit_bitrate(setup.max_bitrate_in, setup.max_bitrate_out);
    Ok((peer, answer.to_sdp_string()))
}

/// Checks directions and track counts; returns the (mid, kind) of every
/// audio/video section that is in use.
/// A fresh `Rtc` in RTP mode, ICE-lite, with our candidates and new ICE
/// credentials from the setup's source.
pub(super) fn new_rtc(setup: &PeerSetup, now: Instant) -> Result<(Rtc, IceCreds), OfferError> {
    let local_ice = IceCreds {
        ufrag: setup.rng.token(super::UFRAG_LEN),
        pass: setup.rng.token(32),
    };
    let mut config = setup
        .codecs
        .apply(Rtc::builder())
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .set_local_ice_credentials(local_ice.clone())
        .set_crypto_provider(setup.crypto.clone());
    if let Some(cert) = &setup.dtls_cert {
        config = config.set_dtls_cert(cert.clone());
    }
    let mut rtc = config.build(now);
    for candidate in setup.local_candidates()? {
        rtc.add_local_candidate(candidate);
    }
    Ok((rtc, local_ice))
}

/// Which source each section carries: as `named` says (source → mid),
/// else audio is the microphone and video the camera, then the screen.
pub(super) fn assign_sources(
    sections: &[(Mid, MediaKind)],
    named: &[(Source, String)],
    kept: &[(Mid, Source)],
) -> Result<Vec<(Mid, Source)>, OfferError> {
    let mut out: Vec<(Mid, Source)> = Vec::new();
    for (source, mid) in named {
        let Some((_, kind)) = sections.iter().find(|(m, _)| m.to_string() == *mid) else {
            return Err(OfferError::Unacceptable(format!(
                "{} names mid {mid:?}, which the offer does not send",
                source.name()
            )));
        };
        if *kind != source.kind() {
            return Err(OfferError::Unacceptable(format!(
                "{} names mid {mid:?}, a {kind:?} section",
                source.name()
            )));
        }
        if out
            .iter()
            .any(|(m, s)| s == source || m.to_string() == *mid)
        {
            return Err(OfferError::Unacceptable(format!(
                "{} or mid {mid:?} named twice",
                source.name()
            )));
        }
        out.push((Mid::from(mid.as_str()), *source));
    }
    // A section that kept its mid keeps its source (a renegotiation).
    for (mid, source) in kept {
        let present = sections
            .iter()
            .any(|(m, k)| m == mid && *k == source.kind());
        if present && out.iter().all(|(m, s)| m != mid && s != source) {
            out.push((*mid, *source));
        }
    }
    for (mid, kind) in sections {
        if out.iter().any(|(m, _)| m == mid) {
            continue;
        }
        let free = Source::ALL
            .into_iter()
            .find(|s| s.kind() == *kind && out.iter().all(|(_, used)| used != s));
        match free {
            Some(source) => out.push((*mid, source)),
            None => {
                return Err(OfferError::Unacceptable(format!(
                    "mid {mid} is one {kind:?} section too many"
                )));
            }
        }
    }
    Ok(out)
}

pub(super) fn check_sections(
    role: Role,
    offer: &str,
    max_video: usize,
) -> Result<Vec<(Mid, MediaKind)>, OfferError> {
    let sections = sdp::scan(offer).map_err(|e| OfferError::Malformed(e.to_string()))?;
    let mut media = Vec::new();
    for section in sections.iter().filter(|s| !s.port_zero || s.bundle_only) {
        let kind = match section.kind {
            SectionKind::Audio => MediaKind::Audio,
            SectionKind::Video => MediaKind::Video,
            _ => continue,
        };
        let mid = section.mid.as_deref().ok_or_else(|| {
            OfferError::Malformed("a media section has no a=mid (BUNDLE needs one)".into())
        })?;
        let allowed = match role {
            Role::Publisher => matches!(
                section.direction,
                SectionDirection::SendOnly | SectionDirection::SendRecv
            ),
            Role::Viewer => matches!(
                section.direction,
                SectionDirection::RecvOnly | SectionDirection::SendRecv
            ),
        };
        if !allowed {
            let want = match role {
                Role::Publisher => "sendonly (WHIP publishes)",
                Role::Viewer => "recvonly (WHEP watches)",
            };
            return Err(OfferError::Unacceptable(format!(
                "media section mid {mid} is {:?}; it must be {want}",
                section.direction
            )));
        }
        if section.simulcast {
            return Err(OfferError::Unacceptable(format!(
                "media section mid {mid} offers simulcast (a=simulcast/a=rid), which this server does not forward yet; publish one layer"
            )));
        }
        let most = if kind == MediaKind::Video {
            max_video
        } else {
            1
        };
        if media.iter().filter(|(_, k)| *k == kind).count() >= most {
            return Err(OfferError::Unacceptable(if max_video == 1 {
                format!(
                    "more than one {kind:?} track; a session carries at most one audio and one video track"
                )
            } else {
                format!(
                    "more than {most} {kind:?} tracks; a participant publishes at most a microphone, a camera and a screen"
                )
            }));
        }
        media.push((Mid::from(mid), kind));
    }
    if media.is_empty() {
        return Err(OfferError::Unacceptable(
            "the offer has no audio or video section".into(),
        ));
    }
    Ok(media)
}

fn publisher_side(
    rtc: &Rtc,
    sections: &[(Mid, Source)],
    generation: u64,
    setup: &PeerSetup,
) -> Result<Side, OfferError> {
    let mut tracks = Vec::new();
    for (mid, source) in sections {
        let Some(params) = received_params(rtc, *mid) else {
            continue;
        };
        let index = u8::try_from(tracks.len()).unwrap_or(u8::MAX);
        tracks.push(Arc::new(PublishedTrack::new(
            TrackId::new(generation, index),
            *mid,
            *source,
            params,
        )));
    }
    if tracks.is_empty() {
        return Err(OfferError::Unacceptable(format!(
            "no codec in common: this server forwards {}",
            setup.codecs.describe()
        )));
    }
    let keyframes = tracks
        .iter()
        .filter(|t| t.kind == MediaKind::Video)
        .map(|t| (t.mid, KeyframeThrottle::new(setup.keyframe_interval)))
        .collect();
    let next_index = u8::try_from(tracks.len()).unwrap_or(u8::MAX);
    Ok(Side::Publisher(PublisherSide {
        media: Arc::new(PublishedMedia::new(generation, tracks)),
        ssrcs: Vec::new(),
        keyframes,
        next_index,
        keyframe_interval: setup.keyframe_interval,
    }))
}

/// The payload types negotiated on `mid` if the client sends on it (the
/// section is `recvonly` on our side) and shares a codec with us.
pub(super) fn received_params(rtc: &Rtc, mid: Mid) -> Option<Vec<PayloadParams>> {
    let media = rtc.media(mid)?;
    if media.direction() != Direction::RecvOnly {
        return None;
    }
    let params: Vec<_> = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| media.remote_pts().contains(&p.pt()))
        .copied()
        .collect();
    (!params.is_empty()).then_some(params)
}

fn viewer_side(
    rtc: &Rtc,
    sections: &[(Mid, MediaKind)],
    publisher: &PublishedMedia,
    room: &Arc<RoomShared>,
    by_track: bool,
) -> Result<Side, OfferError> {
    let mut tracks = Vec::new();
    let mut missing = Vec::new();
    for published in &publisher.tracks {
        // A viewer that did not offer a kind at all does not want it.
        let Some((mid, kind)) = sections.iter().find(|(_, kind)| *kind == published.kind) else {
            continue;
        };
        let usable = rtc
            .media(*mid)
            .filter(|media| media.direction() == Direction::SendOnly)
            .and_then(|_| {
                let source = if by_track {
                    FeedSource::Track(published.clone())
                } else {
                    FeedSource::Main(room.clone(), *kind)
                };
                let mut track = TrackOut::new(*mid, *kind, source);
                can_receive(rtc, &mut track, published).then_some(track)
            });
        match usable {
            Some(track) => tracks.push(track),
            None => missing.push(format!(
                "{:?} ({})",
                published.kind,
                published.codec_names()
            )),
        }
    }
    if !missing.is_empty() || tracks.is_empty() {
        let what = if missing.is_empty() {
            format!(
                "{:?}",
                publisher.tracks.iter().map(|t| t.kind).collect::<Vec<_>>()
            )
        } else {
            missing.join("; ")
        };
        return Err(OfferError::Unacceptable(format!(
            "this offer cannot receive the publisher's media: {what}"
        )));
    }
    Ok(Side::Subscriber(SubscriberSide {
        outs: tracks,
        negotiation: None,
    }))
}

/// A parser's error text without what must not reach a client: str0m's SDP
/// parser names memory addresses (`PointerOffset(0x7f…)`), which would leak
/// the server's address-space layout.
pub fn scrub(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(at) = rest.find("PointerOffset(") {
        out.push_str(&rest[..at]);
        out.push_str("offset");
        rest = match rest[at..].find(')') {
            Some(end) => &rest[at + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}
