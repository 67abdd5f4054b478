//! `gso`: what UDP generic segmentation offload (`UDP_SEGMENT`, Linux ≥ 4.18)
//! would save on the kernel's send path, the largest cost of a forwarded
//! packet (BENCHMARKS.md, "Where the time goes"). No uringcast code runs
//! here: it measures the kernel alone, to size the next step before building
//! it into the datapaths.
//!
//! A video frame of 6 datagrams of 1,200 bytes to each of 10 viewers (one
//! socket each on 127.0.0.1), sent
//! - as 60 datagrams in one `sendmmsg` (what the mmsg backend does; io_uring
//!   submits the same 60 `sendmsg`s in one enter), or
//! - as 10 GSO sends in one `sendmmsg`, each 6 × 1,200 bytes with a
//!   `UDP_SEGMENT` control message of 1,200.
//!
//! Every iteration drains the 60 datagrams from the viewers' sockets, so the
//! receive side costs the same in both; time is per datagram.

use std::hint::black_box;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const VIEWERS: usize = 10;
const SEGMENTS: usize = 6;
const SEGMENT: usize = 1_200;
/// `SOL_UDP` / `UDP_SEGMENT` (linux/udp.h).
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

struct Setup {
    sender: UdpSocket,
    viewers: Vec<UdpSocket>,
    addrs: Vec<libc::sockaddr_in>,
    payload: Vec<u8>,
}

fn setup() -> Setup {
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let viewers: Vec<UdpSocket> = (0..VIEWERS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind viewer");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let addrs = viewers
        .iter()
        .map(|v| {
            let std::net::SocketAddr::V4(a) = v.local_addr().expect("addr") else {
                unreachable!("bound to 127.0.0.1")
            };
            libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            }
        })
        .collect();
    let payload = (0..SEGMENTS * SEGMENT).map(|i| i as u8).collect();
    Setup {
        sender,
        viewers,
        addrs,
        payload,
    }
}

/// Sends `hdrs` with one `sendmmsg`; panics unless all went.
fn send_all(fd: libc::c_int, hdrs: &mut [libc::mmsghdr]) {
    // SAFETY: every header points at live addresses, iovecs, payload and
    // control buffers owned by the caller for the duration of the call.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, 0) };
    assert_eq!(
        sent,
        hdrs.len() as libc::c_int,
        "sendmmsg: {}",
        std::io::Error::last_os_error()
    );
}

/// Reads every viewer's datagrams; panics unless 60 of 1,200 bytes arrived
/// (loopback delivers within the send call).
fn drain(viewers: &[UdpSocket]) {
    let mut buf = [0u8; 2048];
    let mut got = 0;
    for v in viewers {
        while let Ok(n) = v.recv(&mut buf) {
            assert_eq!(n, SEGMENT);
            got += 1;
        }
    }
    assert_eq!(got, VIEWERS * SEGMENTS, "datagrams lost");
}

fn kernel_send(c: &mut Criterion) {
    let mut s = setup();
    let fd = s.sender.as_raw_fd();
    let mut g = c.benchmark_group("kernel_send");
    g.throughput(Throughput::Elements((VIEWERS * SEGMENTS) as u64));

    // 60 datagrams, one message each.
    let base = s.payload.as_mut_ptr();
    let mut iovs: Vec<libc::iovec> = (0..VIEWERS * SEGMENTS)
        .map(|i| libc::iovec {
            // SAFETY: inside `payload` (SEGMENTS * SEGMENT bytes).
            iov_base: unsafe { base.add((i % SEGMENTS) * SEGMENT) }.cast(),
            iov_len: SEGMENT,
        })
        .collect();
    // SAFETY: all-zero mmsghdrs are valid (integers and null pointers).
    let mut plain: Vec<libc::mmsghdr> = (0..VIEWERS * SEGMENTS)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (i, h) in plain.iter_mut().enumerate() {
        h.msg_hdr.msg_name = (&raw mut s.addrs[i / SEGMENTS]).cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_hdr.msg_iov = &raw mut iovs[i];
        h.msg_hdr.msg_iovlen = 1;
    }
    g.bench_function("sendmmsg_60_datagrams", |b| {
        b.iter(|| {
            send_all(fd, black_box(&mut plain));
            drain(&s.viewers);
        })
    });

    // 10 GSO messages of 6 segments each.
    let mut whole = libc::iovec {
        iov_base: base.cast(),
        iov_len: SEGMENTS * SEGMENT,
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    let mut controls = vec![0u8; space * VIEWERS];
    // SAFETY: as above.
    let mut gso: Vec<libc::mmsghdr> = (0..VIEWERS)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (i, h) in gso.iter_mut().enumerate() {
        let m = &mut h.msg_hdr;
        m.msg_name = (&raw mut s.addrs[i]).cast();
        m.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        m.msg_iov = &raw mut whole;
        m.msg_iovlen = 1;
        m.msg_control = controls[i * space..].as_mut_ptr().cast();
        m.msg_controllen = space;
        // SAFETY: the control buffer is CMSG_SPACE(2) bytes, room for one
        // header and a u16; CMSG_FIRSTHDR/CMSG_DATA stay inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(m);
            (*cmsg).cmsg_level = SOL_UDP;
            (*cmsg).cmsg_type = UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            libc::CMSG_DATA(cmsg)
                .cast::<u16>()
                .write_unaligned(SEGMENT as u16);
        }
    }
    g.bench_function("sendmmsg_10_gso_sends_of_6", |b| {
        b.iter(|| {
            send_all(fd, black_box(&mut gso));
            drain(&s.viewers);
        })
    });
    g.finish();
}

criterion_group!(benches, kernel_send);
criterion_main!(benches);
