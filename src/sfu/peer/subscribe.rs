//! A conference participant's subscribe transport: the server offers, the
//! client answers. Signaling says which tracks the participant should
//! receive ([`Peer::desire`]); the peer turns the difference between that
//! and what it sends now into one offer (`add_media` for each new track,
//! `stop_media` for each dropped one), numbered by a revision. Only one
//! offer is ever outstanding: changes made meanwhile wait in the desired
//! set and become the next offer once the answer of this one is taken
//! ([`Peer::accept_subscribe_answer`]); an answer naming another revision is
//! refused as stale and changes nothing. Outgoing tracks are keyed by mid,
//! never by m-line index, and a stopped m-line is never reused.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};

use super::{Outputs, Peer, PeerEvent, Side, TrackOut};
use crate::sfu::recovery::allow_resends;
use crate::sfu::room::PublishedTrack;
use crate::sfu::router::FeedSource;
use crate::sfu::{Feed, TrackId};

/// An offer for the client's subscribe transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOffer {
    /// Increases by one with every offer of this transport; the answer
    /// must name it.
    pub revision: u32,
    pub sdp: String,
    /// Which track each sending mid carries once this offer is answered.
    pub mids: Vec<(String, TrackId)>,
}

/// Why an answer was not taken (the HTTP layer: 409, 400, 422, 404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is for revision {given}, but the outstanding offer is {current:?}")]
    Stale { given: u32, current: Option<u32> },
    #[error("malformed SDP answer: {0}")]
    Malformed(String),
    #[error("the answer cannot be applied: {0}")]
    Refused(String),
    #[error("the transport is closed")]
    Closed,
    #[error("this transport takes no answers")]
    NotSubscriber,
}

/// The negotiation state of one subscribe transport.
#[derive(Debug, Default)]
pub(crate) struct Negotiation {
    /// The last revision offered.
    revision: u32,
    /// What signaling wants this transport to send.
    desired: Vec<Arc<PublishedTrack>>,
    pending: Option<PendingChange>,
}

#[derive(Debug)]
struct PendingChange {
    revision: u32,
    offer: SdpPendingOffer,
    adds: Vec<(Mid, Arc<PublishedTrack>)>,
    stops: Vec<Mid>,
}

impl Negotiation {
    /// A transport whose first offer (revision 1, `offer`) adds `adds`.
    pub(crate) fn first(
        offer: SdpPendingOffer,
        adds: Vec<(Mid, Arc<PublishedTrack>)>,
        desired: Vec<Arc<PublishedTrack>>,
    ) -> Self {
        Self {
            revision: 1,
            desired,
            pending: Some(PendingChange {
                revision: 1,
                offer,
                adds,
                stops: Vec::new(),
            }),
        }
    }

    /// The revision of the outstanding offer, if one is.
    pub(crate) fn outstanding(&self) -> Option<u32> {
        self.pending.as_ref().map(|p| p.revision)
    }
}

/// The `a=msid` a track is offered under: its publisher's stream, so a
/// participant's microphone and camera play in sync.
pub(crate) fn msid(track: &PublishedTrack) -> (String, String) {
    let publisher = track.id.get() >> 8;
    (format!("p{publisher}"), format!("t{}", track.id.get()))
}

impl Peer {
    /// Signaling wants this subscribe transport to send exactly `tracks`.
    /// Returns the offer to send the client, unless one is outstanding (the
    /// change then waits for its answer) or nothing changes.
    pub fn desire(
        &mut self,
        now: Instant,
        tracks: Vec<Arc<PublishedTrack>>,
        out: &mut Outputs,
    ) -> Option<ServerOffer> {
        let Side::Subscriber(s) = &mut self.side else {
            return None;
        };
        s.negotiation.as_mut()?.desired = tracks;
        self.offer_changes(now, out)
    }

    /// The revision of this transport's outstanding offer, if any.
    pub fn outstanding_offer(&self) -> Option<u32> {
        match &self.side {
            Side::Subscriber(s) => s.negotiation.as_ref()?.outstanding(),
            Side::Publisher(_) => None,
        }
    }

    /// Takes the client's answer to offer `revision`. Returns the next
    /// offer if changes waited meanwhile.
    pub fn accept_subscribe_answer(
        &mut self,
        now: Instant,
        revision: u32,
        sdp: &str,
        out: &mut Outputs,
    ) -> Result<Option<ServerOffer>, AnswerError> {
        if self.closed.is_some() {
            return Err(AnswerError::Closed);
        }
        let Side::Subscriber(s) = &mut self.side else {
            return Err(AnswerError::NotSubscriber);
        };
        let Some(n) = s.negotiation.as_mut() else {
            return Err(AnswerError::NotSubscriber);
        };
        let current = n.outstanding();
        if current != Some(revision) {
            return Err(AnswerError::Stale {
                given: revision,
                current,
            });
        }
        let answer = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| AnswerError::Malformed(crate::sfu::scrub(&e.to_string())))?;
        let remote = answer
            .session
            .ice_creds()
            .or_else(|| answer.media_lines.iter().find_map(|m| m.ice_creds()));
        let Some(pending) = n.pending.take() else {
            return Err(AnswerError::Stale {
                given: revision,
                current: None,
            });
        };
        let mut result = Ok(());
        self.guarded(now, out, |rtc, _| {
            result = rtc
                .sdp_api()
                .accept_answer(pending.offer, answer)
                .map_err(|e| AnswerError::Refused(crate::sfu::scrub(&e.to_string())));
            Ok(())
        });
        // A refused answer drops the change: the next offer starts again
        // from what is sent now.
        result?;
        if self.closed.is_some() {
            return Err(AnswerError::Closed);
        }
        if remote.is_some() {
            self.remote_ice = remote;
        }
        if let Side::Subscriber(s) = &mut self.side {
            s.outs.retain(|o| !pending.stops.contains(&o.mid));
            for (mid, track) in &pending.adds {
                s.outs.push(TrackOut::new(
                    *mid,
                    track.kind,
                    FeedSource::Track(track.clone()),
                ));
            }
        }
        allow_resends(&mut self.rtc, pending.adds.iter().map(|(mid, _)| *mid));
        // A new video track decodes from its next keyframe: ask for one now
        // rather than wait for the publisher's next (or the client's PLI).
        if self.connected {
            for (_, track) in pending
                .adds
                .iter()
                .filter(|(_, t)| t.kind == MediaKind::Video)
            {
                out.events.push(PeerEvent::WantKeyframe {
                    feed: Feed::Track(track.id),
                    kind: KeyframeRequestKind::Pli,
                });
            }
        }
        Ok(self.offer_changes(now, out))
    }

    /// One offer for the difference between the desired tracks and the
    /// sent ones, if there is one and no offer is outstanding.
    fn offer_changes(&mut self, now: Instant, out: &mut Outputs) -> Option<ServerOffer> {
        if self.closed.is_some() {
            return None;
        }
        let Side::Subscriber(s) = &mut self.side else {
            return None;
        };
        let n = s.negotiation.as_mut()?;
        if n.pending.is_some() {
            return None;
        }
        let sends = |id: TrackId| {
            s.outs
                .iter()
                .any(|o| matches!(&o.source, FeedSource::Track(t) if t.id == id))
        };
        let adds: Vec<Arc<PublishedTrack>> =
            n.desired.iter().filter(|t| !sends(t.id)).cloned().collect();
        let stops: Vec<Mid> = s
            .outs
            .iter()
            .filter(|o| match &o.source {
                FeedSource::Track(t) => n.desired.iter().all(|d| d.id != t.id),
                FeedSource::Main(..) => false,
            })
            .map(|o| o.mid)
            .collect();
        if adds.is_empty() && stops.is_empty() {
            return None;
        }
        let rtc = &mut self.rtc;
        let made = catch_unwind(AssertUnwindSafe(|| {
            let mut api = rtc.sdp_api();
            let added: Vec<(Mid, Arc<PublishedTrack>)> = adds
                .into_iter()
                .map(|t| {
                    let (stream, track) = msid(&t);
                    let mid =
                        api.add_media(t.kind, Direction::SendOnly, Some(stream), Some(track), None);
                    (mid, t)
                })
                .collect();
            for mid in &stops {
                api.stop_media(*mid);
            }
            api.apply().map(|(offer, pending)| (offer, pending, added))
        }));
        let Ok(Some((offer, pending, added))) = made else {
            if made.is_err() {
                tracing::warn!(session = ?self.id, "str0m panicked making an offer; closing this peer");
                self.close(now, super::CloseReason::Panicked, out);
            }
            return None;
        };
        let Side::Subscriber(s) = &mut self.side else {
            return None;
        };
        let n = s.negotiation.as_mut()?;
        n.revision += 1;
        let revision = n.revision;
        let mut mids: Vec<(String, TrackId)> = s
            .outs
            .iter()
            .filter(|o| !stops.contains(&o.mid))
            .filter_map(|o| match &o.source {
                FeedSource::Track(t) => Some((o.mid.to_string(), t.id)),
                FeedSource::Main(..) => None,
            })
            .collect();
        mids.extend(added.iter().map(|(mid, t)| (mid.to_string(), t.id)));
        n.pending = Some(PendingChange {
            revision,
            offer: pending,
            adds: added,
            stops,
        });
        Some(ServerOffer {
            revision,
            sdp: offer.to_sdp_string(),
            mids,
        })
    }
}
