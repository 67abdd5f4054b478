//! The admin API (`--admin-token`, `--bearer-token`, or a JWT granting
//! `admin`): create a room with a size limit and an approval flag
//! (`POST /v1/rooms`), list rooms (`GET /v1/rooms`), show one with its
//! participants and their tracks (`GET /v1/rooms/{room}`), disconnect a
//! participant (`POST /v1/rooms/{room}/disconnect/{id}`), close a room
//! (`DELETE /v1/rooms/{room}`). Like Odoo's `/v1/channel` and
//! `/v1/disconnect`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, close_on_shards, conference_problem, json_response, read_json};
use crate::directory::RoomConfig;
use crate::http::problem::Problem;
use crate::http::session::check_room_name;

/// Checks the request may use the admin API: 401 or 403 (counted).
pub(in crate::http) fn admin(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Problem> {
    state
        .policy
        .load()
        .authorize_admin(headers, query)
        .inspect_err(|_| state.counters.count(&state.counters.auth_refused))
}

/// `POST /v1/rooms`, body `{"name"?, "size"?, "approval"?}`: 201 with the
/// room's name and join URL; 409 if an admin created it already.
pub async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    let body = if headers.contains_key(header::CONTENT_TYPE) {
        read_json(&state, &headers, body).await?
    } else {
        json!({})
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => state.setup.rng.token(12),
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "name must be a string",
            ));
        }
    };
    check_room_name(&name)?;
    let size = match body.get("size") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "size must be a count"))?,
    };
    let approval = match body.get("approval") {
        None | Some(Value::Null) => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            Problem::new(StatusCode::BAD_REQUEST, "approval must be true or false")
        })?,
    };
    let config = RoomConfig { size, approval };
    state
        .directory
        .create_room(&name, config.clone())
        .map_err(|e| conference_problem(e, &state))?;
    tracing::info!(room = name, size, approval, "room created");
    let join = format!("/v1/rooms/{name}/participants");
    let body = json!({ "name": name, "join": join, "size": size, "approval": approval });
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/rooms/{name}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/rooms`: every room.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &json!(state.directory.list_rooms()),
    ))
}

/// `GET /v1/rooms/{room}`: the room, its participants and their tracks.
pub async fn show(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    let detail = state
        .directory
        .room_detail(&room)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no room {room:?}")))?;
    Ok(json_response(StatusCode::OK, &detail))
}

/// `POST /v1/rooms/{room}/disconnect/{id}`: 200; 404 if no such participant.
pub async fn disconnect(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    let closing = state
        .directory
        .disconnect(&room, &id)
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, &closing);
    tracing::info!(
        room,
        participant = id,
        "participant disconnected by an admin"
    );
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /v1/rooms/{room}`: everyone leaves, every session ends. 200.
pub async fn close(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    admin(&state, &headers, query.as_deref())?;
    let closing = state
        .directory
        .close_room(&room)
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, &closing);
    tracing::info!(room, "room closed by an admin");
    Ok(StatusCode::OK.into_response())
}
