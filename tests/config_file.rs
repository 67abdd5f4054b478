//! The configuration's layers and reloads through the real binary:
//! `--print-config` shows flag > environment > file > default with secrets
//! masked; a bad file stops the start naming the key; SIGHUP applies a
//! changed file's reloadable keys (a bearer token here) and refuses a bad
//! one without changing anything; JSON logs name each session and room.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ServerProc, publish_offer, request};

/// A directory of its own for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uringcast-cfg-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn uringcast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uringcast"));
    // The test runner's environment must not leak in.
    for (key, _) in std::env::vars() {
        if key.starts_with("URINGCAST_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn print_config_shows_each_layer_and_masks_secrets() {
    let dir = temp_dir("print");
    let file = dir.join("uringcast.toml");
    std::fs::write(
        &file,
        "max-pending = 7\nmax-sessions = 8\nrate-limit = 3\nauth-key = \"from-the-file-0123456789abcdef0123\"\n",
    )
    .expect("write");
    let output = uringcast()
        .args([
            "--config",
            file.to_str().expect("path"),
            "--rate-limit",
            "4",
            "--print-config",
        ])
        .env("URINGCAST_MAX_PENDING", "5")
        .env("URINGCAST_BEARER_TOKEN", "env-secret")
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        "rate-limit = 4  # flag",
        "max-pending = 5  # environment",
        "max-sessions = 8  # file",
        "max-body = 65536  # default",
        "bearer-token = \"***\"  # environment",
        "auth-key = \"***\"  # file",
    ] {
        assert!(printed.contains(line), "{line:?} in\n{printed}");
    }
    assert!(!printed.contains("env-secret") && !printed.contains("from-the-file"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_config_file_stops_the_start_and_names_the_key() {
    let dir = temp_dir("bad");
    let file = dir.join("uringcast.toml");
    std::fs::write(&file, "udp-adress = \"127.0.0.1:0\"\n").expect("write");
    let output = uringcast()
        .args(["--config", file.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown key 'udp-adress'"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// POST /whip/{room} with `token` → status.
fn publish_with(server: &ServerProc, room: &str, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("Content-Type", "application/sdp"),
        ("Authorization", bearer.as_str()),
    ];
    request(
        &server.base,
        "POST",
        &format!("/whip/{room}"),
        &headers,
        &publish_offer(),
    )
    .0
}

/// Waits (bounded) until `check` holds.
fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn sighup_reloads_a_token_from_the_file_and_refuses_a_bad_file() {
    let dir = temp_dir("hup");
    let file = dir.join("uringcast.toml");
    std::fs::write(&file, "bearer-token = \"first-token\"\n").expect("write");
    let server = ServerProc::start(&["--config", file.to_str().expect("path")]);
    assert_eq!(publish_with(&server, "a", "first-token"), 201);
    assert_eq!(publish_with(&server, "b", "second-token"), 401);

    std::fs::write(&file, "bearer-token = \"second-token\"\n").expect("write");
    server.signal(libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || publish_with(
            &server,
            "c",
            "first-token"
        ) == 401),
        "the old token is refused after the reload"
    );
    assert_eq!(publish_with(&server, "d", "second-token"), 201);

    // A broken file changes nothing.
    std::fs::write(&file, "bearer-token = \"third-token\"\nno-such-key = 1\n").expect("write");
    server.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(publish_with(&server, "e", "second-token"), 201);
    assert_eq!(publish_with(&server, "f", "third-token"), 401);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_logs_name_the_session_and_room_and_timestamps_can_be_off() {
    let mut child = uringcast()
        .args([
            "--http-addr=127.0.0.1:0",
            "--udp-addr=127.0.0.1:0",
            "--shards=1",
            "--log-format=json",
            "--log-timestamps=false",
        ])
        .env("URINGCAST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("POST ")
                .nth(1)
                .filter(|_| l.contains("WHIP"))
                .and_then(|u| u.split("/whip/").next().map(str::to_owned))
        })
        .expect("the banner names the endpoint");
    let (status, headers, _) = request(
        &base,
        "POST",
        "/whip/logged-room",
        &[("Content-Type", "application/sdp")],
        &publish_offer(),
    );
    assert_eq!(status, 201);
    let location = common::header(&headers, "location")
        .expect("Location")
        .to_owned();
    let (status, _, _) = request(&base, "DELETE", &location, &[], "");
    assert_eq!(status, 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    let created = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("a 'session created' line in time");
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(value.clone());
        if value["message"] == "session created" {
            break value;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(created["room"], "logged-room", "{created}");
    let id = created["session"]
        .as_str()
        .expect("a session field")
        .trim_end_matches('…');
    assert!(location.contains(id), "{id} names {location}");
    assert!(
        lines.iter().all(|l| l.get("timestamp").is_none()),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["level"].is_string()), "{lines:?}");
}
