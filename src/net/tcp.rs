//! ICE-TCP (RFC 6544, passive) on the media port's number: a client whose
//! UDP is blocked connects here, and each RFC 4571 frame (a 2-byte
//! big-endian length, then one STUN, DTLS, RTP or RTCP packet) becomes a
//! datagram for the shards, as if it had come from the UDP socket with
//! `proto: Tcp`. The shards' transmits for a TCP peer come back through
//! [`TcpOutbox`] and are framed onto that connection.
//!
//! One thread (`ice-tcp`, a tokio current-thread runtime) owns the listener
//! and every connection; it knows nothing of peers: the first frame goes
//! to a shard picked by the caller's `deliver`, and the shards' own
//! routing (ufrag, pinned addresses, hand-offs) does the rest. Bounds: the
//! number of connections (and per client IP), a frame's size (1..=2048),
//! the time to the first frame and between frames, a per-connection write
//! queue (full: the frame is dropped, whole, and counted) and a write that
//! stalls (the connection is closed). Never a blocking call towards a
//! shard: `deliver` must not block, and the outbox is `try_send` only.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::{MAX_DATAGRAM, RecvMeta};

/// Limits of the ICE-TCP listener.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once (`--ice-tcp-max-connections`).
    pub max_connections: usize,
    /// Connections open at once from one client IP.
    pub per_ip: usize,
    /// A new connection must send its first frame within this.
    pub first_frame: Duration,
    /// A connection that sends nothing for this long is closed (a selected
    /// pair is checked every few seconds; str0m drops a pair after 15 s).
    pub idle: Duration,
    /// A write that makes no progress for this long closes the connection.
    pub write_stall: Duration,
    /// Frames queued for one connection's writer; more are dropped.
    pub write_queue: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            per_ip: 16,
            first_frame: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            write_stall: Duration::from_secs(5),
            write_queue: 256,
        }
    }
}

/// Frames the shards may queue for the ICE-TCP thread at once.
pub const OUTBOX: usize = 8192;

/// The ICE-TCP counters, in `/v1/stats` (`ice_tcp`) and `/metrics`.
#[derive(Debug, Default, Serialize)]
pub struct TcpStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections closed at once: over `max_connections` or the per-IP cap.
    pub refused: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Frames received and handed to the shards.
    pub frames_in: AtomicU64,
    /// Frames written to clients.
    pub frames_out: AtomicU64,
    /// Inbound frames the shards' lane did not take (full).
    pub dropped_in: AtomicU64,
    /// Outbound frames dropped: no such connection (it closed), or its
    /// write queue or the outbox was full.
    pub dropped_out: AtomicU64,
    /// Connections closed for a bad frame length (0 or over 2048).
    pub bad_frames: AtomicU64,
    /// Connections closed for silence (no first frame, or idle).
    pub timeouts: AtomicU64,
}

impl TcpStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One frame for a client: its connection's remote address and the packet.
#[derive(Debug)]
pub struct Outgoing {
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// The shards' way to the ICE-TCP thread.
#[derive(Debug, Clone)]
pub struct TcpOutbox {
    tx: mpsc::Sender<Outgoing>,
    stats: Arc<TcpStats>,
}

impl TcpOutbox {
    /// Queues `data` for the connection from `to` without blocking;
    /// `false` (counted) when the outbox is full or the thread is gone.
    pub fn send(&self, to: SocketAddr, data: Vec<u8>) -> bool {
        let sent = self.tx.try_send(Outgoing { to, data }).is_ok();
        if !sent {
            TcpStats::add(&self.stats.dropped_out, 1);
        }
        sent
    }
}

/// Hands one inbound frame to the shards; `false` if it was not taken.
pub type Deliver = Arc<dyn Fn(RecvMeta, &[u8]) -> bool + Send + Sync>;

/// A running ICE-TCP listener.
pub struct TcpEdge {
    pub outbox: TcpOutbox,
    pub stats: Arc<TcpStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpEdge {
    /// Serves `listener` (already bound, on the media port's number) on a
    /// thread of its own.
    pub fn start(
        listener: std::net::TcpListener,
        limits: TcpLimits,
        deliver: Deliver,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let stats = Arc::new(TcpStats::default());
        let (tx, rx) = mpsc::channel(OUTBOX);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let edge_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("ice-tcp".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "ICE-TCP: cannot use the listener");
                            return;
                        }
                    };
                    let edge = Edge {
                        limits,
                        deliver,
                        stats: edge_stats,
                        writers: HashMap::new(),
                        per_ip: HashMap::new(),
                    };
                    edge.run(listener, rx, stopped).await;
                });
            })?;
        Ok(Self {
            outbox: TcpOutbox {
                tx,
                stats: stats.clone(),
            },
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Closes every connection and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpEdge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's state.
struct Edge {
    limits: TcpLimits,
    deliver: Deliver,
    stats: Arc<TcpStats>,
    /// Each open connection's writer queue, by its remote address.
    writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Edge {
    async fn run(
        mut self,
        listener: tokio::net::TcpListener,
        mut outbox: mpsc::Receiver<Outgoing>,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let (closed_tx, mut closed) = mpsc::unbounded_channel::<SocketAddr>();
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.accept(stream, super::sockaddr::unmap(peer), &closed_tx),
                    Err(e) => {
                        tracing::warn!(error = %e, "ICE-TCP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(out) = outbox.recv() => self.write(out),
                Some(peer) = closed.recv() => self.forget(peer),
            }
        }
    }

    fn accept(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        closed: &mpsc::UnboundedSender<SocketAddr>,
    ) {
        let from_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        if self.writers.len() >= self.limits.max_connections || from_ip >= self.limits.per_ip {
            TcpStats::add(&self.stats.refused, 1);
            tracing::debug!(%peer, "ICE-TCP connection refused (at a limit)");
            return;
        }
        let Ok(local) = stream.local_addr() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        TcpStats::add(&self.stats.accepted, 1);
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        *self.per_ip.entry(peer.ip()).or_default() += 1;
        let (reader, writer) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.limits.write_queue);
        self.writers.insert(peer, tx);
        let meta = RecvMeta::tcp(peer, super::sockaddr::unmap(local));
        let (limits, stats, deliver) = (self.limits, self.stats.clone(), self.deliver.clone());
        let closed = closed.clone();
        tokio::spawn(async move {
            let write_stats = stats.clone();
            tokio::select! {
                () = read_frames(reader, meta, limits, &stats, &deliver) => {}
                () = write_frames(writer, rx, limits, &write_stats) => {}
            }
            let _ = closed.send(peer);
        });
    }

    fn write(&mut self, out: Outgoing) {
        let queued = self
            .writers
            .get(&out.to)
            .is_some_and(|w| w.try_send(out.data).is_ok());
        if !queued {
            TcpStats::add(&self.stats.dropped_out, 1);
        }
    }

    fn forget(&mut self, peer: SocketAddr) {
        if self.writers.remove(&peer).is_some() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
            if let Some(n) = self.per_ip.get_mut(&peer.ip()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&peer.ip());
                }
            }
        }
    }
}

/// Reads frames until the client leaves, errs, sends a bad length or
/// stays silent too long; each frame goes to `deliver`.
async fn read_frames(
    mut reader: OwnedReadHalf,
    meta: RecvMeta,
    limits: TcpLimits,
    stats: &TcpStats,
    deliver: &Deliver,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut wait = limits.first_frame;
    loop {
        let len = match tokio::time::timeout(wait, reader.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(_)) => return,
            Err(_) => {
                TcpStats::add(&stats.timeouts, 1);
                return;
            }
        };
        if len == 0 || len > MAX_DATAGRAM {
            TcpStats::add(&stats.bad_frames, 1);
            tracing::debug!(peer = %meta.source, len, "ICE-TCP frame of a bad length; closing");
            return;
        }
        let frame = &mut buf[..len];
        match tokio::time::timeout(limits.idle, reader.read_exact(frame)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                TcpStats::add(&stats.timeouts, 1);
                return;
            }
        }
        TcpStats::add(&stats.frames_in, 1);
        if !deliver(meta, frame) {
            TcpStats::add(&stats.dropped_in, 1);
        }
        wait = limits.idle;
    }
}

/// Writes queued frames (length-prefixed, whole) until the queue closes
/// or a write stalls.
async fn write_frames(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Vec<u8>>,
    limits: TcpLimits,
    stats: &TcpStats,
) {
    let mut framed = Vec::with_capacity(2 + MAX_DATAGRAM);
    while let Some(data) = queue.recv().await {
        let Ok(len) = u16::try_from(data.len()) else {
            TcpStats::add(&stats.dropped_out, 1);
            continue;
        };
        framed.clear();
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&data);
        match tokio::time::timeout(limits.write_stall, writer.write_all(&framed)).await {
            Ok(Ok(())) => TcpStats::add(&stats.frames_out, 1),
            Ok(Err(_)) => return,
            Err(_) => {
                TcpStats::add(&stats.timeouts, 1);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
