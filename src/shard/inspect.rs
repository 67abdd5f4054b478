//! A shard's tables, read back and checked against each other: what the
//! unit tests and the `demux` fuzz target assert after every step. Not on
//! any hot path (it walks every table).

use std::net::SocketAddr;

use super::ShardState;
use super::demux::Route;
use super::engine::{Core, MAX_PEER_ADDRS, PeerKey};
use crate::sfu::{Role, SessionId};

/// What a shard holds, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    /// Sessions placed on this shard.
    pub sessions: Vec<SessionId>,
    /// Their current ICE ufrags.
    pub ufrags: Vec<(SessionId, String)>,
    /// Remote addresses pinned to a local session (their STUN authenticated).
    pub pinned: Vec<(SocketAddr, SessionId)>,
    /// Remote addresses whose datagrams are handed to another shard.
    pub routed: Vec<(SocketAddr, usize)>,
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
            let room = peer.room();
            let in_router = match peer.role() {
                Role::Publisher => core.router.publisher(room.id) == Some(key),
                Role::Viewer => core.router.viewers(room.id).contains(&key),
            };
            if !in_router {
                return Err(fail(format!("session {id:?} missing from its room")));
            }
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
        for (room_id, shared, publisher, viewers) in core.router.rooms() {
            tables.rooms += 1;
            let members = publisher.iter().chain(viewers);
            for key in members {
                let Some(slot) = slot(core, *key) else {
                    return Err(fail(format!("room {room_id} lists a peer that is gone")));
                };
                if slot.peer.room().id != room_id {
                    return Err(fail(format!("room {room_id} lists a peer of another room")));
                }
            }
            if publisher.is_none() && viewers.is_empty() {
                return Err(fail(format!("room {room_id} kept with no member")));
            }
            if shared.has_viewers_on(core.index) == viewers.is_empty() {
                return Err(fail(format!(
                    "room {room_id}: shared viewer count disagrees with {} local viewers",
                    viewers.len()
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
