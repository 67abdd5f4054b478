//! The command line (flags, environment, --help, --public-ip) and the media
//! port's demux of datagrams it cannot place: dropped, counted, harmless.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Flags, ServerProc, header, http, publish_offer, spawn_pair};
use uringcast_load::client::payload::Kind;

#[test]
fn help_lists_every_option_with_its_default() {
    let output = Command::new(env!("CARGO_BIN_EXE_uringcast"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--http-addr",
        "--udp-addr",
        "--public-ip",
        "--shards",
        "--io",
        "--max-body",
        "--connect-timeout",
        "--ice-timeout",
        "--keyframe-interval",
        "--shard-queue",
        "--socket-buffer",
        "--max-sessions",
        "--rate-limit",
        "--rate-burst",
        "--max-pending",
        "--body-timeout",
        "--max-sessions-per-ip",
        "--room-size",
        "--max-bitrate-in",
        "--max-bitrate-out",
        "--auth-key",
        "--bearer-token",
        "--ice-server",
        "--ice-username",
        "--ice-credential",
        "--turn-secret",
        "--turn-ttl",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
    for default in [
        "127.0.0.1:8080",
        "127.0.0.1:5004",
        "[default: auto]",
        "[default: 15s]",
        "[default: 500ms]",
        "[default: 10000]",
        "[default: 24h]",
        "[default: 20]",
        "[default: 1000]",
        "[default: 100]",
        "[default: 8000000]",
        "[default: 10000000]",
    ] {
        assert!(help.contains(default), "--help shows {default}");
    }
    assert!(
        help.contains("URINGCAST_HTTP_ADDR") && help.contains("URINGCAST_UDP_ADDR"),
        "env names shown"
    );
    for env in [
        "URINGCAST_MAX_SESSIONS",
        "URINGCAST_MAX_PENDING",
        "URINGCAST_BODY_TIMEOUT",
        "URINGCAST_MAX_SESSIONS_PER_IP",
        "URINGCAST_ROOM_SIZE",
        "URINGCAST_MAX_BITRATE_IN",
        "URINGCAST_MAX_BITRATE_OUT",
        "URINGCAST_RATE_LIMIT",
        "URINGCAST_AUTH_KEY",
        "URINGCAST_BEARER_TOKEN",
        "URINGCAST_ICE_SERVER",
        "URINGCAST_TURN_SECRET",
        "URINGCAST_TURN_TTL",
    ] {
        assert!(help.contains(env), "--help names {env}");
    }
}

#[test]
fn public_ips_are_advertised_and_environment_variables_are_read() {
    // --public-ip from the environment, the rest from flags.
    let server = {
        // SAFETY of the process environment: the variable is set only for the child.
        let _guard = EnvVar::set("URINGCAST_PUBLIC_IP", "127.0.0.2,127.0.0.3");
        ServerProc::start(&["--shards", "1"])
    };
    let (status, headers, answer) = http(
        &server.base,
        "POST",
        "/whip/ip",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(status, 201, "{answer}");
    assert!(header(&headers, "location").is_some());
    let port = server.udp.port();
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        assert!(
            answer.contains(&format!("{ip} {port} typ host")),
            "answer advertises {ip}:{port}:\n{answer}"
        );
    }
}

/// Sets an environment variable for the child processes started while alive.
struct EnvVar(&'static str);

impl EnvVar {
    fn set(name: &'static str, value: &str) -> Self {
        // SAFETY: tests in this binary that read this variable run the binary
        // as a child; setting it races no other reader in this process.
        unsafe { std::env::set_var(name, value) };
        Self(name)
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        // SAFETY: as in `set`.
        unsafe { std::env::remove_var(self.0) };
    }
}

#[test]
fn datagrams_nobody_owns_are_dropped_counted_and_harmless() {
    let server = ServerProc::start(&["--shards", "1"]);
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Random bytes, an empty datagram, RTP- and DTLS-looking bytes, a large one.
    let mut datagrams: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80; 200],
        vec![22; 100],
        vec![0xff; 1400],
        vec![7; 9000],
    ];
    // A well-formed STUN binding request naming a ufrag nobody has.
    let username = b"nobody:someone";
    let mut stun = vec![0x00, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[9; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, username.len() as u8]);
    stun.extend_from_slice(username);
    stun.extend_from_slice(&[0, 0]); // pad 14 → 16
    datagrams.push(stun);
    for d in &datagrams {
        junk.send_to(d, server.udp).expect("send");
    }
    // The 9000-byte datagram is over the receive buffer (2048): truncated
    // datagrams are counted as receive errors, never parsed.
    let shard =
        |s: &serde_json::Value, counter: &str| s["shards"][0][counter].as_u64().unwrap_or(0);
    assert!(
        server.wait_for(Duration::from_secs(3), |s| {
            shard(s, "drop_unknown_source") == 4
                && shard(s, "drop_unknown_ufrag") == 1
                && shard(s, "net_recv_errors") == 1
        }),
        "every unplaceable datagram counted once, by reason: {}",
        server.stats()
    );

    // Media still flows, and the room's bitrates show in the stats.
    let flags = Flags::default();
    let limit = Duration::from_secs(20);
    let (publisher, viewer) = spawn_pair(&server.base, "after", &flags, limit);
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    flags.send.store(true, Ordering::Relaxed);
    let saw_bitrates = server.wait_for(Duration::from_secs(5), |s| {
        let room = &s["rooms"][0];
        room["bitrate_in_bps"].as_u64() > Some(500_000)
            && room["bitrate_out_bps"].as_u64() > Some(500_000)
    });
    flags.stop.store(true, Ordering::Relaxed);
    let viewer = viewer.join();
    drop(publisher.join());
    assert!(
        saw_bitrates,
        "room bitrates in /v1/stats: {}",
        server.stats()
    );
    assert!(viewer.received(Kind::Video).unique() > 50);
    assert_eq!(viewer.received(Kind::Video).summary().corrupt, 0);
}
