//! Per-viewer, per-track rewriting of RTP sequence numbers and timestamps.
//!
//! A viewer sees one continuous stream per track even when the room's
//! publisher leaves and another takes over: sequence numbers continue at the
//! last one sent plus one, timestamps continue from the last one sent plus the
//! wall time that passed (in the codec's clock), and the caller is told that
//! the source switched so it can ask the new publisher for a keyframe.

use std::time::Instant;

/// Keeps one outgoing track continuous across changes of source.
#[derive(Debug, Default)]
pub struct Rewriter {
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    /// Identifies the incoming stream (publisher generation and SSRC).
    source: u64,
    /// The first extended sequence number seen from `source`.
    first_in_seq: u64,
    /// Added (wrapping) to an incoming extended sequence number.
    seq_offset: u64,
    /// Added (wrapping) to an incoming RTP timestamp.
    ts_offset: u32,
    /// The highest outgoing extended sequence number so far.
    max_out_seq: u64,
    /// The outgoing timestamp of the packet with `max_out_seq`, and when it arrived.
    max_out_ts: u32,
    max_out_at: Instant,
}

/// Where an incoming packet goes in the outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Outgoing extended sequence number.
    pub seq: u64,
    /// Outgoing RTP timestamp.
    pub ts: u32,
    /// This packet starts a new source (first packet ever, or a new publisher).
    pub switched: bool,
}

impl Rewriter {
    /// Maps one incoming packet. `clock_rate` is the codec's RTP clock (Hz),
    /// used to turn the wall time between sources into timestamp ticks.
    /// Returns `None` for a packet older than the first one seen from its
    /// source (it cannot be placed without going backwards).
    pub fn rewrite(
        &mut self,
        source: u64,
        seq: u64,
        ts: u32,
        arrived: Instant,
        clock_rate: u32,
    ) -> Option<Rewritten> {
        let switched = match &self.state {
            Some(state) if state.source == source => false,
            Some(state) => {
                let next_seq = state.max_out_seq.wrapping_add(1);
                let elapsed = arrived.saturating_duration_since(state.max_out_at);
                let ticks = (elapsed.as_secs_f64() * f64::from(clock_rate)) as u64;
                // At least one tick so the new source never repeats a timestamp.
                let next_ts = state
                    .max_out_ts
                    .wrapping_add(ticks.clamp(1, u64::from(u32::MAX)) as u32);
                self.state = Some(State {
                    source,
                    first_in_seq: seq,
                    seq_offset: next_seq.wrapping_sub(seq),
                    ts_offset: next_ts.wrapping_sub(ts),
                    max_out_seq: next_seq,
                    max_out_ts: next_ts,
                    max_out_at: arrived,
                });
                true
            }
            None => {
                // Start below 65536 so the receiver needs no out-of-band ROC.
                let start = seq & 0xffff;
                self.state = Some(State {
                    source,
                    first_in_seq: seq,
                    seq_offset: start.wrapping_sub(seq),
                    ts_offset: 0,
                    max_out_seq: start,
                    max_out_ts: ts,
                    max_out_at: arrived,
                });
                true
            }
        };
        let state = self.state.as_mut()?;
        if seq < state.first_in_seq {
            return None;
        }
        let out_seq = seq.wrapping_add(state.seq_offset);
        let out_ts = ts.wrapping_add(state.ts_offset);
        if out_seq > state.max_out_seq {
            state.max_out_seq = out_seq;
            state.max_out_ts = out_ts;
            state.max_out_at = arrived;
        }
        Some(Rewritten {
            seq: out_seq,
            ts: out_ts,
            switched,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn first_packet_starts_below_65536_and_keeps_spacing() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        let first = r.rewrite(1, 3 * 65536 + 100, 5000, t0, 90_000).unwrap();
        assert_eq!(first.seq, 100);
        assert_eq!(first.ts, 5000);
        assert!(first.switched);
        let next = r.rewrite(1, 3 * 65536 + 101, 8000, t0, 90_000).unwrap();
        assert_eq!((next.seq, next.ts, next.switched), (101, 8000, false));
    }

    #[test]
    fn reordered_packets_keep_their_place_and_older_than_first_are_dropped() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        r.rewrite(1, 1000, 0, t0, 90_000).unwrap();
        r.rewrite(1, 1002, 0, t0, 90_000).unwrap();
        assert_eq!(r.rewrite(1, 1001, 0, t0, 90_000).unwrap().seq, 1001);
        assert_eq!(r.rewrite(1, 999, 0, t0, 90_000), None);
    }

    #[test]
    fn a_new_source_continues_sequence_and_time() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        for i in 0..10u64 {
            r.rewrite(1, 40_000 + i, 1_000 + i as u32 * 3000, t0, 90_000)
                .unwrap();
        }
        // Last out: seq 40009, ts 28000. The new publisher starts 100 ms later
        // with unrelated numbers.
        let t1 = t0 + Duration::from_millis(100);
        let a = r.rewrite(2, 7, 4_000_000_000, t1, 90_000).unwrap();
        assert!(a.switched);
        assert_eq!(a.seq, 40_010);
        assert_eq!(a.ts, 28_000 + 9000);
        let b = r
            .rewrite(2, 8, 4_000_000_000u32.wrapping_add(3000), t1, 90_000)
            .unwrap();
        assert!(!b.switched);
        assert_eq!(b.seq, 40_011);
        assert_eq!(b.ts, 28_000 + 9000 + 3000);
    }

    #[test]
    fn a_switch_with_no_elapsed_time_still_advances_the_timestamp() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        r.rewrite(1, 10, 500, t0, 48_000).unwrap();
        let a = r.rewrite(2, 99, 0, t0, 48_000).unwrap();
        assert_eq!((a.seq, a.ts), (11, 501));
    }
}
