//! What travels between threads: media and feedback between shards (bounded,
//! dropped and counted when full), and commands from signaling to shards.

use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use str0m::media::KeyframeRequestKind;

use super::stats::ShardStats;
use crate::net::{RecvMeta, Waker};
use crate::sfu::{Forwarded, IcePatch, PatchError, PatchOutcome, SessionId};

/// Shard to shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// One packet of a publisher on the sending shard, for this shard's viewers.
    Media(Arc<Forwarded>),
    /// A viewer on the sending shard wants a keyframe from this shard's publisher.
    Keyframe {
        room_id: u64,
        kind: KeyframeRequestKind,
    },
    /// A datagram that arrived on the sending shard for a peer that lives here.
    Datagram {
        meta: RecvMeta,
        data: Box<[u8]>,
        from: usize,
    },
    /// Datagrams from `addr` belong to a peer on shard `owner` (authenticated
    /// there); the receiving shard routes them straight to it.
    Route { addr: SocketAddr, owner: usize },
    /// Forget the route for `addr` to shard `owner` (its peer is gone).
    Unroute { addr: SocketAddr, owner: usize },
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
    pub media: Sender<ShardMsg>,
    pub control: Sender<Control>,
    pub waker: Waker,
    pub stats: Arc<ShardStats>,
}

impl ShardHandle {
    /// Queues `msg` without blocking; `false` (and counted) when the queue is full.
    pub fn try_send(&self, msg: ShardMsg) -> bool {
        match self.media.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Sends a command and wakes the shard; `false` if the shard is gone or
    /// its command queue is full.
    pub fn command(&self, control: Control) -> bool {
        let sent = self.control.try_send(control).is_ok();
        if sent {
            self.waker.wake();
        }
        sent
    }
}

/// The receiving ends a shard owns.
#[derive(Debug)]
pub struct ShardInbox {
    pub media: Receiver<ShardMsg>,
    pub control: Receiver<Control>,
}

/// Commands a shard can have queued before signaling gets "busy".
const CONTROL_QUEUE: usize = 1024;

/// Builds the handle and inbox of one shard.
pub fn channel(media_capacity: usize, waker: Waker) -> (ShardHandle, ShardInbox) {
    let (media_tx, media_rx) = bounded(media_capacity);
    let (control_tx, control_rx) = bounded(CONTROL_QUEUE);
    (
        ShardHandle {
            media: media_tx,
            control: control_tx,
            waker,
            stats: Arc::new(ShardStats::default()),
        },
        ShardInbox {
            media: media_rx,
            control: control_rx,
        },
    )
}
