//! Shared samples for the `wire` tests, and a property test that feeds every
//! parser the same pseudo-random datagrams.

use super::*;

/// RFC 5769 §2.1 Sample Request: Binding, USERNAME "evtj:h6vY", SOFTWARE,
/// PRIORITY, ICE-CONTROLLED, MESSAGE-INTEGRITY, FINGERPRINT (password
/// "VOkJxbRl1RmTxUk/WvJxBt"; integrity and fingerprint verified).
pub(crate) const RFC5769_REQUEST: &str = "
    00010058 2112a442 b7e7a701 bc34d686 fa87dfae
    80220010 5354554e 20746573 7420636c 69656e74
    00240004 6e0001ff
    80290008 932ff9b1 51263b36
    00060009 6576746a 3a683676 59202020
    00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
    80280004 e57a3bcf";

/// RFC 5769 §2.2 Sample IPv4 Response: Binding success, SOFTWARE "test vector"
/// (11 bytes, padded), XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT.
pub(crate) const RFC5769_RESPONSE: &str = "
    0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
    8022000b 74657374 20766563 746f7220
    00200008 0001a147 e112a643
    00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
    80280004 c07d4c96";

/// A Binding request laid out as Chrome sends it to an ICE-lite server:
/// USERNAME "uc7Kq2Lm:hF3z", GOOG-NETWORK-INFO, ICE-CONTROLLING, USE-CANDIDATE,
/// PRIORITY, MESSAGE-INTEGRITY (password "Ts4LqbnJ8v0cF6yRkW2pXe9M"), FINGERPRINT.
/// Built by hand; integrity and fingerprint are correct.
pub(crate) const CHROME_BINDING_REQUEST: &str = "
    00010054 2112a442 6a4f2b7c 91d3e05a 1c88f4b2
    0006000d 7563374b 71324c6d 3a684633 7a000000
    c0570004 0001000a
    802a0008 5d2e8a1f 73c4b609
    00250000
    00240004 6e7f1eff
    00080014 f0e9b10d 81c2fbca f58ba0c7 921a4b5e 6a5513ec
    80280004 dfe2abff";

/// Opus (PT 111) with one-byte (0xBEDE) extensions: audio level (id 1),
/// abs-send-time (id 2), transport-cc (id 3), mid "0" (id 4); 24-byte payload.
pub(crate) const RTP_OPUS_ONE_BYTE_EXT: &str = "
    906f1a2b 5e8c3a10 3b1f9d47
    bede0003 10a52212 34563101 a7403000
    780be4c1 36ecc58d 8a1f3b50 c1e2d9a4 770e8f3a 6b5c4d21";

/// VP8 (PT 96, marker) from a mixer with two CSRCs, sequence and timestamp at
/// their maximum (the next packet wraps).
pub(crate) const RTP_CSRC_VP8: &str = "
    82e0ffff ffffffff 1a2b3c4d
    0000aaaa 0000bbbb
    90e08001 10020091 9d012a80 02e00102";

/// H.264 FU-A (PT 102) with a two-byte (0x1000) extension header.
pub(crate) const RTP_TWO_BYTE_EXT: &str = "
    90660042 00001000 cafebabe
    10000001 0502abcd
    7c858800";

/// Compound RTCP: sender report (no report blocks) + SDES CNAME "k9Xr2ZqT7pLm4WvB".
pub(crate) const RTCP_SR_SDES: &str = "
    80c80006 3b1f9d47 e95a1c2d 4bc6a7ef 5e8c3a10 0000012c 0000b894
    81ca0006 3b1f9d47 0110 6b395872 325a7154 37704c6d 34577642 0000";

/// Picture Loss Indication from SSRC 1 about media SSRC 0x3b1f9d47.
pub(crate) const RTCP_PLI: &str = "81ce0002 00000001 3b1f9d47";

/// Full Intra Request (RFC 5104) from SSRC 1, one FCI entry, sequence 5.
pub(crate) const RTCP_FIR: &str = "84ce0004 00000001 00000000 3b1f9d47 05000000";

/// Decodes hex, ignoring whitespace.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn fill(&mut self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|b| *b = self.byte());
    }
}

/// A datagram of 0..1500 bytes: random, or shaped like STUN / RTP / RTCP so
/// the parsers get past their first checks, or a mutated sample.
fn datagram(rng: &mut Rng, samples: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = vec![0; rng.below(1500)];
    rng.fill(&mut buf);
    match rng.below(5) {
        0 => {}
        1 => buf = stun_shaped(rng),
        2 => {
            if let Some(b0) = buf.first_mut() {
                *b0 = 0x80 | (*b0 & 0x3f);
            }
        }
        3 => {
            // RTCP-shaped: a chain of plausible headers with random lengths.
            let mut at = 0;
            while at + 4 <= buf.len() && rng.below(8) != 0 {
                let words = rng.below(8);
                buf[at] = 0x80 | (buf[at] & 0x3f);
                buf[at + 1] = 192 + rng.below(32) as u8;
                buf[at + 2..at + 4].copy_from_slice(&(words as u16).to_be_bytes());
                at += (words + 1) * 4;
            }
        }
        _ => {
            buf = samples[rng.below(samples.len())].clone();
            for _ in 0..rng.below(4) {
                if !buf.is_empty() {
                    let i = rng.below(buf.len());
                    buf[i] ^= 1 << rng.below(8);
                }
            }
            match rng.below(4) {
                0 => buf.truncate(rng.below(buf.len() + 1)),
                1 => buf.extend((0..rng.below(8)).map(|_| rng.byte())),
                _ => {}
            }
        }
    }
    buf
}

/// A STUN message with random attributes, mostly with a correct length field.
fn stun_shaped(rng: &mut Rng) -> Vec<u8> {
    let msg_type: u16 = if rng.below(2) == 0 {
        0x0001
    } else {
        rng.next() as u16 & 0x3fff
    };
    let mut body = Vec::new();
    for _ in 0..rng.below(6) {
        let attr_type: u16 = if rng.below(2) == 0 {
            0x0006
        } else {
            rng.next() as u16
        };
        let len = if rng.below(20) == 0 {
            rng.below(0x1_0000)
        } else {
            rng.below(40)
        };
        body.extend_from_slice(&attr_type.to_be_bytes());
        body.extend_from_slice(&(len as u16).to_be_bytes());
        let value_len = len.min(300);
        body.extend((0..value_len).map(|_| b"ab:"[rng.below(3)]));
        body.resize(body.len().next_multiple_of(4), 0);
    }
    let declared = match rng.below(10) {
        0 => rng.next() as u16,
        _ => body.len() as u16,
    };
    let mut buf = Vec::new();
    buf.extend_from_slice(&msg_type.to_be_bytes());
    buf.extend_from_slice(&declared.to_be_bytes());
    buf.extend_from_slice(&0x2112_a442u32.to_be_bytes());
    buf.extend((0..12).map(|_| rng.byte()));
    buf.extend_from_slice(&body);
    buf.truncate(1499);
    buf
}

/// How many datagrams each parser accepted.
#[derive(Default, Debug)]
struct Accepted {
    stun: usize,
    ufrag: usize,
    rtp: usize,
}

/// Runs every parser on `buf` and checks they agree with `classify`.
fn check(buf: &[u8], accepted: &mut Accepted) {
    let class = classify(buf);

    let stun = StunView::parse(buf);
    if let Ok(view) = stun {
        accepted.stun += 1;
        assert_eq!(class, PacketClass::Stun, "{buf:02x?}");
        let _ = (view.method(), view.class(), view.transaction_id());
        let attrs_len: usize = view
            .attributes()
            .map(|(_, v)| 4 + v.len().next_multiple_of(4))
            .sum();
        assert_eq!(20 + attrs_len, buf.len());
    }
    if let Some(local) = binding_request_local_ufrag(buf) {
        accepted.ufrag += 1;
        assert!(is_binding_request(buf));
        assert!((1..=MAX_UFRAG_LEN).contains(&local.len()));
        assert!(!local.contains(&b':'));
        let username = stun.ok().and_then(|v| v.username()).unwrap();
        assert_eq!(username.get(local.len()), Some(&b':'));
    }

    if let Ok(h) = RtpHeader::parse(buf) {
        accepted.rtp += 1;
        assert_eq!(class, PacketClass::Rtp, "{buf:02x?}");
        assert_eq!(
            h.header_len + h.payload_len + usize::from(h.padding_len),
            buf.len()
        );
        assert!(h.payload(buf).is_some());
    }
}

#[test]
fn random_datagrams_never_panic_and_agree_with_classify() {
    let samples: Vec<Vec<u8>> = [
        RFC5769_REQUEST,
        RFC5769_RESPONSE,
        CHROME_BINDING_REQUEST,
        RTP_OPUS_ONE_BYTE_EXT,
        RTP_CSRC_VP8,
        RTP_TWO_BYTE_EXT,
        RTCP_SR_SDES,
        RTCP_PLI,
        RTCP_FIR,
    ]
    .iter()
    .map(|s| hex(s))
    .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = Accepted::default();
    for _ in 0..100_000 {
        check(&datagram(&mut rng, &samples), &mut accepted);
    }
    // The generator must reach past the parsers' first checks.
    assert!(accepted.stun > 1_000, "{accepted:?}");
    assert!(accepted.ufrag > 100, "{accepted:?}");
    assert!(accepted.rtp > 1_000, "{accepted:?}");
}

#[test]
fn samples_classify_as_expected() {
    let cases = [
        (RFC5769_REQUEST, PacketClass::Stun),
        (RFC5769_RESPONSE, PacketClass::Stun),
        (CHROME_BINDING_REQUEST, PacketClass::Stun),
        (RTP_OPUS_ONE_BYTE_EXT, PacketClass::Rtp),
        (RTP_CSRC_VP8, PacketClass::Rtp),
        (RTP_TWO_BYTE_EXT, PacketClass::Rtp),
        (RTCP_SR_SDES, PacketClass::Rtcp),
        (RTCP_PLI, PacketClass::Rtcp),
        (RTCP_FIR, PacketClass::Rtcp),
    ];
    for (sample, class) in cases {
        assert_eq!(classify(&hex(sample)), class, "{sample}");
    }
}
