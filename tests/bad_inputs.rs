//! The bad-input suite: every class of ../shared/BAD-INPUTS.md a test can
//! send that tests/signaling.rs, tests/trickle.rs and tests/auth_and_limits.rs
//! do not already cover. Each gets a 4xx or a silent, counted drop; the
//! server never panics and keeps answering; and a live publisher → viewer
//! flow in another room keeps ≥ 99 % delivery while the media-port junk is
//! fired.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Flags, Relay, ServerProc, closed_by_server, header, request, spawn_client};
use uringcast_load::client::payload::Kind;
use uringcast_load::client::{Client, ClientOptions, ClientRole};

/// A compact browser-like WHIP offer: Opus on mid 0, VP8 (+RTX) on mid 1.
fn base_offer() -> String {
    "v=0\r\n\
     o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
     s=-\r\n\
     t=0 0\r\n\
     a=group:BUNDLE 0 1\r\n\
     a=msid-semantic: WMS stream\r\n\
     m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
     c=IN IP4 0.0.0.0\r\n\
     a=rtcp:9 IN IP4 0.0.0.0\r\n\
     a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n\
     a=ice-ufrag:Ch1x\r\n\
     a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
     a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
     a=setup:actpass\r\n\
     a=mid:0\r\n\
     a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
     a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
     a=sendonly\r\n\
     a=msid:stream audio-track\r\n\
     a=rtcp-mux\r\n\
     a=rtpmap:111 opus/48000/2\r\n\
     a=fmtp:111 minptime=10;useinbandfec=1\r\n\
     a=ssrc:1111111111 cname:abcdefghijklmnop\r\n\
     m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
     c=IN IP4 0.0.0.0\r\n\
     a=rtcp:9 IN IP4 0.0.0.0\r\n\
     a=ice-ufrag:Ch1x\r\n\
     a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
     a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
     a=setup:actpass\r\n\
     a=mid:1\r\n\
     a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
     a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
     a=sendonly\r\n\
     a=msid:stream video-track\r\n\
     a=rtcp-mux\r\n\
     a=rtcp-rsize\r\n\
     a=rtpmap:96 VP8/90000\r\n\
     a=rtcp-fb:96 nack pli\r\n\
     a=rtpmap:97 rtx/90000\r\n\
     a=fmtp:97 apt=96\r\n\
     a=ssrc-group:FID 2222222222 3333333333\r\n\
     a=ssrc:2222222222 cname:abcdefghijklmnop\r\n\
     a=ssrc:3333333333 cname:abcdefghijklmnop\r\n"
        .to_owned()
}

/// POSTs raw bytes as `application/sdp` → (status, headers, body).
fn post_bytes(base: &str, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    common::response_parts(
        agent
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/sdp")
            .send(body),
    )
}

fn stats_answer(server: &ServerProc) {
    let (s, _, _) = request(&server.base, "GET", "/v1/stats", &[], "");
    assert_eq!(s, 200, "the server still answers");
}

/// A mutation of the base offer and the statuses it may get. Where the input
/// is only odd (not wrong), 201 is allowed and the session is deleted again.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    allowed: &'static [u16],
}

fn cases() -> Vec<Case> {
    let base = base_offer();
    let text = |name, body: String, allowed| Case {
        name,
        body: body.into_bytes(),
        allowed,
    };
    let mut cases = vec![
        text(
            "NUL byte inside a line",
            base.replace("a=mid:1\r\n", "a=mid:1\0\r\n"),
            &[400, 422],
        ),
        text(
            "NUL bytes as a line",
            base.replace("t=0 0\r\n", "t=0 0\r\n\0\0\0\0\r\n"),
            &[201, 400, 422],
        ),
        text("bare LF line ends", base.replace("\r\n", "\n"), &[201, 400]),
        text(
            "mixed CRLF and bare LF",
            base.replacen("\r\n", "\n", 7),
            &[201, 400],
        ),
        text(
            "payload type above 127",
            base.replace(" 96 97\r\n", " 200 97\r\n")
                .replace(":96 ", ":200 ")
                .replace("apt=96", "apt=200"),
            &[400, 422],
        ),
        text(
            "payload type far out of range",
            base.replace(" 96 97\r\n", " 99999 97\r\n")
                .replace(":96 ", ":99999 "),
            &[400, 422],
        ),
        text(
            "duplicate mids",
            base.replace("a=mid:1\r\n", "a=mid:0\r\n")
                .replace("BUNDLE 0 1", "BUNDLE 0 0"),
            &[400, 422],
        ),
        text(
            "BUNDLE naming unknown mids",
            base.replace("BUNDLE 0 1", "BUNDLE 0 1 7 nope"),
            &[201, 400, 422],
        ),
        text(
            "BUNDLE naming only unknown mids",
            base.replace("BUNDLE 0 1", "BUNDLE 5 6"),
            &[400, 422],
        ),
        text(
            "extmap id 0",
            base.replace("a=extmap:2 ", "a=extmap:0 "),
            &[201, 400, 422],
        ),
        text(
            "extmap id 15",
            base.replace("a=extmap:2 ", "a=extmap:15 "),
            &[201, 400, 422],
        ),
        text(
            "extmap id 256",
            base.replace("a=extmap:2 ", "a=extmap:256 "),
            &[201, 400, 422],
        ),
        text(
            "extmap id 99999999999",
            base.replace("a=extmap:2 ", "a=extmap:99999999999 "),
            &[201, 400, 422],
        ),
        text(
            "ice-ufrag of 3 chars",
            base.replace("ice-ufrag:Ch1x", "ice-ufrag:Ch1"),
            &[400, 422],
        ),
        text(
            "ice-ufrag of 257 chars",
            base.replace("ice-ufrag:Ch1x", &format!("ice-ufrag:{}", "u".repeat(257))),
            &[400, 422],
        ),
        text(
            "ice-pwd of 21 chars",
            base.replace("abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstu"),
            &[400, 422],
        ),
        text(
            "ice-pwd of 257 chars",
            base.replace("abcdefghijklmnopqrstuvwx", &"p".repeat(257)),
            &[400, 422],
        ),
        text(
            "fingerprint with an unknown hash",
            base.replace("fingerprint:sha-256", "fingerprint:md7"),
            &[400, 422],
        ),
        text(
            "fingerprint of the wrong length",
            base.replace(":2C:19:08\r\n", "\r\n"),
            &[400, 422],
        ),
        text(
            "fingerprint that is not hex",
            base.replace("7B:8B:F0", "ZZ:8B:F0"),
            &[400, 422],
        ),
        text(
            "setup:holdconn",
            base.replace("setup:actpass", "setup:holdconn"),
            &[400, 422],
        ),
        text(
            "two video tracks",
            format!(
                "{base}{}",
                &base[base.find("m=video").unwrap()..].replace("a=mid:1", "a=mid:2")
            )
            .replace("BUNDLE 0 1", "BUNDLE 0 1 2"),
            &[400, 422],
        ),
        text(
            "inactive in a WHIP offer",
            base.replace("a=sendonly", "a=inactive"),
            &[400, 422],
        ),
        text("missing v=", base.replacen("v=0\r\n", "", 1), &[400]),
        text(
            "missing c= (and the m-lines)",
            base[..base.find("m=audio").unwrap()].to_owned(),
            &[400],
        ),
    ];
    // Hundreds of m-lines, and hundreds of rids.
    let mut many = base.clone();
    for i in 2..400 {
        many.push_str(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"
        ));
    }
    cases.push(Case {
        name: "hundreds of m-lines",
        body: many.into_bytes(),
        allowed: &[400, 413, 422],
    });
    let mut rids = base.replace("a=rtcp-rsize\r\n", "");
    for i in 0..300 {
        rids.push_str(&format!("a=rid:r{i} send\r\n"));
    }
    cases.push(Case {
        name: "hundreds of rids",
        body: rids.into_bytes(),
        allowed: &[201, 400, 422],
    });
    let mut latin1 = base.clone().into_bytes();
    let at = latin1.windows(4).position(|w| w == b"s=-\r").unwrap() + 2;
    latin1.splice(at..at + 1, [0xe9, 0xff, 0xfe]);
    cases.push(Case {
        name: "non-UTF-8 bytes",
        body: latin1,
        allowed: &[400],
    });
    cases
}

/// A 3 MiB one-line offer: 413 from its headers alone, before any of it is
/// read (raw TCP: a client still writing would see the connection close).
fn multi_megabyte_line_is_413_before_it_is_read(server: &ServerProc) {
    use std::io::{Read, Write};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST /whip/huge HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\nv=0\r\na=xxxx",
        3 << 20
    )
    .expect("write");
    let mut response = vec![0u8; 4096];
    let n = stream.read(&mut response).expect("a response");
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
}

#[test]
fn malformed_offers_get_4xx_and_leave_nothing_behind() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (s, _, b) = post_bytes(&server.base, "/whip/ok", base_offer().as_bytes());
    assert_eq!(s, 201, "the base offer is accepted: {b}");
    let mut report = Vec::new();
    let mut wrong = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let room = format!("/whip/bad{i}");
        let (s, h, b) = post_bytes(&server.base, &room, &case.body);
        let detail: String = b.chars().take(160).collect();
        report.push(format!(
            "{:>3} {}: {}",
            s,
            case.name,
            detail.replace('\n', " ")
        ));
        if !case.allowed.contains(&s) {
            wrong.push(format!(
                "{}: got {s}, allowed {:?}",
                case.name, case.allowed
            ));
        }
        if s == 201 {
            // An answer never echoes an extension id outside RFC 8285's 1..=255
            // (15 is legal in the two-byte form our answers allow).
            for line in b.lines().filter(|l| l.starts_with("a=extmap:")) {
                let id: u32 = line["a=extmap:".len()..]
                    .split([' ', '/'])
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if !(1..=255).contains(&id) {
                    wrong.push(format!("{}: the answer has {line}", case.name));
                }
            }
            let location = header(&h, "location").expect("location").to_owned();
            let (s, _, _) = request(&server.base, "DELETE", &location, &[], "");
            assert_eq!(s, 200);
        } else {
            assert_eq!(
                header(&h, "content-type"),
                Some("application/problem+json"),
                "{}: a problem document",
                case.name
            );
        }
        stats_answer(&server);
    }
    eprintln!("{}", report.join("\n"));
    assert!(wrong.is_empty(), "{wrong:#?}");
    multi_megabyte_line_is_413_before_it_is_read(&server);
    let stats = server.stats();
    assert_eq!(
        stats["sessions"], 1,
        "only the good offer's session: {stats}"
    );
    assert_eq!(stats["rooms"].as_array().map(Vec::len), Some(1), "{stats}");
}

const FRAG: &str = "application/trickle-ice-sdpfrag";

fn create(server: &ServerProc, room: &str) -> String {
    let (s, h, b) = post_bytes(
        &server.base,
        &format!("/whip/{room}"),
        base_offer().as_bytes(),
    );
    assert_eq!(s, 201, "{b}");
    header(&h, "location").expect("location").to_owned()
}

#[test]
fn ice_restart_fragments_with_bad_credentials_get_400_and_keep_the_session() {
    let server = ServerProc::start(&["--shards", "1"]);
    let path = create(&server, "restart");
    for frag in [
        "a=ice-ufrag:abc\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n".to_owned(),
        "a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n".to_owned(),
        format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
            "u".repeat(300)
        ),
        "a=ice-ufrag:ab\0d\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n".to_owned(),
    ] {
        let (s, _, b) = request(
            &server.base,
            "PATCH",
            &path,
            &[("Content-Type", FRAG), ("If-Match", "*")],
            &frag,
        );
        assert_eq!(s, 400, "{frag:?}: {b}");
    }
    let (s, _, _) = request(&server.base, "DELETE", &path, &[], "");
    assert_eq!(s, 200, "the session survived every refused PATCH");
}

/// PATCHes (trickle and ICE restart) racing a DELETE of the same session
/// from several threads: every answer is one the spec names, the DELETE
/// wins exactly once, and nothing is left behind. Bounded: 20 rounds.
#[test]
fn patch_racing_delete_never_leaves_a_session_or_a_5xx() {
    let server = ServerProc::start(&["--shards", "1"]);
    let base: Arc<str> = server.base.clone().into();
    for round in 0..20 {
        let path: Arc<str> = create(&server, &format!("race{round}")).into();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (base, path) = (base.clone(), path.clone());
                std::thread::spawn(move || {
                    if t == 0 {
                        let (s, _, _) = request(&base, "DELETE", &path, &[], "");
                        vec![("DELETE", s)]
                    } else {
                        (0..5)
                            .map(|i| {
                                let body = if (t + i) % 2 == 0 {
                                    "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n"
                                        .to_owned()
                                } else {
                                    format!(
                                        "a=ice-ufrag:R{t}x{i}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
                                    )
                                };
                                let (s, _, _) = request(
                                    &base,
                                    "PATCH",
                                    &path,
                                    &[("Content-Type", FRAG), ("If-Match", "*")],
                                    &body,
                                );
                                ("PATCH", s)
                            })
                            .collect()
                    }
                })
            })
            .collect();
        for thread in threads {
            for (method, status) in thread.join().expect("no panic in the client") {
                let ok = match method {
                    "DELETE" => status == 200,
                    _ => matches!(status, 200 | 204 | 404),
                };
                assert!(ok, "round {round}: {method} answered {status}");
            }
        }
        let (s, _, _) = request(&base, "DELETE", &path, &[], "");
        assert_eq!(s, 404, "DELETE twice: 404");
    }
    let stats = server.stats();
    assert_eq!(stats["sessions"], 0, "{stats}");
    assert_eq!(stats["rooms"].as_array().map(Vec::len), Some(0), "{stats}");
}

/// Session URLs carry 128 random bits: guesses (near misses of a real id,
/// random ids, ids of the wrong shape) find nothing, and the real session
/// is untouched.
#[test]
fn guessed_session_urls_are_404_and_harmless() {
    let server = ServerProc::start(&["--shards", "1"]);
    let path = create(&server, "secret");
    let id = path.trim_start_matches("/session/").to_owned();
    assert_eq!(id.len(), 32, "128-bit ids in hex: {id}");
    let mut guesses: Vec<String> = Vec::new();
    // Every single-hex-digit change of the real id.
    for at in 0..id.len() {
        let mut g: Vec<u8> = id.clone().into_bytes();
        g[at] = if g[at] == b'0' { b'1' } else { b'0' };
        guesses.push(String::from_utf8(g).unwrap());
    }
    guesses.extend([
        "0".repeat(32),
        "f".repeat(32),
        format!("{id}0"),
        id[..31].to_owned(),
        format!("{id}/../{id}"),
        format!("{}%00", id),
        "%2e%2e".to_owned(),
        "x".repeat(5000),
    ]);
    for guess in &guesses {
        let url = format!("/session/{guess}");
        let (s, _, _) = request(&server.base, "DELETE", &url, &[], "");
        assert_eq!(s, 404, "DELETE {guess}");
        let (s, _, _) = request(
            &server.base,
            "PATCH",
            &url,
            &[("Content-Type", FRAG), ("If-Match", "*")],
            "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n",
        );
        assert!(matches!(s, 404 | 405 | 414 | 431), "PATCH {guess}: {s}");
    }
    assert_eq!(
        server.stats()["sessions"],
        1,
        "the real session is untouched"
    );
    let (s, _, _) = request(&server.base, "DELETE", &path, &[], "");
    assert_eq!(s, 200);
}

// ---------------------------------------------------------------------------
// The media port.

/// A small deterministic PRNG (xorshift64*) for junk bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A STUN binding request (or, with `class_bits`, another class) naming
/// `username`, with PRIORITY and ICE-CONTROLLING when `priority`, and a
/// MESSAGE-INTEGRITY of junk when `integrity`.
fn stun(username: &str, priority: bool, integrity: bool, class_bits: u16) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut attr = |kind: u16, value: &[u8]| {
        attrs.extend_from_slice(&kind.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(value);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    };
    attr(0x0006, username.as_bytes());
    if priority {
        attr(0x0024, &0x6e00_1eff_u32.to_be_bytes());
        attr(0x802a, &[7; 8]);
        attr(0x0025, &[]);
    }
    if integrity {
        attr(0x0008, &[0x55; 20]);
    }
    let mut msg = Vec::with_capacity(20 + attrs.len());
    msg.extend_from_slice(&(0x0001 | class_bits).to_be_bytes());
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    msg.extend_from_slice(&[0xab; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

/// A DTLS 1.2 ClientHello record (epoch 0), as a browser's first flight.
fn dtls_client_hello() -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.push(0); // cookie
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]); // cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    body.extend_from_slice(&[0x00, 0x00]); // no extensions
    let len = body.len() as u32;
    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&[0, 0]); // message_seq
    handshake.extend_from_slice(&[0, 0, 0]); // fragment_offset
    handshake.extend_from_slice(&len.to_be_bytes()[1..]); // fragment_length
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Every class of junk a test can put on the media port, built once.
/// `pending_ufrag` names a real session that has not connected.
///
/// The RTCP classes go out in the clear: from an unvalidated address they are
/// dropped at the demux; from a validated one str0m's SRTCP authentication
/// rejects them before any RTCP parser runs. They reach str0m's RTCP parser
/// only in [`overflowing_rtcp_reaches_str0ms_parser_and_is_refused`].
fn junk_classes(pending_ufrag: &str, rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let good = stun(&format!("{pending_ufrag}:Ch1x"), true, true, 0);
    let mut truncated = good.clone();
    truncated.truncate(30);
    let mut long_length = good.clone();
    long_length[2..4].copy_from_slice(&0x0400u16.to_be_bytes());
    let mut past_end = stun("nobody00:x", false, false, 0);
    past_end.extend_from_slice(&[0x00, 0x06, 0x01, 0x00, b'a']); // USERNAME of 256 bytes, 1 there
    let len = (past_end.len() - 20) as u16;
    past_end[2..4].copy_from_slice(&len.to_be_bytes());
    let mut bad_fingerprint = stun("nobody00:x", true, false, 0);
    bad_fingerprint.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4]);
    let len = (bad_fingerprint.len() - 20) as u16;
    bad_fingerprint[2..4].copy_from_slice(&len.to_be_bytes());
    let rtp = |first: u8, second: u8, tail: &[u8]| {
        let mut p = vec![
            first, second, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
        ];
        p.extend_from_slice(tail);
        p
    };
    vec![
        ("zero-length datagram", Vec::new()),
        ("one byte", vec![0]),
        ("random bytes", rng.bytes(700)),
        ("random small", rng.bytes(3)),
        ("random MTU", rng.bytes(1500)),
        ("64 KiB datagram", vec![0x80; 65_507]),
        ("truncated STUN", truncated),
        ("STUN length past the end", long_length),
        ("STUN attribute past the end", past_end),
        ("STUN with a bad FINGERPRINT", bad_fingerprint),
        (
            "STUN unknown ufrag",
            stun("unknownUfrag1234:Ch1x", true, true, 0),
        ),
        ("STUN bad MESSAGE-INTEGRITY for a real ufrag", good),
        (
            "STUN bad MESSAGE-INTEGRITY, no PRIORITY (the repair path)",
            stun(&format!("{pending_ufrag}:Ch1x"), false, true, 0),
        ),
        (
            "STUN binding indication",
            stun(&format!("{pending_ufrag}:Ch1x"), true, true, 0x0010),
        ),
        (
            "STUN binding success response",
            stun(&format!("{pending_ufrag}:Ch1x"), true, true, 0x0100),
        ),
        ("STUN no USERNAME", {
            let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            m.extend_from_slice(&[1; 12]);
            m
        }),
        ("DTLS ClientHello from nowhere", dtls_client_hello()),
        ("DTLS zero-length fragment", {
            let mut r = dtls_client_hello();
            r.truncate(13 + 12);
            r[11..13].copy_from_slice(&12u16.to_be_bytes());
            r[14..17].copy_from_slice(&[0, 0, 0]);
            r
        }),
        ("DTLS epoch-0 application data", {
            let mut r = vec![23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 8];
            r.extend_from_slice(&[9; 8]);
            r
        }),
        ("DTLS record length past the end", {
            let mut r = dtls_client_hello();
            r[11..13].copy_from_slice(&0xffffu16.to_be_bytes());
            r
        }),
        ("RTP with 15 CSRCs and no room", rtp(0x8f, 96, &[1, 2, 3])),
        (
            "RTP extension length past the end",
            rtp(0x90, 96, &[0xbe, 0xde, 0xff, 0xff, 1]),
        ),
        ("RTP padding larger than the payload", {
            let mut p = rtp(0xa0, 96, &[1, 2, 3]);
            p.push(0xff);
            p
        }),
        ("RTP header only", rtp(0x80, 96, &[])),
        ("RTP version 1", rtp(0x40, 96, &[0; 20])),
        (
            "unauthenticated SRTCP: length past the end",
            vec![0x80, 200, 0xff, 0xff, 0, 0, 0, 1],
        ),
        ("unauthenticated SRTCP: SR claiming 31 report blocks", {
            let mut p = vec![0x9f, 200, 0x00, 0x06, 0, 0, 0, 1];
            p.extend_from_slice(&[0; 20]);
            p
        }),
        ("unauthenticated SRTCP: NACK with a huge range", {
            let mut p = vec![0x81, 205, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2];
            p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            p
        }),
        (
            "unauthenticated SRTCP: TWCC with an overflowing status count",
            {
                let mut p = vec![0x8f, 205, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2];
                p.extend_from_slice(&[0, 1, 0xff, 0xff, 0, 0, 0, 0]);
                p
            },
        ),
        ("unauthenticated SRTCP: REMB with a length overflow", {
            let mut p = vec![0x8f, 206, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0];
            p.extend_from_slice(b"REMB");
            p.extend_from_slice(&[0xff, 0, 0, 0]);
            p
        }),
        (
            "unauthenticated SRTCP: BYE claiming 31 SSRCs",
            vec![0x9f, 203, 0x00, 0x01, 0, 0, 0, 1],
        ),
    ]
}

/// The sum of every drop reason (and receive errors) over the shards.
fn drops(s: &serde_json::Value) -> u64 {
    let reasons = [
        "drop_unknown_source",
        "drop_unknown_ufrag",
        "drop_invalid",
        "drop_queue_full",
        "net_recv_errors",
    ];
    s["shards"]
        .as_array()
        .map(|shards| {
            shards
                .iter()
                .flat_map(|x| reasons.iter().map(move |r| x[*r].as_u64().unwrap_or(0)))
                .sum()
        })
        .unwrap_or(0)
}

fn answer_ufrag(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("the answer has a=ice-ufrag")
        .trim()
        .to_owned()
}

/// Runs a publisher and a viewer in `room`, calls `during` while media
/// flows, and returns (publisher, viewer).
fn with_live_flow(
    base: &str,
    room: &str,
    options: ClientOptions,
    during: impl FnOnce(),
) -> (Client, Client) {
    let flags = Flags::default();
    let limit = Duration::from_secs(40);
    let publisher = spawn_client(base, room, ClientRole::Publish, options, &flags, limit);
    let viewer = spawn_client(
        base,
        room,
        ClientRole::Watch,
        ClientOptions::default(),
        &flags,
        limit,
    );
    assert!(
        flags.wait_connected(2, Duration::from_secs(10)),
        "the flow in {room} connects"
    );
    std::thread::sleep(Duration::from_millis(300));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    during();
    std::thread::sleep(Duration::from_millis(500));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    (publisher.join(), viewer.join())
}

fn assert_delivery(what: &str, publisher: &Client, viewer: &Client) {
    for kind in [Kind::Audio, Kind::Video] {
        let sent = publisher.sent(kind);
        let got = viewer.received(kind).unique_from(1);
        assert!(sent > 50, "{what} {kind:?}: {sent} sent");
        assert_eq!(viewer.received(kind).summary().corrupt, 0);
        assert!(
            got * 100 >= sent * 99,
            "{what} {kind:?}: {got} of {sent} arrived (need ≥ 99 %)"
        );
    }
}

/// Every junk class, from fresh sockets and from the validated address of a
/// connected publisher (through a relay whose upstream socket we share),
/// while a flow in another room keeps ≥ 99 % delivery. From fresh sockets
/// each datagram is dropped and counted; from the validated address it goes
/// to the publisher's peer, where str0m refuses it (the RTCP classes fail
/// SRTCP authentication, so no RTCP parser sees them) and nothing panics.
#[test]
fn media_port_junk_is_dropped_counted_and_harms_no_flow() {
    let server = ServerProc::start(&["--shards", "2"]);
    let (s, _, answer) = post_bytes(&server.base, "/whip/pending", base_offer().as_bytes());
    assert_eq!(s, 201);
    let pending_ufrag = answer_ufrag(&answer);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let classes = junk_classes(&pending_ufrag, &mut rng);

    // The victim: a publisher whose validated address we can send from.
    let upstream = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let inside = upstream.try_clone().expect("clone");
    let relay = Relay::start(server.udp, vec![upstream]);
    let victim_options = ClientOptions {
        via: Some(relay.front),
        ..ClientOptions::default()
    };
    let live_done = Arc::new(AtomicBool::new(false));
    let server_udp = server.udp;
    let before = drops(&server.stats());
    let mut fresh_sent = 0u64;
    let mut inside_sent = 0u64;
    let (victim_publisher, victim_viewer);
    let (live_publisher, live_viewer);
    {
        let base = server.base.clone();
        let done = live_done.clone();
        // The live flow in another room, on its own thread.
        let live = std::thread::spawn(move || {
            with_live_flow(&base, "live", ClientOptions::default(), || {
                // Bounded: the junk below ends within seconds.
                let deadline = Instant::now() + Duration::from_secs(30);
                while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        });
        (victim_publisher, victim_viewer) =
            with_live_flow(&server.base, "victim", victim_options, || {
                let sockets: Vec<UdpSocket> = (0..3)
                    .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
                    .collect();
                let deadline = Instant::now() + Duration::from_secs(3);
                for _ in 0..30 {
                    if Instant::now() > deadline {
                        break;
                    }
                    for (name, datagram) in &classes {
                        for socket in &sockets {
                            if socket.send_to(datagram, server_udp).is_ok() {
                                fresh_sent += 1;
                            }
                        }
                        // From the validated address too (not the datagram
                        // over the relay's 2048-byte buffer).
                        if !name.starts_with("64 KiB")
                            && inside.send_to(datagram, server_udp).is_ok()
                        {
                            inside_sent += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(60));
                }
            });
        live_done.store(true, Ordering::Relaxed);
        (live_publisher, live_viewer) = live.join().expect("the live flow ran");
    }
    drop(relay);
    eprintln!(
        "{} classes; {fresh_sent} junk datagrams from fresh sockets, {inside_sent} from a validated address",
        classes.len()
    );
    assert_delivery("live room", &live_publisher, &live_viewer);
    assert_delivery("victim room", &victim_publisher, &victim_viewer);
    // Every junk datagram from an unvalidated address was dropped and counted.
    assert!(
        server.wait_for(Duration::from_secs(5), |s| drops(s) - before >= fresh_sent),
        "≥ {fresh_sent} drops counted: {}",
        server.stats()
    );
    let stats = server.stats();
    eprintln!("after the junk: {stats}");
    stats_answer(&server);
    assert_eq!(
        stats["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["peer_panics"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        0
    );
    // The pending session was never taken over by the junk naming it.
    assert_eq!(stats["pending_sessions"], 1, "{stats}");
}

/// The RTCP junk classes as str0m's RTCP parser sees them once SRTCP has
/// decrypted a compound (`Rtcp::try_from`, which str0m runs on each
/// sub-packet): no socket, no keys needed. Every overflowing claim is
/// refused or cut to what the bytes hold, and nothing panics.
#[test]
fn overflowing_rtcp_reaches_str0ms_parser_and_is_refused() {
    use str0m::rtp::rtcp::Rtcp;
    let classes = junk_classes("nobody00", &mut Rng(1));
    let rtcp: Vec<_> = classes
        .iter()
        .filter(|(name, _)| name.starts_with("unauthenticated SRTCP"))
        .collect();
    assert_eq!(rtcp.len(), 6, "every RTCP class is here");
    for (name, packet) in rtcp {
        let parsed = Rtcp::try_from(packet.as_slice());
        eprintln!("{name}: {parsed:?}");
        let what = name.trim_start_matches("unauthenticated SRTCP: ");
        let held = match (what, &parsed) {
            // Too short for what the header promises: refused.
            (
                "length past the end"
                | "TWCC with an overflowing status count"
                | "BYE claiming 31 SSRCs",
                Err(_),
            ) => true,
            // 31 report blocks claimed, none there: none read.
            ("SR claiming 31 report blocks", Ok(Rtcp::SenderReport(sr))) => sr.reports.is_empty(),
            // One NACK entry there (17 sequence numbers): one read.
            ("NACK with a huge range", Ok(Rtcp::Nack(nack))) => nack.reports.len() == 1,
            // Not taken for a REMB (no bitrate a publisher must obey).
            ("REMB with a length overflow", parsed) => !matches!(parsed, Ok(Rtcp::Remb(_))),
            _ => false,
        };
        assert!(held, "{name}: str0m's parser gave {parsed:?}");
    }
}

/// DTLS only from ICE-validated addresses (the FreeSWITCH CVE-2023-51443
/// class): a ClientHello from a fresh socket gets no answer and is counted,
/// even after that socket sent a binding request naming a real session's
/// ufrag with a bad MESSAGE-INTEGRITY; the session stays pending.
#[test]
fn dtls_from_an_address_ice_has_not_validated_gets_no_answer() {
    let server = ServerProc::start(&["--shards", "1"]);
    let (s, _, answer) = post_bytes(&server.base, "/whip/target", base_offer().as_bytes());
    assert_eq!(s, 201);
    let ufrag = answer_ufrag(&answer);
    let count = |name: &str| server.shard_sum(name);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let unknown_before = count("drop_unknown_source");
    socket
        .send_to(&dtls_client_hello(), server.udp)
        .expect("send");
    assert!(
        server.wait_for(Duration::from_secs(3), |_| count("drop_unknown_source")
            > unknown_before),
        "the ClientHello is counted as a drop"
    );
    // Now "validate" with a forged binding request, then try again.
    let ufrag_before = count("drop_unknown_ufrag");
    socket
        .send_to(&stun(&format!("{ufrag}:Ch1x"), true, true, 0), server.udp)
        .expect("send");
    assert!(
        server.wait_for(Duration::from_secs(3), |_| count("drop_unknown_ufrag")
            > ufrag_before),
        "the forged binding request is counted as a drop"
    );
    let unknown_before = count("drop_unknown_source");
    for _ in 0..3 {
        socket
            .send_to(&dtls_client_hello(), server.udp)
            .expect("send");
    }
    assert!(
        server.wait_for(Duration::from_secs(3), |_| count("drop_unknown_source")
            >= unknown_before + 3),
        "still not validated: {}",
        server.stats()
    );
    // Nothing ever came back to the socket (no binding response, no
    // HelloVerifyRequest or ServerHello).
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            panic!("{n} bytes came back from {from}");
        }
    }
    let stats = server.stats();
    assert_eq!(
        stats["pending_sessions"], 1,
        "the session is still pending: {stats}"
    );
    assert_eq!(
        stats["shards"][0]["peers"], 0,
        "no peer was placed: {stats}"
    );
}

// ---------------------------------------------------------------------------
// Tokens not covered in tests/auth_and_limits.rs.

const KEY: &[u8] = b"a test key of at least thirty-two bytes";

fn b64(json: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

/// An HS256 token for `claims` signed with `KEY`; with `header`, its header
/// segment is then replaced (the signature no longer covers it).
fn jwt(claims: serde_json::Value, header: Option<serde_json::Value>) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY),
    )
    .expect("encode");
    match header {
        None => token,
        Some(header) => {
            let rest = token.split_once('.').expect("three segments").1;
            format!("{}.{rest}", b64(&header))
        }
    }
}

/// Empty, oversized, `alg: none`, HS512-labelled, not-yet-valid, no-`exp`
/// and garbage tokens: 401 with a challenge, nothing created.
#[test]
fn hostile_tokens_are_401_and_create_nothing() {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    let server = ServerProc::start(&["--shards", "1", "--auth-key", &key]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"room": "r", "role": "publish", "exp": now + 600});
    let good = jwt(claims.clone(), None);
    let tokens = [
        ("empty", String::new()),
        ("oversized", "a".repeat(100_000)),
        ("just over the cap", format!("{good}{}", "A".repeat(8192))),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
                b64(&claims)
            ),
        ),
        (
            "alg None, signed anyway",
            jwt(claims.clone(), Some(serde_json::json!({"alg": "None"}))),
        ),
        (
            "alg HS512 with an HS256 signature",
            jwt(claims.clone(), Some(serde_json::json!({"alg": "HS512"}))),
        ),
        (
            "not yet valid",
            jwt(
                serde_json::json!({"room": "r", "role": "publish", "exp": now + 600, "nbf": now + 300}),
                None,
            ),
        ),
        (
            "no exp",
            jwt(serde_json::json!({"room": "r", "role": "publish"}), None),
        ),
        ("two dots only", "..".to_owned()),
        ("not base64", "!!!.@@@.###".to_owned()),
        ("NUL in the token", format!("{good}\u{0}")),
        ("the signature cut", good[..good.len() - 3].to_owned()),
    ];
    for (name, token) in &tokens {
        let value = format!("Bearer {token}");
        // A header value cannot carry NUL: that token goes in the query.
        let (s, h, b) = if token.contains('\0') {
            let mut escaped = String::new();
            for byte in token.bytes() {
                escaped.push_str(&format!("%{byte:02X}"));
            }
            request(
                &server.base,
                "POST",
                &format!("/whip/r?token={escaped}"),
                &[("Content-Type", "application/sdp")],
                &base_offer(),
            )
        } else {
            request(
                &server.base,
                "POST",
                "/whip/r",
                &[
                    ("Content-Type", "application/sdp"),
                    ("Authorization", &value),
                ],
                &base_offer(),
            )
        };
        assert!(
            s == 401 || (s == 431 && token.len() > 16_000),
            "{name}: {s} {b}"
        );
        if s == 401 {
            assert!(
                header(&h, "www-authenticate").is_some_and(|c| c.starts_with("Bearer")),
                "{name}: a challenge"
            );
        }
    }
    let (s, _, b) = request(
        &server.base,
        "POST",
        "/whip/r",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &format!("Bearer {good}")),
        ],
        &base_offer(),
    );
    assert_eq!(s, 201, "the good token works: {b}");
    let stats = server.stats();
    assert_eq!(stats["sessions"], 1, "{stats}");
    assert!(
        stats["signaling"]["auth_refused"].as_u64() >= Some(10),
        "{stats}"
    );
}

/// Slowloris on headers, idle keep-alive, and too many connections: a
/// client that never finishes its request headers (however it drips them)
/// or never sends any is disconnected after `--header-timeout`; past
/// `--max-connections`, a new connection is closed at once. Both are
/// counted, and afterwards the server answers normally.
#[test]
fn slow_headers_idle_connections_and_a_connection_flood_are_cut_off() {
    use std::io::Write;
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--header-timeout",
        "1s",
        "--max-connections",
        "16",
    ]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let connect = || {
        let stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
    };
    // 10 idle connections and 6 that send headers but never finish them.
    let mut idle: Vec<_> = (0..10).map(|_| connect()).collect();
    let mut dripping: Vec<_> = (0..6)
        .map(|i| {
            let mut s = connect();
            write!(s, "POST /whip/drip{i} HTTP/1.1\r\nHost: {addr}\r\n").expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The 17th is over the cap: closed without an answer.
    let mut extra = connect();
    let _ = write!(extra, "GET /v1/stats HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert!(closed_by_server(&mut extra), "a connection past the cap");
    // Drip a header line now and then: it does not extend the deadline.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(250));
        for s in &mut dripping {
            let _ = s.write_all(b"X-Drip: a\r\n");
        }
    }
    for (i, s) in idle.iter_mut().chain(dripping.iter_mut()).enumerate() {
        assert!(closed_by_server(s), "connection {i} was left open");
    }
    let stats = server.stats();
    let signaling = &stats["signaling"];
    assert!(
        signaling["connections_refused"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(signaling["header_timeouts"].as_u64() >= Some(16), "{stats}");
    assert_eq!(stats["sessions"], 0, "{stats}");
    let (s, _, _) = post_bytes(&server.base, "/whip/fast", base_offer().as_bytes());
    assert_eq!(s, 201, "a normal POST still works");
}

/// Slowloris: a body that trickles in more slowly than `--body-timeout`
/// gets 408 and the connection is closed; several at once hold nothing
/// (the server keeps answering, no session is made).
#[test]
fn slow_bodies_get_408_and_their_connection_closed() {
    use std::io::{Read, Write};
    let server = ServerProc::start(&["--shards", "1", "--body-timeout", "1s"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow: Vec<std::net::TcpStream> = (0..8)
        .map(|i| {
            let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            write!(
                stream,
                "POST /whip/slow{i} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\n\
                 Content-Length: 2000\r\n\r\nv=0\r\n"
            )
            .expect("write");
            stream
        })
        .collect();
    // A drip now and then, never the whole body.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        for stream in &mut slow {
            let _ = stream.write_all(b"a=x\r\n");
        }
        stats_answer(&server);
    }
    for stream in &mut slow {
        let mut response = Vec::new();
        // The server closes the connection after the 408: read to the end.
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("did not arrive within 1000 ms"), "{text}");
    }
    let stats = server.stats();
    assert_eq!(stats["sessions"], 0, "{stats}");
    let (s, _, _) = post_bytes(&server.base, "/whip/fast", base_offer().as_bytes());
    assert_eq!(s, 201, "a normal POST still works");
}
