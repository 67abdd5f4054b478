//! A recorded track's reorder buffer: packets come out in sequence order;
//! a missing one is waited for at most [`HOLD`] (a late retransmission
//! still lands) or while fewer than [`MAX_HELD`] packets wait behind it,
//! then it is reported as a gap. A new source (SSRC) starts a new
//! sequence: what is held of the old one comes out first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sfu::Forwarded;

/// How long a missing packet is waited for.
pub const HOLD: Duration = Duration::from_millis(200);

/// Packets held behind a missing one, at most.
pub const MAX_HELD: usize = 512;

/// What comes out, in order.
#[derive(Debug)]
pub enum Released {
    Packet(Arc<Forwarded>),
    /// This many packets never came (or came too late).
    Gap(u64),
}

/// One track's buffer.
#[derive(Debug, Default)]
pub struct Hold {
    source: Option<u64>,
    /// The sequence number expected next.
    next: u64,
    held: BTreeMap<u64, Arc<Forwarded>>,
}

impl Hold {
    /// Takes `packet`; what is now in order goes to `out`.
    pub fn push(&mut self, packet: Arc<Forwarded>, out: &mut Vec<Released>) {
        if self.source != Some(packet.source) {
            self.flush(out);
            self.source = Some(packet.source);
            self.next = packet.seq;
        }
        if packet.seq < self.next {
            return; // a duplicate, or later than we waited
        }
        self.held.insert(packet.seq, packet);
        self.release(out);
        if self.held.len() > MAX_HELD {
            self.skip(out);
        }
    }

    /// Gives up on what is missing for longer than [`HOLD`] at `now`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Released>) {
        while let Some((_, first)) = self.held.first_key_value() {
            if now.saturating_duration_since(first.received) < HOLD {
                break;
            }
            self.skip(out);
        }
    }

    /// Releases everything held, in order, gaps included.
    pub fn flush(&mut self, out: &mut Vec<Released>) {
        while !self.held.is_empty() {
            self.skip(out);
        }
    }

    /// Skips to the oldest held packet (a gap) and releases from there.
    fn skip(&mut self, out: &mut Vec<Released>) {
        if let Some(&seq) = self.held.keys().next() {
            if seq > self.next {
                out.push(Released::Gap(seq - self.next));
            }
            self.next = seq;
            self.release(out);
        }
    }

    fn release(&mut self, out: &mut Vec<Released>) {
        while let Some(packet) = self.held.remove(&self.next) {
            out.push(Released::Packet(packet));
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::packet;

    fn seqs(out: &[Released]) -> Vec<i64> {
        out.iter()
            .map(|r| match r {
                Released::Packet(p) => p.seq as i64,
                Released::Gap(n) => -(*n as i64),
            })
            .collect()
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let (mut hold, mut out) = (Hold::default(), Vec::new());
        let t = Instant::now();
        for seq in [10, 12, 11, 13] {
            hold.push(packet(1, seq, 0, t), &mut out);
        }
        assert_eq!(seqs(&out), [10, 11, 12, 13]);
    }

    #[test]
    fn a_lost_packet_is_a_gap_after_the_hold_time() {
        let (mut hold, mut out) = (Hold::default(), Vec::new());
        let t = Instant::now();
        hold.push(packet(1, 10, 0, t), &mut out);
        hold.push(packet(1, 13, 0, t), &mut out);
        hold.expire(t + HOLD / 2, &mut out);
        assert_eq!(seqs(&out), [10]);
        hold.expire(t + HOLD, &mut out);
        assert_eq!(seqs(&out), [10, -2, 13]);
        // The late one is dropped.
        hold.push(packet(1, 11, 0, t), &mut out);
        assert_eq!(seqs(&out), [10, -2, 13]);
    }

    #[test]
    fn too_many_held_packets_skip_the_gap() {
        let (mut hold, mut out) = (Hold::default(), Vec::new());
        let t = Instant::now();
        hold.push(packet(1, 0, 0, t), &mut out);
        for seq in 2..=(MAX_HELD as u64 + 2) {
            hold.push(packet(1, seq, 0, t), &mut out);
        }
        assert_eq!(out.len(), MAX_HELD + 3);
        assert_eq!(seqs(&out)[..3], [0, -1, 2]);
    }

    #[test]
    fn a_new_source_flushes_the_old_one() {
        let (mut hold, mut out) = (Hold::default(), Vec::new());
        let t = Instant::now();
        hold.push(packet(1, 10, 0, t), &mut out);
        hold.push(packet(1, 12, 0, t), &mut out);
        hold.push(packet(2, 500, 0, t), &mut out);
        assert_eq!(seqs(&out), [10, -1, 12, 500]);
    }
}
