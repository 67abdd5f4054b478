//! The RTP header view: on success, header + payload + padding is exactly the
//! datagram, `payload()` returns that slice, and the fields match the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::wire::{PacketClass, RtpHeader, classify};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = RtpHeader::parse(data) else {
        return;
    };
    assert_eq!(classify(data), PacketClass::Rtp);
    assert_eq!(data[0] >> 6, 2);
    assert!(h.payload_type < 128 && !(64..=95).contains(&h.payload_type));
    assert_eq!(h.marker, data[1] & 0x80 != 0);
    assert_eq!(h.csrc_count, data[0] & 0x0f);
    assert_eq!(h.sequence, u16::from_be_bytes([data[2], data[3]]));
    assert_eq!(
        h.ssrc,
        u32::from_be_bytes([data[8], data[9], data[10], data[11]])
    );
    assert_eq!(h.extension_profile.is_some(), data[0] & 0x10 != 0);
    assert!(h.header_len >= 12 + 4 * usize::from(h.csrc_count));
    assert_eq!(
        h.header_len + h.payload_len + usize::from(h.padding_len),
        data.len(),
        "lengths do not add up"
    );
    if data[0] & 0x20 != 0 {
        assert!(h.padding_len > 0);
        assert_eq!(Some(&h.padding_len), data.last());
    } else {
        assert_eq!(h.padding_len, 0);
    }
    let payload = h.payload(data).expect("payload of the parsed buffer");
    assert_eq!(payload.len(), h.payload_len);
    // A shorter buffer than the one parsed must not make `payload` panic.
    let _ = h.payload(&data[..data.len() / 2]);
});
