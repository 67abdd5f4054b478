//! The sans-IO core: peers (each wrapping one str0m `Rtc` in RTP mode), rooms,
//! the per-shard router, and the per-viewer rewriting that keeps a viewer's
//! streams continuous when its publisher changes.
//!
//! Nothing here touches a socket, a thread or the clock: every function that
//! needs time takes `now: Instant`, every datagram comes in as a slice and goes
//! out as a [`str0m::net::Transmit`] in [`Outputs`]. The shard drives it.

mod ids;
mod keyframe;
mod offer;
mod peer;
mod rewrite;
mod room;
pub mod room_limits {
    //! Limits fixed at compile time.
    pub use super::room::MAX_SHARDS;
}
mod router;
pub mod sdp;
pub mod sim;
#[cfg(test)]
mod tests;

pub use ids::{Role, SessionId, UFRAG_LEN, random_token};
pub use keyframe::KeyframeThrottle;
pub use offer::{OfferError, PeerSetup, accept_offer};
pub use peer::{CloseReason, Forwarded, Outputs, Peer, PeerEvent};
pub use rewrite::{Rewriter, Rewritten};
pub use room::{PublishedMedia, PublishedTrack, RoomShared};
pub use router::Router;
