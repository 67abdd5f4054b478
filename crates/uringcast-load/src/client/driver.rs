//! Many clients on one thread: an epoll loop over every client's socket.
//! Each client is stepped when its socket is readable (all pending datagrams
//! are fed) or when its next deadline — str0m's timeout or the publisher's
//! media schedule — comes. This is what lets `uringcast-load` run a hundred
//! viewers beside the server on a small machine, where a thread per client
//! would spend the CPU on context switches.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Client, ClientError, ClientRole};

/// Longest sleep, so flag changes (`send`, `stop`) are seen promptly.
const MAX_WAIT: Duration = Duration::from_millis(10);

impl Client {
    /// Reads and feeds every datagram waiting on the socket.
    fn read_ready(&mut self) -> Result<(), ClientError> {
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, source)) => self.feed(n, source)?,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Advances timers and sends due media; returns when to step it next.
    fn step(&mut self, now: Instant, send: bool) -> Result<Instant, ClientError> {
        self.answer_offers()?;
        self.release_held(now)?;
        let timeout = self.drain()?;
        if timeout <= now {
            self.rtc.handle_input(str0m::Input::Timeout(now))?;
        }
        let mut next = self.drain()?;
        if self.role == ClientRole::Publish && self.is_connected() && send {
            self.send_due_media(now)?;
            next = next
                .min(self.drain()?)
                .min(self.sender.next_audio)
                .min(self.sender.next_video);
        }
        if self.offers.is_some() {
            // Offers arrive on a channel, not the socket: look often.
            next = next.min(now + OFFER_POLL);
        }
        Ok(next)
    }

    /// Restarts the publisher's media clock so a pause in sending does not
    /// turn into a burst of "late" frames.
    fn resume_media(&mut self, now: Instant) {
        self.sender.next_audio = now;
        self.sender.next_video = now;
    }
}

/// How often a conference subscriber looks for server offers.
const OFFER_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Clients stepped by one thread. Add clients at any time; call
/// [`Driver::turn`] in a loop.
pub struct Driver {
    epoll: Epoll,
    clients: Vec<Client>,
    next: Vec<Instant>,
    events: Vec<libc::epoll_event>,
    was_sending: bool,
}

impl Driver {
    pub fn new() -> Result<Self, ClientError> {
        Ok(Self {
            epoll: Epoll::new()?,
            clients: Vec::new(),
            next: Vec::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            was_sending: false,
        })
    }

    /// Takes over `client` (its socket becomes non-blocking).
    pub fn add(&mut self, client: Client) -> Result<(), ClientError> {
        client.socket.set_nonblocking(true)?;
        self.epoll
            .add(client.socket.as_raw_fd(), self.clients.len() as u64)?;
        self.clients.push(client);
        self.next.push(Instant::now());
        Ok(())
    }

    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    pub fn into_clients(self) -> Vec<Client> {
        self.clients
    }

    /// Steps every due client, waits for a socket or the next deadline (at
    /// most [`MAX_WAIT`]), and feeds what arrived. Publishers send media
    /// while `send` is true.
    pub fn turn(&mut self, send: bool) -> Result<(), ClientError> {
        let now = Instant::now();
        if send && !self.was_sending {
            for (client, at) in self.clients.iter_mut().zip(&mut self.next) {
                client.resume_media(now);
                *at = now;
            }
        }
        self.was_sending = send;
        for (client, at) in self.clients.iter_mut().zip(&mut self.next) {
            if *at <= now {
                *at = client.step(now, send)?;
            }
        }
        let earliest = self.next.iter().copied().min().unwrap_or(now + MAX_WAIT);
        let wait = earliest
            .saturating_duration_since(Instant::now())
            .min(MAX_WAIT);
        let ready = self.epoll.wait(&mut self.events, wait)?;
        let now = Instant::now();
        for event in &self.events[..ready] {
            let i = event.u64 as usize;
            if let (Some(client), Some(at)) = (self.clients.get_mut(i), self.next.get_mut(i)) {
                client.read_ready()?;
                // What the input changed may be due at once (e.g. an answer).
                *at = (*at).min(now);
            }
        }
        Ok(())
    }
}

/// Drives `clients` on the calling thread until `until` or `stop`; gives
/// them back. Publishers send media while `send` is set.
pub fn drive(
    clients: Vec<Client>,
    until: Instant,
    send: &AtomicBool,
    stop: &AtomicBool,
) -> Result<Vec<Client>, ClientError> {
    let mut driver = Driver::new()?;
    for client in clients {
        driver.add(client)?;
    }
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        driver.turn(send.load(Ordering::Relaxed))?;
    }
    Ok(driver.into_clients())
}

/// A small owned epoll instance.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 has no memory preconditions; the fd it returns
        // is owned by the OwnedFd from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor nothing else owns.
        Ok(Self(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: i32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both fds are valid for the call; `event` outlives it.
        let rc =
            unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` (rounded up to whole milliseconds, so a short
    /// deadline does not spin); returns how many events were written.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let capacity = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a valid, writable buffer of `capacity` entries.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), capacity, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }
}
