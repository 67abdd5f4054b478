//! Many clients at once, each on its own thread, steered by shared flags:
//! publishers send while `send` is set, everyone stops when `stop` is set,
//! and `connected` counts clients that finished ICE+DTLS. Used by the
//! integration tests and by `uringcast-load`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Client, ClientError, ClientOptions, ClientRole};

/// Flags shared by a group of clients.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// Publishers send media while set.
    pub send: Arc<AtomicBool>,
    /// Every client returns when set.
    pub stop: Arc<AtomicBool>,
    /// Clients that reached "connected".
    pub connected: Arc<AtomicUsize>,
}

impl Flags {
    /// Waits (at most `limit`) until `n` clients are connected.
    pub fn wait_connected(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.connected.load(Ordering::Relaxed) < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// A client running on its own thread; `join` gives it back with how its run ended.
#[derive(Debug)]
pub struct Running {
    thread: JoinHandle<(Client, Result<(), ClientError>)>,
}

impl Running {
    /// Waits for the client's thread (it ends on `stop` or its time limit).
    pub fn join(self) -> (Client, Result<(), ClientError>) {
        match self.thread.join() {
            Ok(pair) => pair,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Connects a client (POST) on the calling thread, then runs it on its own
/// thread for at most `limit`.
pub fn spawn(
    base: &str,
    room: &str,
    role: ClientRole,
    options: ClientOptions,
    flags: &Flags,
    limit: Duration,
) -> Result<Running, ClientError> {
    let client = Client::connect(base, room, role, options)?;
    run(client, format!("client-{room}"), flags, limit)
}

/// Runs a connected `client` on a thread named `name` (at most `limit`).
pub fn run(
    mut client: Client,
    name: String,
    flags: &Flags,
    limit: Duration,
) -> Result<Running, ClientError> {
    let flags = flags.clone();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let end = Instant::now() + limit;
        let mut counted = false;
        while Instant::now() < end && !flags.stop.load(Ordering::Relaxed) {
            let slice = (Instant::now() + Duration::from_millis(20)).min(end);
            if let Err(e) = client.run(slice, &flags.send, &flags.stop) {
                return (client, Err(e));
            }
            if !counted && client.is_connected() {
                counted = true;
                flags.connected.fetch_add(1, Ordering::Relaxed);
            }
        }
        (client, Ok(()))
    })?;
    Ok(Running { thread })
}
