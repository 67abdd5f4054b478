//! Floods, bounded in time and count: POSTs of offers that never complete
//! ICE (memory stays bounded, pending sessions are capped and expire), and a
//! UDP junk flood at the highest rate the test can make while legitimate
//! media keeps flowing.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Flags, ServerProc, publish_offer, spawn_pair};
use uringcast_load::client::payload::Kind;

/// The floods take every core this machine has: one at a time, so neither
/// measures the other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server's resident set in KiB (`VmRSS` in /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// POSTs offers from `threads` threads for `time` (each at most `cap`
/// requests); returns (201s, 503s, other statuses).
fn post_flood(base: &str, threads: usize, time: Duration, cap: usize) -> (u64, u64, u64) {
    let created = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let offer: Arc<str> = publish_offer().into();
    let deadline = Instant::now() + time;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (created, refused, other) = (created.clone(), refused.clone(), other.clone());
            let (base, offer) = (base.to_owned(), offer.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for i in 0..cap {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let url = format!("{base}/whip/flood-{t}-{i}-{}", random_suffix());
                    let status = agent
                        .post(&url)
                        .header("Content-Type", "application/sdp")
                        .send(&*offer)
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    match status {
                        201 => created.fetch_add(1, Ordering::Relaxed),
                        503 => refused.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("flood thread");
    }
    (
        created.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    )
}

/// Rooms of every flood round differ, so no 409 (one publisher per room).
fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() % 1_000_000
}

/// Two rounds of a 2-second POST flood (4 threads, ≤ 2000 requests each)
/// against `--max-pending 300 --connect-timeout 1s`. Per round: the cap
/// holds (503 beyond it), every pending session expires, and RSS stays
/// within a bound. The bound: 300 pending peers (a str0m `Rtc` with its DTLS
/// context and SDP state is well under 100 KiB) plus the allocator's arenas
/// for 4 concurrent requests and the HTTP stack: 96 MiB over the idle
/// server. The second round must not grow RSS by more than 32 MiB over the
/// first (a leak per session would: each round creates thousands).
#[test]
fn a_post_flood_that_never_connects_is_capped_expires_and_memory_stays_bounded() {
    let _one = exclusive();
    let server = ServerProc::start(&[
        "--shards",
        "2",
        "--max-pending",
        "300",
        "--connect-timeout",
        "1s",
    ]);
    // Warm up: one session made and expired, so lazy statics are in RSS.
    let (c, _, _) = post_flood(&server.base, 1, Duration::from_secs(5), 5);
    assert_eq!(c, 5);
    assert!(server.wait_for(Duration::from_secs(5), |s| s["sessions"] == 0));
    let pid = server.pid();
    let idle = rss_kib(pid);
    let mut after_rounds = Vec::new();
    let mut total_created = 0;
    for round in 0..2 {
        let (created, refused, other) = post_flood(&server.base, 4, Duration::from_secs(2), 2000);
        let peak = rss_kib(pid);
        let stats = server.stats();
        eprintln!(
            "round {round}: {created} created, {refused} refused (503), {other} other; \
             RSS idle {idle} KiB, after the flood {peak} KiB; pending {}",
            stats["pending_sessions"]
        );
        assert_eq!(other, 0, "only 201 and 503");
        assert!(created > 0);
        assert!(
            stats["pending_sessions"].as_u64() <= Some(300),
            "the cap holds: {stats}"
        );
        assert!(
            server.wait_for(Duration::from_secs(8), |s| s["pending_sessions"] == 0
                && s["sessions"] == 0
                && s["rooms"].as_array().is_some_and(Vec::is_empty)),
            "every pending session expired: {}",
            server.stats()
        );
        assert!(
            peak <= idle + 96 * 1024,
            "RSS {peak} KiB after the flood, {idle} KiB idle"
        );
        after_rounds.push(peak);
        total_created += created;
    }
    let expired = server.stats()["signaling"]["pending_expired"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(expired, total_created + 5, "every session made expired");
    assert!(
        after_rounds[1] <= after_rounds[0] + 32 * 1024,
        "no growth from round to round: {after_rounds:?} KiB"
    );
    eprintln!(
        "RSS: idle {idle} KiB, after round 1 {} KiB, after round 2 {} KiB, after expiry {} KiB",
        after_rounds[0],
        after_rounds[1],
        rss_kib(pid)
    );
}

/// A thread blasts junk at the media port from two sockets for 2 s (at
/// most 8 M datagrams) — random bytes, zero-length datagrams and binding requests naming
/// unknown ufrags — while a publisher → viewer flow runs: ≥ 99 % delivery,
/// and the junk is counted.
#[test]
fn a_udp_junk_flood_leaves_legitimate_media_flowing() {
    let _one = exclusive();
    let server = ServerProc::start(&["--shards", "2"]);
    let flags = Flags::default();
    let limit = Duration::from_secs(40);
    let (publisher, viewer) = spawn_pair(&server.base, "steady", &flags, limit);
    assert!(flags.wait_connected(2, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    flags.send.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));

    let udp = server.udp;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // One thread, two sockets (two 4-tuples, so both shards can get junk):
    // on this 2-core machine a second blasting thread would take the cores
    // the server and the clients need, and the test would measure the
    // scheduler rather than the server.
    let blaster = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let sockets: Vec<UdpSocket> = (0..2)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
                .collect();
            let mut stun = vec![0x00, 0x01, 0x00, 0x18, 0x21, 0x12, 0xa4, 0x42];
            stun.extend_from_slice(&[7; 12]);
            stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x14]);
            stun.extend_from_slice(b"unknownUfrag0000:abc");
            let random: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
            let junk: [&[u8]; 3] = [&random, &[], &stun];
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut sent = 0u64;
            for i in 0..8_000_000u64 {
                if i % 1024 == 0 && (Instant::now() >= deadline || stop.load(Ordering::Relaxed)) {
                    break;
                }
                let socket = &sockets[(i & 1) as usize];
                if socket.send_to(junk[(i % 3) as usize], udp).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    };
    let sent = blaster.join().expect("blaster");
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.send.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    let publisher = publisher.join();
    let viewer = viewer.join();
    let stats = server.stats();
    let counted: u64 = [
        "drop_unknown_source",
        "drop_unknown_ufrag",
        "net_recv_errors",
    ]
    .iter()
    .map(|c| server.shard_sum(c))
    .sum();
    eprintln!(
        "junk flood: {sent} datagrams in {seconds:.2} s = {:.0} datagrams/s sent; \
         {counted} counted as dropped (any rest was lost in the kernel's socket buffer)",
        sent as f64 / seconds
    );
    eprintln!(
        "publisher sent {} audio + {} video; server rtp_in {}, forwarded {}, send dropped {}; \
         viewer got {} audio + {} video",
        publisher.sent(Kind::Audio),
        publisher.sent(Kind::Video),
        server.shard_sum("rtp_in"),
        server.shard_sum("forwarded"),
        server.shard_sum("net_send_dropped"),
        viewer.received(Kind::Audio).unique_from(1),
        viewer.received(Kind::Video).unique_from(1),
    );
    assert!(sent > 10_000, "a real flood: {sent}");
    assert!(counted > 0, "{stats}");
    for kind in [Kind::Audio, Kind::Video] {
        let sent = publisher.sent(kind);
        let got = viewer.received(kind).unique_from(1);
        assert!(sent > 50, "{kind:?}: {sent} sent");
        assert!(
            got * 100 >= sent * 99,
            "{kind:?}: {got} of {sent} arrived through the flood (need ≥ 99 %)"
        );
    }
    let panics: u64 = server.shard_sum("peer_panics");
    assert_eq!(panics, 0);
}
