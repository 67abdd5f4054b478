//! The HTTP endpoint (axum): WHIP and WHEP session creation, trickle and
//! ICE restart (`PATCH`), deletion, CORS, tokens, ICE server links, rate
//! limits, `/v1/stats`, and the demo pages with the browser client. Runs on
//! the signaling thread's tokio runtime; talks to shards only through the
//! directory and their command queues.

pub mod admin;
mod auth;
mod demo;
mod ice_servers;
mod limits;
mod metrics;
mod patch;
mod playback;
mod problem;
pub mod proxy;
mod rooms;
mod sdp_checks;
mod serve;
mod session;
mod stats;
mod tls;
mod unread;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use tower_http::cors::{Any, CorsLayer};

pub use admin::Lifecycle;
pub use auth::{Access, Auth, Grant};
pub use ice_servers::{IceServers, turn_rest_credential};
pub use limits::RateLimit;
pub use problem::Problem;
pub use serve::{ConnectionLimits, serve};
pub use stats::{StatsSampler, spawn_background_tasks};
pub use tls::{TlsError, TlsReload, acceptor as tls_acceptor};

use crate::config::Config;
use crate::directory::Directory;
use crate::sfu::PeerSetup;
use crate::shard::ShardHandle;

/// Who may do what, what clients are told about ICE servers, and how fast
/// they may ask: everything configured about requests rather than media.
#[derive(Debug)]
pub struct Policy {
    pub auth: Option<Auth>,
    /// `--admin-token`.
    pub admin_token: Option<String>,
    pub ice_servers: IceServers,
    pub rate_limit: Option<RateLimit>,
}

impl Policy {
    /// From the command line; an error names the bad option.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(Self {
            auth: Auth::from_config(config.auth_key.as_deref(), config.bearer_token.as_deref())?,
            admin_token: config.admin_token.clone(),
            ice_servers: IceServers::from_config(
                &config.ice_servers,
                config.ice_username.as_deref(),
                config.ice_credential.as_deref(),
                config.turn_secret.as_deref(),
                config.turn_ttl,
            )?,
            rate_limit: RateLimit::new(config.rate_limit, config.rate_burst),
        })
    }

    /// No auth, no ICE servers, no rate limit.
    pub fn open() -> Self {
        Self {
            auth: None,
            admin_token: None,
            ice_servers: IceServers::none(),
            rate_limit: None,
        }
    }

    /// Whether the request may use the admin API: its token is
    /// `--admin-token`, or (auth on) grants `admin`. With neither
    /// configured the admin API is closed (403), auth off or not.
    pub fn authorize_admin(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), Problem> {
        use subtle::ConstantTimeEq;
        let token = auth::token(headers, query);
        if let (Some(admin), Some(token)) = (&self.admin_token, &token)
            && bool::from(token.as_bytes().ct_eq(admin.as_bytes()))
        {
            return Ok(());
        }
        let forbidden = |detail: &str| Problem::new(StatusCode::FORBIDDEN, detail.to_owned());
        match &self.auth {
            Some(auth) => match auth.authenticate(headers, query)? {
                grant if grant.admin => Ok(()),
                _ => Err(forbidden("the token does not grant the admin API")),
            },
            None if self.admin_token.is_some() => Err(auth::unauthorized_admin()),
            None => Err(forbidden(
                "the admin API is closed: start the server with --admin-token",
            )),
        }
    }

    /// What the request's token grants: everything when auth is off (any
    /// `Authorization` header, `Bearer undefined` included, is ignored).
    pub fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Grant, Problem> {
        match &self.auth {
            None => Ok(Grant::all()),
            Some(auth) => auth.authenticate(headers, query),
        }
    }
}

/// Signaling counters, shown under `signaling` in `/v1/stats`.
#[derive(Debug, Default, Serialize)]
pub struct SignalingCounters {
    /// PATCHes that added candidates (204).
    pub trickles: AtomicU64,
    /// PATCHes that restarted ICE (200).
    pub ice_restarts: AtomicU64,
    /// Remote candidates handed to peers.
    pub candidates_added: AtomicU64,
    /// Remote candidates skipped (mDNS, TCP, RTCP component, port 0, over the limit).
    pub candidates_skipped: AtomicU64,
    /// Requests refused with 401 or 403.
    pub auth_refused: AtomicU64,
    /// Requests refused with 429.
    pub rate_limited: AtomicU64,
    /// POSTs refused with 503 (at `--max-sessions`).
    pub full: AtomicU64,
    /// POSTs refused with 503 (at `--max-pending` sessions not yet connected).
    pub pending_full: AtomicU64,
    /// POSTs refused with 429 (the client IP at `--max-sessions-per-ip`).
    pub per_ip_refused: AtomicU64,
    /// WHEP POSTs refused with 403 (the room at `--room-size` viewers).
    pub room_full: AtomicU64,
    /// Pending sessions removed after `--connect-timeout` without a first STUN.
    pub pending_expired: AtomicU64,
    /// HTTP connections closed at once at `--max-connections`.
    pub connections_refused: AtomicU64,
    /// HTTP connections closed for not sending a request's headers within
    /// `--header-timeout` (slow or idle clients).
    pub header_timeouts: AtomicU64,
    /// HTTPS connections whose TLS handshake failed or did not finish
    /// within `--header-timeout` (plain HTTP sent to the TLS port counts).
    pub tls_failures: AtomicU64,
    /// DELETEs answered 200 for a session that had already ended by itself
    /// (a tombstone's; no live session was deleted).
    pub deleted_after_end: AtomicU64,
    /// New sessions and joins refused with 503 while draining.
    pub draining_refused: AtomicU64,
}

impl SignalingCounters {
    pub fn count(&self, counter: &AtomicU64) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<Directory>,
    pub shards: Arc<[ShardHandle]>,
    pub setup: PeerSetup,
    pub max_body: usize,
    /// `--body-timeout`: a request body must arrive in full within this.
    pub body_timeout: std::time::Duration,
    pub io_names: Arc<[&'static str]>,
    pub sampler: Arc<StatsSampler>,
    pub started: std::time::Instant,
    /// Swapped whole by a reload (SIGHUP): a request sees one policy.
    pub policy: Arc<arc_swap::ArcSwap<Policy>>,
    pub counters: Arc<SignalingCounters>,
    /// Drains asked for over the admin API reach `main` through it.
    pub lifecycle: Arc<Lifecycle>,
    /// `--trust-proxy`: peers whose forwarding headers name the client.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// `--metrics-per-room`.
    pub metrics_per_room: bool,
    /// The ICE-TCP listener's counters (`--ice-tcp`).
    pub tcp_stats: Option<Arc<crate::net::tcp::TcpStats>>,
    /// Playbacks of recordings (`--record-dir`).
    pub playbacks: Option<Arc<crate::record::playback::Playbacks>>,
}

impl AppState {
    /// Checks the request's token for `access` in `room`: 401 or 403 (counted).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        room: &str,
        access: Access,
    ) -> Result<(), Problem> {
        let result = self
            .policy
            .load()
            .authenticate(headers, query)
            .and_then(|grant| grant.permit(room, access));
        if result.is_err() {
            self.counters.count(&self.counters.auth_refused);
        }
        result
    }
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
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("accept-post"),
        ]);
    Router::new()
        .merge(demo::routes())
        // `get` answers HEAD too (without the body).
        .route(
            "/whip/{room}",
            post(session::publish).get(session::whip_endpoint),
        )
        .route(
            "/whep/{room}",
            post(session::watch).get(session::whep_endpoint),
        )
        .route(
            "/whep/recordings/{id}",
            post(playback::watch).get(session::whep_endpoint),
        )
        .route("/session/{id}", delete(session::delete).patch(patch::patch))
        .route("/v1/stats", get(stats::stats))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/v1/admin/drain", post(admin::drain))
        .route("/v1/admin/reset", post(admin::reset_all))
        .route(
            "/v1/rooms",
            post(rooms::admin::create).get(rooms::admin::list),
        )
        .route(
            "/v1/rooms/{room}",
            get(rooms::admin::show).delete(rooms::admin::close),
        )
        .route(
            "/v1/rooms/{room}/recording",
            post(rooms::recording::start).delete(rooms::recording::stop),
        )
        .route(
            "/v1/rooms/{room}/disconnect/{id}",
            post(rooms::admin::disconnect),
        )
        .route("/v1/rooms/{room}/participants", post(rooms::join))
        .route(
            "/v1/participants/{handle}/approve/{joiner}",
            post(rooms::approve),
        )
        .route(
            "/v1/participants/{handle}/reject/{joiner}",
            post(rooms::reject),
        )
        .route("/v1/participants/{handle}", delete(rooms::leave))
        .route("/v1/participants/{handle}/events", get(rooms::events))
        .route(
            "/v1/participants/{handle}/publish",
            post(rooms::publish).patch(rooms::republish),
        )
        .route(
            "/v1/participants/{handle}/subscribe",
            post(rooms::subscribe),
        )
        .route("/v1/participants/{handle}/answer", post(rooms::answer))
        .route("/v1/participants/{handle}/info", post(rooms::info))
        .route(
            "/v1/participants/{handle}/broadcast",
            post(rooms::broadcast),
        )
        .route(
            "/v1/participants/{handle}/message/{to}",
            post(rooms::message),
        )
        .route(
            "/v1/participants/{handle}/subscription",
            post(rooms::subscription),
        )
        .fallback(not_found)
        // Inside CORS, so a page can read a 429.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::rate_limit,
        ))
        // Outside the rate limit, which counts by the client it names.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            proxy::client_addr,
        ))
        .layer(cors)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            options_headers,
        ))
        .with_state(state)
}

/// Every `OPTIONS` answer (the CORS layer answers them all, preflight or
/// not, with 200 and no body) is made a 204 No Content, as the API promises,
/// and advertises what POST takes. One that is not a CORS preflight, on a
/// WHIP/WHEP endpoint, also lists the ICE servers (WHIP §4.6) — when auth
/// is on, only if it carries a token for that endpoint (the links may hold
/// TURN credentials). A preflight never gets them and never needs a token.
async fn options_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let preflight = request
        .headers()
        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut links = Vec::new();
    let policy = state.policy.load();
    if is_options
        && !preflight
        && !policy.ice_servers.is_empty()
        && let Some((room, access)) = endpoint_of(request.uri().path())
    {
        let allowed = policy
            .authenticate(request.headers(), request.uri().query())
            .and_then(|grant| grant.permit(room, access))
            .is_ok();
        if allowed {
            links = policy.ice_servers.links(room, std::time::SystemTime::now());
        }
    }
    drop(policy);
    let mut response = next.run(request).await;
    if is_options {
        if response.status() == StatusCode::OK {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("application/sdp"),
        );
        for link in links {
            headers.append(header::LINK, link);
        }
    }
    response
}

/// `/whip/{room}` or `/whep/{room}` → the room and what the endpoint does.
fn endpoint_of(path: &str) -> Option<(&str, Access)> {
    let (kind, room) = path.strip_prefix('/')?.split_once('/')?;
    let access = match kind {
        "whip" => Access::Publish,
        "whep" => Access::Watch,
        _ => return None,
    };
    (!room.is_empty() && !room.contains('/')).then_some((room, access))
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "no such endpoint").into_response()
}
