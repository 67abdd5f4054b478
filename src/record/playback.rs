//! Playback of a recording to WHEP viewers (`POST /whep/recordings/{id}`).
//!
//! A playback is an in-process *publisher*: one thread per playing
//! recording ("playback") demuxes the recording's WebM files
//! (`matroska-demuxer`), builds a str0m client `Rtc` in frame mode (str0m
//! packetizes VP8, VP9 and Opus), has its offer accepted by the same
//! `accept_offer` a WHIP POST uses, inserts the server's peer in the
//! directory, and drives the client over a loopback UDP socket to the
//! server's own media port, so the shards see an ordinary WHIP publisher.
//! Its room is `recordings/<id>`: no user room can be named so (room names
//! have no `/`), and `--record-all` does not record it again.
//!
//! Frames are written in time order across the files, paced in real time
//! from the first viewer's arrival (plus [`VIEWER_GRACE`], the time its ICE
//! and DTLS take); a stall shifts the schedule instead of bursting. The
//! playback ends, closing its session (DTLS close_notify), when the files
//! end, when its last viewer leaves, when no viewer came within
//! [`IDLE_LIMIT`], or when the server stops. No seeking; keyframe requests
//! are not answered (the recording's own keyframes come in time).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use matroska_demuxer::{Frame, MatroskaFile};
use parking_lot::Mutex;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};
use tracing::{info, warn};

use crate::directory::Directory;
use crate::sfu::{PeerSetup, Role, accept_offer};

/// The room of a playback is this prefix and the recording's id.
pub const ROOM_PREFIX: &str = "recordings/";

/// Most playbacks running at once.
pub const MAX_PLAYBACKS: usize = 16;

/// The longest recording id accepted.
const MAX_ID: usize = 64;

/// How long after its first viewer arrives a playback starts sending.
pub const VIEWER_GRACE: Duration = Duration::from_millis(500);

/// A playback no viewer joined within this ends.
pub const IDLE_LIMIT: Duration = Duration::from_secs(15);

/// A schedule that fell this far behind is shifted, not caught up.
const MAX_LAG: Duration = Duration::from_millis(200);

/// How often a playback looks at its room's viewer count.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Longest sleep of the playback thread.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// Why a playback could not start or went on.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("recording ids are 1 to {MAX_ID} characters of A-Z a-z 0-9 - _ .")]
    BadId,
    #[error("no recording {0:?}")]
    NotFound(String),
    #[error("{MAX_PLAYBACKS} recordings are being played back already")]
    Full,
    #[error("recording {0:?} has no VP8, VP9 or Opus WebM file to play")]
    Empty(String),
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the server refused the playback's offer: {0}")]
    Refused(String),
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("str0m: {0}")]
    Rtc(#[from] RtcError),
}

/// The room a recording is played back in.
pub fn room_of(id: &str) -> Result<String, PlaybackError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(format!("{ROOM_PREFIX}{id}"))
    } else {
        Err(PlaybackError::BadId)
    }
}

/// The running playbacks, by recording id; each holds its stop flag.
pub struct Playbacks {
    dir: PathBuf,
    directory: Arc<Directory>,
    setup: PeerSetup,
    running: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
}

impl Playbacks {
    /// Plays recordings found under `dir` (`--record-dir`).
    pub fn new(dir: PathBuf, directory: Arc<Directory>, setup: PeerSetup) -> Self {
        Self {
            dir,
            directory,
            setup,
            running: Arc::default(),
        }
    }

    /// Starts playing recording `id` unless it plays already; returns its
    /// room. Blocks on the disk and on the offer: call it off the async
    /// runtime.
    pub fn ensure(&self, id: &str) -> Result<String, PlaybackError> {
        let room = room_of(id)?;
        let files = find_recording(&self.dir, id)?;
        let mut running = self.running.lock();
        if running.contains_key(id) {
            return Ok(room);
        }
        if running.len() >= MAX_PLAYBACKS {
            return Err(PlaybackError::Full);
        }
        let source = Source::open(&files, id)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut playback = Playback::connect(&self.directory, &self.setup, &room, source)?;
        running.insert(id.to_owned(), stop.clone());
        let (all, id) = (self.running.clone(), id.to_owned());
        let directory = self.directory.clone();
        let spawned = std::thread::Builder::new()
            .name("playback".into())
            .spawn(move || {
                match playback.run(&directory, &stop) {
                    Ok(()) => info!(recording = id, "playback ended"),
                    Err(e) => warn!(recording = id, error = %e, "playback failed"),
                }
                all.lock().remove(&id);
            });
        if let Err(e) = spawned {
            running.remove(id_of(&room));
            return Err(e.into());
        }
        info!(room, "playback started");
        Ok(room)
    }
}

impl Drop for Playbacks {
    /// The server stops: so do its playbacks.
    fn drop(&mut self) {
        for stop in self.running.lock().values() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

fn id_of(room: &str) -> &str {
    room.strip_prefix(ROOM_PREFIX).unwrap_or(room)
}

/// The finished WebM files of recording `id` (`dir/<room>/<id>/*.webm`).
fn find_recording(dir: &Path, id: &str) -> Result<Vec<PathBuf>, PlaybackError> {
    let read = |path: &Path| {
        std::fs::read_dir(path).map_err(|e| PlaybackError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    for room in read(dir)?.flatten() {
        let candidate = room.path().join(id);
        if !candidate.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = read(&candidate)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "webm"))
            .collect();
        files.sort();
        return Ok(files);
    }
    Err(PlaybackError::NotFound(id.to_owned()))
}

/// One frame of the recording, `t_ns` from its file's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    pub kind: MediaKind,
    pub codec: Codec,
    pub t_ns: u64,
    pub data: Vec<u8>,
}

/// One file's single track and its next frame.
struct Track {
    demuxer: MatroskaFile<BufReader<File>>,
    path: PathBuf,
    kind: MediaKind,
    codec: Codec,
    scale: u64,
    next: Option<Frame>,
    done: bool,
}

impl Track {
    fn open(path: &Path) -> Result<Option<Self>, PlaybackError> {
        let error = |reason: String| PlaybackError::Read {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| error(e.to_string()))?;
        let demuxer = MatroskaFile::open(BufReader::new(file)).map_err(|e| error(e.to_string()))?;
        let Some(entry) = demuxer.tracks().first() else {
            return Ok(None);
        };
        let (kind, codec) = match entry.codec_id() {
            "V_VP8" => (MediaKind::Video, Codec::Vp8),
            "V_VP9" => (MediaKind::Video, Codec::Vp9),
            "A_OPUS" => (MediaKind::Audio, Codec::Opus),
            _ => return Ok(None),
        };
        let scale = demuxer.info().timestamp_scale().get();
        Ok(Some(Self {
            demuxer,
            path: path.to_owned(),
            kind,
            codec,
            scale,
            next: None,
            done: false,
        }))
    }

    /// The timestamp (ns) of the next frame, reading it if needed.
    fn peek(&mut self) -> Result<Option<u64>, PlaybackError> {
        if self.next.is_none() && !self.done {
            let mut frame = Frame::default();
            let more = self
                .demuxer
                .next_frame(&mut frame)
                .map_err(|e| PlaybackError::Read {
                    path: self.path.clone(),
                    reason: e.to_string(),
                })?;
            if more {
                self.next = Some(frame);
            } else {
                self.done = true;
            }
        }
        Ok(self
            .next
            .as_ref()
            .map(|f| f.timestamp.saturating_mul(self.scale)))
    }
}

/// The recording's tracks (one video and one audio at most, of one
/// participant), merged in time order.
pub struct Source {
    tracks: Vec<Track>,
}

impl Source {
    /// Opens `files` (of recording `id`): the tracks of the participant of
    /// the first playable one; other codecs are skipped.
    pub fn open(files: &[PathBuf], id: &str) -> Result<Self, PlaybackError> {
        let mut tracks: Vec<Track> = Vec::new();
        let mut who: Option<String> = None;
        for path in files {
            let participant = participant_of(path);
            if who.as_ref().is_some_and(|w| *w != participant) {
                continue;
            }
            if let Some(track) = Track::open(path)?
                && !tracks.iter().any(|t| t.kind == track.kind)
            {
                tracks.push(track);
                who = Some(participant);
            }
        }
        if tracks.is_empty() {
            return Err(PlaybackError::Empty(id.to_owned()));
        }
        Ok(Self { tracks })
    }

    /// The kinds and codecs to offer.
    fn kinds(&self) -> Vec<(MediaKind, Codec)> {
        self.tracks.iter().map(|t| (t.kind, t.codec)).collect()
    }

    /// The next frame across all tracks, by time; `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<MediaFrame>, PlaybackError> {
        let mut best: Option<(usize, u64)> = None;
        for (i, track) in self.tracks.iter_mut().enumerate() {
            if let Some(t) = track.peek()?
                && best.is_none_or(|(_, b)| t < b)
            {
                best = Some((i, t));
            }
        }
        let Some((i, t_ns)) = best else {
            return Ok(None);
        };
        let Some(track) = self.tracks.get_mut(i) else {
            return Ok(None);
        };
        Ok(track.next.take().map(|frame| MediaFrame {
            kind: track.kind,
            codec: track.codec,
            t_ns,
            data: frame.data,
        }))
    }
}

/// The participant a file `<participant>-<audio|video>-<track>.webm` is of.
fn participant_of(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let cut = ["-audio-", "-video-"]
        .iter()
        .filter_map(|kind| name.rfind(kind))
        .max()
        .unwrap_or(name.len());
    name.get(..cut).unwrap_or(name).to_owned()
}

/// The client side of one playback: its `Rtc` and socket.
struct Playback {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    room: String,
    source: Source,
    /// Mid and payload type per kind, found once connected.
    mids: Vec<(MediaKind, Mid)>,
    connected: bool,
    buf: Vec<u8>,
}

impl Playback {
    /// Offers the source's tracks, has the offer accepted as a WHIP POST's
    /// is, and parks the server's peer in the directory.
    fn connect(
        directory: &Directory,
        setup: &PeerSetup,
        room: &str,
        source: Source,
    ) -> Result<Self, PlaybackError> {
        let (bind, target) = loopback_of(setup.candidates.first().copied());
        let socket = UdpSocket::bind(bind)?;
        let local = socket.local_addr()?;
        let now = Instant::now();
        let mut builder = Rtc::builder()
            .clear_codecs()
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_opus(true, false)
            .set_crypto_provider(setup.crypto.clone());
        if let Some(cert) = &setup.dtls_cert {
            builder = builder.set_dtls_cert(cert.clone());
        }
        let mut rtc = builder.build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| PlaybackError::Refused(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mut mids = Vec::new();
        for (kind, _) in source.kinds() {
            mids.push((
                kind,
                change.add_media(kind, Direction::SendOnly, None, None, None),
            ));
        }
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| PlaybackError::Refused("nothing to offer".into()))?;
        let generation = directory.next_generation();
        let (peer, answer) = accept_offer(
            Role::Publisher,
            &offer.to_sdp_string(),
            setup,
            room,
            None,
            generation,
            now,
        )
        .map_err(|e| PlaybackError::Refused(e.to_string()))?;
        directory
            .insert_from(peer, now, None)
            .map_err(|e| PlaybackError::Refused(e.to_string()))?;
        let answer = SdpAnswer::from_sdp_string(&answer)
            .map_err(|e| PlaybackError::Refused(e.to_string()))?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        if let Ok(remote) = Candidate::host(target, "udp") {
            rtc.add_remote_candidate(remote);
        }
        Ok(Self {
            rtc,
            socket,
            local,
            room: room.to_owned(),
            source,
            mids,
            connected: false,
            buf: vec![0; 2048],
        })
    }

    /// Drives the session and paces the frames until the end (see the
    /// module docs), then closes it.
    fn run(&mut self, directory: &Directory, stop: &AtomicBool) -> Result<(), PlaybackError> {
        let created = Instant::now();
        let mut first_viewer: Option<Instant> = None;
        let mut clock: Option<Instant> = None;
        let mut next = self.source.next_frame()?;
        let (mut next_look, mut viewers_seen) = (created, 0);
        while !stop.load(Ordering::Relaxed) {
            let timeout = self.drain()?;
            let now = Instant::now();
            // The directory is locked a few times a second, not per turn.
            if now >= next_look {
                next_look = now + LOOK_EVERY;
                viewers_seen = directory.viewer_count(&self.room);
            }
            match (viewers_seen, first_viewer) {
                (0, Some(_)) => break,
                (0, None) if now.duration_since(created) > IDLE_LIMIT => break,
                (0, None) => {}
                (_, None) => first_viewer = Some(now),
                _ => {}
            }
            let mut wake = timeout.min(now + MAX_WAIT);
            if self.connected
                && let Some(at) = first_viewer
                && now >= at + VIEWER_GRACE
            {
                let origin = clock.get_or_insert(now);
                while let Some(frame) = next.take() {
                    let due = *origin + Duration::from_nanos(frame.t_ns);
                    if due > now {
                        wake = wake.min(due);
                        next = Some(frame);
                        break;
                    }
                    *origin += lag_beyond(now - due);
                    self.write(now, &frame)?;
                    next = self.source.next_frame()?;
                }
                if next.is_none() {
                    break;
                }
            }
            self.receive(wake)?;
        }
        self.rtc.close()?;
        self.drain()?;
        Ok(())
    }

    /// Waits for a datagram until `wake` and feeds it (or a timeout).
    fn receive(&mut self, wake: Instant) -> Result<(), PlaybackError> {
        let wait = wake
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_micros(500), MAX_WAIT);
        self.socket.set_read_timeout(Some(wait))?;
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, source)) => {
                let Some(Ok(contents)) = self.buf.get(..n).map(|d| d.try_into()) else {
                    return Ok(());
                };
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                );
                self.rtc.handle_input(input)?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                self.rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Writes one frame on its kind's track (str0m packetizes it).
    fn write(&mut self, now: Instant, frame: &MediaFrame) -> Result<(), PlaybackError> {
        let Some(&(_, mid)) = self.mids.iter().find(|(k, _)| *k == frame.kind) else {
            return Ok(());
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == frame.codec)
            .map(|p| p.pt())
        else {
            return Ok(());
        };
        let rate = match frame.kind {
            MediaKind::Audio => Frequency::FORTY_EIGHT_KHZ,
            MediaKind::Video => Frequency::NINETY_KHZ,
        };
        let ticks = u128::from(frame.t_ns) * u128::from(rate.get()) / 1_000_000_000;
        let time = MediaTime::new(u64::try_from(ticks).unwrap_or(u64::MAX), rate);
        writer.write(pt, now, time, frame.data.clone())?;
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain()?;
        Ok(())
    }

    /// Sends what str0m has to send; returns its next timeout.
    fn drain(&mut self) -> Result<Instant, PlaybackError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(t) => {
                    // A full socket buffer loses it as a network would.
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(_) => {}
            }
        }
    }
}

/// How much of `lag` is beyond [`MAX_LAG`]: what the schedule shifts by.
fn lag_beyond(lag: Duration) -> Duration {
    lag.saturating_sub(MAX_LAG)
}

/// Where the playback's socket binds and where it sends: the loopback
/// address of the media address's family (or the media address itself when
/// it is bound to one address), on the media port.
fn loopback_of(media: Option<SocketAddr>) -> (SocketAddr, SocketAddr) {
    let media = media.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let ip = match media.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    (SocketAddr::new(ip, 0), SocketAddr::new(ip, media.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_name_a_room_no_user_room_can_have() {
        assert_eq!(
            room_of("1765100000-3").ok().as_deref(),
            Some("recordings/1765100000-3")
        );
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(matches!(room_of(bad), Err(PlaybackError::BadId)), "{bad:?}");
        }
    }

    #[test]
    fn a_schedule_shifts_only_beyond_the_lag_it_tolerates() {
        assert_eq!(lag_beyond(Duration::from_millis(50)), Duration::ZERO);
        assert_eq!(
            lag_beyond(Duration::from_millis(700)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn the_loopback_of_an_unspecified_media_address_keeps_its_port() {
        let (bind, target) = loopback_of(Some("0.0.0.0:4000".parse().expect("addr")));
        assert_eq!(bind, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(target, "127.0.0.1:4000".parse().expect("addr"));
        let (_, target) = loopback_of(Some("[::]:4000".parse().expect("addr")));
        assert_eq!(target, "[::1]:4000".parse().expect("addr"));
    }

    #[test]
    fn a_recordings_tracks_are_merged_in_time_order() {
        use crate::record::frame::Recordable;
        use crate::record::webm::WebmFile;
        let dir = std::env::temp_dir().join(format!("uringcast-pbm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = crate::record::tests::vp8_keyframe(320, 240);
        let mut video =
            WebmFile::create(&dir.join("p-video-1.webm"), Recordable::Vp8, (320, 240)).expect("v");
        for i in 0..10u64 {
            video
                .write(&key, i * 33_000_000, i == 0)
                .expect("a video frame");
        }
        video.finish().expect("video finished");
        let mut audio =
            WebmFile::create(&dir.join("p-audio-2.webm"), Recordable::Opus, (0, 0)).expect("a");
        for i in 0..16u64 {
            audio
                .write(&[0xf8, 0xff, 0xfe], i * 20_000_000, true)
                .expect("an audio frame");
        }
        audio.finish().expect("audio finished");
        // Another participant's video, after `p`'s audio by name: not played.
        std::fs::copy(dir.join("p-video-1.webm"), dir.join("q-video-3.webm")).expect("copy");
        let files = [dir.join("p-audio-2.webm"), dir.join("q-video-3.webm")];
        let mut only_p = Source::open(&files, "1-1").expect("opens");
        while let Some(frame) = only_p.next_frame().expect("reads") {
            assert_eq!(frame.kind, MediaKind::Audio, "q's video is not p's");
        }
        let files = [dir.join("p-audio-2.webm"), dir.join("p-video-1.webm")];
        let mut source = Source::open(&files, "1-1").expect("opens");
        let mut frames = Vec::new();
        while let Some(frame) = source.next_frame().expect("reads") {
            frames.push(frame);
        }
        assert_eq!(
            frames.iter().filter(|f| f.kind == MediaKind::Video).count(),
            10
        );
        assert_eq!(
            frames.iter().filter(|f| f.kind == MediaKind::Audio).count(),
            16
        );
        assert!(
            frames.windows(2).all(|w| w[0].t_ns <= w[1].t_ns),
            "in time order"
        );
        let last = frames.last().expect("frames");
        assert_eq!(last.t_ns, 300_000_000, "ms precision, scaled to ns");
        assert_eq!(
            frames.first().map(|f| f.data.clone()),
            Some(vec![0xf8, 0xff, 0xfe])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_name_their_participant() {
        assert_eq!(
            participant_of(Path::new("/r/whip-1-video-7.webm")),
            "whip-1"
        );
        assert_eq!(
            participant_of(Path::new("a-audio-b-audio-2.webm")),
            "a-audio-b"
        );
        assert_eq!(participant_of(Path::new("odd.webm")), "odd.webm");
    }

    #[test]
    fn an_unknown_recording_is_not_found() {
        let dir = std::env::temp_dir().join(format!("uringcast-pb-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("room").join("1-1")).expect("dirs");
        assert!(matches!(
            find_recording(&dir, "2-2"),
            Err(PlaybackError::NotFound(_))
        ));
        assert!(matches!(find_recording(&dir, "1-1"), Ok(f) if f.is_empty()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
