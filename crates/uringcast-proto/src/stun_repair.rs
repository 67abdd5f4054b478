//! Binding requests str0m would refuse to parse, made acceptable — when, and
//! only when, they authenticate.
//!
//! FFmpeg's WHIP muxer sends its ICE connectivity checks without PRIORITY
//! and without ICE-CONTROLLING. RFC 8445 §7.1.1 requires PRIORITY, and
//! str0m's STUN parser drops a Binding request that lacks it before it even
//! looks at MESSAGE-INTEGRITY, so such a client could never connect.
//!
//! [`repair_binding_request`] checks the request's MESSAGE-INTEGRITY with our
//! own ICE password (short-term credentials, RFC 8489 §9.1) first. Only a
//! request that verifies is rebuilt: same transaction id, same attributes,
//! plus PRIORITY (a peer-reflexive priority: the check names no candidate)
//! and, when it claims no role, ICE-CONTROLLING with a random tiebreaker (an
//! ICE-lite server is always controlled, so this can never conflict); then
//! MESSAGE-INTEGRITY and FINGERPRINT are computed afresh. str0m then checks
//! the rebuilt request like any other and answers it with the same
//! transaction id, which is all the client matches on. A request whose
//! integrity does not verify is refused here and never reaches str0m.
//!
//! The same rebuild adds USE-CANDIDATE when the peer asks for it: a client
//! that nominates only once (regular nomination, as Firefox does) never
//! sends it again after a NAT rebinding, and str0m would keep its media on
//! the dead path (see `egress`).
//!
//! [`rebuild_binding_request`] is the general tool: the test client uses it
//! the other way round, to strip PRIORITY and ICE-CONTROLLING from its own
//! requests and behave like FFmpeg.

use crc::{CRC_32_ISO_HDLC, Crc};
use subtle::ConstantTimeEq;

use crate::wire::StunView;

/// PRIORITY (RFC 8445 §16.1).
pub const ATTR_PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (RFC 8445 §16.1).
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// MESSAGE-INTEGRITY (RFC 8489 §14.5).
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// FINGERPRINT (RFC 8489 §14.7).
pub const ATTR_FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED (RFC 8445 §16.1).
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING (RFC 8445 §16.1).
pub const ATTR_ICE_CONTROLLING: u16 = 0x802A;

/// The priority a repaired request claims: a peer-reflexive UDP candidate
/// (type preference 110, local preference 65535, component 1).
pub const REPAIR_PRIORITY: u32 = (110 << 24) | (65535 << 8) | 255;

const HEADER_LEN: usize = 20;
const INTEGRITY_LEN: usize = 20;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// What [`repair_binding_request`] made of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Not a Binding request lacking PRIORITY (or, when asked to nominate,
    /// USE-CANDIDATE): hand the datagram to str0m as is.
    NotNeeded,
    /// The request authenticated; this is it with PRIORITY (and a role, and
    /// USE-CANDIDATE when asked) added.
    Repaired(Vec<u8>),
    /// It needed a change and its MESSAGE-INTEGRITY does not verify with our
    /// password (or it has none): drop it.
    Rejected,
}

/// HMAC-SHA1 over the concatenation of `parts`, by the crypto provider str0m
/// itself uses (aws-lc-rs).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    str0m::crypto::from_feature_flags()
        .sha1_hmac_provider
        .sha1_hmac(key, parts)
}

/// See the module docs. `password` is our ICE password; `tiebreaker` goes
/// into the ICE-CONTROLLING added when the request claims no role;
/// `nominate` adds USE-CANDIDATE when the request lacks it.
pub fn repair_binding_request(
    data: &[u8],
    password: &[u8],
    tiebreaker: u64,
    nominate: bool,
) -> Repair {
    let Ok(view) = StunView::parse(data) else {
        return Repair::NotNeeded;
    };
    if !view.is_binding_request() {
        return Repair::NotNeeded;
    }
    let has = |attr: u16| signed_attributes(&view).any(|(t, _)| t == attr);
    let add_priority = !has(ATTR_PRIORITY);
    let add_use_candidate = nominate && !has(ATTR_USE_CANDIDATE);
    if !add_priority && !add_use_candidate {
        return Repair::NotNeeded;
    }
    if !integrity_verifies(data, &view, password) {
        return Repair::Rejected;
    }
    let priority = REPAIR_PRIORITY.to_be_bytes();
    let tiebreaker = tiebreaker.to_be_bytes();
    let mut extra: Vec<(u16, &[u8])> = Vec::with_capacity(3);
    if add_priority {
        extra.push((ATTR_PRIORITY, &priority));
        if !has(ATTR_ICE_CONTROLLING) && !has(ATTR_ICE_CONTROLLED) {
            extra.push((ATTR_ICE_CONTROLLING, &tiebreaker));
        }
    }
    if add_use_candidate {
        extra.push((ATTR_USE_CANDIDATE, &[]));
    }
    Repair::Repaired(rebuild_binding_request(&view, |_| true, &extra, password))
}

/// A copy of the request in `view` with the attributes before its
/// MESSAGE-INTEGRITY that `keep` accepts, then `extra`, then a fresh
/// MESSAGE-INTEGRITY (keyed with `password`) and FINGERPRINT.
pub fn rebuild_binding_request(
    view: &StunView<'_>,
    keep: impl Fn(u16) -> bool,
    extra: &[(u16, &[u8])],
    password: &[u8],
) -> Vec<u8> {
    let mut attrs = Vec::with_capacity(128);
    let kept = signed_attributes(view).filter(|(t, _)| keep(*t));
    for (attr_type, value) in kept.chain(extra.iter().copied()) {
        push_attribute(&mut attrs, attr_type, value);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + attrs.len() + 32);
    out.extend_from_slice(&view.message_type().to_be_bytes());
    out.extend_from_slice(&length_field(attrs.len() + 4 + INTEGRITY_LEN));
    out.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    out.extend_from_slice(view.transaction_id());
    out.extend_from_slice(&attrs);
    let mac = hmac_sha1(password, &[&out]);
    push_attribute(&mut out, ATTR_MESSAGE_INTEGRITY, &mac);
    let total = out.len() - HEADER_LEN + 8;
    out[2..4].copy_from_slice(&length_field(total));
    let crc = Crc::<u32>::new(&CRC_32_ISO_HDLC).checksum(&out) ^ FINGERPRINT_XOR;
    push_attribute(&mut out, ATTR_FINGERPRINT, &crc.to_be_bytes());
    out
}

/// The attributes before the first MESSAGE-INTEGRITY: the ones it covers
/// (receivers ignore everything after it but FINGERPRINT).
fn signed_attributes<'a>(view: &StunView<'a>) -> impl Iterator<Item = (u16, &'a [u8])> {
    view.attributes()
        .take_while(|(t, _)| *t != ATTR_MESSAGE_INTEGRITY && *t != ATTR_FINGERPRINT)
}

/// Checks MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message up
/// to the attribute, with the length field counting through it.
fn integrity_verifies(data: &[u8], view: &StunView<'_>, password: &[u8]) -> bool {
    let mut offset = HEADER_LEN;
    for (attr_type, value) in view.attributes() {
        if attr_type == ATTR_MESSAGE_INTEGRITY {
            let (Some(header), Some(covered)) =
                (data.get(..HEADER_LEN), data.get(HEADER_LEN..offset))
            else {
                return false;
            };
            if value.len() != INTEGRITY_LEN {
                return false;
            }
            let mut adjusted = [0u8; HEADER_LEN];
            adjusted.copy_from_slice(header);
            adjusted[2..4].copy_from_slice(&length_field(offset - HEADER_LEN + 4 + INTEGRITY_LEN));
            let mac = hmac_sha1(password, &[&adjusted, covered]);
            return bool::from(mac.ct_eq(value));
        }
        offset += 4 + value.len().next_multiple_of(4);
    }
    false
}

fn length_field(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

fn push_attribute(buf: &mut Vec<u8>, attr_type: u16, value: &[u8]) {
    buf.extend_from_slice(&attr_type.to_be_bytes());
    buf.extend_from_slice(&length_field(value.len()));
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1: password of the sample request.
    const RFC5769_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.split_whitespace().collect();
        hex::decode(digits).unwrap()
    }

    fn rfc5769_request() -> Vec<u8> {
        hex("00010058 2112a442 b7e7a701 bc34d686 fa87dfae
            80220010 5354554e 20746573 7420636c 69656e74
            00240004 6e0001ff
            80290008 932ff9b1 51263b36
            00060009 6576746a 3a683676 59202020
            00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
            80280004 e57a3bcf")
    }

    fn lacks_priority(data: &[u8]) -> bool {
        StunView::parse(data).is_ok_and(|view| {
            view.is_binding_request() && !signed_attributes(&view).any(|(t, _)| t == ATTR_PRIORITY)
        })
    }

    fn attr_types(data: &[u8]) -> Vec<u16> {
        StunView::parse(data)
            .unwrap()
            .attributes()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn rebuilding_the_rfc5769_request_unchanged_reproduces_it() {
        let original = rfc5769_request();
        let view = StunView::parse(&original).unwrap();
        assert!(integrity_verifies(&original, &view, RFC5769_PASSWORD));
        assert!(!integrity_verifies(&original, &view, b"wrong password"));
        let rebuilt = rebuild_binding_request(&view, |_| true, &[], RFC5769_PASSWORD);
        // Same attributes, same values; the SOFTWARE padding differs (the
        // sample pads with spaces, we pad with zeros), so compare the MAC
        // by verifying, and the rest byte for byte outside the padding.
        let view2 = StunView::parse(&rebuilt).unwrap();
        assert_eq!(
            view.attributes()
                .map(|(t, v)| (t, v.len()))
                .take(4)
                .collect::<Vec<_>>(),
            view2
                .attributes()
                .map(|(t, v)| (t, v.len()))
                .take(4)
                .collect::<Vec<_>>()
        );
        assert!(integrity_verifies(&rebuilt, &view2, RFC5769_PASSWORD));
        assert_eq!(rebuilt.len(), original.len());
        assert_eq!(&rebuilt[..20], &original[..20]);
        assert_eq!(
            repair_binding_request(&original, RFC5769_PASSWORD, 1, false),
            Repair::NotNeeded
        );
    }

    /// The sample request as FFmpeg would send it: no PRIORITY, no role.
    fn ffmpeg_style() -> Vec<u8> {
        let original = rfc5769_request();
        let view = StunView::parse(&original).unwrap();
        rebuild_binding_request(
            &view,
            |t| t != ATTR_PRIORITY && t != ATTR_ICE_CONTROLLED,
            &[(ATTR_USE_CANDIDATE, &[])],
            RFC5769_PASSWORD,
        )
    }

    #[test]
    fn a_request_without_priority_is_repaired_only_with_the_right_password() {
        let stripped = ffmpeg_style();
        assert!(lacks_priority(&stripped));
        assert!(!lacks_priority(&rfc5769_request()));
        assert_eq!(
            repair_binding_request(&stripped, b"not our password", 7, false),
            Repair::Rejected
        );
        let Repair::Repaired(fixed) = repair_binding_request(&stripped, RFC5769_PASSWORD, 7, false)
        else {
            panic!("repaired")
        };
        assert_eq!(
            attr_types(&fixed),
            [
                0x8022,
                0x0006,
                ATTR_USE_CANDIDATE,
                ATTR_PRIORITY,
                ATTR_ICE_CONTROLLING,
                ATTR_MESSAGE_INTEGRITY,
                ATTR_FINGERPRINT
            ]
        );
        let view = StunView::parse(&fixed).unwrap();
        assert_eq!(
            view.transaction_id(),
            StunView::parse(&stripped).unwrap().transaction_id()
        );
        assert!(integrity_verifies(&fixed, &view, RFC5769_PASSWORD));
        let attrs: Vec<_> = view.attributes().collect();
        assert_eq!(attrs[3].1, REPAIR_PRIORITY.to_be_bytes());
        assert_eq!(attrs[4].1, 7u64.to_be_bytes());
        // FINGERPRINT: CRC-32 of everything before it, XOR 0x5354554e.
        let crc =
            Crc::<u32>::new(&CRC_32_ISO_HDLC).checksum(&fixed[..fixed.len() - 8]) ^ FINGERPRINT_XOR;
        assert_eq!(&fixed[fixed.len() - 4..], crc.to_be_bytes());
        assert!(!lacks_priority(&fixed));
    }

    #[test]
    fn a_request_that_claims_a_role_keeps_it() {
        let original = rfc5769_request();
        let view = StunView::parse(&original).unwrap();
        let no_priority =
            rebuild_binding_request(&view, |t| t != ATTR_PRIORITY, &[], RFC5769_PASSWORD);
        let Repair::Repaired(fixed) =
            repair_binding_request(&no_priority, RFC5769_PASSWORD, 7, false)
        else {
            panic!("repaired")
        };
        let types = attr_types(&fixed);
        assert!(types.contains(&ATTR_ICE_CONTROLLED));
        assert!(!types.contains(&ATTR_ICE_CONTROLLING));
    }

    #[test]
    fn a_nomination_is_added_only_when_asked_missing_and_authenticated() {
        let original = rfc5769_request();
        assert!(!attr_types(&original).contains(&ATTR_USE_CANDIDATE));
        assert_eq!(
            repair_binding_request(&original, b"not our password", 7, true),
            Repair::Rejected
        );
        let Repair::Repaired(nominating) =
            repair_binding_request(&original, RFC5769_PASSWORD, 7, true)
        else {
            panic!("repaired")
        };
        let types = attr_types(&nominating);
        assert_eq!(
            types[types.len() - 3..],
            [ATTR_USE_CANDIDATE, ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT]
        );
        // It had PRIORITY and a role: neither is added or changed.
        assert_eq!(types.iter().filter(|&&t| t == ATTR_PRIORITY).count(), 1);
        assert!(!types.contains(&ATTR_ICE_CONTROLLING));
        let view = StunView::parse(&nominating).unwrap();
        assert!(integrity_verifies(&nominating, &view, RFC5769_PASSWORD));
        assert_eq!(view.transaction_id(), &original[8..20]);
        // Already nominating: left alone.
        assert_eq!(
            repair_binding_request(&nominating, RFC5769_PASSWORD, 7, true),
            Repair::NotNeeded
        );
    }

    #[test]
    fn junk_and_other_messages_are_left_alone_or_refused() {
        assert_eq!(
            repair_binding_request(&[], b"x", 1, false),
            Repair::NotNeeded
        );
        assert_eq!(
            repair_binding_request(&[0x80; 40], b"x", 1, false),
            Repair::NotNeeded
        );
        // A success response without PRIORITY is not ours to touch.
        let mut response = ffmpeg_style();
        response[0] = 0x01;
        response[1] = 0x01;
        assert_eq!(
            repair_binding_request(&response, RFC5769_PASSWORD, 1, false),
            Repair::NotNeeded
        );
        // No MESSAGE-INTEGRITY at all: nothing to verify, refused.
        let bare = [
            0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        assert_eq!(
            repair_binding_request(&bare, b"x", 1, false),
            Repair::Rejected
        );
        // A MESSAGE-INTEGRITY of the wrong length.
        let view = StunView::parse(&bare).unwrap();
        let mut short_mi = rebuild_binding_request(&view, |_| true, &[], b"x");
        short_mi.truncate(20);
        short_mi.extend_from_slice(&[0x00, 0x08, 0x00, 0x04, 1, 2, 3, 4]);
        short_mi[3] = 8;
        assert_eq!(
            repair_binding_request(&short_mi, b"x", 1, false),
            Repair::Rejected
        );
        // Every truncation of a stripped request: never a panic, never repaired.
        let stripped = ffmpeg_style();
        for len in 0..stripped.len() {
            assert!(!matches!(
                repair_binding_request(&stripped[..len], RFC5769_PASSWORD, 1, false),
                Repair::Repaired(_)
            ));
        }
    }
}
