//! [`Waker`]: the handle other threads use to end a shard's
//! [`Datapath::turn`](super::Datapath::turn) early. An eventfd that the
//! backend watches next to its socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::sys::{annotate, cvt};

/// Ends the current (or next) [`Datapath::turn`](super::Datapath::turn) of the
/// backend it came from. Cheap to clone; `wake` is one `write(2)` and never
/// blocks. Wakes coalesce: many `wake`s before the loop looks count as one.
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Creates a fresh eventfd (non-blocking, close-on-exec).
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let raw = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
            .map_err(|e| annotate(e, "eventfd"))?;
        // SAFETY: `raw` is a freshly created descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd: Arc::new(fd) })
    }

    /// Wakes the loop. Safe to call from any thread, any number of times.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we keep open.
        // The only expected failure is EAGAIN (counter at its maximum), which
        // means a wake is already pending: nothing to do.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// The eventfd, for the backend to watch.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Resets the counter; true if a wake was pending. Never blocks.
    pub(crate) fn drain(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; the fd is
        // non-blocking, so an unset counter returns EAGAIN at once.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut value).cast(), 8) };
        n == 8 && value > 0
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Waker>();
};
