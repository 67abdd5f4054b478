//! RFC 7983 classification, cross-checked against the parsers: whenever a
//! parser accepts a datagram, `classify` must have put it in that parser's
//! class (the demux routes by class first, so a disagreement would send a
//! well-formed packet down the wrong path). Also checks `classify` against
//! the table in its module doc.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::wire::{
    PacketClass, RtpHeader, StunView, binding_request_local_ufrag, classify, is_binding_request,
};

fuzz_target!(|data: &[u8]| {
    let class = classify(data);
    assert_eq!(class, reference(data), "classify disagrees with its table");

    if StunView::parse(data).is_ok() {
        assert_eq!(class, PacketClass::Stun, "a parsed STUN message");
    }
    if is_binding_request(data) || binding_request_local_ufrag(data).is_some() {
        assert_eq!(class, PacketClass::Stun, "a binding request");
    }
    if RtpHeader::parse(data).is_ok() {
        assert_eq!(class, PacketClass::Rtp, "a parsed RTP header");
    }
});

/// The module doc's table, written out independently.
fn reference(data: &[u8]) -> PacketClass {
    let len = data.len();
    match data {
        [0..=3, ..] if len >= 20 => PacketClass::Stun,
        [20..=63, ..] if len >= 13 => PacketClass::Dtls,
        [128..=191, second, ..] => {
            let rtcp = (64..=95).contains(&(second & 0x7f));
            match (rtcp, len) {
                (true, 8..) => PacketClass::Rtcp,
                (false, 12..) => PacketClass::Rtp,
                _ => PacketClass::Unknown,
            }
        }
        _ => PacketClass::Unknown,
    }
}
