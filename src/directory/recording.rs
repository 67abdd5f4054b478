//! Which tracks are recorded (`--record-dir`): a room recording, started
//! by the admin API or, with `--record-all`, by a room's first published
//! track, has an id and covers every track published in the room until
//! it is stopped or the room finishes. Tracks are started and stopped on
//! the recorder's control queue, under the directory's lock, where they
//! are published and unpublished (see `conference::state`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Directory, Inner, conference};
use crate::record::{RecordSink, RecordStats, TrackMeta};
use crate::sfu::PublishedMedia;

/// The directory's recording state.
#[derive(Debug)]
pub(super) struct Recording {
    sink: RecordSink,
    /// `--record-all`: a room's first published track starts a recording.
    all: bool,
    /// Rooms being recorded, with the recording's id.
    rooms: HashMap<String, String>,
    next: u64,
}

impl Recording {
    fn new_id(&mut self) -> String {
        self.next += 1;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("{secs}-{}", self.next)
    }
}

/// A room recording, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoomRecording {
    pub id: String,
    pub room: String,
    /// The tracks it started or stopped.
    pub tracks: Vec<u64>,
}

/// Why a recording could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("recording is off: start the server with --record-dir")]
    Off,
    #[error("no room {0:?}")]
    NoRoom(String),
    #[error("room {0:?} is being recorded already (recording {1})")]
    Already(String, String),
    #[error("room {0:?} is not being recorded")]
    NotRecording(String),
}

impl Directory {
    /// Records on `sink`; with `all`, every published track.
    pub fn with_recorder(mut self, sink: RecordSink, all: bool) -> Self {
        self.inner.get_mut().recording = Some(Recording {
            sink,
            all,
            rooms: HashMap::new(),
            next: 0,
        });
        self
    }

    /// The recorder's queue, for the shards.
    pub fn record_sink(&self) -> Option<RecordSink> {
        self.inner.lock().recording.as_ref().map(|r| r.sink.clone())
    }

    /// The recorder's counters, if recording is on.
    pub fn record_stats(&self) -> Option<Arc<RecordStats>> {
        let inner = self.inner.lock();
        inner.recording.as_ref().map(|r| r.sink.stats.clone())
    }

    /// The id of room `room`'s recording, if it is recorded.
    pub fn recording_of(&self, room: &str) -> Option<String> {
        let inner = self.inner.lock();
        inner.recording.as_ref()?.rooms.get(room).cloned()
    }

    /// Starts recording room `room`: the tracks published in it now and
    /// from now on.
    pub fn start_recording(&self, room: &str) -> Result<RoomRecording, RecordingError> {
        let mut inner = self.inner.lock();
        if !inner.rooms.contains_key(room) {
            return Err(RecordingError::NoRoom(room.to_owned()));
        }
        let publishing = conference::publishing(&inner, room);
        let recording = inner.recording.as_mut().ok_or(RecordingError::Off)?;
        if let Some(id) = recording.rooms.get(room) {
            return Err(RecordingError::Already(room.to_owned(), id.clone()));
        }
        let id = recording.new_id();
        recording.rooms.insert(room.to_owned(), id.clone());
        let mut tracks = Vec::new();
        for (participant, media) in publishing {
            tracks.extend(start_tracks(recording, room, &id, &participant, &media));
        }
        tracing::info!(room, recording = id, "recording started");
        Ok(RoomRecording {
            id,
            room: room.to_owned(),
            tracks,
        })
    }

    /// Stops recording room `room`: its tracks' files are finished.
    pub fn stop_recording(&self, room: &str) -> Result<RoomRecording, RecordingError> {
        let mut inner = self.inner.lock();
        let publishing = conference::publishing(&inner, room);
        let recording = inner.recording.as_mut().ok_or(RecordingError::Off)?;
        let id = (recording.rooms.remove(room))
            .ok_or_else(|| RecordingError::NotRecording(room.to_owned()))?;
        let mut tracks = Vec::new();
        for (_, media) in publishing {
            for track in &media.tracks {
                if track.recording.load(std::sync::atomic::Ordering::Relaxed) {
                    tracks.push(track.id.get());
                }
                recording.sink.stop(track);
            }
        }
        tracing::info!(room, recording = id, "recording stopped");
        Ok(RoomRecording {
            id,
            room: room.to_owned(),
            tracks,
        })
    }
}

/// Starts `media`'s tracks under recording `id`; their ids.
fn start_tracks(
    recording: &Recording,
    room: &str,
    id: &str,
    participant: &str,
    media: &PublishedMedia,
) -> Vec<u64> {
    let meta = TrackMeta {
        recording: id.to_owned(),
        room: room.to_owned(),
        participant: participant.to_owned(),
    };
    for track in &media.tracks {
        recording.sink.start(track, meta.clone());
    }
    media.tracks.iter().map(|t| t.id.get()).collect()
}

/// `participant` published `media` in `room`: recorded if the room is
/// (or, with `--record-all`, now starts to be).
pub(super) fn published(inner: &mut Inner, room: &str, participant: &str, media: &PublishedMedia) {
    let Some(recording) = inner.recording.as_mut() else {
        return;
    };
    let id = match recording.rooms.get(room) {
        Some(id) => id.clone(),
        // A playback (`recordings/…`, a name no user room can have) is not
        // recorded again.
        None if recording.all && !room.starts_with(crate::record::playback::ROOM_PREFIX) => {
            let id = recording.new_id();
            recording.rooms.insert(room.to_owned(), id.clone());
            tracing::info!(room, recording = id, "recording started (--record-all)");
            id
        }
        None => return,
    };
    start_tracks(recording, room, &id, participant, media);
}

/// `media`'s tracks are gone: their recordings end.
pub(super) fn unpublished(inner: &Inner, media: &PublishedMedia) {
    if let Some(recording) = &inner.recording {
        for track in &media.tracks {
            recording.sink.stop(track);
        }
    }
}

/// Room `room` finished: so did its recording.
pub(super) fn room_gone(inner: &mut Inner, room: &str) {
    if let Some(recording) = inner.recording.as_mut() {
        recording.rooms.remove(room);
    }
}
