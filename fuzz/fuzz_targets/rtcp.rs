//! RTCP: the compound iterator and the common header view. Every sub-packet
//! it yields is `(length_words + 1) * 4` bytes, the sub-packets tile the
//! input until the first error, and after an error the iterator ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::wire::{PT_BYE, PT_SDES, rtcp_packets};

fuzz_target!(|data: &[u8]| {
    let mut iter = rtcp_packets(data);
    let mut offset = 0;
    let mut items = 0;
    while let Some(item) = iter.next() {
        items += 1;
        assert!(items <= data.len() / 4 + 1, "the iterator does not end");
        match item {
            Ok((header, packet)) => {
                assert_eq!(packet, &data[offset..offset + packet.len()]);
                assert_eq!(packet.len(), (usize::from(header.length_words) + 1) * 4);
                assert!((192..=223).contains(&header.packet_type));
                assert_eq!(header.packet_type, packet[1]);
                assert_eq!(header.count, packet[0] & 0x1f);
                assert_eq!(packet[0] >> 6, 2);
                let ssrc_word = packet
                    .get(4..8)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if matches!(header.packet_type, PT_SDES | PT_BYE) && header.count == 0 {
                    assert_eq!(header.sender_ssrc, None);
                } else {
                    assert_eq!(header.sender_ssrc, ssrc_word);
                }
                let _ = header.is_keyframe_request();
                offset += packet.len();
            }
            Err(err) => {
                let _ = err.to_string();
                assert!(iter.next().is_none(), "items after an error");
                return;
            }
        }
    }
    assert_eq!(offset, data.len(), "the iterator stopped before the end");
});
