//! `wire`: the packet peeks the demux runs before any state lookup — RFC 7983
//! classify, the STUN binding request's local ufrag, RTP and RTCP header
//! views — in ns per packet, on realistic packets and on junk.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use uringcast::wire::{self, RtpHeader};

/// A Chrome-like STUN binding request: USERNAME, ICE-CONTROLLING, PRIORITY,
/// USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT (values are placeholders:
/// the peek does not verify them).
fn binding_request() -> Vec<u8> {
    let username = b"Abcdefgh12345678:r3mote";
    let mut attrs = Vec::new();
    let mut attr = |kind: u16, value: &[u8]| {
        attrs.extend_from_slice(&kind.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(value);
        attrs.resize(attrs.len().div_ceil(4) * 4, 0);
    };
    attr(0x0006, username);
    attr(0x802a, &[7; 8]);
    attr(0x0024, &[0x6e, 0x7f, 0x1e, 0xff]);
    attr(0x0025, &[]);
    attr(0x0008, &[0xab; 20]);
    attr(0x8028, &[0xcd; 4]);
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    msg.extend_from_slice(&[9; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

/// An SRTP-sized RTP packet: header with a one-byte extension block, payload.
fn rtp_packet() -> Vec<u8> {
    let mut p = vec![
        0x90, 0x60, 0x12, 0x34, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef,
    ];
    p.extend_from_slice(&[
        0xbe, 0xde, 0x00, 0x02, 0x10, 0xff, 0x22, 0x01, 0x02, 0x00, 0x00, 0x00,
    ]);
    p.resize(1200, 0x5a);
    p
}

fn wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    let (stun, rtp) = (binding_request(), rtp_packet());
    let junk: Vec<u8> = (0..1200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        wire::binding_request_local_ufrag(&stun),
        Some(&b"Abcdefgh12345678"[..])
    );
    assert!(RtpHeader::parse(&rtp).is_ok());
    group.bench_function("classify_rtp", |b| {
        b.iter(|| wire::classify(black_box(&rtp)))
    });
    group.bench_function("stun_local_ufrag", |b| {
        b.iter(|| wire::binding_request_local_ufrag(black_box(&stun)))
    });
    group.bench_function("stun_local_ufrag_of_media", |b| {
        b.iter(|| wire::binding_request_local_ufrag(black_box(&rtp)))
    });
    group.bench_function("rtp_header", |b| {
        b.iter(|| RtpHeader::parse(black_box(&rtp)))
    });
    group.bench_function("junk_classify_and_ufrag", |b| {
        b.iter(|| {
            (
                wire::classify(black_box(&junk)),
                wire::binding_request_local_ufrag(black_box(&junk)),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
