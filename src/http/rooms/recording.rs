//! Recording a room (`--record-dir`): `POST /v1/rooms/{room}/recording`
//! starts it (201 with the recording's id and the tracks it started),
//! `DELETE /v1/rooms/{room}/recording` stops it (200, the files are
//! finished). Allowed to the admin API and to a participant token (JWT)
//! for the room with `"record": true`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{AppState, json_response};
use crate::directory::RecordingError;
use crate::http::problem::Problem;

/// The admin API, or a token granting `record` in `room`; else the admin
/// API's refusal (401 or 403, counted).
fn may_record(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    room: &str,
) -> Result<(), Problem> {
    let policy = state.policy.load();
    let Err(refused) = policy.authorize_admin(headers, query) else {
        return Ok(());
    };
    // With auth off every request is granted everything: only the admin
    // API's rules hold then.
    let granted = policy.auth.is_some()
        && policy
            .authenticate(headers, query)
            .is_ok_and(|grant| grant.record && grant.permit_room(room).is_ok());
    match granted {
        true => Ok(()),
        _ => {
            state.counters.count(&state.counters.auth_refused);
            Err(refused)
        }
    }
}

fn problem(error: RecordingError) -> Problem {
    let status = match error {
        RecordingError::NoRoom(_) | RecordingError::NotRecording(_) => StatusCode::NOT_FOUND,
        RecordingError::Off | RecordingError::Already(..) => StatusCode::CONFLICT,
    };
    Problem::new(status, error.to_string())
}

/// `POST /v1/rooms/{room}/recording`: 201 `{"id", "room", "tracks"}`; 404
/// without such a room, 409 if it is recorded already or recording is off.
pub async fn start(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    may_record(&state, &headers, query.as_deref(), &room)?;
    let recording = state.directory.start_recording(&room).map_err(problem)?;
    Ok(json_response(StatusCode::CREATED, &json!(recording)))
}

/// `DELETE /v1/rooms/{room}/recording`: 200 `{"id", "room", "tracks"}`;
/// 404 if the room is not recorded.
pub async fn stop(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    may_record(&state, &headers, query.as_deref(), &room)?;
    let recording = state.directory.stop_recording(&room).map_err(problem)?;
    Ok(json_response(StatusCode::OK, &json!(recording)))
}
