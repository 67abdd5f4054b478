//! `e2e`: the real server binary and the load tool over loopback — one
//! publisher at 1.5 Mbit/s to 100 video viewers — for `--io uring` and
//! `--io mmsg` with `--shards 1` and `2`. Reports the server's CPU-µs per
//! egress packet (from /proc), loss and latency. A custom harness: each case
//! is one 10 s run, and CPU time, not wall time, is the figure.
//! `URINGCAST_E2E_VIEWERS` and `URINGCAST_E2E_SECONDS` override the size.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::ServerProc;
use uringcast_load::load::{self, LoadConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("e2e: run with `cargo bench --bench e2e`");
        return;
    }
    let viewers = env_or("URINGCAST_E2E_VIEWERS", 100);
    let seconds = env_or("URINGCAST_E2E_SECONDS", 10) as u64;
    println!("e2e: 1 publisher (1.5 Mbit/s VP8 + audio) → {viewers} viewers, {seconds} s per case");
    println!(
        "{:<6} {:>6} {:>12} {:>10} {:>12} {:>9} {:>12}",
        "io", "shards", "egress/s", "server CPU", "CPU-µs/pkt", "loss %", "p99 latency"
    );
    for (io, shards) in [("uring", "1"), ("mmsg", "1"), ("uring", "2"), ("mmsg", "2")] {
        let server = ServerProc::start(&["--io", io, "--shards", shards]);
        let config = LoadConfig {
            url: server.base.clone(),
            room: "e2e".into(),
            publishers: 1,
            subscribers: viewers,
            duration: Duration::from_secs(seconds),
            ramp: Duration::ZERO,
            video_bitrate: 1_500_000,
            audio: true,
            video: true,
            bind: "127.0.0.1".parse().expect("ip"),
            server_pid: Some(server.pid()),
            threads: 1,
            token: None,
            roots: None,
            conference: None,
        };
        match load::run(&config, |_, _, _| {}) {
            Ok(f) => println!(
                "{:<6} {:>6} {:>12.0} {:>9.2}s {:>12.2} {:>9.3} {:>9} µs",
                io,
                shards,
                f.egress_packets_per_second,
                f.server_cpu_seconds.unwrap_or(f64::NAN),
                f.server_cpu_us_per_egress_packet.unwrap_or(f64::NAN),
                f.loss_ratio * 100.0,
                f.latency_us.p99
            ),
            Err(e) => println!("{io:<6} {shards:>6} failed: {e}"),
        }
    }
}
