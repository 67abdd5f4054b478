//! Starting and stopping a whole server: bind the reuseport group, build one
//! datapath and one shard thread per socket, start the signaling runtime with
//! the HTTP endpoint, and on shutdown close every session and join it all.
//! `main` is a thin wrapper; tests and tools start servers the same way.
//! A running server reloads its certificate and policy ([`Server::reload`]),
//! drains ([`Server::start_drain`]), and summarizes its counters.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::config::Config;
use crate::directory::hooks::{HOOK_QUEUE, HookSink};
use crate::directory::{Directory, Limits};
use crate::http::{self, AppState, Lifecycle, Policy, SignalingCounters, StatsSampler, TlsReload};
use crate::net::tcp::{Deliver, TcpEdge, TcpLimits};
use crate::net::{self, bind_reuseport};
use crate::record::{RecordSink, Recorder};
use crate::sfu::{IdRng, PeerSetup};
use crate::shard::{self, Control, Shard, ShardHandle, ShardMedia};
use crate::webhook::Webhook;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding the media port {addr}: {source}")]
    BindUdp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("setting up the {kind:?} datapath: {source}")]
    Datapath {
        kind: net::IoKind,
        source: std::io::Error,
    },
    #[error(
        "binding the ICE-TCP listener {addr} (the media port's number over TCP; --ice-tcp false turns it off): {source}"
    )]
    BindTcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("binding the HTTP endpoint {addr}: {source}")]
    BindHttp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("HTTPS: {0}")]
    Tls(#[from] http::TlsError),
    #[error("starting a thread: {0}")]
    Thread(std::io::Error),
}

/// Why a reload was refused (the server goes on as it was).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("HTTPS: {0}")]
    Tls(#[from] http::TlsError),
    #[error("{0}")]
    Policy(String),
    #[error("turning HTTPS on or off needs a restart")]
    TlsToggle,
}

/// A running server.
pub struct Server {
    http_addr: SocketAddr,
    https: bool,
    udp_addr: SocketAddr,
    directory: Arc<Directory>,
    policy: Arc<ArcSwap<Policy>>,
    tls: Option<TlsReload>,
    lifecycle: Arc<Lifecycle>,
    counters: Arc<SignalingCounters>,
    /// The ICE-TCP listener's thread (`--ice-tcp`).
    tcp: Option<TcpEdge>,
    io_names: Arc<[&'static str]>,
    shards: Arc<[ShardHandle]>,
    shard_threads: Vec<JoinHandle<std::io::Result<()>>>,
    http_thread: Option<JoinHandle<()>>,
    http_stop: Option<oneshot::Sender<()>>,
    /// The recorder's queue and thread (`--record-dir`).
    recorder: Option<(RecordSink, JoinHandle<()>)>,
}

impl Server {
    /// Binds everything and starts serving.
    pub fn start(config: &Config) -> Result<Self, StartError> {
        let shard_count = config.shard_count();
        let (sockets, udp_addr, tcp_listener) = bind_media(config, shard_count)?;
        let candidates = candidates(udp_addr, &config.public_ip)?;
        let policy = Policy::from_config(config).map_err(StartError::Config)?;
        let policy = Arc::new(ArcSwap::from_pointee(policy));
        let codecs = config.codecs().map_err(StartError::Config)?;

        let datapaths = open_datapaths(config, sockets)?;
        let io_names: Arc<[&'static str]> = datapaths.iter().map(|d| d.name()).collect();
        let (handles, inboxes): (Vec<_>, Vec<_>) = datapaths
            .iter()
            .map(|d| shard::channel(config.shard_queue, d.waker()))
            .unzip();
        let shards: Arc<[ShardHandle]> = handles.into();
        let tcp = start_tcp(config, tcp_listener, &shards)?;
        let tcp_outbox = tcp.as_ref().map(|t| t.outbox.clone());
        let (directory, recorder) = record_into(config, new_directory(config)?)?;
        let directory = Arc::new(directory);
        let recorder = recorder
            .map(|r| spawn_recorder(r, &shards, &directory))
            .transpose()?;

        // From here on a failed start stops and joins every shard it spawned
        // (the guard's drop); only success takes the threads out of it.
        let mut started = StartedShards {
            shards: shards.clone(),
            threads: Vec::with_capacity(shard_count),
        };
        for (index, (datapath, inbox)) in datapaths.into_iter().zip(inboxes).enumerate() {
            let shard = Shard::new(
                index,
                datapath,
                inbox,
                shards.clone(),
                directory.clone(),
                candidates.clone(),
            )
            .with_tcp(tcp_outbox.clone());
            let thread = std::thread::Builder::new()
                .name(format!("shard-{index}"))
                .spawn(move || shard.run())
                .map_err(StartError::Thread)?;
            started.threads.push(thread);
        }

        let (listener, http_addr) = bind_http(config.http_addr)?;
        let setup = peer_setup(config, candidates, codecs, tcp.is_some())?;
        let playbacks = config.record_dir.as_ref().map(|dir| {
            Arc::new(crate::record::playback::Playbacks::new(
                dir.clone(),
                directory.clone(),
                setup.clone(),
            ))
        });
        let state = AppState {
            directory,
            shards: shards.clone(),
            setup,
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            io_names: io_names.clone(),
            sampler: Arc::new(StatsSampler::default()),
            started: Instant::now(),
            policy: policy.clone(),
            counters: Arc::new(SignalingCounters::default()),
            lifecycle: Arc::new(Lifecycle::default()),
            trusted_proxies: config.trust_proxy.clone().into(),
            metrics_per_room: config.metrics_per_room,
            tcp_stats: tcp.as_ref().map(|t| t.stats.clone()),
            playbacks,
        };
        let (directory, lifecycle, counters) = (
            state.directory.clone(),
            state.lifecycle.clone(),
            state.counters.clone(),
        );
        let tls = tls_from(config)?;
        let https = tls.is_some();
        let reload_tls = tls.clone();
        let connect_timeout = config.connect_timeout;
        let limits = http::ConnectionLimits {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
        };
        let (http_stop, stopped) = oneshot::channel::<()>();
        let http_thread = std::thread::Builder::new()
            .name("signaling".into())
            .spawn(move || run_http(listener, state, tls, limits, connect_timeout, stopped))
            .map_err(StartError::Thread)?;

        Ok(Self {
            http_addr,
            https,
            udp_addr,
            directory,
            policy,
            tls: reload_tls,
            lifecycle,
            counters,
            tcp,
            io_names,
            shards,
            shard_threads: std::mem::take(&mut started.threads),
            http_thread: Some(http_thread),
            http_stop: Some(http_stop),
            recorder,
        })
    }

    /// Where the HTTP endpoint listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The endpoint's base URL (`http://` or, with TLS, `https://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The media port's address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The datapath each shard runs ("uring" or "mmsg").
    pub fn io_names(&self) -> &[&'static str] {
        &self.io_names
    }

    /// Reads the TLS certificate and key again and swaps the request
    /// policy (tokens, admin token, ICE servers, rate limit) for `config`'s.
    /// Sessions and connections go on; a TLS handshake under way finishes
    /// with the old certificate. On error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), ReloadError> {
        let tls = match (&self.tls, &config.tls_cert, &config.tls_key) {
            (Some(_), Some(cert), Some(key)) => Some(http::tls_acceptor(cert, key)?),
            (None, None, None) => None,
            _ => return Err(ReloadError::TlsToggle),
        };
        let policy = Policy::from_config(config).map_err(ReloadError::Policy)?;
        if let (Some(current), Some(tls)) = (&self.tls, tls) {
            current.store(Arc::new(tls));
        }
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Refuses new sessions (503) from now on; existing ones go on.
    pub fn start_drain(&self) {
        self.lifecycle.start_drain(&self.directory);
    }

    /// Returns once a drain is asked for over the admin API (or was).
    pub async fn drain_requested(&self) {
        self.lifecycle.drain_requested().await;
    }

    /// Sessions open now (pending or connected).
    pub fn session_count(&self) -> usize {
        self.directory.session_count()
    }

    /// One line of the server's state for the log (SIGUSR1): sessions,
    /// rooms, and per shard packets in and out and drops.
    pub fn summary(&self) -> String {
        let rooms = self.directory.rooms();
        let participants: usize = rooms.iter().map(|r| r.participants).sum();
        let viewers: usize = rooms.iter().map(|r| r.viewers).sum();
        let mut line = format!(
            "sessions={} pending={} rooms={} participants={participants} viewers={viewers} draining={}",
            self.directory.session_count(),
            self.directory.pending_count(),
            rooms.len(),
            self.directory.is_draining(),
        );
        for (i, shard) in self.shards.iter().enumerate() {
            let s = shard.stats.snapshot();
            let dropped: u64 = (s.fields().iter())
                .filter(|(name, _, _)| name.starts_with("drop_"))
                .map(|(_, _, v)| v)
                .sum();
            line.push_str(&format!(
                " | shard{i}: peers={} rtp_in={} forwarded={} dropped={dropped}",
                s.peers, s.rtp_in, s.forwarded
            ));
        }
        let refused = self
            .counters
            .auth_refused
            .load(std::sync::atomic::Ordering::Relaxed);
        line.push_str(&format!(" | auth_refused={refused}"));
        line
    }

    /// Stops accepting, closes every session, joins every thread; gives up
    /// waiting after `limit`.
    pub fn shutdown(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
        stop_shards(&self.shards, self.shard_threads.drain(..), deadline);
        if let Some(tcp) = self.tcp.take() {
            tcp.stop();
        }
        if let Some(thread) = self.http_thread.take() {
            join_until(thread, deadline);
        }
        // After the shards: every session has ended and unpublished; the
        // recorder finishes the files still open.
        if let Some((sink, thread)) = self.recorder.take() {
            sink.shutdown();
            join_until(thread, deadline.max(Instant::now() + RECORDER_STOP));
        }
        info!("stopped");
    }
}

/// The recorder's queue and directory, not yet running.
type PendingRecorder = (std::path::PathBuf, RecordSink, crate::record::RecordInbox);

/// With `--record-dir`: the directory gets the recorder's queue (the
/// shards take it from there).
fn record_into(
    config: &Config,
    directory: Directory,
) -> Result<(Directory, Option<PendingRecorder>), StartError> {
    let Some(dir) = &config.record_dir else {
        if config.record_all {
            return Err(StartError::Config("--record-all needs --record-dir".into()));
        }
        return Ok((directory, None));
    };
    crate::record::prepare_dir(dir).map_err(StartError::Config)?;
    let (sink, inbox) = RecordSink::new(config.record_queue);
    let directory = directory.with_recorder(sink.clone(), config.record_all);
    Ok((directory, Some((dir.clone(), sink, inbox))))
}

/// Starts the recorder thread; it asks `shards` for keyframes and tells
/// the directory's webhook of finished files.
fn spawn_recorder(
    (dir, sink, inbox): PendingRecorder,
    shards: &Arc<[ShardHandle]>,
    directory: &Directory,
) -> Result<(RecordSink, JoinHandle<()>), StartError> {
    let recorder = Recorder {
        dir,
        shards: shards.clone(),
        hooks: directory.hook_sink(),
    };
    let thread = recorder
        .spawn(inbox, sink.stats.clone())
        .map_err(StartError::Thread)?;
    Ok((sink, thread))
}

/// How long shutdown waits at least for the recorder to finish its files.
const RECORDER_STOP: Duration = Duration::from_secs(5);

/// How long a failed start waits for the shards it spawned to stop.
const FAILED_START_STOP: Duration = Duration::from_secs(2);

/// The shard threads a start has spawned so far. Dropped while it still
/// holds threads (a later start step failed), it stops and joins them.
struct StartedShards {
    shards: Arc<[ShardHandle]>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Drop for StartedShards {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        warn!(
            shards = self.threads.len(),
            "start failed: stopping the shards it spawned"
        );
        let deadline = Instant::now() + FAILED_START_STOP;
        stop_shards(&self.shards, self.threads.drain(..), deadline);
    }
}

/// Tells every shard to shut down, then joins `threads` until `deadline`.
fn stop_shards<T>(
    shards: &[ShardHandle],
    threads: impl Iterator<Item = JoinHandle<T>>,
    deadline: Instant,
) {
    for handle in shards {
        if !handle.command(Control::Shutdown) {
            warn!("a shard did not take the shutdown command");
        }
    }
    for thread in threads {
        join_until(thread, deadline);
    }
}

fn join_until<T>(thread: JoinHandle<T>, deadline: Instant) {
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if thread.is_finished() {
        let _ = thread.join();
    } else {
        warn!(thread = ?thread.thread().name(), "did not stop in time");
    }
}

/// One datapath per socket, of the kind `--io` asks for.
fn open_datapaths(
    config: &Config,
    sockets: Vec<std::net::UdpSocket>,
) -> Result<Vec<Box<dyn net::Datapath>>, StartError> {
    sockets
        .into_iter()
        .map(|socket| {
            net::open(config.io, socket).map_err(|source| StartError::Datapath {
                kind: config.io,
                source,
            })
        })
        .collect()
}

/// The ICE-TCP thread on `listener` (bound by [`bind_media`]), if any.
fn start_tcp(
    config: &Config,
    listener: Option<std::net::TcpListener>,
    shards: &Arc<[ShardHandle]>,
) -> Result<Option<TcpEdge>, StartError> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let limits = TcpLimits {
        max_connections: config.ice_tcp_max_connections,
        ..TcpLimits::default()
    };
    TcpEdge::start(listener, limits, deliver_tcp(shards.clone()))
        .map(Some)
        .map_err(StartError::Thread)
}

/// The directory with the configured limits and, with `--webhook-url`,
/// the webhook's queue and its sender thread.
fn new_directory(config: &Config) -> Result<Directory, StartError> {
    let directory = Directory::with_limits(Limits {
        max_sessions: config.max_sessions,
        max_pending: config.max_pending,
        max_per_ip: config.max_sessions_per_ip,
        room_size: config.room_size,
        approval_timeout: config.approval_timeout,
    })
    // A session that ended by itself answers DELETE with 200 this long.
    .remember_ended(config.connect_timeout);
    let Some(url) = &config.webhook_url else {
        return Ok(directory);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(StartError::Config(format!(
            "--webhook-url {url}: an http:// or https:// URL"
        )));
    }
    let (sink, events) = HookSink::new(HOOK_QUEUE);
    let webhook = Webhook {
        url: url.clone(),
        key: config.webhook_key.clone(),
    };
    // The thread ends by itself when the directory goes.
    webhook
        .spawn(events, sink.stats.clone())
        .map_err(StartError::Thread)?;
    Ok(directory.with_hooks(sink))
}

/// The signaling listener (non-blocking) and its address.
fn bind_http(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let error = |source| StartError::BindHttp { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    Ok((listener, bound))
}

/// What every peer is built with.
fn peer_setup(
    config: &Config,
    candidates: Vec<SocketAddr>,
    codecs: crate::sfu::CodecList,
    ice_tcp: bool,
) -> Result<PeerSetup, StartError> {
    let dtls_cert = crate::dtls::certificate(crate::dtls::KeyType::EcdsaP256)
        .map_err(|e| StartError::Config(format!("cannot make the DTLS certificate: {e}")))?;
    Ok(PeerSetup {
        candidates,
        connect_timeout: config.connect_timeout,
        ice_timeout: config.ice_timeout,
        keyframe_interval: config.keyframe_interval,
        max_bitrate_in: config.max_bitrate_in,
        max_bitrate_out: config.max_bitrate_out,
        dtls_cert: Some(dtls_cert),
        crypto: crate::dtls::crypto_provider(),
        // Session ids and ICE credentials leave the process: the OS
        // CSPRNG, never a seeded source.
        rng: IdRng::os(),
        codecs,
        ice_tcp,
    })
}

/// The HTTPS acceptor of `--tls-cert` and `--tls-key`, swappable on reload.
fn tls_from(config: &Config) -> Result<Option<TlsReload>, StartError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(Arc::new(ArcSwap::from_pointee(http::tls_acceptor(
            cert, key,
        )?)))),
        (None, None) => Ok(None),
        _ => Err(StartError::Config(
            "--tls-cert and --tls-key go together".into(),
        )),
    }
}

/// Tries of a port-0 start at finding a port free for UDP and TCP alike.
const PORT_TRIES: usize = 32;

/// The media port: one UDP socket per shard in a reuseport group and, with
/// `--ice-tcp`, a TCP listener on the same number (bound now, so a taken
/// port fails the start before any thread runs). With port 0 the kernel
/// picks a UDP port, which TCP may have in use: then another is tried.
fn bind_media(
    config: &Config,
    shard_count: usize,
) -> Result<
    (
        Vec<std::net::UdpSocket>,
        SocketAddr,
        Option<std::net::TcpListener>,
    ),
    StartError,
> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut sockets = Vec::with_capacity(shard_count);
        let mut udp_addr = config.udp_addr;
        for _ in 0..shard_count {
            let bind_error = |source| StartError::BindUdp {
                addr: udp_addr,
                source,
            };
            let socket = bind_reuseport(udp_addr, config.socket_buffer, config.socket_buffer)
                .map_err(bind_error)?;
            // Port 0: the first bind picks the port, the rest join it.
            udp_addr = socket.local_addr().map_err(bind_error)?;
            sockets.push(socket);
        }
        if !config.ice_tcp {
            return Ok((sockets, udp_addr, None));
        }
        match bind_tcp(udp_addr) {
            Ok(listener) => return Ok((sockets, udp_addr, Some(listener))),
            Err(e)
                if config.udp_addr.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tries < PORT_TRIES => {}
            Err(source) => {
                return Err(StartError::BindTcp {
                    addr: udp_addr,
                    source,
                });
            }
        }
    }
}

/// A TCP listener on `udp_addr` (its IP and port), for ICE-TCP.
fn bind_tcp(udp_addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(udp_addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if udp_addr.is_ipv6() && udp_addr.ip().is_unspecified() {
        // Dual stack, as the UDP socket.
        socket.set_only_v6(false)?;
    }
    socket.bind(&udp_addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// How the ICE-TCP thread hands a frame to the shards: to the shard its
/// client's address hashes to, which routes it on as it routes a UDP
/// datagram (by ufrag, or to the shard that pinned the address).
fn deliver_tcp(shards: Arc<[ShardHandle]>) -> Deliver {
    Arc::new(move |meta, data| {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(meta.source);
        let Some(shard) = shards.get((hash % shards.len().max(1) as u64) as usize) else {
            return false;
        };
        let taken = shard.try_send(ShardMedia::Tcp {
            meta,
            data: data.into(),
        });
        if taken {
            shard.waker.wake();
        }
        taken
    })
}

/// Our host candidates: the media address, unless it is a wildcard, and every
/// public IP on the same port.
fn candidates(udp_addr: SocketAddr, public_ips: &[IpAddr]) -> Result<Vec<SocketAddr>, StartError> {
    let mut out = Vec::new();
    if !udp_addr.ip().is_unspecified() {
        out.push(udp_addr);
    }
    for ip in public_ips {
        let addr = SocketAddr::new(*ip, udp_addr.port());
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(StartError::Config(format!(
            "--udp-addr {udp_addr} is a wildcard address: name the addresses clients reach with --public-ip"
        )));
    }
    Ok(out)
}

fn run_http(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<TlsReload>,
    limits: http::ConnectionLimits,
    connect_timeout: Duration,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("signaling-rt")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the signaling runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "cannot use the HTTP listener");
                return;
            }
        };
        http::spawn_background_tasks(&state, connect_timeout);
        let counters = state.counters.clone();
        let app = http::router(state);
        http::serve(listener, app, tls, limits, counters, async {
            let _ = stopped.await;
        })
        .await;
    });
    // Do not wait for slow clients' connections at shutdown.
    runtime.shutdown_timeout(Duration::from_millis(200));
}
