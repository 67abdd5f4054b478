//! WHIP (`POST /whip/{room}`) and WHEP (`POST /whep/{room}`) session
//! creation, and `DELETE /session/{id}`. A POST validates the request, lets
//! the sfu build the peer and its answer, and parks the peer in the directory
//! until its first STUN reaches a shard.

use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use crate::directory::{InsertError, Place};
use crate::sfu::{OfferError, Role, SessionId, accept_offer};
use crate::shard::Control;

/// Seconds a client is told to wait before retrying a 409.
const RETRY_SECONDS: u32 = 2;

/// The longest room name accepted.
const MAX_ROOM_NAME: usize = 64;

pub async fn publish(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(state, room, headers, body, Role::Publisher).await
}

pub async fn watch(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(state, room, headers, body, Role::Viewer).await
}

async fn create(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
    role: Role,
) -> Response {
    match create_session(&state, &room, &headers, body, role).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn create_session(
    state: &AppState,
    room: &str,
    headers: &HeaderMap,
    body: Body,
    role: Role,
) -> Result<Response, Problem> {
    check_room_name(room)?;
    let offer = read_sdp(headers, body, state.max_body).await?;
    let publisher = state.directory.publisher_media(room);
    match (role, &publisher) {
        (Role::Publisher, Some(_)) => {
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
    let room_name = room.to_owned();
    let generation = state.directory.next_generation();
    let setup = state.setup.clone();
    let now = Instant::now();
    let accepted = tokio::task::spawn_blocking(move || {
        accept_offer(
            role,
            &offer,
            &setup,
            &room_name,
            publisher.as_deref(),
            generation,
            now,
        )
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
    })?;
    let etag = format!("\"{}\"", peer.ufrag());
    let id = state.directory.insert(peer, now).map_err(|e| match e {
        InsertError::RoomHasPublisher(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        InsertError::RoomHasNoPublisher(_) => {
            Problem::new(StatusCode::CONFLICT, e.to_string()).retry_after(RETRY_SECONDS)
        }
    })?;
    tracing::info!(session = ?id, ?role, room, "session created");
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
    Ok(response)
}

/// `DELETE /session/{id}`: 200, then 404 for a session that is gone.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no such session").into_response();
    let Some(id) = SessionId::parse(&id) else {
        return not_found();
    };
    match state.directory.remove(id) {
        None => not_found(),
        Some(Place::Pending(_)) => StatusCode::OK.into_response(),
        Some(Place::Shard(shard)) => {
            if let Some(handle) = state.shards.get(shard)
                && !handle.command(Control::Close(id))
            {
                tracing::warn!(session = ?id, shard, "shard command queue full; the peer will be reaped by timeout");
            }
            StatusCode::OK.into_response()
        }
    }
}

fn check_room_name(room: &str) -> Result<(), Problem> {
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
async fn read_sdp(headers: &HeaderMap, body: Body, limit: usize) -> Result<String, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/sdp, not {content_type:?}"),
        ));
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the SDP is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = to_bytes(body, limit).await.map_err(|_| too_large())?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "the SDP is not UTF-8"))
}
