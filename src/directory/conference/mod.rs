//! Conference participants, kept in the directory beside sessions (one lock,
//! so a transport's end and its participant's state never disagree).
//!
//! A participant is known by two ids: its public `id` (what others see in
//! events; from the token's `sub`, else random) and its `handle`, a 128-bit
//! capability that names its URL (`/v1/participants/{handle}`), as a
//! session id names a WHIP session's. It owns up to two transports (a
//! publish and a subscribe session), its info, its grants, what it wants to
//! receive of each other participant, and its event queue.
//!
//! Every change that alters what someone should receive marks that
//! participant *dirty*; [`Directory::take_resyncs`] turns dirty participants
//! into the track sets their subscribe transports must send (applied here
//! to a pending transport, else sent to its shard by the caller). Offers a
//! transport makes come back through [`Directory::post_offer`] as `offer`
//! events.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::Notify;

mod admin;
mod approval;
mod state;

use approval::{reject_locked, tell_owners};
pub use state::Admission;
use state::*;
pub(super) use state::{Participant, choose_main, publishing, transport_gone, whip_joined};

use super::{Directory, Inner, InsertError, Place, insert_locked};
use crate::sfu::{AnswerError, Outputs, Peer, PublishedTrack, ServerOffer, SessionId, Source};

/// Joiners that may wait for approval in one room at once.
pub const MAX_WAITING: usize = 32;

/// How long a joiner waits for an owner before it is refused, unless
/// `--approval-timeout` says otherwise.
pub const APPROVAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Events a participant's queue keeps for resumption (`Last-Event-ID`);
/// a client further behind gets a fresh snapshot.
pub const MAX_QUEUED_EVENTS: usize = 512;

/// What a participant may do, from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The sources it may publish.
    pub publish: Vec<Source>,
    pub subscribe: bool,
    pub owner: bool,
}

impl Grants {
    /// Everything (no auth, or a token that grants all).
    pub fn all() -> Self {
        Self {
            publish: Source::ALL.to_vec(),
            subscribe: true,
            owner: true,
        }
    }
}

/// One event in a participant's queue.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub id: u64,
    pub name: &'static str,
    pub data: Arc<str>,
}

/// Why a conference request was refused (the HTTP layer maps each).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConferenceError {
    #[error("no such participant")]
    UnknownParticipant,
    #[error("no participant {0:?} in this room")]
    UnknownTarget(String),
    #[error("room {0:?} already has {1} participants, its limit")]
    RoomFull(String, usize),
    #[error("the token does not allow to publish {0}")]
    NotAllowed(String),
    #[error("the token does not allow to subscribe")]
    NoSubscribe,
    #[error("room {0:?} has {1} joiners waiting for approval, its limit")]
    TooManyWaiting(String, usize),
    #[error("only a participant with the owner grant may do this")]
    NotOwner,
    #[error("no joiner {0:?} waits for approval")]
    NotWaiting(String),
    #[error("waiting for an owner's approval")]
    Waiting,
    #[error("the join was rejected: {0}")]
    Rejected(String),
    #[error("no room {0:?}")]
    UnknownRoom(String),
    #[error("room {0:?} exists already")]
    RoomExists(String),
    #[error(transparent)]
    Insert(#[from] InsertError),
}

/// What a join returns.
#[derive(Debug, Clone)]
pub struct Joined {
    pub handle: SessionId,
    pub id: String,
    /// It waits for an owner's approval (the room has approval on).
    pub waiting: bool,
    /// The room as the joiner first sees it.
    pub snapshot: Value,
}

/// A subscribe transport that must be told to send `tracks`, on `shard`.
#[derive(Debug)]
pub struct Resync {
    pub session: SessionId,
    pub shard: usize,
    pub tracks: Vec<Arc<PublishedTrack>>,
}

impl Directory {
    /// Adds a participant to room `room` (created if new). A participant
    /// already there with the same `id` is replaced (its transports close,
    /// others see it leave and join again). `handle` must be fresh.
    pub fn join(
        &self,
        room: &str,
        id: String,
        handle: SessionId,
        info: Value,
        grants: Grants,
        now: Instant,
    ) -> Result<(Joined, Vec<(usize, SessionId)>), ConferenceError> {
        self.check_draining()?;
        let mut inner = self.inner.lock();
        let room_size = self.limits.room_size;
        self.room_entry(&mut inner, room);
        let replaced = member_by_id(&inner, room, &id);
        let entry = self.room_entry(&mut inner, room);
        let (size, approval) = match &entry.config {
            Some(c) if c.size > 0 => (c.size, c.approval),
            Some(c) => (room_size, c.approval),
            None => (room_size, false),
        };
        let wait = approval && !grants.owner;
        let refusal = if replaced.is_none() && size > 0 && entry.members.len() >= size {
            Some(ConferenceError::RoomFull(room.to_owned(), size))
        } else if wait && entry.waiting.len() >= MAX_WAITING {
            Some(ConferenceError::TooManyWaiting(
                room.to_owned(),
                MAX_WAITING,
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            if entry.is_unused() {
                inner.remove_room(room);
            }
            return Err(refusal);
        }
        let mut closing = Vec::new();
        if let Some(old) = replaced {
            closing = leave_locked(&mut inner, old, "replaced");
        }
        let mut participant =
            Participant::new(id.clone(), room.to_owned(), info, grants, Some(now));
        let entry = self.room_entry(&mut inner, room);
        if wait {
            participant.admission = Admission::Waiting(now);
            entry.waiting.push(handle);
            let request = json!({ "participant": participant.public() });
            inner.participants.insert(handle, participant);
            tell_owners(&mut inner, room, "joinRequest", &request);
        } else {
            entry.members.push(handle);
            let joined = json!({ "participant": participant.public() });
            inner.participants.insert(handle, participant);
            broadcast_locked(&mut inner, room, Some(handle), "participantJoined", &joined);
        }
        let snapshot = snapshot_locked(&inner, handle);
        Ok((
            Joined {
                handle,
                id,
                waiting: wait,
                snapshot,
            },
            closing,
        ))
    }

    /// The participant leaves; returns its transports placed on shards
    /// (the caller closes them there; pending ones are dropped here).
    pub fn leave(&self, handle: SessionId) -> Result<Vec<(usize, SessionId)>, ConferenceError> {
        let mut inner = self.inner.lock();
        if !inner.participants.contains_key(&handle) {
            return Err(ConferenceError::UnknownParticipant);
        }
        Ok(leave_locked(&mut inner, handle, "left"))
    }

    /// The room, public id and admission of participant `handle`.
    pub fn participant(&self, handle: SessionId) -> Option<(String, String, Admission)> {
        let inner = self.inner.lock();
        let p = inner.participants.get(&handle)?;
        Some((p.room.clone(), p.id.clone(), p.admission.clone()))
    }

    /// What participant `id` of room `room` publishes, if it does.
    pub fn participant_media(
        &self,
        room: &str,
        id: &str,
    ) -> Option<Arc<crate::sfu::PublishedMedia>> {
        let inner = self.inner.lock();
        let handle = member_by_id(&inner, room, id)?;
        inner
            .participants
            .get(&handle)?
            .publish
            .as_ref()
            .map(|(_, m)| m.clone())
    }

    /// Participants in room `room`, public view, in join order.
    pub fn participants(&self, room: &str) -> Vec<Value> {
        let inner = self.inner.lock();
        let Some(entry) = inner.rooms.get(room) else {
            return Vec::new();
        };
        entry
            .members
            .iter()
            .filter_map(|h| inner.participants.get(h))
            .map(Participant::public)
            .collect()
    }

    /// Opens the participant's event stream (a second replaces the first):
    /// its stream number, its waker and the snapshot to send first.
    pub fn open_stream(&self, handle: SessionId) -> Option<(u64, Arc<Notify>, Value, u64)> {
        let mut inner = self.inner.lock();
        let snapshot = snapshot_locked(&inner, handle);
        let p = inner.participants.get_mut(&handle)?;
        p.stream += 1;
        p.streaming = true;
        p.idle_since = None;
        // Wake the stream this one replaces, so it sees it ended.
        p.notify.notify_waiters();
        Some((p.stream, p.notify.clone(), snapshot, p.next_event))
    }

    /// Events after `after` for stream number `stream`: `None` when the
    /// participant is gone or another stream replaced this one; `Some(Err)`
    /// with a fresh snapshot (and its last id) when `after` is older than
    /// the queue keeps.
    pub fn events_after(
        &self,
        handle: SessionId,
        stream: u64,
        after: u64,
    ) -> Option<Result<Vec<QueuedEvent>, (Value, u64)>> {
        let inner = self.inner.lock();
        let p = inner.participants.get(&handle)?;
        if p.stream != stream {
            return None;
        }
        let oldest = p.events.front().map_or(p.next_event + 1, |e| e.id);
        if after + 1 < oldest && after < p.next_event {
            return Some(Err((snapshot_locked(&inner, handle), p.next_event)));
        }
        Some(Ok(p
            .events
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect()))
    }

    /// Makes the participant that spoke last each room's main one (what
    /// WHEP viewers watch), unless a WHIP publisher is; called once a second.
    pub fn pick_speakers(&self) {
        pick_speakers(&mut self.inner.lock());
    }

    /// Event stream `number` of the participant ended (its client went).
    pub fn close_stream(&self, handle: SessionId, number: u64) {
        let mut inner = self.inner.lock();
        if let Some(p) = inner.participants.get_mut(&handle)
            && p.stream == number
        {
            p.streaming = false;
        }
    }

    /// Removes participants that had no event stream and no transport for
    /// `max_idle` (their client is gone); returns their transports placed
    /// on shards, for the caller to close, and how many left.
    pub fn reap_participants(
        &self,
        now: Instant,
        max_idle: std::time::Duration,
    ) -> (Vec<(usize, SessionId)>, usize) {
        let mut inner = self.inner.lock();
        let timeout = match self.limits.approval_timeout {
            t if t.is_zero() => APPROVAL_TIMEOUT,
            t => t,
        };
        let expired: Vec<(String, SessionId)> = inner
            .participants
            .iter()
            .filter(|(_, p)| matches!(p.admission, Admission::Waiting(since) if now.duration_since(since) >= timeout))
            .map(|(h, p)| (p.room.clone(), *h))
            .collect();
        for (room, handle) in expired {
            let reason = format!("no owner answered within {} s", timeout.as_secs());
            reject_locked(&mut inner, &room, handle, &reason);
        }
        let mut gone = Vec::new();
        for (handle, p) in inner.participants.iter_mut() {
            let idle = !p.streaming && p.publish.is_none() && p.subscribe.is_none();
            match (idle, p.idle_since) {
                (false, _) => p.idle_since = None,
                (true, None) => p.idle_since = Some(now),
                (true, Some(since)) if now.duration_since(since) >= max_idle => gone.push(*handle),
                (true, Some(_)) => {}
            }
        }
        let mut closing = Vec::new();
        for handle in &gone {
            closing.extend(leave_locked(&mut inner, *handle, "gone"));
        }
        (closing, gone.len())
    }

    /// Sets the participant's info; every other participant gets an `info` event.
    pub fn set_info(&self, handle: SessionId, info: Value) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let p = inner
            .participants
            .get_mut(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?;
        p.info = info.clone();
        let (room, id) = (p.room.clone(), p.id.clone());
        let event = json!({ "participant": id, "info": info });
        broadcast_locked(&mut inner, &room, Some(handle), "info", &event);
        Ok(())
    }

    /// `payload` to every other participant as a `broadcast` event.
    pub fn broadcast(&self, handle: SessionId, payload: Value) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let p = inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?;
        let (room, from) = (p.room.clone(), p.id.clone());
        let event = json!({ "from": from, "payload": payload });
        broadcast_locked(&mut inner, &room, Some(handle), "broadcast", &event);
        Ok(())
    }

    /// `payload` to participant `to` only, as a `message` event.
    pub fn message(
        &self,
        handle: SessionId,
        to: &str,
        payload: Value,
    ) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let p = inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?;
        let (room, from) = (p.room.clone(), p.id.clone());
        let target = member_by_id(&inner, &room, to)
            .ok_or_else(|| ConferenceError::UnknownTarget(to.to_owned()))?;
        let event = json!({ "from": from, "payload": payload });
        if let Some(t) = inner.participants.get_mut(&target) {
            t.push("message", &event);
        }
        Ok(())
    }

    /// What the participant wants of `of` (a participant id): `sources`
    /// each on or off; the rest stays as it was.
    pub fn set_subscription(
        &self,
        handle: SessionId,
        of: &str,
        sources: &[(Source, bool)],
    ) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let room = inner
            .participants
            .get(&handle)
            .map(|p| p.room.clone())
            .ok_or(ConferenceError::UnknownParticipant)?;
        if member_by_id(&inner, &room, of).is_none() {
            return Err(ConferenceError::UnknownTarget(of.to_owned()));
        }
        let Some(p) = inner.participants.get_mut(&handle) else {
            return Err(ConferenceError::UnknownParticipant);
        };
        let unwanted = p.unwanted.entry(of.to_owned()).or_default();
        for (source, on) in sources {
            unwanted.retain(|s| s != source);
            if !on {
                unwanted.push(*source);
            }
        }
        self.mark_dirty_locked(&mut inner, handle);
        Ok(())
    }

    /// Attaches a publish transport (answered, not connected) to the
    /// participant, replacing any earlier one (returned if on a shard, for
    /// the caller to close). Its tracks are announced to the room.
    pub fn attach_publish(
        &self,
        handle: SessionId,
        mut peer: Peer,
        now: Instant,
        client: Option<std::net::IpAddr>,
    ) -> Result<(SessionId, Option<(usize, SessionId)>), ConferenceError> {
        let mut inner = self.inner.lock();
        self.check_totals(&inner, client)?;
        let p = inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?;
        let media = peer
            .published_media()
            .cloned()
            .ok_or(ConferenceError::NotAllowed("without media".into()))?;
        if let Some(t) = media
            .tracks
            .iter()
            .find(|t| !p.grants.publish.contains(&t.source))
        {
            return Err(ConferenceError::NotAllowed(t.source.name().into()));
        }
        let room = p.room.clone();
        let old = inner
            .participants
            .get_mut(&handle)
            .and_then(|p| p.publish.take());
        let mut closing = None;
        if let Some((old_id, old_media)) = old {
            closing = drop_transport(&mut inner, old_id);
            announce_tracks(&mut inner, &room, handle, &old_media, "trackUnpublished");
        }
        let entry = self.room_entry(&mut inner, &room);
        peer.set_room(entry.shared.clone());
        entry.sessions += 1;
        let id = insert_locked(&mut inner, peer, now, client, Some(handle));
        if let Some(p) = inner.participants.get_mut(&handle) {
            p.publish = Some((id, media.clone()));
        }
        announce_tracks(&mut inner, &room, handle, &media, "trackPublished");
        choose_main(&mut inner, &room);
        let others = members_except(&inner, &room, handle);
        for other in others {
            self.mark_dirty_locked(&mut inner, other);
        }
        Ok((id, closing))
    }

    /// What participant `handle` should receive now.
    pub fn wanted_tracks(
        &self,
        handle: SessionId,
    ) -> Result<Vec<Arc<PublishedTrack>>, ConferenceError> {
        let inner = self.inner.lock();
        if !inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?
            .grants
            .subscribe
        {
            return Err(ConferenceError::NoSubscribe);
        }
        Ok(wanted_locked(&inner, handle))
    }

    /// Attaches a subscribe transport (its first offer made, not answered),
    /// replacing any earlier one (returned if on a shard, for the caller to
    /// close).
    pub fn attach_subscribe(
        &self,
        handle: SessionId,
        mut peer: Peer,
        now: Instant,
        client: Option<std::net::IpAddr>,
    ) -> Result<(SessionId, Option<(usize, SessionId)>), ConferenceError> {
        let mut inner = self.inner.lock();
        self.check_totals(&inner, client)?;
        let room = inner
            .participants
            .get(&handle)
            .map(|p| p.room.clone())
            .ok_or(ConferenceError::UnknownParticipant)?;
        let old = inner
            .participants
            .get_mut(&handle)
            .and_then(|p| p.subscribe.take());
        let closing = old.and_then(|old| drop_transport(&mut inner, old));
        let entry = self.room_entry(&mut inner, &room);
        peer.set_room(entry.shared.clone());
        entry.sessions += 1;
        let id = insert_locked(&mut inner, peer, now, client, Some(handle));
        if let Some(p) = inner.participants.get_mut(&handle) {
            p.subscribe = Some(id);
        }
        // Anything published since the first offer was made.
        self.mark_dirty_locked(&mut inner, handle);
        Ok((id, closing))
    }

    /// The participant's subscribe transport: its session, and its shard
    /// if placed. A pending one takes `answer` here, under the lock.
    pub fn answer(
        &self,
        handle: SessionId,
        revision: u32,
        sdp: &str,
        now: Instant,
    ) -> Result<AnswerRoute, ConferenceError> {
        let mut inner = self.inner.lock();
        let session = inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?
            .subscribe;
        let Some(session) = session else {
            return Ok(AnswerRoute::Done(Err(AnswerError::NotSubscriber)));
        };
        let Some(entry) = inner.sessions.get_mut(&session) else {
            return Ok(AnswerRoute::Done(Err(AnswerError::Closed)));
        };
        let peer = match &mut entry.place {
            Place::Shard(shard) => return Ok(AnswerRoute::OnShard(*shard, session)),
            Place::Pending(peer) => peer,
        };
        let mut out = Outputs::default();
        let result = peer.accept_subscribe_answer(now, revision, sdp, &mut out);
        if let Ok(Some(offer)) = &result {
            post_offer_locked(&mut inner, session, offer);
        }
        Ok(AnswerRoute::Done(result.map(|_| ())))
    }

    /// A new offer for the participant's publish transport: applied here
    /// if the transport is pending (and the room told), else where it is.
    pub fn republish(
        &self,
        handle: SessionId,
        offer: &str,
        sources: &[(Source, String)],
        now: Instant,
    ) -> Result<RepublishRoute, ConferenceError> {
        let mut inner = self.inner.lock();
        let p = inner
            .participants
            .get(&handle)
            .ok_or(ConferenceError::UnknownParticipant)?;
        let allowed = p.grants.publish.clone();
        let Some((session, _)) = p.publish.clone() else {
            return Ok(RepublishRoute::NoTransport);
        };
        let Some(entry) = inner.sessions.get_mut(&session) else {
            return Ok(RepublishRoute::NoTransport);
        };
        let peer = match &mut entry.place {
            Place::Shard(shard) => {
                return Ok(RepublishRoute::OnShard {
                    shard: *shard,
                    session,
                    allowed,
                });
            }
            Place::Pending(peer) => peer,
        };
        let mut out = Outputs::default();
        let answer = peer.renegotiate_publish(now, offer, sources, &allowed, &mut out);
        let media = peer.published_media().cloned();
        if let (Ok(_), Some(media)) = (&answer, media) {
            republished_locked(&mut inner, handle, session, media);
        }
        Ok(RepublishRoute::Done(answer))
    }

    /// Publish transport `session` of participant `handle` now sends
    /// `media` (its shard applied a new offer): the room is told what was
    /// added and dropped.
    pub fn republished(
        &self,
        handle: SessionId,
        session: SessionId,
        media: Arc<crate::sfu::PublishedMedia>,
    ) {
        republished_locked(&mut self.inner.lock(), handle, session, media);
    }

    /// `offer` as JSON: revision, SDP, and who each mid carries.
    pub fn offer_json(&self, offer: &ServerOffer) -> Value {
        offer_json(&self.inner.lock(), offer)
    }

    /// Queues `offer`, made by subscribe transport `session`, as an
    /// `offer` event for its participant.
    pub fn post_offer(&self, session: SessionId, offer: &ServerOffer) {
        post_offer_locked(&mut self.inner.lock(), session, offer);
    }

    /// Whether some participant's subscribe transport must be told anew.
    pub fn has_resyncs(&self) -> bool {
        !self.inner.lock().dirty.is_empty()
    }

    /// Takes every dirty participant: a pending subscribe transport is
    /// told here (its offer queued as an event); placed ones are returned
    /// for the caller to send to their shards.
    pub fn take_resyncs(&self, now: Instant) -> Vec<Resync> {
        let mut inner = self.inner.lock();
        let dirty: Vec<SessionId> = std::mem::take(&mut inner.dirty).into_iter().collect();
        let mut out = Vec::new();
        for handle in dirty {
            let Some(session) = inner.participants.get(&handle).and_then(|p| p.subscribe) else {
                continue;
            };
            let tracks = wanted_locked(&inner, handle);
            let Some(entry) = inner.sessions.get_mut(&session) else {
                continue;
            };
            match &mut entry.place {
                Place::Shard(shard) => out.push(Resync {
                    session,
                    shard: *shard,
                    tracks,
                }),
                Place::Pending(peer) => {
                    let mut outputs = Outputs::default();
                    if let Some(offer) = peer.desire(now, tracks, &mut outputs) {
                        post_offer_locked(&mut inner, session, &offer);
                    }
                }
            }
        }
        out
    }

    /// Marks the participant dirty again (its resync could not be sent).
    pub fn mark_dirty(&self, handle_or_session: SessionId) {
        let mut inner = self.inner.lock();
        let handle = inner
            .sessions
            .get(&handle_or_session)
            .and_then(|s| s.participant)
            .unwrap_or(handle_or_session);
        self.mark_dirty_locked(&mut inner, handle);
    }

    fn mark_dirty_locked(&self, inner: &mut Inner, handle: SessionId) {
        if inner.participants.contains_key(&handle) {
            inner.dirty.insert(handle);
            self.resync.notify_one();
        }
    }

    /// Waits for [`Directory::take_resyncs`] to have work.
    pub fn resync_waker(&self) -> Arc<Notify> {
        self.resync.clone()
    }
}

/// Where a publish transport's new offer went.
#[derive(Debug)]
pub enum RepublishRoute {
    /// Applied to a pending transport here: the answer, or why not.
    Done(Result<String, crate::sfu::OfferError>),
    /// The transport lives on this shard; `allowed` is the token's grant.
    OnShard {
        shard: usize,
        session: SessionId,
        allowed: Vec<Source>,
    },
    /// The participant has no publish transport (POST one first).
    NoTransport,
}

/// Where an answer went.
#[derive(Debug)]
pub enum AnswerRoute {
    /// Applied to a pending transport here.
    Done(Result<(), AnswerError>),
    /// The transport lives on this shard.
    OnShard(usize, SessionId),
}
