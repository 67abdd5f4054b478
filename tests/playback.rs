//! Playback of a recording through the real binary: a WHIP publisher (the
//! project's client, one packet per video frame) is recorded for 4 s with
//! `--record-all`; then a WHEP viewer of `/whep/recordings/{id}` receives
//! the recording's audio and video, paced in real time (spread over about
//! the recording's duration, not a burst); two viewers share one playback,
//! which ends when they leave. Unknown and malformed ids are refused.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ServerProc, request};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole};

/// A fresh directory under the system's temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uringcast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Frames in the WebM file of `kind` in `dir` (read with the demuxer).
fn frames_of(dir: &Path, kind: &str) -> u64 {
    let path = std::fs::read_dir(dir)
        .expect("the recording's directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&format!("-{kind}-")))
        .expect("a file of that kind");
    let file = std::fs::File::open(&path).expect("open");
    let mut mkv =
        matroska_demuxer::MatroskaFile::open(std::io::BufReader::new(file)).expect("webm");
    let mut frame = matroska_demuxer::Frame::default();
    let mut n = 0;
    while mkv.next_frame(&mut frame).expect("a frame") {
        n += 1;
    }
    n
}

/// Records 4 s in room `rec`; returns the recording's directory.
fn record(server: &ServerProc, dir: &Path) -> PathBuf {
    let options = ClientOptions {
        video_bitrate: 40_000,
        ..ClientOptions::default()
    };
    let (flags, publisher) =
        common::sending_publisher(&server.base, "rec", options, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4));
    flags.send.store(false, Ordering::Relaxed);
    flags.stop.store(true, Ordering::Relaxed);
    let client = publisher.join();
    assert_eq!(client.delete().expect("DELETE"), 200);
    assert!(
        server.wait_for(Duration::from_secs(10), |s| {
            s["recording"]["files_finished"].as_u64() == Some(2)
        }),
        "both files finished: {}",
        server.stats()["recording"]
    );
    std::fs::read_dir(dir.join("rec"))
        .expect("the room's directory")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("one recording")
}

#[test]
fn a_recording_is_played_back_to_a_whep_viewer_in_real_time() {
    let dir = scratch("playback");
    let server = ServerProc::start(&["--record-dir", dir.to_str().expect("utf-8"), "--record-all"]);
    let recording = record(&server, &dir);
    let id = recording
        .file_name()
        .and_then(|n| n.to_str())
        .expect("an id")
        .to_owned();
    let (audio_frames, video_frames) = (
        frames_of(&recording, "audio"),
        frames_of(&recording, "video"),
    );
    assert!(
        video_frames >= 100 && audio_frames >= 170,
        "{video_frames} {audio_frames}"
    );

    let mut viewer = Client::connect(
        &server.base,
        &format!("recordings/{id}"),
        ClientRole::Watch,
        ClientOptions::default(),
    )
    .expect("the viewer's POST is answered");
    let (send, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let begun = Instant::now();
    let (mut first, mut last, mut seen) = (None, begun, 0);
    while begun.elapsed() < Duration::from_secs(20) && last.elapsed() < Duration::from_secs(2) {
        viewer
            .run(Instant::now() + Duration::from_millis(20), &send, &stop)
            .expect("the viewer runs");
        let total = viewer.received(Kind::Audio).packets + viewer.received(Kind::Video).packets;
        if total > seen {
            seen = total;
            last = Instant::now();
            first.get_or_insert(last);
        }
    }
    let (audio, video) = (
        viewer.received(Kind::Audio).packets,
        viewer.received(Kind::Video).packets,
    );
    let span = first.map_or(Duration::ZERO, |f| last.duration_since(f));
    eprintln!(
        "played back: video {video}/{video_frames}, audio {audio}/{audio_frames} over {span:?}"
    );
    assert!(
        video * 10 >= video_frames * 8 && audio * 10 >= audio_frames * 8,
        "received {video}/{video_frames} video and {audio}/{audio_frames} audio packets"
    );
    assert!(
        span >= Duration::from_secs(3),
        "paced over {span:?}, not a burst"
    );
    assert!(span <= Duration::from_secs(6), "paced over {span:?}");
    let _ = viewer.delete();
    // The playback ended (it closed its session): no session but none left
    // over once the viewer is gone.
    assert!(
        server.wait_for(Duration::from_secs(10), |s| s["sessions"].as_u64()
            == Some(0)),
        "sessions: {}",
        server.stats()["sessions"]
    );
}

/// Runs `viewer` for `time`.
fn watch_for(viewer: &mut Client, time: Duration) {
    let (send, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    viewer
        .run(Instant::now() + time, &send, &stop)
        .expect("the viewer runs");
}

#[test]
fn viewers_share_a_playback_that_ends_when_the_last_one_leaves() {
    let dir = scratch("playback-leave");
    let server = ServerProc::start(&["--record-dir", dir.to_str().expect("utf-8"), "--record-all"]);
    let recording = record(&server, &dir);
    let id = recording
        .file_name()
        .and_then(|n| n.to_str())
        .expect("an id");
    let room = format!("recordings/{id}");
    let watch = || {
        Client::connect(
            &server.base,
            &room,
            ClientRole::Watch,
            ClientOptions::default(),
        )
        .expect("the viewer's POST is answered")
    };
    let mut first = watch();
    watch_for(&mut first, Duration::from_millis(300));
    let mut second = watch();
    watch_for(&mut first, Duration::from_millis(700));
    watch_for(&mut second, Duration::from_millis(300));
    // One playback publisher and two viewers.
    assert_eq!(server.stats()["sessions"].as_u64(), Some(3));
    assert!(
        first.received(Kind::Video).packets > 0,
        "the first viewer receives"
    );
    assert_eq!(first.delete().expect("DELETE"), 200);
    assert_eq!(second.delete().expect("DELETE"), 200);
    let left = Instant::now();
    assert!(
        server.wait_for(Duration::from_secs(10), |s| s["sessions"].as_u64()
            == Some(0)),
        "the playback ends"
    );
    assert!(
        left.elapsed() < Duration::from_secs(2),
        "it ended when its viewers left ({:?}), not at the end of its files",
        left.elapsed()
    );
}

#[test]
fn unknown_and_malformed_recording_ids_are_refused() {
    let dir = scratch("playback-ids");
    let server = ServerProc::start(&["--record-dir", dir.to_str().expect("utf-8")]);
    let offer = common::offer(
        &[str0m::media::MediaKind::Video],
        str0m::media::Direction::RecvOnly,
        |c| c,
    );
    let post = |id: &str| {
        let path = format!("/whep/recordings/{id}");
        request(
            &server.base,
            "POST",
            &path,
            &[("Content-Type", "application/sdp")],
            &offer,
        )
        .0
    };
    assert_eq!(post("1765100000-1"), 404);
    assert_eq!(post("..%2Fx"), 400);
    assert_eq!(post("a%20b"), 400);
}
