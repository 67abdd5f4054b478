//! RFC 7983 demultiplexing of one UDP port by the first byte of a datagram,
//! with RFC 5761 (RTP and RTCP on one port) to split RTP from RTCP.
//!
//! | first byte | class                                   |
//! |------------|-----------------------------------------|
//! | 0..=3      | STUN (if at least the 20-byte header)   |
//! | 16..=19    | ZRTP: [`PacketClass::Unknown`]          |
//! | 20..=63    | DTLS (if at least the 13-byte record header) |
//! | 64..=79    | TURN channel: [`PacketClass::Unknown`]  |
//! | 128..=191  | RTP or RTCP (version 2)                 |
//! | otherwise  | [`PacketClass::Unknown`]                |
//!
//! Classification looks at two bytes and the length only; a class is a routing
//! hint, not a promise that the packet parses.

/// Smallest STUN message: the header.
const STUN_MIN: usize = 20;
/// Smallest DTLS record: the record header.
const DTLS_MIN: usize = 13;
/// Smallest RTP packet: the fixed header.
const RTP_MIN: usize = 12;
/// Smallest RTCP packet we route: header plus sender SSRC.
const RTCP_MIN: usize = 8;

/// What a datagram on the shared media port is, by RFC 7983.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketClass {
    /// STUN (ICE connectivity checks and their responses).
    Stun,
    /// DTLS (the handshake that keys SRTP; SCTP data channels ride on it).
    Dtls,
    /// RTP (SRTP on the wire).
    Rtp,
    /// RTCP (SRTCP on the wire), told from RTP by RFC 5761.
    Rtcp,
    /// Anything else: empty, too short for its class, ZRTP, TURN channel data,
    /// or a first byte no protocol here uses.
    Unknown,
}

impl PacketClass {
    /// A short lowercase name, for metric labels and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Stun => "stun",
            Self::Dtls => "dtls",
            Self::Rtp => "rtp",
            Self::Rtcp => "rtcp",
            Self::Unknown => "unknown",
        }
    }
}

/// Classifies a datagram by its first two bytes and its length (RFC 7983, RFC 5761).
///
/// RTP and RTCP are told apart by the second byte: with the marker bit masked
/// off, 64..=95 is RTCP (packet types 192..=223), anything else is RTP. That is
/// why RTP payload types 64..=95 cannot be used with rtcp-mux, and why
/// [`RtpHeader::parse`](super::RtpHeader::parse) rejects them.
pub fn classify(buf: &[u8]) -> PacketClass {
    let Some(&first) = buf.first() else {
        return PacketClass::Unknown;
    };
    let len = buf.len();
    match first {
        0..=3 if len >= STUN_MIN => PacketClass::Stun,
        20..=63 if len >= DTLS_MIN => PacketClass::Dtls,
        128..=191 => match buf.get(1) {
            Some(&second) if is_rtcp_second_byte(second) => {
                if len >= RTCP_MIN {
                    PacketClass::Rtcp
                } else {
                    PacketClass::Unknown
                }
            }
            Some(_) if len >= RTP_MIN => PacketClass::Rtp,
            _ => PacketClass::Unknown,
        },
        _ => PacketClass::Unknown,
    }
}

/// RFC 5761 §4: the second byte, marker bit masked off, in 64..=95 means RTCP.
pub(super) const fn is_rtcp_second_byte(second: u8) -> bool {
    matches!(second & 0x7f, 64..=95)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{RFC5769_REQUEST, hex};

    #[test]
    fn empty_and_short_are_unknown() {
        assert_eq!(classify(&[]), PacketClass::Unknown);
        for first in 0..=255u8 {
            assert_eq!(
                classify(&[first]),
                PacketClass::Unknown,
                "first byte {first}"
            );
        }
    }

    #[test]
    fn stun_needs_a_header() {
        let stun = hex(RFC5769_REQUEST);
        assert_eq!(classify(&stun), PacketClass::Stun);
        assert_eq!(classify(&stun[..20]), PacketClass::Stun);
        assert_eq!(classify(&stun[..19]), PacketClass::Unknown);
        for first in 0..=3u8 {
            assert_eq!(classify(&[first; 20]), PacketClass::Stun);
        }
    }

    #[test]
    fn first_byte_ranges() {
        let mut buf = [0u8; 64];
        for first in 0..=255u8 {
            buf[0] = first;
            buf[1] = 96; // an RTP payload type
            let want = match first {
                0..=3 => PacketClass::Stun,
                20..=63 => PacketClass::Dtls,
                128..=191 => PacketClass::Rtp,
                _ => PacketClass::Unknown,
            };
            assert_eq!(classify(&buf), want, "first byte {first}");
        }
    }

    #[test]
    fn zrtp_and_turn_channels_are_unknown() {
        // ZRTP: 16..=19; TURN ChannelData: 64..=79.
        for first in (16..=19u8).chain(64..=79) {
            assert_eq!(classify(&[first; 100]), PacketClass::Unknown);
        }
    }

    #[test]
    fn dtls_client_hello() {
        // Record header of a DTLS 1.2 ClientHello (content type 22, version fefd).
        let hello = hex("16 fefd 0000 0000 0000 0000 0099 01");
        assert_eq!(classify(&hello), PacketClass::Dtls);
        assert_eq!(classify(&hello[..12]), PacketClass::Unknown);
    }

    #[test]
    fn rtp_vs_rtcp_by_second_byte() {
        let mut buf = [0x80u8; 12];
        for second in 0..=255u8 {
            buf[1] = second;
            let want = if matches!(second & 0x7f, 64..=95) {
                PacketClass::Rtcp
            } else {
                PacketClass::Rtp
            };
            assert_eq!(classify(&buf), want, "second byte {second}");
        }
    }

    #[test]
    fn rtp_and_rtcp_minimum_lengths() {
        let pli = hex("81ce0002 11223344 55667788");
        assert_eq!(classify(&pli), PacketClass::Rtcp);
        assert_eq!(classify(&pli[..8]), PacketClass::Rtcp);
        assert_eq!(classify(&pli[..7]), PacketClass::Unknown);
        let rtp = hex("80600001 00000001 00000001");
        assert_eq!(classify(&rtp), PacketClass::Rtp);
        assert_eq!(classify(&rtp[..11]), PacketClass::Unknown);
    }

    #[test]
    fn names() {
        assert_eq!(PacketClass::Rtcp.name(), "rtcp");
        assert_eq!(PacketClass::Unknown.name(), "unknown");
    }
}
