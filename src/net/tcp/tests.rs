//! The ICE-TCP edge over real loopback connections: frames split across
//! writes and several per write are delivered whole, each with the
//! connection's addresses and `proto: Tcp`; replies are framed onto the
//! right connection; a bad length or silence closes; the per-IP cap holds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Instant;

use str0m::net::Protocol;

use super::*;

type Seen = Arc<Mutex<Vec<(RecvMeta, Vec<u8>)>>>;

fn edge(limits: TcpLimits) -> (TcpEdge, SocketAddr, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let deliver: Deliver = Arc::new(move |meta, data| {
        sink.lock().unwrap().push((meta, data.to_vec()));
        true
    });
    (
        TcpEdge::start(listener, limits, deliver).unwrap(),
        addr,
        seen,
    )
}

fn wait_until(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn frames_are_delivered_whole_and_replies_framed_back() {
    let (edge, addr, seen) = edge(TcpLimits::default());
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // One frame split across two writes, then two frames in one write.
    client.write_all(&[0, 5, b'h', b'e']).unwrap();
    client.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client
        .write_all(&[b'l', b'l', b'o', 0, 1, b'!', 0, 2, b'o', b'k'])
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || seen
        .lock()
        .unwrap()
        .len()
        == 3));
    let got = seen.lock().unwrap().clone();
    let datas: Vec<&[u8]> = got.iter().map(|(_, d)| &d[..]).collect();
    assert_eq!(datas, [&b"hello"[..], b"!", b"ok"]);
    let meta = got[0].0;
    assert_eq!(meta.proto, Protocol::Tcp);
    assert_eq!(meta.source, client.local_addr().unwrap());
    assert_eq!(meta.destination, addr);

    assert!(edge.outbox.send(meta.source, b"reply".to_vec()));
    let mut framed = [0u8; 7];
    client.read_exact(&mut framed).unwrap();
    assert_eq!(&framed, b"\x00\x05reply");
    assert_eq!(edge.stats.frames_in.load(Ordering::Relaxed), 3);
    assert!(wait_until(Duration::from_secs(1), || edge
        .stats
        .frames_out
        .load(Ordering::Relaxed)
        == 1));
    // A reply for a connection that does not exist is dropped and counted.
    assert!(edge.outbox.send("127.0.0.1:9".parse().unwrap(), vec![1]));
    assert!(wait_until(Duration::from_secs(1), || edge
        .stats
        .dropped_out
        .load(Ordering::Relaxed)
        == 1));
}

#[test]
fn a_bad_length_or_silence_closes_the_connection() {
    let limits = TcpLimits {
        first_frame: Duration::from_millis(200),
        ..TcpLimits::default()
    };
    let (edge, addr, seen) = edge(limits);
    let mut zero = TcpStream::connect(addr).unwrap();
    zero.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    zero.write_all(&[0, 0]).unwrap();
    let mut oversize = TcpStream::connect(addr).unwrap();
    oversize
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    oversize.write_all(&[0x08, 0x01]).unwrap(); // 2049 bytes
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for stream in [&mut zero, &mut oversize, &mut silent] {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).unwrap_or(0),
            0,
            "closed by the server"
        );
    }
    assert_eq!(edge.stats.bad_frames.load(Ordering::Relaxed), 2);
    assert_eq!(edge.stats.timeouts.load(Ordering::Relaxed), 1);
    assert!(wait_until(Duration::from_secs(1), || edge
        .stats
        .open
        .load(Ordering::Relaxed)
        == 0));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn connections_from_one_ip_are_capped() {
    let limits = TcpLimits {
        per_ip: 2,
        ..TcpLimits::default()
    };
    let (edge, addr, _) = edge(limits);
    let kept: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(wait_until(Duration::from_secs(2), || edge
        .stats
        .accepted
        .load(Ordering::Relaxed)
        == 2));
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        third.read(&mut byte).unwrap_or(0),
        0,
        "the third is closed at once"
    );
    assert_eq!(edge.stats.refused.load(Ordering::Relaxed), 1);
    drop(kept);
}
