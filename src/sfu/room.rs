//! What every shard may read about a room and its tracks without a lock.
//!
//! - [`Audience`]: which shards hold subscribers of one feed (so the
//!   publisher's shard sends one copy of each packet to each of them) and
//!   which shard holds the feed's publisher (for keyframe requests). Every
//!   published track has one, and so has a room's *main* feed, the one WHEP
//!   viewers watch.
//! - [`RoomShared`]: the room's main feed (whose packets a WHEP viewer gets)
//!   and byte counters for stats.
//! - [`PublishedTrack`] / [`PublishedMedia`]: the immutable description of
//!   what a publisher sends, shared by `Arc` with every packet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid};

use super::ids::{Source, TrackId};

/// Most shards a server runs (bounded by the subscriber-count array below).
pub const MAX_SHARDS: usize = 64;

const NO_SHARD: usize = usize::MAX;

/// Where one feed's subscribers and publisher are, by shard: written by the
/// shards' routers as peers join and leave, read by the publisher's shard
/// for every packet (relaxed loads; a packet racing a join may miss the
/// new shard, as a packet racing a join always could).
#[derive(Debug)]
pub struct Audience {
    subscribers_on_shard: [AtomicU32; MAX_SHARDS],
    publisher_shard: AtomicUsize,
}

impl Default for Audience {
    fn default() -> Self {
        Self {
            subscribers_on_shard: std::array::from_fn(|_| AtomicU32::new(0)),
            publisher_shard: AtomicUsize::new(NO_SHARD),
        }
    }
}

impl Audience {
    /// A subscriber was placed on (`+1`) or left (`-1`) `shard`.
    pub fn add_subscriber(&self, shard: usize, delta: i32) {
        if let Some(count) = self.subscribers_on_shard.get(shard) {
            if delta >= 0 {
                count.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
            } else {
                count.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            }
        }
    }

    /// Whether `shard` holds at least one subscriber.
    pub fn has_subscribers_on(&self, shard: usize) -> bool {
        self.subscribers_on_shard
            .get(shard)
            .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
    }

    /// The shards among the first `shards` that hold subscribers, a bit each.
    pub fn shard_mask(&self, shards: usize) -> u64 {
        let mut mask = 0;
        for (shard, count) in self.subscribers_on_shard.iter().take(shards).enumerate() {
            if count.load(Ordering::Relaxed) > 0 {
                mask |= 1 << shard;
            }
        }
        mask
    }

    /// The shard that holds the publisher, if it is placed.
    pub fn publisher_shard(&self) -> Option<usize> {
        match self.publisher_shard.load(Ordering::Acquire) {
            NO_SHARD => None,
            shard => Some(shard),
        }
    }

    /// Records that the publisher lives on `shard`.
    pub fn set_publisher_shard(&self, shard: usize) {
        self.publisher_shard.store(shard, Ordering::Release);
    }

    /// The publisher on `shard` left: clears the slot only if it still names
    /// `shard` (a new publisher may have been placed elsewhere meanwhile).
    pub fn clear_publisher_shard(&self, shard: usize) {
        let _ = self.publisher_shard.compare_exchange(
            shard,
            NO_SHARD,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// A room's lock-free shared state. Created by the directory, held by `Arc` in
/// the directory and by each shard with a member of the room.
#[derive(Debug)]
pub struct RoomShared {
    /// Small integer id, unique for the life of the process.
    pub id: u64,
    /// Room name as given in the URL.
    pub name: String,
    /// The shards of the room's WHEP viewers (subscribers of its main feed)
    /// and of its main publisher.
    pub main_audience: Audience,
    /// The publisher number ([`PublishedMedia::publisher`]) whose packets
    /// feed the main feed (0: none). One relaxed load per packet.
    main_publisher: AtomicU64,
    /// The main publisher's media, for keyframe requests on the main feed
    /// (locked per request, never per packet).
    main_media: Mutex<Option<Arc<PublishedMedia>>>,
    /// RTP payload bytes received from the room's publishers.
    pub bytes_in: AtomicU64,
    /// RTP payload bytes written to subscribers.
    pub bytes_out: AtomicU64,
    /// Publisher packets dropped over `--max-bitrate-in`.
    pub dropped_bitrate_in: AtomicU64,
    /// Subscriber packets dropped over `--max-bitrate-out`.
    pub dropped_bitrate_out: AtomicU64,
}

impl RoomShared {
    /// A room with no members.
    pub fn new(id: u64, name: String) -> Self {
        Self {
            id,
            name,
            main_audience: Audience::default(),
            main_publisher: AtomicU64::new(0),
            main_media: Mutex::new(None),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dropped_bitrate_in: AtomicU64::new(0),
            dropped_bitrate_out: AtomicU64::new(0),
        }
    }

    /// Makes `media` the room's main feed (`None`: nothing feeds it).
    pub fn set_main(&self, media: Option<Arc<PublishedMedia>>) {
        let mut main = self.main_media.lock();
        self.main_publisher
            .store(media.as_ref().map_or(0, |m| m.publisher), Ordering::Release);
        *main = media;
    }

    /// Clears the main feed if publisher number `publisher` still feeds it.
    pub fn clear_main(&self, publisher: u64) {
        let mut main = self.main_media.lock();
        if main.as_ref().is_some_and(|m| m.publisher == publisher) {
            self.main_publisher.store(0, Ordering::Release);
            *main = None;
        }
    }

    /// Whether publisher number `publisher` feeds the main feed now.
    pub fn is_main(&self, publisher: u64) -> bool {
        publisher != 0 && self.main_publisher.load(Ordering::Relaxed) == publisher
    }

    /// The main publisher's track of `kind`, if there is one.
    pub fn main_track(&self, kind: MediaKind) -> Option<Arc<PublishedTrack>> {
        self.main_media.lock().as_ref()?.track(kind).cloned()
    }

    /// The main publisher's media, if there is one.
    pub fn main_media(&self) -> Option<Arc<PublishedMedia>> {
        self.main_media.lock().clone()
    }
}

/// One track a publisher sends.
#[derive(Debug)]
pub struct PublishedTrack {
    /// Unique for the life of the process; a subscriber seeing another id
    /// knows its source changed.
    pub id: TrackId,
    pub mid: Mid,
    pub kind: MediaKind,
    /// What it carries (a WHIP publisher's: microphone and camera).
    pub source: Source,
    /// The payload types negotiated for this track, as the publisher numbers them.
    pub params: Vec<PayloadParams>,
    /// Where this track's subscribers and publisher are.
    pub audience: Audience,
    /// RTP payload bytes received on it.
    pub bytes_in: AtomicU64,
    /// Its packets go to the recorder (set and cleared by the directory,
    /// read once per packet by the publisher's shard).
    pub recording: AtomicBool,
}

impl PublishedTrack {
    /// A track nobody subscribes to yet.
    pub fn new(id: TrackId, mid: Mid, source: Source, params: Vec<PayloadParams>) -> Self {
        Self {
            id,
            mid,
            kind: source.kind(),
            source,
            params,
            audience: Audience::default(),
            bytes_in: AtomicU64::new(0),
            recording: AtomicBool::new(false),
        }
    }

    /// The codec names of one track, for error messages ("VP8, H264").
    pub fn codec_names(&self) -> String {
        let mut names: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{:?}", p.spec().codec))
            .collect();
        names.dedup();
        names.join(", ")
    }

    /// The payload parameters of `pt` on this track.
    pub fn params(&self, pt: u8) -> Option<&PayloadParams> {
        self.params.iter().find(|p| *p.pt() == pt)
    }
}

/// What one publisher session sends, fixed when its offer is answered.
#[derive(Debug)]
pub struct PublishedMedia {
    /// Unique per publisher session for the life of the process (never 0);
    /// its tracks' ids derive from it.
    pub publisher: u64,
    pub tracks: Vec<Arc<PublishedTrack>>,
    /// Audio packets that carried voice (RFC 6464 level ≥ [`VOICE_LEVEL`],
    /// or the V flag): the directory picks a room's most recently active
    /// participant from it. Shared by the media of one transport across
    /// renegotiations.
    pub voiced: Arc<AtomicU64>,
}

pub use uringcast_proto::VOICE_LEVEL;

impl PublishedMedia {
    /// A publisher's media with a fresh voice counter.
    pub fn new(publisher: u64, tracks: Vec<Arc<PublishedTrack>>) -> Self {
        Self {
            publisher,
            tracks,
            voiced: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl PublishedMedia {
    /// The track of `kind`, if the publisher sends one.
    pub fn track(&self, kind: MediaKind) -> Option<&Arc<PublishedTrack>> {
        self.tracks.iter().find(|t| t.kind == kind)
    }

    /// The payload parameters of `pt` on the track of `kind`.
    pub fn params(&self, kind: MediaKind, pt: u8) -> Option<&PayloadParams> {
        self.track(kind)?.params(pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_counts_per_shard_and_publisher_placement() {
        let audience = Audience::default();
        assert!(!audience.has_subscribers_on(0));
        audience.add_subscriber(1, 1);
        audience.add_subscriber(1, 1);
        audience.add_subscriber(3, 1);
        assert_eq!(audience.shard_mask(4), 0b1010);
        assert_eq!(audience.shard_mask(2), 0b10, "only the shards asked about");
        audience.add_subscriber(1, -1);
        assert!(audience.has_subscribers_on(1));
        audience.add_subscriber(1, -1);
        assert!(!audience.has_subscribers_on(1));
        assert!(!audience.has_subscribers_on(MAX_SHARDS + 3));
        assert_eq!(audience.publisher_shard(), None);
        audience.set_publisher_shard(3);
        assert_eq!(audience.publisher_shard(), Some(3));
        audience.clear_publisher_shard(2);
        assert_eq!(
            audience.publisher_shard(),
            Some(3),
            "another shard's leave keeps it"
        );
        audience.clear_publisher_shard(3);
        assert_eq!(audience.publisher_shard(), None);
    }

    #[test]
    fn the_main_feed_follows_its_publisher_and_only_it_clears_it() {
        let room = RoomShared::new(1, "r".into());
        let media = |publisher| {
            Arc::new(PublishedMedia::new(
                publisher,
                vec![Arc::new(PublishedTrack::new(
                    TrackId::new(publisher, 1),
                    Mid::from("1"),
                    Source::Camera,
                    Vec::new(),
                ))],
            ))
        };
        assert!(!room.is_main(0) && room.main_track(MediaKind::Video).is_none());
        room.set_main(Some(media(5)));
        assert!(room.is_main(5) && !room.is_main(6));
        assert_eq!(
            room.main_track(MediaKind::Video).map(|t| t.id),
            Some(TrackId::new(5, 1))
        );
        assert!(room.main_track(MediaKind::Audio).is_none());
        room.clear_main(6);
        assert!(room.is_main(5), "another publisher's end keeps it");
        room.clear_main(5);
        assert!(!room.is_main(5) && room.main_media().is_none());
    }
}
