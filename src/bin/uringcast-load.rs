//! `uringcast-load`: a swarm of str0m WebRTC clients against any WHIP/WHEP
//! server. Each room gets one publisher and `--subscribers` viewers; after
//! everyone connected, publishers send for `--duration`; the report gives
//! sessions, packets, loss, latency and (with `--server-pid`) the server's
//! CPU time per egress packet.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use uringcast::client::payload::Kind;
use uringcast::client::report::percentile;
use uringcast::client::swarm::{self, Flags};
use uringcast::client::{Client, ClientOptions, ClientRole};
use uringcast::config::parse_duration;

#[derive(Debug, Parser)]
#[command(name = "uringcast-load", version, about = "A WHIP/WHEP load generator")]
struct Args {
    /// Base URL of the server (the tool POSTs to {url}/whip/{room} and {url}/whep/{room}).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Room name; with more than one publisher, rooms are {room}-0, {room}-1, …
    #[arg(long, default_value = "load")]
    room: String,
    /// Publishers (one per room).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Viewers per publisher.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// How long publishers send.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Video bitrate per publisher, e.g. 1500k or 2M.
    #[arg(long, value_parser = parse_bitrate, default_value = "1500k")]
    video_bitrate: u32,
    #[arg(long)]
    no_video: bool,
    #[arg(long)]
    no_audio: bool,
    /// Local IP the clients bind to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// The server's process id: report its CPU time per egress packet.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn parse_bitrate(text: &str) -> Result<u32, String> {
    let (number, scale) = match text.trim().to_ascii_lowercase() {
        t if t.ends_with('k') => (t.trim_end_matches('k').to_owned(), 1_000.0),
        t if t.ends_with('m') => (t.trim_end_matches('m').to_owned(), 1_000_000.0),
        t => (t, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a bitrate like 1500k"))?;
    Ok((value * scale) as u32)
}

#[derive(Debug, Serialize)]
struct Figures {
    sessions_ok: usize,
    sessions_failed: usize,
    packets_sent: u64,
    packets_received: u64,
    loss_ratio: f64,
    latency_us: Percentiles,
    setup_ms: Percentiles,
    server_cpu_seconds: Option<f64>,
    server_cpu_us_per_egress_packet: Option<f64>,
    egress_packets_per_second: f64,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: u64,
    p99: u64,
    max: u64,
}

impl Percentiles {
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Self {
            p50: percentile(&values, 50.0),
            p99: percentile(&values, 99.0),
            max: values.last().copied().unwrap_or(0),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(figures) => {
            print_table(&figures);
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&figures).unwrap_or_default();
                if let Err(e) = std::fs::write(path, json) {
                    eprintln!("uringcast-load: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("uringcast-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Figures, String> {
    let options = ClientOptions {
        bind: args.bind,
        audio: !args.no_audio,
        video: !args.no_video,
        video_bitrate: args.video_bitrate,
        ..ClientOptions::default()
    };
    let flags = Flags::default();
    let limit = args.duration + Duration::from_secs(60);
    let mut publishers = Vec::new();
    let mut viewers = Vec::new();
    let mut failed = 0;
    for p in 0..args.publishers {
        let room = if args.publishers > 1 {
            format!("{}-{p}", args.room)
        } else {
            args.room.clone()
        };
        let publisher_options = ClientOptions {
            tag: p as u32 + 1,
            ..options.clone()
        };
        match swarm::spawn(
            &args.url,
            &room,
            ClientRole::Publish,
            publisher_options,
            &flags,
            limit,
        ) {
            Ok(running) => publishers.push(running),
            Err(e) => {
                eprintln!("publisher {room}: {e}");
                failed += 1 + args.subscribers;
                continue;
            }
        }
        for _ in 0..args.subscribers {
            match swarm::spawn(
                &args.url,
                &room,
                ClientRole::Watch,
                options.clone(),
                &flags,
                limit,
            ) {
                Ok(running) => viewers.push(running),
                Err(e) => {
                    eprintln!("viewer {room}: {e}");
                    failed += 1;
                }
            }
        }
    }
    let started = publishers.len() + viewers.len();
    if !flags.wait_connected(started, Duration::from_secs(20)) {
        eprintln!(
            "only {} of {started} sessions connected",
            flags.connected.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let send_started = Instant::now();
    flags.send.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(args.duration);
    flags
        .send
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let cpu_after = args.server_pid.map(cpu_seconds).transpose()?;
    let send_window = send_started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let publishers: Vec<Client> = publishers.into_iter().map(|r| r.join().0).collect();
    let viewers: Vec<Client> = viewers.into_iter().map(|r| r.join().0).collect();
    for client in publishers.iter().chain(&viewers) {
        let _ = client.delete();
    }
    let ok = publishers
        .iter()
        .chain(&viewers)
        .filter(|c| c.is_connected())
        .count();
    failed += started - ok;

    let kinds = [Kind::Audio, Kind::Video];
    let sent_per_room: u64 = publishers
        .iter()
        .map(|p| kinds.iter().map(|k| p.sent(*k)).sum::<u64>())
        .sum();
    let expected = if publishers.is_empty() {
        0
    } else {
        sent_per_room * args.subscribers as u64
    };
    let received: u64 = viewers
        .iter()
        .map(|v| kinds.iter().map(|k| v.received(*k).unique()).sum::<u64>())
        .sum();
    let egress: u64 = viewers
        .iter()
        .map(|v| kinds.iter().map(|k| v.received(*k).packets).sum::<u64>())
        .sum();
    let latencies: Vec<u64> = viewers
        .iter()
        .flat_map(|v| {
            kinds
                .iter()
                .flat_map(move |k| v.received(*k).latencies_us.iter().copied())
        })
        .collect();
    let setups: Vec<u64> = publishers
        .iter()
        .chain(&viewers)
        .filter_map(|c| c.report().setup_ms)
        .collect();
    let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    Ok(Figures {
        sessions_ok: ok,
        sessions_failed: failed,
        packets_sent: sent_per_room,
        packets_received: received,
        loss_ratio: if expected == 0 {
            0.0
        } else {
            1.0 - received as f64 / expected as f64
        },
        latency_us: Percentiles::of(latencies),
        setup_ms: Percentiles::of(setups),
        server_cpu_seconds: cpu,
        server_cpu_us_per_egress_packet: cpu
            .filter(|_| egress > 0)
            .map(|s| s * 1e6 / egress as f64),
        egress_packets_per_second: egress as f64 / send_window.as_secs_f64(),
    })
}

/// User + system CPU time of process `pid`, in seconds, from /proc.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name may contain spaces; fields resume after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("unexpected /proc stat format")
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(total as f64 / hz)
}

fn print_table(f: &Figures) {
    println!(
        "sessions        ok {}  failed {}",
        f.sessions_ok, f.sessions_failed
    );
    println!(
        "setup           p50 {} ms  p99 {} ms",
        f.setup_ms.p50, f.setup_ms.p99
    );
    println!(
        "packets         sent {} per room  received {}  loss {:.3} %",
        f.packets_sent,
        f.packets_received,
        f.loss_ratio * 100.0
    );
    println!(
        "latency         p50 {} µs  p99 {} µs  max {} µs",
        f.latency_us.p50, f.latency_us.p99, f.latency_us.max
    );
    println!(
        "egress          {:.0} packets/s",
        f.egress_packets_per_second
    );
    if let (Some(cpu), Some(per)) = (f.server_cpu_seconds, f.server_cpu_us_per_egress_packet) {
        println!("server CPU      {cpu:.2} s  →  {per:.2} CPU-µs per egress packet");
    }
}
