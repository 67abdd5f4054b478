//! Per-shard counters: written by the shard with relaxed atomics, read by
//! `/v1/stats` and `/metrics`. Every reason a datagram or packet is thrown
//! away has a counter. Also the shard's two latency histograms (session
//! setup, first media packet), lock-free, and whether its thread runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::net::NetStats;
use crate::sfu::Outputs;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Counters of one shard.
        #[derive(Debug, Default)]
        pub struct ShardStats {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
            /// From a session's offer to ICE and DTLS connected.
            pub setup: Timing,
            /// From a session's offer to its first media packet (a
            /// publisher's first received, a subscriber's first sent).
            pub first_media: Timing,
            /// The shard's thread is in its loop.
            pub running: AtomicBool,
        }

        /// A point-in-time copy of [`ShardStats`].
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct ShardSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl ShardSnapshot {
            /// Every counter's name, its doc and its value, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), concat!($($doc),*), self.$name),)*]
            }
        }

        impl ShardStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> ShardSnapshot {
                ShardSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Datagrams received on this shard's socket.
    received,
    /// RTP packets received from publishers on this shard.
    rtp_in,
    /// RTP packets written to viewers on this shard.
    forwarded,
    /// Packets sent to another shard's queue (one per destination shard).
    cross_shard_out,
    /// Packets received from another shard's publisher.
    cross_shard_in,
    /// Datagrams handed to the shard that owns their peer.
    handed_off,
    /// Datagrams handed over by another shard (counted there in `handed_off`).
    handed_in,
    /// Datagrams (received or handed in) given to a peer's state machine.
    /// Every datagram is counted once: `received + handed_in = to_peer +
    /// handed_off + drop_unknown_source + drop_unknown_ufrag` + the hand-offs
    /// in `drop_queue_full`.
    to_peer,
    /// Peers currently on this shard.
    peers,
    /// Dropped: datagram from an unknown address that is not a STUN binding request.
    drop_unknown_source,
    /// Dropped: STUN binding request naming a ufrag no session has.
    drop_unknown_ufrag,
    /// Dropped: a shard-to-shard media lane was full (a publisher's packet
    /// for another shard's viewers, or a hand-off datagram). Control
    /// messages never land here.
    drop_queue_full,
    /// Shard-to-shard control messages (routes, unroutes, keyframe
    /// requests) that could not be queued: only when the receiving shard
    /// had stopped (shutdown). Stays 0 while serving; never dropped for
    /// being full (the control lane is unbounded).
    control_lost,
    /// Dropped: a viewer could not take a packet (codec not negotiated, too old).
    drop_viewer,
    /// Dropped: not STUN/DTLS/RTP/RTCP, or refused by the peer's state machine.
    drop_invalid,
    /// Dropped: a publisher's video packet over `--max-bitrate-in`.
    drop_bitrate_in,
    /// Dropped: a viewer's video packet over `--max-bitrate-out`.
    drop_bitrate_out,
    /// Transmits to ICE-TCP peers handed to the ICE-TCP thread.
    tcp_out,
    /// Dropped: a transmit to an ICE-TCP peer the ICE-TCP thread could not
    /// take (its queue full, or ICE-TCP off).
    drop_tcp,
    /// Peers closed because a call into str0m panicked.
    peer_panics,
    /// Times a session's media moved to another address of its client (a
    /// nomination from there, or a takeover; not a session's first).
    path_moves,
    /// Of those, a check without USE-CANDIDATE took over a path that sent
    /// no check for 4 s (a client that nominates once, after its NAT
    /// rebound).
    path_takeovers,
    /// Datagrams the datapath handed to the kernel.
    net_sent,
    /// Datagrams dropped on send (kernel error or no free send buffer).
    net_send_dropped,
    /// Receive errors and truncated datagrams.
    net_recv_errors,
}

impl ShardStats {
    /// Copies the datapath's own counters.
    pub fn record_net(&self, net: &NetStats) {
        self.net_sent.store(net.sent_datagrams, Ordering::Relaxed);
        self.net_send_dropped
            .store(net.send_dropped, Ordering::Relaxed);
        self.net_recv_errors
            .store(net.recv_errors, Ordering::Relaxed);
    }

    /// Copies the totals the shard's long-lived [`Outputs`] has accumulated
    /// (bitrate-limit drops, path moves: never reset, so they are this
    /// shard's totals).
    pub fn record_outputs(&self, out: &Outputs) {
        self.drop_bitrate_in
            .store(out.dropped_bitrate_in, Ordering::Relaxed);
        self.drop_bitrate_out
            .store(out.dropped_bitrate_out, Ordering::Relaxed);
        self.path_moves.store(out.path_moves, Ordering::Relaxed);
        self.path_takeovers
            .store(out.path_takeovers, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Upper bounds (seconds) of [`Timing`]'s buckets: session setup and first
/// media take from tens of milliseconds (loopback) to seconds (TURN, loss).
pub const TIMING_BOUNDS: [f64; 10] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram with fixed buckets ([`TIMING_BOUNDS`]), observed by
/// one shard with relaxed atomics (once per session, never per packet).
#[derive(Debug, Default)]
pub struct Timing {
    /// Observations per bucket (not cumulative); above the last bound only
    /// in `count`.
    buckets: [AtomicU64; TIMING_BOUNDS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A copy of a [`Timing`]: per-bucket counts, sum (seconds) and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimingSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Timing {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = TIMING_BOUNDS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TimingSnapshot {
        TimingSnapshot {
            buckets: TIMING_BOUNDS
                .iter()
                .zip(&self.buckets)
                .map(|(b, n)| (*b, n.load(Ordering::Relaxed)))
                .collect(),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

impl TimingSnapshot {
    /// Adds `other`'s observations (same bounds).
    pub fn merge(&mut self, other: &TimingSnapshot) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.iter().map(|(b, _)| (*b, 0)).collect();
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.1 += theirs.1;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// Marks a shard's thread running for as long as it lives (a return, an
/// error or a panic clears it): what `/readyz` reads.
pub struct RunningGuard<'a>(&'a AtomicBool);

impl<'a> RunningGuard<'a> {
    pub fn new(running: &'a AtomicBool) -> Self {
        running.store(true, Ordering::Relaxed);
        Self(running)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_fall_into_their_buckets() {
        let t = Timing::default();
        t.observe(Duration::from_millis(20));
        t.observe(Duration::from_millis(300));
        t.observe(Duration::from_secs(60));
        let s = t.snapshot();
        assert_eq!(s.count, 3);
        assert!((s.sum - 60.32).abs() < 1e-9, "{}", s.sum);
        assert_eq!(s.buckets[0], (0.025, 1));
        assert_eq!(s.buckets[4], (0.5, 1));
        assert_eq!(
            s.buckets.iter().map(|b| b.1).sum::<u64>(),
            2,
            "60 s is only in count"
        );
        let mut total = TimingSnapshot::default();
        total.merge(&s);
        total.merge(&s);
        assert_eq!((total.count, total.buckets[0].1), (6, 2));
    }
}
