//! The synthetic payload trailer the load client and tests use to detect
//! loss and corruption: `check` on arbitrary bytes, and a round trip — a
//! payload built by `vp8_payload`/`audio_payload` checks out to the trailer
//! it was built with, and any single changed byte or truncation is caught.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use uringcast_load::client::payload::{
    Kind, TRAILER_LEN, Trailer, audio_payload, check, vp8_payload,
};

#[derive(Debug, Arbitrary)]
struct RoundTrip {
    tag: u32,
    video: bool,
    seq: u32,
    sent_us: u64,
    picture_id: u16,
    first_in_frame: bool,
    keyframe: bool,
    /// The size asked for. The trailer's length field is a `u16` counting
    /// every byte but the 4-byte checksum, so the builders can describe at
    /// most 65,539 bytes; a `u16` stays under that.
    size: u16,
    /// A byte to change (index modulo the length) and what to XOR it with.
    flip: Option<(u16, u8)>,
    /// A length to cut the payload to (modulo the length).
    cut: Option<u16>,
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes: never panics; a pass means the trailer is there.
    if let Ok(trailer) = check(data) {
        assert!(data.len() >= TRAILER_LEN);
        assert_eq!(&data[data.len() - TRAILER_LEN..][..4], b"UCST");
        let _ = trailer;
    }

    let Ok(rt) = RoundTrip::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let trailer = Trailer {
        tag: rt.tag,
        kind: if rt.video { Kind::Video } else { Kind::Audio },
        seq: rt.seq,
        sent_us: rt.sent_us,
    };
    let size = usize::from(rt.size);
    let payload = if rt.video {
        vp8_payload(rt.picture_id, rt.first_in_frame, rt.keyframe, trailer, size)
    } else {
        audio_payload(trailer, size)
    };
    assert!(payload.len() >= size && payload.len() >= TRAILER_LEN);
    assert_eq!(check(&payload), Ok(trailer), "round trip");

    if let Some((at, xor)) = rt.flip
        && xor != 0
    {
        let mut bad = payload.clone();
        let at = usize::from(at) % bad.len();
        bad[at] ^= xor;
        assert!(
            check(&bad).is_err(),
            "a changed byte at {at} went unnoticed"
        );
    }
    if let Some(cut) = rt.cut {
        let cut = usize::from(cut) % payload.len();
        assert!(
            check(&payload[..cut]).is_err(),
            "truncation to {cut} went unnoticed"
        );
    }
});
