//! Pure packet peeks: what the demux and router need to know about a datagram
//! before (or instead of) handing it to str0m.
//!
//! This module owns:
//! - [`classify`]: RFC 7983 first-byte demultiplexing (STUN / DTLS / RTP / RTCP),
//!   with RFC 5761 to tell RTP from RTCP;
//! - [`StunView`]: a checked view over one STUN message, and the demux fast path
//!   [`binding_request_local_ufrag`] that finds our ICE ufrag in a Binding request;
//! - [`RtpHeader`]: the fixed RTP header, CSRC list, extension and padding lengths;
//! - [`SdpFrag`]: a checked view over a trickle-ice-sdpfrag body (RFC 8840), the
//!   one text format here: a WHIP/WHEP PATCH carries it.
//!
//! Rules for everything below: input is `&[u8]` from the network, so no function
//! here may panic on any input, allocate, read a clock or do I/O. Lengths are
//! checked before bytes are read (`get`, `split_first_chunk`, `split_at_checked`);
//! a parse either returns a value whose every accessor is infallible, or an error
//! naming what was wrong. Errors here are always the peer's fault: the caller
//! drops the datagram and counts it.
//!
//! Nothing here authenticates anything: SRTP, MESSAGE-INTEGRITY and FINGERPRINT
//! are checked later, by str0m. There is no RTCP parser: RTCP arrives as
//! SRTCP, readable only after str0m decrypted it, so str0m parses it too
//! (a clear-text parser here was used by nothing but its own benchmark and
//! fuzz target, and was removed).

mod classify;
mod rtp;
mod sdpfrag;
mod stun;

#[cfg(test)]
mod tests;

pub use classify::{PacketClass, classify};
pub use rtp::{RtpError, RtpHeader};
pub use sdpfrag::{
    CandidateAddress, CandidateAttr, IceCredentials, MAX_CANDIDATES, SdpFrag, SdpFragError,
};
pub use stun::{
    ATTR_USERNAME, MAX_UFRAG_LEN, METHOD_BINDING, StunAttributes, StunClass, StunError, StunView,
    binding_request_local_ufrag, is_binding_request,
};

/// Big-endian `u16` at `at`, or `None` if `buf` is too short.
fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..)?.first_chunk::<2>()?;
    Some(u16::from_be_bytes(*bytes))
}
