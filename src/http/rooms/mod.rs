//! Conference rooms over HTTP: join (`POST /v1/rooms/{room}/participants`),
//! then everything on the participant's URL, `/v1/participants/{handle}`
//! (the handle is a 128-bit capability, like a WHIP session's id): its
//! event stream (`GET …/events`, Server-Sent Events), its publish transport
//! (`POST …/publish`, an SDP offer → answer), its subscribe transport
//! (`POST …/subscribe` → the server's offer; `POST …/answer` with the
//! client's answer of a revision), its info, broadcasts and messages, what
//! it receives (`POST …/subscription`), and leaving (`DELETE`).
//! Everything but the SSE stream itself answers at once; the directory
//! (`directory::conference`) holds the state, shards the transports.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::problem::Problem;
use super::proxy::ClientAddr;
use super::session::{check_room_name, read_limited, read_sdp, refused};
use crate::directory::{Admission, AnswerRoute, ConferenceError, RepublishRoute, Resync};
use crate::sfu::{AnswerError, OfferError, SessionId, Source, accept_publish, new_subscriber};
use crate::shard::{AnswerReply, Control, RepublishReply};

pub mod admin;
mod events;
pub mod recording;

pub use events::events;

/// The largest info, broadcast or message payload (JSON), in bytes.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// How long a shard may take to apply an answer.
const SHARD_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest participant id accepted.
const MAX_ID: usize = 64;

type Client = Option<Extension<ClientAddr>>;

fn ip(client: Client) -> Option<IpAddr> {
    client.map(|c| c.0.0)
}

fn conference_problem(e: ConferenceError, state: &AppState) -> Problem {
    match e {
        ConferenceError::UnknownParticipant => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
        ConferenceError::UnknownTarget(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
        ConferenceError::RoomFull(..) => {
            state.counters.count(&state.counters.room_full);
            Problem::new(StatusCode::FORBIDDEN, e.to_string())
        }
        ConferenceError::NotAllowed(_)
        | ConferenceError::NoSubscribe
        | ConferenceError::NotOwner
        | ConferenceError::Waiting
        | ConferenceError::Rejected(_) => Problem::new(StatusCode::FORBIDDEN, e.to_string()),
        ConferenceError::TooManyWaiting(..) => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).retry_after(5)
        }
        ConferenceError::NotWaiting(_) | ConferenceError::UnknownRoom(_) => {
            Problem::new(StatusCode::NOT_FOUND, e.to_string())
        }
        ConferenceError::RoomExists(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        ConferenceError::Insert(e) => refused(state, e),
    }
}

/// [`any_participant`] that is a member of its room: a joiner still
/// waiting for approval, or rejected, gets 403.
fn participant(
    state: &AppState,
    handle: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(SessionId, String, String), Problem> {
    let (handle, room, id, admission) = any_participant(state, handle, query, headers)?;
    match admission {
        Admission::Admitted => Ok((handle, room, id)),
        Admission::Waiting(_) => Err(conference_problem(ConferenceError::Waiting, state)),
        Admission::Rejected(reason) => {
            Err(conference_problem(ConferenceError::Rejected(reason), state))
        }
    }
}

/// The participant a `/v1/participants/{handle}` request names: 401 before
/// 404, then 403 for a token of another room.
fn any_participant(
    state: &AppState,
    handle: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(SessionId, String, String, Admission), Problem> {
    let grant = state
        .policy
        .load()
        .authenticate(headers, query)
        .inspect_err(|_| state.counters.count(&state.counters.auth_refused))?;
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no such participant");
    let handle = SessionId::parse(handle).ok_or_else(not_found)?;
    let (room, id, admission) = state.directory.participant(handle).ok_or_else(not_found)?;
    grant
        .permit_room(&room)
        .inspect_err(|_| state.counters.count(&state.counters.auth_refused))?;
    Ok((handle, room, id, admission))
}

/// A JSON body of at most [`MAX_PAYLOAD`] bytes (`413` above, `415` for
/// another type, `400` for bad JSON).
async fn read_json(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, Problem> {
    let media = super::session::media_type(headers);
    if media.as_deref() != Some("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/json, not {:?}",
                super::session::content_type(headers)
            ),
        ));
    }
    let bytes = read_limited(headers, body, MAX_PAYLOAD, state.body_timeout, "JSON body").await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

pub(super) fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Closes transports that ended in the directory but live on shards.
fn close_on_shards(state: &AppState, closing: &[(usize, SessionId)]) {
    for (shard, id) in closing {
        if let Some(handle) = state.shards.get(*shard) {
            handle.command(Control::Close(*id));
        }
    }
}

/// `POST /v1/rooms/{room}/participants`: join. Body (optional JSON):
/// `{"id": …, "info": {…}}`; with auth on, the id is the token's `sub`.
pub async fn join(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    check_room_name(&room)?;
    let grant = state
        .policy
        .load()
        .authenticate(&headers, query.as_deref())
        .and_then(|g| g.permit_room(&room).map(|()| g))
        .inspect_err(|_| state.counters.count(&state.counters.auth_refused))?;
    let body = if headers.contains_key(header::CONTENT_TYPE) {
        read_json(&state, &headers, body).await?
    } else {
        Value::Null
    };
    if !(body.is_null() || body.is_object()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ));
    }
    let mut info = body.get("info").cloned().unwrap_or_else(|| json!({}));
    if !info.is_object() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "info must be a JSON object",
        ));
    }
    if let (Some(name), Some(map)) = (&grant.name, info.as_object_mut()) {
        map.insert("name".into(), json!(name));
    }
    let asked = body.get("id").and_then(Value::as_str).map(str::to_owned);
    let id = match (&grant.identity, asked) {
        (Some(sub), _) => sub.clone(),
        (None, Some(asked)) => asked,
        (None, None) => state.setup.rng.token(12),
    };
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("a participant id is 1 to {MAX_ID} characters, none a control character"),
        ));
    }
    let handle = state.setup.rng.session_id();
    let (joined, closing) = state
        .directory
        .join(
            &room,
            id,
            handle,
            info,
            grant.conference.clone(),
            Instant::now(),
        )
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, &closing);
    tracing::info!(room, participant = joined.id, "participant joined");
    let url = format!("/v1/participants/{}", joined.handle);
    let body = json!({
        "id": joined.id,
        "waiting": joined.waiting,
        "url": url,
        "events": format!("{url}/events"),
        "snapshot": joined.snapshot,
    });
    // Waiting for approval: 202; the event stream says how it ends.
    let status = if joined.waiting {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let mut response = json_response(status, &body);
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE /v1/participants/{handle}`: leave.
pub async fn leave(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (handle, room, id, _) = any_participant(&state, &handle, query.as_deref(), &headers)?;
    let closing = state
        .directory
        .leave(handle)
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, &closing);
    tracing::info!(room, participant = id, "participant left");
    Ok(StatusCode::OK.into_response())
}

/// `POST /v1/participants/{handle}/publish` (`application/sdp`): the
/// publish transport; `?camera=MID&screen=MID&microphone=MID` name which
/// section carries what (default: audio is the microphone, video the
/// camera, a second video the screen). A second one replaces the first.
pub async fn publish(
    State(state): State<AppState>,
    client: Client,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, room, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let sources = source_map(query.as_deref())?;
    let offer = read_sdp(&headers, body, state.max_body, state.body_timeout).await?;
    let publisher = state.directory.next_generation();
    let setup = state.setup.clone();
    let now = Instant::now();
    let room_name = room.clone();
    let (peer, answer) = tokio::task::spawn_blocking(move || {
        accept_publish(&offer, &setup, &room_name, publisher, &sources, now)
    })
    .await
    .map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("offer handling failed: {e}"),
        )
    })?
    .map_err(offer_problem)?;
    let etag = peer.etag();
    let (session, closing) = state
        .directory
        .attach_publish(handle, peer, now, ip(client))
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, closing.as_slice());
    tracing::info!(?session, room, "publish transport created");
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(location) = HeaderValue::from_str(&format!("/session/{session}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

fn offer_problem(e: OfferError) -> Problem {
    match e {
        OfferError::Malformed(_) => Problem::new(StatusCode::BAD_REQUEST, e.to_string()),
        OfferError::Unacceptable(_) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        OfferError::NotAllowed(_) => Problem::new(StatusCode::FORBIDDEN, e.to_string()),
    }
}

/// `PATCH /v1/participants/{handle}/publish` (`application/sdp`): a new
/// offer on the publish transport (a track added, replaced or dropped),
/// same query as the POST. `200` + the answer; `404` without a publish
/// transport (POST one first).
pub async fn republish(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, room, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let sources = source_map(query.as_deref())?;
    let offer = read_sdp(&headers, body, state.max_body, state.body_timeout).await?;
    let answer = deliver_republish(&state, handle, offer, sources).await?;
    tracing::info!(room, "publish transport renegotiated");
    let mut response = (StatusCode::OK, answer).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    Ok(response)
}

/// Hands a publish transport its new offer, wherever it is (looked up again
/// if its shard gave it back to the directory meanwhile); the room is told
/// what changed.
async fn deliver_republish(
    state: &AppState,
    handle: SessionId,
    offer: String,
    sources: Vec<(Source, String)>,
) -> Result<String, Problem> {
    let busy =
        || Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy").retry_after(1);
    for _ in 0..LOOKUPS {
        let route = state
            .directory
            .republish(handle, &offer, &sources, Instant::now())
            .map_err(|e| conference_problem(e, state))?;
        let (shard, session, allowed) = match route {
            RepublishRoute::Done(answer) => return answer.map_err(offer_problem),
            RepublishRoute::NoTransport => {
                return Err(Problem::new(
                    StatusCode::NOT_FOUND,
                    "no publish transport: POST …/publish first",
                ));
            }
            RepublishRoute::OnShard {
                shard,
                session,
                allowed,
            } => (shard, session, allowed),
        };
        let (reply, wait) = tokio::sync::oneshot::channel();
        let command = Control::Republish {
            id: session,
            offer: offer.clone(),
            sources: sources.clone(),
            allowed,
            reply,
        };
        if !state.shards.get(shard).is_some_and(|h| h.command(command)) {
            return Err(busy());
        }
        match tokio::time::timeout(SHARD_TIMEOUT, wait).await {
            Ok(Ok(RepublishReply::Applied(Ok((answer, media))))) => {
                state.directory.republished(handle, session, media);
                return Ok(answer);
            }
            Ok(Ok(RepublishReply::Applied(Err(e)))) => return Err(offer_problem(e)),
            Ok(Ok(RepublishReply::NotHere)) => continue,
            Ok(Err(_)) | Err(_) => return Err(busy()),
        }
    }
    Err(busy())
}

/// `?microphone=MID&camera=MID&screen=MID` (and `token`, ignored here).
fn source_map(query: Option<&str>) -> Result<Vec<(Source, String)>, Problem> {
    let mut sources = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "token" {
            continue;
        }
        let source = Source::parse(key).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("unknown query parameter {key:?}: name microphone, camera or screen"),
            )
        })?;
        sources.push((source, value.to_owned()));
    }
    Ok(sources)
}

/// `POST /v1/participants/{handle}/subscribe`: the subscribe transport and
/// its first offer, `{"revision": 1, "sdp": …, "tracks": […]}`; answer it
/// with `POST …/answer`. A second one replaces the first.
pub async fn subscribe(
    State(state): State<AppState>,
    client: Client,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (handle, room, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let tracks = state
        .directory
        .wanted_tracks(handle)
        .map_err(|e| conference_problem(e, &state))?;
    let setup = state.setup.clone();
    let now = Instant::now();
    let room_name = room.clone();
    let (peer, offer) =
        tokio::task::spawn_blocking(move || new_subscriber(&setup, &room_name, tracks, now))
            .await
            .map_err(|e| {
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("offer failed: {e}"),
                )
            })?
            .map_err(offer_problem)?;
    let (session, closing) = state
        .directory
        .attach_subscribe(handle, peer, now, ip(client))
        .map_err(|e| conference_problem(e, &state))?;
    close_on_shards(&state, closing.as_slice());
    tracing::info!(?session, room, "subscribe transport created");
    let body = state.directory.offer_json(&offer);
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `POST /v1/participants/{handle}/answer`: `{"revision": n, "sdp": …}`,
/// the answer to the subscribe transport's offer `n`: 204; a stale
/// revision is 409, a malformed answer 400, one that cannot apply 422.
pub async fn answer(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let body = read_limited_json(&state, &headers, body).await?;
    let revision = body
        .get("revision")
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok())
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "revision must be a number"))?;
    let sdp = body
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "sdp must be a string"))?
        .to_owned();
    super::sdp_checks::check(&sdp)?;
    let result = deliver_answer(&state, handle, revision, sdp).await?;
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e @ AnswerError::Stale { .. }) => {
            Err(Problem::new(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e @ AnswerError::Malformed(_)) => {
            Err(Problem::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e @ AnswerError::Refused(_)) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
        Err(e @ (AnswerError::Closed | AnswerError::NotSubscriber)) => {
            Err(Problem::new(StatusCode::NOT_FOUND, e.to_string()))
        }
    }
}

/// Hands an answer to the subscribe transport, wherever it is. A transport
/// its shard gave back to the directory meanwhile (its first STUN did not
/// authenticate) is looked up again, a bounded number of times.
async fn deliver_answer(
    state: &AppState,
    handle: SessionId,
    revision: u32,
    sdp: String,
) -> Result<Result<(), AnswerError>, Problem> {
    let busy =
        || Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy").retry_after(1);
    for _ in 0..LOOKUPS {
        let route = state
            .directory
            .answer(handle, revision, &sdp, Instant::now())
            .map_err(|e| conference_problem(e, state))?;
        let (shard, id) = match route {
            AnswerRoute::Done(result) => return Ok(result),
            AnswerRoute::OnShard(shard, id) => (shard, id),
        };
        let (reply, wait) = tokio::sync::oneshot::channel();
        let command = Control::Answer {
            id,
            revision,
            sdp: sdp.clone(),
            reply,
        };
        if !state.shards.get(shard).is_some_and(|h| h.command(command)) {
            return Err(busy());
        }
        match tokio::time::timeout(SHARD_TIMEOUT, wait).await {
            Ok(Ok(AnswerReply::Applied(result))) => return Ok(result),
            Ok(Ok(AnswerReply::NotHere)) => continue,
            Ok(Err(_)) | Err(_) => return Err(busy()),
        }
    }
    Err(busy())
}

/// How often a request looks a transport up again after its shard gave it
/// back to the directory.
const LOOKUPS: usize = 4;

/// A JSON body up to `--max-body` (answers carry SDP).
async fn read_limited_json(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, Problem> {
    if super::session::media_type(headers).as_deref() != Some("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let bytes = read_limited(headers, body, state.max_body, state.body_timeout, "answer").await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

/// `POST /v1/participants/{handle}/info`: a JSON object, the participant's
/// new info; every other participant gets an `info` event. 204.
pub async fn info(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let info = read_json(&state, &headers, body).await?;
    if !info.is_object() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "info must be a JSON object",
        ));
    }
    state
        .directory
        .set_info(handle, info)
        .map_err(|e| conference_problem(e, &state))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/participants/{handle}/broadcast`: any JSON, to every other
/// participant as a `broadcast` event. 204.
pub async fn broadcast(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let payload = read_json(&state, &headers, body).await?;
    state
        .directory
        .broadcast(handle, payload)
        .map_err(|e| conference_problem(e, &state))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/participants/{handle}/message/{to}`: any JSON, to participant
/// `to` only, as a `message` event. 204; 404 if `to` is not in the room.
pub async fn message(
    State(state): State<AppState>,
    Path((handle, to)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let payload = read_json(&state, &headers, body).await?;
    state
        .directory
        .message(handle, &to, payload)
        .map_err(|e| conference_problem(e, &state))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/participants/{handle}/subscription`:
/// `{"<participant id>": {"camera": false, "screen": true, …}, …}` —
/// what to receive of each (default: everything). 204.
pub async fn subscription(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let body = read_json(&state, &headers, body).await?;
    let Some(map) = body.as_object() else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ));
    };
    let mut changes = Vec::new();
    for (of, wants) in map {
        let Some(wants) = wants.as_object() else {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("{of:?} must map sources to true or false"),
            ));
        };
        let mut sources = Vec::new();
        for (name, on) in wants {
            let source = Source::parse(name).ok_or_else(|| {
                Problem::new(StatusCode::BAD_REQUEST, format!("unknown source {name:?}"))
            })?;
            let on = on.as_bool().ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name:?} must be true or false"),
                )
            })?;
            sources.push((source, on));
        }
        changes.push((of.clone(), sources));
    }
    for (of, sources) in &changes {
        state
            .directory
            .set_subscription(handle, of, sources)
            .map_err(|e| conference_problem(e, &state))?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sends every dirty participant's track set to its subscribe transport's
/// shard, whenever the directory says some changed (and once a second, to
/// retry what a full command queue refused).
pub fn spawn_resync(state: &AppState) {
    let directory = state.directory.clone();
    let shards = state.shards.clone();
    let waker = directory.resync_waker();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), waker.notified()).await;
            for Resync {
                session,
                shard,
                tracks,
            } in directory.take_resyncs(Instant::now())
            {
                let sent = shards.get(shard).is_some_and(|h| {
                    h.command(Control::Desire {
                        id: session,
                        tracks,
                    })
                });
                if !sent {
                    directory.mark_dirty(session);
                }
            }
        }
    });
}

/// `POST /v1/participants/{handle}/approve/{joiner}` (owner grant): the
/// joiner becomes a member. 204; 404 if no such joiner waits.
pub async fn approve(
    State(state): State<AppState>,
    Path((handle, joiner)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    state
        .directory
        .approve(handle, &joiner)
        .map_err(|e| conference_problem(e, &state))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/participants/{handle}/reject/{joiner}` (owner grant), body
/// optional `{"reason": …}`: the joiner is refused. 204.
pub async fn reject(
    State(state): State<AppState>,
    Path((handle, joiner)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (handle, _, _) = participant(&state, &handle, query.as_deref(), &headers)?;
    let body = if headers.contains_key(header::CONTENT_TYPE) {
        read_json(&state, &headers, body).await?
    } else {
        Value::Null
    };
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("an owner refused")
        .chars()
        .take(200)
        .collect::<String>();
    state
        .directory
        .reject(handle, &joiner, &reason)
        .map_err(|e| conference_problem(e, &state))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
