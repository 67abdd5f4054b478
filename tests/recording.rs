//! Recording (`--record-dir`) through the real binary: a WHIP publisher
//! (the project's client: synthetic VP8 at 30 fps with valid descriptors
//! and keyframe headers, Opus-sized audio at 50 packets/s) sends for 10 s
//! with `--record-all`, and ffprobe reads back one WebM file per track:
//! its codec, its packet count and its duration. Then a room recording
//! started and stopped with the admin API (and refused without it), with
//! its `recording_finished` webhook events. Needs `ffprobe` (ffmpeg).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ServerProc, request};
use uringcast_load::client::ClientOptions;
use uringcast_load::client::payload::Kind;

const ADMIN: &str = "admin-secret";

/// A fresh directory under the system's temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uringcast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// What ffprobe reads of a one-track file.
#[derive(Debug)]
struct Probe {
    codec: String,
    packets: u64,
    duration: f64,
    width: Option<u64>,
}

fn ffprobe(path: &Path) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,nb_read_packets,width:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe's JSON");
    let stream = &json["streams"][0];
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    Probe {
        codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        packets: number(&stream["nb_read_packets"]).unwrap_or(0.0) as u64,
        duration: number(&json["format"]["duration"]).unwrap_or(0.0),
        width: stream["width"].as_u64(),
    }
}

/// The recorder's counter `name` from `/v1/stats`.
fn recording(server: &ServerProc, name: &str) -> u64 {
    server.stats()["recording"][name].as_u64().unwrap_or(0)
}

#[test]
fn a_whip_session_is_recorded_to_webm_files_ffprobe_reads() {
    let dir = scratch("record-all");
    let server = ServerProc::start(&["--record-dir", dir.to_str().expect("utf-8"), "--record-all"]);
    let (flags, publisher) = common::sending_publisher(
        &server.base,
        "rec",
        ClientOptions::default(),
        Duration::from_secs(40),
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    flags.send.store(false, Ordering::Relaxed);
    let sent_for = started.elapsed().as_secs_f64();
    flags.stop.store(true, Ordering::Relaxed);
    let client = publisher.join();
    let (audio_sent, video_sent) = (client.sent(Kind::Audio), client.sent(Kind::Video));
    assert_eq!(client.delete().expect("DELETE"), 200);

    assert!(
        server.wait_for(Duration::from_secs(10), |s| {
            s["recording"]["files_finished"].as_u64() == Some(2)
        }),
        "both files finished: {}",
        server.stats()["recording"]
    );
    assert!(
        files(&dir, ".part").is_empty(),
        "no file is left unfinished"
    );
    let webm = files(&dir, ".webm");
    assert_eq!(webm.len(), 2, "one file per track: {webm:?}");
    let audio = webm
        .iter()
        .find(|p| p.to_string_lossy().contains("-audio-"));
    let video = webm
        .iter()
        .find(|p| p.to_string_lossy().contains("-video-"));
    let (audio, video) = (
        ffprobe(audio.expect("audio")),
        ffprobe(video.expect("video")),
    );
    eprintln!("sent {sent_for:.2} s: {audio_sent} audio packets, {video_sent} video packets");
    eprintln!("audio file: {audio:?}\nvideo file: {video:?}");
    eprintln!("recorder: {}", server.stats()["recording"]);

    assert_eq!(audio.codec, "opus");
    assert_eq!((video.codec.as_str(), video.width), ("vp8", Some(320)));
    for probe in [&audio, &video] {
        assert!(
            (probe.duration - sent_for).abs() <= 0.5,
            "{} lasts {:.2} s, sent for {sent_for:.2} s",
            probe.codec,
            probe.duration
        );
    }
    // One Opus packet is one frame; a video frame is several packets (the
    // client's default 1 Mbit/s at 30 fps: 4166 bytes in packets of 1100
    // at most, so 4).
    let options = ClientOptions::default();
    let per_frame = (options.video_bitrate / 8 / options.fps).div_ceil(1100);
    let frames = video_sent / u64::from(per_frame);
    let near = |got: u64, want: u64| got.abs_diff(want) <= want / 50 + 2;
    assert!(near(audio.packets, audio_sent), "{audio:?} of {audio_sent}");
    assert!(near(video.packets, frames), "{video:?} of {frames} frames");
    assert_eq!(recording(&server, "dropped"), 0);
    assert_eq!(recording(&server, "lost_frames"), 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A webhook receiver: the bodies it got.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let (mut line, mut length) = (String::new(), 0);
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some((k, v)) = line.trim_end().split_once(": ")
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(value) = serde_json::from_slice(&body) {
                bodies.lock().expect("lock").push(value);
            }
            let answer = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    (url, got)
}

#[test]
fn the_admin_api_starts_and_stops_a_room_recording() {
    let dir = scratch("record-admin");
    let (hook, events) = receiver();
    let server = ServerProc::start(&[
        "--record-dir",
        dir.to_str().expect("utf-8"),
        "--admin-token",
        ADMIN,
        "--webhook-url",
        &hook,
    ]);
    let bearer = format!("Bearer {ADMIN}");
    let admin = [("Authorization", bearer.as_str())];
    let post = |room: &str, headers: &[(&str, &str)]| {
        request(
            &server.base,
            "POST",
            &format!("/v1/rooms/{room}/recording"),
            headers,
            "",
        )
    };
    // No such room yet.
    assert_eq!(post("live", &admin).0, 404);
    let (flags, publisher) = common::sending_publisher(
        &server.base,
        "live",
        ClientOptions::default(),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(files(&dir, ".webm").is_empty() && files(&dir, ".part").is_empty());
    assert_eq!(post("live", &[]).0, 401, "only the admin API may record");

    let (status, _, body) = post("live", &admin);
    assert_eq!(status, 201, "{body}");
    let started: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let id = started["id"].as_str().expect("a recording id").to_owned();
    assert_eq!(
        started["tracks"].as_array().map(Vec::len),
        Some(2),
        "{started}"
    );
    assert_eq!(post("live", &admin).0, 409, "recorded already");
    std::thread::sleep(Duration::from_secs(4));
    let stop = request(
        &server.base,
        "DELETE",
        "/v1/rooms/live/recording",
        &admin,
        "",
    );
    assert_eq!(stop.0, 200, "{}", stop.2);
    assert!(
        server.wait_for(Duration::from_secs(5), |s| {
            s["recording"]["files_finished"].as_u64() == Some(2)
        }),
        "both files finished: {}",
        server.stats()["recording"]
    );
    let metrics = request(&server.base, "GET", "/metrics", &[], "").2;
    for series in [
        "uringcast_record_files_finished_total 2",
        "uringcast_record_files_open 0",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "{series} in /metrics"
        );
    }
    let stopped_at = Instant::now();
    // The publisher goes on, unrecorded.
    std::thread::sleep(Duration::from_secs(1));
    flags.stop.store(true, Ordering::Relaxed);
    let client = publisher.join();
    assert_eq!(client.delete().expect("DELETE"), 200);
    let after = request(
        &server.base,
        "DELETE",
        "/v1/rooms/live/recording",
        &admin,
        "",
    );
    assert_eq!(after.0, 404, "no recording left");

    let webm = files(&dir, ".webm");
    assert_eq!(webm.len(), 2, "{webm:?}");
    for path in &webm {
        assert!(
            path.to_string_lossy()
                .contains(&format!("/live/{id}/whip-")),
            "{path:?}"
        );
        let probe = ffprobe(path);
        eprintln!("{}: {probe:?}", path.display());
        // 4 s of recording, give or take a keyframe's wait.
        assert!((3.0..=4.6).contains(&probe.duration), "{probe:?}");
    }
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    let finished = loop {
        let finished: Vec<serde_json::Value> = (events.lock().expect("lock").iter())
            .filter(|e| e["event"] == "recording_finished")
            .cloned()
            .collect();
        if finished.len() >= 2 || Instant::now() > deadline {
            break finished;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(finished.len(), 2, "one recording_finished per file");
    for event in &finished {
        assert_eq!(
            (event["room"].as_str(), event["data"]["recording"].as_str()),
            (Some("live"), Some(id.as_str()))
        );
        let path = event["data"]["path"].as_str().expect("a path");
        assert!(webm.iter().any(|p| p.to_string_lossy() == path), "{path}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// An HS256 token for `claims`, valid for 10 minutes.
fn jwt(key: &[u8], mut claims: serde_json::Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    claims["exp"] = serde_json::json!(now + 600);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .expect("a token")
}

#[test]
fn a_token_with_the_record_grant_records_its_room_only() {
    use base64::Engine;
    const KEY: &[u8] = b"a recording key of at least 32 bytes!!";
    let dir = scratch("record-grant");
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    let server = ServerProc::start(&[
        "--record-dir",
        dir.to_str().expect("utf-8"),
        "--auth-key",
        &key,
        "--admin-token",
        ADMIN,
    ]);
    let bearer = format!("Bearer {ADMIN}");
    let created = request(
        &server.base,
        "POST",
        "/v1/rooms",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"standup"}"#,
    );
    assert_eq!(created.0, 201, "{}", created.2);
    let as_token = |method: &str, claims: serde_json::Value| {
        let token = format!("Bearer {}", jwt(KEY, claims));
        request(
            &server.base,
            method,
            "/v1/rooms/standup/recording",
            &[("Authorization", &token)],
            "",
        )
        .0
    };
    let owner = serde_json::json!({"room": "standup", "role": "*", "owner": true});
    assert_eq!(as_token("POST", owner), 403, "no record grant");
    let elsewhere = serde_json::json!({"room": "other", "role": "*", "record": true});
    assert_eq!(as_token("POST", elsewhere), 403, "another room");
    let recorder = serde_json::json!({"room": "standup", "role": "*", "record": true});
    assert_eq!(as_token("POST", recorder.clone()), 201);
    assert_eq!(as_token("DELETE", recorder.clone()), 200);
    assert_eq!(as_token("DELETE", recorder), 404);
    // Nothing was published: no file.
    assert!(files(&dir, ".webm").is_empty() && files(&dir, ".part").is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn files_open_at_shutdown_are_finished() {
    let dir = scratch("record-shutdown");
    let mut server = ServerProc::start(&[
        "--record-dir",
        dir.to_str().expect("utf-8"),
        "--record-all",
        "--drain-timeout",
        "1s",
    ]);
    let (flags, publisher) = common::sending_publisher(
        &server.base,
        "bye",
        ClientOptions::default(),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        files(&dir, ".part").len(),
        2,
        "both files are being written"
    );
    // The publisher is still sending when the server goes.
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    flags.stop.store(true, Ordering::Relaxed);
    drop(publisher.join());
    assert!(files(&dir, ".part").is_empty(), "nothing left unfinished");
    let webm = files(&dir, ".webm");
    assert_eq!(webm.len(), 2, "{webm:?}");
    for path in &webm {
        let probe = ffprobe(path);
        assert!(probe.duration >= 2.8, "{}: {probe:?}", path.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn record_all_needs_a_record_dir_from_any_layer() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_uringcast"))
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let alone = run(&[
        "--record-all",
        "--udp-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    assert!(!alone.status.success());
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(
        stderr.contains("--record-all needs --record-dir"),
        "{stderr}"
    );
    // The directory from the file, the flag on the command line.
    let dir = scratch("record-config");
    let file = dir.join("uringcast.toml");
    std::fs::write(&file, format!("record-dir = {:?}\n", dir.join("out"))).expect("write");
    let printed = run(&[
        "--config",
        file.to_str().expect("utf-8"),
        "--record-all",
        "--print-config",
    ]);
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(stdout.contains("record-all = true  # flag"), "{stdout}");
    assert!(stdout.contains("# file"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
