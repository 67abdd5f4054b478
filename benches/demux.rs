//! `demux`: the shard's routing lookups ([`uringcast::shard::demux::Routes`])
//! at 10 / 1,000 / 10,000 peers — a known 4-tuple (every media datagram), an
//! unknown one, and the first STUN of a new address (ufrag peek + lookup) —
//! and the full cost of refusing one junk datagram (unknown address, not a
//! binding request).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use uringcast::sfu::PeerAddr;
use uringcast::shard::demux::Routes;
use uringcast::wire;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from((
        Ipv4Addr::from(0x0a00_0000 + i),
        40_000 + (i % 20_000) as u16,
    ))
}

fn ufrag(i: u32) -> String {
    format!("{i:0>16}")
}

/// A binding request whose USERNAME starts with `local`.
fn binding_request(local: &str) -> Vec<u8> {
    let username = format!("{local}:remote");
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&[0x00, 0x06]);
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    attrs.resize(attrs.len().div_ceil(4) * 4, 0);
    attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff]);
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    msg.extend_from_slice(&[9; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

fn demux(c: &mut Criterion) {
    let mut group = c.benchmark_group("demux");
    for peers in [10u32, 1_000, 10_000] {
        let mut routes: Routes<u32> = Routes::default();
        for i in 0..peers {
            routes.pin(addr(i).into(), i);
            routes.name(ufrag(i), i);
        }
        let known: PeerAddr = addr(peers / 2).into();
        let unknown: PeerAddr = SocketAddr::from(([192, 0, 2, 1], 9)).into();
        let stun = binding_request(&ufrag(peers / 3));
        let junk = vec![0x17u8; 1200];
        group.bench_function(BenchmarkId::new("known_4tuple", peers), |b| {
            b.iter(|| routes.route(black_box(&known)))
        });
        group.bench_function(BenchmarkId::new("unknown_4tuple", peers), |b| {
            b.iter(|| routes.route(black_box(&unknown)))
        });
        group.bench_function(BenchmarkId::new("first_stun_by_ufrag", peers), |b| {
            b.iter(|| {
                let ufrag = wire::binding_request_local_ufrag(black_box(&stun))?;
                routes.by_ufrag(ufrag)
            })
        });
        group.bench_function(BenchmarkId::new("junk_datagram_refused", peers), |b| {
            b.iter(|| {
                if routes.route(black_box(&unknown)).is_some() {
                    return false;
                }
                wire::binding_request_local_ufrag(black_box(&junk)).is_some()
            })
        });
    }
    group.finish();
}

/// The whole shard path for a datagram that is refused (`ShardState`:
/// counters, classify, tables), with one connected publisher and viewer on
/// the shard: junk from an unknown address, and a binding request naming a
/// ufrag nobody has (well-formed, so it reaches the directory's lock).
fn shard(c: &mut Criterion) {
    use std::time::Duration;
    use uringcast::directory::Limits;
    use uringcast::net::RecvMeta;
    use uringcast::sfu::Role;
    use uringcast::shard::sim::ShardWorld;

    let mut world = ShardWorld::new(1, Limits::default(), uringcast::sfu::sim::setup());
    let publisher: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    world.post("r", Role::Publisher, publisher).unwrap();
    world
        .post("r", Role::Viewer, "127.0.0.1:4002".parse().unwrap())
        .unwrap();
    for _ in 0..50 {
        world.advance(Duration::from_millis(20));
    }
    assert!(world.clients.iter().all(|c| c.connected), "clients connect");
    let now = world.now;
    let unknown = RecvMeta::udp(
        SocketAddr::from(([192, 0, 2, 1], 9)),
        world.setup.candidates[0],
    );
    let junk = vec![0x17u8; 1200];
    let stranger = binding_request(&"Q".repeat(16));
    let shard = &mut world.shards[0];
    let mut group = c.benchmark_group("shard");
    group.bench_function("junk_from_unknown_address", |b| {
        b.iter(|| shard.handle_datagram(now, black_box(unknown), black_box(&junk)))
    });
    group.bench_function("stun_for_unknown_ufrag", |b| {
        b.iter(|| shard.handle_datagram(now, black_box(unknown), black_box(&stranger)))
    });
    group.finish();
    let stats = shard.stats();
    assert!(stats.drop_unknown_source > 0 && stats.drop_unknown_ufrag > 0);
}

criterion_group!(benches, demux, shard);
criterion_main!(benches);
