//! The HTTP surface of WHIP/WHEP against the real binary: status codes,
//! headers and RFC 9457 bodies for every error a client can cause, and that
//! an early answer never breaks a pooling client's next request.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{ServerProc, header, http, offer, publish_offer};
use str0m::media::{Direction, MediaKind};

fn assert_problem(
    status: u16,
    headers: &[(String, String)],
    body: &str,
    want: u16,
    mentions: &str,
) {
    assert_eq!(status, want, "status (body: {body})");
    assert_eq!(
        header(headers, "content-type"),
        Some("application/problem+json")
    );
    let json: serde_json::Value = serde_json::from_str(body).expect("problem JSON");
    assert_eq!(json["status"], want);
    let detail = json["detail"].as_str().expect("detail");
    assert!(
        detail.contains(mentions),
        "detail {detail:?} mentions {mentions:?}"
    );
}

#[test]
fn whip_post_answers_201_with_location_etag_and_sdp() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (status, headers, body) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp; charset=utf-8"),
        &publish_offer(),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/sdp"));
    let location = header(&headers, "location").expect("Location");
    let id = location.strip_prefix("/session/").expect("session URL");
    assert_eq!(id.len(), 32, "128 random bits in hex");
    let etag = header(&headers, "etag").expect("ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "strong ETag {etag}"
    );
    assert!(body.starts_with("v=0"));
    assert!(body.contains("a=recvonly"), "WHIP answer is recvonly");
    assert!(body.contains("a=ice-lite"));
    assert!(
        body.contains(&format!("{} typ host", server.udp.port())),
        "answer lists our candidate"
    );

    // A second publisher in the same room: 409.
    let (status, headers, body) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_problem(status, &headers, &body, 409, "already has a publisher");

    // DELETE: 200, then 404; the room's publisher slot is free again.
    let (status, _, _) = http(&server.base, "DELETE", location, None, "");
    assert_eq!(status, 200);
    let (status, headers, body) = http(&server.base, "DELETE", location, None, "");
    assert_problem(status, &headers, &body, 404, "no such session");
    let (status, _, _) = http(
        &server.base,
        "POST",
        "/whip/room1",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_eq!(status, 201);
}

#[test]
fn client_errors_are_4xx_problems() {
    let server = ServerProc::start(&["--shards", "1", "--max-body", "8192"]);
    let base = &server.base;

    let (s, h, b) = http(
        base,
        "POST",
        "/whip/r",
        Some("text/plain"),
        &publish_offer(),
    );
    assert_problem(s, &h, &b, 415, "application/sdp");
    let (s, h, b) = http(base, "POST", "/whip/r", None, &publish_offer());
    assert_problem(s, &h, &b, 415, "application/sdp");

    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), "hello");
    assert_problem(s, &h, &b, 400, "v=0");
    let (s, h, b) = http(
        base,
        "POST",
        "/whip/r",
        Some("application/sdp"),
        "v=0\r\ns=-\r\n",
    );
    assert_problem(s, &h, &b, 400, "no media");

    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(4000));
    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), &big);
    assert_problem(s, &h, &b, 413, "larger than 8192");

    let recvonly = offer(&[MediaKind::Video], Direction::RecvOnly, |c| c);
    let (s, h, b) = http(base, "POST", "/whip/r", Some("application/sdp"), &recvonly);
    assert_problem(s, &h, &b, 422, "sendonly");

    let (s, h, b) = http(
        base,
        "POST",
        "/whip/bad%20room",
        Some("application/sdp"),
        &publish_offer(),
    );
    assert_problem(s, &h, &b, 400, "room names");

    let (s, h, b) = http(
        base,
        "POST",
        "/whep/empty",
        Some("application/sdp"),
        &offer(&[MediaKind::Video], Direction::RecvOnly, |c| c),
    );
    assert_problem(s, &h, &b, 409, "nothing is published");
    assert_eq!(header(&h, "retry-after"), Some("2"));

    let (s, h, b) = http(
        base,
        "DELETE",
        "/session/00000000000000000000000000000000",
        None,
        "",
    );
    assert_problem(s, &h, &b, 404, "no such session");
    let (s, h, b) = http(base, "DELETE", "/session/nothex", None, "");
    assert_problem(s, &h, &b, 404, "no such session");

    // Nothing above left a session or a room behind.
    let stats = server.stats();
    assert_eq!(stats["sessions"], 0);
    assert_eq!(stats["rooms"].as_array().map(Vec::len), Some(0), "{stats}");
}

#[test]
fn a_viewer_that_cannot_receive_the_publishers_codec_gets_422_naming_it() {
    let server = ServerProc::start(&["--shards", "1"]);
    let vp8_only = offer(&[MediaKind::Video], Direction::SendOnly, |c| {
        c.clear_codecs().enable_vp8(true)
    });
    let (s, _, b) = http(
        &server.base,
        "POST",
        "/whip/codec",
        Some("application/sdp"),
        &vp8_only,
    );
    assert_eq!(s, 201, "{b}");
    let h264_viewer = offer(&[MediaKind::Video], Direction::RecvOnly, |c| {
        c.clear_codecs().enable_h264(true)
    });
    let (s, h, b) = http(
        &server.base,
        "POST",
        "/whep/codec",
        Some("application/sdp"),
        &h264_viewer,
    );
    assert_problem(s, &h, &b, 422, "Vp8");
    let vp8_viewer = offer(&[MediaKind::Video], Direction::RecvOnly, |c| {
        c.clear_codecs().enable_vp8(true).enable_h264(true)
    });
    let (s, _, b) = http(
        &server.base,
        "POST",
        "/whep/codec",
        Some("application/sdp"),
        &vp8_viewer,
    );
    assert_eq!(s, 201, "{b}");
    assert!(b.contains("a=sendonly"), "WHEP answer is sendonly");
}

#[test]
fn options_and_cors_preflight() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (s, h, b) = http(&server.base, "OPTIONS", "/whip/r", None, "");
    assert_eq!(s, 204, "OPTIONS status");
    assert!(b.is_empty(), "No Content: {b:?}");
    assert_eq!(header(&h, "accept-post"), Some("application/sdp"));

    // A browser's preflight: no auth, asks for POST with content-type.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .options(format!("{}/whep/r", server.base))
        .header("Origin", "https://example.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, authorization",
        )
        .call()
        .expect("preflight");
    assert_eq!(response.status().as_u16(), 204, "preflight status");
    let h = response.headers();
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let methods = h
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = h
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    // A cross-origin POST can read Location and ETag.
    let response = agent
        .post(format!("{}/whip/r", server.base))
        .header("Origin", "https://example.test")
        .header("Content-Type", "application/sdp")
        .send(publish_offer())
        .expect("post");
    assert_eq!(response.status().as_u16(), 201);
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("location") && exposed.contains("etag"),
        "{exposed}"
    );
}

/// One raw HTTP/1.1 keep-alive connection, as a pooling client holds it.
struct Pooled {
    stream: TcpStream,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

/// A response: status and headers (its body read and dropped).
type Head = (u16, Vec<(String, String)>);

impl Pooled {
    fn open(server: &ServerProc) -> Self {
        let addr = server.base.trim_start_matches("http://");
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("write timeout");
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends a request's head, then `body` from another thread (ignoring
    /// errors: the server may answer and close before it reads the body),
    /// and reads the response; `None` if the connection broke first.
    fn exchange(&mut self, head: &str, body: Vec<u8>) -> Option<Head> {
        self.stream.write_all(head.as_bytes()).ok()?;
        let mut writer = self.stream.try_clone().expect("clone");
        let sending = std::thread::spawn(move || {
            let _ = writer.write_all(&body);
        });
        let response = self.response();
        sending.join().expect("writer thread");
        response
    }

    /// A POST of `body` with `content_type` and `Content-Length`.
    fn post(&mut self, path: &str, content_type: &str, body: &[u8]) -> Option<Head> {
        self.send("POST", path, content_type, body)
    }

    /// A request with `body`, `content_type` and `Content-Length`.
    fn send(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Option<Head> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: uringcast\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.exchange(&head, body.to_vec())
    }

    /// Reads one response (bounded by the read timeout and the sizes).
    fn response(&mut self) -> Option<Head> {
        let mut chunk = [0u8; 16 * 1024];
        let end = loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if self.pending.len() > 64 * 1024 {
                return None;
            }
            let n = self.stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
            self.pending.extend_from_slice(&chunk[..n]);
        };
        let text = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize =
            header(&headers, "content-length").map_or(Some(0), |v| v.parse().ok())?;
        while self.pending.len() < end + length {
            let n = self.stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
            self.pending.extend_from_slice(&chunk[..n]);
        }
        self.pending.drain(..end + length);
        Some((status, headers))
    }
}

fn says_close(headers: &[(String, String)]) -> bool {
    header(headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// The invariant: after an early answer, the client's next request works.
/// Either the answer said `Connection: close` (and the server does close:
/// a pooling client then opens a new connection), or the same connection
/// takes the next request. Returns whether it said close.
fn next_request_works(server: &ServerProc, conn: &mut Pooled, answer: &Head, room: &str) -> bool {
    let path = format!("/whip/{room}");
    let sdp = publish_offer();
    let close = says_close(&answer.1);
    let next = if close {
        assert!(
            common::closed_by_server(&mut conn.stream),
            "the server closes after it said Connection: close"
        );
        Pooled::open(server).post(&path, "application/sdp", sdp.as_bytes())
    } else {
        conn.post(&path, "application/sdp", sdp.as_bytes())
    };
    let next =
        next.unwrap_or_else(|| panic!("the request after a {} broke (close: {close})", answer.0));
    assert_eq!(next.0, 201, "the request after a {}", answer.0);
    close
}

/// A 2 MB one-line SDP gets an early 413 (by its Content-Length, and again
/// without one, part-way through a chunked body) that says
/// `Connection: close`, so a pooling client opens a new connection and its
/// next POST gets 201. Other early answers keep the same promise; an error
/// answered after the whole body was read keeps the connection.
#[test]
fn an_early_answer_never_breaks_a_pooling_clients_next_request() {
    let server = ServerProc::start(&["--shards", "1"]);
    let huge = format!("v=0\r\na=x-huge:{}\r\n", "x".repeat(2 << 20)).into_bytes();

    let mut conn = Pooled::open(&server);
    let answer = conn
        .post("/whip/big", "application/sdp", &huge)
        .expect("a 413 before the body is read");
    assert_eq!(answer.0, 413);
    assert!(
        says_close(&answer.1),
        "413 by Content-Length: {:?}",
        answer.1
    );
    assert!(next_request_works(&server, &mut conn, &answer, "after-413"));

    let mut conn = Pooled::open(&server);
    let mut chunked = Vec::new();
    for piece in huge.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /whip/big HTTP/1.1\r\nHost: uringcast\r\n\
                Content-Type: application/sdp\r\nTransfer-Encoding: chunked\r\n\r\n";
    let answer = conn.exchange(head, chunked).expect("a 413 while reading");
    assert_eq!(answer.0, 413);
    assert!(says_close(&answer.1), "413 while reading: {:?}", answer.1);
    assert!(next_request_works(
        &server,
        &mut conn,
        &answer,
        "after-chunked"
    ));

    // Answers given before a normal-sized body is read: 415, 404 from a
    // path nothing serves, and a PATCH of a session that does not exist.
    let sdp = publish_offer();
    let unknown = format!("/session/{}", "0".repeat(32));
    let sdpfrag = "application/trickle-ice-sdpfrag";
    for (i, (method, path, content_type, want)) in [
        ("POST", "/whip/typed", "text/plain", 415),
        ("POST", "/nowhere", "application/sdp", 404),
        ("PATCH", unknown.as_str(), sdpfrag, 404),
    ]
    .into_iter()
    .enumerate()
    {
        let mut conn = Pooled::open(&server);
        let answer = conn
            .send(method, path, content_type, sdp.as_bytes())
            .expect("an answer");
        assert_eq!(answer.0, want, "{method} {path}");
        next_request_works(&server, &mut conn, &answer, &format!("after-early-{i}"));
    }

    // A 400 after the whole body was read: the connection stays.
    let mut conn = Pooled::open(&server);
    let answer = conn
        .post("/whip/bad", "application/sdp", b"hello")
        .expect("an answer");
    assert_eq!(answer.0, 400);
    assert!(
        !next_request_works(&server, &mut conn, &answer, "after-400"),
        "a body read to its end keeps the connection: {:?}",
        answer.1
    );
}
