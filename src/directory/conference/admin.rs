//! What the admin API asks of the directory: create a room with a size and
//! an approval flag, list rooms and one room's participants (with their
//! tracks and bytes), disconnect a participant, close a room (everyone in
//! it leaves and every session of it ends).

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::super::{Directory, RoomConfig, RoomEntry};
use super::state::leave_locked;
use super::{ConferenceError, member_by_id};
use crate::sfu::SessionId;

impl Directory {
    /// Creates room `name` with `config`; it stays until it is closed.
    pub fn create_room(&self, name: &str, config: RoomConfig) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        if inner.rooms.get(name).is_some_and(|r| r.config.is_some()) {
            return Err(ConferenceError::RoomExists(name.to_owned()));
        }
        self.room_entry(&mut inner, name).config = Some(config);
        Ok(())
    }

    /// Every room, sorted by name: its counts, config and counters.
    pub fn list_rooms(&self) -> Vec<Value> {
        let inner = self.inner.lock();
        let mut rooms: Vec<(&String, &RoomEntry)> = inner.rooms.iter().collect();
        rooms.sort_by(|a, b| a.0.cmp(b.0));
        rooms
            .into_iter()
            .map(|(name, r)| room_summary(name, r))
            .collect()
    }

    /// One room with its participants and their tracks.
    pub fn room_detail(&self, name: &str) -> Option<Value> {
        let inner = self.inner.lock();
        let entry = inner.rooms.get(name)?;
        let mut detail = room_summary(name, entry);
        let people = |handles: &[SessionId]| -> Vec<Value> {
            handles
                .iter()
                .filter_map(|h| inner.participants.get(h))
                .map(|p| {
                    let tracks: Vec<Value> = p.publish.as_ref().map_or_else(Vec::new, |(_, m)| {
                        m.tracks
                            .iter()
                            .map(|t| {
                                json!({
                                    "id": t.id.get(),
                                    "source": t.source,
                                    "bytes_in": t.bytes_in.load(Ordering::Relaxed),
                                })
                            })
                            .collect()
                    });
                    json!({
                        "id": p.id,
                        "info": p.info,
                        "tracks": tracks,
                        "subscribed": p.subscribe.is_some(),
                        "streaming": p.streaming,
                        "owner": p.grants.owner,
                    })
                })
                .collect()
        };
        detail["participants"] = json!(people(&entry.members));
        detail["waiting"] = json!(people(&entry.waiting));
        Some(detail)
    }

    /// Disconnects participant `id` of room `room`; returns its transports
    /// placed on shards, for the caller to close.
    pub fn disconnect(
        &self,
        room: &str,
        id: &str,
    ) -> Result<Vec<(usize, SessionId)>, ConferenceError> {
        let mut inner = self.inner.lock();
        let handle = member_by_id(&inner, room, id)
            .or_else(|| {
                let entry = inner.rooms.get(room)?;
                entry
                    .waiting
                    .iter()
                    .copied()
                    .find(|h| inner.participants.get(h).is_some_and(|p| p.id == id))
            })
            .ok_or_else(|| ConferenceError::UnknownTarget(id.to_owned()))?;
        Ok(leave_locked(&mut inner, handle, "disconnected"))
    }

    /// Closes room `room`: every participant leaves, every session of it
    /// ends; returns the sessions placed on shards, for the caller to close.
    pub fn close_room(&self, room: &str) -> Result<Vec<(usize, SessionId)>, ConferenceError> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.rooms.get_mut(room) else {
            return Err(ConferenceError::UnknownRoom(room.to_owned()));
        };
        entry.config = None;
        let handles: Vec<SessionId> = entry
            .members
            .iter()
            .chain(&entry.waiting)
            .copied()
            .collect();
        let mut closing = Vec::new();
        for handle in handles {
            closing.extend(leave_locked(&mut inner, handle, "closed"));
        }
        let sessions: Vec<SessionId> = inner
            .sessions
            .iter()
            .filter(|(_, s)| s.room == room)
            .map(|(id, _)| *id)
            .collect();
        for id in sessions {
            if let Some(super::super::Place::Shard(shard)) =
                super::super::remove_locked(&mut inner, id)
            {
                closing.push((shard, id));
            }
        }
        if inner.rooms.get(room).is_some_and(RoomEntry::is_unused) {
            inner.remove_room(room);
        }
        Ok(closing)
    }
}

impl Directory {
    /// Closes every room as [`Directory::close_room`] does (participants
    /// leave, sessions end, admin room settings go): what is left to close
    /// on the shards. The directory keeps serving.
    pub fn reset(&self) -> Vec<(usize, SessionId)> {
        let names: Vec<String> = self.inner.lock().rooms.keys().cloned().collect();
        let mut closing = Vec::new();
        for name in names {
            // A room that went meanwhile has nothing left to close.
            closing.extend(self.close_room(&name).unwrap_or_default());
        }
        closing
    }
}

fn room_summary(name: &str, r: &RoomEntry) -> Value {
    json!({
        "name": name,
        "participants": r.members.len(),
        "waiting": r.waiting.len(),
        "viewers": r.viewers,
        "sessions": r.sessions,
        "has_whip_publisher": r.publisher.is_some(),
        "config": r.config,
        "bytes_in": r.shared.bytes_in.load(Ordering::Relaxed),
        "bytes_out": r.shared.bytes_out.load(Ordering::Relaxed),
    })
}
