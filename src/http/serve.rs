//! The HTTP accept loop: hyper's HTTP/1 server on our listener, with what
//! `axum::serve` leaves out — a deadline for every request's headers
//! (`--header-timeout`: a client that trickles its headers, or holds an
//! idle keep-alive connection, is disconnected), and a cap on open
//! connections (`--max-connections`: past it, new ones are closed at once
//! and counted), so slow or idle clients cannot hold file descriptors
//! without bound. Bodies have their own deadline (`--body-timeout`, in the
//! handlers). With `--tls-cert`, connections are TLS ([`super::tls`]); the
//! handshake must finish within the header deadline too. Every request
//! carries its peer address (`ConnectInfo`) for the per-IP limits, and every
//! answer given before its request's body was read to the end says
//! `Connection: close` ([`super::unread`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::SignalingCounters;
use super::unread;

/// Limits on HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from when the server
    /// starts waiting for them (also bounds an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`
/// completes; then open connections finish their current request and close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<super::TlsReload>,
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
        let connection = Connection {
            app: app.clone(),
            remote,
            limits,
            closed: closed.clone(),
            counters: counters.clone(),
        };
        // The certificate in force now: a reload (SIGHUP) swaps it for
        // the connections that come after, not for a handshake under way.
        let tls: Option<Arc<TlsAcceptor>> = tls.as_ref().map(|t| t.load_full());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = tls else {
                return connection.serve(TokioIo::new(stream)).await;
            };
            // The handshake shares the header deadline: a client that
            // opens a connection and sends nothing holds it no longer.
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => connection.serve(TokioIo::new(stream)).await,
                Ok(Err(e)) => {
                    connection.counters.count(&connection.counters.tls_failures);
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    connection.counters.count(&connection.counters.tls_failures);
                    tracing::debug!(%remote, "TLS handshake timed out");
                }
            }
        });
    }
    let _ = closing.send(true);
}

/// One accepted connection and what serving it needs.
struct Connection {
    app: Router,
    remote: std::net::SocketAddr,
    limits: ConnectionLimits,
    closed: watch::Receiver<bool>,
    counters: Arc<SignalingCounters>,
}

impl Connection {
    /// Serves HTTP/1 requests on `io` (plain TCP or TLS) until the client
    /// leaves, a deadline passes, or the server shuts down.
    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (app, remote) = (self.app, self.remote);
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let (request, read) = unread::track(request);
            let answer = app.clone().oneshot(request);
            async move {
                let mut response = answer.await?;
                unread::close_if_unread(&mut response, &read);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = self.closed.changed() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                self.counters.count(&self.counters.header_timeouts);
            }
            tracing::debug!(%remote, error = %e, "HTTP connection ended");
        }
    }
}
