//! A real GStreamer client: Debian's GStreamer 1.22 `webrtcbin` (libnice for
//! ICE, its own OpenSSL DTLS with an RSA-2048 certificate, libsrtp), driven
//! by `tests/gst/whipwhep.py` under Debian's `/usr/bin/python3` (python3-gi).
//!
//! - GStreamer publishes VP8 + Opus with WHIP; the project's str0m client
//!   watches with WHEP and receives both.
//! - The str0m client publishes (synthetic VP8 a decoder would reject: valid
//!   payload descriptors and frame headers, filler inside); a GStreamer WHEP
//!   viewer depayloads whole VP8 frames and Opus packets.
//! - GStreamer publishes and a GStreamer viewer decodes real frames
//!   (`vp8dec`, `opusdec`).
//!
//! libnice gathers no candidates on `lo`, so the test gives the namespace a
//! veth pair carrying 127.0.0.2 and binds the server's media port there.
//! That changes network interfaces: it runs only inside a network namespace
//! of its own (`scripts/test.sh` runs every test in `unshare --net`), as root
//! there, and fails (never skips) when it cannot. `scripts/test.sh` and
//! `.ci/run` install the GStreamer packages when missing.
//!
//! Every wait is bounded; every GStreamer process has a hard limit of its
//! own and is killed if it outlives ours. Nothing is sent outside 127.0.0.0/8.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::{Flags, ServerProc};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{ClientOptions, ClientRole};

/// Debian's Python, which has the apt `gi` bindings (a `python3` earlier on
/// PATH, e.g. pyenv's, may not).
const PYTHON: &str = "/usr/bin/python3";
/// The veth pair made for libnice; its first end carries [`MEDIA_IP`].
const VETH: (&str, &str) = ("ucgst0", "ucgst1");
/// The loopback-range address libnice gathers on and the server's media port binds.
const MEDIA_IP: &str = "127.0.0.2";
/// Server log filter: connections and str0m errors (a DTLS failure) per session.
const SERVER_LOG: &str = "warn,uringcast::sfu::peer=debug";
/// The longest one GStreamer process may run (its own hard limit is lower).
const GST_LIMIT: Duration = Duration::from_secs(75);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gst/whipwhep.py")
}

/// Runs a command to completion; its stdout, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_command() -> Option<String> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    on_path
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("ip"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// The interfaces of this process's network namespace (`/proc/net/dev` is
/// per namespace; `/sys/class/net` may show the host's).
fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_owned()))
        .collect()
}

/// Checks what the test needs and makes the veth pair (once per process:
/// the tests here share it); why it cannot, otherwise.
fn prepare() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "not root: it must create a veth pair (run scripts/test.sh, which runs \
             the tests in `unshare --net` as root or with --map-root-user)"
                .into(),
        );
    }
    let ip = ip_command().ok_or("`ip` (iproute2) is not installed: apt-get install iproute2")?;
    let others: Vec<String> = interfaces()
        .into_iter()
        .filter(|i| i != "lo" && i != VETH.0 && i != VETH.1)
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "this network namespace has interfaces besides lo ({others:?}): the test adds a \
             veth with {MEDIA_IP} and must run in a namespace of its own (scripts/test.sh, or \
             `unshare --net -- bash -c 'ip link set lo up && cargo test --test gstreamer'`)"
        ));
    }
    if !interfaces().iter().any(|i| i == VETH.0) {
        run(
            &ip,
            &[
                "link", "add", VETH.0, "type", "veth", "peer", "name", VETH.1,
            ],
        )?;
    }
    run(&ip, &["link", "set", "lo", "up"])?;
    run(&ip, &["link", "set", VETH.1, "up"])?;
    run(&ip, &["link", "set", VETH.0, "up"])?;
    let addrs = run(&ip, &["-o", "-4", "addr", "show", "dev", VETH.0])?;
    if !addrs.contains(&format!("inet {MEDIA_IP}/")) {
        run(
            &ip,
            &["addr", "add", &format!("{MEDIA_IP}/32"), "dev", VETH.0],
        )?;
    }
    // libnice gathers on interfaces that are up and running (carrier).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let link = run(&ip, &["-o", "link", "show", "dev", VETH.0])?;
        if link.contains("LOWER_UP") {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!("{} has no carrier after 5 s: {link}", VETH.0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Python with gi and every GStreamer element the clients use.
    let check = Command::new(PYTHON)
        .arg(script())
        .arg("check")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("{PYTHON}: {e} (apt-get install python3-gi gir1.2-gstreamer-1.0 …)")
        })?;
    if !check.status.success() {
        return Err(format!(
            "GStreamer is not ready: {}{} (run scripts/test.sh, which installs \
             gstreamer1.0-plugins-bad/-good/-base, gstreamer1.0-nice, python3-gi and the \
             gir1.2-gst* packages)",
            String::from_utf8_lossy(&check.stdout).trim(),
            String::from_utf8_lossy(&check.stderr).trim()
        ));
    }
    Ok(())
}

/// Fails the test, with the reason, when [`prepare`] failed.
fn prepared() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = READY.get_or_init(prepare) {
        panic!("the GStreamer test cannot run: {why}");
    }
}

/// A server with its media port on [`MEDIA_IP`] (HTTP stays on 127.0.0.1).
fn server() -> ServerProc {
    let udp = format!("{MEDIA_IP}:0");
    let server = ServerProc::start_with_log(&["--shards", "1", "--udp-addr", &udp], SERVER_LOG);
    assert_eq!(
        server.udp.ip().to_string(),
        MEDIA_IP,
        "the media port is on {MEDIA_IP}"
    );
    server
}

/// One run of `whipwhep.py`.
struct Gst {
    name: String,
    child: Child,
    stdout: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// How a `whipwhep.py` run ended: its status and its JSON line.
struct GstRun {
    name: String,
    status: ExitStatus,
    json: serde_json::Value,
    log: Vec<String>,
}

impl Gst {
    /// Starts `whipwhep.py MODE URL ARGS…`; its stderr is echoed with `name`.
    fn spawn(name: &str, mode: &str, url: &str, args: &[&str]) -> Self {
        let mut child = Command::new(PYTHON)
            .arg(script())
            .args([mode, url])
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {PYTHON} {}: {e}", script().display()));
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let (err, lines, tag) = (
            child.stderr.take().expect("piped stderr"),
            log.clone(),
            name.to_owned(),
        );
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                // The script's own lines carry "[gst MODE]" already.
                if line.starts_with("[gst ") {
                    eprintln!("{line}");
                } else {
                    eprintln!("[{tag}] {line}");
                }
                lines.lock().expect("log").push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdout,
            log,
        }
    }

    /// Asks it to stop now (SIGTERM): it DELETEs its session and reports.
    fn stop(&self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    /// Waits (at most `limit`, then kills it) for it to exit.
    fn wait(mut self, limit: Duration) -> GstRun {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} ran over {limit:?} and was killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut json = serde_json::Value::Null;
        let end = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self
            .stdout
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                json = value;
            } else {
                eprintln!("[{}] stdout: {line}", self.name);
            }
        }
        // The stderr reader may still be draining the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().expect("log").clone();
        println!("{}: {status}, {json}", self.name);
        GstRun {
            name: self.name.clone(),
            status,
            json,
            log,
        }
    }
}

impl Drop for Gst {
    fn drop(&mut self) {
        // Only reached on a panic before `wait`: no GStreamer outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GstRun {
    /// Panics unless it exited 0, naming its own error and last log lines.
    fn assert_success(&self) {
        if !self.status.success() {
            let tail: Vec<&str> = self
                .log
                .iter()
                .rev()
                .take(15)
                .rev()
                .map(String::as_str)
                .collect();
            panic!(
                "{} failed ({}): {}\nits last log lines:\n{}",
                self.name,
                self.status,
                self.json["error"].as_str().unwrap_or("(no JSON line)"),
                tail.join("\n")
            );
        }
    }

    fn number(&self, key: &str) -> u64 {
        self.json[key].as_u64().unwrap_or(0)
    }
}

/// Waits (bounded) until `room`'s publisher is sending: media has reached
/// the server (ICE and DTLS done). Gives the publisher back.
fn wait_for_media(server: &ServerProc, room: &str, mut publisher: Gst) -> Gst {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = server.stats();
        let bytes_in = stats["rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == room)
            .map_or(0, |r| r["bytes_in"].as_u64().unwrap_or(0));
        if bytes_in > 0 {
            return publisher;
        }
        if let Ok(Some(_)) = publisher.child.try_wait() {
            let name = publisher.name.clone();
            // Its own reason first (DTLS failed, HTTP status, …).
            publisher.wait(Duration::from_secs(5)).assert_success();
            panic!("{name} exited before any media reached the server");
        }
        assert!(
            Instant::now() < deadline,
            "no media from {} reached the server within 30 s",
            publisher.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn whip(server: &ServerProc, room: &str) -> String {
    format!("{}/whip/{room}", server.base)
}

fn whep(server: &ServerProc, room: &str) -> String {
    format!("{}/whep/{room}", server.base)
}

/// A GStreamer WHEP viewer of `room` for 5 s that must count ≥ 60 video
/// frames and ≥ 100 audio buffers — decoded, or (`decode` false) whole out
/// of the depayloaders — and end with DELETE → 200; waits for it to end.
fn watch_5s(server: &ServerProc, room: &str, name: &str, decode: bool) -> GstRun {
    let counts = [
        "--seconds",
        "5",
        "--min-video-frames",
        "60",
        "--min-audio-buffers",
        "100",
        "--require-delete",
        "--timeout",
        "60",
    ];
    let args: Vec<&str> = (!decode)
        .then_some("--no-decode")
        .into_iter()
        .chain(counts)
        .collect();
    Gst::spawn(name, "watch", &whep(server, room), &args).wait(GST_LIMIT)
}

/// What every GStreamer publisher run must show: connected over loopback,
/// VP8 frames and Opus packets sent, DELETE answered 200.
fn assert_published(run: &GstRun) {
    run.assert_success();
    assert_eq!(run.json["connected"], true, "{}", run.json);
    assert_eq!(run.json["post_status"], 201);
    assert_eq!(run.json["delete_status"], 200, "DELETE of the session");
    assert_eq!(
        run.json["remote_candidates"],
        serde_json::json!([MEDIA_IP]),
        "the server's only candidate"
    );
    assert!(run.number("video_frames") > 0 && run.number("video_packets") > 0);
    assert!(run.number("audio_packets") > 0);
}

#[test]
fn gstreamer_publishes_and_the_str0m_client_watches() {
    prepared();
    let server = server();
    let room = "gst-to-str0m";
    let publisher = Gst::spawn(
        "gst publish",
        "publish",
        &whip(&server, room),
        &["--seconds", "20", "--timeout", "60"],
    );
    let publisher = wait_for_media(&server, room, publisher);

    // The project's client: str0m with VP8 and Opus only, what GStreamer sends.
    let flags = Flags::default();
    let viewer = common::spawn_client(
        &server.base,
        room,
        ClientRole::Watch,
        ClientOptions::default(),
        &flags,
        Duration::from_secs(30),
    );
    assert!(
        flags.wait_connected(1, Duration::from_secs(10)),
        "the str0m viewer connected"
    );
    // Four seconds of media, then the publisher stops (and DELETEs); what
    // the server forwarded is then final.
    std::thread::sleep(Duration::from_secs(4));
    publisher.stop();
    let published = publisher.wait(GST_LIMIT);
    assert_published(&published);
    std::thread::sleep(Duration::from_millis(500));
    let forwarded = server.shard_sum("forwarded");
    let rtp_in = server.shard_sum("rtp_in");
    flags.stop.store(true, Ordering::Relaxed);
    let viewer = viewer.join();
    let report = viewer.report();
    println!(
        "str0m viewer: {}",
        serde_json::to_string(&report).expect("JSON")
    );
    println!("server: rtp_in {rtp_in}, forwarded {forwarded}");

    let (video, audio) = (
        viewer.received(Kind::Video).packets,
        viewer.received(Kind::Audio).packets,
    );
    // GStreamer's payloads are real VP8 and Opus, not the project's
    // trailer-carrying ones: the viewer counts every packet (as "corrupt").
    // Four seconds at 30 frames/s and 50 Opus packets/s: ask for at least
    // two seconds' worth, and ≥ 90 % of what the server forwarded.
    assert!(video >= 60, "video packets received: {video}");
    assert!(audio >= 100, "audio packets received: {audio}");
    assert!(
        (video + audio) * 10 >= forwarded * 9,
        "received {} of {forwarded} forwarded",
        video + audio
    );
    // What GStreamer counted as sent once connected reached the server.
    let sent = published.number("video_packets") + published.number("audio_packets");
    assert!(
        rtp_in * 10 >= sent * 9,
        "the server received {rtp_in} of the {sent} RTP packets GStreamer sent"
    );
}

#[test]
fn the_str0m_client_publishes_and_gstreamer_watches() {
    prepared();
    let server = server();
    let room = "str0m-to-gst";
    let flags = Flags::default();
    flags.send.store(true, Ordering::Relaxed);
    let publisher = common::spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        ClientOptions::default(),
        &flags,
        Duration::from_secs(60),
    );
    assert!(
        flags.wait_connected(1, Duration::from_secs(10)),
        "the str0m publisher connected"
    );
    // The project's publisher sends synthetic VP8 (valid descriptors and
    // frame headers, filler where the compressed data would be) and Opus-sized
    // filler: vp8dec and opusdec would reject them, so this viewer counts
    // whole frames out of rtpvp8depay and packets out of rtpopusdepay.
    let viewer = watch_5s(&server, room, "gst watch", false);
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    println!(
        "str0m publisher: {}",
        serde_json::to_string(&publisher.report()).expect("JSON")
    );
    viewer.assert_success();
    assert_eq!(viewer.json["video_codec"], "VP8");
    assert_eq!(viewer.json["audio_codec"], "OPUS");
    assert_eq!(
        viewer.json["remote_candidates"],
        serde_json::json!([MEDIA_IP])
    );
    // Five seconds at 30 frames/s and 50 packets/s; two seconds' worth at least.
    assert!(viewer.number("video_depayloaded") >= 60, "{}", viewer.json);
    assert!(viewer.number("audio_depayloaded") >= 100, "{}", viewer.json);
}

#[test]
fn gstreamer_publishes_and_gstreamer_watches_decoding_real_frames() {
    prepared();
    let server = server();
    let room = "gst-to-gst";
    let publisher = Gst::spawn(
        "gst publish",
        "publish",
        &whip(&server, room),
        &["--seconds", "30", "--timeout", "60"],
    );
    let publisher = wait_for_media(&server, room, publisher);
    let viewer = watch_5s(&server, room, "gst watch+decode", true);
    publisher.stop();
    let published = publisher.wait(GST_LIMIT);
    viewer.assert_success();
    assert_published(&published);
    assert_eq!(viewer.json["video_codec"], "VP8");
    assert_eq!(viewer.json["audio_codec"], "OPUS");
    // Frames vp8dec decoded and Opus buffers opusdec decoded, in five
    // seconds of 30 frames/s and 50 packets/s: two seconds' worth at least.
    assert!(viewer.number("video_decoded") >= 60, "{}", viewer.json);
    assert!(viewer.number("audio_decoded") >= 100, "{}", viewer.json);
    assert!(
        server.wait_for(Duration::from_secs(3), |s| s["sessions"] == 0),
        "both sessions were DELETEd: {}",
        server.stats()["sessions"]
    );
}
