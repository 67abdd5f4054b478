//! Shared by the integration tests: start the real `uringcast` binary on
//! ephemeral loopback ports, read its stats, make offers, run clients on
//! threads. Every wait is bounded in time.

#![allow(dead_code)]

pub mod room;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use uringcast_load::client::{Client, ClientOptions, ClientRole};

/// A running server process, killed on drop.
pub struct ServerProc {
    child: Option<Child>,
    pub base: String,
    pub udp: SocketAddr,
    /// The certificate an `https://` server presents, trusted by `stats`.
    trusted: Option<rustls::pki_types::CertificateDer<'static>>,
}

impl ServerProc {
    /// Starts the binary with `args` on ephemeral ports and waits until it serves.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_log(args, "warn")
    }

    /// [`ServerProc::start`] logging with the filter `log` unless the
    /// environment sets `URINGCAST_LOG`. `args` may name their own
    /// `--http-addr` or `--udp-addr` (each flag may be given once).
    pub fn start_with_log(args: &[&str], log: &str) -> Self {
        let defaults = [
            ("--http-addr", "127.0.0.1:0"),
            ("--udp-addr", "127.0.0.1:0"),
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_uringcast"))
            .args(
                defaults
                    .iter()
                    .filter(|(flag, _)| !args.contains(flag))
                    .flat_map(|(flag, value)| [*flag, *value]),
            )
            .args(args)
            .env(
                "URINGCAST_LOG",
                std::env::var("URINGCAST_LOG").unwrap_or_else(|_| log.into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the uringcast binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Hands lines over until the addresses are read, then keeps draining
        // to stderr for the life of the process (a closed pipe would make the
        // server's later prints fail).
        std::thread::spawn(move || {
            let mut handing_over = true;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if handing_over && tx.send(line.clone()).is_err() {
                    handing_over = false;
                }
                if !handing_over {
                    eprintln!("[uringcast] {line}");
                }
            }
        });
        let mut base = None;
        let mut udp = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while base.is_none() || udp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the server printed its addresses in time");
            // "WHIP publish:  POST http(s)://host:port/whip/{room}"
            if let Some(url) = line.split("POST ").nth(1).filter(|_| line.contains("WHIP")) {
                base = url.split("/whip/").next().map(str::to_owned);
            }
            if let Some(rest) = line.split("udp ").nth(1) {
                udp = rest.split(' ').next().and_then(|a| a.parse().ok());
            }
        }
        Self {
            child: Some(child),
            base: base.expect("base"),
            udp: udp.expect("udp"),
            trusted: None,
        }
    }

    /// [`ServerProc::start`] for a server presenting `cert` (made by
    /// [`certificate`]), which `stats` then trusts.
    pub fn start_trusting(args: &[&str], cert: rustls::pki_types::CertificateDer<'static>) -> Self {
        let mut server = Self::start(args);
        server.trusted = Some(cert);
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// `GET /v1/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let agent: ureq::Agent = match &self.trusted {
            None => ureq::Agent::new_with_defaults(),
            Some(cert) => {
                let roots =
                    ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_der(
                        cert.as_ref(),
                    )
                    .to_owned()]);
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let tls = ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .unversioned_rustls_crypto_provider(provider)
                    .root_certs(roots)
                    .build();
                ureq::Agent::config_builder().tls_config(tls).build().into()
            }
        };
        let body = agent
            .get(format!("{}/v1/stats", self.base))
            .call()
            .expect("stats request")
            .body_mut()
            .read_to_string()
            .expect("stats body");
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// Sum of one counter over every shard.
    pub fn shard_sum(&self, counter: &str) -> u64 {
        self.stats()["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .map(|s| s[counter].as_u64().unwrap_or(0))
            .sum()
    }

    /// Waits (bounded) until `check` holds for the stats; returns whether it did.
    pub fn wait_for(&self, limit: Duration, check: impl Fn(&serde_json::Value) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if check(&self.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("child").id() as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub use uringcast_load::client::swarm::Flags;

/// A running client whose thread must end cleanly.
pub struct Running(uringcast_load::client::swarm::Running);

impl From<uringcast_load::client::swarm::Running> for Running {
    fn from(running: uringcast_load::client::swarm::Running) -> Self {
        Self(running)
    }
}

impl Running {
    /// The client back from its thread; its run must not have failed.
    pub fn join(self) -> Client {
        let (client, result) = self.0.join();
        result.expect("the client ran without error");
        client
    }
}

/// Connects a client and runs it on a thread (at most `limit`).
pub fn spawn_client(
    base: &str,
    room: &str,
    role: ClientRole,
    options: ClientOptions,
    flags: &Flags,
    limit: Duration,
) -> Running {
    Running(
        uringcast_load::client::swarm::spawn(base, room, role, options, flags, limit)
            .expect("client connects over HTTP"),
    )
}

/// A publisher in `room` with `options`, on flags of its own, connected
/// (within 10 s) and sending; it runs for at most `limit`.
pub fn sending_publisher(
    base: &str,
    room: &str,
    options: ClientOptions,
    limit: Duration,
) -> (Flags, Running) {
    let flags = Flags::default();
    let publisher = spawn_client(base, room, ClientRole::Publish, options, &flags, limit);
    assert!(
        flags.wait_connected(1, Duration::from_secs(10)),
        "the publisher connected"
    );
    flags.send.store(true, std::sync::atomic::Ordering::Relaxed);
    (flags, publisher)
}

/// A default publisher and a default viewer in `room`, sharing `flags`.
pub fn spawn_pair(base: &str, room: &str, flags: &Flags, limit: Duration) -> (Running, Running) {
    let publisher = spawn_client(
        base,
        room,
        ClientRole::Publish,
        ClientOptions::default(),
        flags,
        limit,
    );
    let viewer = spawn_client(
        base,
        room,
        ClientRole::Watch,
        ClientOptions::default(),
        flags,
        limit,
    );
    (publisher, viewer)
}

/// An SDP offer from a plain str0m peer: `kinds` with `direction`, codecs
/// chosen by `configure`.
pub fn offer(
    kinds: &[MediaKind],
    direction: Direction,
    configure: impl FnOnce(str0m::RtcConfig) -> str0m::RtcConfig,
) -> String {
    let mut rtc: Rtc = configure(Rtc::builder()).build(Instant::now());
    let candidate =
        Candidate::host("127.0.0.1:40000".parse().expect("addr"), "udp").expect("candidate");
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    for kind in kinds {
        change.add_media(*kind, direction, None, None, None);
    }
    let (offer, _) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

/// A publisher offer with audio and video, default codecs.
pub fn publish_offer() -> String {
    offer(
        &[MediaKind::Audio, MediaKind::Video],
        Direction::SendOnly,
        |c| c,
    )
}

/// Raw HTTP: method, path, content type, body → (status, headers, body).
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("Content-Type", ct))
        .into_iter()
        .collect();
    request(base, method, path, &headers, body)
}

/// Status, headers and body of a response (`http_status_as_error` off).
pub fn response_parts(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, Vec<(String, String)>, String) {
    let mut response = result.expect("HTTP round trip");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, headers, body)
}

/// The value of header `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A UDP relay standing in for a NAT: the client sends to `front`; the relay
/// forwards to the server from its current upstream socket, and everything
/// the server sends to any upstream socket goes back to the client.
/// `switch_to(i)` changes the upstream socket mid-session (NAT rebinding).
pub struct Relay {
    pub front: SocketAddr,
    upstream: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Relays to `server` through `upstreams` (starting with the first); runs at most 60 s.
    pub fn start(server: SocketAddr, upstreams: Vec<std::net::UdpSocket>) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let front = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind relay front");
        let front_addr = front.local_addr().expect("addr");
        let upstream = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for socket in upstreams.iter().chain(std::iter::once(&front)) {
            socket.set_nonblocking(true).expect("nonblocking");
            // So a keyframe burst is not lost in a test tool.
            let _ = uringcast::net::set_receive_buffer(socket, 4 << 20);
        }
        let (current, halt) = (upstream.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                let mut idle = true;
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    idle = false;
                    client = Some(from);
                    let _ = upstreams[current.load(Ordering::Relaxed)].send_to(&buf[..n], server);
                }
                // Like a NAT that rebound: a mapping no longer in use is
                // gone, and what the server still sends to it is lost.
                let live = current.load(Ordering::Relaxed);
                for (index, socket) in upstreams.iter().enumerate() {
                    while let Ok((n, _)) = socket.recv_from(&mut buf) {
                        idle = false;
                        if let Some(client) = client.filter(|_| index == live) {
                            let _ = front.send_to(&buf[..n], client);
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        Self {
            front: front_addr,
            upstream,
            stop,
            thread: Some(thread),
        }
    }

    /// Uses upstream socket `index` from now on (the others go dead).
    pub fn switch_to(&self, index: usize) {
        self.upstream
            .store(index, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Which shard a datagram from `socket` reaches: sends one junk datagram and
/// watches the per-shard drop counters (bounded wait).
pub fn shard_of(server: &ServerProc, socket: &std::net::UdpSocket) -> usize {
    let counts = |s: &serde_json::Value| -> Vec<u64> {
        s["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .map(|x| x["drop_unknown_source"].as_u64().unwrap_or(0))
            .collect()
    };
    let before = counts(&server.stats());
    socket.send_to(&[0u8; 4], server.udp).expect("send junk");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let after = counts(&server.stats());
        if let Some(i) = (0..after.len()).find(|&i| after[i] > before[i]) {
            return i;
        }
        assert!(Instant::now() < deadline, "the junk datagram was counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Raw HTTP with extra request headers: method, path, headers, body (sent
/// for POST and PATCH) → (status, headers, body).
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{base}{path}");
    macro_rules! with_headers {
        ($builder:expr) => {{
            let mut builder = $builder;
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder
        }};
    }
    let result = match method {
        "POST" => with_headers!(agent.post(&url)).send(body),
        "PATCH" => with_headers!(agent.patch(&url)).send(body),
        "DELETE" => with_headers!(agent.delete(&url)).call(),
        "GET" => with_headers!(agent.get(&url)).call(),
        "HEAD" => with_headers!(agent.head(&url)).call(),
        "OPTIONS" => with_headers!(agent.options(&url)).call(),
        other => panic!("unsupported method {other}"),
    };
    response_parts(result)
}

/// Every value of header `name` (case-insensitive).
pub fn headers_named<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether the server closed `stream` (EOF or reset) within its read
/// timeout, reading and discarding whatever it sent first.
pub fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files in a directory of its own (`name`: one per test, which run in
/// parallel); returns (cert path, key path, cert DER).
pub fn certificate(
    name: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rustls::pki_types::CertificateDer<'static>,
) {
    let dir = std::env::temp_dir().join(format!("uringcast-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (cert, key, made.cert.der().clone())
}

/// A one-shard server serving HTTPS with `cert` and `key`, plus `extra` flags.
pub fn start_https(cert: &std::path::Path, key: &std::path::Path, extra: &[&str]) -> ServerProc {
    let (cert, key) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let mut args = vec!["--shards", "1", "--tls-cert", cert, "--tls-key", key];
    args.extend_from_slice(extra);
    ServerProc::start(&args)
}

/// Publishes with `publisher` options and watches with `viewer` options in
/// `room` for ~1.5 s; asserts the viewer got ≥ 95 % of the video and audio,
/// none corrupt.
pub fn media_flows(
    server: &ServerProc,
    room: &str,
    publisher: ClientOptions,
    viewer: ClientOptions,
) -> (Client, Client) {
    let flags = Flags::default();
    let limit = Duration::from_secs(20);
    let p = spawn_client(
        &server.base,
        room,
        ClientRole::Publish,
        publisher,
        &flags,
        limit,
    );
    let v = spawn_client(&server.base, room, ClientRole::Watch, viewer, &flags, limit);
    assert!(
        flags.wait_connected(2, Duration::from_secs(10)),
        "both connected: {}",
        server.stats()
    );
    flags.send.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    flags.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let viewer = v.join();
    let publisher = p.join();
    for kind in [
        uringcast_load::client::payload::Kind::Video,
        uringcast_load::client::payload::Kind::Audio,
    ] {
        let sent = publisher.sent(kind);
        let got = viewer.received(kind).unique();
        assert!(
            sent > 50 && got * 100 >= sent * 95,
            "{kind:?}: {got} of {sent}"
        );
        assert_eq!(viewer.received(kind).summary().corrupt, 0);
    }
    (publisher, viewer)
}
