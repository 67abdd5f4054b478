//! Join approval: in a room created with approval, a joiner without the
//! owner grant waits (`Admission::Waiting`) until an owner admits it (it
//! becomes a member and gets the room's snapshot) or refuses it (a
//! `rejected` event, and every later request a 403 naming the reason).

use serde_json::{Value, json};

use super::super::{Directory, Inner};
use super::state::{broadcast_locked, snapshot_locked};
use super::{Admission, ConferenceError};
use crate::sfu::SessionId;

impl Directory {
    /// Owner `owner` admits joiner `joiner` (a participant id): it becomes
    /// a member (the room sees it join; it gets the room's snapshot).
    pub fn approve(&self, owner: SessionId, joiner: &str) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let (room, handle) = waiting_joiner(&inner, owner, joiner)?;
        let size = self.room_size_locked(&inner, &room);
        let members = inner.rooms.get(&room).map_or(0, |e| e.members.len());
        if size > 0 && members >= size {
            return Err(ConferenceError::RoomFull(room, size));
        }
        if let Some(entry) = inner.rooms.get_mut(&room) {
            entry.waiting.retain(|h| *h != handle);
            entry.members.push(handle);
        }
        let Some(p) = inner.participants.get_mut(&handle) else {
            return Err(ConferenceError::NotWaiting(joiner.to_owned()));
        };
        p.admission = Admission::Admitted;
        let joined = json!({ "participant": p.public() });
        broadcast_locked(
            &mut inner,
            &room,
            Some(handle),
            "participantJoined",
            &joined,
        );
        let snapshot = snapshot_locked(&inner, handle);
        if let Some(p) = inner.participants.get_mut(&handle) {
            p.push("snapshot", &snapshot);
        }
        Ok(())
    }

    /// Owner `owner` refuses joiner `joiner`: it gets a `rejected` event,
    /// and every later request of it a 403 naming `reason`.
    pub fn reject(
        &self,
        owner: SessionId,
        joiner: &str,
        reason: &str,
    ) -> Result<(), ConferenceError> {
        let mut inner = self.inner.lock();
        let (room, handle) = waiting_joiner(&inner, owner, joiner)?;
        reject_locked(&mut inner, &room, handle, reason);
        Ok(())
    }

    fn room_size_locked(&self, inner: &Inner, room: &str) -> usize {
        match inner.rooms.get(room).and_then(|e| e.config.as_ref()) {
            Some(c) if c.size > 0 => c.size,
            _ => self.limits.room_size,
        }
    }
}

/// The room and handle of joiner `joiner`, waiting in owner `owner`'s room.
fn waiting_joiner(
    inner: &Inner,
    owner: SessionId,
    joiner: &str,
) -> Result<(String, SessionId), ConferenceError> {
    let o = inner
        .participants
        .get(&owner)
        .ok_or(ConferenceError::UnknownParticipant)?;
    if !o.grants.owner || o.admission != Admission::Admitted {
        return Err(ConferenceError::NotOwner);
    }
    let entry = inner
        .rooms
        .get(&o.room)
        .ok_or(ConferenceError::UnknownParticipant)?;
    let handle = entry
        .waiting
        .iter()
        .copied()
        .find(|h| inner.participants.get(h).is_some_and(|p| p.id == joiner))
        .ok_or_else(|| ConferenceError::NotWaiting(joiner.to_owned()))?;
    Ok((o.room.clone(), handle))
}

pub(super) fn reject_locked(inner: &mut Inner, room: &str, handle: SessionId, reason: &str) {
    if let Some(entry) = inner.rooms.get_mut(room) {
        entry.waiting.retain(|h| *h != handle);
    }
    let Some(p) = inner.participants.get_mut(&handle) else {
        return;
    };
    p.admission = Admission::Rejected(reason.to_owned());
    p.push("rejected", &json!({ "reason": reason }));
    let id = p.id.clone();
    tell_owners(
        inner,
        room,
        "joinResolved",
        &json!({ "id": id, "admitted": false, "reason": reason }),
    );
}

/// `event` to every admitted owner of `room`.
pub(super) fn tell_owners(inner: &mut Inner, room: &str, name: &'static str, event: &Value) {
    let members = inner
        .rooms
        .get(room)
        .map(|e| e.members.clone())
        .unwrap_or_default();
    for h in members {
        if let Some(p) = inner.participants.get_mut(&h)
            && p.grants.owner
        {
            p.push(name, event);
        }
    }
}
