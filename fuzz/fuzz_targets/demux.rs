//! The shard demux fed an arbitrary script: one or two socket-free shards
//! (`uringcast::shard::sim::ShardWorld`: `ShardState`s, their queues and a
//! directory, as the server wires them) and real str0m clients on a
//! simulated network. Steps POST offers, DELETE sessions, move time, send
//! arbitrary datagrams from arbitrary addresses to either shard, replay a
//! client's last STUN/DTLS/RTP/RTCP from another address (changed or not),
//! rebind a client's address (NAT), silence clients, publish media, and
//! PATCH sessions (trickle, or an ICE restart that renames the peer).
//!
//! After every step `ShardWorld::check` must hold: each shard's tables agree
//! with each other (sessions, ufrags, pinned addresses, timers, rooms), with
//! the directory's placements and ufrag index, and with the network (an address is pinned
//! only if a valid binding request came from it); every datagram is counted
//! exactly once (given to a peer, handed off, or one drop counter); no shard
//! message was lost. At the end every client goes silent and every timeout
//! runs out: no session, route, timer or room may be left anywhere.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use uringcast::directory::Limits;
use uringcast::sfu::Role;
use uringcast::shard::sim::{KINDS, ShardWorld};

#[derive(Debug, Arbitrary)]
enum Step {
    /// POST an offer for room `room % 3` from address `addr`.
    Post {
        room: u8,
        publisher: bool,
        addr: u8,
    },
    /// Move time on by `ms % 20000` milliseconds.
    Advance {
        ms: u16,
    },
    /// Arbitrary bytes from address `from` to shard `shard`.
    Junk {
        from: u8,
        shard: u8,
        bytes: Vec<u8>,
    },
    /// A client's last datagram of one kind, again, from `from`.
    Replay {
        client: u8,
        kind: u8,
        from: u8,
        shard: Option<u8>,
        flip: Option<(u16, u8)>,
    },
    /// The NAT moves a client to `addr`.
    Rebind {
        client: u8,
        addr: u8,
    },
    /// A client vanishes without a DELETE.
    Silence {
        client: u8,
    },
    Delete {
        client: u8,
    },
    /// The signaling side's sweep of pending sessions.
    Expire,
    /// A connected publisher sends a VP8 packet.
    Publish {
        client: u8,
        len: u8,
    },
    /// A PATCH: an ICE restart (new client credentials from `seed`; the
    /// client is not told) or a trickled host candidate on `port`.
    Patch {
        client: u8,
        restart: bool,
        seed: u16,
        port: u16,
    },
}

#[derive(Debug, Arbitrary)]
struct Script {
    two_shards: bool,
    steps: Vec<Step>,
}

/// Every POST builds two str0m `Rtc`s (client and server): the slow part.
const MAX_POSTS: usize = 6;
const MAX_STEPS: usize = 96;

/// Sixteen addresses, IPv4 and IPv6, even and odd ports (one per shard).
fn addr(i: u8) -> SocketAddr {
    let port = 4000 + u16::from(i % 4);
    let ip = match i / 4 % 4 {
        0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        1 => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        2 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    };
    SocketAddr::new(ip, port)
}

fuzz_target!(|script: Script| {
    let shards = if script.two_shards { 2 } else { 1 };
    let limits = Limits {
        max_sessions: 5,
        max_pending: 3,
        max_per_ip: 0,
        room_size: 2,
        ..Limits::default()
    };
    let mut world = ShardWorld::new(shards, limits, uringcast::sfu::sim::setup());
    let mut posts = 0;
    for step in script.steps.into_iter().take(MAX_STEPS) {
        let clients = world.clients.len().max(1);
        match step {
            Step::Post {
                room,
                publisher,
                addr: a,
            } => {
                if posts == MAX_POSTS {
                    continue;
                }
                posts += 1;
                let role = if publisher {
                    Role::Publisher
                } else {
                    Role::Viewer
                };
                // Refusals (room taken, no publisher, limits) are fine.
                let _ = world.post(&format!("room{}", room % 3), role, addr(a));
            }
            Step::Advance { ms } => {
                world.now += Duration::from_millis(u64::from(ms % 20_000));
            }
            Step::Junk { from, shard, bytes } => {
                world.deliver(usize::from(shard) % shards, addr(from), &bytes);
            }
            Step::Replay {
                client,
                kind,
                from,
                shard,
                flip,
            } => world.replay(
                usize::from(client) % clients,
                usize::from(kind) % KINDS,
                addr(from),
                shard.map(usize::from),
                flip.map(|(at, xor)| (usize::from(at), xor)),
            ),
            Step::Rebind { client, addr: a } => {
                world.rebind(usize::from(client) % clients, addr(a))
            }
            Step::Silence { client } => {
                if let Some(c) = world.clients.get_mut(usize::from(client) % clients) {
                    c.silent = true;
                }
            }
            Step::Delete { client } => {
                world.delete(usize::from(client) % clients);
            }
            Step::Expire => {
                world.expire();
            }
            Step::Publish { client, len } => {
                world.publish(usize::from(client) % clients, usize::from(len) * 4)
            }
            Step::Patch {
                client,
                restart,
                seed,
                port,
            } => {
                let fragment = if restart {
                    format!("a=ice-ufrag:fz{seed:04x}\r\na=ice-pwd:pw{seed:020}\r\n")
                } else {
                    format!("a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host\r\n")
                };
                // Refusals (a session gone, a candidate skipped) are fine.
                let _ = world.patch(usize::from(client) % clients, &fragment);
            }
        }
        world.run();
        if let Err(broken) = world.check() {
            panic!("after a step: {broken}");
        }
    }
    if std::env::var_os("URINGCAST_FUZZ_VERBOSE").is_some() {
        let connected = world.clients.iter().filter(|c| c.connected).count();
        let rtp: u64 = world.clients.iter().map(|c| c.rtp_received).sum();
        let stats: Vec<_> = world.shards.iter().map(|s| s.stats()).collect();
        eprintln!(
            "{shards} shard(s), {} clients, {connected} connected, {rtp} RTP received; {stats:?}",
            world.clients.len()
        );
    }
    world.wind_down();
    if let Err(left) = world.check_empty() {
        panic!("after every timeout: {left}");
    }
});
