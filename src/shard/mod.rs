//! One shard: a single-threaded event loop that owns one socket of the
//! reuseport group (through a [`Datapath`]), the peers placed on it, their
//! timers, and its side of the shard-to-shard queues (a media lane that
//! may drop, a control lane that does not: see [`ShardMedia`] and
//! [`ShardControl`]).
//!
//! Demux per datagram: 4-tuple → peer (or → the shard that owns it); else a
//! STUN binding request's ufrag → a local peer, or the directory (which moves
//! a pending peer here or names its shard); else drop and count. An address is
//! pinned to a peer only once str0m has answered its STUN, i.e. after
//! MESSAGE-INTEGRITY checked out: an unauthenticated ufrag routes, never pins.
//!
//! [`Shard`] is the loop: a [`Datapath`] around a [`ShardState`], which is
//! everything else and never touches a socket or the clock, so tests and
//! the `demux` fuzz target drive it directly.

pub mod demux;
mod engine;
mod inspect;
mod msg;
mod renegotiate;
pub mod sim;
mod stats;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::Protocol;
use tracing::info;

pub use inspect::{Tables, TablesError};
pub use msg::{
    AnswerReply, Control, PatchReply, RepublishReply, ShardControl, ShardHandle, ShardInbox,
    ShardMedia, channel,
};
pub use stats::{ShardSnapshot, ShardStats, TIMING_BOUNDS, Timing, TimingSnapshot};

use crate::directory::Directory;
use crate::net::{Datapath, RecvMeta};
use crate::sfu::CloseReason;
use engine::{Core, PeerKey};

/// A shard, ready to run on its own thread.
pub struct Shard {
    datapath: Box<dyn Datapath>,
    state: ShardState,
}

impl Shard {
    /// Shard `index` of `shards`, on `datapath`, advertising `candidates`.
    pub fn new(
        index: usize,
        datapath: Box<dyn Datapath>,
        inbox: ShardInbox,
        shards: Arc<[ShardHandle]>,
        directory: Arc<Directory>,
        candidates: Vec<SocketAddr>,
    ) -> Self {
        Self {
            datapath,
            state: ShardState::new(index, inbox, shards, directory, candidates),
        }
    }

    /// Sends ICE-TCP peers' transmits to `outbox`.
    pub fn with_tcp(mut self, outbox: Option<crate::net::tcp::TcpOutbox>) -> Self {
        if let Some(outbox) = outbox {
            self.state.set_tcp_outbox(outbox);
        }
        self
    }

    /// Runs until [`Control::Shutdown`]; returns the datapath error that
    /// stopped it, if one did.
    pub fn run(mut self) -> std::io::Result<()> {
        let stats = self.state.core.stats.clone();
        let _running = stats::RunningGuard::new(&stats.running);
        info!(
            shard = self.state.core.index,
            io = self.datapath.name(),
            "shard running"
        );
        loop {
            let now = Instant::now();
            if !self.state.handle_commands(now) {
                self.flush(now);
                // Submit the goodbyes (BYE, close_notify) before leaving.
                self.datapath.turn(Some(Duration::ZERO), &mut |_, _| {})?;
                return Ok(());
            }
            let more_queued = self.state.handle_inbox(now);
            self.state.core.run_timers(now);
            self.flush(now);
            let timeout = if more_queued {
                Some(Duration::ZERO)
            } else {
                self.state
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            let core = &mut self.state.core;
            self.datapath.turn(timeout, &mut |meta, data| {
                core.on_datagram(Instant::now(), meta, data, None);
            })?;
            self.flush(Instant::now());
        }
    }

    fn flush(&mut self, now: Instant) {
        let datapath = &mut self.datapath;
        self.state.flush(now, |destination, contents| {
            datapath.queue_send(destination, contents)
        });
        self.state.core.stats.record_net(&self.datapath.stats());
    }
}

/// Everything of a shard but its datapath: the peers, the tables, the
/// timers and the inbox. [`Shard::run`] drives it with the clock and a
/// socket; tests and fuzzing drive it with any `now` they like and collect
/// what it sends.
pub struct ShardState {
    inbox: ShardInbox,
    core: Core,
}

impl ShardState {
    /// Shard `index` of `shards` (whose inbox is `inbox`), advertising
    /// `candidates`.
    pub fn new(
        index: usize,
        inbox: ShardInbox,
        shards: Arc<[ShardHandle]>,
        directory: Arc<Directory>,
        candidates: Vec<SocketAddr>,
    ) -> Self {
        Self {
            inbox,
            core: Core::new(index, shards, directory, candidates),
        }
    }

    /// One datagram as the datapath delivers it.
    pub fn handle_datagram(&mut self, now: Instant, meta: RecvMeta, data: &[u8]) {
        self.core.on_datagram(now, meta, data, None);
    }

    /// What the loop does before it waits: commands from signaling, then
    /// (a bounded number of) messages from other shards, control lane
    /// first, then due timers.
    /// Returns `false` once [`Control::Shutdown`] was handled.
    pub fn handle_turn(&mut self, now: Instant) -> bool {
        if !self.handle_commands(now) {
            return false;
        }
        self.handle_inbox(now);
        self.core.run_timers(now);
        true
    }

    /// Sends ICE-TCP peers' transmits to `outbox` (the ICE-TCP thread).
    pub fn set_tcp_outbox(&mut self, outbox: crate::net::tcp::TcpOutbox) {
        self.core.tcp = Some(outbox);
    }

    /// The earliest timer, if any peer has one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    /// Sends what viewers queued (`send` gets every datagram the shard
    /// wants sent since the last flush) and wakes the shards we queued to.
    pub fn flush(&mut self, now: Instant, mut send: impl FnMut(SocketAddr, &[u8])) {
        let core = &mut self.core;
        core.flush_viewers(now);
        for t in core.out.transmits.drain(..) {
            if t.proto == Protocol::Udp {
                send(t.destination, &t.contents);
                continue;
            }
            // An ICE-TCP peer: framed onto its connection by the ICE-TCP thread.
            let queued =
                (core.tcp.as_ref()).is_some_and(|tcp| tcp.send(t.destination, t.contents.into()));
            let counter = if queued {
                &core.stats.tcp_out
            } else {
                &core.stats.drop_tcp
            };
            ShardStats::add(counter, 1);
        }
        for shard in engine::shards_in(std::mem::take(&mut core.to_wake)) {
            if let Some(handle) = core.shards.get(shard) {
                handle.waker.wake();
            }
        }
        core.stats.record_outputs(&core.out);
    }

    /// Whether other shards queued messages this shard has not handled yet.
    pub fn has_queued(&self) -> bool {
        !self.inbox.control.is_empty()
            || !self.inbox.media.is_empty()
            || !self.inbox.commands.is_empty()
    }

    /// This shard's counters.
    pub fn stats(&self) -> ShardSnapshot {
        self.core.stats.snapshot()
    }

    /// Returns `false` on shutdown.
    fn handle_commands(&mut self, now: Instant) -> bool {
        while let Ok(control) = self.inbox.commands.try_recv() {
            match control {
                Control::Close(id) => {
                    if let Some(&key) = self.core.by_session.get(&id) {
                        self.core.call(key, now, |peer, out| {
                            peer.close(now, CloseReason::Deleted, out)
                        });
                    }
                }
                Control::Shutdown => {
                    let keys: Vec<PeerKey> = self.core.by_session.values().copied().collect();
                    for key in keys {
                        self.core.call(key, now, |peer, out| {
                            peer.close(now, CloseReason::Shutdown, out)
                        });
                    }
                    return false;
                }
                Control::Patch { id, patch, reply } => {
                    let answer = match self.core.by_session.get(&id).copied() {
                        Some(key) => PatchReply::Applied(self.core.patch(key, now, id, *patch)),
                        None => PatchReply::NotHere,
                    };
                    // Signaling may have given up waiting; nothing to do then.
                    let _ = reply.send(answer);
                }
                Control::Republish {
                    id,
                    offer,
                    sources,
                    allowed,
                    reply,
                } => {
                    let answer = match self.core.by_session.get(&id).copied() {
                        Some(key) => RepublishReply::Applied(
                            self.core.republish(key, now, &offer, &sources, &allowed),
                        ),
                        None => RepublishReply::NotHere,
                    };
                    let _ = reply.send(answer);
                }
                Control::Desire { id, tracks } => match self.core.by_session.get(&id).copied() {
                    Some(key) => self.core.desire(key, now, id, tracks),
                    // Given back to the directory (its first STUN did not
                    // authenticate) since the directory sent this: the
                    // resync must be made there, so it is marked again.
                    None => self.core.desire_elsewhere(id),
                },
                Control::Answer {
                    id,
                    revision,
                    sdp,
                    reply,
                } => {
                    let answer = match self.core.by_session.get(&id).copied() {
                        Some(key) => {
                            AnswerReply::Applied(self.core.answer(key, now, id, revision, &sdp))
                        }
                        None => AnswerReply::NotHere,
                    };
                    let _ = reply.send(answer);
                }
            }
        }
        true
    }

    /// Handles queued shard messages, the control lane before the media
    /// lane, each at most [`INBOX_PER_TURN`]; returns `true` if either has
    /// messages left (then the next turn must not sleep).
    fn handle_inbox(&mut self, now: Instant) -> bool {
        // Bounded per turn so a flood from other shards cannot starve the socket.
        let mut control_left = true;
        for _ in 0..INBOX_PER_TURN {
            let Ok(msg) = self.inbox.control.try_recv() else {
                control_left = false;
                break;
            };
            self.core.on_shard_control(now, msg);
        }
        for _ in 0..INBOX_PER_TURN {
            let Ok(msg) = self.inbox.media.try_recv() else {
                return control_left;
            };
            self.core.on_shard_media(now, msg);
        }
        control_left || !self.inbox.media.is_empty()
    }
}

/// Messages of each lane handled per loop turn at most.
const INBOX_PER_TURN: usize = 4096;
