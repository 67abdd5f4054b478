//! What str0m 0.25 in RTP mode needs from its driver so that reordered and
//! lost packets are recovered: a short hold at the start of every incoming
//! stream ([`StartHold`]), and a looser cap on retransmissions
//! ([`allow_resends`]). Sans-IO: time is an argument. Used by the server's
//! peers and by the test client.
//!
//! **The start of a stream.** str0m starts a receive stream's register at
//! the first packet it takes (`NackRegister::init_with_seq` in
//! `streams/register_nack.rs`) and from then on rejects anything older
//! (`NackRegister::accepts`: `seq < active.start`), which `Session::handle_rtp`
//! drops as a duplicate — never delivered, never NACKed. Mid-stream a late
//! packet is fine; one that the network delivers after a later one *at the
//! start* is lost for good. So the first packets of a new SSRC are held for
//! [`START_HOLD`] and handed over in sequence order.
//!
//! **Retransmissions.** str0m's send streams drop every queued resend while
//! retransmitted bytes exceed 15 % of the bytes sent in the last second
//! (`DEFAULT_RTX_RATIO_CAP`). str0m NACKs a gap on its next NACK tick (33 ms),
//! with no allowance for reordering, so on a path that reorders every gap
//! is NACKed, often spuriously, and 5 % loss plus reordering crosses 15 %:
//! real losses then go unrepaired.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::media::Mid;
use str0m::net::Protocol;

use crate::wire::{PacketClass, RtpHeader, classify};

/// How long the first packets of a new stream wait for earlier ones that
/// the network delivers late. Paid once per stream, on its first packets.
pub const START_HOLD: Duration = Duration::from_millis(50);

/// Most packets held for one stream (a keyframe's worth); reaching it
/// releases the stream at once.
const MAX_HELD_PER_STREAM: usize = 64;
/// Most streams held at once; a stream beyond that passes unheld.
const MAX_HOLDING: usize = 4;
/// SSRCs remembered as started (the oldest is forgotten first).
const MAX_STARTED: usize = 16;

/// Share of a second's sent bytes that may be retransmissions before str0m
/// drops queued resends (str0m's default: 0.15). With 5 % loss and
/// 30 ± 10 ms of jitter on both hops the server retransmits ~20 % to a
/// viewer; 0.5 still stops a peer from NACKing more than it is sent.
pub const RTX_RATIO_CAP: f32 = 0.5;
/// Packets and age a send stream keeps for resending (str0m's defaults).
const RTX_CACHE_PACKETS: usize = 2000;
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);

/// A datagram held back, with the addresses it arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub proto: Protocol,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct Holding {
    ssrc: u32,
    until: Instant,
    first_seq: u16,
    packets: Vec<(u16, Held)>,
}

/// Holds the first packets of each new incoming RTP stream for
/// [`START_HOLD`], then gives them back in sequence order (see the module
/// doc). Usage: offer every datagram to [`StartHold::hold`] and feed it on
/// only when that returns `false`; whenever [`StartHold::deadline`] has
/// passed, feed what [`StartHold::release`] returns, in its order; tell
/// [`StartHold::confirm`] the SSRC of every packet str0m delivers.
///
/// Only a stream str0m delivered a packet of (authenticated by SRTP) counts
/// as started, so datagrams with made-up SSRCs (spoofed, or before SRTP is
/// keyed) cannot push a real stream out of the started set; they are held
/// for at most [`START_HOLD`], at most `MAX_HOLDING` streams of at most
/// `MAX_HELD_PER_STREAM` packets at a time, then dropped by str0m.
#[derive(Debug)]
pub struct StartHold {
    /// Payload types never held (RTX: it has its own, reorder-tolerant window).
    skip: u128,
    holding: Vec<Holding>,
    /// Streams str0m delivered a packet of, the latest last.
    started: Vec<u32>,
}

impl StartHold {
    /// A hold for every payload type but those in `skip` (the RTX ones).
    pub fn new(skip: impl IntoIterator<Item = u8>) -> Self {
        let skip = skip
            .into_iter()
            .filter(|pt| *pt < 128)
            .fold(0u128, |mask, pt| mask | 1 << pt);
        Self {
            skip,
            holding: Vec::new(),
            started: Vec::new(),
        }
    }

    /// Also never hold `pts` (the RTX payload types of tracks added by a
    /// renegotiation).
    pub fn also_skip(&mut self, pts: impl IntoIterator<Item = u8>) {
        for pt in pts.into_iter().filter(|pt| *pt < 128) {
            self.skip |= 1 << pt;
        }
    }

    /// Takes `data` if it is an RTP packet of a stream still in its start
    /// (`true`: do not feed it now); else `false`.
    pub fn hold(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        if classify(data) != PacketClass::Rtp {
            return false;
        }
        let Ok(header) = RtpHeader::parse(data) else {
            return false;
        };
        if self.skip & (1 << header.payload_type) != 0 || self.started.contains(&header.ssrc) {
            return false;
        }
        let held = Held {
            proto,
            source,
            destination,
            data: data.to_vec(),
        };
        if let Some(stream) = self.holding.iter_mut().find(|h| h.ssrc == header.ssrc) {
            stream.packets.push((header.sequence, held));
            if stream.packets.len() >= MAX_HELD_PER_STREAM {
                stream.until = now;
            }
            return true;
        }
        if self.holding.len() >= MAX_HOLDING {
            return false;
        }
        self.holding.push(Holding {
            ssrc: header.ssrc,
            until: now + START_HOLD,
            first_seq: header.sequence,
            packets: vec![(header.sequence, held)],
        });
        true
    }

    /// When [`StartHold::release`] has packets to give back.
    pub fn deadline(&self) -> Option<Instant> {
        self.holding.iter().map(|h| h.until).min()
    }

    /// The held packets of every stream whose hold ended by `now`, each
    /// stream's in sequence order.
    pub fn release(&mut self, now: Instant) -> Vec<Held> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.holding.len() {
            if self.holding[i].until > now {
                i += 1;
                continue;
            }
            let mut stream = self.holding.swap_remove(i);
            let first = stream.first_seq;
            // Sequence numbers wrap: order by distance from the first one held.
            stream
                .packets
                .sort_by_key(|(seq, _)| seq.wrapping_sub(first) as i16);
            out.extend(stream.packets.into_iter().map(|(_, held)| held));
        }
        out
    }

    /// str0m delivered a packet of `ssrc`: the stream has started, and its
    /// packets pass unheld from now on.
    pub fn confirm(&mut self, ssrc: u32) {
        if self.started.contains(&ssrc) {
            return;
        }
        if self.started.len() >= MAX_STARTED {
            self.started.remove(0);
        }
        self.started.push(ssrc);
    }
}

/// Lets the send streams of `mids` retransmit up to [`RTX_RATIO_CAP`] of
/// what they send (see the module doc), keeping str0m's cache size and age.
/// Call once the streams exist (after SDP negotiation): it empties their
/// resend caches.
pub fn allow_resends(rtc: &mut Rtc, mids: impl IntoIterator<Item = Mid>) {
    let mut api = rtc.direct_api();
    for mid in mids {
        if let Some(stream) = api.stream_tx_by_mid(mid, None) {
            stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xab; 20]);
        p
    }

    fn seqs(held: &[Held]) -> Vec<u16> {
        held.iter()
            .map(|h| u16::from_be_bytes([h.data[2], h.data[3]]))
            .collect()
    }

    #[test]
    fn a_new_stream_is_held_then_released_in_sequence_order_across_a_wrap() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut hold = StartHold::new([97]);
        let t0 = Instant::now();
        for (i, seq) in [65535u16, 1, 65534, 0].into_iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            assert!(hold.hold(at, Protocol::Udp, addr, addr, &rtp(96, seq, 7)));
        }
        assert_eq!(hold.deadline(), Some(t0 + START_HOLD));
        assert!(
            hold.release(t0 + START_HOLD - Duration::from_millis(1))
                .is_empty()
        );
        let out = hold.release(t0 + START_HOLD);
        assert_eq!(seqs(&out), [65534, 65535, 0, 1]);
        assert_eq!(hold.deadline(), None);
        // Once str0m delivered one, later packets pass, late or not.
        hold.confirm(7);
        assert!(!hold.hold(
            t0 + START_HOLD,
            Protocol::Udp,
            addr,
            addr,
            &rtp(96, 65533, 7)
        ));
        assert!(!hold.hold(t0 + START_HOLD, Protocol::Udp, addr, addr, &rtp(96, 2, 7)));
    }

    #[test]
    fn a_stream_str0m_never_delivered_is_held_again_and_made_up_ssrcs_do_not_evict() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut hold = StartHold::new([]);
        let now = Instant::now();
        hold.confirm(1);
        // Datagrams str0m refuses (no SRTP keys yet, forged) start no stream.
        for ssrc in 100..100 + 4 * MAX_STARTED as u32 {
            hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 1, ssrc));
            hold.release(now + START_HOLD);
        }
        assert!(
            hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 1, 100)),
            "held again"
        );
        assert!(
            !hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 9, 1)),
            "still started"
        );
    }

    #[test]
    fn rtx_rtcp_and_streams_beyond_the_limits_pass() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut hold = StartHold::new([97]);
        let now = Instant::now();
        assert!(
            !hold.hold(now, Protocol::Udp, addr, addr, &rtp(97, 5, 8)),
            "RTX"
        );
        let mut rtcp = rtp(96, 0, 9);
        rtcp[1] = 200;
        assert!(!hold.hold(now, Protocol::Udp, addr, addr, &rtcp), "RTCP");
        assert!(
            !hold.hold(now, Protocol::Udp, addr, addr, &[0x16, 0xfe, 0xfd]),
            "DTLS"
        );
        for ssrc in 0..MAX_HOLDING as u32 {
            assert!(hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 1, 100 + ssrc)));
        }
        assert!(
            !hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 1, 200)),
            "too many streams at once"
        );
        assert!(!hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, 2, 200)));
        // A full stream is released at once.
        for seq in 2..=MAX_HELD_PER_STREAM as u16 {
            assert!(hold.hold(now, Protocol::Udp, addr, addr, &rtp(96, seq, 100)));
        }
        assert_eq!(hold.deadline(), Some(now));
        assert_eq!(hold.release(now).len(), MAX_HELD_PER_STREAM);
    }
}
