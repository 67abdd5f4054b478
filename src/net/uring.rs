//! The io_uring backend (the `io-uring` crate, no runtime on top).
//!
//! - Receive: one multishot `RecvMsg` over a provided-buffer ring. Each
//!   completion names a buffer holding header, source address, control
//!   messages (PKTINFO) and payload; the buffer goes back to the ring right
//!   after the callback. A completion without the MORE flag (e.g. the ring ran
//!   dry) ends the multishot; it is re-armed before the next wait.
//! - Send: [`Datapath::queue_send`] copies into a fixed slot (bytes, address,
//!   `msghdr`, `iovec` at a stable address) and pushes a `SendMsg`; all pushed
//!   entries go to the kernel in one `io_uring_enter` per turn.
//! - Wait: `io_uring_enter` with GETEVENTS (and a timeout via EXT_ARG); a
//!   multishot poll on the [`Waker`]'s eventfd ends the wait from other threads.
//!
//! Ring flags: SINGLE_ISSUER | DEFER_TASKRUN is tried first. SINGLE_ISSUER
//! binds the ring to one thread, but the backend is built by [`open`] on one
//! thread and then moved to its shard thread, so the ring is created
//! R_DISABLED and enabled by the first call that enters the kernel (normally
//! the first `turn`); from then on it must stay on that thread (the kernel
//! answers EEXIST otherwise). If the kernel refuses these flags, COOP_TASKRUN,
//! then no flags at all. No SQPOLL: an idle loop sleeps in `io_uring_enter`.
//!
//! [`open`]: super::open

use std::collections::VecDeque;
use std::io;
use std::mem::{ManuallyDrop, MaybeUninit, size_of};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{EnterFlags, IoUring, cqueue, opcode, squeue};
use tracing::{debug, warn};

use super::sockaddr::{self, CONTROL_LEN, LocalAddr};
use super::sys::{annotate, rare};
use super::{Datapath, MAX_DATAGRAM, NetStats, RecvMeta, Waker, refuse_oversized};

mod mem;
mod mode;

use mem::{BufRing, SendPool};
pub(crate) use mode::RingMode;

/// Submission queue size. A turn that queues more sends than this submits
/// early, so it bounds no traffic, only batch size.
pub(crate) const SQ_ENTRIES: u32 = 4096;

/// Completion queue size: room for every send slot plus every receive buffer
/// completing in one turn, with headroom (the kernel buffers overflow anyway).
pub(crate) const CQ_ENTRIES: u32 = 16384;

/// Receive buffers in the provided-buffer ring (a power of two): datagrams
/// the kernel can hand us between two turns before the multishot stops.
pub(crate) const RECV_BUFFERS: u16 = 2048;

/// Bytes of one receive buffer: the `io_uring_recvmsg_out` header (16 bytes),
/// the source address, the control messages, then up to [`MAX_DATAGRAM`]
/// bytes of payload. Longer datagrams are truncated and counted in
/// `recv_errors`.
pub(crate) const RECV_BUF_LEN: usize =
    (16 + size_of::<libc::sockaddr_storage>() + CONTROL_LEN + MAX_DATAGRAM).next_multiple_of(64);

/// Send slots: datagrams queued or in flight at once. When all are busy,
/// `queue_send` reaps completions; if still none is free it drops.
pub(crate) const SEND_SLOTS: u16 = 4096;

/// Buffer group id of the provided-buffer ring.
const BGID: u16 = 0;
/// `user_data` of the multishot receive. Sends use their slot index.
const UD_RECV: u64 = u64::MAX;
/// `user_data` of the multishot poll on the waker's eventfd.
const UD_WAKER: u64 = u64::MAX - 1;
/// Completions copied out of the ring at a time.
const CQE_BATCH: usize = 64;

/// The receive callback of [`Datapath::turn`].
type OnRecv<'a> = dyn FnMut(RecvMeta, &[u8]) + 'a;

/// Memory the kernel reads or writes while operations are in flight.
struct Pinned {
    bufs: BufRing,
    sends: SendPool<MAX_DATAGRAM>,
    /// Template for the multishot receive: only the name and control lengths
    /// matter; they fix the layout of every receive buffer.
    recv_hdr: Box<libc::msghdr>,
}

/// The io_uring [`Datapath`].
pub(crate) struct UringDatapath {
    ring: IoUring,
    /// Freed by `Drop` only once the ring holds no operation pointing into it
    /// (else leaked), never by field drop order.
    pinned: ManuallyDrop<Pinned>,
    socket: UdpSocket,
    waker: Waker,
    local: LocalAddr,
    mode: RingMode,
    /// Something was submitted (and, in DeferTaskrun mode, the ring enabled).
    started: bool,
    recv_armed: bool,
    waker_armed: bool,
    /// The waker fired since the last turn returned.
    woken: bool,
    /// Receive completions reaped outside `turn` (by `queue_send` looking for
    /// free slots), delivered first by the next `turn`. Each holds a buffer.
    backlog: VecDeque<cqueue::Entry>,
    stats: NetStats,
    /// Send errors reported by the kernel (to throttle logs).
    send_errors: u64,
    /// An error found while handling completions, returned by `turn`.
    fatal: Option<io::Error>,
}

// SAFETY: the raw pointers inside (`msghdr`s, buffer addresses) point only
// into allocations this value owns, which no other value references; moving
// it to another thread moves that ownership with it. The one thread affinity,
// SINGLE_ISSUER, is enforced by the kernel with an error (EEXIST), not UB.
unsafe impl Send for UringDatapath {}

impl UringDatapath {
    /// Sets up a ring for `socket`, trying `modes` in order.
    pub(crate) fn new(socket: UdpSocket, modes: &[RingMode]) -> io::Result<Self> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no ring mode to try");
        let mut built = None;
        for &mode in modes {
            match mode.build() {
                Ok(ring) => {
                    built = Some((ring, mode));
                    break;
                }
                Err(e) => {
                    debug!(?mode, error = %e, "io_uring setup refused");
                    last = e;
                }
            }
        }
        let (ring, mode) = built.ok_or_else(|| annotate(last, "io_uring setup"))?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring setup: kernel lacks IORING_FEAT_EXT_ARG (needs Linux >= 5.11)",
            ));
        }
        let local = LocalAddr::of(&socket)?;
        let waker = Waker::new()?;
        let bufs = BufRing::new(RECV_BUFFERS, RECV_BUF_LEN)
            .map_err(|e| annotate(e, "io_uring buffer ring"))?;
        let sends = SendPool::new(SEND_SLOTS).map_err(|e| annotate(e, "io_uring send slots"))?;
        // SAFETY: msghdr is a C struct of integers and raw pointers; all-zero
        // is a valid (empty) value.
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        recv_hdr.msg_controllen = CONTROL_LEN;
        // SAFETY: the ring memory stays allocated (in `pinned`) until the ring
        // is quiesced and the group unregistered in `Drop`, or is leaked.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring_addr(), bufs.entries(), BGID, 0)
        }
        .map_err(|e| annotate(e, "io_uring register_buf_ring"))?;
        debug!(?mode, local = ?local, "io_uring datapath ready");
        Ok(Self {
            ring,
            pinned: ManuallyDrop::new(Pinned {
                bufs,
                sends,
                recv_hdr,
            }),
            socket,
            waker,
            local,
            mode,
            started: false,
            recv_armed: false,
            waker_armed: false,
            woken: false,
            backlog: VecDeque::new(),
            stats: NetStats::default(),
            send_errors: 0,
            fatal: None,
        })
    }

    /// The flags the ring was created with.
    pub(crate) fn mode(&self) -> RingMode {
        self.mode
    }

    /// Enables an R_DISABLED ring on the calling thread, once.
    fn ensure_started(&mut self) -> io::Result<()> {
        if !self.started {
            if self.mode == RingMode::DeferTaskrun {
                self.ring
                    .submitter()
                    .register_enable_rings()
                    .map_err(|e| annotate(e, "io_uring enable rings"))?;
            }
            self.started = true;
        }
        Ok(())
    }

    /// Pushes one entry, submitting early if the SQ is full. False if there
    /// is still no room (the kernel is refusing submissions for now).
    ///
    /// # Safety
    /// Every pointer in `sqe` must stay valid until its completion arrives.
    unsafe fn push(&mut self, sqe: &squeue::Entry) -> io::Result<bool> {
        for _ in 0..2 {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(true);
            }
            self.enter(Some(Duration::ZERO))?;
        }
        Ok(false)
    }

    /// Submits everything pushed, then waits until a completion is available
    /// or `wait` elapsed (`None`: no limit; zero: just submit and reap).
    fn enter(&mut self, wait: Option<Duration>) -> io::Result<()> {
        self.ensure_started()?;
        let pending = self.ring.submission().len() as u32;
        let submitter = self.ring.submitter();
        let res = match wait {
            Some(d) if d.is_zero() => {
                // SAFETY: no argument pointer; GETEVENTS with min_complete 0
                // only flushes (deferred) completions and returns.
                unsafe {
                    submitter.enter::<libc::sigset_t>(
                        pending,
                        0,
                        EnterFlags::GETEVENTS.bits(),
                        None,
                    )
                }
            }
            Some(d) => {
                let ts = Timespec::from(d);
                submitter.submit_with_args(1, &SubmitArgs::new().timespec(&ts))
            }
            None => submitter.submit_and_wait(1),
        };
        match res {
            Ok(_) => Ok(()),
            // ETIME: the timeout passed. EINTR: a signal. EBUSY / EAGAIN: the
            // kernel wants us to reap first or is short of memory; the caller
            // drains and comes back.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(annotate(e, "io_uring_enter")),
        }
    }

    /// Arms the multishot receive and the waker poll if they are not armed.
    fn arm(&mut self) -> io::Result<()> {
        if !self.recv_armed {
            let hdr: *const libc::msghdr = &*self.pinned.recv_hdr;
            let sqe = opcode::RecvMsgMulti::new(Fd(self.socket.as_raw_fd()), hdr, BGID)
                .build()
                .user_data(UD_RECV);
            // SAFETY: `recv_hdr` and the buffer ring live in `pinned`, which
            // outlives every operation (see Drop).
            self.recv_armed = unsafe { self.push(&sqe) }?;
        }
        if !self.waker_armed {
            let sqe = opcode::PollAdd::new(Fd(self.waker.raw_fd()), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(UD_WAKER);
            // SAFETY: a poll holds no pointers; the eventfd lives in `waker`.
            self.waker_armed = unsafe { self.push(&sqe) }?;
        }
        Ok(())
    }

    /// Takes every available completion. Receives go to `sink`, or to the
    /// backlog when there is none; sends and waker polls are handled here.
    /// True if a datagram was delivered or the waker fired.
    fn drain(&mut self, mut sink: Option<&mut OnRecv<'_>>) -> io::Result<bool> {
        let mut progressed = false;
        loop {
            let mut batch = [const { MaybeUninit::<cqueue::Entry>::uninit() }; CQE_BATCH];
            let cqes = self.ring.completion().fill(&mut batch);
            let n = cqes.len();
            for cqe in cqes.iter() {
                match cqe.user_data() {
                    UD_RECV => match sink.as_deref_mut() {
                        Some(on_recv) => progressed |= self.on_recv_cqe(cqe, on_recv),
                        None => self.stash(cqe),
                    },
                    UD_WAKER => self.on_waker_cqe(cqe),
                    slot => self.on_send_cqe(slot, cqe.result()),
                }
            }
            if n < CQE_BATCH {
                break;
            }
        }
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        Ok(progressed | std::mem::take(&mut self.woken))
    }

    /// Keeps a receive completion for the next `turn`.
    fn stash(&mut self, cqe: &cqueue::Entry) {
        if !cqueue::more(cqe.flags()) {
            self.recv_armed = false;
        }
        self.backlog.push_back(cqe.clone());
    }

    /// Delivers stashed receive completions.
    fn deliver_backlog(&mut self, on_recv: &mut OnRecv<'_>) -> io::Result<bool> {
        let mut progressed = std::mem::take(&mut self.woken);
        while let Some(cqe) = self.backlog.pop_front() {
            progressed |= self.on_recv_cqe(&cqe, on_recv);
        }
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(progressed),
        }
    }

    /// Handles one completion of the multishot receive. True if it carried a
    /// datagram. An error that makes the backend unusable goes to `fatal`.
    fn on_recv_cqe(&mut self, cqe: &cqueue::Entry, on_recv: &mut OnRecv<'_>) -> bool {
        let (res, flags) = (cqe.result(), cqe.flags());
        if !cqueue::more(flags) {
            self.recv_armed = false;
            if res != -libc::ECANCELED {
                self.stats.recv_rearms += 1;
                if rare(self.stats.recv_rearms) {
                    debug!(
                        result = res,
                        rearms = self.stats.recv_rearms,
                        "multishot recvmsg ended, re-arming"
                    );
                }
            }
        }
        let Some(bid) = cqueue::buffer_select(flags) else {
            match -res {
                // Buffers ran out (the datagram waits in the socket) or we
                // cancelled: nothing lost.
                libc::ENOBUFS | libc::ECANCELED => {}
                libc::EINVAL | libc::EOPNOTSUPP => {
                    self.fatal = Some(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "io_uring multishot recvmsg refused (needs Linux >= 6.0): {}",
                            io::Error::from_raw_os_error(-res)
                        ),
                    ));
                }
                errno => {
                    self.stats.recv_errors += 1;
                    if rare(self.stats.recv_errors) {
                        debug!(errno, "recvmsg error");
                    }
                }
            }
            return false;
        };
        let Pinned { bufs, recv_hdr, .. } = &mut *self.pinned;
        let len = usize::try_from(res).unwrap_or(0).min(RECV_BUF_LEN);
        // SAFETY: `bid` was selected by this completion and is recycled
        // only after `buf` is last used.
        match unsafe { bufs.buffer(bid, len) } {
            Some(buf) => deliver(buf, recv_hdr, &self.local, &mut self.stats, on_recv),
            None => self.stats.recv_errors += 1,
        }
        bufs.recycle(bid);
        true
    }

    fn on_waker_cqe(&mut self, cqe: &cqueue::Entry) {
        if !cqueue::more(cqe.flags()) {
            self.waker_armed = false;
        }
        if cqe.result() >= 0 && self.waker.drain() {
            self.stats.wakeups += 1;
            self.woken = true;
        }
    }

    fn on_send_cqe(&mut self, slot: u64, res: i32) {
        let Ok(slot) = u16::try_from(slot) else {
            warn!(user_data = slot, "unexpected io_uring completion");
            return;
        };
        self.pinned.sends.release(slot);
        if let Ok(n) = u64::try_from(res) {
            self.stats.sent_datagrams += 1;
            self.stats.sent_bytes += n;
        } else {
            self.stats.send_dropped += 1;
            self.send_errors += 1;
            if rare(self.send_errors) {
                debug!(errno = -res, errors = self.send_errors, "sendmsg failed");
            }
        }
    }

    /// Anything the kernel may still touch?
    fn busy(&self) -> bool {
        self.recv_armed || self.waker_armed || self.pinned.sends.in_flight() > 0
    }

    /// Cancels every operation and waits (bounded) for their completions.
    /// True when nothing in flight can touch `pinned` any more.
    fn quiesce(&mut self) -> bool {
        if !self.started {
            // Nothing was ever submitted: the kernel never saw our pointers.
            return true;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        // Submit what is queued so it can be cancelled, not orphaned.
        let mut ok = self.enter(Some(Duration::ZERO)).is_ok() && self.drain(None).is_ok();
        if ok {
            let cancel = self
                .ring
                .submitter()
                .register_sync_cancel(Some(Timespec::new().sec(1)), CancelBuilder::any());
            if let Err(e) = cancel
                && e.raw_os_error() != Some(libc::ENOENT)
            {
                debug!(error = %e, "io_uring sync cancel");
            }
        }
        while ok && self.busy() && Instant::now() < deadline {
            ok = self.enter(Some(Duration::from_millis(10))).is_ok() && self.drain(None).is_ok();
        }
        while let Some(cqe) = self.backlog.pop_front() {
            if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                self.pinned.bufs.recycle(bid);
            }
        }
        !self.busy()
    }
}

/// Parses one receive buffer and hands the datagram to `on_recv`.
fn deliver(
    buf: &[u8],
    recv_hdr: &libc::msghdr,
    local: &LocalAddr,
    stats: &mut NetStats,
    on_recv: &mut OnRecv<'_>,
) {
    let Ok(msg) = RecvMsgOut::parse(buf, recv_hdr) else {
        stats.recv_errors += 1;
        return;
    };
    if msg.is_payload_truncated() {
        stats.recv_errors += 1;
        if rare(stats.recv_errors) {
            debug!(
                len = msg.incoming_payload_len(),
                "oversized datagram truncated, dropped"
            );
        }
        return;
    }
    let Some(source) = sockaddr::decode(msg.name_data()) else {
        stats.recv_errors += 1;
        return;
    };
    let destination = local.destination(msg.control_data());
    let payload = msg.payload_data();
    stats.recv_datagrams += 1;
    stats.recv_bytes += payload.len() as u64;
    on_recv(RecvMeta::udp(source, destination), payload);
}

impl Datapath for UringDatapath {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn queue_send(&mut self, dest: SocketAddr, data: &[u8]) {
        if refuse_oversized(&mut self.stats, data.len()) {
            return;
        }
        if self.pinned.sends.in_flight() == usize::from(SEND_SLOTS) {
            // Reap without waiting; receives found meanwhile wait in the backlog.
            if let Err(e) = self
                .enter(Some(Duration::ZERO))
                .and_then(|()| self.drain(None))
            {
                debug!(error = %e, "reaping send completions");
            }
        }
        let ipv6 = self.local.is_ipv6();
        let Some((slot, hdr)) = self.pinned.sends.fill(dest, ipv6, data) else {
            self.stats.send_dropped += 1;
            return;
        };
        let sqe = opcode::SendMsg::new(Fd(self.socket.as_raw_fd()), hdr)
            .build()
            .user_data(u64::from(slot));
        // SAFETY: `hdr` and everything it points to live in send slot `slot`,
        // which stays reserved until this operation's completion releases it.
        match unsafe { self.push(&sqe) } {
            Ok(true) => {}
            res => {
                if let Err(e) = res {
                    debug!(error = %e, "submitting sends");
                }
                self.pinned.sends.release(slot);
                self.stats.send_dropped += 1;
            }
        }
    }

    fn turn(
        &mut self,
        timeout: Option<Duration>,
        on_recv: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<()> {
        self.ensure_started()?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut progressed = self.deliver_backlog(on_recv)?;
        loop {
            self.arm()?;
            let wait = if progressed {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            };
            self.enter(wait)?;
            progressed |= self.drain(Some(&mut *on_recv))?;
            // Send completions alone do not end a turn; data, a wake or the
            // deadline do.
            if progressed || wait.is_some_and(|w| w.is_zero()) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
        }
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn stats(&self) -> NetStats {
        self.stats
    }
}

impl Drop for UringDatapath {
    fn drop(&mut self) {
        if self.quiesce() {
            let _ = self.ring.submitter().unregister_buf_ring(BGID);
            // SAFETY: quiesce saw the final completion of every operation, so
            // the kernel holds no pointer into `pinned`; it is dropped once.
            unsafe { ManuallyDrop::drop(&mut self.pinned) };
        } else {
            // Dropped on another thread than the one that drove the ring
            // (SINGLE_ISSUER refuses us) or the kernel did not answer: keep
            // the buffers alive forever rather than free memory it may write.
            warn!(
                mode = ?self.mode,
                "io_uring operations still in flight at drop; leaking their buffers"
            );
        }
    }
}
