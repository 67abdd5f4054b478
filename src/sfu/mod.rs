//! The sans-IO core: peers (each wrapping one str0m `Rtc` in RTP mode), rooms,
//! the per-shard router, and the per-viewer rewriting that keeps a viewer's
//! streams continuous when its publisher changes.
//!
//! Nothing here touches a socket, a thread or the clock: every function that
//! needs time takes `now: Instant`, every datagram comes in as a slice and goes
//! out as a [`str0m::net::Transmit`] in [`Outputs`]. The shard drives it. Its
//! randomness (session ids, ICE credentials and tiebreakers) comes from the
//! caller's [`IdRng`] in [`PeerSetup`].

mod bitrate;
mod codecs;
#[cfg(test)]
mod conference_tests;
mod egress;
#[cfg(test)]
mod ice_tests;
mod ids;
mod keyframe;
mod offer;
mod peer;
pub use uringcast_proto::recovery;
#[cfg(test)]
mod reorder_tests;
mod rewrite;
mod room;
pub mod room_limits {
    //! Limits fixed at compile time.
    pub use super::room::{MAX_SHARDS, VOICE_LEVEL};
}
mod router;
pub mod sdp;
pub mod sim;
use uringcast_proto::stun_repair;
#[cfg(test)]
mod subscribe_tests;
#[cfg(test)]
mod tests;
mod trickle;

pub use bitrate::BitrateLimit;
pub use codecs::{CodecList, CodecListError};
pub use ids::{Feed, IdRng, PeerAddr, Role, SessionId, Source, TrackId, UFRAG_LEN};
pub use keyframe::KeyframeThrottle;
pub use offer::{
    OfferError, PeerSetup, accept_offer, accept_publish, accept_watch_tracks, new_subscriber, scrub,
};
pub use peer::{AnswerError, CloseReason, Forwarded, Outputs, Peer, PeerEvent, ServerOffer};
pub use rewrite::{Rewriter, Rewritten};
pub use room::{Audience, PublishedMedia, PublishedTrack, RoomShared};
pub use router::{FeedSource, Router};
pub use stun_repair::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, Repair,
    hmac_sha1, rebuild_binding_request, repair_binding_request,
};
pub use trickle::{IcePatch, IfMatch, MAX_REMOTE_CANDIDATES, PatchError, PatchOutcome};
