//! The state behind [`super`]: one participant (its info, grants,
//! transports, wishes and event queue) and the functions that work on the
//! directory's state under its lock — room broadcasts, snapshots, what a
//! participant should receive, offers as events, leaving.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::super::{Inner, Place, RoomEntry, recording};
use super::{Grants, MAX_QUEUED_EVENTS, QueuedEvent};
use crate::sfu::{PublishedMedia, PublishedTrack, ServerOffer, SessionId, Source, TrackId};

#[derive(Debug)]
pub(in crate::directory) struct Participant {
    pub(super) id: String,
    pub(super) room: String,
    pub(super) info: Value,
    pub(super) grants: Grants,
    pub(super) publish: Option<(SessionId, Arc<PublishedMedia>)>,
    pub(super) subscribe: Option<SessionId>,
    /// Sources not wanted, by participant id (default: everything).
    pub(super) unwanted: HashMap<String, Vec<Source>>,
    pub(super) next_event: u64,
    pub(super) events: VecDeque<QueuedEvent>,
    pub(super) notify: Arc<Notify>,
    /// Bumped when an event stream opens: an older stream sees it and ends.
    pub(super) stream: u64,
    /// Whether stream number `stream` is open.
    pub(super) streaming: bool,
    /// Since when it has had neither an event stream nor a transport.
    pub(super) idle_since: Option<Instant>,
    /// A WHIP publisher's: it leaves when its publish transport ends.
    pub(super) ephemeral: bool,
    pub(super) admission: Admission,
}

/// Where a joiner stands in a room with approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A member of the room.
    Admitted,
    /// Waiting for an owner since then.
    Waiting(Instant),
    /// Refused (by an owner, or nobody answered in time), and why.
    Rejected(String),
}

impl Participant {
    pub(super) fn new(
        id: String,
        room: String,
        info: Value,
        grants: Grants,
        now: Option<Instant>,
    ) -> Self {
        Self {
            id,
            room,
            info,
            grants,
            publish: None,
            subscribe: None,
            unwanted: HashMap::new(),
            next_event: 0,
            events: VecDeque::new(),
            notify: Arc::new(Notify::new()),
            stream: 0,
            streaming: false,
            idle_since: now,
            ephemeral: false,
            admission: Admission::Admitted,
        }
    }

    pub(super) fn push(&mut self, name: &'static str, data: &Value) {
        self.next_event += 1;
        self.events.push_back(QueuedEvent {
            id: self.next_event,
            name,
            data: data.to_string().into(),
        });
        while self.events.len() > MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.notify.notify_one();
    }

    pub(super) fn public(&self) -> Value {
        json!({ "id": self.id, "info": self.info, "tracks": self.tracks() })
    }

    pub(super) fn tracks(&self) -> Vec<Value> {
        self.publish.as_ref().map_or_else(Vec::new, |(_, media)| {
            media.tracks.iter().map(|t| track_json(t)).collect()
        })
    }

    pub(super) fn wants(&self, from: &str, source: Source) -> bool {
        self.grants.subscribe
            && self
                .unwanted
                .get(from)
                .is_none_or(|sources| !sources.contains(&source))
    }
}

pub(super) fn track_json(t: &PublishedTrack) -> Value {
    json!({ "id": t.id.get(), "source": t.source, "kind": format!("{:?}", t.kind).to_lowercase() })
}

pub(super) fn inner_has_id(
    participants: &HashMap<SessionId, Participant>,
    handle: SessionId,
    id: &str,
) -> bool {
    participants.get(&handle).is_some_and(|p| p.id == id)
}

pub(super) fn member_by_id(inner: &Inner, room: &str, id: &str) -> Option<SessionId> {
    let entry = inner.rooms.get(room)?;
    entry
        .members
        .iter()
        .copied()
        .find(|h| inner_has_id(&inner.participants, *h, id))
}

pub(super) fn members_except(inner: &Inner, room: &str, except: SessionId) -> Vec<SessionId> {
    inner
        .rooms
        .get(room)
        .map_or_else(Vec::new, |e: &RoomEntry| {
            e.members.iter().copied().filter(|h| *h != except).collect()
        })
}

/// `event` to every participant of `room` but `except`.
pub(super) fn broadcast_locked(
    inner: &mut Inner,
    room: &str,
    except: Option<SessionId>,
    name: &'static str,
    event: &Value,
) {
    if let Some(hook) = crate::directory::hooks::hook_name(name) {
        inner.hook(hook, room, event.clone());
    }
    let members = inner
        .rooms
        .get(room)
        .map(|e| e.members.clone())
        .unwrap_or_default();
    for h in members.into_iter().filter(|h| Some(*h) != except) {
        if let Some(p) = inner.participants.get_mut(&h) {
            p.push(name, event);
        }
    }
}

pub(super) fn announce_tracks(
    inner: &mut Inner,
    room: &str,
    handle: SessionId,
    media: &PublishedMedia,
    name: &'static str,
) {
    let Some(id) = inner.participants.get(&handle).map(|p| p.id.clone()) else {
        return;
    };
    match name {
        "trackPublished" => recording::published(inner, room, &id, media),
        "trackUnpublished" => recording::unpublished(inner, media),
        _ => {}
    }
    for t in &media.tracks {
        let event = json!({ "participant": id, "track": track_json(t) });
        broadcast_locked(inner, room, Some(handle), name, &event);
    }
}

pub(super) fn snapshot_locked(inner: &Inner, handle: SessionId) -> Value {
    let Some(me) = inner.participants.get(&handle) else {
        return Value::Null;
    };
    if me.admission != Admission::Admitted {
        let admission = match &me.admission {
            Admission::Rejected(reason) => json!({ "rejected": reason }),
            _ => json!("waiting"),
        };
        return json!({ "room": me.room, "you": me.public(), "participants": [], "admission": admission });
    }
    let others: Vec<Value> = inner
        .rooms
        .get(&me.room)
        .map(|e| e.members.clone())
        .unwrap_or_default()
        .iter()
        .filter(|h| **h != handle)
        .filter_map(|h| inner.participants.get(h))
        .map(Participant::public)
        .collect();
    json!({ "room": me.room, "you": me.public(), "participants": others })
}

pub(super) fn wanted_locked(inner: &Inner, handle: SessionId) -> Vec<Arc<PublishedTrack>> {
    let Some(me) = inner.participants.get(&handle) else {
        return Vec::new();
    };
    let Some(entry) = inner.rooms.get(&me.room) else {
        return Vec::new();
    };
    let mut tracks = Vec::new();
    for other in entry.members.iter().filter(|h| **h != handle) {
        let Some(p) = inner.participants.get(other) else {
            continue;
        };
        let Some((_, media)) = &p.publish else {
            continue;
        };
        tracks.extend(
            media
                .tracks
                .iter()
                .filter(|t| me.wants(&p.id, t.source))
                .cloned(),
        );
    }
    tracks
}

pub(super) fn post_offer_locked(inner: &mut Inner, session: SessionId, offer: &ServerOffer) {
    let Some(handle) = inner.sessions.get(&session).and_then(|s| s.participant) else {
        return;
    };
    let event = offer_json(inner, offer);
    if let Some(p) = inner.participants.get_mut(&handle) {
        p.push("offer", &event);
    }
}

/// An offer as events and the subscribe reply show it: its revision, SDP,
/// and for each mid the participant and track it carries.
pub(super) fn offer_json(inner: &Inner, offer: &ServerOffer) -> Value {
    let owner = |id: TrackId| -> Option<Value> {
        inner.participants.values().find_map(|p| {
            let (_, media) = p.publish.as_ref()?;
            let t = media.tracks.iter().find(|t| t.id == id)?;
            Some(json!({ "participant": p.id, "track": track_json(t) }))
        })
    };
    let tracks: Vec<Value> = offer
        .mids
        .iter()
        .map(|(mid, id)| {
            let mut v = owner(*id).unwrap_or_else(|| json!({ "track": { "id": id.get() } }));
            v["mid"] = json!(mid);
            v
        })
        .collect();
    json!({ "revision": offer.revision, "sdp": offer.sdp, "tracks": tracks })
}

/// Removes transport `session`: a pending one is dropped here; a placed
/// one is returned for the caller to close on its shard.
pub(super) fn drop_transport(inner: &mut Inner, session: SessionId) -> Option<(usize, SessionId)> {
    match super::super::remove_locked(inner, session)? {
        Place::Shard(shard) => Some((shard, session)),
        Place::Pending(_) => None,
    }
}

/// Removes participant `handle` (its transports too), tells the room.
pub(super) fn leave_locked(
    inner: &mut Inner,
    handle: SessionId,
    reason: &str,
) -> Vec<(usize, SessionId)> {
    let Some(mut p) = inner.participants.remove(&handle) else {
        return Vec::new();
    };
    inner.dirty.remove(&handle);
    let mut closing = Vec::new();
    let published = p.publish.take();
    // The room's participants learn it from `participantLeft`; a webhook
    // hears of each track.
    for t in published.iter().flat_map(|(_, media)| media.tracks.iter()) {
        let event = json!({ "participant": p.id, "track": track_json(t) });
        inner.hook("track_unpublished", &p.room, event);
    }
    if let Some((_, media)) = &published {
        recording::unpublished(inner, media);
    }
    let transports = [published.map(|(id, _)| id), p.subscribe.take()];
    for session in transports.into_iter().flatten() {
        closing.extend(drop_transport(inner, session));
    }
    if let Some(entry) = inner.rooms.get_mut(&p.room) {
        entry.members.retain(|h| *h != handle);
    }
    let event = json!({ "id": p.id, "reason": reason });
    broadcast_locked(inner, &p.room, None, "participantLeft", &event);
    // Its tracks are gone from what everyone else receives.
    let others: Vec<SessionId> = inner
        .rooms
        .get(&p.room)
        .map(|e| e.members.clone())
        .unwrap_or_default();
    inner.dirty.extend(others);
    if let Some(entry) = inner.rooms.get_mut(&p.room) {
        entry.waiting.retain(|h| *h != handle);
        if entry.is_unused() {
            let room = p.room.clone();
            inner.remove_room(&room);
        }
    }
    p.notify.notify_waiters();
    choose_main(inner, &p.room);
    closing
}

/// A transport of participant `handle` ended (its session was removed):
/// a publish transport's tracks are unpublished.
pub(in crate::directory) fn transport_gone(
    inner: &mut Inner,
    handle: SessionId,
    session: SessionId,
) {
    let Some(p) = inner.participants.get_mut(&handle) else {
        return;
    };
    if p.subscribe == Some(session) {
        p.subscribe = None;
        return;
    }
    let Some((_, media)) = p.publish.take_if(|(id, _)| *id == session) else {
        return;
    };
    let (room, ephemeral) = (p.room.clone(), p.ephemeral);
    announce_tracks(inner, &room, handle, &media, "trackUnpublished");
    let others = members_except(inner, &room, handle);
    inner.dirty.extend(others);
    if ephemeral {
        leave_locked(inner, handle, "left");
    }
    choose_main(inner, &room);
}

/// Room `room`'s publishing participants: public id and media.
pub(in crate::directory) fn publishing(
    inner: &Inner,
    room: &str,
) -> Vec<(String, Arc<PublishedMedia>)> {
    let Some(entry) = inner.rooms.get(room) else {
        return Vec::new();
    };
    (entry.members.iter())
        .filter_map(|h| inner.participants.get(h))
        .filter_map(|p| Some((p.id.clone(), p.publish.as_ref()?.1.clone())))
        .collect()
}

/// Makes the room's main feed (what WHEP viewers get) its WHIP publisher,
/// else the participant that published most recently, else nothing.
pub(in crate::directory) fn choose_main(inner: &mut Inner, room: &str) {
    let Some(entry) = inner.rooms.get(room) else {
        return;
    };
    let publishing = || {
        entry
            .members
            .iter()
            .filter_map(|h| inner.participants.get(h)?.publish.as_ref())
            .map(|(_, media)| media)
    };
    let main = entry
        .publisher
        .as_ref()
        .map(|(_, m)| m.clone())
        .or_else(|| {
            // The one that spoke last, while it still publishes.
            publishing()
                .find(|m| Some(m.publisher) == entry.speaker)
                .cloned()
        })
        .or_else(|| publishing().max_by_key(|m| m.publisher).cloned());
    entry.shared.set_main(main);
}

/// Once a second: in each room without a WHIP publisher, the participant
/// that spoke in the last interval (the most voiced packets, RFC 6464
/// levels) becomes the main one, unless the main one spoke too.
pub(in crate::directory) fn pick_speakers(inner: &mut Inner) {
    let rooms: Vec<String> = inner
        .rooms
        .iter()
        .filter(|(_, r)| r.publisher.is_none() && r.members.len() > 1)
        .map(|(name, _)| name.clone())
        .collect();
    for room in rooms {
        let Some(entry) = inner.rooms.get(&room) else {
            continue;
        };
        let mut spoke: Vec<(u64, u64)> = Vec::new();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for h in &entry.members {
            let Some((_, media)) = inner.participants.get(h).and_then(|p| p.publish.as_ref())
            else {
                continue;
            };
            let count = media.voiced.load(std::sync::atomic::Ordering::Relaxed);
            let before = entry
                .voiced
                .iter()
                .find(|(p, _)| *p == media.publisher)
                .map_or(count, |(_, c)| *c);
            seen.push((media.publisher, count));
            if count > before {
                spoke.push((media.publisher, count - before));
            }
        }
        let main = entry.shared.main_media().map(|m| m.publisher);
        let main_spoke = spoke.iter().any(|(p, _)| Some(*p) == main);
        let loudest = spoke.iter().max_by_key(|(_, n)| *n).map(|(p, _)| *p);
        let Some(entry) = inner.rooms.get_mut(&room) else {
            continue;
        };
        entry.voiced = seen;
        if !main_spoke && let Some(loudest) = loudest {
            entry.speaker = Some(loudest);
            choose_main(inner, &room);
        }
    }
}

/// WHIP session `session` (just inserted) joins its room as a participant
/// that only publishes; it leaves when the session ends.
pub(in crate::directory) fn whip_joined(inner: &mut Inner, room: &str, session: SessionId) {
    let media = inner
        .rooms
        .get(room)
        .and_then(|r| r.publisher.as_ref())
        .filter(|(id, _)| *id == session)
        .map(|(_, m)| m.clone());
    let Some(media) = media else {
        return;
    };
    let id = format!("whip-{}", media.publisher);
    let mut participant = Participant::new(
        id,
        room.to_owned(),
        json!({ "name": "WHIP", "whip": true }),
        Grants {
            publish: Source::ALL.to_vec(),
            subscribe: false,
            owner: false,
        },
        None,
    );
    participant.publish = Some((session, media.clone()));
    participant.ephemeral = true;
    let joined = json!({ "participant": participant.public() });
    // The session is its own handle: it never appears in a URL.
    inner.participants.insert(session, participant);
    if let Some(entry) = inner.rooms.get_mut(room) {
        entry.members.push(session);
    }
    broadcast_locked(inner, room, Some(session), "participantJoined", &joined);
    // Its tracks come with the participant for the room; one event each
    // for a webhook.
    let id = joined["participant"]["id"].clone();
    for t in &media.tracks {
        let event = json!({ "participant": id, "track": track_json(t) });
        inner.hook("track_published", room, event);
    }
    if let Some(id) = id.as_str() {
        recording::published(inner, room, id, &media);
    }
    let others = members_except(inner, room, session);
    inner.dirty.extend(others);
    choose_main(inner, room);
}

/// Participant `handle`'s publish transport `session` now sends `media`:
/// announces the tracks it added and dropped, re-offers the others.
pub(super) fn republished_locked(
    inner: &mut Inner,
    handle: SessionId,
    session: SessionId,
    media: Arc<PublishedMedia>,
) {
    let Some(p) = inner.participants.get_mut(&handle) else {
        return;
    };
    let Some((current, old)) = p.publish.clone() else {
        return;
    };
    if current != session {
        return; // replaced meanwhile
    }
    p.publish = Some((session, media.clone()));
    let room = p.room.clone();
    let subset = |from: &PublishedMedia, not_in: &PublishedMedia| {
        let tracks = from
            .tracks
            .iter()
            .filter(|t| not_in.tracks.iter().all(|o| o.id != t.id))
            .cloned()
            .collect();
        PublishedMedia::new(from.publisher, tracks)
    };
    let (dropped, added) = (subset(&old, &media), subset(&media, &old));
    announce_tracks(inner, &room, handle, &dropped, "trackUnpublished");
    announce_tracks(inner, &room, handle, &added, "trackPublished");
    let others = members_except(inner, &room, handle);
    inner.dirty.extend(others);
    choose_main(inner, &room);
}
