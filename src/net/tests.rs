//! Tests of both backends over real sockets on 127.0.0.1 / ::1 only. One body
//! per behaviour, run for every backend (and every io_uring ring mode).

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::uring::{RingMode, UringDatapath};
use super::*;

/// Upper bound for any wait in these tests.
const DEADLINE: Duration = Duration::from_secs(5);
const COUNT: usize = 1000;
const BUF: usize = 8 << 20;

/// A backend to test.
#[derive(Debug, Clone, Copy)]
enum Variant {
    Kind(IoKind),
    Ring(RingMode),
}

const VARIANTS: [Variant; 5] = [
    Variant::Kind(IoKind::Uring),
    Variant::Kind(IoKind::Mmsg),
    Variant::Ring(RingMode::DeferTaskrun),
    Variant::Ring(RingMode::CoopTaskrun),
    Variant::Ring(RingMode::Plain),
];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Binds `at` and builds the backend; returns it and its real address.
fn backend(variant: Variant, at: &str) -> (Box<dyn Datapath>, SocketAddr) {
    let socket = bind_reuseport(addr(at), BUF, BUF).expect("bind");
    let mut local = socket.local_addr().expect("local_addr");
    if local.ip().is_unspecified() {
        local.set_ip(if local.is_ipv6() {
            addr("[::1]:0").ip()
        } else {
            addr("127.0.0.1:0").ip()
        });
    }
    let dp: Box<dyn Datapath> = match variant {
        Variant::Kind(kind) => open(kind, socket).expect("open backend"),
        Variant::Ring(mode) => {
            let dp = UringDatapath::new(socket, &[mode]).expect("io_uring ring mode");
            assert_eq!(dp.mode(), mode);
            Box::new(dp)
        }
    };
    (dp, local)
}

/// A plain std socket with a big receive buffer.
fn plain(at: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr(at)).expect("bind plain socket");
    // Root can exceed rmem_max; if not, the default still works since the
    // tests drain concurrently.
    let _ = sys::setsockopt_int(
        s.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        BUF as libc::c_int,
    );
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    s
}

/// Datagram `i`: 1..=1500 bytes, index in the first two bytes (LE).
fn payload(i: usize) -> Vec<u8> {
    let size = 1 + (i * 151) % 1500;
    let mut v: Vec<u8> = (0..size).map(|k| (i as u8).wrapping_add(k as u8)).collect();
    if size >= 2 {
        v[..2].copy_from_slice(&(i as u16).to_le_bytes());
    }
    v
}

/// The index of an intact datagram from `payload`, else None.
fn index_of(p: &[u8]) -> Option<usize> {
    let i = match p.len() {
        0 => return None,
        1 => usize::from(p[0]),
        _ => usize::from(u16::from_le_bytes([p[0], p[1]])),
    };
    (payload(i) == p).then_some(i)
}

/// Turns until `want` datagrams arrived or the deadline passed.
fn collect(dp: &mut dyn Datapath, want: usize) -> Vec<(RecvMeta, Vec<u8>)> {
    let mut got = Vec::new();
    let end = Instant::now() + DEADLINE;
    while got.len() < want && Instant::now() < end {
        dp.turn(Some(Duration::from_millis(100)), &mut |meta, data| {
            got.push((meta, data.to_vec()))
        })
        .expect("turn");
    }
    got
}

/// Reads datagrams on `sock` in a thread until `want` or the deadline.
fn reader(sock: UdpSocket, want: usize) -> thread::JoinHandle<Vec<(SocketAddr, Vec<u8>)>> {
    thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let end = Instant::now() + DEADLINE;
        while got.len() < want && Instant::now() < end {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                got.push((from, buf[..n].to_vec()));
            }
        }
        got
    })
}

fn check_all_indices<'a>(datagrams: impl Iterator<Item = &'a [u8]>) {
    let mut seen = HashSet::new();
    for d in datagrams {
        let i = index_of(d).expect("datagram intact");
        assert!(seen.insert(i), "datagram {i} twice");
    }
    assert_eq!(seen.len(), COUNT, "every datagram arrives");
}

fn receives_intact(variant: Variant) {
    let (mut dp, local) = backend(variant, "127.0.0.1:0");
    let sender = plain("127.0.0.1:0");
    let mut got = Vec::new();
    for chunk in 0..10 {
        for i in chunk * 100..(chunk + 1) * 100 {
            sender.send_to(&payload(i), local).expect("send_to");
        }
        dp.turn(Some(Duration::ZERO), &mut |m, d| got.push((m, d.to_vec())))
            .expect("turn");
    }
    got.extend(collect(&mut *dp, COUNT - got.len()));
    check_all_indices(got.iter().map(|(_, d)| &d[..]));
    let from = sender.local_addr().expect("sender addr");
    for (meta, _) in &got {
        assert_eq!(*meta, RecvMeta::udp(from, local));
    }
    let stats = dp.stats();
    assert_eq!(stats.recv_datagrams, COUNT as u64);
    assert_eq!(stats.recv_errors, 0);
}

fn sends_arrive(variant: Variant, at: &str, to: &str) {
    let (mut dp, _) = backend(variant, at);
    let receiver = plain(to);
    let dest = receiver.local_addr().expect("receiver addr");
    let reading = reader(receiver, COUNT);
    for i in 0..COUNT {
        dp.queue_send(dest, &payload(i));
        if i % 100 == 99 {
            dp.turn(Some(Duration::ZERO), &mut |_, _| {}).expect("turn");
        }
    }
    let end = Instant::now() + DEADLINE;
    while dp.stats().sent_datagrams < COUNT as u64 && Instant::now() < end {
        dp.turn(Some(Duration::from_millis(10)), &mut |_, _| {})
            .expect("turn");
    }
    let got = reading.join().expect("reader thread");
    check_all_indices(got.iter().map(|(_, d)| &d[..]));
    let stats = dp.stats();
    assert_eq!(stats.sent_datagrams, COUNT as u64);
    assert_eq!(stats.send_dropped, 0);
    let bytes: usize = (0..COUNT).map(|i| payload(i).len()).sum();
    assert_eq!(stats.sent_bytes, bytes as u64);
}

fn idle_turn_times_out(variant: Variant) {
    let (mut dp, _) = backend(variant, "127.0.0.1:0");
    for _ in 0..2 {
        let start = Instant::now();
        let mut n = 0;
        dp.turn(Some(Duration::from_millis(50)), &mut |_, _| n += 1)
            .expect("turn");
        let took = start.elapsed();
        assert_eq!(n, 0);
        assert!(took >= Duration::from_millis(40), "returned after {took:?}");
        assert!(took < Duration::from_secs(2), "returned after {took:?}");
    }
    // Idle means idle: no re-arm churn of the multishot receive.
    let stats = dp.stats();
    assert_eq!(
        (stats.recv_rearms, stats.recv_errors, stats.wakeups),
        (0, 0, 0)
    );
}

fn waker_ends_turn(variant: Variant) {
    let (dp, _) = backend(variant, "127.0.0.1:0");
    let waker = dp.waker();
    let (tx, rx) = mpsc::channel();
    // The turn runs on another thread than the one that built the backend,
    // as in the server (and as SINGLE_ISSUER must allow).
    thread::spawn(move || {
        let mut dp = dp;
        let start = Instant::now();
        let res = dp.turn(None, &mut |_, _| {});
        let _ = tx.send((res.map(|()| start.elapsed()), dp.stats()));
        // Second round: a wake that comes before the turn still ends it.
        thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        let res = dp.turn(None, &mut |_, _| {});
        let _ = tx.send((res.map(|()| start.elapsed()), dp.stats()));
    });
    thread::sleep(Duration::from_millis(50));
    let w = waker.clone();
    thread::spawn(move || w.wake());
    let (took, stats) = rx.recv_timeout(DEADLINE).expect("turn(None) ended by wake");
    let took = took.expect("turn");
    assert!(took < Duration::from_secs(1), "wake took {took:?}");
    assert_eq!(stats.wakeups, 1);
    waker.wake();
    let (took, stats) = rx.recv_timeout(DEADLINE).expect("pending wake ends turn");
    assert!(took.expect("turn") < Duration::from_secs(1));
    assert_eq!(stats.wakeups, 2);
}

fn wildcard_fills_destination(variant: Variant) {
    let (mut dp, local) = backend(variant, "0.0.0.0:0");
    let sender = plain("127.0.0.1:0");
    sender.send_to(b"hello", local).expect("send_to");
    let got = collect(&mut *dp, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0.destination, local,
        "127.0.0.1:port from IP_PKTINFO"
    );
    assert_eq!(got[0].0.source, sender.local_addr().expect("addr"));
    assert_eq!(got[0].1, b"hello");
}

fn dual_stack(variant: Variant) {
    let Ok(probe) = UdpSocket::bind("[::1]:0") else {
        eprintln!("no ::1 on this host; dual-stack test not run");
        return;
    };
    drop(probe);
    let (mut dp, local6) = backend(variant, "[::]:0");
    let local4 = SocketAddr::new(addr("127.0.0.1:0").ip(), local6.port());
    let s4 = plain("127.0.0.1:0");
    let s6 = plain("[::1]:0");
    s4.send_to(b"four", local4).expect("send v4");
    let got = collect(&mut *dp, 1);
    s6.send_to(b"six", local6).expect("send v6");
    let got6 = collect(&mut *dp, 1);
    assert_eq!(got.len() + got6.len(), 2);
    // IPv4 peers show as plain IPv4 on a dual-stack socket.
    let v4 = RecvMeta::udp(s4.local_addr().expect("a"), local4);
    let v6 = RecvMeta::udp(s6.local_addr().expect("a"), local6);
    assert_eq!((got[0].0, &got[0].1[..]), (v4, &b"four"[..]));
    assert_eq!((got6[0].0, &got6[0].1[..]), (v6, &b"six"[..]));
    // Replies to both families leave the one AF_INET6 socket.
    dp.queue_send(v4.source, b"to-four");
    dp.queue_send(v6.source, b"to-six");
    dp.turn(Some(Duration::from_millis(10)), &mut |_, _| {})
        .expect("turn");
    let mut buf = [0u8; 64];
    let (n, from) = s4.recv_from(&mut buf).expect("reply v4");
    assert_eq!((&buf[..n], from), (&b"to-four"[..], local4));
    let (n, from) = s6.recv_from(&mut buf).expect("reply v6");
    assert_eq!((&buf[..n], from), (&b"to-six"[..], local6));
}

/// More sends than slots / queue between two turns, with datagrams arriving
/// meanwhile: nothing is lost on the receive side, sends are all accounted.
fn burst(variant: Variant) {
    const SENDS: usize = 6000;
    let (mut dp, local) = backend(variant, "127.0.0.1:0");
    let sender = plain("127.0.0.1:0");
    let receiver = plain("127.0.0.1:0");
    let dest = receiver.local_addr().expect("addr");
    let reading = reader(receiver, SENDS);
    dp.turn(Some(Duration::ZERO), &mut |_, _| {}).expect("arm");
    for i in 0..10 {
        sender.send_to(&payload(i), local).expect("send_to");
    }
    let data = [7u8; 1200];
    for _ in 0..SENDS {
        dp.queue_send(dest, &data);
    }
    let got = collect(&mut *dp, 10);
    let idx: Vec<usize> = got.iter().filter_map(|(_, d)| index_of(d)).collect();
    assert_eq!(idx, (0..10).collect::<Vec<_>>(), "arrival order kept");
    let end = Instant::now() + DEADLINE;
    let accounted = |s: NetStats| s.sent_datagrams + s.send_dropped;
    while accounted(dp.stats()) < SENDS as u64 && Instant::now() < end {
        dp.turn(Some(Duration::from_millis(10)), &mut |_, _| {})
            .expect("turn");
    }
    let stats = dp.stats();
    assert_eq!(accounted(stats), SENDS as u64, "{stats:?}");
    let received = reading.join().expect("reader").len();
    assert!(received > 0 && received as u64 <= stats.sent_datagrams);
    assert!(dp.stats().sent_datagrams > 0);
}

/// Oversized datagrams: not sent, not delivered, counted.
fn oversize(variant: Variant) {
    let (mut dp, local) = backend(variant, "127.0.0.1:0");
    let sender = plain("127.0.0.1:0");
    sender
        .send_to(&[1u8; MAX_DATAGRAM + 100], local)
        .expect("send");
    sender.send_to(b"ok", local).expect("send");
    let got = collect(&mut *dp, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"ok");
    assert_eq!(dp.stats().recv_errors, 1);
    dp.queue_send(sender.local_addr().expect("a"), &[0u8; MAX_DATAGRAM + 1]);
    assert_eq!(dp.stats().send_dropped, 1);
}

macro_rules! for_all_variants {
    ($($name:ident => $body:expr;)*) => {$(
        #[test]
        fn $name() {
            for v in VARIANTS {
                eprintln!("{}: {v:?}", stringify!($name));
                ($body)(v);
            }
        }
    )*};
}

for_all_variants! {
    receive_1000_intact => receives_intact;
    send_1000_arrive => |v| sends_arrive(v, "127.0.0.1:0", "127.0.0.1:0");
    send_1000_arrive_v6 => |v| {
        if UdpSocket::bind("[::1]:0").is_ok() {
            sends_arrive(v, "[::1]:0", "[::1]:0");
        }
    };
    idle_turn_sleeps_until_timeout => idle_turn_times_out;
    waker_ends_turn_from_other_thread => waker_ends_turn;
    wildcard_bind_reports_destination => wildcard_fills_destination;
    dual_stack_socket_serves_v4_and_v6 => dual_stack;
    send_burst_beyond_capacity => burst;
    oversized_datagrams_are_counted => oversize;
}

#[test]
fn reuseport_group_shares_port() {
    let first = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("first");
    let at = first.local_addr().expect("addr");
    let second = bind_reuseport(at, 0, 0).expect("second joins the group");
    assert_eq!(second.local_addr().expect("addr"), at);
    // The kernel spreads clients over the group by 4-tuple hash.
    let senders: Vec<UdpSocket> = (0..32).map(|_| plain("127.0.0.1:0")).collect();
    for s in &senders {
        s.send_to(b"x", at).expect("send_to");
    }
    let count = |sock: &UdpSocket| {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 8];
        (0..32)
            .take_while(|_| sock.recv_from(&mut buf).is_ok())
            .count()
    };
    let (a, b) = (count(&first), count(&second));
    assert_eq!(a + b, 32);
    assert!(a > 0 && b > 0, "both members receive: {a} + {b}");
    let third = bind_reuseport(addr("0.0.0.0:0"), 1 << 20, 1 << 20).expect("wildcard");
    let at = third.local_addr().expect("addr");
    bind_reuseport(at, 1 << 20, 1 << 20).expect("wildcard group");
}

#[test]
fn ephemeral_groups_never_merge() {
    // Many port-0 groups at once: each first member gets a port of its own.
    let socks: Vec<UdpSocket> = (0..200)
        .map(|_| bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind"))
        .collect();
    let ports: HashSet<u16> = socks
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect();
    assert_eq!(ports.len(), socks.len());
}

#[test]
fn uring_is_available_here() {
    let socket = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind");
    let dp = open(IoKind::Uring, socket)
        .unwrap_or_else(|e| panic!("io_uring must work on this kernel (Linux 6.x): {e}"));
    assert_eq!(dp.name(), "uring");
    let socket = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind");
    let dp = UringDatapath::new(socket, &RingMode::ALL).expect("uring");
    assert_eq!(
        dp.mode(),
        RingMode::DeferTaskrun,
        "best ring mode available"
    );
    let socket = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind");
    assert_eq!(open(IoKind::Auto, socket).expect("auto").name(), "uring");
}

#[test]
fn uring_drop_with_operations_in_flight_is_prompt() {
    let socket = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind");
    let mut dp = open(IoKind::Uring, socket).expect("uring");
    let receiver = plain("127.0.0.1:0");
    let dest = receiver.local_addr().expect("addr");
    for _ in 0..100 {
        dp.queue_send(dest, &[1u8; 1200]);
    }
    dp.turn(Some(Duration::ZERO), &mut |_, _| {}).expect("turn");
    for _ in 0..100 {
        dp.queue_send(dest, &[1u8; 1200]);
    }
    let start = Instant::now();
    drop(dp);
    assert!(start.elapsed() < Duration::from_secs(3));
    // Dropped on another thread than the ring's: leaks instead of hanging.
    let socket = bind_reuseport(addr("127.0.0.1:0"), 0, 0).expect("bind");
    let mut dp = open(IoKind::Uring, socket).expect("uring");
    dp.turn(Some(Duration::ZERO), &mut |_, _| {}).expect("turn");
    let start = Instant::now();
    thread::spawn(move || drop(dp)).join().expect("drop thread");
    assert!(start.elapsed() < Duration::from_secs(3));
}
