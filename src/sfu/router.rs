//! One shard's routing tables, keyed by track: which local peer publishes
//! each track, and which local peers subscribe to each [`Feed`] (a track, or
//! a room's main feed). It keeps the feeds' shared [`Audience`]s in step, so
//! a publisher's shard knows which other shards to send one copy to without
//! asking them. Tables change only when peers join, leave or (un)subscribe;
//! a packet costs two map lookups here, never a scan of the room.

use std::collections::HashMap;
use std::sync::Arc;

use str0m::media::MediaKind;

use super::ids::{Feed, TrackId};
use super::room::{Audience, PublishedTrack, RoomShared};

/// Where a subscriber's feed comes from, with the shared state the router
/// counts it in.
#[derive(Debug, Clone)]
pub enum FeedSource {
    /// One published track.
    Track(Arc<PublishedTrack>),
    /// A room's main feed of one kind (WHEP viewers).
    Main(Arc<RoomShared>, MediaKind),
}

impl FeedSource {
    /// The key this source is routed by.
    pub fn feed(&self) -> Feed {
        match self {
            Self::Track(track) => Feed::Track(track.id),
            Self::Main(room, kind) => Feed::Main {
                room: room.id,
                kind: *kind,
            },
        }
    }

    /// The shared state subscribers of this source are counted in.
    pub fn audience(&self) -> &Audience {
        match self {
            Self::Track(track) => &track.audience,
            Self::Main(room, _) => &room.main_audience,
        }
    }
}

#[derive(Debug)]
struct LocalFeed<K> {
    source: FeedSource,
    subscribers: Vec<K>,
}

#[derive(Debug)]
struct LocalRoom {
    shared: Arc<RoomShared>,
    /// Local peers of this room (publishers and subscribers).
    members: usize,
}

/// Routing on one shard, keyed by the shard's peer handle `K`.
#[derive(Debug)]
pub struct Router<K> {
    shard: usize,
    feeds: HashMap<Feed, LocalFeed<K>>,
    tracks: HashMap<TrackId, (K, Arc<PublishedTrack>)>,
    rooms: HashMap<u64, LocalRoom>,
}

impl<K: Copy + Eq> Router<K> {
    /// The router of shard number `shard`.
    pub fn new(shard: usize) -> Self {
        Self {
            shard,
            feeds: HashMap::new(),
            tracks: HashMap::new(),
            rooms: HashMap::new(),
        }
    }

    /// A peer of `room` was placed on this shard.
    pub fn enter(&mut self, room: &Arc<RoomShared>) {
        self.rooms
            .entry(room.id)
            .or_insert_with(|| LocalRoom {
                shared: room.clone(),
                members: 0,
            })
            .members += 1;
    }

    /// A peer of room `room_id` left this shard (after its tracks and feeds).
    pub fn exit(&mut self, room_id: u64) {
        if let Some(local) = self.rooms.get_mut(&room_id) {
            local.members = local.members.saturating_sub(1);
            if local.members == 0 {
                self.rooms.remove(&room_id);
            }
        }
    }

    /// `key` publishes `track` from this shard.
    pub fn publish(&mut self, track: &Arc<PublishedTrack>, key: K) {
        track.audience.set_publisher_shard(self.shard);
        self.tracks.insert(track.id, (key, track.clone()));
    }

    /// `key` stopped publishing track `id`.
    pub fn unpublish(&mut self, id: TrackId, key: K) {
        if let Some((owner, track)) = self.tracks.get(&id)
            && *owner == key
        {
            // Only clears the shared slot if no other shard took it since.
            track.audience.clear_publisher_shard(self.shard);
            self.tracks.remove(&id);
        }
    }

    /// `key` receives `source` on this shard.
    pub fn subscribe(&mut self, source: &FeedSource, key: K) {
        let local = self
            .feeds
            .entry(source.feed())
            .or_insert_with(|| LocalFeed {
                source: source.clone(),
                subscribers: Vec::new(),
            });
        if !local.subscribers.contains(&key) {
            local.subscribers.push(key);
            source.audience().add_subscriber(self.shard, 1);
        }
    }

    /// `key` no longer receives `feed`.
    pub fn unsubscribe(&mut self, feed: Feed, key: K) {
        let Some(local) = self.feeds.get_mut(&feed) else {
            return;
        };
        if let Some(i) = local.subscribers.iter().position(|s| *s == key) {
            local.subscribers.swap_remove(i);
            local.source.audience().add_subscriber(self.shard, -1);
        }
        if local.subscribers.is_empty() {
            self.feeds.remove(&feed);
        }
    }

    /// This shard's subscribers of `feed`.
    pub fn subscribers(&self, feed: &Feed) -> &[K] {
        self.feeds
            .get(feed)
            .map_or(&[], |f| f.subscribers.as_slice())
    }

    /// Where `feed` comes from, if it has a subscriber here.
    pub fn source(&self, feed: &Feed) -> Option<&FeedSource> {
        self.feeds.get(feed).map(|f| &f.source)
    }

    /// This shard's publisher of track `id`, if it is here.
    pub fn publisher(&self, id: TrackId) -> Option<K> {
        self.tracks.get(&id).map(|(key, _)| *key)
    }

    /// The shared state of a room with a member here.
    pub fn room(&self, room_id: u64) -> Option<&Arc<RoomShared>> {
        self.rooms.get(&room_id).map(|r| &r.shared)
    }

    /// Every feed with a subscriber here: its source and subscribers.
    pub fn feeds(&self) -> impl Iterator<Item = (&FeedSource, &[K])> {
        self.feeds
            .values()
            .map(|f| (&f.source, f.subscribers.as_slice()))
    }

    /// Every track published here: its publisher and description.
    pub fn tracks(&self) -> impl Iterator<Item = (K, &Arc<PublishedTrack>)> {
        self.tracks.values().map(|(key, track)| (*key, track))
    }

    /// Every room with a member here: its id, shared state and local members.
    pub fn rooms(&self) -> impl Iterator<Item = (u64, &Arc<RoomShared>, usize)> {
        self.rooms.iter().map(|(id, r)| (*id, &r.shared, r.members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::Mid;

    fn track(publisher: u64) -> Arc<PublishedTrack> {
        Arc::new(PublishedTrack::new(
            TrackId::new(publisher, 1),
            Mid::from("1"),
            crate::sfu::Source::Camera,
            Vec::new(),
        ))
    }

    #[test]
    fn tracks_and_feeds_update_shared_audiences_and_empty_entries_go() {
        let room = Arc::new(RoomShared::new(7, "r".into()));
        let t = track(3);
        let mut router: Router<u32> = Router::new(1);
        router.enter(&room);
        router.publish(&t, 10);
        assert_eq!(router.publisher(t.id), Some(10));
        assert_eq!(t.audience.publisher_shard(), Some(1));

        let by_track = FeedSource::Track(t.clone());
        let main = FeedSource::Main(room.clone(), MediaKind::Video);
        for key in [11, 12] {
            router.enter(&room);
            router.subscribe(&by_track, key);
        }
        router.subscribe(&by_track, 11);
        router.subscribe(&main, 12);
        assert_eq!(router.subscribers(&by_track.feed()), &[11, 12], "once each");
        assert_eq!(router.subscribers(&main.feed()), &[12]);
        assert_eq!(t.audience.shard_mask(4), 0b10);
        assert!(room.main_audience.has_subscribers_on(1));

        router.unsubscribe(by_track.feed(), 11);
        assert_eq!(router.subscribers(&by_track.feed()), &[12]);
        router.unsubscribe(by_track.feed(), 12);
        assert!(!t.audience.has_subscribers_on(1));
        assert!(router.source(&by_track.feed()).is_none());
        router.unsubscribe(main.feed(), 12);
        assert!(!room.main_audience.has_subscribers_on(1));

        router.unpublish(t.id, 99);
        assert_eq!(
            router.publisher(t.id),
            Some(10),
            "only its publisher unpublishes"
        );
        router.unpublish(t.id, 10);
        assert_eq!(t.audience.publisher_shard(), None);
        for _ in 0..3 {
            router.exit(7);
        }
        assert!(router.room(7).is_none());
        assert_eq!(router.feeds().count() + router.tracks().count(), 0);
    }
}
