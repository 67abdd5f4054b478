//! A conference publish transport renegotiated by its client: a new offer
//! on the same `Rtc` (`PATCH …/publish`) adds, keeps or drops tracks
//! without a new ICE/DTLS session. A section that keeps its mid, kind and
//! source keeps its [`PublishedTrack`] (and its id, so subscribers keep
//! receiving it untouched); a new one gets a fresh id; one that went
//! inactive or was removed is dropped. Codecs never change on a kept track:
//! str0m keeps an m-line's payload types.

use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::media::{MediaKind, Mid};

use super::{Outputs, Peer, Side};
use crate::sfu::keyframe::KeyframeThrottle;
use crate::sfu::offer::{assign_sources, check_sections, received_params};
use crate::sfu::room::{PublishedMedia, PublishedTrack};
use crate::sfu::{OfferError, Role, Source, TrackId, scrub};

impl Peer {
    /// Takes the client's new `offer` for this publish transport; returns
    /// the answer. `sources` names which mid carries what, as at creation;
    /// kept sections keep their source unless named otherwise. A source
    /// not in `allowed` (the token's grant) refuses the offer before str0m
    /// sees it.
    pub fn renegotiate_publish(
        &mut self,
        now: Instant,
        offer: &str,
        sources: &[(Source, String)],
        allowed: &[Source],
        out: &mut Outputs,
    ) -> Result<String, OfferError> {
        if self.closed.is_some() {
            return Err(OfferError::Unacceptable(
                "the publish transport is closed".into(),
            ));
        }
        let Side::Publisher(side) = &self.side else {
            return Err(OfferError::Unacceptable("not a publish transport".into()));
        };
        let old = side.media.clone();
        let sections = check_sections(Role::Publisher, offer, 2)?;
        let kept: Vec<(Mid, Source)> = old.tracks.iter().map(|t| (t.mid, t.source)).collect();
        let assigned = assign_sources(&sections, sources, &kept)?;
        if let Some((_, source)) = assigned.iter().find(|(_, s)| !allowed.contains(s)) {
            return Err(OfferError::NotAllowed(source.name().into()));
        }
        let parsed = SdpOffer::from_sdp_string(offer)
            .map_err(|e| OfferError::Malformed(scrub(&e.to_string())))?;
        let remote = parsed
            .session
            .ice_creds()
            .or_else(|| parsed.media_lines.iter().find_map(|m| m.ice_creds()));
        let mut answer = Err(OfferError::Unacceptable("str0m did not answer".into()));
        self.guarded(now, out, |rtc, _| {
            answer = rtc
                .sdp_api()
                .accept_offer(parsed)
                .map(|a| a.to_sdp_string())
                .map_err(|e| OfferError::Unacceptable(format!("cannot answer this offer: {e}")));
            Ok(())
        });
        let answer = answer?;
        if self.closed.is_some() {
            return Err(OfferError::Unacceptable(
                "the publish transport closed".into(),
            ));
        }
        if remote.is_some() && remote != self.remote_ice {
            // A new offer may restart ICE too; consent then checks the new
            // credentials, as after a PATCH restart.
            self.remote_ice = remote;
            self.remote_candidates = 0;
        }
        let Side::Publisher(side) = &mut self.side else {
            return Err(OfferError::Unacceptable("not a publish transport".into()));
        };
        let mut tracks = Vec::new();
        let mut added_rtx = Vec::new();
        for (mid, source) in assigned {
            let Some(params) = received_params(&self.rtc, mid) else {
                continue;
            };
            if let Some(same) = old
                .tracks
                .iter()
                .find(|t| t.mid == mid && t.source == source)
            {
                tracks.push(same.clone());
                continue;
            }
            if side.next_index == u8::MAX {
                return Err(OfferError::Unacceptable(
                    "this publish transport has added 255 tracks; publish on a new one".into(),
                ));
            }
            let id = TrackId::new(old.publisher, side.next_index);
            side.next_index += 1;
            added_rtx.extend(params.iter().filter_map(|p| p.resend()).map(|pt| *pt));
            tracks.push(Arc::new(PublishedTrack::new(id, mid, source, params)));
        }
        side.keyframes.retain(|(mid, _)| {
            tracks
                .iter()
                .any(|t| t.mid == *mid && t.kind == MediaKind::Video)
        });
        let keyframe_interval = side.keyframe_interval;
        for t in tracks.iter().filter(|t| t.kind == MediaKind::Video) {
            if side.keyframes.iter().all(|(mid, _)| *mid != t.mid) {
                side.keyframes
                    .push((t.mid, KeyframeThrottle::new(keyframe_interval)));
            }
        }
        // SSRCs map to indices of the track list: learned again.
        side.ssrcs.clear();
        side.media = Arc::new(PublishedMedia {
            publisher: old.publisher,
            tracks,
            voiced: old.voiced.clone(),
        });
        if let Some(hold) = &mut self.start_hold {
            hold.also_skip(added_rtx);
        }
        Ok(answer)
    }
}
