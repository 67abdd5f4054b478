//! An early answer never breaks the client's next request. A handler that
//! answers before reading the request's body to its end (401, 403, 404,
//! 413, 415, 428, 429 before the body; 413 or 408 part-way through it)
//! leaves bytes on the connection. hyper then drains only what has already
//! arrived and otherwise closes the connection after the answer — without
//! saying so, so a client that pools connections (aiohttp, browsers,
//! reqwest) puts the socket back and sends its next request into a closed
//! connection. [`track`] notes whether the body was read to its end; when it
//! was not, [`close_if_unread`] adds `Connection: close`, which also makes
//! hyper close the connection every time rather than only when the rest of
//! the body had not arrived yet.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};

/// Whether a request's body was read to its end.
#[derive(Debug, Clone, Default)]
pub struct BodyRead(Arc<AtomicBool>);

impl BodyRead {
    pub fn is_done(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A body that sets its [`BodyRead`] once it has given its last frame.
struct Tracked<B> {
    inner: B,
    read: BodyRead,
}

impl<B> HttpBody for Tracked<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.read.set(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.read.set(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `request` with its body tracked, and what tells whether it was read to
/// its end (already true for a request without a body).
pub fn track<B>(request: Request<B>) -> (Request<Body>, BodyRead)
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let read = BodyRead::default();
    let (parts, inner) = request.into_parts();
    if inner.is_end_stream() {
        read.set();
    }
    let body = Body::new(Tracked {
        inner,
        read: read.clone(),
    });
    (Request::from_parts(parts, body), read)
}

/// Adds `Connection: close` to `response` if the request's body was not
/// read to its end.
pub fn close_if_unread<T>(response: &mut Response<T>, read: &BodyRead) {
    if !read.is_done() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_read_to_its_end_keeps_the_connection_and_one_left_unread_closes_it() {
        let (request, read) = track(Request::new(Body::from("abc")));
        assert!(!read.is_done());
        let bytes = axum::body::to_bytes(request.into_body(), 16).await;
        assert_eq!(bytes.ok().as_deref(), Some(&b"abc"[..]));
        assert!(read.is_done());
        let mut response = Response::new(());
        close_if_unread(&mut response, &read);
        assert!(response.headers().get(header::CONNECTION).is_none());

        // Read and refused as too large: still read to its end.
        let (request, read) = track(Request::new(Body::from("abcdef")));
        assert!(axum::body::to_bytes(request.into_body(), 4).await.is_err());
        assert!(read.is_done());

        let (request, read) = track(Request::new(Body::from("abcdef")));
        drop(request);
        close_if_unread(&mut response, &read);
        assert_eq!(response.headers()[header::CONNECTION], "close");

        let (_, read) = track(Request::new(Body::empty()));
        assert!(read.is_done(), "no body: nothing left unread");
    }
}
