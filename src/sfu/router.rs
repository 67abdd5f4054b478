//! One shard's view of room membership: for each room with a member on this
//! shard, which local peer publishes and which local peers watch. It also
//! keeps the room's shared counters (viewers per shard, publisher's shard)
//! in step, so other shards know where to send.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Role, RoomShared};

/// Local members of one room.
#[derive(Debug)]
struct LocalRoom<K> {
    shared: Arc<RoomShared>,
    publisher: Option<K>,
    viewers: Vec<K>,
}

/// Room membership on one shard, keyed by the shard's peer handle `K`.
#[derive(Debug)]
pub struct Router<K> {
    shard: usize,
    rooms: HashMap<u64, LocalRoom<K>>,
}

impl<K: Copy + Eq> Router<K> {
    /// The router of shard number `shard`.
    pub fn new(shard: usize) -> Self {
        Self {
            shard,
            rooms: HashMap::new(),
        }
    }

    /// `key` joined `room` as `role` on this shard.
    pub fn join(&mut self, room: &Arc<RoomShared>, role: Role, key: K) {
        let local = self.rooms.entry(room.id).or_insert_with(|| LocalRoom {
            shared: room.clone(),
            publisher: None,
            viewers: Vec::new(),
        });
        match role {
            Role::Publisher => {
                local.publisher = Some(key);
                room.set_publisher_shard(self.shard);
            }
            Role::Viewer => {
                local.viewers.push(key);
                room.add_viewer(self.shard, 1);
            }
        }
    }

    /// `key` left `room_id`.
    pub fn leave(&mut self, room_id: u64, role: Role, key: K) {
        let Some(local) = self.rooms.get_mut(&room_id) else {
            return;
        };
        match role {
            Role::Publisher if local.publisher == Some(key) => {
                local.publisher = None;
                // Only clears the shared slot if no other shard took it since.
                local.shared.clear_publisher_shard(self.shard);
            }
            Role::Publisher => {}
            Role::Viewer => {
                if let Some(i) = local.viewers.iter().position(|v| *v == key) {
                    local.viewers.swap_remove(i);
                    local.shared.add_viewer(self.shard, -1);
                }
            }
        }
        if local.publisher.is_none() && local.viewers.is_empty() {
            self.rooms.remove(&room_id);
        }
    }

    /// This shard's viewers of `room_id`.
    pub fn viewers(&self, room_id: u64) -> &[K] {
        self.rooms
            .get(&room_id)
            .map_or(&[], |r| r.viewers.as_slice())
    }

    /// This shard's publisher of `room_id`, if it is here.
    pub fn publisher(&self, room_id: u64) -> Option<K> {
        self.rooms.get(&room_id)?.publisher
    }

    /// Every room with a member here: its id, shared state, publisher and
    /// viewers (for consistency checks).
    pub fn rooms(&self) -> impl Iterator<Item = (u64, &Arc<RoomShared>, Option<K>, &[K])> {
        self.rooms
            .iter()
            .map(|(id, r)| (*id, &r.shared, r.publisher, r.viewers.as_slice()))
    }

    /// The shared state of a room with a member here.
    pub fn room(&self, room_id: u64) -> Option<&Arc<RoomShared>> {
        self.rooms.get(&room_id).map(|r| &r.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_updates_shared_counters_and_forgets_empty_rooms() {
        let room = Arc::new(RoomShared::new(7, "r".into()));
        let mut router: Router<u32> = Router::new(1);
        router.join(&room, Role::Publisher, 10);
        router.join(&room, Role::Viewer, 11);
        router.join(&room, Role::Viewer, 12);
        assert_eq!(router.publisher(7), Some(10));
        assert_eq!(router.viewers(7), &[11, 12]);
        assert_eq!(room.publisher_shard(), Some(1));
        assert!(room.has_viewers_on(1));

        router.leave(7, Role::Viewer, 11);
        assert_eq!(router.viewers(7), &[12]);
        router.leave(7, Role::Publisher, 10);
        assert_eq!(room.publisher_shard(), None);
        router.leave(7, Role::Viewer, 12);
        assert!(!room.has_viewers_on(1));
        assert!(router.room(7).is_none());
        assert_eq!(router.viewers(7), &[] as &[u32]);
    }
}
