//! What the process does on signals while it serves (Unix conventions, and
//! the signals Odoo's SFU answers): SIGHUP reloads the configuration's
//! reloadable keys (the TLS certificate and key are read again even when
//! their paths did not change); SIGUSR1 logs a summary of the counters;
//! SIGTERM, or `POST /v1/admin/drain`, drains — new sessions get 503, the
//! existing ones go on until they end or `--drain-timeout`, then the
//! server stops; a second SIGTERM stops at once; SIGINT stops at once.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

use crate::config::{self, Loaded};
use crate::server::Server;

/// How often a drain looks whether the last session has ended.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// The main thread's loop after start: signals in, server calls out.
pub struct Control<'a> {
    server: &'a Server,
    /// The command line, read again (with the environment and the file) on
    /// SIGHUP.
    args: Vec<OsString>,
    /// The configuration the server started with: what a reload compares.
    started: Loaded,
    /// `--drain-timeout`, as last (re)loaded.
    drain_timeout: Duration,
}

/// The signals the loop listens to.
struct Signals {
    term: Signal,
    hup: Signal,
    usr1: Signal,
}

/// What ended the serving phase.
enum Next {
    Stop,
    Drain,
}

impl<'a> Control<'a> {
    pub fn new(server: &'a Server, args: Vec<OsString>, loaded: Loaded) -> Self {
        Self {
            server,
            args,
            drain_timeout: loaded.config.drain_timeout,
            started: loaded,
        }
    }

    /// Serves until SIGINT, or until a drain (SIGTERM or the admin API)
    /// has ended; then returns and the caller shuts the server down.
    pub fn run(&mut self) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut signals = Signals {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
                usr1: signal(SignalKind::user_defined1())?,
            };
            if let Next::Drain = self.serve(&mut signals).await? {
                self.drain(&mut signals).await?;
            }
            Ok(())
        })
    }

    async fn serve(&mut self, s: &mut Signals) -> std::io::Result<Next> {
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => return r.map(|()| Next::Stop),
                _ = s.term.recv() => {
                    info!("SIGTERM: draining");
                    return Ok(Next::Drain);
                }
                () = self.server.drain_requested() => return Ok(Next::Drain),
                _ = s.hup.recv() => self.reload(),
                _ = s.usr1.recv() => info!(summary = %self.server.summary(), "SIGUSR1: stats"),
            }
        }
    }

    async fn drain(&mut self, s: &mut Signals) -> std::io::Result<()> {
        self.server.start_drain();
        let timeout = self.drain_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let open = self.server.session_count();
            if open == 0 {
                info!("drained: no session left");
                return Ok(());
            }
            if Instant::now() >= deadline {
                warn!(
                    sessions = open,
                    ?timeout,
                    "drain timeout: closing the sessions left"
                );
                return Ok(());
            }
            tokio::select! {
                r = tokio::signal::ctrl_c() => return r,
                _ = s.term.recv() => {
                    warn!(sessions = open, "second SIGTERM: stopping now");
                    return Ok(());
                }
                _ = s.hup.recv() => self.reload(),
                _ = s.usr1.recv() => info!(summary = %self.server.summary(), "SIGUSR1: stats"),
                () = tokio::time::sleep(DRAIN_POLL) => {}
            }
        }
    }

    /// SIGHUP: reads flags, environment and file again; applies the
    /// reloadable keys, names the others that changed (they need a
    /// restart). A bad file or certificate changes nothing.
    fn reload(&mut self) {
        let loaded = match config::load(&self.args) {
            Ok(loaded) => loaded,
            Err(e) => {
                warn!(error = %e, "SIGHUP: the configuration cannot be read; nothing changed");
                return;
            }
        };
        if let Err(e) = self.server.reload(&loaded.config) {
            warn!(error = %e, "SIGHUP: reload refused; nothing changed");
            return;
        }
        let (applied, restart) = config::reloadable_changes(&self.started, &loaded);
        if !restart.is_empty() {
            warn!(keys = ?restart, "SIGHUP: keys changed since start that need a restart; kept as they were");
        }
        info!(changed_since_start = ?applied, "SIGHUP: reloaded the TLS certificate and the request policy");
        self.drain_timeout = loaded.config.drain_timeout;
    }
}
