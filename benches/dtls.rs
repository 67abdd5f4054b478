//! `dtls`: one whole DTLS 1.2 handshake in memory, both ends in this
//! thread (so the figure is the CPU of a client and a server together):
//! str0m's default (dimpl) against the OpenSSL provider uringcast runs, with
//! ECDSA P-256 on both ends, and with an RSA-2048 client (GStreamer's kind)
//! that only the OpenSSL provider accepts. Certificates are made once.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use str0m::crypto::dtls::{DtlsCert, DtlsProvider};
use uringcast::dtls::loopback::handshake;
use uringcast::dtls::{KeyType, OpensslDtls, certificate};

fn connect(client: (&dyn DtlsProvider, &DtlsCert), server: (&dyn DtlsProvider, &DtlsCert)) {
    let (c, s) = handshake(client, server).expect("DTLS instances");
    assert!(c.seen.connected && s.seen.connected, "{:?}", s.seen.error);
    black_box((c, s));
}

fn bench(c: &mut Criterion) {
    let ec_a = certificate(KeyType::EcdsaP256).expect("cert");
    let ec_b = certificate(KeyType::EcdsaP256).expect("cert");
    let rsa = certificate(KeyType::Rsa2048).expect("cert");
    let ours = OpensslDtls::new();
    let dimpl = str0m::crypto::from_feature_flags().dtls_provider;
    let mut group = c.benchmark_group("dtls_handshake");
    group.sample_size(30);
    group.bench_function("dimpl_ecdsa_both_ends", |b| {
        b.iter(|| connect((dimpl, &ec_a), (dimpl, &ec_b)))
    });
    group.bench_function("openssl_ecdsa_both_ends", |b| {
        b.iter(|| connect((&ours, &ec_a), (&ours, &ec_b)))
    });
    group.bench_function("openssl_rsa_client_ecdsa_server", |b| {
        b.iter(|| connect((&ours, &rsa), (&ours, &ec_b)))
    });
    group.bench_function("dimpl_client_openssl_server", |b| {
        b.iter(|| connect((dimpl, &ec_a), (&ours, &ec_b)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
