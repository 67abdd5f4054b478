//! What travels between threads. Shard to shard, on two lanes per
//! destination shard:
//!
//! - the **media lane** ([`ShardMedia`]: a publisher's packets, hand-off
//!   datagrams), bounded by `--shard-queue`. When it is full the message is
//!   dropped and counted (`drop_queue_full`): a lost packet or hand-off is
//!   what the network does anyway, and blocking a loop would be worse.
//! - the **control lane** ([`ShardControl`]: routes, unroutes, keyframe
//!   requests; future room control goes here too), unbounded, so a full
//!   media lane never costs a control message. Losing one is a bug, not
//!   loss: a stale route, a viewer frozen until its next PLI, a participant
//!   unknown on a shard. No capacity makes that right, it only makes it
//!   rare. Its volume is bounded by what causes it: each message comes from
//!   one thing the sending shard handled (a handed-in STUN that
//!   authenticated → `Route`; a handed-in datagram from an address no peer
//!   has → `Unroute`; a viewer's PLI/FIR, connection or video gap →
//!   `Keyframe`) or from a forgotten address (at most 4 per peer,
//!   `MAX_PEER_ADDRS`, when it ends). Making one costs the sender a
//!   datagram's work (SRTP, str0m); handling one costs the receiver a map
//!   operation or a throttle check, and the receiver handles its control
//!   lane first every turn. So the lane holds about one turn's worth, and
//!   an idle lane costs one `try_recv` per turn. A send fails only when the
//!   receiving shard has stopped (at shutdown): counted in `control_lost`,
//!   which otherwise stays 0.
//!
//! Signaling to shard: [`Control`] commands on their own bounded queue,
//! refused when full (signaling answers "busy" or lets the timeout reap).

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use str0m::media::KeyframeRequestKind;

use super::stats::ShardStats;
use crate::net::{RecvMeta, Waker};
use crate::sfu::{
    AnswerError, Forwarded, IcePatch, OfferError, PatchError, PatchOutcome, PeerAddr,
    PublishedMedia, PublishedTrack, SessionId, Source, TrackId,
};

/// Shard to shard, media lane: may be dropped (and counted) when full.
#[derive(Debug)]
pub enum ShardMedia {
    /// One packet of a publisher on the sending shard, for this shard's viewers.
    Media(Arc<Forwarded>),
    /// A datagram that arrived on the sending shard for a peer that lives here.
    Datagram {
        meta: RecvMeta,
        data: Box<[u8]>,
        from: usize,
    },
    /// A frame of an ICE-TCP connection (`meta.proto` is TCP), from the
    /// ICE-TCP thread: taken as if this shard's socket had received it.
    Tcp { meta: RecvMeta, data: Box<[u8]> },
}

/// Shard to shard, control lane: never dropped while the receiver runs.
#[derive(Debug)]
pub enum ShardControl {
    /// A subscriber on the sending shard wants a keyframe of a track this
    /// shard's publisher sends.
    Keyframe {
        track: TrackId,
        kind: KeyframeRequestKind,
    },
    /// Datagrams from `addr` belong to a peer on shard `owner` (authenticated
    /// there); the receiving shard routes them straight to it.
    Route { addr: PeerAddr, owner: usize },
    /// Forget the route for `addr` to shard `owner` (its peer is gone).
    Unroute { addr: PeerAddr, owner: usize },
}

/// Signaling to shard.
#[derive(Debug)]
pub enum Control {
    /// DELETE on a session placed on this shard.
    Close(SessionId),
    /// Close every session and stop the loop.
    Shutdown,
    /// A WHIP/WHEP `PATCH` (trickle or ICE restart) for a session placed on
    /// this shard; the result goes back on `reply`.
    Patch {
        id: SessionId,
        patch: Box<IcePatch>,
        reply: tokio::sync::oneshot::Sender<PatchReply>,
    },
    /// A conference subscribe transport placed here must send exactly
    /// `tracks`; an offer it makes goes to the directory as an event.
    Desire {
        id: SessionId,
        tracks: Vec<Arc<PublishedTrack>>,
    },
    /// A conference publish transport's new offer (`PATCH …/publish`);
    /// the answer and the media it now publishes go back on `reply`.
    Republish {
        id: SessionId,
        offer: String,
        sources: Vec<(Source, String)>,
        allowed: Vec<Source>,
        reply: tokio::sync::oneshot::Sender<RepublishReply>,
    },
    /// The client's answer to a subscribe transport's offer `revision`;
    /// a next offer goes to the directory as an event.
    Answer {
        id: SessionId,
        revision: u32,
        sdp: String,
        reply: tokio::sync::oneshot::Sender<AnswerReply>,
    },
}

/// A shard's answer to [`Control::Answer`].
#[derive(Debug)]
pub enum AnswerReply {
    /// The transport took the answer, or refused it.
    Applied(Result<(), AnswerError>),
    /// The session is not (or no longer) on this shard.
    NotHere,
}

/// A shard's answer to [`Control::Republish`].
#[derive(Debug)]
pub enum RepublishReply {
    /// The answer and what the transport publishes now, or why not.
    Applied(Result<(String, Arc<PublishedMedia>), OfferError>),
    /// The session is not (or no longer) on this shard.
    NotHere,
}

/// A shard's answer to [`Control::Patch`].
#[derive(Debug)]
pub enum PatchReply {
    /// The peer took the patch, or refused it.
    Applied(Result<PatchOutcome, PatchError>),
    /// The session is not (or no longer) on this shard.
    NotHere,
}

/// What other threads hold to reach one shard.
#[derive(Debug, Clone)]
pub struct ShardHandle {
    /// Its media lane (bounded by `--shard-queue`).
    pub media: Sender<ShardMedia>,
    /// Its control lane from other shards (unbounded).
    pub control: Sender<ShardControl>,
    /// Its commands from signaling (bounded).
    pub commands: Sender<Control>,
    pub waker: Waker,
    pub stats: Arc<ShardStats>,
}

impl ShardHandle {
    /// Queues `msg` on the media lane without blocking; `false` when the
    /// lane is full or the shard has stopped (the caller counts it).
    pub fn try_send(&self, msg: ShardMedia) -> bool {
        match self.media.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues `msg` on the control lane; never full. `Err` gives it back
    /// only if the shard has stopped.
    pub fn send_control(&self, msg: ShardControl) -> Result<(), ShardControl> {
        self.control.send(msg).map_err(|e| e.into_inner())
    }

    /// Sends a command and wakes the shard; `false` if the shard is gone or
    /// its command queue is full.
    pub fn command(&self, control: Control) -> bool {
        let sent = self.commands.try_send(control).is_ok();
        if sent {
            self.waker.wake();
        }
        sent
    }
}

/// The receiving ends a shard owns.
#[derive(Debug)]
pub struct ShardInbox {
    pub media: Receiver<ShardMedia>,
    pub control: Receiver<ShardControl>,
    pub commands: Receiver<Control>,
}

/// Commands a shard can have queued before signaling gets "busy".
const COMMAND_QUEUE: usize = 1024;

/// Builds the handle and inbox of one shard; its media lane holds
/// `media_capacity` messages.
pub fn channel(media_capacity: usize, waker: Waker) -> (ShardHandle, ShardInbox) {
    let (media_tx, media_rx) = bounded(media_capacity);
    let (control_tx, control_rx) = unbounded();
    let (commands_tx, commands_rx) = bounded(COMMAND_QUEUE);
    (
        ShardHandle {
            media: media_tx,
            control: control_tx,
            commands: commands_tx,
            waker,
            stats: Arc::new(ShardStats::default()),
        },
        ShardInbox {
            media: media_rx,
            control: control_rx,
            commands: commands_rx,
        },
    )
}
