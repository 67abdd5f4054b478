//! Recording (`--record-dir`): one thread, "recorder", writes each recorded
//! track to its own file: WebM (Opus, VP8, VP9), MP4 (H264). Shards hand it their packets on a bounded
//! queue with `try_send` only ([`RecordSink::offer`]): a slow disk fills
//! the queue and the shards drop and count (`dropped`), they never wait.
//! A shard looks at a track's `recording` flag (one relaxed load per
//! packet) and offers nothing when it is off.
//!
//! Which tracks are recorded is the directory's call (a room recording
//! started by the admin API, or `--record-all`): it sends [`RecordCtl`]
//! messages on a second, unbounded queue the thread drains first, and sets
//! the flag. The thread asks a track's publisher for a keyframe (through
//! its shard's control lane) when the recording starts and after a loss,
//! finishes a track's file when it is stopped (or at shutdown) and tells
//! the webhook (`recording_finished`).

mod clock;
mod frame;
mod hold;
mod mp4;
pub mod playback;
mod track;
mod vp9;
mod webm;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;
use serde_json::json;
use str0m::media::KeyframeRequestKind;
use tracing::{info, warn};

use crate::directory::hooks::HookSink;
use crate::sfu::{Forwarded, PublishedTrack, TrackId};
use crate::shard::{ShardControl, ShardHandle};
use track::TrackRec;
pub use track::path_safe;

/// Packets the queue to the recorder holds (`--record-queue`).
pub const RECORD_QUEUE: usize = 8192;

/// How often the thread looks at the clock when no packet comes.
const TICK: Duration = Duration::from_millis(50);

/// Who and what a recorded track belongs to.
#[derive(Debug, Clone)]
pub struct TrackMeta {
    /// The recording's id (a room recording, see the README).
    pub recording: String,
    pub room: String,
    /// The publishing participant's public id (`whip-N` for WHIP).
    pub participant: String,
}

/// From the directory to the recorder; never dropped.
#[derive(Debug)]
pub enum RecordCtl {
    /// Record `track` from now on (its flag is set after this is queued).
    Start {
        track: Arc<PublishedTrack>,
        meta: TrackMeta,
    },
    /// Stop recording `track` and finish its file.
    Stop { track: TrackId },
    /// Finish every file and end the thread.
    Shutdown,
}

/// Recording counters, in `/v1/stats` (`recording`) and `/metrics`.
#[derive(Debug, Default, Serialize)]
pub struct RecordStats {
    /// Packets the shards dropped because the recorder's queue was full.
    pub dropped: AtomicU64,
    /// Frames written.
    pub frames: AtomicU64,
    /// Frame bytes written.
    pub bytes: AtomicU64,
    /// Packets that never reached the recorder in time (sequence gaps).
    pub lost_packets: AtomicU64,
    /// Frames lost on the way (a sequence gap, a missing start or end).
    pub lost_frames: AtomicU64,
    /// Files being written now.
    pub files_open: AtomicU64,
    /// Files finished (renamed from `.part`).
    pub files_finished: AtomicU64,
    /// Files that failed (create, write, finish).
    pub errors: AtomicU64,
    /// Tracks not recorded for their codec.
    pub unsupported: AtomicU64,
    /// Keyframes asked of publishers.
    pub keyframe_requests: AtomicU64,
}

/// What the directory and the shards hold: both queues and the counters.
#[derive(Debug, Clone)]
pub struct RecordSink {
    media: Sender<Arc<Forwarded>>,
    control: Sender<RecordCtl>,
    pub stats: Arc<RecordStats>,
}

/// The recorder thread's ends of the queues.
#[derive(Debug)]
pub struct RecordInbox {
    media: Receiver<Arc<Forwarded>>,
    control: Receiver<RecordCtl>,
}

impl RecordSink {
    /// A sink whose media queue holds `capacity` packets.
    pub fn new(capacity: usize) -> (Self, RecordInbox) {
        let (media, media_rx) = crossbeam_channel::bounded(capacity.max(1));
        let (control, control_rx) = crossbeam_channel::unbounded();
        let sink = Self {
            media,
            control,
            stats: Arc::new(RecordStats::default()),
        };
        let inbox = RecordInbox {
            media: media_rx,
            control: control_rx,
        };
        (sink, inbox)
    }

    /// A shard's packet of a recorded track: queued without blocking, or
    /// dropped and counted.
    pub fn offer(&self, packet: &Arc<Forwarded>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.media.try_send(packet.clone())
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts recording `track` (if it is not already).
    pub fn start(&self, track: &Arc<PublishedTrack>, meta: TrackMeta) {
        if track.recording.load(Ordering::Relaxed) {
            return;
        }
        let start = RecordCtl::Start {
            track: track.clone(),
            meta,
        };
        if self.control.send(start).is_ok() {
            track.recording.store(true, Ordering::Relaxed);
        }
    }

    /// Stops recording `track` (if it is).
    pub fn stop(&self, track: &PublishedTrack) {
        if track.recording.swap(false, Ordering::Relaxed) {
            let _ = self.control.send(RecordCtl::Stop { track: track.id });
        }
    }

    /// Tells the thread to finish every file and end.
    pub fn shutdown(&self) {
        let _ = self.control.send(RecordCtl::Shutdown);
    }
}

/// The recorder thread's settings.
pub struct Recorder {
    /// `--record-dir`.
    pub dir: PathBuf,
    /// To ask publishers for keyframes.
    pub shards: Arc<[ShardHandle]>,
    /// `recording_finished` goes there, with `--webhook-url`.
    pub hooks: Option<HookSink>,
}

impl Recorder {
    /// Starts the thread; it ends on [`RecordSink::shutdown`] or when every
    /// sink is gone.
    pub fn spawn(
        self,
        inbox: RecordInbox,
        stats: Arc<RecordStats>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let mut core = Core::new(self, stats);
                core.run(&inbox);
                core.finish_all();
            })
    }
}

/// The thread's state: the tracks being recorded.
struct Core {
    recorder: Recorder,
    stats: Arc<RecordStats>,
    tracks: HashMap<TrackId, TrackRec>,
}

impl Core {
    fn new(recorder: Recorder, stats: Arc<RecordStats>) -> Self {
        Self {
            recorder,
            stats,
            tracks: HashMap::new(),
        }
    }

    fn run(&mut self, inbox: &RecordInbox) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            if !self.drain_control(&inbox.control) {
                return;
            }
            match inbox.media.recv_timeout(TICK) {
                Ok(packet) => {
                    if !self.tracks.contains_key(&packet.track.id)
                        && !self.drain_control(&inbox.control)
                    {
                        return;
                    }
                    if let Some(track) = self.tracks.get_mut(&packet.track.id) {
                        track.packet(packet, &self.stats);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
        }
    }

    /// Handles every queued control message; `false` on shutdown.
    fn drain_control(&mut self, control: &Receiver<RecordCtl>) -> bool {
        while let Ok(message) = control.try_recv() {
            match message {
                RecordCtl::Start { track, meta } => {
                    info!(room = %meta.room, recording = %meta.recording, track = track.id.get(), "recording a track");
                    let rec = TrackRec::new(&self.recorder.dir, meta, track);
                    if let Some(old) = self.tracks.insert(rec.track.id, rec) {
                        self.finish(old);
                    }
                }
                RecordCtl::Stop { track } => {
                    if let Some(rec) = self.tracks.get_mut(&track) {
                        // Packets already queued still get in.
                        rec.stop_at = Some(Instant::now() + hold::HOLD);
                    }
                }
                RecordCtl::Shutdown => return false,
            }
        }
        true
    }

    /// Expires reorder holds, asks for keyframes, finishes stopped tracks.
    fn tick(&mut self, now: Instant) {
        let mut stopped = Vec::new();
        for (id, rec) in &mut self.tracks {
            rec.expire(now, &self.stats);
            if rec.wants_keyframe(now) {
                let track = &rec.track;
                if let Some(shard) = track.audience.publisher_shard()
                    && let Some(handle) = self.recorder.shards.get(shard)
                {
                    let ask = ShardControl::Keyframe {
                        track: track.id,
                        kind: KeyframeRequestKind::Pli,
                    };
                    if handle.send_control(ask).is_ok() {
                        handle.waker.wake();
                        self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if rec.stop_at.is_some_and(|at| at <= now) {
                stopped.push(*id);
            }
        }
        for id in stopped {
            if let Some(rec) = self.tracks.remove(&id) {
                self.finish(rec);
            }
        }
    }

    fn finish_all(&mut self) {
        for (_, rec) in std::mem::take(&mut self.tracks) {
            self.finish(rec);
        }
    }

    /// Finishes `rec`'s file and tells the webhook.
    fn finish(&self, rec: TrackRec) {
        let meta = rec.meta.clone();
        let (codec, epoch, id) = (rec.codec(), rec.epoch(), rec.track.id);
        let Some(done) = rec.finish(&self.stats) else {
            return;
        };
        // The first frame's arrival on the wall clock.
        let started = epoch.map_or(0.0, |at| {
            let ago = Instant::now().saturating_duration_since(at);
            SystemTime::now()
                .checked_sub(ago)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64())
        });
        let path = done.path.display().to_string();
        info!(room = %meta.room, recording = %meta.recording, path, frames = done.frames, "recording finished");
        let Some(hooks) = &self.recorder.hooks else {
            return;
        };
        let data = json!({
            "recording": meta.recording,
            "participant": meta.participant,
            "track": id.get(),
            "codec": codec.map(|c| c.name()),
            "path": path,
            "frames": done.frames,
            "bytes": done.bytes,
            "duration": done.last_ns as f64 / 1e9,
            "started_at": started,
        });
        hooks.emit("recording_finished", &meta.room, data);
    }
}

/// Makes `--record-dir` (and checks it can be written), at start.
pub fn prepare_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("--record-dir {}: {e}", dir.display()))?;
    let probe = dir.join(".uringcast-write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            warn!(dir = %dir.display(), error = %e, "--record-dir is not writable");
            format!("--record-dir {}: cannot write there: {e}", dir.display())
        })
}
