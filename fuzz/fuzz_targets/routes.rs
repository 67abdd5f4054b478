//! The shard's routing tables (`shard::demux::Routes`) driven by an arbitrary
//! sequence of operations from a handful of addresses, checked against a
//! plain model after every step: a local pin is never replaced by a route to
//! another shard, `unroute` removes only its own owner's route, `unname` only
//! its own key's name, and a ufrag that is not UTF-8 finds nothing. (The
//! datagram-level demux target needs a socket-free shard: see README.md.)
#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use uringcast::sfu::PeerAddr;
use uringcast::shard::demux::{Route, Routes};

#[derive(Debug, Arbitrary)]
enum Op {
    Pin { addr: u8, key: u8 },
    RouteToShard { addr: u8, owner: u8 },
    Unroute { addr: u8, owner: u8 },
    Forget { addr: u8 },
    Name { ufrag: Vec<u8>, key: u8 },
    Unname { ufrag: Vec<u8>, key: u8 },
    Lookup { addr: u8, ufrag: Vec<u8> },
}

/// A few IPv4 and IPv6 addresses and ports, over UDP and over TCP (the
/// same address on the two is two routes), so operations collide.
fn addr(i: u8) -> PeerAddr {
    let port = 5000 + u16::from(i % 4);
    let ip = match i / 4 % 4 {
        0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        1 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        2 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    };
    let addr = SocketAddr::new(ip, port);
    match i / 16 % 2 {
        0 => PeerAddr::udp(addr),
        _ => PeerAddr::tcp(addr),
    }
}

fn text(ufrag: &[u8]) -> String {
    String::from_utf8_lossy(ufrag).into_owned()
}

fuzz_target!(|ops: Vec<Op>| {
    let mut routes: Routes<u8> = Routes::default();
    let mut by_addr: HashMap<PeerAddr, Route<u8>> = HashMap::new();
    let mut by_ufrag: HashMap<String, u8> = HashMap::new();
    for op in ops {
        match op {
            Op::Pin { addr: a, key } => {
                routes.pin(addr(a), key);
                by_addr.insert(addr(a), Route::Local(key));
            }
            Op::RouteToShard { addr: a, owner } => {
                let owner = usize::from(owner);
                routes.route_to_shard(addr(a), owner);
                if !matches!(by_addr.get(&addr(a)), Some(Route::Local(_))) {
                    by_addr.insert(addr(a), Route::Remote(owner));
                }
            }
            Op::Unroute { addr: a, owner } => {
                let owner = usize::from(owner);
                routes.unroute(&addr(a), owner);
                if by_addr.get(&addr(a)) == Some(&Route::Remote(owner)) {
                    by_addr.remove(&addr(a));
                }
            }
            Op::Forget { addr: a } => {
                routes.forget(&addr(a));
                by_addr.remove(&addr(a));
            }
            Op::Name { ufrag, key } => {
                routes.name(text(&ufrag), key);
                by_ufrag.insert(text(&ufrag), key);
            }
            Op::Unname { ufrag, key } => {
                routes.unname(&text(&ufrag), key);
                if by_ufrag.get(&text(&ufrag)) == Some(&key) {
                    by_ufrag.remove(&text(&ufrag));
                }
            }
            Op::Lookup { addr: a, ufrag } => {
                let want = std::str::from_utf8(&ufrag)
                    .ok()
                    .and_then(|u| by_ufrag.get(u).copied());
                assert_eq!(routes.by_ufrag(&ufrag), want, "ufrag {ufrag:?}");
                assert_eq!(routes.route(&addr(a)), by_addr.get(&addr(a)).copied());
            }
        }
        for i in 0..32 {
            assert_eq!(routes.route(&addr(i)), by_addr.get(&addr(i)).copied());
        }
    }
});
