//! One recorded track, from packets to its file: reorder ([`Hold`]),
//! frames ([`Assembler`]), time ([`Clock`]), WebM ([`WebmFile`]) or MP4
//! ([`Mp4File`], H264). The file opens at the first frame that can start
//! it — a keyframe with its picture size (VP8, VP9) or its SPS and PPS
//! (H264) for video, any frame for audio — and video waits for a
//! keyframe again after every lost frame, asking for one (through the
//! recorder, at most once a [`KEYFRAME_RETRY`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;
use tracing::warn;

use super::clock::Clock;
use super::frame::{Assembled, Assembler, Frame, Recordable};
use super::hold::{Hold, Released};
use super::mp4::{Mp4File, parameter_sets};
use super::webm::{FileError, Finished, WebmFile};
use super::{RecordStats, TrackMeta};
use crate::sfu::{Forwarded, PublishedTrack};

/// How often a track waiting for a keyframe asks again.
pub const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

/// Where a track stands.
#[derive(Debug)]
enum State {
    /// No packet seen yet: the codec is not known.
    New,
    Recording {
        codec: Recordable,
        assembler: Assembler,
    },
    /// Not recorded (codec without a writer, or the file failed).
    Refused,
}

/// A track being recorded.
#[derive(Debug)]
pub struct TrackRec {
    pub meta: TrackMeta,
    pub track: Arc<PublishedTrack>,
    /// The file, once it has.
    pub path: PathBuf,
    state: State,
    hold: Hold,
    clock: Clock,
    file: Option<MediaFile>,
    /// When the file's first frame arrived.
    epoch: Option<Instant>,
    /// Video only: frames are skipped until a keyframe.
    wants_keyframe: bool,
    asked_keyframe: Option<Instant>,
    /// Set by a stop: finished once queued packets had time to arrive.
    pub stop_at: Option<Instant>,
    released: Vec<Released>,
}

impl TrackRec {
    /// A track to record under `dir`.
    pub fn new(dir: &std::path::Path, meta: TrackMeta, track: Arc<PublishedTrack>) -> Self {
        let kind = match track.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let name = format!(
            "{}-{kind}-{}.webm",
            path_safe(&meta.participant),
            track.id.get()
        );
        let path = dir
            .join(path_safe(&meta.room))
            .join(path_safe(&meta.recording))
            .join(name);
        Self {
            meta,
            path,
            state: State::New,
            hold: Hold::default(),
            clock: Clock::new(0),
            file: None,
            epoch: None,
            wants_keyframe: track.kind == MediaKind::Video,
            asked_keyframe: None,
            stop_at: None,
            released: Vec::new(),
            track,
        }
    }

    /// One packet of the track, as the shard forwarded it.
    pub fn packet(&mut self, packet: Arc<Forwarded>, stats: &RecordStats) {
        if let State::New = self.state {
            self.state = self.classify(&packet, stats);
            self.clock = Clock::new(packet.clock_rate);
        }
        if !matches!(self.state, State::Recording { .. }) {
            return;
        }
        let mut released = std::mem::take(&mut self.released);
        self.hold.push(packet, &mut released);
        self.consume(&mut released, stats);
        self.released = released;
    }

    /// Gives up on packets missing for too long.
    pub fn expire(&mut self, now: Instant, stats: &RecordStats) {
        let mut released = std::mem::take(&mut self.released);
        self.hold.expire(now, &mut released);
        self.consume(&mut released, stats);
        self.released = released;
    }

    /// Whether to ask the publisher for a keyframe now (marked as asked).
    pub fn wants_keyframe(&mut self, now: Instant) -> bool {
        let recording = matches!(self.state, State::Recording { .. } | State::New);
        if !(self.wants_keyframe && recording)
            || self
                .asked_keyframe
                .is_some_and(|at| now.duration_since(at) < KEYFRAME_RETRY)
        {
            return false;
        }
        self.asked_keyframe = Some(now);
        true
    }

    /// Writes what is held and closes the file; `None` if it never opened
    /// (or failed, counted).
    pub fn finish(mut self, stats: &RecordStats) -> Option<Finished> {
        let mut released = std::mem::take(&mut self.released);
        self.hold.flush(&mut released);
        self.consume(&mut released, stats);
        let file = self.file.take()?;
        stats.files_open.fetch_sub(1, Ordering::Relaxed);
        match file.finish() {
            Ok(finished) => {
                stats.files_finished.fetch_add(1, Ordering::Relaxed);
                Some(finished)
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, room = %self.meta.room, "recording: cannot finish the file");
                None
            }
        }
    }

    /// The codec of the track's first packet, or why it is not recorded.
    fn classify(&self, packet: &Forwarded, stats: &RecordStats) -> State {
        let codec = (self.track.params.iter())
            .find(|p| *p.pt() == packet.pt)
            .map(|p| p.spec().codec);
        match codec.map(Recordable::of) {
            Some(Ok(codec)) => State::Recording {
                codec,
                assembler: Assembler::new(codec),
            },
            other => {
                let reason = match other {
                    Some(Err(reason)) => reason,
                    _ => "its payload type was not negotiated",
                };
                stats.unsupported.fetch_add(1, Ordering::Relaxed);
                warn!(room = %self.meta.room, track = self.track.id.get(), ?codec, reason, "recording: track not recorded");
                State::Refused
            }
        }
    }

    fn consume(&mut self, released: &mut Vec<Released>, stats: &RecordStats) {
        for item in released.drain(..) {
            let State::Recording { assembler, .. } = &mut self.state else {
                return;
            };
            let assembled = match item {
                Released::Packet(packet) => assembler.push(packet),
                Released::Gap(packets) => {
                    stats.lost_packets.fetch_add(packets, Ordering::Relaxed);
                    assembler.gap()
                }
            };
            match assembled {
                Assembled::Nothing => {}
                Assembled::Lost => {
                    stats.lost_frames.fetch_add(1, Ordering::Relaxed);
                    self.wants_keyframe |= self.track.kind == MediaKind::Video;
                }
                Assembled::Frame(frame) => self.frame(frame, stats),
            }
        }
    }

    fn frame(&mut self, frame: Frame, stats: &RecordStats) {
        let State::Recording { codec, .. } = self.state else {
            return;
        };
        if self.wants_keyframe && !frame.keyframe {
            return;
        }
        if self.file.is_none() && !self.open(codec, &frame, stats) {
            return;
        }
        self.wants_keyframe = false;
        let epoch = *self.epoch.get_or_insert(frame.received);
        let arrival = frame.received.saturating_duration_since(epoch).as_nanos();
        let t = self.clock.time(frame.source, frame.ts, arrival as u64);
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write(&frame.data, t, frame.keyframe) {
            Ok(()) => {
                stats.frames.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
            }
            Err(e) => self.fail(&e, stats),
        }
    }

    /// Opens the file at `frame`; `false` if it cannot start one.
    fn open(&mut self, codec: Recordable, frame: &Frame, stats: &RecordStats) -> bool {
        let size = match (codec, frame.size) {
            (Recordable::Opus, _) => (0, 0),
            (Recordable::H264, _) if parameter_sets(&frame.data).is_some() => (0, 0),
            (Recordable::Vp8 | Recordable::Vp9, Some(size)) => size,
            // A keyframe whose size or parameter sets we cannot read: wait
            // for the next.
            _ => return false,
        };
        self.path.set_extension(codec.extension());
        let created = match codec {
            Recordable::H264 => Mp4File::create(&self.path).map(|f| MediaFile::Mp4(Box::new(f))),
            _ => WebmFile::create(&self.path, codec, size).map(MediaFile::Webm),
        };
        match created {
            Ok(file) => {
                self.file = Some(file);
                stats.files_open.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.fail(&e, stats);
                false
            }
        }
    }

    /// A write failed: the file is finished if it can be, the track is
    /// recorded no more.
    fn fail(&mut self, error: &FileError, stats: &RecordStats) {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        warn!(error = %error, room = %self.meta.room, "recording: the track's recording stopped");
        self.state = State::Refused;
        if let Some(file) = self.file.take() {
            stats.files_open.fetch_sub(1, Ordering::Relaxed);
            file.discard();
        }
    }

    /// The codec, once known.
    pub fn codec(&self) -> Option<Recordable> {
        match self.state {
            State::Recording { codec, .. } => Some(codec),
            _ => None,
        }
    }

    /// When the file's first frame arrived.
    pub fn epoch(&self) -> Option<Instant> {
        self.epoch
    }
}

/// A track's open file.
#[derive(Debug)]
enum MediaFile {
    Webm(WebmFile),
    // The muxer's state is large: boxed, as one file per track is.
    Mp4(Box<Mp4File>),
}

impl MediaFile {
    fn write(&mut self, data: &[u8], t_ns: u64, keyframe: bool) -> Result<(), FileError> {
        match self {
            Self::Webm(f) => f.write(data, t_ns, keyframe),
            Self::Mp4(f) => f.write(data, t_ns, keyframe),
        }
    }

    fn finish(self) -> Result<Finished, FileError> {
        match self {
            Self::Webm(f) => f.finish(),
            Self::Mp4(f) => f.finish(),
        }
    }

    fn discard(self) {
        match self {
            Self::Webm(f) => f.discard(),
            Self::Mp4(f) => f.discard(),
        }
    }
}

/// `name` as one path component: ASCII letters, digits, `-`, `_` and `.`
/// (not leading); anything else becomes `_`.
pub fn path_safe(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(100)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        assert_eq!(path_safe("../../etc"), "_.._.._etc");
        assert_eq!(path_safe("a/b c"), "a_b_c");
        assert_eq!(path_safe(""), "_");
        assert_eq!(path_safe("whip-3"), "whip-3");
    }
}
