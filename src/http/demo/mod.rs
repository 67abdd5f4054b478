//! The demo pages and the browser client, embedded in the binary: `/` (the
//! landing page), `/publish`, `/watch`, `/room` (a conference),
//! `/uringcast.js` (and the `Room` module it re-exports,
//! `/uringcast-room.js`) with its types at `/uringcast.d.ts`, and the pages' style and scripts under `/demo/`.
//! Plain ES modules and CSS, no build step.
//!
//! Every answer carries a strong `ETag` (a hash of the content) and
//! `Cache-Control: no-cache`: a browser revalidates each time and gets a
//! `304` until the binary serves something else. The CORS layer of the
//! router covers these routes too, so a page on another origin can import
//! `/uringcast.js`.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// FNV-1a of the body, computed at compile time.
    hash: u64,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
/// TypeScript has no registered media type; plain text shows in a browser
/// and tools go by the `.d.ts` extension.
const TS: &str = "text/plain; charset=utf-8";

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type,
        body,
        hash: fnv1a(body.as_bytes()),
    }
}

static ASSETS: [Asset; 13] = [
    asset("/", HTML, include_str!("index.html")),
    asset("/publish", HTML, include_str!("publish.html")),
    asset("/watch", HTML, include_str!("watch.html")),
    asset("/room", HTML, include_str!("room.html")),
    asset("/uringcast.js", JS, include_str!("uringcast.js")),
    asset("/uringcast-room.js", JS, include_str!("uringcast-room.js")),
    asset("/uringcast.d.ts", TS, include_str!("uringcast.d.ts")),
    asset("/demo/style.css", CSS, include_str!("style.css")),
    asset("/demo/ui.js", JS, include_str!("ui.js")),
    asset("/demo/home.js", JS, include_str!("home.js")),
    asset("/demo/publish.js", JS, include_str!("publish.js")),
    asset("/demo/watch.js", JS, include_str!("watch.js")),
    asset("/demo/room.js", JS, include_str!("room.js")),
];

/// The routes of every embedded file (`GET`, and `HEAD` through axum).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(
            asset.path,
            get(move |headers: HeaderMap| async move { serve(asset, &headers) }),
        )
    })
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match_hits(v, &etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = asset.body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `If-None-Match` (a list, weak comparison, or `*`) names `etag`.
fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"00000000000000ab\"";
        assert!(none_match_hits(etag, etag));
        assert!(none_match_hits("W/\"00000000000000ab\"", etag));
        assert!(none_match_hits("\"x\", \"00000000000000ab\"", etag));
        assert!(none_match_hits("*", etag));
        assert!(!none_match_hits("\"00000000000000ac\"", etag));
        assert!(!none_match_hits("", etag));
    }

    #[test]
    fn hashes_differ_per_file() {
        let mut hashes: Vec<u64> = ASSETS.iter().map(|a| a.hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), ASSETS.len());
    }

    /// Every `/demo/…` and `/uringcast.js` a file refers to is served.
    #[test]
    fn every_reference_is_served() {
        for file in &ASSETS {
            for start in ["\"/demo/", "'/demo/", "\"/uringcast.", "'/uringcast."] {
                for (at, _) in file.body.match_indices(start) {
                    let rest = &file.body[at + 1..];
                    let end = rest.find(['"', '\'', '?', '#']).expect("a closing quote");
                    let path = &rest[..end];
                    assert!(
                        ASSETS.iter().any(|a| a.path == path),
                        "{} refers to {path}, which is not served",
                        file.path
                    );
                }
            }
        }
    }
}
