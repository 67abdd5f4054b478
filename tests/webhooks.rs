//! Webhooks (`--webhook-url`, `--webhook-key`) through the real binary and
//! a receiver of the test's own on loopback: a WHIP publisher and a
//! conference participant come and go, and the receiver gets room
//! started, participant joined, track published, participant left, track
//! unpublished and room finished, in order, each signed with HMAC-SHA256;
//! a receiver that fails its first answers gets them retried.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ServerProc, header, http, publish_offer, request};

/// One request the receiver got: its headers and body.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTP receiver that answers 500 to its first `fail_first` requests,
/// then 204.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, a, s) = (got.clone(), attempts.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let mut headers = Vec::new();
                let mut line = String::new();
                let mut length = 0;
                let _ = reader.read_line(&mut line); // request line
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(": ") {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.parse().unwrap_or(0);
                        }
                        headers.push((k.to_ascii_lowercase(), v.to_owned()));
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let attempt = {
                    let mut n = a.lock().expect("lock");
                    *n += 1;
                    *n
                };
                let status = if attempt <= fail_first {
                    "500 Internal Server Error"
                } else {
                    g.lock().expect("lock").push(Received {
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    "204 No Content"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        Self {
            url,
            got,
            attempts,
            stop,
        }
    }

    /// Waits (bounded) until `n` events arrived; the events.
    fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.got.lock().expect("lock").clone();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn event(r: &Received) -> serde_json::Value {
    serde_json::from_str(&r.body).expect("a JSON body")
}

#[test]
fn room_events_reach_the_webhook_signed_and_in_order() {
    const KEY: &str = "webhook-secret";
    let receiver = Receiver::start(2);
    let server = ServerProc::start(&["--webhook-url", &receiver.url, "--webhook-key", KEY]);

    // A WHIP publisher (a participant that publishes audio and video).
    let sdp = [("Content-Type", "application/sdp")];
    let (status, headers, _) =
        request(&server.base, "POST", "/whip/hooked", &sdp, &publish_offer());
    assert_eq!(status, 201);
    let whip = header(&headers, "location").expect("Location").to_owned();
    // A conference participant joins and leaves.
    let (status, _, body) = request(
        &server.base,
        "POST",
        "/v1/rooms/hooked/participants",
        &[("Content-Type", "application/json")],
        r#"{"id": "alice"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let joined: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let url = joined["url"]
        .as_str()
        .expect("the participant's URL")
        .to_owned();
    assert_eq!(request(&server.base, "DELETE", &url, &[], "").0, 200);
    // The publisher leaves: the room is empty.
    assert_eq!(request(&server.base, "DELETE", &whip, &[], "").0, 200);

    let expected = [
        "room_started",
        "participant_joined",
        "track_published",
        "track_published",
        "participant_joined",
        "participant_left",
        "track_unpublished",
        "track_unpublished",
        "participant_left",
        "room_finished",
    ];
    // Two failed answers first: retried after 250 and 500 ms.
    let got = receiver.wait_for(expected.len(), Duration::from_secs(15));
    let names: Vec<String> = got
        .iter()
        .map(|r| event(r)["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, expected, "{got:#?}");
    assert_eq!(*receiver.attempts.lock().expect("lock"), expected.len() + 2);
    for r in &got {
        let e = event(r);
        assert_eq!(e["room"], "hooked", "{e}");
        let signature = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-uringcast-signature")
            .map(|(_, v)| v.as_str());
        let signature = signature.expect("signed");
        let t = signature
            .split(',')
            .next()
            .and_then(|t| t.strip_prefix("t="))
            .expect("t=");
        let expected = uringcast::webhook::hmac_sha256_hex(
            KEY.as_bytes(),
            format!("{t}.{}", r.body).as_bytes(),
        );
        assert_eq!(
            signature,
            format!("t={t},v1={expected}"),
            "the signature verifies"
        );
    }
    assert_eq!(event(&got[4])["data"]["participant"]["id"], "alice");
    assert_eq!(
        event(&got[2])["data"]["track"]["kind"],
        "audio",
        "{}",
        got[2].body
    );

    let stats = server.stats();
    assert_eq!(stats["webhooks"]["sent"], expected.len() as u64, "{stats}");
    assert_eq!(stats["webhooks"]["failed"], 0);
    let (_, _, metrics) = http(&server.base, "GET", "/metrics", None, "");
    assert!(
        metrics.contains("uringcast_webhook_events_total{outcome=\"sent\"} 10"),
        "{metrics}"
    );
}

#[test]
fn a_webhook_that_never_answers_2xx_costs_nothing_but_its_events() {
    let receiver = Receiver::start(usize::MAX);
    let server = ServerProc::start(&["--webhook-url", &receiver.url]);
    let (status, _, _) = http(
        &server.base,
        "POST",
        "/v1/rooms/down/participants",
        None,
        "",
    );
    assert_eq!(status, 201, "signaling does not wait for the webhook");
    // room_started and participant_joined, each tried five times.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.stats()["webhooks"]["failed"] != 2 {
        assert!(Instant::now() < deadline, "{}", server.stats());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(*receiver.attempts.lock().expect("lock"), 10);
    assert!(receiver.got.lock().expect("lock").is_empty());
}
