//! `GET /v1/participants/{handle}/events`: the participant's Server-Sent
//! Events. The first event is a `snapshot` of the room (unless the client
//! resumes with `Last-Event-ID` and the queue still holds what followed
//! it); then every queued event in order, each with its `id`. A second
//! stream for the same participant replaces the first, which ends. When the
//! stream ends the directory is told, so a participant that is gone for
//! good (no stream, no transports) can be reaped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::Value;
use tokio::sync::Notify;

use super::{AppState, any_participant};
use crate::directory::Directory;
use crate::http::problem::Problem;
use crate::sfu::SessionId;

/// How often a stream re-checks without being woken (a replaced stream
/// ends within this).
const RECHECK: Duration = Duration::from_secs(10);

/// The open stream: tells the directory when it is dropped.
struct Stream {
    directory: Arc<Directory>,
    handle: SessionId,
    number: u64,
    notify: Arc<Notify>,
    cursor: u64,
    queue: VecDeque<Event>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.directory.close_stream(self.handle, self.number);
    }
}

fn snapshot_event(snapshot: &Value, id: u64) -> Event {
    Event::default()
        .event("snapshot")
        .id(id.to_string())
        .data(snapshot.to_string())
}

pub async fn events(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (handle, _, _, _) = any_participant(&state, &handle, query.as_deref(), &headers)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some((number, notify, snapshot, last)) = state.directory.open_stream(handle) else {
        return Err(Problem::new(
            axum::http::StatusCode::NOT_FOUND,
            "no such participant",
        ));
    };
    let mut queue = VecDeque::new();
    let cursor = match resume {
        Some(after) if after <= last => after,
        _ => {
            queue.push_back(snapshot_event(&snapshot, last));
            last
        }
    };
    let open = Stream {
        directory: state.directory.clone(),
        handle,
        number,
        notify,
        cursor,
        queue,
    };
    let events = stream::unfold(open, |mut s| async move {
        loop {
            if let Some(event) = s.queue.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), s));
            }
            match s.directory.events_after(s.handle, s.number, s.cursor)? {
                Err((snapshot, last)) => {
                    s.queue.push_back(snapshot_event(&snapshot, last));
                    s.cursor = last;
                }
                Ok(events) if !events.is_empty() => {
                    for e in events {
                        s.cursor = e.id;
                        s.queue.push_back(
                            Event::default()
                                .event(e.name)
                                .id(e.id.to_string())
                                .data(&*e.data),
                        );
                    }
                }
                Ok(_) => {
                    let _ = tokio::time::timeout(RECHECK, s.notify.notified()).await;
                }
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
