//! `uringcast`: parse the configuration, start the server, print what it
//! serves, and stop cleanly on SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use uringcast::config::Config;
use uringcast::server::Server;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("URINGCAST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let server = match Server::start(&config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("uringcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = server.base_url();
    // A closed stdout must not take the server down: print what we can.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "uringcast {} serving", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "  demo:          {base}/");
    let _ = writeln!(out, "  WHIP publish:  POST {base}/whip/{{room}}");
    let _ = writeln!(out, "  WHEP watch:    POST {base}/whep/{{room}}");
    let _ = writeln!(
        out,
        "  rooms:         POST {base}/v1/rooms/{{room}}/participants (demo: {base}/room)"
    );
    let _ = writeln!(out, "  stats:         GET  {base}/v1/stats");
    let _ = writeln!(
        out,
        "  media:         udp {} ({} shards, io: {})",
        server.udp_addr(),
        server.io_names().len(),
        server.io_names().join(",")
    );
    let _ = out.flush();
    drop(out);
    if let Err(e) = wait_for_signal() {
        eprintln!("uringcast: waiting for a signal failed: {e}");
    }
    let _ = writeln!(std::io::stdout(), "uringcast: stopping");
    server.shutdown(Duration::from_millis(1800));
    ExitCode::SUCCESS
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
}
