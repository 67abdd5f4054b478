//! The HTTP endpoint (axum): WHIP and WHEP session creation and deletion,
//! CORS, `/v1/stats`, and the demo pages with the browser client. Runs on
//! the signaling thread's tokio runtime; talks to shards only through the
//! directory and their command queues.

mod demo;
mod problem;
mod session;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tower_http::cors::{Any, CorsLayer};

pub use problem::Problem;
pub use stats::{StatsSampler, spawn_background_tasks};

use crate::directory::Directory;
use crate::sfu::PeerSetup;
use crate::shard::ShardHandle;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<Directory>,
    pub shards: Arc<[ShardHandle]>,
    pub setup: PeerSetup,
    pub max_body: usize,
    pub io_names: Arc<[&'static str]>,
    pub sampler: Arc<StatsSampler>,
    pub started: std::time::Instant,
}

/// The axum router with every route and the CORS layer.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        // A wildcard does not cover Authorization, so name every header.
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
            header::ETAG,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            header::RETRY_AFTER,
            HeaderName::from_static("accept-post"),
        ]);
    Router::new()
        .merge(demo::routes())
        .route("/whip/{room}", post(session::publish))
        .route("/whep/{room}", post(session::watch))
        .route("/session/{id}", delete(session::delete))
        .route("/v1/stats", get(stats::stats))
        .fallback(not_found)
        .layer(cors)
        .layer(middleware::from_fn(accept_post))
        .with_state(state)
}

/// Every `OPTIONS` answer (the CORS layer answers them all, preflight or
/// not) advertises what POST takes.
async fn accept_post(request: Request, next: Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if is_options {
        response.headers_mut().insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("application/sdp"),
        );
    }
    response
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "no such endpoint").into_response()
}
