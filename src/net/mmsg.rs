//! The portable backend: `recvmmsg` / `sendmmsg` in batches, woken by epoll
//! (level-triggered) on the socket and the [`Waker`]'s eventfd.
//!
//! Sends are copied into a fixed queue and flushed with `sendmmsg` at the
//! start of every turn (or early when the queue is full). On EAGAIN the flush
//! polls for writability once, briefly, then drops what is left: a loop never
//! blocks on a full socket buffer.

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use tracing::debug;

use super::sockaddr::{self, CONTROL_LEN, ControlBuf, LocalAddr};
use super::sys::{annotate, cvt, rare};
use super::{Datapath, MAX_DATAGRAM, NetStats, RecvMeta, Waker, refuse_oversized};

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub(crate) const BATCH: usize = 64;

/// `recvmmsg` calls per turn at most, so a flood cannot starve the rest of
/// the loop (level-triggered epoll brings us back at once for the rest).
pub(crate) const RECV_BATCHES_PER_TURN: usize = 16;

/// Datagrams queued between two flushes; a full queue flushes early.
pub(crate) const SEND_QUEUE: usize = 1024;

/// How long a flush waits for the socket to become writable after EAGAIN.
const SEND_RETRY_POLL_MS: libc::c_int = 1;

/// epoll tokens.
const TOKEN_SOCKET: u64 = 0;
const TOKEN_WAKER: u64 = 1;

/// Receive side: one batch of buffers, addresses and control messages.
struct RecvBatch {
    names: [libc::sockaddr_storage; BATCH],
    controls: [ControlBuf; BATCH],
    bufs: [[u8; MAX_DATAGRAM]; BATCH],
}

/// One queued datagram.
struct Queued {
    addr: libc::sockaddr_storage,
    addr_len: libc::socklen_t,
    len: usize,
    data: [u8; MAX_DATAGRAM],
}

/// The recvmmsg/sendmmsg [`Datapath`].
pub(crate) struct MmsgDatapath {
    socket: UdpSocket,
    epoll: OwnedFd,
    waker: Waker,
    local: LocalAddr,
    rx: Box<RecvBatch>,
    /// `SEND_QUEUE` slots; the first `queued` hold datagrams to send.
    tx: Box<[Queued]>,
    queued: usize,
    stats: NetStats,
    send_errors: u64,
}

impl MmsgDatapath {
    pub(crate) fn new(socket: UdpSocket) -> io::Result<Self> {
        let local = LocalAddr::of(&socket)?;
        let waker = Waker::new()?;
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(|e| annotate(e, "epoll_create1"))?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
        epoll_add(&epoll, socket.as_raw_fd(), TOKEN_SOCKET)
            .map_err(|e| annotate(e, "epoll_ctl(socket)"))?;
        epoll_add(&epoll, waker.raw_fd(), TOKEN_WAKER)
            .map_err(|e| annotate(e, "epoll_ctl(eventfd)"))?;
        let rx = Box::new(RecvBatch {
            names: [sockaddr::zeroed_storage(); BATCH],
            controls: [ControlBuf::ZERO; BATCH],
            bufs: [[0; MAX_DATAGRAM]; BATCH],
        });
        let tx = (0..SEND_QUEUE)
            .map(|_| Queued {
                addr: sockaddr::zeroed_storage(),
                addr_len: 0,
                len: 0,
                data: [0; MAX_DATAGRAM],
            })
            .collect();
        debug!(local = ?local, "mmsg datapath ready");
        Ok(Self {
            socket,
            epoll,
            waker,
            local,
            rx,
            tx,
            queued: 0,
            stats: NetStats::default(),
            send_errors: 0,
        })
    }

    /// Sends everything queued. Never blocks longer than one short poll.
    fn flush(&mut self) {
        let fd = self.socket.as_raw_fd();
        let mut next = 0;
        let mut retried = false;
        while next < self.queued {
            let chunk = &mut self.tx[next..self.queued.min(next + BATCH)];
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: mmsghdr is a C struct of integers and raw pointers;
            // all-zero is valid.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for ((q, iov), h) in chunk.iter_mut().zip(&mut iovs).zip(&mut hdrs) {
                iov.iov_base = q.data.as_mut_ptr().cast();
                iov.iov_len = q.len;
                h.msg_hdr.msg_name = (&raw mut q.addr).cast();
                h.msg_hdr.msg_namelen = q.addr_len;
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first chunk.len() headers point at live iovecs,
            // addresses and data in `iovs` / `self.tx`, all alive for the call.
            let ret = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), chunk.len() as u32, 0) };
            if let Ok(n @ 1..) = usize::try_from(ret) {
                for h in &hdrs[..n] {
                    self.stats.sent_datagrams += 1;
                    self.stats.sent_bytes += u64::from(h.msg_len);
                }
                next += n;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) if !retried => {
                    retried = true;
                    poll_writable(fd);
                }
                Some(libc::EAGAIN) => {
                    let left = (self.queued - next) as u64;
                    self.stats.send_dropped += left;
                    self.send_errors += 1;
                    if rare(self.send_errors) {
                        debug!(dropped = left, "socket send buffer full, dropping");
                    }
                    break;
                }
                errno => {
                    // This datagram cannot go (e.g. unreachable, EMSGSIZE);
                    // drop it and carry on with the rest.
                    self.stats.send_dropped += 1;
                    self.send_errors += 1;
                    if rare(self.send_errors) {
                        debug!(?errno, error = %err, "sendmmsg failed, dropping one");
                    }
                    next += 1;
                }
            }
        }
        self.queued = 0;
    }

    /// Reads what the socket holds (bounded), in arrival order.
    fn recv(&mut self, on_recv: &mut dyn FnMut(RecvMeta, &[u8])) {
        let fd = self.socket.as_raw_fd();
        for _ in 0..RECV_BATCHES_PER_TURN {
            let rx = &mut *self.rx;
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: as in `flush`: all-zero mmsghdrs are valid.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for i in 0..BATCH {
                iovs[i].iov_base = rx.bufs[i].as_mut_ptr().cast();
                iovs[i].iov_len = MAX_DATAGRAM;
                let h = &mut hdrs[i].msg_hdr;
                h.msg_name = (&raw mut rx.names[i]).cast();
                h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &raw mut iovs[i];
                h.msg_iovlen = 1;
                h.msg_control = rx.controls[i].0.as_mut_ptr().cast();
                h.msg_controllen = CONTROL_LEN;
            }
            // SAFETY: every header points at live, writable buffers of the
            // stated lengths in `rx` / `iovs`; no timeout pointer.
            let ret = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            let Ok(n) = usize::try_from(ret) else {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => {}
                    _ => {
                        self.stats.recv_errors += 1;
                        if rare(self.stats.recv_errors) {
                            debug!(error = %err, "recvmmsg failed");
                        }
                    }
                }
                return;
            };
            for (i, h) in hdrs[..n].iter().enumerate() {
                let m = &h.msg_hdr;
                if m.msg_flags & libc::MSG_TRUNC != 0 {
                    self.stats.recv_errors += 1;
                    if rare(self.stats.recv_errors) {
                        debug!(len = h.msg_len, "oversized datagram truncated, dropped");
                    }
                    continue;
                }
                let name = sockaddr::storage_bytes(&rx.names[i], m.msg_namelen);
                let Some(source) = sockaddr::decode(name) else {
                    self.stats.recv_errors += 1;
                    continue;
                };
                let control = &rx.controls[i].0[..m.msg_controllen.min(CONTROL_LEN)];
                let destination = self.local.destination(control);
                let payload = &rx.bufs[i][..(h.msg_len as usize).min(MAX_DATAGRAM)];
                self.stats.recv_datagrams += 1;
                self.stats.recv_bytes += payload.len() as u64;
                on_recv(RecvMeta::udp(source, destination), payload);
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// Resets the waker; counts it if it had fired. True if it had.
    fn take_wake(&mut self) -> bool {
        let woke = self.waker.drain();
        if woke {
            self.stats.wakeups += 1;
        }
        woke
    }
}

impl Datapath for MmsgDatapath {
    fn name(&self) -> &'static str {
        "mmsg"
    }

    fn queue_send(&mut self, dest: SocketAddr, data: &[u8]) {
        if refuse_oversized(&mut self.stats, data.len()) {
            return;
        }
        if self.queued == self.tx.len() {
            self.flush();
        }
        let ipv6 = self.local.is_ipv6();
        let q = &mut self.tx[self.queued];
        q.addr_len = sockaddr::encode(dest, ipv6, &mut q.addr);
        q.data[..data.len()].copy_from_slice(data);
        q.len = data.len();
        self.queued += 1;
    }

    fn turn(
        &mut self,
        timeout: Option<Duration>,
        on_recv: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<()> {
        self.flush();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        let n = loop {
            let timeout_ms = match deadline {
                None => -1,
                // Round up: a 0.3 ms timer must sleep 1 ms, not spin at 0.
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000))
                        .unwrap_or(libc::c_int::MAX)
                }
            };
            // SAFETY: `events` is a writable array of the length passed.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    timeout_ms,
                )
            };
            match usize::try_from(n) {
                Ok(n) => break n,
                // A signal (or io_uring task-work notification) interrupted
                // the wait: wait out the rest.
                Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {
                    if timeout_ms == 0 {
                        return Ok(());
                    }
                }
                Err(_) => return Err(annotate(io::Error::last_os_error(), "epoll_wait")),
            }
        };
        for ev in &events[..n] {
            match ev.u64 {
                TOKEN_SOCKET => self.recv(on_recv),
                TOKEN_WAKER => {
                    self.take_wake();
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn stats(&self) -> NetStats {
        self.stats
    }
}

fn epoll_add(epoll: &OwnedFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` is a live epoll_event the kernel only reads during the call.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// Waits up to [`SEND_RETRY_POLL_MS`] for `fd` to accept writes.
fn poll_writable(fd: RawFd) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, count 1. The result does not matter: the
    // caller retries the send either way.
    let _ = unsafe { libc::poll(&mut pfd, 1, SEND_RETRY_POLL_MS) };
}
