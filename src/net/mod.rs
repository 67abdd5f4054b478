//! The datapath: every syscall that moves a datagram lives below this module.
//!
//! A shard owns one [`Datapath`] built on one socket of the SO_REUSEPORT group
//! bound to the media port. Two backends implement it: `uring` (the `io-uring`
//! crate: multishot `RecvMsg` over a provided-buffer ring, sends batched and
//! submitted once per turn) and `mmsg` (recvmmsg/sendmmsg driven by epoll).
//! The shard loop is: queue sends → [`Datapath::turn`] (submit, wait, deliver
//! received datagrams) → repeat.
//!
//! Conventions both backends keep:
//! - Addresses: an IPv4 peer is always a `SocketAddr::V4`, even on a
//!   dual-stack `[::]` socket (the kernel's `::ffff:a.b.c.d` is unmapped on
//!   receive and re-mapped on send), so one peer has one spelling.
//! - Threads: build anywhere, then drive from one thread. The io_uring ring is
//!   pinned to the thread of its first `turn` (SINGLE_ISSUER); dropping it on
//!   another thread leaks its buffers (with a warning) rather than risk the
//!   kernel writing into freed memory.
//! - `on_recv` must not panic: a panic unwinding through `turn` loses the
//!   buffers and send slots of the completions still being handled.
//! - Nothing per packet is logged above `debug`, and repeated per-packet
//!   conditions are logged on their 1st, 2nd, 4th, 8th… occurrence only.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use str0m::net::Protocol;

mod mmsg;
mod sockaddr;
mod socket;
mod sys;
pub mod tcp;
mod uring;
mod waker;

#[cfg(test)]
mod tests;

pub use socket::{bind_reuseport, set_receive_buffer};
pub use waker::Waker;

/// The largest datagram either backend sends or receives whole. Longer sends
/// are dropped (counted in `send_dropped`); longer receives are truncated by
/// the kernel and dropped (counted in `recv_errors`). WebRTC keeps datagrams
/// under ~1200 bytes, so this only ever bites a misbehaving peer.
pub const MAX_DATAGRAM: usize = 2048;

/// Which backend to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IoKind {
    /// io_uring if it can be set up on this kernel, else mmsg.
    Auto,
    /// io_uring (the `io-uring` crate).
    Uring,
    /// recvmmsg/sendmmsg with epoll.
    Mmsg,
}

/// Where a received datagram came from and which local address it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// The remote address.
    pub source: SocketAddr,
    /// The local address it was sent to (from IP_PKTINFO / IPV6_PKTINFO when the
    /// socket is bound to a wildcard address; else the bound address).
    pub destination: SocketAddr,
    /// UDP (the datapaths), or TCP (one RFC 4571 frame of an ICE-TCP
    /// connection, from [`tcp`]).
    pub proto: Protocol,
}

impl RecvMeta {
    /// A datagram of the UDP socket.
    pub fn udp(source: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            source,
            destination,
            proto: Protocol::Udp,
        }
    }

    /// A frame of the ICE-TCP connection from `source` to `destination`.
    pub fn tcp(source: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            source,
            destination,
            proto: Protocol::Tcp,
        }
    }
}

/// Counters a backend keeps; read by `/v1/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub recv_datagrams: u64,
    pub recv_bytes: u64,
    pub sent_datagrams: u64,
    pub sent_bytes: u64,
    /// Datagrams dropped on send (kernel error such as ENOBUFS / EAGAIN, or no
    /// free send buffer).
    pub send_dropped: u64,
    /// Datagrams the kernel truncated or reported with an error on receive.
    pub recv_errors: u64,
    /// Times `turn` returned because the waker fired.
    pub wakeups: u64,
    /// Times the io_uring multishot receive ended and was re-armed (e.g. its
    /// buffer ring ran dry under a burst). Always 0 for mmsg.
    pub recv_rearms: u64,
}

/// One backend's view of one socket.
pub trait Datapath: Send {
    /// "uring" or "mmsg", for logs and stats.
    fn name(&self) -> &'static str;

    /// Copies `data` into a send buffer and queues it for `dest`. Nothing is
    /// submitted to the kernel until [`Datapath::turn`] (or until the batch is
    /// full, when the backend may flush early). Never blocks for long; when no
    /// buffer is free the datagram is dropped and counted in `send_dropped`.
    fn queue_send(&mut self, dest: SocketAddr, data: &[u8]);

    /// Submits every queued send, then waits until at least one datagram has
    /// arrived, the [`Waker`] fired, or `timeout` passed (`None`: no limit;
    /// `Some(ZERO)`: do not sleep). Calls `on_recv` for every datagram received,
    /// in arrival order. A datagram's bytes are only valid during the callback.
    fn turn(
        &mut self,
        timeout: Option<Duration>,
        on_recv: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<()>;

    /// A handle other threads use to end a `turn` early.
    fn waker(&self) -> Waker;

    /// Counters since start.
    fn stats(&self) -> NetStats;
}

/// Builds the backend `kind` asks for on `socket` (already bound, non-blocking).
/// `Auto` tries io_uring first and falls back to mmsg, logging which it chose.
///
/// The io_uring backend must be driven from one thread: `open` may run on any
/// thread, but the first [`Datapath::turn`] pins the ring to the thread that
/// calls it (SINGLE_ISSUER), and the backend must not move after that.
pub fn open(kind: IoKind, socket: std::net::UdpSocket) -> io::Result<Box<dyn Datapath>> {
    socket
        .set_nonblocking(true)
        .map_err(|e| sys::annotate(e, "O_NONBLOCK"))?;
    let local = socket.local_addr().ok();
    match kind {
        IoKind::Uring => {
            let dp = uring::UringDatapath::new(socket, &uring::RingMode::ALL)?;
            tracing::info!(?local, mode = ?dp.mode(), "datapath: io_uring");
            Ok(Box::new(dp))
        }
        IoKind::Mmsg => {
            let dp = mmsg::MmsgDatapath::new(socket)?;
            tracing::info!(?local, "datapath: recvmmsg/sendmmsg + epoll");
            Ok(Box::new(dp))
        }
        IoKind::Auto => {
            // Keep a duplicate so a failed io_uring setup does not cost the socket.
            let spare = socket
                .try_clone()
                .map_err(|e| sys::annotate(e, "dup socket"))?;
            match uring::UringDatapath::new(socket, &uring::RingMode::ALL) {
                Ok(dp) => {
                    tracing::info!(?local, mode = ?dp.mode(), "datapath: io_uring (auto)");
                    Ok(Box::new(dp))
                }
                Err(e) => {
                    // Container runtimes' default seccomp profiles (Docker's,
                    // containerd's) block io_uring_setup: say so plainly.
                    tracing::warn!(
                        error = %e,
                        "io_uring unavailable (blocked by a seccomp profile or disabled by the kernel?): falling back to recvmmsg/sendmmsg"
                    );
                    let dp = mmsg::MmsgDatapath::new(spare)?;
                    tracing::info!(?local, "datapath: recvmmsg/sendmmsg + epoll (auto)");
                    Ok(Box::new(dp))
                }
            }
        }
    }
}

/// A datagram over [`MAX_DATAGRAM`] is not sent: counted in `send_dropped`
/// and logged at debug. Returns whether `len` is refused.
pub(crate) fn refuse_oversized(stats: &mut NetStats, len: usize) -> bool {
    if len <= MAX_DATAGRAM {
        return false;
    }
    stats.send_dropped += 1;
    tracing::debug!(len, "datagram larger than MAX_DATAGRAM, dropped");
    true
}
