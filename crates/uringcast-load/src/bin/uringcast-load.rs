//! `uringcast-load`: a swarm of str0m WebRTC clients against any WHIP/WHEP
//! server. Each room gets one publisher and `--subscribers` viewers; once
//! everyone connected, publishers send for `--duration`. Prints a table, and
//! optionally writes the figures as JSON and an HTML report with charts.
//! `--sweep 10,50,100` runs one step per viewer count. `--conference P`
//! runs rooms of P participants that all publish and all receive.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use uringcast_load::load::{self, Figures, LoadConfig, report};
use uringcast_proto::parse_duration;

#[derive(Debug, Parser)]
#[command(name = "uringcast-load", version, about = "A WHIP/WHEP load generator")]
struct Args {
    /// Base URL of the server (POSTs go to {url}/whip/{room} and {url}/whep/{room}).
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
    /// How long publishers send, e.g. 30s.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Create sessions evenly over this time.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    ramp: Duration,
    /// Video bitrate per publisher, e.g. 1500k or 2M.
    #[arg(long, value_parser = parse_bitrate, default_value = "1500k")]
    video_bitrate: u32,
    /// Publish and watch audio only.
    #[arg(long)]
    no_video: bool,
    /// Publish and watch video only.
    #[arg(long)]
    no_audio: bool,
    /// Local IP the clients bind to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Bearer token for every request (WHIP/WHEP auth).
    #[arg(long, env = "URINGCAST_LOAD_TOKEN")]
    token: Option<String>,
    /// Trust only the certificates in this PEM file for an https:// URL
    /// (a server with a self-signed certificate); default: the WebPKI roots.
    #[arg(long, env = "URINGCAST_LOAD_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// The server's process id: report its CPU time per egress packet.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Client driver threads (each drives its share of the clients).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Viewer counts to run one after another, e.g. 10,50,100,200 (with
    /// --conference: participant counts, e.g. 6,10).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// A conference run: P participants per room (--publishers rooms), each
    /// publishing audio and video and receiving every other participant,
    /// through the room API (/v1/rooms/…); --subscribers is ignored.
    #[arg(long, value_name = "P")]
    conference: Option<usize>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write an HTML report with charts to this file.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_bitrate(text: &str) -> Result<u32, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, scale) = match lower.strip_suffix('k') {
        Some(n) => (n, 1_000.0),
        None => match lower.strip_suffix('m') {
            Some(n) => (n, 1_000_000.0),
            None => (lower.as_str(), 1.0),
        },
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a bitrate like 1500k"))?;
    Ok((value * scale) as u32)
}

/// The certificates of a PEM file, as the roots HTTPS servers must chain to.
fn read_roots(path: &std::path::Path) -> Result<ureq::tls::RootCerts, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("--ca-cert {}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert {}: no CERTIFICATE block",
            path.display()
        ));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let steps = match (args.sweep.is_empty(), args.conference) {
        (false, _) => args.sweep.clone(),
        (true, Some(participants)) => vec![participants],
        (true, None) => vec![args.subscribers],
    };
    let roots = match args.ca_cert.as_deref().map(read_roots).transpose() {
        Ok(roots) => roots,
        Err(e) => {
            eprintln!("uringcast-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut results: Vec<Figures> = Vec::new();
    for step in steps {
        let (subscribers, conference) = match args.conference {
            Some(_) => (step.saturating_sub(1), Some(step)),
            None => (step, None),
        };
        let config = LoadConfig {
            url: args.url.clone(),
            room: args.room.clone(),
            publishers: args.publishers,
            subscribers,
            duration: args.duration,
            ramp: args.ramp,
            video_bitrate: args.video_bitrate,
            audio: !args.no_audio,
            video: !args.no_video,
            bind: args.bind,
            server_pid: args.server_pid,
            threads: args.threads,
            token: args.token.clone(),
            roots: roots.clone(),
            conference,
        };
        let bar = progress_bar(args.quiet, args.duration);
        let figures = load::run(&config, |second, connected, started| {
            bar.set_position(u64::from(second.t));
            bar.set_message(format!(
                "{connected}/{started} sessions up · {} pkt/s received · loss {:.2} %",
                second.received,
                second.loss_ratio * 100.0
            ));
        });
        bar.finish_and_clear();
        match figures {
            Ok(figures) => {
                print!("{}", figures.table());
                println!();
                results.push(figures);
            }
            Err(e) => {
                eprintln!("uringcast-load: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = write_outputs(&args, &results) {
        eprintln!("uringcast-load: {e}");
        return ExitCode::FAILURE;
    }
    if results.iter().any(|f| f.sessions_failed > 0) {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn progress_bar(quiet: bool, duration: Duration) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration.as_secs().max(1));
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len}s {msg}") {
        bar.set_style(style);
    }
    bar
}

fn write_outputs(args: &Args, results: &[Figures]) -> Result<(), String> {
    if let Some(path) = &args.json {
        let json = if args.sweep.is_empty() {
            serde_json::to_string_pretty(&results[0])
        } else {
            serde_json::to_string_pretty(&serde_json::json!({ "steps": results }))
        }
        .map_err(|e| format!("encoding JSON: {e}"))?;
        std::fs::write(path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.report {
        let html = report::html(results).map_err(|e| e.to_string())?;
        std::fs::write(path, html).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
