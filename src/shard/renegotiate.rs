//! Conference renegotiations on a shard: a subscribe transport told what
//! to send (`Control::Desire`), its client's answer (`Control::Answer`), a
//! publish transport's new offer (`Control::Republish`). After each, the
//! router is brought in step with what the peer now receives or publishes;
//! offers a peer makes go to the directory as its participant's events.

use std::sync::Arc;
use std::time::Instant;

use super::engine::{Core, PeerKey};
use crate::sfu::{AnswerError, FeedSource, Outputs, Peer, PeerEvent, PublishedTrack, SessionId};

impl Core {
    /// Tells a local subscribe transport what to send; its offer, if it
    /// makes one, goes to the directory as its participant's event.
    pub(super) fn desire(
        &mut self,
        key: PeerKey,
        now: Instant,
        id: SessionId,
        tracks: Vec<Arc<PublishedTrack>>,
    ) {
        let mut offer = None;
        self.renegotiate(key, now, |peer, out| offer = peer.desire(now, tracks, out));
        if let Some(offer) = offer {
            self.directory.post_offer(id, &offer);
        }
    }

    /// A `Desire` for a transport not (or no longer) here: its participant
    /// is marked for a resync again, which reaches it wherever it is now.
    pub(super) fn desire_elsewhere(&self, id: SessionId) {
        self.directory.mark_dirty(id);
    }

    /// Gives a local subscribe transport its client's answer.
    pub(super) fn answer(
        &mut self,
        key: PeerKey,
        now: Instant,
        id: SessionId,
        revision: u32,
        sdp: &str,
    ) -> Result<(), AnswerError> {
        let mut result = Err(AnswerError::Closed);
        self.renegotiate(key, now, |peer, out| {
            result = peer.accept_subscribe_answer(now, revision, sdp, out)
        });
        let next = result?;
        if let Some(offer) = next {
            self.directory.post_offer(id, &offer);
        }
        Ok(())
    }

    /// Gives a local publish transport its client's new offer; the router
    /// publishes what it added and forgets what it dropped.
    pub(super) fn republish(
        &mut self,
        key: PeerKey,
        now: Instant,
        offer: &str,
        sources: &[(crate::sfu::Source, String)],
        allowed: &[crate::sfu::Source],
    ) -> Result<(String, Arc<crate::sfu::PublishedMedia>), crate::sfu::OfferError> {
        let before: Vec<Arc<PublishedTrack>> = match self.slot_mut(key) {
            Some(slot) => slot.peer.published_tracks().to_vec(),
            None => {
                return Err(crate::sfu::OfferError::Unacceptable(
                    "the transport is gone".into(),
                ));
            }
        };
        let mut result = Err(crate::sfu::OfferError::Unacceptable(
            "the transport is gone".into(),
        ));
        self.call(key, now, |peer, out| {
            result = peer.renegotiate_publish(now, offer, sources, allowed, out)
        });
        let Some(slot) = self.slot_mut(key) else {
            for track in &before {
                self.router.unpublish(track.id, key);
            }
            return Err(crate::sfu::OfferError::Unacceptable(
                "the transport closed".into(),
            ));
        };
        let media = slot.peer.published_media().cloned();
        let after: Vec<Arc<PublishedTrack>> = slot.peer.published_tracks().to_vec();
        for gone in before.iter().filter(|b| after.iter().all(|a| a.id != b.id)) {
            self.router.unpublish(gone.id, key);
        }
        for new in after.iter().filter(|a| before.iter().all(|b| b.id != a.id)) {
            self.router.publish(new, key);
        }
        let answer = result?;
        let media =
            media.ok_or_else(|| crate::sfu::OfferError::Unacceptable("not a publisher".into()))?;
        Ok((answer, media))
    }

    /// Runs `f` on a peer, then brings the router in step with the feeds
    /// it receives afterwards.
    pub(super) fn renegotiate(
        &mut self,
        key: PeerKey,
        now: Instant,
        f: impl FnOnce(&mut Peer, &mut Outputs),
    ) {
        let before: Vec<FeedSource> = match self.slot_mut(key) {
            Some(slot) => slot.peer.feeds().cloned().collect(),
            None => return,
        };
        // Keyframe wishes for new tracks wait until the router knows them.
        let mut wishes = Vec::new();
        self.call(key, now, |peer, out| {
            let start = out.events.len();
            f(peer, out);
            let mut i = start;
            while i < out.events.len() {
                if let PeerEvent::WantKeyframe { feed, kind } = out.events[i] {
                    wishes.push((feed, kind));
                    out.events.remove(i);
                } else {
                    i += 1;
                }
            }
        });
        let Some(slot) = self.slot_mut(key) else {
            // It closed: `remove` unsubscribed the feeds it had at the end;
            // these are the ones the router still held for it.
            for feed in before {
                self.router.unsubscribe(feed.feed(), key);
            }
            return;
        };
        let after: Vec<FeedSource> = slot.peer.feeds().cloned().collect();
        for gone in before
            .iter()
            .filter(|b| after.iter().all(|a| a.feed() != b.feed()))
        {
            self.router.unsubscribe(gone.feed(), key);
        }
        for new in after
            .iter()
            .filter(|a| before.iter().all(|b| b.feed() != a.feed()))
        {
            self.router.subscribe(new, key);
        }
        for (feed, kind) in wishes {
            self.want_keyframe(now, feed, kind);
        }
    }
}
