//! The HTTP accept loop: hyper's HTTP/1 server on our listener, with what
//! `axum::serve` leaves out — a deadline for every request's headers
//! (`--header-timeout`: a client that trickles its headers, or holds an
//! idle keep-alive connection, is disconnected), and a cap on open
//! connections (`--max-connections`: past it, new ones are closed at once
//! and counted), so slow or idle clients cannot hold file descriptors
//! without bound. Bodies have their own deadline (`--body-timeout`, in the
//! handlers). Every request carries its peer address (`ConnectInfo`) for
//! the per-IP limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::SignalingCounters;

/// Limits on HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from when the server
    /// starts waiting for them (also bounds an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes; then open
/// connections finish their current request and close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    counters: Arc<SignalingCounters>,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            counters.count(&counters.connections_refused);
            tracing::debug!(%remote, "at --max-connections; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut closed = closed.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                app.clone().oneshot(request.map(Body::new))
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    counters.count(&counters.header_timeouts);
                }
                tracing::debug!(%remote, error = %e, "HTTP connection ended");
            }
        });
    }
    let _ = closing.send(true);
}
