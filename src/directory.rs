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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

#[derive(Debug)]
struct RoomEntry {
    shared: Arc<RoomShared>,
    publisher: Option<(SessionId, Arc<PublishedMedia>)>,
    sessions: usize,
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
    /// Viewers in one room (`--room-size`).
    pub room_size: usize,
}

/// What signaling needs to know of a session to authorize a request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub room: String,
    pub role: Role,
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

    /// Why a new session from `client` would be refused now, if it would
    /// (a hint checked before the body is read: [`Directory::insert_from`]
    /// decides under the lock). Room size is checked only at insert.
    pub fn precheck(&self, client: Option<IpAddr>) -> Result<(), InsertError> {
        let inner = self.inner.lock();
        self.check_totals(&inner, client)
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
            })
    }

    /// The media of room `name`'s current publisher, if it has one.
    pub fn publisher_media(&self, name: &str) -> Option<Arc<PublishedMedia>> {
        let inner = self.inner.lock();
        inner
            .rooms
            .get(name)?
            .publisher
            .as_ref()
            .map(|(_, m)| m.clone())
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
                    let empty = room.sessions == 0;
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
                if room.publisher.is_none() {
                    let empty = room.sessions == 0;
                    drop_if_empty(&mut inner, &name, empty);
                    return Err(InsertError::RoomHasNoPublisher(name));
                }
                // The room has a publisher, so its other sessions are viewers.
                let viewers = room.sessions.saturating_sub(1);
                if room_size > 0 && viewers >= room_size {
                    return Err(InsertError::RoomFull(name, room_size));
                }
            }
        }
        room.sessions += 1;
        peer.set_room(room.shared.clone());
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
            },
        );
        Ok(id)
    }

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
        inner.sessions.get(&id).map(|e| SessionInfo {
            room: e.room.clone(),
            role: e.role,
        })
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

    /// Removes pending sessions older than `max_age`; returns how many. One
    /// pass under the lock, so a session claimed meanwhile is never removed.
    pub fn expire_pending(&self, now: Instant, max_age: Duration) -> usize {
        let mut inner = self.inner.lock();
        let expired: Vec<SessionId> = inner
            .sessions
            .iter()
            .filter(|(_, e)| {
                matches!(e.place, Place::Pending(_)) && now.duration_since(e.created) >= max_age
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            remove_locked(&mut inner, *id);
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

fn remove_locked(inner: &mut Inner, id: SessionId) -> Option<Place> {
    let entry = inner.sessions.remove(&id)?;
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
        if entry.role == Role::Publisher && room.publisher.as_ref().is_some_and(|(p, _)| *p == id) {
            room.publisher = None;
        }
        let empty = room.sessions == 0;
        drop_if_empty(inner, &entry.room, empty);
    }
    Some(entry.place)
}

fn drop_if_empty(inner: &mut Inner, name: &str, empty: bool) {
    if empty {
        inner.rooms.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use str0m::media::{Direction, MediaKind};
    use str0m::{Candidate, Rtc};

    use super::*;
    use crate::sfu::{PeerSetup, accept_offer};

    fn offer(direction: Direction) -> String {
        let mut rtc = Rtc::new(Instant::now());
        rtc.add_local_candidate(
            Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap(),
        );
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, direction, None, None, None);
        change.add_media(MediaKind::Video, direction, None, None, None);
        change.apply().unwrap().0.to_sdp_string()
    }

    fn peer(directory: &Directory, role: Role, room: &str) -> Peer {
        let setup = PeerSetup {
            candidates: vec!["127.0.0.1:5004".parse().unwrap()],
            connect_timeout: Duration::from_secs(15),
            ice_timeout: Duration::from_secs(15),
            keyframe_interval: Duration::from_millis(500),
            max_bitrate_in: 0,
            max_bitrate_out: 0,
            dtls_cert: None,
            crypto: crate::dtls::crypto_provider(),
        };
        let (direction, publisher) = match role {
            Role::Publisher => (Direction::SendOnly, None),
            Role::Viewer => (Direction::RecvOnly, directory.publisher_media(room)),
        };
        let generation = directory.next_generation();
        accept_offer(
            role,
            &offer(direction),
            &setup,
            room,
            publisher.as_deref(),
            generation,
            Instant::now(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn sessions_of_a_room_share_one_room_and_refusals_leave_none() {
        let d = Directory::new();
        let now = Instant::now();
        // Refused inserts create nothing.
        assert_eq!(
            d.insert(peer_without_publisher(&d), now),
            Err(InsertError::RoomHasNoPublisher("r".into()))
        );
        assert!(d.rooms().is_empty());

        let publisher = d.insert(peer(&d, Role::Publisher, "r"), now).unwrap();
        let viewer = d.insert(peer(&d, Role::Viewer, "r"), now).unwrap();
        assert_eq!(
            d.insert(peer(&d, Role::Publisher, "r"), now),
            Err(InsertError::RoomHasPublisher("r".into()))
        );
        let rooms = d.rooms();
        assert_eq!(rooms.len(), 1);
        assert_eq!((rooms[0].sessions, rooms[0].has_publisher), (2, true));

        // Both peers were attached to the same shared room.
        let Claim::Moved(p) = d.claim(ufrag_of(&d, publisher).as_bytes(), 0) else {
            panic!("pending")
        };
        let Claim::Moved(v) = d.claim(ufrag_of(&d, viewer).as_bytes(), 1) else {
            panic!("pending")
        };
        assert!(Arc::ptr_eq(p.room(), v.room()));
        assert_ne!(p.room().id, 0, "not the detached placeholder");

        // The room goes with its last session; a new one gets a new id.
        let old_id = p.room().id;
        assert!(matches!(d.remove(publisher), Some(Place::Shard(0))));
        assert!(d.publisher_media("r").is_none());
        assert!(matches!(d.remove(viewer), Some(Place::Shard(1))));
        assert!(d.remove(viewer).is_none(), "a second remove finds nothing");
        assert!(d.rooms().is_empty());
        let again = d.insert(peer(&d, Role::Publisher, "r"), now).unwrap();
        let Claim::Moved(p2) = d.claim(ufrag_of(&d, again).as_bytes(), 0) else {
            panic!("pending")
        };
        assert_ne!(p2.room().id, old_id);
    }

    fn peer_without_publisher(d: &Directory) -> Peer {
        // A viewer needs a publisher's media to be built; borrow one from
        // another room so the insert into "r" is what gets refused.
        let now = Instant::now();
        let id = d
            .insert(peer(d, Role::Publisher, "elsewhere"), now)
            .unwrap();
        let mut viewer = peer(d, Role::Viewer, "elsewhere");
        d.remove(id);
        viewer.set_room(Arc::new(crate::sfu::RoomShared::new(0, "r".into())));
        viewer
    }

    fn ufrag_of(d: &Directory, id: SessionId) -> String {
        d.inner.lock().sessions.get(&id).unwrap().ufrag.clone()
    }

    #[test]
    fn claims_move_a_peer_once_and_unclaim_gives_it_back() {
        let d = Directory::new();
        let now = Instant::now();
        let id = d.insert(peer(&d, Role::Publisher, "c"), now).unwrap();
        let ufrag = ufrag_of(&d, id);
        assert!(matches!(d.claim(b"unknownufrag0000", 0), Claim::Unknown));
        let Claim::Moved(claimed) = d.claim(ufrag.as_bytes(), 1) else {
            panic!("pending")
        };
        assert!(matches!(d.claim(ufrag.as_bytes(), 0), Claim::OnShard(1)));
        // Only the claiming shard can give it back.
        let claimed = d.unclaim(claimed, 0).expect("shard 0 never claimed it");
        assert!(d.unclaim(claimed, 1).is_none());
        assert!(matches!(d.claim(ufrag.as_bytes(), 0), Claim::Moved(_)));
        // A session that ended meanwhile is not resurrected.
        let Claim::OnShard(0) = d.claim(ufrag.as_bytes(), 1) else {
            panic!("placed")
        };
        d.remove(id);
        let gone = peer(&d, Role::Publisher, "c2");
        assert!(d.unclaim(Box::new(gone), 0).is_some());
    }

    #[test]
    fn the_session_limit_refuses_inserts_until_one_ends() {
        let d = Directory::with_max_sessions(2);
        let now = Instant::now();
        let a = d.insert(peer(&d, Role::Publisher, "a"), now).unwrap();
        assert!(!d.is_full());
        d.insert(peer(&d, Role::Publisher, "b"), now).unwrap();
        assert!(d.is_full());
        assert_eq!(
            d.insert(peer(&d, Role::Publisher, "c"), now),
            Err(InsertError::Full(2))
        );
        assert!(
            d.rooms().iter().all(|r| r.name != "c"),
            "no room left behind"
        );
        d.remove(a);
        assert!(d.insert(peer(&d, Role::Publisher, "c"), now).is_ok());
        assert_eq!(d.max_sessions(), 2);
    }

    #[test]
    fn a_pending_peer_is_patched_under_the_lock_and_its_new_ufrag_indexed() {
        use crate::sfu::{IfMatch, PatchOutcome};
        use crate::wire::SdpFrag;

        let d = Directory::new();
        let now = Instant::now();
        let id = d.insert(peer(&d, Role::Publisher, "p"), now).unwrap();
        assert_eq!(
            d.session_info(id),
            Some(SessionInfo {
                room: "p".into(),
                role: Role::Publisher
            })
        );
        let old = ufrag_of(&d, id);
        let frag = |text: &str, if_match: IfMatch| {
            IcePatch::from_frag(&SdpFrag::parse(text).unwrap(), if_match)
        };
        // Candidates only, stale ETag: refused, nothing changes.
        let trickle = "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n";
        let stale = IfMatch::parse("\"nope\"").unwrap();
        assert!(matches!(
            d.patch(id, now, frag(trickle, stale)),
            PatchRoute::Done(Err(PatchError::PreconditionFailed { .. }))
        ));
        let current = IfMatch::parse(&format!("\"{old}\"")).unwrap();
        assert!(matches!(
            d.patch(id, now, frag(trickle, current)),
            PatchRoute::Done(Ok(PatchOutcome::Trickled {
                added: 1,
                skipped: 0
            }))
        ));
        assert_eq!(ufrag_of(&d, id), old);
        // A restart: new ufrag, indexed; the old one finds nothing.
        let restart = "a=ice-ufrag:newU\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
        let PatchRoute::Done(Ok(PatchOutcome::Restarted { ufrag, etag, .. })) =
            d.patch(id, now, frag(restart, IfMatch::Any))
        else {
            panic!("restarted")
        };
        assert_ne!(ufrag, old);
        assert_eq!(etag, format!("\"{ufrag}\""));
        assert_eq!(ufrag_of(&d, id), ufrag);
        assert!(matches!(d.claim(old.as_bytes(), 0), Claim::Unknown));
        let Claim::Moved(p) = d.claim(ufrag.as_bytes(), 0) else {
            panic!("found by its new ufrag")
        };
        assert_eq!(p.ufrag(), ufrag);
        // Placed now: the shard's business.
        assert!(matches!(
            d.patch(id, now, frag(trickle, IfMatch::Any)),
            PatchRoute::OnShard(0)
        ));
        assert!(d.reindex_ufrag(id, "ShardUfrag000000"));
        assert!(matches!(d.claim(b"ShardUfrag000000", 1), Claim::OnShard(0)));
        assert!(matches!(d.claim(ufrag.as_bytes(), 1), Claim::Unknown));
        d.remove(id);
        assert!(!d.reindex_ufrag(id, "x"));
        assert!(matches!(
            d.patch(id, now, frag(trickle, IfMatch::Any)),
            PatchRoute::Unknown
        ));
    }

    #[test]
    fn only_old_pending_sessions_expire() {
        let d = Directory::new();
        let t0 = Instant::now();
        let old = d.insert(peer(&d, Role::Publisher, "a"), t0).unwrap();
        let placed = d.insert(peer(&d, Role::Publisher, "b"), t0).unwrap();
        let young = d
            .insert(peer(&d, Role::Publisher, "c"), t0 + Duration::from_secs(10))
            .unwrap();
        let Claim::Moved(_) = d.claim(ufrag_of(&d, placed).as_bytes(), 0) else {
            panic!("pending")
        };
        assert_eq!(
            d.expire_pending(t0 + Duration::from_secs(15), Duration::from_secs(15)),
            1
        );
        assert!(d.remove(old).is_none(), "expired");
        assert!(
            d.remove(placed).is_some(),
            "placed sessions are the shard's to end"
        );
        assert!(d.remove(young).is_some(), "not old enough");
        assert!(d.rooms().is_empty());
    }

    #[test]
    fn pending_per_ip_and_room_size_limits_hold_and_free_up() {
        let d = Directory::with_limits(Limits {
            max_sessions: 0,
            max_pending: 3,
            max_per_ip: 2,
            room_size: 1,
        });
        let now = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = d
            .insert_from(peer(&d, Role::Publisher, "r"), now, Some(a))
            .unwrap();
        let _v1 = d
            .insert_from(peer(&d, Role::Viewer, "r"), now, Some(b))
            .unwrap();
        assert_eq!(
            d.insert_from(peer(&d, Role::Viewer, "r"), now, Some(b)),
            Err(InsertError::RoomFull("r".into(), 1))
        );
        let _p2 = d
            .insert_from(peer(&d, Role::Publisher, "s"), now, Some(a))
            .unwrap();
        assert_eq!(d.precheck(Some(a)), Err(InsertError::TooManyPending(3)));
        assert_eq!(d.pending_count(), 3);
        // Claiming one frees a pending slot; then the per-IP limit bites.
        let Claim::Moved(_) = d.claim(ufrag_of(&d, p1).as_bytes(), 0) else {
            panic!("pending")
        };
        assert_eq!(d.pending_count(), 2);
        assert_eq!(
            d.insert_from(peer(&d, Role::Publisher, "t"), now, Some(a)),
            Err(InsertError::TooManyFromIp(2))
        );
        assert!(d.precheck(Some([10, 0, 0, 3].into())).is_ok());
        assert!(d.precheck(None).is_ok());
        d.remove(p1);
        assert_eq!(d.pending_count(), 2, "a placed session was not pending");
        let p3 = d
            .insert_from(peer(&d, Role::Publisher, "t"), now, Some(a))
            .unwrap();
        assert_eq!(d.pending_count(), 3);
        assert_eq!(d.expire_pending(now, Duration::ZERO), 3);
        assert_eq!(d.pending_count(), 0);
        assert!(d.remove(p3).is_none());
        assert!(d.rooms().is_empty());
        assert!(
            d.inner.lock().per_ip.is_empty(),
            "per-IP counts return to 0"
        );
    }
}
