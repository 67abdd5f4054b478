//! `demux`: the shard's routing lookups ([`uringcast::shard::demux::Routes`])
//! at 10 / 1,000 / 10,000 peers — a known 4-tuple (every media datagram), an
//! unknown one, and the first STUN of a new address (ufrag peek + lookup) —
//! and the full cost of refusing one junk datagram (unknown address, not a
//! binding request).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
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
            routes.pin(addr(i), i);
            routes.name(ufrag(i), i);
        }
        let known = addr(peers / 2);
        let unknown = SocketAddr::from(([192, 0, 2, 1], 9));
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

criterion_group!(benches, demux);
criterion_main!(benches);
