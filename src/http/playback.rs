//! `POST /whep/recordings/{id}`: watch a recording played back in real
//! time. The handler starts the recording's playback (a publisher in the
//! room `recordings/{id}`, `record::playback`) unless it runs already,
//! waits briefly for it to be published, then answers the viewer's offer
//! as `POST /whep/{room}` does for that room (its token: one for the room
//! `recordings/{id}`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Access;
use super::problem::Problem;
use super::proxy::ClientAddr;
use super::session::create_session;
use crate::record::playback::{PlaybackError, room_of};
use crate::sfu::Role;

/// How long a viewer's POST waits for the playback to be published.
const PUBLISH_WAIT: Duration = Duration::from_secs(3);

/// Seconds a client is told to wait before retrying.
const RETRY_SECONDS: u32 = 1;

pub async fn watch(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|c| c.0.0);
    match start_and_watch(&state, client, &id, query.as_deref(), &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn start_and_watch(
    state: &AppState,
    client: Option<IpAddr>,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let Some(playbacks) = state.playbacks.clone() else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "this server keeps no recordings (no --record-dir)",
        ));
    };
    let room = room_of(id).map_err(problem)?;
    state.authorize(headers, query, &room, Access::from(Role::Viewer))?;
    let owned = id.to_owned();
    tokio::task::spawn_blocking(move || playbacks.ensure(&owned))
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("starting the playback failed: {e}"),
            )
        })?
        .map_err(problem)?;
    let deadline = Instant::now() + PUBLISH_WAIT;
    while state.directory.publisher_media(&room).is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    create_session(state, client, &room, query, headers, body, Role::Viewer).await
}

/// The answer to a playback that could not start.
fn problem(e: PlaybackError) -> Problem {
    let status = match e {
        PlaybackError::BadId => StatusCode::BAD_REQUEST,
        PlaybackError::NotFound(_) | PlaybackError::Empty(_) => StatusCode::NOT_FOUND,
        PlaybackError::Full => StatusCode::SERVICE_UNAVAILABLE,
        PlaybackError::Refused(_) => StatusCode::CONFLICT,
        PlaybackError::Read { .. } | PlaybackError::Io(_) | PlaybackError::Rtc(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let retry = matches!(e, PlaybackError::Full | PlaybackError::Refused(_));
    let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
        // The details (paths on the server) go to the log, not the client.
        tracing::warn!(error = %e, "a playback could not start");
        "the recording could not be played back".to_owned()
    } else {
        e.to_string()
    };
    let problem = Problem::new(status, detail);
    if retry {
        problem.retry_after(RETRY_SECONDS)
    } else {
        problem
    }
}
