//! The load tool against our server, as CI runs it: 1 publisher → 5 viewers
//! for 3 s. Its JSON must show every session up, < 1 % loss, a per-second
//! series and the server's CPU per egress packet; its report must hold charts.

mod common;

use std::process::Command;

use common::ServerProc;

/// The `uringcast-load` binary: it belongs to the workspace's
/// `uringcast-load` crate, built beside this test (`target/<profile>/`,
/// one level above this test's `deps/`) by `cargo build --workspace`.
fn load_tool() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let tool = profile_dir.join("uringcast-load");
    assert!(
        tool.exists(),
        "{} is missing: build the workspace (`cargo build --workspace --bins`, as scripts/test.sh does)",
        tool.display()
    );
    tool
}

#[test]
fn uringcast_load_drives_our_server_with_no_failed_session_and_under_1_percent_loss() {
    // With auth on, so the tool's --token is exercised too.
    let server = ServerProc::start(&["--shards", "2", "--bearer-token", "smoke-secret"]);
    let dir = std::env::temp_dir().join(format!("uringcast-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json, html) = (dir.join("out.json"), dir.join("out.html"));
    let status = Command::new(load_tool())
        .args([
            "--url",
            &server.base,
            "--room",
            "smoke",
            "--subscribers",
            "5",
            "--duration",
            "3s",
            "--quiet",
        ])
        .args([
            "--server-pid",
            &server.pid().to_string(),
            "--token",
            "smoke-secret",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--report")
        .arg(&html)
        .status()
        .expect("run uringcast-load");
    assert!(status.success(), "uringcast-load exited with {status}");

    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    assert_eq!(figures["sessions_ok"], 6, "{figures}");
    assert_eq!(figures["sessions_failed"], 0, "{figures}");
    let loss = figures["loss_ratio"].as_f64().expect("loss_ratio");
    assert!(loss < 0.01, "loss {loss}");
    let received = figures["packets_received"]
        .as_u64()
        .expect("packets_received");
    let sent = figures["packets_sent"].as_u64().expect("packets_sent");
    assert!(
        sent > 300 && received >= sent * 5 * 99 / 100,
        "sent {sent}, received {received}"
    );
    assert_eq!(figures["corrupt"], 0);
    assert!(figures["latency_us"]["p99"].as_u64() > Some(0));
    assert!(figures["setup_ms"]["p50"].as_u64().is_some());
    assert_eq!(
        figures["series"].as_array().map(Vec::len),
        Some(3),
        "one entry per second"
    );
    let cpu = figures["server_cpu_us_per_egress_packet"]
        .as_f64()
        .expect("server CPU measured");
    assert!(cpu > 0.0);

    let report = std::fs::read_to_string(&html).expect("report written");
    assert!(report.starts_with("<!doctype html>"));
    assert_eq!(
        report.matches("<svg").count(),
        3,
        "latency, rate and loss charts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--conference 4`: one room of 4 participants, each publishing and
/// receiving the other three, through the room API.
#[test]
fn uringcast_load_conference_runs_a_room_where_everyone_receives_everyone() {
    let server = ServerProc::start(&["--shards", "2", "--bearer-token", "smoke-secret"]);
    let dir = std::env::temp_dir().join(format!("uringcast-load-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("out.json");
    let status = Command::new(load_tool())
        .args(["--url", &server.base, "--room", "conf", "--conference", "4"])
        .args(["--duration", "3s", "--quiet", "--video-bitrate", "300k"])
        .args([
            "--server-pid",
            &server.pid().to_string(),
            "--token",
            "smoke-secret",
        ])
        .arg("--json")
        .arg(&json)
        .status()
        .expect("run uringcast-load");
    assert!(status.success(), "uringcast-load exited with {status}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    assert_eq!(figures["participants"], 4, "{figures}");
    assert_eq!(
        figures["sessions_ok"], 8,
        "4 publish + 4 subscribe transports: {figures}"
    );
    assert_eq!(figures["sessions_failed"], 0, "{figures}");
    let (sent, received) = (
        figures["packets_sent"].as_u64().expect("sent"),
        figures["packets_received"].as_u64().expect("received"),
    );
    assert!(
        sent > 300 && received >= sent * 3 * 99 / 100,
        "each packet reaches the 3 others: sent {sent}, received {received}"
    );
    assert_eq!(figures["corrupt"], 0);
    let per_peer = &figures["first_packet_per_peer_ms"];
    assert!(per_peer["p99"].as_u64() > Some(0), "{per_peer}");
    assert!(figures["server_cpu_us_per_egress_packet"].as_f64() > Some(0.0));
    let _ = std::fs::remove_dir_all(&dir);
}
