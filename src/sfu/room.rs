//! What every shard may read about a room without a lock: which shards hold
//! its viewers (so a publisher's shard knows where to send one copy of each
//! packet), which shard holds its publisher (for keyframe requests), and byte
//! counters for stats. Plus [`PublishedMedia`], the immutable description of
//! what the current publisher sends, shared by `Arc` with every packet.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid};

/// Most shards a server runs (bounded by the viewer-count array below).
pub const MAX_SHARDS: usize = 64;

const NO_SHARD: usize = usize::MAX;

/// A room's lock-free shared state. Created by the directory, held by `Arc` in
/// the directory and by each shard with a member of the room.
#[derive(Debug)]
pub struct RoomShared {
    /// Small integer id, unique for the life of the process.
    pub id: u64,
    /// Room name as given in the URL.
    pub name: String,
    viewers_on_shard: [AtomicU32; MAX_SHARDS],
    publisher_shard: AtomicUsize,
    /// RTP payload bytes received from the publisher.
    pub bytes_in: AtomicU64,
    /// RTP payload bytes written to viewers.
    pub bytes_out: AtomicU64,
    /// Publisher packets dropped over `--max-bitrate-in`.
    pub dropped_bitrate_in: AtomicU64,
    /// Viewer packets dropped over `--max-bitrate-out`.
    pub dropped_bitrate_out: AtomicU64,
}

impl RoomShared {
    /// A room with no members.
    pub fn new(id: u64, name: String) -> Self {
        Self {
            id,
            name,
            viewers_on_shard: std::array::from_fn(|_| AtomicU32::new(0)),
            publisher_shard: AtomicUsize::new(NO_SHARD),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dropped_bitrate_in: AtomicU64::new(0),
            dropped_bitrate_out: AtomicU64::new(0),
        }
    }

    /// A viewer of this room was placed on (`+1`) or left (`-1`) `shard`.
    pub fn add_viewer(&self, shard: usize, delta: i32) {
        if let Some(count) = self.viewers_on_shard.get(shard) {
            if delta >= 0 {
                count.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
            } else {
                count.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            }
        }
    }

    /// Whether `shard` holds at least one viewer of this room.
    pub fn has_viewers_on(&self, shard: usize) -> bool {
        self.viewers_on_shard
            .get(shard)
            .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
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

/// One track a publisher sends.
#[derive(Debug, Clone)]
pub struct PublishedTrack {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The payload types negotiated for this track, as the publisher numbers them.
    pub params: Vec<PayloadParams>,
}

impl PublishedTrack {
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
}

/// What one publisher session sends, fixed when its offer is answered.
#[derive(Debug, Clone)]
pub struct PublishedMedia {
    /// Unique per publisher session for the life of the process: a viewer
    /// seeing a new generation knows its source changed.
    pub generation: u64,
    pub tracks: Vec<PublishedTrack>,
}

impl PublishedMedia {
    /// The track of `kind`, if the publisher sends one.
    pub fn track(&self, kind: MediaKind) -> Option<&PublishedTrack> {
        self.tracks.iter().find(|t| t.kind == kind)
    }

    /// The payload parameters of `pt` on the track of `kind`.
    pub fn params(&self, kind: MediaKind, pt: u8) -> Option<&PayloadParams> {
        self.track(kind)?.params.iter().find(|p| *p.pt() == pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_counts_per_shard_and_publisher_placement() {
        let room = RoomShared::new(1, "r".into());
        assert!(!room.has_viewers_on(0));
        room.add_viewer(1, 1);
        room.add_viewer(1, 1);
        room.add_viewer(1, -1);
        assert!(room.has_viewers_on(1));
        room.add_viewer(1, -1);
        assert!(!room.has_viewers_on(1));
        assert!(!room.has_viewers_on(MAX_SHARDS + 3));
        assert_eq!(room.publisher_shard(), None);
        room.set_publisher_shard(3);
        assert_eq!(room.publisher_shard(), Some(3));
        room.clear_publisher_shard(2);
        assert_eq!(
            room.publisher_shard(),
            Some(3),
            "another shard's leave keeps it"
        );
        room.clear_publisher_shard(3);
        assert_eq!(room.publisher_shard(), None);
    }
}
