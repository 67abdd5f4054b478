//! Packets made up for the recorder's unit tests, and a track recorded
//! from them to a real file (checked with ffprobe when it is installed).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
use str0m::media::{Frequency, Mid};

use super::track::TrackRec;
use super::{RecordStats, TrackMeta};
use crate::sfu::{Forwarded, PublishedTrack, Source, TrackId};

fn track(source: Source, codec: Codec, pt: u8, rate: Frequency) -> Arc<PublishedTrack> {
    let spec = CodecSpec {
        codec,
        clock_rate: rate,
        channels: (codec == Codec::Opus).then_some(2),
        format: FormatParams::default(),
    };
    Arc::new(PublishedTrack::new(
        TrackId::new(9, source as u8),
        Mid::from("0"),
        source,
        vec![PayloadParams::new(pt.into(), None, spec)],
    ))
}

/// A VP8 packet of source `source` (the payload's bytes do not matter).
pub fn packet(source: u64, seq: u64, ts: u32, received: Instant) -> Arc<Forwarded> {
    packet_with(source, seq, ts, false, vec![0], received)
}

pub fn packet_with(
    source: u64,
    seq: u64,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
    received: Instant,
) -> Arc<Forwarded> {
    packet_of(
        &track(Source::Camera, Codec::Vp8, 96, Frequency::NINETY_KHZ),
        source,
        seq,
        ts,
        marker,
        payload,
        received,
    )
}

fn packet_of(
    track: &Arc<PublishedTrack>,
    source: u64,
    seq: u64,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
    received: Instant,
) -> Arc<Forwarded> {
    let pt = track.params.first().map_or(0, |p| *p.pt());
    Arc::new(Forwarded {
        room_id: 1,
        track: track.clone(),
        main: true,
        source,
        pt,
        clock_rate: track
            .params
            .first()
            .map_or(90_000, |p| p.spec().clock_rate.get()),
        seq,
        ts,
        marker,
        audio_level: None,
        voice_activity: None,
        payload: payload.into(),
        received,
    })
}

/// A VP8 keyframe's first bytes: frame tag (key, shown), start code, size.
pub fn vp8_keyframe(width: u16, height: u16) -> Vec<u8> {
    let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    frame.extend_from_slice(&width.to_le_bytes());
    frame.extend_from_slice(&height.to_le_bytes());
    frame.extend_from_slice(&[0xab; 20]);
    frame
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("uringcast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// ffprobe's packet count and duration of `path`, if ffprobe runs here.
fn probe(path: &std::path::Path) -> Option<(String, u64, f64)> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,nb_read_packets:format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .ok()?;
    // Installed: it must read the file.
    let text = String::from_utf8_lossy(&out.stdout);
    let read = || {
        let mut lines = text.lines();
        let mut stream = lines.next()?.split(',');
        let codec = stream.next()?.to_owned();
        let packets = stream.next()?.trim().parse().ok()?;
        let duration = lines.next()?.trim().parse().ok()?;
        Some((codec, packets, duration))
    };
    let probe = read();
    assert!(
        probe.is_some(),
        "ffprobe: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    probe
}

#[test]
fn a_vp8_track_with_a_loss_is_recorded_from_keyframe_to_keyframe() {
    let dir = scratch_dir("rec-vp8");
    let video = track(Source::Camera, Codec::Vp8, 96, Frequency::NINETY_KHZ);
    let meta = TrackMeta {
        recording: "r1".into(),
        room: "a room".into(),
        participant: "whip-9".into(),
    };
    let stats = RecordStats::default();
    let mut rec = TrackRec::new(&dir, meta, video.clone());
    let t0 = Instant::now();
    // 3 s at 30 fps, two packets a frame, a keyframe at 0 and at 2 s; the
    // second packet of frame 30 is lost.
    let mut seq = 1000;
    for frame in 0..90u32 {
        let key = frame % 60 == 0;
        let mut body = if key {
            vp8_keyframe(320, 240)
        } else {
            vec![0x11, 0, 0, 1]
        };
        body.insert(0, 0x10); // S=1, PID=0
        let at = t0 + Duration::from_millis(u64::from(frame) * 33);
        let ts = 7 + frame * 3000;
        rec.packet(packet_of(&video, 5, seq, ts, false, body, at), &stats);
        if frame != 30 {
            rec.packet(
                packet_of(&video, 5, seq + 1, ts, true, vec![0, 9, 9], at),
                &stats,
            );
        }
        seq += 2;
        rec.expire(at + Duration::from_millis(300), &stats);
        if frame == 31 {
            assert!(rec.wants_keyframe(at), "a loss asks for a keyframe");
        }
    }
    assert!(!rec.wants_keyframe(Instant::now()), "the keyframe came");
    let done = rec.finish(&stats).expect("a finished file");
    assert!(done.path.ends_with("a_room/r1/whip-9-video-2305.webm"));
    assert!(!done.path.with_extension("webm.part").exists());
    // Frames 0..=29 and 60..=89: the rest waited for the keyframe.
    assert_eq!(done.frames, 60);
    assert_eq!(stats.lost_frames.load(Ordering::Relaxed), 1);
    assert_eq!(done.last_ns, 89 * 3000 * 1_000_000_000 / 90_000);
    if let Some((codec, packets, duration)) = probe(&done.path) {
        assert_eq!((codec.as_str(), packets), ("vp8", 60));
        assert!((duration - 2.97).abs() < 0.05, "duration {duration}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_opus_track_is_recorded_from_its_first_packet() {
    let dir = scratch_dir("rec-opus");
    let audio = track(
        Source::Microphone,
        Codec::Opus,
        111,
        Frequency::FORTY_EIGHT_KHZ,
    );
    let meta = TrackMeta {
        recording: "r2".into(),
        room: "room".into(),
        participant: "p".into(),
    };
    let stats = RecordStats::default();
    let mut rec = TrackRec::new(&dir, meta, audio.clone());
    let t0 = Instant::now();
    // 2 s at 50 packets/s, the RTP clock wrapping on the way.
    for i in 0..100u32 {
        let ts = (u32::MAX - 20 * 960).wrapping_add(i * 960);
        let at = t0 + Duration::from_millis(u64::from(i) * 20);
        let p = packet_of(
            &audio,
            3,
            50 + u64::from(i),
            ts,
            false,
            vec![0xfc, 1, 2, 3],
            at,
        );
        rec.packet(p, &stats);
    }
    assert!(!rec.wants_keyframe(Instant::now()));
    let done = rec.finish(&stats).expect("a finished file");
    assert_eq!((done.frames, done.last_ns), (100, 99 * 20_000_000));
    if let Some((codec, packets, duration)) = probe(&done.path) {
        assert_eq!((codec.as_str(), packets), ("opus", 100));
        assert!((duration - 2.0).abs() < 0.05, "duration {duration}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_h265_track_is_refused_and_counted() {
    let dir = scratch_dir("rec-h265");
    let video = track(Source::Camera, Codec::H265, 104, Frequency::NINETY_KHZ);
    let meta = TrackMeta {
        recording: "r3".into(),
        room: "room".into(),
        participant: "p".into(),
    };
    let stats = RecordStats::default();
    let mut rec = TrackRec::new(&dir, meta, video.clone());
    rec.packet(
        packet_of(&video, 1, 1, 0, true, vec![0x65, 1], Instant::now()),
        &stats,
    );
    assert_eq!(stats.unsupported.load(Ordering::Relaxed), 1);
    assert!(!rec.wants_keyframe(Instant::now()));
    assert!(rec.finish(&stats).is_none());
    assert!(!dir.exists());
}

/// `input`'s Annex B NAL units (start codes dropped).
fn annexb_nal_units(input: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= input.len() {
        if input[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(input.len(), |next| next - 3);
        while end > start && input[end - 1] == 0 {
            end -= 1; // a 4-byte start code's leading zero
        }
        nals.push(&input[start..end]);
    }
    nals
}

/// Encodes 2 s of ffmpeg's 320x240 test pattern at 30 fps into `out` with
/// `codec` (the encoder and muxer arguments). Debian's ffmpeg, which
/// scripts/test.sh installs, has libx264 and libvpx: a missing one fails
/// the test rather than skipping it.
fn encode_test_source(out: &std::path::Path, codec: &[&str]) {
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
        ])
        .args(["-t", "2", "-pix_fmt", "yuv420p"])
        .args(codec)
        .arg(out)
        .status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "ffmpeg {codec:?} made no test stream ({status:?}): install Debian's ffmpeg (scripts/test.sh does)"
    );
}

#[test]
fn an_h264_track_from_x264_is_recorded_to_mp4() {
    use str0m::unversioned::{H264Packetizer, Packetizer};
    let dir = scratch_dir("rec-x264");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let source = dir.join("in.h264");
    // 2 s at 30 fps, a keyframe every second, SPS/PPS before each, an
    // access unit delimiter before each frame; no B-frames (as WebRTC).
    encode_test_source(
        &source,
        &[
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "30",
            "-x264-params",
            "aud=1:repeat-headers=1",
            "-f",
            "h264",
        ],
    );
    let stream = std::fs::read(&source).expect("the encoded stream");
    // Access units, split at each delimiter (type 9, not sent).
    let mut units: Vec<Vec<u8>> = Vec::new();
    for nal in annexb_nal_units(&stream) {
        match nal.first().map(|b| b & 0x1f) {
            Some(9) => units.push(Vec::new()),
            Some(_) => {
                if let Some(unit) = units.last_mut() {
                    unit.extend_from_slice(&[0, 0, 0, 1]);
                    unit.extend_from_slice(nal);
                }
            }
            None => {}
        }
    }
    assert_eq!(units.len(), 60);
    let video = track(Source::Camera, Codec::H264, 102, Frequency::NINETY_KHZ);
    let meta = TrackMeta {
        recording: "r4".into(),
        room: "room".into(),
        participant: "p".into(),
    };
    let stats = RecordStats::default();
    let mut rec = TrackRec::new(&dir, meta, video.clone());
    let mut packetizer = H264Packetizer::default();
    let (t0, mut seq) = (Instant::now(), 1u64);
    for (i, unit) in units.iter().enumerate() {
        let payloads = packetizer.packetize(1100, unit).expect("packets");
        let at = t0 + Duration::from_millis(i as u64 * 33);
        let count = payloads.len();
        for (n, payload) in payloads.into_iter().enumerate() {
            let ts = 1000 + i as u32 * 3000;
            rec.packet(
                packet_of(&video, 2, seq, ts, n + 1 == count, payload, at),
                &stats,
            );
            seq += 1;
        }
    }
    let done = rec.finish(&stats).expect("a finished file");
    assert!(
        done.path.to_string_lossy().ends_with(".mp4"),
        "{:?}",
        done.path
    );
    assert_eq!(
        (done.frames, stats.lost_frames.load(Ordering::Relaxed)),
        (60, 0)
    );
    let (codec, packets, duration) = probe(&done.path).expect("ffprobe reads it");
    assert_eq!((codec.as_str(), packets), ("h264", 60));
    assert!((duration - 2.0).abs() < 0.05, "duration {duration}");
    // It decodes, every frame.
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&done.path)
        .args(["-f", "null", "-"])
        .status()
        .expect("ffmpeg runs");
    assert!(decoded.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// A VP9 frame as RTP payloads (RFC 9628): no picture id, no layers; a
/// keyframe's first packet carries the scalability structure with its size.
fn vp9_payloads(frame: &[u8], keyframe: bool, size: (u16, u16)) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = frame.chunks(1100).collect();
    let last = chunks.len() - 1;
    let mut payloads = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let (first, end) = (i == 0, i == last);
        let ss = keyframe && first;
        let mut p = vec![
            u8::from(!keyframe) << 6
                | u8::from(first) << 3
                | u8::from(end) << 2
                | u8::from(ss) << 1,
        ];
        if ss {
            p.push(0x10); // one spatial layer, Y: its size follows
            p.extend_from_slice(&size.0.to_be_bytes());
            p.extend_from_slice(&size.1.to_be_bytes());
        }
        p.extend_from_slice(chunk);
        payloads.push(p);
    }
    payloads
}

#[test]
fn a_vp9_track_from_libvpx_is_recorded_to_webm() {
    let dir = scratch_dir("rec-vp9");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let source = dir.join("in.ivf");
    // 2 s at 30 fps, a keyframe every second, no hidden (alt-ref) frames.
    encode_test_source(
        &source,
        &[
            "-c:v",
            "libvpx-vp9",
            "-g",
            "30",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-lag-in-frames",
            "0",
            "-auto-alt-ref",
            "0",
            "-f",
            "ivf",
        ],
    );
    let ivf = std::fs::read(&source).expect("the encoded stream");
    let mut frames = Vec::new();
    let mut at = usize::from(u16::from_le_bytes([ivf[6], ivf[7]]));
    while let Some(header) = ivf.get(at..at + 12) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        frames.push(&ivf[at + 12..at + 12 + len]);
        at += 12 + len;
    }
    assert_eq!(frames.len(), 60);
    let video = track(Source::Camera, Codec::Vp9, 98, Frequency::NINETY_KHZ);
    let meta = TrackMeta {
        recording: "r5".into(),
        room: "room".into(),
        participant: "p".into(),
    };
    let stats = RecordStats::default();
    let mut rec = TrackRec::new(&dir, meta, video.clone());
    let (t0, mut seq) = (Instant::now(), 1u64);
    for (i, frame) in frames.iter().enumerate() {
        // Profile 0's uncompressed header: frame_type is bit 2 (0: key).
        let keyframe = frame[0] & 0x04 == 0;
        let payloads = vp9_payloads(frame, keyframe, (320, 240));
        let at = t0 + Duration::from_millis(i as u64 * 33);
        let count = payloads.len();
        for (n, payload) in payloads.into_iter().enumerate() {
            let ts = 5 + i as u32 * 3000;
            rec.packet(
                packet_of(&video, 4, seq, ts, n + 1 == count, payload, at),
                &stats,
            );
            seq += 1;
        }
    }
    let done = rec.finish(&stats).expect("a finished file");
    assert_eq!(
        (done.frames, stats.lost_frames.load(Ordering::Relaxed)),
        (60, 0)
    );
    let (codec, packets, duration) = probe(&done.path).expect("ffprobe reads it");
    assert_eq!((codec.as_str(), packets), ("vp9", 60));
    assert!((duration - 1.97).abs() < 0.05, "duration {duration}");
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&done.path)
        .args(["-f", "null", "-"])
        .status()
        .expect("ffmpeg runs");
    assert!(decoded.success());
    let _ = std::fs::remove_dir_all(dir);
}
