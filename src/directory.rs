//! The process-wide directory of sessions and rooms, shared by the signaling
//! thread and the shards. It is locked only on slow paths — a POST, a DELETE,
//! the first STUN of an unknown ufrag, a peer's end, the pending sweep — never
//! per media packet.
//!
//! A new session's peer waits here (`Pending`) until its first STUN arrives on
//! some shard, which then takes it (`claim`) and owns it from then on; the
//! directory only remembers which shard that is.
//!
//! A `PATCH` (trickle, ICE restart) reaches a pending peer here, under the
//! lock; a placed one through its shard, which then re-indexes its ufrag
//! here ([`Directory::reindex_ufrag`]) so STUN with the new ufrag still finds it.
//!
//! A session that ends by itself (its shard reports it, or it expires
//! pending) leaves a short-lived tombstone ([`ended`]), so a `DELETE` that
//! follows a client's own close still answers 200 ([`Directory::delete`]).
//! A `DELETE` of a live session leaves none.

mod conference;
mod ended;
pub mod hooks;
mod recording;

pub use recording::{RecordingError, RoomRecording};

pub use conference::{
    Admission, AnswerRoute, ConferenceError, Grants, Joined, MAX_QUEUED_EVENTS, QueuedEvent,
    RepublishRoute, Resync,
};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::sfu::{
    IcePatch, Outputs, PatchError, PatchOutcome, Peer, PublishedMedia, Role, RoomShared, SessionId,
};

/// Where a session's peer lives.
#[derive(Debug)]
pub enum Place {
    /// Answered, waiting for its first STUN.
    Pending(Box<Peer>),
    /// Owned by this shard.
    Shard(usize),
}

#[derive(Debug)]
struct SessionEntry {
    room: String,
    role: Role,
    ufrag: String,
    created: Instant,
    /// The client IP that created it (counted against `--max-sessions-per-ip`).
    client: Option<IpAddr>,
    place: Place,
    /// The conference participant whose transport it is (by handle).
    participant: Option<SessionId>,
}

impl SessionEntry {
    fn info(&self) -> SessionInfo {
        SessionInfo {
            room: self.room.clone(),
            role: self.role,
        }
    }
}

#[derive(Debug)]
struct RoomEntry {
    shared: Arc<RoomShared>,
    publisher: Option<(SessionId, Arc<PublishedMedia>)>,
    sessions: usize,
    /// Of those, WHEP viewers (counted against `--room-size`).
    viewers: usize,
    /// Conference participants by handle, in the order they joined.
    members: Vec<SessionId>,
    /// Joiners waiting for an owner's approval, oldest first.
    waiting: Vec<SessionId>,
    /// Set by the admin API: the room stays until it is closed.
    config: Option<RoomConfig>,
    /// The publisher number of the participant that spoke last.
    speaker: Option<u64>,
    /// Each publishing participant's voiced-packet count at the last look.
    voiced: Vec<(u64, u64)>,
}

/// How an admin created a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomConfig {
    /// Most participants (0: the server's `--room-size`).
    pub size: usize,
    /// Joiners without the owner grant wait for an owner's approval.
    pub approval: bool,
}

impl RoomEntry {
    /// Nothing keeps it: no session, no participant, no joiner, no config.
    fn is_unused(&self) -> bool {
        self.sessions == 0
            && self.members.is_empty()
            && self.waiting.is_empty()
            && self.config.is_none()
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, SessionEntry>,
    by_ufrag: HashMap<String, SessionId>,
    rooms: HashMap<String, RoomEntry>,
    /// Sessions whose peer is [`Place::Pending`].
    pending: usize,
    /// Sessions per client IP (entries at 0 are removed).
    per_ip: HashMap<IpAddr, usize>,
    /// Sessions that ended by themselves a moment ago.
    ended: ended::Ended,
    /// Conference participants by handle.
    participants: HashMap<SessionId, conference::Participant>,
    /// Participants whose subscribe transport must be told what to send.
    dirty: std::collections::BTreeSet<SessionId>,
    /// Where room events go for the webhook (`--webhook-url`).
    hooks: Option<hooks::HookSink>,
    /// What is recorded (`--record-dir`).
    recording: Option<recording::Recording>,
}

impl Inner {
    /// Tells the webhook, if there is one.
    fn hook(&self, event: &'static str, room: &str, data: serde_json::Value) {
        if let Some(hooks) = &self.hooks {
            hooks.emit(event, room, data);
        }
    }

    /// Forgets room `name` and tells the webhook it finished.
    fn remove_room(&mut self, name: &str) {
        if self.rooms.remove(name).is_some() {
            recording::room_gone(self, name);
            self.hook("room_finished", name, serde_json::Value::Null);
        }
    }
}

/// Why a session could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    #[error("room {0:?} already has a publisher")]
    RoomHasPublisher(String),
    #[error("room {0:?} has no publisher")]
    RoomHasNoPublisher(String),
    #[error("the server has {0} sessions, its limit")]
    Full(usize),
    #[error("the server has {0} sessions waiting to connect, its limit")]
    TooManyPending(usize),
    #[error("this client IP already has {0} sessions, its limit")]
    TooManyFromIp(usize),
    #[error("room {0:?} already has {1} viewers, its limit")]
    RoomFull(String, usize),
    #[error(
        "the server is draining (shutting down or taken out of service): it takes no new sessions"
    )]
    Draining,
}

/// The directory's limits; 0 means no limit for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Sessions at once, pending or placed (`--max-sessions`).
    pub max_sessions: usize,
    /// Sessions answered but not yet reached by their first STUN (`--max-pending`).
    pub max_pending: usize,
    /// Sessions at once created from one client IP (`--max-sessions-per-ip`).
    pub max_per_ip: usize,
    /// Viewers in one room, and participants in one (`--room-size`).
    pub room_size: usize,
    /// How long a joiner waits for approval (`--approval-timeout`; zero:
    /// [`APPROVAL_TIMEOUT`](conference::APPROVAL_TIMEOUT)).
    pub approval_timeout: Duration,
}

/// What signaling needs to know of a session to authorize a request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub room: String,
    pub role: Role,
}

/// What a `DELETE` found.
#[derive(Debug)]
pub enum Deletion {
    /// A live session, now removed; where its peer was.
    Live(Place),
    /// A session that had ended by itself within the tombstone window.
    Ended,
    /// No such session (never issued, deleted before, or ended too long ago).
    Unknown,
}

/// Where a `PATCH` went.
#[derive(Debug)]
pub enum PatchRoute {
    /// The peer was pending: applied here, under the lock.
    Done(Result<PatchOutcome, PatchError>),
    /// The peer lives on this shard: ask it.
    OnShard(usize),
    /// No such session.
    Unknown,
}

/// What a shard finds for a ufrag it has not seen.
#[derive(Debug)]
pub enum Claim {
    /// The peer was pending; it now belongs to the claiming shard.
    Moved(Box<Peer>),
    /// The peer lives on another shard.
    OnShard(usize),
    /// No session has this ufrag.
    Unknown,
}

/// One room in a stats snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSnapshot {
    pub name: String,
    pub sessions: usize,
    pub has_publisher: bool,
    /// Conference participants (a WHIP publisher is one).
    pub participants: usize,
    /// WHEP viewers.
    pub viewers: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped_bitrate_in: u64,
    pub dropped_bitrate_out: u64,
}

/// The directory. Cheap to share by `Arc`.
#[derive(Debug, Default)]
pub struct Directory {
    inner: Mutex<Inner>,
    next_room_id: AtomicU64,
    next_generation: AtomicU64,
    limits: Limits,
    /// Woken when a participant turns dirty (see `conference`).
    resync: Arc<tokio::sync::Notify>,
    /// New sessions and participants are refused ([`InsertError::Draining`]);
    /// existing ones go on.
    draining: AtomicBool,
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory that refuses sessions beyond `max` ([`InsertError::Full`]; 0: no limit).
    pub fn with_max_sessions(max: usize) -> Self {
        Self::with_limits(Limits {
            max_sessions: max,
            ..Limits::default()
        })
    }

    /// A directory with all of `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Queues room events for a webhook on `sink`.
    pub fn with_hooks(mut self, sink: hooks::HookSink) -> Self {
        self.inner.get_mut().hooks = Some(sink);
        self
    }

    /// The webhook's queue, if there is a webhook.
    pub fn hook_sink(&self) -> Option<hooks::HookSink> {
        self.inner.lock().hooks.clone()
    }

    /// The webhook's delivery counters, if there is a webhook.
    pub fn hook_stats(&self) -> Option<Arc<hooks::HookStats>> {
        self.inner.lock().hooks.as_ref().map(|h| h.stats.clone())
    }

    /// Keeps a session that ended by itself deletable (200) for `ttl`
    /// (the server: `--connect-timeout`; zero: not at all).
    pub fn remember_ended(mut self, ttl: Duration) -> Self {
        self.inner.get_mut().ended.set_ttl(ttl);
        self
    }

    /// Why a new session from `client` would be refused now, if it would
    /// (a hint checked before the body is read: [`Directory::insert_from`]
    /// decides under the lock). Room size is checked only at insert.
    pub fn precheck(&self, client: Option<IpAddr>) -> Result<(), InsertError> {
        self.check_draining()?;
        let inner = self.inner.lock();
        self.check_totals(&inner, client)
    }

    /// Starts (or ends) refusing new sessions and participants: a drain.
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Relaxed);
    }

    /// Whether new sessions are refused ([`Directory::set_draining`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn check_draining(&self) -> Result<(), InsertError> {
        match self.is_draining() {
            true => Err(InsertError::Draining),
            false => Ok(()),
        }
    }

    fn check_totals(&self, inner: &Inner, client: Option<IpAddr>) -> Result<(), InsertError> {
        let l = &self.limits;
        if l.max_sessions > 0 && inner.sessions.len() >= l.max_sessions {
            return Err(InsertError::Full(l.max_sessions));
        }
        if l.max_pending > 0 && inner.pending >= l.max_pending {
            return Err(InsertError::TooManyPending(l.max_pending));
        }
        if let Some(ip) = client
            && l.max_per_ip > 0
            && inner.per_ip.get(&ip).copied().unwrap_or(0) >= l.max_per_ip
        {
            return Err(InsertError::TooManyFromIp(l.max_per_ip));
        }
        Ok(())
    }

    /// Whether a new session would be refused as over `--max-sessions`.
    pub fn is_full(&self) -> bool {
        self.limits.max_sessions > 0 && self.session_count() >= self.limits.max_sessions
    }

    /// The limit on sessions (0: none).
    pub fn max_sessions(&self) -> usize {
        self.limits.max_sessions
    }

    /// All the limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sessions answered whose first STUN has not arrived.
    pub fn pending_count(&self) -> usize {
        self.inner.lock().pending
    }

    fn room_entry<'a>(&self, inner: &'a mut Inner, name: &str) -> &'a mut RoomEntry {
        if !inner.rooms.contains_key(name) {
            inner.hook("room_started", name, serde_json::Value::Null);
        }
        inner
            .rooms
            .entry(name.to_owned())
            .or_insert_with(|| RoomEntry {
                shared: Arc::new(RoomShared::new(
                    self.next_room_id.fetch_add(1, Ordering::Relaxed) + 1,
                    name.to_owned(),
                )),
                publisher: None,
                sessions: 0,
                viewers: 0,
                members: Vec::new(),
                waiting: Vec::new(),
                config: None,
                speaker: None,
                voiced: Vec::new(),
            })
    }

    /// The media of room `name`'s main feed (its WHIP publisher, else its
    /// participant that published last), if it has one: what a WHEP
    /// viewer is fed.
    pub fn publisher_media(&self, name: &str) -> Option<Arc<PublishedMedia>> {
        let inner = self.inner.lock();
        inner.rooms.get(name)?.shared.main_media()
    }

    /// How many WHEP viewers room `name` has (0: no such room).
    pub fn viewer_count(&self, name: &str) -> usize {
        let inner = self.inner.lock();
        inner.rooms.get(name).map_or(0, |r| r.viewers)
    }

    /// Whether room `name` has a WHIP publisher.
    pub fn has_whip_publisher(&self, name: &str) -> bool {
        let inner = self.inner.lock();
        inner.rooms.get(name).is_some_and(|r| r.publisher.is_some())
    }

    /// A fresh publisher generation (never 0).
    pub fn next_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds an answered peer as pending and attaches it to its room (created
    /// here, under the lock, so a room exists only while a session uses it).
    /// A publisher takes the room's publisher slot; a viewer needs the room
    /// to have a publisher.
    pub fn insert(&self, peer: Peer, now: Instant) -> Result<SessionId, InsertError> {
        self.insert_from(peer, now, None)
    }

    /// [`Directory::insert`] for a session created by `client` (counted
    /// against the per-IP limit; `None`: not counted). Every limit is
    /// checked under the lock.
    pub fn insert_from(
        &self,
        mut peer: Peer,
        now: Instant,
        client: Option<IpAddr>,
    ) -> Result<SessionId, InsertError> {
        self.check_draining()?;
        let mut inner = self.inner.lock();
        self.check_totals(&inner, client)?;
        let room_size = self.limits.room_size;
        let name = peer.room().name.clone();
        let id = peer.id();
        let role = peer.role();
        let room = self.room_entry(&mut inner, &name);
        match role {
            Role::Publisher => {
                if room.publisher.is_some() {
                    let empty = room.is_unused();
                    drop_if_empty(&mut inner, &name, empty);
                    return Err(InsertError::RoomHasPublisher(name));
                }
                let media = peer
                    .published_media()
                    .cloned()
                    .ok_or_else(|| InsertError::RoomHasNoPublisher(name.clone()))?;
                room.publisher = Some((id, media));
            }
            Role::Viewer => {
                if room.shared.main_media().is_none() {
                    let empty = room.is_unused();
                    drop_if_empty(&mut inner, &name, empty);
                    return Err(InsertError::RoomHasNoPublisher(name));
                }
                if room_size > 0 && room.viewers >= room_size {
                    return Err(InsertError::RoomFull(name, room_size));
                }
                room.viewers += 1;
            }
        }
        room.sessions += 1;
        peer.set_room(room.shared.clone());
        // A WHIP publisher is a participant of the room that only publishes
        // (and feeds its main feed, what WHEP viewers watch).
        let participant = (role == Role::Publisher).then_some(id);
        let id = insert_locked(&mut inner, peer, now, client, participant);
        if role == Role::Publisher {
            conference::whip_joined(&mut inner, &name, id);
        }
        Ok(id)
    }
}

/// Adds `peer`, attached to its room already (and counted in it), as pending.
fn insert_locked(
    inner: &mut Inner,
    peer: Peer,
    now: Instant,
    client: Option<IpAddr>,
    participant: Option<SessionId>,
) -> SessionId {
    let name = peer.room().name.clone();
    let id = peer.id();
    let role = peer.role();
    {
        let ufrag = peer.ufrag().to_owned();
        inner.by_ufrag.insert(ufrag.clone(), id);
        inner.pending += 1;
        if let Some(ip) = client {
            *inner.per_ip.entry(ip).or_insert(0) += 1;
        }
        inner.sessions.insert(
            id,
            SessionEntry {
                room: name,
                role,
                ufrag,
                created: now,
                client,
                place: Place::Pending(Box::new(peer)),
                participant,
            },
        );
        id
    }
}

impl Directory {
    /// A shard saw STUN for `ufrag` from an address it does not know.
    pub fn claim(&self, ufrag: &[u8], shard: usize) -> Claim {
        let Ok(ufrag) = std::str::from_utf8(ufrag) else {
            return Claim::Unknown;
        };
        let mut inner = self.inner.lock();
        let Some(id) = inner.by_ufrag.get(ufrag).copied() else {
            return Claim::Unknown;
        };
        let Some(entry) = inner.sessions.get_mut(&id) else {
            return Claim::Unknown;
        };
        match std::mem::replace(&mut entry.place, Place::Shard(shard)) {
            Place::Pending(peer) => {
                inner.pending = inner.pending.saturating_sub(1);
                Claim::Moved(peer)
            }
            Place::Shard(owner) => {
                entry.place = Place::Shard(owner);
                Claim::OnShard(owner)
            }
        }
    }

    /// The room and role of session `id`.
    pub fn session_info(&self, id: SessionId) -> Option<SessionInfo> {
        let inner = self.inner.lock();
        inner.sessions.get(&id).map(SessionEntry::info)
    }

    /// Applies `patch` to session `id` if its peer is pending (the shard
    /// cannot race us: it claims under this lock); else says where it is.
    pub fn patch(&self, id: SessionId, now: Instant, patch: IcePatch) -> PatchRoute {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.sessions.get_mut(&id) else {
            return PatchRoute::Unknown;
        };
        let peer = match &mut entry.place {
            Place::Shard(shard) => return PatchRoute::OnShard(*shard),
            Place::Pending(peer) => peer,
        };
        // A pending peer has no address to send to; str0m (ICE-lite) sends
        // nothing unasked anyway.
        let mut out = Outputs::default();
        let result = peer.apply_patch(now, patch, &mut out);
        let new_ufrag = peer.ufrag().to_owned();
        let old_ufrag = std::mem::replace(&mut entry.ufrag, new_ufrag.clone());
        if old_ufrag != new_ufrag {
            inner.by_ufrag.remove(&old_ufrag);
            inner.by_ufrag.insert(new_ufrag, id);
        }
        PatchRoute::Done(result)
    }

    /// Session `id` (placed on a shard) restarted ICE: STUN now names
    /// `ufrag`. Returns `false` if the session is gone.
    pub fn reindex_ufrag(&self, id: SessionId, ufrag: &str) -> bool {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.sessions.get_mut(&id) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.ufrag, ufrag.to_owned());
        if old != ufrag {
            inner.by_ufrag.remove(&old);
            inner.by_ufrag.insert(ufrag.to_owned(), id);
        }
        true
    }

    /// Forgets session `id`; returns where it was (`None`: unknown, e.g. a
    /// second DELETE). A pending peer is dropped with it.
    pub fn remove(&self, id: SessionId) -> Option<Place> {
        remove_locked(&mut self.inner.lock(), id)
    }

    /// Forgets session `id`, which ended by itself at `now` (its shard saw
    /// it close, time out or fail), leaving a tombstone so that a `DELETE`
    /// soon after still answers 200. Returns where it was (`None`: already
    /// gone, e.g. deleted, and then no tombstone is left).
    pub fn end(&self, id: SessionId, now: Instant) -> Option<Place> {
        end_locked(&mut self.inner.lock(), id, now)
    }

    /// The room and role of session `id`, live or ended by itself within
    /// the tombstone window: what authorizing a `DELETE` needs.
    pub fn deletable_info(&self, id: SessionId, now: Instant) -> Option<SessionInfo> {
        let inner = self.inner.lock();
        match inner.sessions.get(&id) {
            Some(e) => Some(e.info()),
            None => inner.ended.get(id, now).cloned(),
        }
    }

    /// `DELETE`: removes live session `id` (no tombstone: a second DELETE
    /// is 404), else takes its tombstone. The tombstone is taken, not kept,
    /// so a session of either kind answers exactly one DELETE with 200 and
    /// later ones with 404, as README's API table says.
    pub fn delete(&self, id: SessionId, now: Instant) -> Deletion {
        let mut inner = self.inner.lock();
        if let Some(place) = remove_locked(&mut inner, id) {
            return Deletion::Live(place);
        }
        if inner.ended.take(id, now) {
            Deletion::Ended
        } else {
            Deletion::Unknown
        }
    }

    /// Tombstones held (live or not yet swept).
    pub fn ended_count(&self) -> usize {
        self.inner.lock().ended.len()
    }

    /// Removes pending sessions older than `max_age` (each leaves a
    /// tombstone) and drops expired tombstones; returns how many sessions.
    /// One pass under the lock, so a session claimed meanwhile is never
    /// removed.
    pub fn expire_pending(&self, now: Instant, max_age: Duration) -> usize {
        let mut inner = self.inner.lock();
        inner.ended.sweep(now);
        let expired: Vec<SessionId> = inner
            .sessions
            .iter()
            .filter(|(_, e)| {
                matches!(e.place, Place::Pending(_)) && now.duration_since(e.created) >= max_age
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            end_locked(&mut inner, *id, now);
        }
        expired.len()
    }

    /// Gives back a peer claimed by `shard` whose first STUN did not
    /// authenticate: it is pending again, for the shard its real client's
    /// STUN reaches. Returns the peer if its session is gone meanwhile.
    pub fn unclaim(&self, peer: Box<Peer>, shard: usize) -> Option<Box<Peer>> {
        let mut inner = self.inner.lock();
        match inner.sessions.get_mut(&peer.id()) {
            Some(entry) if matches!(entry.place, Place::Shard(s) if s == shard) => {
                entry.place = Place::Pending(peer);
                inner.pending += 1;
                None
            }
            _ => Some(peer),
        }
    }

    /// Every session and its shard (`None`: pending), sorted; for
    /// consistency checks.
    pub fn placements(&self) -> Vec<(SessionId, Option<usize>)> {
        let inner = self.inner.lock();
        let mut all: Vec<_> = inner
            .sessions
            .iter()
            .map(|(id, e)| {
                let shard = match e.place {
                    Place::Pending(_) => None,
                    Place::Shard(s) => Some(s),
                };
                (*id, shard)
            })
            .collect();
        all.sort();
        all
    }

    /// Every session's ufrag, sorted by session, once the index is checked:
    /// each session is named by exactly its ufrag, and a pending peer's
    /// ufrag is the one it is named by (for consistency checks).
    pub fn ufrags(&self) -> Result<Vec<(SessionId, String)>, String> {
        let inner = self.inner.lock();
        if inner.by_ufrag.len() != inner.sessions.len() {
            return Err(format!(
                "{} ufrags indexed for {} sessions",
                inner.by_ufrag.len(),
                inner.sessions.len()
            ));
        }
        let mut all = Vec::with_capacity(inner.sessions.len());
        for (id, entry) in &inner.sessions {
            if inner.by_ufrag.get(&entry.ufrag) != Some(id) {
                return Err(format!("session {id:?} is not found by its ufrag"));
            }
            if let Place::Pending(peer) = &entry.place
                && peer.ufrag() != entry.ufrag
            {
                return Err(format!(
                    "pending session {id:?} is indexed by a stale ufrag"
                ));
            }
            all.push((*id, entry.ufrag.clone()));
        }
        all.sort();
        Ok(all)
    }

    /// Number of sessions, pending or placed.
    pub fn session_count(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// Rooms and their counters, sorted by name.
    pub fn rooms(&self) -> Vec<RoomSnapshot> {
        let inner = self.inner.lock();
        let mut rooms: Vec<RoomSnapshot> = inner
            .rooms
            .iter()
            .map(|(name, r)| RoomSnapshot {
                name: name.clone(),
                sessions: r.sessions,
                has_publisher: r.publisher.is_some(),
                participants: r.members.len(),
                viewers: r.viewers,
                bytes_in: r.shared.bytes_in.load(Ordering::Relaxed),
                bytes_out: r.shared.bytes_out.load(Ordering::Relaxed),
                dropped_bitrate_in: r.shared.dropped_bitrate_in.load(Ordering::Relaxed),
                dropped_bitrate_out: r.shared.dropped_bitrate_out.load(Ordering::Relaxed),
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }
}

fn end_locked(inner: &mut Inner, id: SessionId, now: Instant) -> Option<Place> {
    let info = inner.sessions.get(&id).map(SessionEntry::info)?;
    let place = remove_locked(inner, id);
    inner.ended.record(id, info, now);
    place
}

fn remove_locked(inner: &mut Inner, id: SessionId) -> Option<Place> {
    let entry = inner.sessions.remove(&id)?;
    if let Some(handle) = entry.participant {
        conference::transport_gone(inner, handle, id);
    }
    inner.by_ufrag.remove(&entry.ufrag);
    if matches!(entry.place, Place::Pending(_)) {
        inner.pending = inner.pending.saturating_sub(1);
    }
    if let Some(ip) = entry.client
        && let Some(n) = inner.per_ip.get_mut(&ip)
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.per_ip.remove(&ip);
        }
    }
    if let Some(room) = inner.rooms.get_mut(&entry.room) {
        room.sessions = room.sessions.saturating_sub(1);
        if entry.role == Role::Viewer && entry.participant.is_none() {
            room.viewers = room.viewers.saturating_sub(1);
        }
        if entry.role == Role::Publisher && room.publisher.take_if(|(p, _)| *p == id).is_some() {
            conference::choose_main(inner, &entry.room);
        }
        let Some(room) = inner.rooms.get_mut(&entry.room) else {
            return Some(entry.place);
        };
        let empty = room.is_unused();
        drop_if_empty(inner, &entry.room, empty);
    }
    Some(entry.place)
}

fn drop_if_empty(inner: &mut Inner, name: &str, empty: bool) {
    if empty {
        inner.remove_room(name);
    }
}

#[cfg(test)]
mod tests;
