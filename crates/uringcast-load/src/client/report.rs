//! What a client measured: per track, which packets arrived (by the trailer's
//! sequence number), duplicates, reordering, corruption, one-way latency, and
//! the continuity of the RTP sequence numbers the server wrote.

use std::collections::HashSet;

use serde::Serialize;

/// Accounting of one received track.
#[derive(Debug, Default, Clone)]
pub struct TrackCounter {
    seen: HashSet<(u32, u32)>,
    max_seq: Option<(u32, u32)>,
    /// Packets received (including duplicates and corrupt ones).
    pub packets: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub corrupt: u64,
    /// One-way latencies in microseconds.
    pub latencies_us: Vec<u64>,
    last_rtp_seq: Option<u64>,
    /// Largest forward jump of the RTP sequence number minus one (0: contiguous).
    pub max_rtp_gap: u64,
    /// RTP sequence numbers that went backwards (reordering or a reset).
    pub rtp_backwards: u64,
}

impl TrackCounter {
    /// Records a packet whose trailer said (`tag`, `seq`), received `latency_us`
    /// after it was sent, carried in RTP sequence number `rtp_seq`.
    pub fn record(&mut self, tag: u32, seq: u32, latency_us: u64, rtp_seq: u64) {
        self.packets += 1;
        if !self.seen.insert((tag, seq)) {
            self.duplicates += 1;
            return;
        }
        match self.max_seq {
            Some(max) if (tag, seq) < max && tag == max.0 => self.reordered += 1,
            Some(max) if (tag, seq) < max => {}
            _ => self.max_seq = Some((tag, seq)),
        }
        self.latencies_us.push(latency_us);
        if let Some(last) = self.last_rtp_seq {
            if rtp_seq > last {
                self.max_rtp_gap = self.max_rtp_gap.max(rtp_seq - last - 1);
            } else {
                self.rtp_backwards += 1;
            }
        }
        if self.last_rtp_seq.is_none_or(|last| rtp_seq > last) {
            self.last_rtp_seq = Some(rtp_seq);
        }
    }

    /// A payload whose trailer did not verify.
    pub fn record_corrupt(&mut self) {
        self.packets += 1;
        self.corrupt += 1;
    }

    /// Distinct packets received from publisher `tag`.
    pub fn unique_from(&self, tag: u32) -> u64 {
        self.seen.iter().filter(|(t, _)| *t == tag).count() as u64
    }

    /// The runs of sequence numbers `0..sent` of publisher `tag` never
    /// received, as `(first, last)` (for failure messages).
    pub fn missing_from(&self, tag: u32, sent: u32) -> Vec<(u32, u32)> {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for seq in (0..sent).filter(|s| !self.seen.contains(&(tag, *s))) {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == seq => *last = seq,
                _ => runs.push((seq, seq)),
            }
        }
        runs
    }

    /// Distinct packets received.
    pub fn unique(&self) -> u64 {
        self.seen.len() as u64
    }

    /// The summary of this track.
    pub fn summary(&self) -> TrackSummary {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        TrackSummary {
            packets: self.packets,
            unique: self.unique(),
            duplicates: self.duplicates,
            reordered: self.reordered,
            corrupt: self.corrupt,
            max_rtp_gap: self.max_rtp_gap,
            rtp_backwards: self.rtp_backwards,
            latency_p50_us: percentile(&sorted, 50.0),
            latency_p99_us: percentile(&sorted, 99.0),
            latency_max_us: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// A track's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TrackSummary {
    pub packets: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub corrupt: u64,
    pub max_rtp_gap: u64,
    pub rtp_backwards: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
}

/// The nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_duplicates_and_reordering_are_told_apart() {
        let mut t = TrackCounter::default();
        for (seq, rtp) in [(0, 100), (1, 101), (3, 103), (2, 102), (2, 102), (5, 105)] {
            t.record(1, seq, 1000 + u64::from(seq), rtp);
        }
        t.record_corrupt();
        let s = t.summary();
        assert_eq!(s.packets, 7);
        assert_eq!(s.unique, 5);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.reordered, 1);
        assert_eq!(s.corrupt, 1);
        assert_eq!(s.max_rtp_gap, 1);
        assert_eq!(s.rtp_backwards, 1);
        assert_eq!(t.unique_from(1), 5);
        assert_eq!(t.unique_from(2), 0);
    }

    #[test]
    fn a_new_publisher_tag_is_not_reordering() {
        let mut t = TrackCounter::default();
        t.record(1, 50, 0, 10);
        t.record(2, 0, 0, 11);
        t.record(2, 1, 0, 12);
        assert_eq!(t.summary().reordered, 0);
        assert_eq!(t.summary().max_rtp_gap, 0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
