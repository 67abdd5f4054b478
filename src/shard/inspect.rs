//! A shard's tables, read back and checked against each other: what the
//! unit tests and the `demux` fuzz target assert after every step. Not on
//! any hot path (it walks every table).

use std::sync::Arc;

use super::ShardState;
use super::demux::Route;
use super::engine::{Core, MAX_PEER_ADDRS, PeerKey};
use crate::sfu::{PeerAddr, SessionId};

/// What a shard holds, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    /// Sessions placed on this shard.
    pub sessions: Vec<SessionId>,
    /// Their current ICE ufrags.
    pub ufrags: Vec<(SessionId, String)>,
    /// Remote addresses pinned to a local session (their STUN authenticated).
    pub pinned: Vec<(PeerAddr, SessionId)>,
    /// Remote addresses whose datagrams are handed to another shard.
    pub routed: Vec<(PeerAddr, usize)>,
    /// Entries in the timer heap, live or stale.
    pub timers: usize,
    /// Rooms with a member on this shard.
    pub rooms: usize,
}

/// A broken invariant: a bug in the shard, never the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard}: {what}")]
pub struct TablesError {
    pub shard: usize,
    pub what: String,
}

impl ShardState {
    /// Reads the tables and checks that they agree: every peer is named by
    /// its session and its ufrag and nothing else is; every pinned address
    /// belongs to a live peer that authenticated from it; every peer has a
    /// timer; the router holds exactly the live peers in their rooms.
    pub fn tables(&self) -> Result<Tables, TablesError> {
        let core = &self.core;
        let fail = |what: String| TablesError {
            shard: core.index,
            what,
        };
        let mut tables = Tables {
            timers: core.timers.len(),
            ..Tables::default()
        };
        let mut members: std::collections::HashMap<u64, usize> = Default::default();
        for (index, slot) in &core.peers {
            let key = PeerKey {
                index: index as u32,
                generation: slot.generation,
            };
            let peer = &slot.peer;
            let id = peer.id();
            tables.sessions.push(id);
            tables.ufrags.push((id, peer.ufrag().to_owned()));
            if core.by_session.get(&id) != Some(&key) {
                return Err(fail(format!("session {id:?} is not indexed by its id")));
            }
            if core.routes.by_ufrag(peer.ufrag().as_bytes()) != Some(key) {
                return Err(fail(format!("session {id:?} is not named by its ufrag")));
            }
            if let Some(reason) = peer.closed() {
                return Err(fail(format!("session {id:?} closed ({reason:?}) but kept")));
            }
            if slot.addrs.len() > MAX_PEER_ADDRS {
                return Err(fail(format!(
                    "session {id:?} keeps {} addresses",
                    slot.addrs.len()
                )));
            }
            let timer = slot.scheduled.is_some_and(|at| {
                core.timers
                    .iter()
                    .any(|std::cmp::Reverse(entry)| *entry == (at, key))
            });
            if !timer {
                return Err(fail(format!("session {id:?} has no timer")));
            }
            let publishes = peer
                .published_tracks()
                .iter()
                .all(|t| core.router.publisher(t.id) == Some(key));
            let subscribes = peer
                .feeds()
                .all(|f| core.router.subscribers(&f.feed()).contains(&key));
            if !publishes || !subscribes || core.router.room(peer.room().id).is_none() {
                return Err(fail(format!(
                    "session {id:?} missing from its room's tracks or feeds"
                )));
            }
            *members.entry(peer.room().id).or_default() += 1;
        }
        if core.by_session.len() != core.peers.len() {
            return Err(fail(format!(
                "{} sessions indexed for {} peers",
                core.by_session.len(),
                core.peers.len()
            )));
        }
        for (ufrag, key) in core.routes.ufrags() {
            if !live(core, *key) {
                return Err(fail(format!("ufrag {ufrag} names a peer that is gone")));
            }
        }
        for (addr, route) in core.routes.addrs() {
            match *route {
                Route::Local(key) => {
                    let Some(slot) = slot(core, key) else {
                        return Err(fail(format!("{addr} pinned to a peer that is gone")));
                    };
                    if !slot.addrs.contains(addr) {
                        return Err(fail(format!(
                            "{addr} pinned to a peer that never authenticated from it"
                        )));
                    }
                    tables.pinned.push((*addr, slot.peer.id()));
                }
                Route::Remote(owner) => {
                    if owner == core.index || owner >= core.shards.len() {
                        return Err(fail(format!("{addr} routed to shard {owner}")));
                    }
                    tables.routed.push((*addr, owner));
                }
            }
        }
        for (addr, shards) in &core.told {
            if !matches!(core.routes.route(addr), Some(Route::Local(_))) {
                return Err(fail(format!(
                    "shards {shards:#b} were told to route {addr} here, but it is not pinned"
                )));
            }
        }
        for (room_id, _, count) in core.router.rooms() {
            tables.rooms += 1;
            if members.get(&room_id).copied().unwrap_or(0) != count {
                return Err(fail(format!(
                    "room {room_id} counts {count} members here, not its live peers"
                )));
            }
        }
        for (key, track) in core.router.tracks() {
            let owns = slot(core, key).is_some_and(|s| {
                s.peer
                    .published_tracks()
                    .iter()
                    .any(|t| Arc::ptr_eq(t, track))
            });
            if !owns {
                return Err(fail(format!(
                    "track {:?} published by a peer that is gone or does not send it",
                    track.id
                )));
            }
            if track.audience.publisher_shard() != Some(core.index) {
                return Err(fail(format!(
                    "track {:?} is published here but its audience names shard {:?}",
                    track.id,
                    track.audience.publisher_shard()
                )));
            }
        }
        for (source, subscribers) in core.router.feeds() {
            let feed = source.feed();
            for key in subscribers {
                let receives =
                    slot(core, *key).is_some_and(|s| s.peer.feeds().any(|f| f.feed() == feed));
                if !receives {
                    return Err(fail(format!(
                        "feed {feed:?} lists a peer that is gone or does not receive it"
                    )));
                }
            }
            if subscribers.is_empty() || !source.audience().has_subscribers_on(core.index) {
                return Err(fail(format!(
                    "feed {feed:?}: its shared audience disagrees with {} local subscribers",
                    subscribers.len()
                )));
            }
        }
        tables.sessions.sort();
        tables.ufrags.sort();
        tables.pinned.sort();
        tables.routed.sort();
        Ok(tables)
    }
}

fn slot(core: &Core, key: PeerKey) -> Option<&super::engine::Slot> {
    core.peers
        .get(key.index as usize)
        .filter(|s| s.generation == key.generation)
}

fn live(core: &Core, key: PeerKey) -> bool {
    slot(core, key).is_some()
}
