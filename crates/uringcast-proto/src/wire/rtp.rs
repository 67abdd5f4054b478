//! The RTP header (RFC 3550 §5.1) with its CSRC list, header extension
//! (RFC 8285) and padding, checked against the datagram's length.
//!
//! On the wire this is SRTP: the header is in the clear, the payload is not,
//! and the authentication tag sits at the end, inside what this parser calls
//! the payload. Only after SRTP has been removed do `payload_len` and
//! `padding_len` mean what they say; on SRTP the padding bit is still readable
//! but the last byte is tag, so parse decrypted packets when padding matters.

use super::classify::is_rtcp_second_byte;

/// Length of the fixed RTP header.
const FIXED_LEN: usize = 12;

/// Why a datagram is not a well-formed RTP packet. Always the sender's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("{0} bytes is shorter than the 12-byte RTP header")]
    TooShort(usize),
    /// The version is not 2.
    #[error("RTP version {0}, not 2")]
    BadVersion(u8),
    /// The payload type is 64..=95, which RFC 5761 reserves so RTCP can share
    /// the port: the packet is RTCP, or garbage.
    #[error("payload type {0} collides with RTCP (RFC 5761)")]
    RtcpPayloadType(u8),
    /// The CSRC list runs past the end.
    #[error("{csrc_count} CSRCs run past the end of the packet")]
    CsrcOverrun {
        /// The CC field.
        csrc_count: u8,
    },
    /// The header extension (its 4-byte header or its body) runs past the end.
    #[error("header extension runs past the end of the packet")]
    ExtensionOverrun,
    /// The padding bit is set, but the padding count is 0 or more than the
    /// bytes after the header (pion CVE-2025-49140 class).
    #[error("padding of {padding_len} bytes but {available} bytes after the header")]
    BadPadding {
        /// The last byte of the packet.
        padding_len: u8,
        /// Bytes after the header.
        available: usize,
    },
}

/// A checked RTP header: `header_len + payload_len + padding_len` is the
/// length of the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpHeader {
    /// The marker bit (end of a video frame, start of a talkspurt).
    pub marker: bool,
    /// The payload type, 0..=127 and never 64..=95.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// How many CSRCs follow the fixed header (0..=15).
    pub csrc_count: u8,
    /// Bytes of fixed header, CSRC list and extension (header and body).
    pub header_len: usize,
    /// Bytes between the header and the padding.
    pub payload_len: usize,
    /// Bytes of padding at the end, including the count byte; 0 without the P bit.
    pub padding_len: u8,
    /// The extension's profile (0xBEDE one-byte, 0x100X two-byte), if X is set.
    pub extension_profile: Option<u16>,
}

impl RtpHeader {
    /// Parses the header of the RTP packet that is all of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, RtpError> {
        let (fixed, rest) = buf
            .split_first_chunk::<FIXED_LEN>()
            .ok_or(RtpError::TooShort(buf.len()))?;
        let [b0, b1, s0, s1, t0, t1, t2, t3, ssrc @ ..] = *fixed;
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        if is_rtcp_second_byte(b1) {
            return Err(RtpError::RtcpPayloadType(b1 & 0x7f));
        }
        let csrc_count = b0 & 0x0f;
        let csrc_len = usize::from(csrc_count) * 4;
        let rest = rest
            .get(csrc_len..)
            .ok_or(RtpError::CsrcOverrun { csrc_count })?;
        let (extension_profile, ext_len, rest) = if b0 & 0x10 != 0 {
            let ([p0, p1, l0, l1], body) = rest
                .split_first_chunk::<4>()
                .ok_or(RtpError::ExtensionOverrun)?;
            let body_len = usize::from(u16::from_be_bytes([*l0, *l1])) * 4;
            let rest = body.get(body_len..).ok_or(RtpError::ExtensionOverrun)?;
            (Some(u16::from_be_bytes([*p0, *p1])), 4 + body_len, rest)
        } else {
            (None, 0, rest)
        };
        let (padding_len, payload_len) = if b0 & 0x20 != 0 {
            // The last byte counts the padding, itself included (RFC 3550 §5.1).
            let count = rest.last().copied().unwrap_or(0);
            let payload_len = rest
                .len()
                .checked_sub(usize::from(count))
                .filter(|_| count != 0)
                .ok_or(RtpError::BadPadding {
                    padding_len: count,
                    available: rest.len(),
                })?;
            (count, payload_len)
        } else {
            (0, rest.len())
        };
        Ok(Self {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes(ssrc),
            csrc_count,
            header_len: FIXED_LEN + csrc_len + ext_len,
            payload_len,
            padding_len,
            extension_profile,
        })
    }

    /// The payload of the packet this header was parsed from (`buf` must be
    /// that packet; `None` if it is too short to be).
    pub fn payload<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        let end = self.header_len.checked_add(self.payload_len)?;
        buf.get(self.header_len..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{RTP_CSRC_VP8, RTP_OPUS_ONE_BYTE_EXT, RTP_TWO_BYTE_EXT, hex};

    /// Chrome's RTX padding probe: header with a one-byte extension, no payload,
    /// 224 bytes of padding.
    fn padding_probe() -> Vec<u8> {
        let mut buf = hex("b0 61 2f01 00a1b2c3 5e1f00d2 bede0002 22123456 31004300");
        buf.resize(buf.len() + 223, 0);
        buf.push(224);
        buf
    }

    fn assert_lengths_add_up(h: &RtpHeader, buf: &[u8]) {
        assert_eq!(
            h.header_len + h.payload_len + usize::from(h.padding_len),
            buf.len()
        );
    }

    #[test]
    fn opus_with_one_byte_extensions() {
        let buf = hex(RTP_OPUS_ONE_BYTE_EXT);
        let h = RtpHeader::parse(&buf).unwrap();
        let want = RtpHeader {
            marker: false,
            payload_type: 111,
            sequence: 0x1a2b,
            timestamp: 0x5e8c_3a10,
            ssrc: 0x3b1f_9d47,
            csrc_count: 0,
            header_len: 28,
            payload_len: 24,
            padding_len: 0,
            extension_profile: Some(0xBEDE),
        };
        assert_eq!(h, want);
        assert_eq!(h.payload(&buf).unwrap()[0], 0x78);
        assert_lengths_add_up(&h, &buf);
    }

    #[test]
    fn vp8_with_csrcs() {
        let buf = hex(RTP_CSRC_VP8);
        let h = RtpHeader::parse(&buf).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 96);
        assert_eq!((h.sequence, h.timestamp), (0xffff, 0xffff_ffff));
        assert_eq!(h.csrc_count, 2);
        assert_eq!(h.header_len, 20);
        assert_eq!(h.extension_profile, None);
        assert_eq!(h.payload(&buf).unwrap(), &buf[20..]);
        assert_lengths_add_up(&h, &buf);
    }

    #[test]
    fn two_byte_extension_profile() {
        let buf = hex(RTP_TWO_BYTE_EXT);
        let h = RtpHeader::parse(&buf).unwrap();
        assert_eq!(h.extension_profile, Some(0x1000));
        assert_eq!(h.header_len, 20);
        assert_lengths_add_up(&h, &buf);
    }

    #[test]
    fn padding_only_probe() {
        let buf = padding_probe();
        let h = RtpHeader::parse(&buf).unwrap();
        assert_eq!((h.payload_type, h.header_len), (97, 24));
        assert_eq!((h.payload_len, h.padding_len), (0, 224));
        assert_eq!(h.payload(&buf), Some(&[][..]));
        assert_lengths_add_up(&h, &buf);
    }

    #[test]
    fn padding_after_payload() {
        let buf = hex("a0 60 0001 00000002 00000003 aabbcc 00000004");
        let h = RtpHeader::parse(&buf).unwrap();
        assert_eq!((h.header_len, h.payload_len, h.padding_len), (12, 3, 4));
        assert_eq!(h.payload(&buf), Some(&[0xaa, 0xbb, 0xcc][..]));
    }

    #[test]
    fn padding_too_big_or_zero() {
        // CVE-2025-49140 class: count larger than what follows the header.
        let buf = hex("a0 60 0001 00000002 00000003 aabbcc 00000008");
        let err = RtpHeader::parse(&buf).unwrap_err();
        assert_eq!(
            err,
            RtpError::BadPadding {
                padding_len: 8,
                available: 7
            }
        );
        let buf = hex("a0 60 0001 00000002 00000003 ff");
        assert!(matches!(
            RtpHeader::parse(&buf),
            Err(RtpError::BadPadding { .. })
        ));
        let buf = hex("a0 60 0001 00000002 00000003 aabbcc 00");
        assert!(matches!(
            RtpHeader::parse(&buf),
            Err(RtpError::BadPadding { padding_len: 0, .. })
        ));
        // P set, nothing after the header: the "count" would be header.
        let buf = hex("a0 60 0001 00000002 0000000c");
        let err = RtpHeader::parse(&buf).unwrap_err();
        assert_eq!(
            err,
            RtpError::BadPadding {
                padding_len: 0,
                available: 0
            }
        );
        // Same with an extension: its bytes are not padding.
        let mut probe = padding_probe();
        probe.truncate(24);
        probe.push(25);
        assert!(matches!(
            RtpHeader::parse(&probe),
            Err(RtpError::BadPadding { .. })
        ));
    }

    #[test]
    fn csrc_count_past_the_end() {
        let buf = hex("8f 60 0001 00000002 00000003 11111111 22222222");
        assert_eq!(
            RtpHeader::parse(&buf),
            Err(RtpError::CsrcOverrun { csrc_count: 15 })
        );
    }

    #[test]
    fn extension_past_the_end() {
        let buf = hex("90 60 0001 00000002 00000003 bede ffff 10aa0000");
        assert_eq!(RtpHeader::parse(&buf), Err(RtpError::ExtensionOverrun));
        let buf = hex("90 60 0001 00000002 00000003 bede");
        assert_eq!(RtpHeader::parse(&buf), Err(RtpError::ExtensionOverrun));
        // Extension and CSRCs together overrunning by one word.
        let buf = hex("91 60 0001 00000002 00000003 44444444 bede 0002 10aa0000");
        assert_eq!(RtpHeader::parse(&buf), Err(RtpError::ExtensionOverrun));
    }

    #[test]
    fn version_and_payload_type() {
        for b0 in [0x00, 0x40, 0xc0] {
            let buf = [b0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
            assert_eq!(RtpHeader::parse(&buf), Err(RtpError::BadVersion(b0 >> 6)));
        }
        // An RTCP sender report is not RTP (RFC 5761).
        let sr = hex("80c80006 11223344 00000000");
        assert_eq!(RtpHeader::parse(&sr), Err(RtpError::RtcpPayloadType(72)));
        let buf = hex("80 48 0001 00000002 00000003");
        assert_eq!(RtpHeader::parse(&buf), Err(RtpError::RtcpPayloadType(72)));
        for pt in (0..64u8).chain(96..128) {
            let buf = [0x80, pt, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
            assert_eq!(RtpHeader::parse(&buf).unwrap().payload_type, pt);
        }
    }

    #[test]
    fn every_truncation() {
        let samples = [
            hex(RTP_OPUS_ONE_BYTE_EXT),
            hex(RTP_CSRC_VP8),
            hex(RTP_TWO_BYTE_EXT),
            padding_probe(),
        ];
        for buf in &samples {
            let full = RtpHeader::parse(buf).unwrap();
            for len in 0..buf.len() {
                let prefix = &buf[..len];
                match RtpHeader::parse(prefix) {
                    Ok(h) => {
                        assert!(len >= full.header_len);
                        assert_eq!(h.header_len, full.header_len);
                        assert_lengths_add_up(&h, prefix);
                        if full.padding_len == 0 {
                            assert_eq!(h.payload_len, len - full.header_len);
                        }
                    }
                    Err(_) => assert!(len < full.header_len || full.padding_len != 0),
                }
            }
        }
    }

    #[test]
    fn errors_display() {
        let e = RtpError::BadPadding {
            padding_len: 9,
            available: 3,
        };
        assert_eq!(
            e.to_string(),
            "padding of 9 bytes but 3 bytes after the header"
        );
    }
}
