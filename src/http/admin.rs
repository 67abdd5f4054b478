//! The server's own life over HTTP: `GET /healthz` (the process answers),
//! `GET /readyz` (every shard runs and the server is not draining: what a
//! load balancer asks before it sends sessions), and the admin calls
//! `POST /v1/admin/drain` (stop taking sessions, exit when the last ends or
//! at `--drain-timeout`, as SIGTERM does) and `POST /v1/admin/reset` (close
//! every session and room, keep serving).

use std::sync::atomic::Ordering;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Notify;

use super::AppState;
use super::problem::Problem;
use super::rooms::admin::admin;
use super::rooms::json_response;
use crate::directory::Directory;
use crate::shard::{Control, ShardHandle};

/// How the server's life is steered from outside the main thread: the
/// admin API asks for a drain here, and `main` (which owns the process's
/// end) waits on it beside the signals.
#[derive(Debug, Default)]
pub struct Lifecycle {
    drain: Notify,
}

impl Lifecycle {
    /// Refuses new sessions from now on and wakes whoever waits in
    /// [`Lifecycle::drain_requested`]. Idempotent.
    pub fn start_drain(&self, directory: &Directory) {
        if !directory.is_draining() {
            directory.set_draining(true);
            tracing::info!(
                sessions = directory.session_count(),
                "draining: new sessions get 503, existing ones go on"
            );
        }
        self.drain.notify_one();
    }

    /// Returns once a drain was asked for (also one asked before the call).
    pub async fn drain_requested(&self) {
        self.drain.notified().await;
    }
}

/// Closes every session and room on the shards; returns how many sessions
/// were placed on shards. The directory keeps taking new ones.
pub fn reset(directory: &Directory, shards: &[ShardHandle]) -> usize {
    let closing = directory.reset();
    for (shard, id) in &closing {
        if let Some(handle) = shards.get(*shard) {
            handle.command(Control::Close(*id));
        }
    }
    closing.len()
}

/// Why the server is not ready, if it is not.
pub fn not_ready(state: &AppState) -> Option<String> {
    if state.directory.is_draining() {
        return Some("draining".into());
    }
    let stopped: Vec<String> = (state.shards.iter().enumerate())
        .filter(|(_, s)| !s.stats.running.load(Ordering::Relaxed))
        .map(|(i, _)| i.to_string())
        .collect();
    (!stopped.is_empty()).then(|| format!("shards not running: {}", stopped.join(", ")))
}

/// `GET /healthz`: 200 while the process serves HTTP.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every shard runs and the server is not
/// draining; else 503 saying why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match not_ready(&state) {
        None => json_response(StatusCode::OK, &json!({ "status": "ready" })),
        Some(why) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"))
            .into_response(),
    }
}

/// `POST /v1/admin/drain`: 202; new sessions get 503 from now on, and the
/// process exits when the last session ends or at `--drain-timeout`.
pub async fn drain(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    state.lifecycle.start_drain(&state.directory);
    let body = json!({
        "draining": true,
        "sessions": state.directory.session_count(),
    });
    Ok(json_response(StatusCode::ACCEPTED, &body))
}

/// `POST /v1/admin/reset`: 200 with how many sessions were closed; every
/// room and session ends, the server keeps serving.
pub async fn reset_all(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    let before = state.directory.session_count();
    let placed = reset(&state.directory, &state.shards);
    tracing::info!(
        sessions = before,
        placed,
        "reset by an admin: every session closed"
    );
    Ok(json_response(StatusCode::OK, &json!({ "closed": before })))
}
