//! `uringcast`: read the configuration (flags, environment, `--config`),
//! start the server, print what it serves, then answer signals: SIGHUP
//! reloads, SIGUSR1 logs a stats summary, SIGTERM drains (a second one
//! stops at once), SIGINT stops.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use uringcast::config::{self, ConfigError, LogFormat};
use uringcast::server::Server;

/// How long shutting down waits for threads.
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(1800);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let loaded = match config::load(&args) {
        Ok(loaded) => loaded,
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("uringcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    if loaded.config.print_config {
        print!("{}", config::print_effective(&loaded));
        return ExitCode::SUCCESS;
    }
    init_logging(loaded.config.log_format, loaded.config.log_timestamps);
    let server = match Server::start(&loaded.config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("uringcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&server);
    let mut control = uringcast::signals::Control::new(&server, args, loaded);
    if let Err(e) = control.run() {
        eprintln!("uringcast: waiting for signals failed: {e}");
    }
    let _ = writeln!(std::io::stdout(), "uringcast: stopping");
    server.shutdown(SHUTDOWN_LIMIT);
    ExitCode::SUCCESS
}

/// Text or JSON lines on stderr, with or without timestamps; the level
/// filter from `URINGCAST_LOG` (tracing's `EnvFilter` syntax).
fn init_logging(format: LogFormat, timestamps: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("URINGCAST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (format, timestamps) {
        (LogFormat::Text, true) => builder.init(),
        (LogFormat::Text, false) => builder.without_time().init(),
        (LogFormat::Json, true) => builder.json().flatten_event(true).init(),
        (LogFormat::Json, false) => builder.json().flatten_event(true).without_time().init(),
    }
}

/// What the server serves, on stdout (a closed stdout must not take the
/// server down: print what we can).
fn print_banner(server: &Server) {
    let base = server.base_url();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "uringcast {} serving", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "  demo:          {base}/");
    let _ = writeln!(out, "  WHIP publish:  POST {base}/whip/{{room}}");
    let _ = writeln!(out, "  WHEP watch:    POST {base}/whep/{{room}}");
    let _ = writeln!(
        out,
        "  rooms:         POST {base}/v1/rooms/{{room}}/participants (demo: {base}/room)"
    );
    let _ = writeln!(out, "  stats:         GET  {base}/v1/stats, {base}/metrics");
    let _ = writeln!(out, "  health:        GET  {base}/healthz, {base}/readyz");
    let _ = writeln!(
        out,
        "  media:         udp {} ({} shards, io: {})",
        server.udp_addr(),
        server.io_names().len(),
        server.io_names().join(",")
    );
    let _ = out.flush();
}
