//! `PATCH /session/{id}` with `application/trickle-ice-sdpfrag` (WHIP §4.3,
//! RFC 8840): trickled candidates (204, no body) or an ICE restart (200, our
//! new ufrag, password and candidates as a sdpfrag, and the new ETag).
//!
//! Checks, in order: the token (401/403, as for DELETE), the session (404),
//! the content type (415; `application/sdp` too: this server never
//! counter-offers, so there is no answer to take), `If-Match` (428 when
//! absent; an `ETag:` request header, as `@eyevinn/whip-web-client` sends,
//! counts as one), the fragment (400), then the peer checks the ETag (412)
//! and applies it. A refused PATCH changes nothing: a failed restart keeps
//! the current ICE session.
//!
//! A pending peer is patched in the directory under its lock; a placed one
//! by its shard, over the command queue with a reply channel.

use std::fmt::Write;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use str0m::Candidate;
use str0m::media::{MediaKind, Mid};
use tokio::sync::oneshot;

use super::AppState;
use super::problem::Problem;
use super::session::{authorized_session, content_type, media_type, read_limited};
use crate::directory::PatchRoute;
use crate::sfu::{IcePatch, IfMatch, PatchError, PatchOutcome, SessionId};
use crate::shard::{Control, PatchReply};
use crate::wire::SdpFrag;

/// The media type of a trickle/restart body and answer.
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// How long signaling waits for a shard to apply a patch.
const SHARD_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts when a peer moves between the directory and a shard meanwhile.
const ATTEMPTS: usize = 3;

pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, &id, query.as_deref(), &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn handle(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let id = authorized_session(state, id, query, headers)?;
    match media_type(headers).as_deref() {
        Some(SDPFRAG) => {}
        Some("application/sdp") => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "this server never counter-offers, so a PATCH takes {SDPFRAG}, not application/sdp"
                ),
            ));
        }
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type must be {SDPFRAG}, not {:?}",
                    content_type(headers)
                ),
            ));
        }
    }
    let if_match = if_match(headers)?;
    let bytes = read_limited(
        headers,
        body,
        state.max_body,
        state.body_timeout,
        "fragment",
    )
    .await?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        super::sdp_checks::check(text)?;
    }
    let frag = SdpFrag::parse_bytes(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("malformed trickle-ice-sdpfrag: {e}"),
        )
    })?;
    let patch = IcePatch::from_frag(&frag, if_match);
    let outcome = apply(state, id, patch).await?;
    let counters = &state.counters;
    match outcome {
        PatchOutcome::Trickled { added, skipped } => {
            counters.count(&counters.trickles);
            counters.add(&counters.candidates_added, added as u64);
            counters.add(&counters.candidates_skipped, skipped as u64);
            tracing::debug!(session = ?id, added, skipped, "trickle");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        PatchOutcome::Restarted {
            ufrag,
            pwd,
            etag,
            media,
            added,
            skipped,
        } => {
            counters.count(&counters.ice_restarts);
            counters.add(&counters.candidates_added, added as u64);
            counters.add(&counters.candidates_skipped, skipped as u64);
            tracing::info!(session = ?id, "ICE restart");
            let candidates = state.setup.local_candidates().unwrap_or_default();
            let body = restart_answer(&ufrag, &pwd, &media, &candidates);
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            if let Ok(etag) = HeaderValue::from_str(&etag) {
                headers.insert(header::ETAG, etag);
            }
            Ok(response)
        }
    }
}

/// `If-Match`, else an `ETag` request header standing in for it; 428 when
/// neither is there.
fn if_match(headers: &HeaderMap) -> Result<IfMatch, Problem> {
    let value = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    IfMatch::parse(&value(header::IF_MATCH))
        .or_else(|| IfMatch::parse(&value(header::ETAG)))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "a PATCH needs If-Match with the session's ETag (or *)",
            )
        })
}

/// Applies `patch` where the peer lives: the directory (pending) or its shard.
async fn apply(state: &AppState, id: SessionId, patch: IcePatch) -> Result<PatchOutcome, Problem> {
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no such session");
    for _ in 0..ATTEMPTS {
        let shard = match state.directory.patch(id, Instant::now(), patch.clone()) {
            PatchRoute::Unknown => return Err(not_found()),
            PatchRoute::Done(result) => return result.map_err(problem),
            PatchRoute::OnShard(shard) => shard,
        };
        let Some(handle) = state.shards.get(shard) else {
            return Err(not_found());
        };
        let (reply, answer) = oneshot::channel();
        let command = Control::Patch {
            id,
            patch: Box::new(patch.clone()),
            reply,
        };
        if !handle.command(command) {
            return Err(busy());
        }
        match tokio::time::timeout(SHARD_REPLY_TIMEOUT, answer).await {
            Ok(Ok(PatchReply::Applied(result))) => return result.map_err(problem),
            // Given back to the directory (its first STUN did not
            // authenticate) or gone: look again.
            Ok(Ok(PatchReply::NotHere)) => continue,
            Ok(Err(_)) | Err(_) => return Err(busy()),
        }
    }
    Err(busy())
}

fn busy() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the session's shard did not take the PATCH in time",
    )
    .retry_after(1)
}

fn problem(error: PatchError) -> Problem {
    match error {
        PatchError::PreconditionFailed { .. } => {
            Problem::new(StatusCode::PRECONDITION_FAILED, error.to_string())
        }
        PatchError::Closed => Problem::new(StatusCode::NOT_FOUND, "no such session"),
        PatchError::Invalid(detail) => Problem::new(StatusCode::BAD_REQUEST, detail),
    }
}

/// Our side of a restart (RFC 9725 §4.3.2's example): ICE-lite, the new
/// credentials and our candidates in the first media section (the bundle).
pub fn restart_answer(
    ufrag: &str,
    pwd: &str,
    media: &[(MediaKind, Mid)],
    candidates: &[Candidate],
) -> String {
    let mut out = String::from("a=ice-lite\r\n");
    if !media.is_empty() {
        let mids: Vec<String> = media.iter().map(|(_, mid)| mid.to_string()).collect();
        let _ = write!(out, "a=group:BUNDLE {}\r\n", mids.join(" "));
    }
    if let Some((kind, mid)) = media.first() {
        let kind = match kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let _ = write!(out, "m={kind} 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n");
    }
    let _ = write!(out, "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    for candidate in candidates {
        let _ = write!(out, "a={}\r\n", candidate.to_sdp_string());
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_answer_is_a_fragment_we_parse_back() {
        let media = [
            (MediaKind::Audio, Mid::from("0")),
            (MediaKind::Video, Mid::from("1")),
        ];
        let text = restart_answer(
            "ABCDEFGHabcdefgh",
            "0123456789abcdef0123456789abcdef",
            &media,
            &[
                Candidate::host("127.0.0.1:5004".parse().unwrap(), "udp").unwrap(),
                Candidate::builder()
                    .tcp()
                    .host("127.0.0.1:5004".parse().unwrap())
                    .tcptype(str0m::net::TcpType::Passive)
                    .build()
                    .unwrap(),
            ],
        );
        assert!(
            text.contains(" tcp ") && text.contains("tcptype passive"),
            "{text}"
        );
        assert!(text.starts_with(
            "a=ice-lite\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        ));
        let frag = SdpFrag::parse(&text).unwrap();
        let creds = frag.credentials().unwrap();
        assert_eq!(creds.ufrag, "ABCDEFGHabcdefgh");
        assert_eq!(creds.pwd, "0123456789abcdef0123456789abcdef");
        // The UDP candidate, then the passive TCP one, on the same port.
        let candidates: Vec<_> = frag.candidates().collect();
        assert_eq!(candidates.len(), 2);
        assert!(candidates[1].transport.eq_ignore_ascii_case("tcp"));
        assert_eq!(
            candidates[0].socket_addr(),
            Some("127.0.0.1:5004".parse().unwrap())
        );
        assert!(frag.end_of_candidates());
    }

    #[test]
    fn if_match_comes_from_if_match_or_an_etag_request_header() {
        let mut h = HeaderMap::new();
        assert_eq!(
            if_match(&h).unwrap_err().status,
            StatusCode::PRECONDITION_REQUIRED
        );
        h.insert(header::ETAG, "\"abc\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), IfMatch::Tags(vec!["\"abc\"".into()]));
        h.insert(header::IF_MATCH, "*".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), IfMatch::Any);
        h.insert(header::IF_MATCH, "".parse().unwrap());
        assert_eq!(
            if_match(&h).unwrap(),
            IfMatch::Tags(vec!["\"abc\"".into()]),
            "an empty If-Match falls back to ETag"
        );
    }
}
