//! WHIP (`POST /whip/{room}`) and WHEP (`POST /whep/{room}`) session
//! creation, `GET`/`HEAD` on those endpoints, and `DELETE /session/{id}`.
//! A POST checks the token and the session limits, validates the request,
//! lets the sfu build the peer and its answer, and parks the peer in the
//! directory until its first STUN reaches a shard. A DELETE of a session
//! that ended by itself moments ago (within `--connect-timeout`) answers
//! 200 from its tombstone, once.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use axum::Extension;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Access;
use super::problem::Problem;
use super::proxy::ClientAddr;
use crate::directory::{Deletion, InsertError, Place, SessionInfo};
use crate::sfu::{OfferError, Role, SessionId, accept_offer, accept_watch_tracks};
use crate::shard::Control;

/// Seconds a client is told to wait before retrying a 409.
const RETRY_SECONDS: u32 = 2;

/// Seconds a client is told to wait before retrying a 503 (server full).
const FULL_RETRY_SECONDS: u32 = 10;

/// Seconds a client is told to wait before retrying a 503 for too many
/// pending sessions (they clear within `--connect-timeout`).
const PENDING_RETRY_SECONDS: u32 = 5;

/// Seconds a client is told to wait before retrying a 503 from a draining
/// server (a load balancer should send it elsewhere meanwhile).
const DRAINING_RETRY_SECONDS: u32 = 30;

/// The longest room name accepted.
const MAX_ROOM_NAME: usize = 64;

pub async fn publish(
    state: State<AppState>,
    client: Option<Extension<ClientAddr>>,
    room: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|c| c.0.0);
    create(state, client, room, query, headers, body, Role::Publisher).await
}

pub async fn watch(
    state: State<AppState>,
    client: Option<Extension<ClientAddr>>,
    room: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|c| c.0.0);
    create(state, client, room, query, headers, body, Role::Viewer).await
}

/// `GET`/`HEAD /whip/{room}`: 204, no body (WHIP §4.2 asks only for a 2xx).
pub async fn whip_endpoint() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `GET`/`HEAD /whep/{room}`: 200 with `Content-Type: application/sdp` and
/// no body (the WHEP draft's HEAD).
pub async fn whep_endpoint() -> Response {
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    response
}

async fn create(
    State(state): State<AppState>,
    client: Option<IpAddr>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
    role: Role,
) -> Response {
    if let Err(problem) = check_room_name(&room) {
        return problem.into_response();
    }
    match create_session(
        &state,
        client,
        &room,
        query.as_deref(),
        &headers,
        body,
        role,
    )
    .await
    {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

/// Creates a session in `room` (already checked: a user's room name, or a
/// playback's room).
pub(super) async fn create_session(
    state: &AppState,
    client: Option<IpAddr>,
    room: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    role: Role,
) -> Result<Response, Problem> {
    state.authorize(headers, query, room, Access::from(role))?;
    // A hint before the body is read; the insert decides under the lock.
    state
        .directory
        .precheck(client)
        .map_err(|e| refused(state, e))?;
    let offer = read_sdp(headers, body, state.max_body, state.body_timeout).await?;
    // `?participant=ID`: watch that conference participant, not the main feed.
    let named = query_param(query, "participant");
    let publisher = match &named {
        Some(id) if role == Role::Viewer => {
            let media = state.directory.participant_media(room, id);
            if media.is_none() {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    format!("participant {id:?} publishes nothing in room {room:?}"),
                )
                .retry_after(RETRY_SECONDS));
            }
            media
        }
        _ => state.directory.publisher_media(room),
    };
    match (role, &publisher) {
        (Role::Publisher, _) if state.directory.has_whip_publisher(room) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!("room {room:?} already has a publisher"),
            ));
        }
        (Role::Viewer, None) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!("nothing is published in room {room:?} yet"),
            )
            .retry_after(RETRY_SECONDS));
        }
        _ => {}
    }
    let by_track = named.is_some() && role == Role::Viewer;
    let room_name = room.to_owned();
    let generation = state.directory.next_generation();
    let setup = state.setup.clone();
    let now = Instant::now();
    let accepted = tokio::task::spawn_blocking(move || match (&publisher, by_track) {
        (Some(media), true) => accept_watch_tracks(&offer, &setup, &room_name, media, now),
        _ => accept_offer(
            role,
            &offer,
            &setup,
            &room_name,
            publisher.as_deref(),
            generation,
            now,
        ),
    })
    .await
    .map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("offer handling failed: {e}"),
        )
    });
    let (peer, answer) = accepted?.map_err(|e| match e {
        OfferError::Malformed(_) => Problem::new(StatusCode::BAD_REQUEST, e.to_string()),
        OfferError::Unacceptable(_) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        OfferError::NotAllowed(_) => Problem::new(StatusCode::FORBIDDEN, e.to_string()),
    })?;
    let etag = peer.etag();
    let id = state
        .directory
        .insert_from(peer, now, client)
        .map_err(|e| refused(state, e))?;
    let client = client.map(|ip| ip.to_string());
    tracing::info!(session = ?id, ?role, room, client, "session created");
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/session/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    for link in state
        .policy
        .load()
        .ice_servers
        .links(room, SystemTime::now())
    {
        headers.append(header::LINK, link);
    }
    Ok(response)
}

/// The answer to a refused insert, counted when a limit refused it:
/// 409 (room state), 503 + `Retry-After` (`--max-sessions`, `--max-pending`:
/// the server as a whole is busy), 429 + `Retry-After`
/// (`--max-sessions-per-ip`: this client asks too much), 403 (`--room-size`:
/// this room is full; a retry of the same request is not expected to work soon).
pub(super) fn refused(state: &AppState, e: InsertError) -> Problem {
    let c = &state.counters;
    match e {
        InsertError::RoomHasPublisher(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        InsertError::RoomHasNoPublisher(_) => {
            Problem::new(StatusCode::CONFLICT, e.to_string()).retry_after(RETRY_SECONDS)
        }
        InsertError::Full(_) => {
            c.count(&c.full);
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server is at its limit of {} sessions",
                    state.directory.max_sessions()
                ),
            )
            .retry_after(FULL_RETRY_SECONDS)
        }
        InsertError::TooManyPending(_) => {
            c.count(&c.pending_full);
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .retry_after(PENDING_RETRY_SECONDS)
        }
        InsertError::TooManyFromIp(_) => {
            c.count(&c.per_ip_refused);
            Problem::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
                .retry_after(FULL_RETRY_SECONDS)
        }
        InsertError::RoomFull(..) => {
            c.count(&c.room_full);
            Problem::new(StatusCode::FORBIDDEN, e.to_string())
        }
        InsertError::Draining => {
            c.count(&c.draining_refused);
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .retry_after(DRAINING_RETRY_SECONDS)
        }
    }
}

/// The session a `/session/{id}` request names, once its token is checked:
/// 401 (no or bad token) before 404 (unknown), then 403 (a token for
/// another room or role). Auth on DELETE and PATCH follows the same rules as
/// the POST that made the session.
pub(super) fn authorized_session(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<SessionId, Problem> {
    authorized(state, id, query, headers, |id| {
        state.directory.session_info(id)
    })
}

/// [`authorized_session`] for a session that `lookup` finds.
fn authorized(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    lookup: impl FnOnce(SessionId) -> Option<SessionInfo>,
) -> Result<SessionId, Problem> {
    let grant = state
        .policy
        .load()
        .authenticate(headers, query)
        .inspect_err(|_| {
            state.counters.count(&state.counters.auth_refused);
        })?;
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no such session");
    let id = SessionId::parse(id).ok_or_else(not_found)?;
    let info = lookup(id).ok_or_else(not_found)?;
    grant
        .permit(&info.room, Access::from(info.role))
        .inspect_err(|_| state.counters.count(&state.counters.auth_refused))?;
    Ok(id)
}

/// `DELETE /session/{id}`: 200, then 404 for a session that is gone. A
/// session that ended by itself (DTLS close, ICE or consent timeout,
/// `--connect-timeout`) within the last `--connect-timeout` still answers
/// 200 once, with the same token rules (its room and role are kept), and
/// nothing else happens: the session is already gone. A URL never issued
/// is 404.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no such session").into_response();
    let now = Instant::now();
    let lookup = |id| state.directory.deletable_info(id, now);
    let id = match authorized(&state, &id, query.as_deref(), &headers, lookup) {
        Ok(id) => id,
        Err(problem) => return problem.into_response(),
    };
    match state.directory.delete(id, now) {
        Deletion::Unknown => not_found(),
        Deletion::Ended => {
            let counters = &state.counters;
            counters.count(&counters.deleted_after_end);
            tracing::debug!(session = ?id, "DELETE of a session that had ended by itself");
            StatusCode::OK.into_response()
        }
        Deletion::Live(Place::Pending(_)) => StatusCode::OK.into_response(),
        Deletion::Live(Place::Shard(shard)) => {
            if let Some(handle) = state.shards.get(shard)
                && !handle.command(Control::Close(id))
            {
                tracing::warn!(session = ?id, shard, "shard command queue full; the peer will be reaped by timeout");
            }
            StatusCode::OK.into_response()
        }
    }
}

pub(super) fn check_room_name(room: &str) -> Result<(), Problem> {
    let ok = !room.is_empty()
        && room.len() <= MAX_ROOM_NAME
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("room names are 1 to {MAX_ROOM_NAME} characters of A-Z a-z 0-9 - _ ."),
        ))
    }
}

/// The request's SDP: `Content-Type: application/sdp` (parameters allowed),
/// at most `limit` bytes, UTF-8.
pub(super) async fn read_sdp(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<String, Problem> {
    if media_type(headers).as_deref() != Some("application/sdp") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/sdp, not {:?}",
                content_type(headers)
            ),
        ));
    }
    let bytes = read_limited(headers, body, limit, timeout, "SDP").await?;
    let sdp = String::from_utf8(bytes.to_vec())
        .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "the SDP is not UTF-8"))?;
    super::sdp_checks::check(&sdp)?;
    Ok(sdp)
}

/// The `Content-Type` header as sent ("" when absent).
pub(super) fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type of `Content-Type`, lowercase, without parameters.
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    let mime = content_type(headers).split(';').next()?.trim();
    (!mime.is_empty()).then(|| mime.to_ascii_lowercase())
}

/// The body, at most `limit` bytes (413 above, before reading it all when
/// `Content-Length` says so), in full within `timeout` (408 after it: a
/// slowloris body does not hold a connection and its buffer for long).
/// Both leave the rest of the body unread, so hyper closes the connection
/// after them: they say `Connection: close`, or a client that pools
/// connections would send its next request into a closed socket.
/// ([`super::serve`] adds it to any answer that leaves a body unread.)
pub(super) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
    what: &str,
) -> Result<bytes::Bytes, Problem> {
    let close = || HeaderValue::from_static("close");
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the {what} is larger than {limit} bytes"),
        )
        .with_header(header::CONNECTION, close())
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the {what} did not arrive within {} ms",
                timeout.as_millis()
            ),
        )
        .with_header(header::CONNECTION, close())),
    }
}

/// The value of parameter `name` in a query string, if given (not
/// percent-decoded: ids and room names are plain characters).
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}
