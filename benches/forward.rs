//! `forward`: the sfu core alone, no sockets — one publisher's SRTP datagram
//! in, decrypted by its server peer, written to N viewer peers and encrypted
//! for each. Reported per egress packet (throughput = N elements). Runs on
//! the SRTP profile str0m negotiates between str0m peers (AEAD_AES_256_GCM);
//! the `srtp` group compares the profiles' ciphers alone.

use std::time::{Duration, Instant};

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uringcast::sfu::recovery::START_HOLD;
use uringcast::sfu::sim::{World, connected_world};

/// Payload bytes of one video packet (a 1200-byte datagram after headers and tag).
const PAYLOAD: usize = 1100;
/// Virtual time between two publisher packets (~1000 packets/s).
const STEP: Duration = Duration::from_millis(1);
/// Packets between two untimed deliveries of consent checks and feedback.
const CHUNK: u64 = 200;

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(20);
    for viewers in [1usize, 10, 100] {
        let mut world = started_world(viewers);
        group.throughput(Throughput::Elements(viewers as u64));
        // Worst case: every packet alone in its loop turn.
        group.bench_function(BenchmarkId::new("1_packet_per_turn", viewers), |b| {
            b.iter_custom(|iters| run(&mut world, iters, viewers, 1))
        });
        // A video frame at 1.5 Mbit/s (6 packets) arriving in one turn.
        group.bench_function(BenchmarkId::new("6_packets_per_turn", viewers), |b| {
            b.iter_custom(|iters| run(&mut world, iters, viewers, 6))
        });
    }
    group.finish();
}

/// A connected world whose video stream has started: the server holds a
/// new stream's first packets for `START_HOLD` (see `sfu::recovery`), so
/// they are sent, untimed, before anything is measured.
fn started_world(viewers: usize) -> World {
    let mut world = connected_world(viewers);
    let warm = START_HOLD.as_millis() as u64 + 20;
    for _ in 0..warm {
        let datagram = world.publisher_datagram(PAYLOAD, STEP);
        world.ingest(&datagram);
    }
    world.pump();
    world
}

/// Feeds `iters` publisher datagrams, `burst` per loop turn, timing only the
/// server's work.
fn run(world: &mut World, iters: u64, viewers: usize, burst: usize) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let datagrams: Vec<Vec<u8>> = (0..n)
            .map(|_| world.publisher_datagram(PAYLOAD, STEP))
            .collect();
        let start = Instant::now();
        let mut sent = 0;
        for turn in datagrams.chunks(burst) {
            sent += world.ingest_burst(turn);
        }
        timed += start.elapsed();
        assert!(
            sent >= (n as usize - 1) * viewers,
            "every viewer got every packet ({sent} for {n} × {viewers}); publisher closed: {:?}, viewer 0 closed: {:?}, seq {}",
            world.publisher.1.closed(),
            world.viewers[0].1.closed(),
            world.next_seq
        );
        // Untimed: consent checks and feedback, so peers stay alive.
        world.pump();
        left -= n;
    }
    timed
}

/// The SRTP profiles' cost alone on a 1200-byte packet, through str0m's
/// crypto provider (aws-lc-rs): AES-CM + HMAC-SHA1-80 against the AEADs.
fn srtp(c: &mut Criterion) {
    let provider = str0m::crypto::from_feature_flags();
    let srtp = provider.srtp_provider;
    let hmac = provider.sha1_hmac_provider;
    let (header, payload) = ([0x80u8; 12], [0x5au8; 1188]);
    let mut output = [0u8; 1300];
    let mut group = c.benchmark_group("srtp_protect_1200B");
    group.throughput(Throughput::Elements(1));
    let mut cm = srtp.aes_128_cm_sha1_80().create_cipher([1; 16], true);
    group.bench_function("aes_128_cm_hmac_sha1_80", |b| {
        b.iter(|| {
            cm.encrypt(&[2; 16], black_box(&payload), &mut output[..1188])
                .unwrap();
            hmac.sha1_hmac(&[3; 20], &[&header, &output[..1188], &[0, 0, 0, 1]])
        })
    });
    let mut gcm128 = srtp.aead_aes_128_gcm().create_cipher([1; 16], true);
    group.bench_function("aead_aes_128_gcm", |b| {
        b.iter(|| {
            gcm128
                .encrypt(&[2; 12], &header, black_box(&payload), &mut output[..1204])
                .unwrap()
        })
    });
    let mut gcm256 = srtp.aead_aes_256_gcm().create_cipher([1; 32], true);
    group.bench_function("aead_aes_256_gcm", |b| {
        b.iter(|| {
            gcm256
                .encrypt(&[2; 12], &header, black_box(&payload), &mut output[..1204])
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, forward, srtp);
criterion_main!(benches);
