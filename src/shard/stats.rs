//! Per-shard counters: written by the shard with relaxed atomics, read by
//! `/v1/stats`. Every reason a datagram or packet is thrown away has a counter.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::net::NetStats;
use crate::sfu::Outputs;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters of one shard.
        #[derive(Debug, Default)]
        pub struct ShardStats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A point-in-time copy of [`ShardStats`].
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct ShardSnapshot {
            $($(#[$doc])* pub $name: u64,)*
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
