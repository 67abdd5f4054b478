//! A checked view over one STUN message (RFC 5389 / RFC 8489), and the demux fast
//! path that reads our ICE ufrag out of a Binding request.
//!
//! [`StunView::parse`] checks the header, the length and every attribute's
//! bounds once; after that every accessor is infallible. Nothing here checks
//! MESSAGE-INTEGRITY or FINGERPRINT: the ufrag found by
//! [`binding_request_local_ufrag`] is what the sender *claims*, good for a
//! directory lookup and nothing more until str0m has verified the message.

use super::be_u16;

/// Length of the STUN header.
const HEADER_LEN: usize = 20;
/// The magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The message type of a Binding request (method Binding, class request).
const BINDING_REQUEST: u16 = 0x0001;

/// The Binding method (RFC 5389 §18.1).
pub const METHOD_BINDING: u16 = 0x001;
/// The USERNAME attribute type (RFC 5389 §15.3).
pub const ATTR_USERNAME: u16 = 0x0006;
/// Longest ICE ufrag [`binding_request_local_ufrag`] returns (RFC 8839 §5.4: 4..=256 chars).
pub const MAX_UFRAG_LEN: usize = 256;

/// Why a datagram is not a well-formed STUN message. Always the sender's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("{0} bytes is shorter than the 20-byte STUN header")]
    TooShort(usize),
    /// The first byte is over 3: not STUN by RFC 7983 (RFC 5389 only asks for
    /// the top two bits to be zero, but 4..=63 is DTLS on a WebRTC port).
    #[error("first byte is not 0..=3")]
    NotStun,
    /// The magic cookie is not 0x2112A442 (or this is a RFC 3489 message).
    #[error("magic cookie is {0:#010x}, not 0x2112a442")]
    BadCookie(u32),
    /// The message length is not a multiple of 4.
    #[error("message length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    /// The message length disagrees with the bytes after the header
    /// (truncated, or trailing bytes).
    #[error("message length {declared} but {available} bytes follow the header")]
    BadLength {
        /// The length field.
        declared: u16,
        /// Bytes after the header in the datagram.
        available: usize,
    },
    /// An attribute (header, value or padding) runs past the end of the message.
    #[error("attribute at offset {offset} runs past the end of the message")]
    AttributeOverrun {
        /// Offset of the attribute's header from the start of the message.
        offset: usize,
    },
}

/// The class of a STUN message (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunClass {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    SuccessResponse,
    /// An error response.
    ErrorResponse,
}

/// A well-formed STUN message: header, length and attribute bounds checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunView<'a> {
    msg_type: u16,
    transaction_id: &'a [u8; 12],
    attrs: &'a [u8],
}

impl<'a> StunView<'a> {
    /// Checks that `buf` is exactly one STUN message: at least 20 bytes; a first
    /// byte of 0..=3 (RFC 7983, stricter than RFC 5389's "top two bits zero";
    /// it admits every method below 0x100, which covers all ICE and TURN use);
    /// the magic cookie; a length that is a multiple of 4 and equal to the
    /// bytes after the header; and attributes (with their padding) that end
    /// exactly at the end of the message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        let (header, attrs) = buf
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(StunError::TooShort(buf.len()))?;
        let [t0, t1, l0, l1, c0, c1, c2, c3, transaction_id @ ..] = header;
        if *t0 > 3 {
            return Err(StunError::NotStun);
        }
        let cookie = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
        if cookie != MAGIC_COOKIE {
            return Err(StunError::BadCookie(cookie));
        }
        let declared = u16::from_be_bytes([*l0, *l1]);
        if !declared.is_multiple_of(4) {
            return Err(StunError::UnalignedLength(declared));
        }
        if usize::from(declared) != attrs.len() {
            return Err(StunError::BadLength {
                declared,
                available: attrs.len(),
            });
        }
        let mut rest = attrs;
        while let Some((_, next)) = split_attribute(attrs, rest)? {
            rest = next;
        }
        Ok(Self {
            msg_type: u16::from_be_bytes([*t0, *t1]),
            transaction_id,
            attrs,
        })
    }

    /// The message type: method and class interleaved (RFC 5389 §6).
    pub fn message_type(&self) -> u16 {
        self.msg_type
    }

    /// The 12-bit method, e.g. [`METHOD_BINDING`].
    pub fn method(&self) -> u16 {
        let t = self.msg_type;
        (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    }

    /// The class: request, indication, success or error response.
    pub fn class(&self) -> StunClass {
        match (self.msg_type & 0x0100 != 0, self.msg_type & 0x0010 != 0) {
            (false, false) => StunClass::Request,
            (false, true) => StunClass::Indication,
            (true, false) => StunClass::SuccessResponse,
            (true, true) => StunClass::ErrorResponse,
        }
    }

    /// Whether this is a Binding request (an ICE connectivity check).
    pub fn is_binding_request(&self) -> bool {
        self.msg_type == BINDING_REQUEST
    }

    /// The 96-bit transaction id.
    pub fn transaction_id(&self) -> &'a [u8; 12] {
        self.transaction_id
    }

    /// The attributes, in order, as `(type, value)`; values exclude padding.
    ///
    /// [`parse`](Self::parse) already rejected attributes running past the end,
    /// so this yields every attribute of the message and then ends.
    pub fn attributes(&self) -> StunAttributes<'a> {
        StunAttributes {
            attrs: self.attrs,
            rest: self.attrs,
        }
    }

    /// The value of the first USERNAME attribute, if any.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.attributes()
            .find(|&(attr_type, _)| attr_type == ATTR_USERNAME)
            .map(|(_, value)| value)
    }
}

/// Iterator over a STUN message's attributes: see [`StunView::attributes`].
#[derive(Debug, Clone)]
pub struct StunAttributes<'a> {
    attrs: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Iterator for StunAttributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match split_attribute(self.attrs, self.rest) {
            Ok(Some((attr, next))) => {
                self.rest = next;
                Some(attr)
            }
            // Unreachable for a parsed view; end rather than loop.
            Ok(None) | Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

impl core::iter::FusedIterator for StunAttributes<'_> {}

/// One attribute as `(type, value)`, and the bytes after it (padding skipped).
type Split<'a> = ((u16, &'a [u8]), &'a [u8]);

/// Splits the attribute at the front of `rest` (a tail of `attrs`), or `None` at the end.
fn split_attribute<'a>(attrs: &[u8], rest: &'a [u8]) -> Result<Option<Split<'a>>, StunError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let overrun = StunError::AttributeOverrun {
        offset: HEADER_LEN + attrs.len().saturating_sub(rest.len()),
    };
    let ([t0, t1, l0, l1], body) = rest.split_first_chunk::<4>().ok_or(overrun)?;
    let len = usize::from(u16::from_be_bytes([*l0, *l1]));
    let padded = len.next_multiple_of(4);
    let value = body.get(..len).ok_or(overrun)?;
    let next = body.get(padded..).ok_or(overrun)?;
    Ok(Some(((u16::from_be_bytes([*t0, *t1]), value), next)))
}

/// Whether `buf` is a well-formed STUN Binding request.
pub fn is_binding_request(buf: &[u8]) -> bool {
    StunView::parse(buf).is_ok_and(|view| view.is_binding_request())
}

/// The demux fast path for a datagram from an unknown 4-tuple: if `buf` is a
/// well-formed STUN Binding request whose USERNAME is `local:remote`, returns
/// `local` (the bytes before the first `:`, 1..=[`MAX_UFRAG_LEN`] bytes).
///
/// In a request we *receive*, USERNAME is `<our ufrag>:<their ufrag>`, so
/// `local` is the ufrag we generated for the peer. It is unauthenticated: look
/// it up, but let str0m check MESSAGE-INTEGRITY before acting on it.
pub fn binding_request_local_ufrag(buf: &[u8]) -> Option<&[u8]> {
    // Cheap early exit before walking attributes: most traffic is not this.
    if be_u16(buf, 0)? != BINDING_REQUEST {
        return None;
    }
    let view = StunView::parse(buf).ok()?;
    local_part(view.username()?)
}

/// The part of an ICE USERNAME before the first `:`, if non-empty and not too long.
fn local_part(username: &[u8]) -> Option<&[u8]> {
    let colon = username.iter().position(|&b| b == b':')?;
    let (local, _) = username.split_at_checked(colon)?;
    (!local.is_empty() && local.len() <= MAX_UFRAG_LEN).then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{CHROME_BINDING_REQUEST, RFC5769_REQUEST, RFC5769_RESPONSE, hex};

    /// Builds a STUN message with correct lengths and padding.
    fn message(msg_type: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (attr_type, value) in attrs {
            body.extend_from_slice(&attr_type.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut buf = Vec::new();
        buf.extend_from_slice(&msg_type.to_be_bytes());
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&[7; 12]);
        buf.extend_from_slice(&body);
        buf
    }

    fn binding_with_username(username: &[u8]) -> Vec<u8> {
        message(BINDING_REQUEST, &[(ATTR_USERNAME, username)])
    }

    #[test]
    fn rfc5769_sample_request() {
        let buf = hex(RFC5769_REQUEST);
        let view = StunView::parse(&buf).unwrap();
        assert_eq!(view.method(), METHOD_BINDING);
        assert_eq!(view.class(), StunClass::Request);
        assert!(view.is_binding_request());
        assert_eq!(view.transaction_id(), &hex("b7e7a701bc34d686fa87dfae")[..]);
        let types: Vec<u16> = view.attributes().map(|(t, _)| t).collect();
        // SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT
        assert_eq!(types, [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
        let (_, software) = view.attributes().next().unwrap();
        assert_eq!(software, b"STUN test client");
        assert_eq!(view.username(), Some(&b"evtj:h6vY"[..]));
        assert_eq!(binding_request_local_ufrag(&buf), Some(&b"evtj"[..]));
        assert!(is_binding_request(&buf));
    }

    #[test]
    fn rfc5769_sample_response_has_odd_length_attribute() {
        let buf = hex(RFC5769_RESPONSE);
        let view = StunView::parse(&buf).unwrap();
        assert_eq!(view.method(), METHOD_BINDING);
        assert_eq!(view.class(), StunClass::SuccessResponse);
        let attrs: Vec<(u16, &[u8])> = view.attributes().collect();
        assert_eq!(attrs.len(), 4);
        // SOFTWARE "test vector" is 11 bytes, padded to 12.
        assert_eq!(attrs[0], (0x8022, &b"test vector"[..]));
        assert_eq!(attrs[1], (0x0020, &hex("0001a147e112a643")[..]));
        assert_eq!(attrs[3].0, 0x8028);
        assert_eq!(view.username(), None);
        assert!(!is_binding_request(&buf));
        assert_eq!(binding_request_local_ufrag(&buf), None);
    }

    #[test]
    fn chrome_style_binding_request() {
        let buf = hex(CHROME_BINDING_REQUEST);
        let view = StunView::parse(&buf).unwrap();
        let attrs: Vec<(u16, usize)> = view.attributes().map(|(t, v)| (t, v.len())).collect();
        // USERNAME, GOOG-NETWORK-INFO, ICE-CONTROLLING, USE-CANDIDATE (empty),
        // PRIORITY, MESSAGE-INTEGRITY, FINGERPRINT
        let want = [
            (0x0006, 13),
            (0xC057, 4),
            (0x802A, 8),
            (0x0025, 0),
            (0x0024, 4),
            (0x0008, 20),
            (0x8028, 4),
        ];
        assert_eq!(attrs, want);
        assert_eq!(view.username(), Some(&b"uc7Kq2Lm:hF3z"[..]));
        assert_eq!(binding_request_local_ufrag(&buf), Some(&b"uc7Kq2Lm"[..]));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for sample in [RFC5769_REQUEST, RFC5769_RESPONSE, CHROME_BINDING_REQUEST] {
            let buf = hex(sample);
            for len in 0..buf.len() {
                let prefix = &buf[..len];
                let err = StunView::parse(prefix).unwrap_err();
                if len < HEADER_LEN {
                    assert_eq!(err, StunError::TooShort(len));
                } else {
                    assert!(matches!(err, StunError::BadLength { .. }), "{err:?}");
                }
                assert_eq!(binding_request_local_ufrag(prefix), None);
                assert!(!is_binding_request(prefix));
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = hex(RFC5769_REQUEST);
        buf.extend_from_slice(&[0; 4]);
        let err = StunView::parse(&buf).unwrap_err();
        assert_eq!(
            err,
            StunError::BadLength {
                declared: 88,
                available: 92
            }
        );
        assert_eq!(binding_request_local_ufrag(&buf), None);
    }

    #[test]
    fn length_field_disagreeing() {
        let mut buf = hex(RFC5769_REQUEST);
        buf[3] = 0x54; // 84: four bytes short of the datagram
        assert!(matches!(
            StunView::parse(&buf),
            Err(StunError::BadLength { .. })
        ));
        buf[3] = 0x5c; // 92: four bytes past it
        assert!(matches!(
            StunView::parse(&buf),
            Err(StunError::BadLength { .. })
        ));
        buf[3] = 0x59;
        assert_eq!(StunView::parse(&buf), Err(StunError::UnalignedLength(0x59)));
    }

    #[test]
    fn header_checks() {
        let mut buf = hex(RFC5769_REQUEST);
        for first in [0x04, 0x16, 0x3f, 0x40, 0x80] {
            // 0x04..=0x3f has the top two bits clear but is DTLS by RFC 7983.
            buf[0] = first;
            assert_eq!(StunView::parse(&buf), Err(StunError::NotStun));
        }
        buf[0] = 0x03;
        assert!(StunView::parse(&buf).is_ok());
        let mut buf = hex(RFC5769_REQUEST);
        buf[4] = 0;
        assert_eq!(
            StunView::parse(&buf),
            Err(StunError::BadCookie(0x0012_a442))
        );
    }

    #[test]
    fn attribute_overrun() {
        // USERNAME claims 255 bytes; the message has 12 after its header.
        let mut buf = binding_with_username(b"evtj:h6vY");
        buf[22..24].copy_from_slice(&255u16.to_be_bytes());
        assert_eq!(
            StunView::parse(&buf),
            Err(StunError::AttributeOverrun { offset: 20 })
        );
        assert_eq!(binding_request_local_ufrag(&buf), None);

        // Second attribute runs one byte past the end (value 5, region 4).
        let mut buf = message(
            BINDING_REQUEST,
            &[(0x0024, &[1, 2, 3, 4]), (0x8028, &[0; 4])],
        );
        buf[30..32].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(
            StunView::parse(&buf),
            Err(StunError::AttributeOverrun { offset: 28 })
        );
    }

    #[test]
    fn empty_message_has_no_attributes() {
        let buf = message(BINDING_REQUEST, &[]);
        let view = StunView::parse(&buf).unwrap();
        assert_eq!(view.attributes().count(), 0);
        assert_eq!(view.username(), None);
        assert!(is_binding_request(&buf));
        assert_eq!(binding_request_local_ufrag(&buf), None);
    }

    #[test]
    fn username_forms() {
        let local =
            |u: &[u8]| binding_request_local_ufrag(&binding_with_username(u)).map(<[u8]>::to_vec);
        assert_eq!(local(b"abcd:efgh"), Some(b"abcd".to_vec()));
        assert_eq!(local(b"a:b:c"), Some(b"a".to_vec()));
        assert_eq!(local(b"a:"), Some(b"a".to_vec()));
        assert_eq!(local(b"abcdefgh"), None, "no colon");
        assert_eq!(local(b":efgh"), None, "empty local part");
        assert_eq!(local(b":"), None);
        assert_eq!(local(b""), None);
        let mut long = vec![b'x'; MAX_UFRAG_LEN];
        long.extend_from_slice(b":peer");
        assert_eq!(local(&long).map(|l| l.len()), Some(MAX_UFRAG_LEN));
        long.insert(0, b'x');
        assert_eq!(local(&long), None, "local part over 256 bytes");
    }

    #[test]
    fn only_binding_requests_yield_a_ufrag() {
        for msg_type in [0x0011, 0x0101, 0x0111, 0x0003] {
            let buf = message(msg_type, &[(ATTR_USERNAME, b"abcd:efgh")]);
            assert!(StunView::parse(&buf).is_ok());
            assert!(!is_binding_request(&buf));
            assert_eq!(
                binding_request_local_ufrag(&buf),
                None,
                "type {msg_type:#06x}"
            );
        }
    }

    #[test]
    fn first_username_wins() {
        let buf = message(
            BINDING_REQUEST,
            &[(ATTR_USERNAME, b"first:x"), (ATTR_USERNAME, b"second:y")],
        );
        assert_eq!(binding_request_local_ufrag(&buf), Some(&b"first"[..]));
    }

    #[test]
    fn method_and_class_bits() {
        let view = |t: u16| {
            let buf = message(t, &[]);
            let v = StunView::parse(&buf).unwrap();
            (v.method(), v.class(), v.message_type())
        };
        assert_eq!(view(0x0001), (1, StunClass::Request, 0x0001));
        assert_eq!(view(0x0011), (1, StunClass::Indication, 0x0011));
        assert_eq!(view(0x0101), (1, StunClass::SuccessResponse, 0x0101));
        assert_eq!(view(0x0111), (1, StunClass::ErrorResponse, 0x0111));
        assert_eq!(view(0x0003), (3, StunClass::Request, 0x0003));
        assert_eq!(view(0x02EF), (0xFF, StunClass::Request, 0x02EF));
        assert_eq!(view(0x0200), (0x80, StunClass::Request, 0x0200)); // GOOG-PING
    }

    #[test]
    fn errors_display() {
        let e = StunError::BadLength {
            declared: 8,
            available: 4,
        };
        assert_eq!(
            e.to_string(),
            "message length 8 but 4 bytes follow the header"
        );
    }
}
