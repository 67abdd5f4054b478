//! RTCP common headers (RFC 3550 §6.4) and an iterator over the sub-packets of a
//! compound (or RFC 5506 reduced-size) RTCP packet.
//!
//! Only the common header and the SSRC after it are read; report blocks, FCI and
//! SDES items are the sub-packet's business. On the wire RTCP is SRTCP: the
//! first sub-packet's header is in the clear but the rest is encrypted and a
//! trailer follows, so iterate decrypted compounds only.

use core::iter::FusedIterator;

use super::be_u32;

/// Sender report.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;
/// Application-defined.
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585): generic NACK, transport-cc.
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585): PLI, FIR, REMB.
pub const PT_PSFB: u8 = 206;
/// Extended report (RFC 3611).
pub const PT_XR: u8 = 207;

/// PSFB format of a Picture Loss Indication (RFC 4585 §6.3.1).
const FMT_PLI: u8 = 1;
/// PSFB format of a Full Intra Request (RFC 5104 §4.3.1).
const FMT_FIR: u8 = 4;

/// Why a compound RTCP packet is malformed. Always the sender's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Fewer than the 4 bytes of a common header remain.
    #[error("{0} bytes is shorter than the 4-byte RTCP header")]
    TooShort(usize),
    /// The version is not 2.
    #[error("RTCP version {0}, not 2")]
    BadVersion(u8),
    /// The packet type is outside 192..=223, the range RFC 5761 keeps apart from RTP.
    #[error("packet type {0} is outside the RTCP range 192..=223")]
    BadPacketType(u8),
    /// `(length_words + 1) * 4` is more than the bytes that remain.
    #[error("length of {length_words} words runs past the {available} bytes left")]
    LengthOverrun {
        /// The length field (32-bit words minus one).
        length_words: u16,
        /// Bytes left in the compound packet from this header on.
        available: usize,
    },
    /// The padding bit is set, but the padding count is 0 or more than the
    /// bytes after the 4-byte header.
    #[error("padding of {padding_len} bytes in a {packet_len}-byte packet")]
    BadPadding {
        /// The last byte of the sub-packet.
        padding_len: u8,
        /// Length of the sub-packet.
        packet_len: usize,
    },
}

/// The common header of one RTCP sub-packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtcpHeader {
    /// Report count (SR, RR), source count (SDES, BYE) or feedback format (FMT).
    pub count: u8,
    /// The packet type, 192..=223 (e.g. [`PT_SR`], [`PT_PSFB`]).
    pub packet_type: u8,
    /// The length field: the sub-packet's length in 32-bit words, minus one.
    pub length_words: u16,
    /// The SSRC after the header: the sender's for SR, RR, feedback, APP and XR,
    /// the first chunk's or source's for SDES and BYE. `None` if the packet has
    /// no such word (SDES or BYE with count 0, or a 4-byte packet).
    pub sender_ssrc: Option<u32>,
}

impl RtcpHeader {
    /// Whether this is a PLI or FIR: see [`is_keyframe_request`].
    pub fn is_keyframe_request(&self) -> bool {
        is_keyframe_request(self.packet_type, self.count)
    }
}

/// Whether an RTCP packet type and FMT ask for a keyframe: PLI (PSFB, FMT 1)
/// or FIR (PSFB, FMT 4).
pub fn is_keyframe_request(packet_type: u8, fmt: u8) -> bool {
    packet_type == PT_PSFB && (fmt == FMT_PLI || fmt == FMT_FIR)
}

/// Iterates the sub-packets of the compound RTCP packet that is all of `buf`.
///
/// Yields `Ok((header, sub_packet))` with `sub_packet` the whole sub-packet
/// (header and padding included), or one `Err` for the first malformed
/// sub-packet and then ends. An empty buffer yields nothing.
pub fn rtcp_packets(buf: &[u8]) -> RtcpIter<'_> {
    RtcpIter { rest: buf }
}

/// Iterator over a compound RTCP packet: see [`rtcp_packets`].
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<(RtcpHeader, &'a [u8]), RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_packet(self.rest) {
            Ok((header, packet, rest)) => {
                self.rest = rest;
                Some(Ok((header, packet)))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

impl FusedIterator for RtcpIter<'_> {}

/// One sub-packet's header, the sub-packet, and the bytes after it.
type Split<'a> = (RtcpHeader, &'a [u8], &'a [u8]);

/// Splits the sub-packet at the front of `buf` off the rest.
fn split_packet(buf: &[u8]) -> Result<Split<'_>, RtcpError> {
    let [b0, packet_type, l0, l1] = *buf
        .first_chunk::<4>()
        .ok_or(RtcpError::TooShort(buf.len()))?;
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    if !(192..=223).contains(&packet_type) {
        return Err(RtcpError::BadPacketType(packet_type));
    }
    let length_words = u16::from_be_bytes([l0, l1]);
    let len = (usize::from(length_words) + 1) * 4;
    let (packet, rest) = buf.split_at_checked(len).ok_or(RtcpError::LengthOverrun {
        length_words,
        available: buf.len(),
    })?;
    if b0 & 0x20 != 0 {
        // The last byte counts the padding, itself included; the header is not padding.
        let padding_len = packet.last().copied().unwrap_or(0);
        if padding_len == 0 || usize::from(padding_len) > packet.len().saturating_sub(4) {
            return Err(RtcpError::BadPadding {
                padding_len,
                packet_len: packet.len(),
            });
        }
    }
    let count = b0 & 0x1f;
    let sender_ssrc = if matches!(packet_type, PT_SDES | PT_BYE) && count == 0 {
        None
    } else {
        be_u32(packet, 4)
    };
    let header = RtcpHeader {
        count,
        packet_type,
        length_words,
        sender_ssrc,
    };
    Ok((header, packet, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{RTCP_FIR, RTCP_PLI, RTCP_SR_SDES, hex};

    fn collect(buf: &[u8]) -> Vec<Result<(RtcpHeader, &[u8]), RtcpError>> {
        rtcp_packets(buf).collect()
    }

    #[test]
    fn sender_report_and_sdes() {
        let buf = hex(RTCP_SR_SDES);
        let items = collect(&buf);
        assert_eq!(items.len(), 2);
        let (sr, sr_bytes) = items[0].unwrap();
        assert_eq!(
            sr,
            RtcpHeader {
                count: 0,
                packet_type: PT_SR,
                length_words: 6,
                sender_ssrc: Some(0x3b1f_9d47),
            }
        );
        assert_eq!(sr_bytes, &buf[..28]);
        let (sdes, sdes_bytes) = items[1].unwrap();
        assert_eq!((sdes.packet_type, sdes.count), (PT_SDES, 1));
        assert_eq!(sdes.sender_ssrc, Some(0x3b1f_9d47));
        assert_eq!(sdes_bytes, &buf[28..]);
        assert!(!sr.is_keyframe_request() && !sdes.is_keyframe_request());
    }

    #[test]
    fn pli_and_fir_are_keyframe_requests() {
        let pli = hex(RTCP_PLI);
        let [Ok((h, bytes))] = collect(&pli)[..] else {
            panic!("one packet")
        };
        assert_eq!((h.packet_type, h.count, h.length_words), (PT_PSFB, 1, 2));
        assert_eq!(h.sender_ssrc, Some(0x0000_0001));
        assert_eq!(bytes.len(), 12);
        assert!(h.is_keyframe_request());

        let fir = hex(RTCP_FIR);
        let [Ok((h, _))] = collect(&fir)[..] else {
            panic!("one packet")
        };
        assert_eq!((h.packet_type, h.count), (PT_PSFB, 4));
        assert!(h.is_keyframe_request());
    }

    #[test]
    fn keyframe_request_table() {
        assert!(is_keyframe_request(206, 1));
        assert!(is_keyframe_request(206, 4));
        assert!(!is_keyframe_request(206, 15), "REMB");
        assert!(!is_keyframe_request(206, 2), "SLI");
        assert!(!is_keyframe_request(205, 1), "generic NACK");
        assert!(
            !is_keyframe_request(192, 0),
            "RFC 2032 FIR is not supported"
        );
    }

    #[test]
    fn nack_then_receiver_report() {
        let buf = hex("81cd0003 00000001 3b1f9d47 1a2b0003  81c90001 00000001");
        let items = collect(&buf);
        let types: Vec<u8> = items.iter().map(|r| r.unwrap().0.packet_type).collect();
        assert_eq!(types, [PT_RTPFB, PT_RR]);
        assert!(!items[0].unwrap().0.is_keyframe_request());
    }

    #[test]
    fn empty_is_no_packets() {
        assert_eq!(rtcp_packets(&[]).count(), 0);
    }

    #[test]
    fn every_truncation() {
        let buf = hex(RTCP_SR_SDES);
        for len in 0..buf.len() {
            let items = collect(&buf[..len]);
            let whole = len / 28;
            let oks = items.iter().take_while(|r| r.is_ok()).count();
            assert_eq!(oks, whole, "prefix {len}");
            if len.is_multiple_of(28) {
                assert_eq!(items.len(), whole);
            } else {
                assert_eq!(items.len(), whole + 1, "exactly one error, then the end");
                let err = items[whole].unwrap_err();
                assert!(
                    matches!(
                        err,
                        RtcpError::TooShort(_) | RtcpError::LengthOverrun { .. }
                    ),
                    "{err:?}"
                );
            }
        }
        for sample in [RTCP_PLI, RTCP_FIR] {
            let buf = hex(sample);
            for len in 1..buf.len() {
                let items = collect(&buf[..len]);
                assert!(matches!(items[..], [Err(_)]), "prefix {len}");
            }
        }
    }

    #[test]
    fn lengths_that_disagree() {
        let mut buf = hex(RTCP_SR_SDES);
        buf[3] = 0x0f; // SR claims 64 bytes, 56 remain
        let err = RtcpError::LengthOverrun {
            length_words: 15,
            available: 56,
        };
        assert_eq!(collect(&buf), [Err(err)]);

        let mut buf = hex(RTCP_SR_SDES);
        buf[3] = 5; // SR claims 24 bytes: the next "header" is its octet count
        let items = collect(&buf);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(RtcpError::BadVersion(0)));
        assert_eq!(items.len(), 2, "stops after the first error");

        let mut buf = hex(RTCP_SR_SDES);
        buf.extend_from_slice(&[0x81, 0xc9]); // 2 stray bytes at the end
        let items = collect(&buf);
        assert_eq!(items.len(), 3);
        assert_eq!(items[2], Err(RtcpError::TooShort(2)));
    }

    #[test]
    fn header_checks() {
        let buf = hex("41c80006 00000000");
        assert_eq!(collect(&buf), [Err(RtcpError::BadVersion(1))]);
        let rtp = hex("80600001 00000002 00000003");
        assert_eq!(collect(&rtp), [Err(RtcpError::BadPacketType(96))]);
        let buf = hex("80e00001 00000002");
        assert_eq!(collect(&buf), [Err(RtcpError::BadPacketType(224))]);
    }

    #[test]
    fn padding() {
        let ok = hex("a0c90002 00000001 00000004");
        let [Ok((h, bytes))] = collect(&ok)[..] else {
            panic!("one packet")
        };
        assert_eq!((h.packet_type, bytes.len()), (PT_RR, 12));

        let too_big = hex("a0c90002 00000001 00000009");
        let err = RtcpError::BadPadding {
            padding_len: 9,
            packet_len: 12,
        };
        assert_eq!(collect(&too_big), [Err(err)]);
        let zero = hex("a0c90002 00000001 00000000");
        assert!(matches!(
            collect(&zero)[..],
            [Err(RtcpError::BadPadding { .. })]
        ));
        let header_only = hex("a0cb0000");
        assert!(matches!(
            collect(&header_only)[..],
            [Err(RtcpError::BadPadding { .. })]
        ));
    }

    #[test]
    fn sender_ssrc_presence() {
        let bye_empty = hex("80cb0000");
        let [Ok((h, _))] = collect(&bye_empty)[..] else {
            panic!("one packet")
        };
        assert_eq!(h.sender_ssrc, None);
        let bye_empty_padded = hex("80cb0001 00000000");
        let [Ok((h, _))] = collect(&bye_empty_padded)[..] else {
            panic!("one packet")
        };
        assert_eq!(h.sender_ssrc, None, "SC 0: the word is not an SSRC");
        let bye = hex("81cb0001 deadbeef");
        let [Ok((h, _))] = collect(&bye)[..] else {
            panic!("one packet")
        };
        assert_eq!(h.sender_ssrc, Some(0xdead_beef));
        let rr_header_only = hex("80c90000");
        let [Ok((h, _))] = collect(&rr_header_only)[..] else {
            panic!("one packet")
        };
        assert_eq!(h.sender_ssrc, None);
    }
}
