//! A WHIP/WHEP load run: rooms of one publisher and N viewers, all str0m
//! clients driven by a few epoll threads ([`crate::client::driver`]), with a
//! per-second series and final figures (loss, latency, setup time, and the
//! server's CPU time per egress packet when its pid is known). Used by the
//! `uringcast-load` binary, its CI smoke test and the e2e benchmark.

mod conference;
mod cpu;
mod figures;
pub mod report;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

pub use figures::{Figures, Percentiles, Second};

use crate::client::driver::Driver;
use crate::client::payload::Kind;
use crate::client::{Client, ClientError, ClientOptions, ClientRole};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL: the tool POSTs to `{url}/whip/{room}` and `{url}/whep/{room}`.
    pub url: String,
    /// Room name; with several publishers, rooms `{room}-0`, `{room}-1`, …
    pub room: String,
    pub publishers: usize,
    /// Viewers per publisher.
    pub subscribers: usize,
    /// How long publishers send.
    pub duration: Duration,
    /// Sessions are created evenly over this time.
    pub ramp: Duration,
    pub video_bitrate: u32,
    pub audio: bool,
    pub video: bool,
    pub bind: IpAddr,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// Driver threads.
    pub threads: usize,
    /// Bearer token sent with every request.
    pub token: Option<String>,
    /// Roots for an `https://` URL (default: the WebPKI roots).
    pub roots: Option<ureq::tls::RootCerts>,
    /// A conference run: this many participants per room (`publishers`
    /// rooms), each publishing and receiving every other one; `subscribers`
    /// is then ignored.
    pub conference: Option<usize>,
}

impl LoadConfig {
    /// How many clients receive each packet a publisher sends.
    pub fn copies(&self) -> usize {
        match self.conference {
            Some(participants) => participants.saturating_sub(1),
            None => self.subscribers,
        }
    }
}

/// Why a run could not happen at all (sessions that fail are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("client: {0}")]
    Client(#[from] ClientError),
    #[error("reading the server's CPU time: {0}")]
    Cpu(std::io::Error),
    #[error("starting a driver thread: {0}")]
    Thread(std::io::Error),
}

/// Counters a driver thread publishes for the progress line and the series.
#[derive(Debug, Default)]
pub struct Progress {
    pub connected: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

struct Shared {
    send: AtomicBool,
    stop: AtomicBool,
    progress: Vec<Progress>,
}

impl Shared {
    fn total(&self, field: impl Fn(&Progress) -> &AtomicU64) -> u64 {
        self.progress
            .iter()
            .map(|p| field(p).load(Ordering::Relaxed))
            .sum()
    }
}

/// Runs one load step; `on_second` sees each second of the series as it ends
/// (for a progress bar).
pub fn run(
    config: &LoadConfig,
    mut on_second: impl FnMut(&Second, u64, usize),
) -> Result<Figures, LoadError> {
    let threads = config.threads.max(1);
    let shared = Arc::new(Shared {
        send: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        progress: (0..threads).map(|_| Progress::default()).collect(),
    });
    let mut inboxes: Vec<Sender<Client>> = Vec::new();
    let mut workers = Vec::new();
    for index in 0..threads {
        let (tx, rx) = unbounded();
        inboxes.push(tx);
        let shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name(format!("load-driver-{index}"))
            .spawn(move || drive(rx, &shared, index))
            .map_err(LoadError::Thread)?;
        workers.push(worker);
    }

    let options = ClientOptions {
        bind: config.bind,
        audio: config.audio,
        video: config.video,
        video_bitrate: config.video_bitrate,
        signaling: crate::client::Signaling {
            token: config.token.clone(),
            roots: config.roots.clone(),
            ..Default::default()
        },
        ..ClientOptions::default()
    };
    let sessions = match config.conference {
        Some(participants) => config.publishers * participants * 2,
        None => config.publishers * (1 + config.subscribers),
    };
    let pause = config.ramp / sessions.max(1) as u32;
    let mut failed = 0;
    let mut errors: Vec<String> = Vec::new();
    let mut next_thread = 0;
    let mut started = 0;
    let mut joined: Vec<conference::Joined> = Vec::new();
    if let Some(participants) = config.conference {
        for made in conference::start(config, &options, participants, pause, &mut joined) {
            match made {
                Ok(client) => {
                    let _ = inboxes[next_thread % threads].send(client);
                    next_thread += 1;
                    started += 1;
                }
                Err(e) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                }
            }
        }
    }
    for p in (0..config.publishers).filter(|_| config.conference.is_none()) {
        let room = if config.publishers > 1 {
            format!("{}-{p}", config.room)
        } else {
            config.room.clone()
        };
        let roles = std::iter::once(ClientRole::Publish)
            .chain(std::iter::repeat_n(ClientRole::Watch, config.subscribers));
        for role in roles {
            let mut client_options = options.clone();
            client_options.tag = p as u32 + 1;
            match Client::connect(&config.url, &room, role, client_options) {
                Ok(client) => {
                    // A driver that is gone leaves the client unconnected: counted below.
                    let _ = inboxes[next_thread % threads].send(client);
                    next_thread += 1;
                    started += 1;
                }
                Err(e) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(format!("{room} {role:?}: {e}"));
                    }
                }
            }
            std::thread::sleep(pause);
        }
    }
    drop(inboxes);
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared.total(|p| &p.connected) < started as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));

    let cpu_at_start = config
        .server_pid
        .map(cpu::seconds)
        .transpose()
        .map_err(LoadError::Cpu)?;
    let send_started = Instant::now();
    shared.send.store(true, Ordering::Relaxed);
    let mut series = Vec::new();
    let (mut last_sent, mut last_received) =
        (shared.total(|p| &p.sent), shared.total(|p| &p.received));
    let mut last_cpu = cpu_at_start;
    let seconds = config.duration.as_secs_f64().ceil().max(1.0) as u32;
    for t in 1..=seconds {
        let tick = send_started + config.duration.mul_f64(f64::from(t) / f64::from(seconds));
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        let (sent, received) = (shared.total(|p| &p.sent), shared.total(|p| &p.received));
        let cpu = config
            .server_pid
            .map(cpu::seconds)
            .transpose()
            .map_err(LoadError::Cpu)?;
        let second = Second::new(
            t,
            sent - last_sent,
            received - last_received,
            config.copies(),
            last_cpu.zip(cpu).map(|(a, b)| b - a),
        );
        on_second(&second, shared.total(|p| &p.connected), started);
        series.push(second);
        (last_sent, last_received, last_cpu) = (sent, received, cpu);
    }
    shared.send.store(false, Ordering::Relaxed);
    let send_window = send_started.elapsed();
    let cpu_at_end = config
        .server_pid
        .map(cpu::seconds)
        .transpose()
        .map_err(LoadError::Cpu)?;
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Relaxed);

    let mut clients = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(Ok(mut batch)) => clients.append(&mut batch),
            Ok(Err(e)) => errors.push(format!("driver: {e}")),
            Err(_) => errors.push("a driver thread panicked".into()),
        }
    }
    for client in clients.iter().filter(|_| config.conference.is_none()) {
        let _ = client.delete();
    }
    for participant in &joined {
        let _ = participant.participant.leave();
    }
    let cpu = cpu_at_start.zip(cpu_at_end).map(|(a, b)| b - a);
    Ok(Figures::from_run(
        config,
        &clients,
        failed,
        errors,
        cpu,
        send_window,
        series,
    ))
}

/// One driver thread: takes clients as they are created, steps them all,
/// publishes progress every 200 ms, returns them when told to stop.
fn drive(
    inbox: Receiver<Client>,
    shared: &Shared,
    index: usize,
) -> Result<Vec<Client>, ClientError> {
    let mut driver = Driver::new()?;
    let mut published = Instant::now();
    loop {
        while let Ok(client) = inbox.try_recv() {
            driver.add(client)?;
        }
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(driver.into_clients());
        }
        driver.turn(shared.send.load(Ordering::Relaxed))?;
        if published.elapsed() >= Duration::from_millis(200) {
            published = Instant::now();
            publish(driver.clients(), &shared.progress[index]);
        }
    }
}

fn publish(clients: &[Client], progress: &Progress) {
    let kinds = [Kind::Audio, Kind::Video];
    let connected = clients.iter().filter(|c| c.is_connected()).count() as u64;
    let sent: u64 = clients
        .iter()
        .map(|c| kinds.iter().map(|k| c.sent(*k)).sum::<u64>())
        .sum();
    let received: u64 = clients
        .iter()
        .map(|c| kinds.iter().map(|k| c.received(*k).packets).sum::<u64>())
        .sum();
    progress.connected.store(connected, Ordering::Relaxed);
    progress.sent.store(sent, Ordering::Relaxed);
    progress.received.store(received, Ordering::Relaxed);
}
