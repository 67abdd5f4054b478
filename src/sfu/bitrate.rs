//! Per-session bitrate limits (`--max-bitrate-in`, `--max-bitrate-out`, like
//! Odoo's MAX_BITRATE_IN/OUT): a token bucket of bytes, sans-IO (time is the
//! caller's `now`). A publisher's bucket sees every RTP packet it sends; a
//! viewer's every packet written to it. A packet that finds the bucket empty
//! is dropped and counted by the caller.
//!
//! Audio is never dropped: it takes its tokens (the bucket may go into debt,
//! down to minus one burst), so an over-limit publisher loses video packets
//! first and its voice keeps flowing.

use std::time::{Duration, Instant};

/// The burst a bucket holds: this long at its rate...
const BURST_TIME: Duration = Duration::from_millis(500);

/// ...but never less than this many bytes (a few large video packets).
const MIN_BURST_BYTES: f64 = 16.0 * 1024.0;

/// A token bucket in bytes, refilled at `bits_per_second / 8`.
#[derive(Debug, Clone)]
pub struct BitrateLimit {
    bits_per_second: u64,
    bytes_per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl BitrateLimit {
    /// A limit of `bits_per_second`; `None` for 0 (no limit).
    pub fn new(bits_per_second: u64) -> Option<Self> {
        if bits_per_second == 0 {
            return None;
        }
        let bytes_per_second = bits_per_second as f64 / 8.0;
        let burst = (bytes_per_second * BURST_TIME.as_secs_f64()).max(MIN_BURST_BYTES);
        Some(Self {
            bits_per_second,
            bytes_per_second,
            burst,
            tokens: burst,
            last: None,
        })
    }

    /// The configured rate.
    pub fn bits_per_second(&self) -> u64 {
        self.bits_per_second
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            // Time going backwards (a packet stamped earlier) refills nothing.
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.bytes_per_second).min(self.burst);
        }
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
    }

    /// Whether a packet of `bytes` may pass at `now` (its tokens are taken if so).
    pub fn admit(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        let bytes = bytes as f64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// Takes the tokens of a packet that always passes (audio); the bucket
    /// may go into debt, at most one burst deep.
    pub fn charge(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.tokens = (self.tokens - bytes as f64).max(-self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit() {
        assert!(BitrateLimit::new(0).is_none());
    }

    #[test]
    fn the_long_run_rate_holds_after_the_burst() {
        // 800 kbit/s = 100 kB/s; burst max(50 kB, 16 KiB) = 50 kB.
        let mut limit = BitrateLimit::new(800_000).unwrap();
        assert_eq!(limit.bits_per_second(), 800_000);
        let t0 = Instant::now();
        // Offer 1000-byte packets at 400 kB/s for 2 s: 800 packets.
        let mut passed = 0u64;
        for i in 0..800u64 {
            let now = t0 + Duration::from_micros(i * 2_500);
            if limit.admit(now, 1000) {
                passed += 1;
            }
        }
        // 50 kB burst + 2 s × 100 kB/s = 250 kB → about 250 packets.
        assert!((240..=252).contains(&passed), "{passed}");
    }

    #[test]
    fn under_the_limit_everything_passes() {
        let mut limit = BitrateLimit::new(2_000_000).unwrap();
        let t0 = Instant::now();
        // 1 Mbit/s offered: 125 packets of 1000 bytes a second, for 3 s.
        for i in 0..375u64 {
            assert!(limit.admit(t0 + Duration::from_millis(i * 8), 1000), "{i}");
        }
    }

    #[test]
    fn audio_debt_is_bounded_and_time_never_runs_backwards() {
        let mut limit = BitrateLimit::new(8_000).unwrap(); // 1 kB/s, burst 16 KiB
        let t0 = Instant::now() + Duration::from_secs(10);
        for _ in 0..1000 {
            limit.charge(t0, 1000);
        }
        assert!(!limit.admit(t0, 1));
        // An earlier timestamp neither refills nor breaks anything.
        assert!(!limit.admit(t0 - Duration::from_secs(5), 1));
        // Debt is one burst (16 KiB) at most: 2 × 16.4 s at 1 kB/s refills it.
        assert!(limit.admit(t0 + Duration::from_secs(33), 1000));
    }

    /// Through real str0m peers in virtual time: a publisher over
    /// `--max-bitrate-in` loses packets (counted) and is sent a REMB naming
    /// the limit; a viewer over `--max-bitrate-out` loses packets (counted)
    /// and asks for a keyframe now and then to recover.
    #[test]
    fn peers_drop_over_their_limits_and_ask_the_publisher_to_slow_down() {
        use str0m::Event;
        use str0m::bwe::BweKind;

        use crate::sfu::sim::{connected_world, rtp_payloads};

        let mut world = connected_world(2);
        // In: 400 kbit/s; out for viewer 1: 200 kbit/s; viewer 0 unlimited.
        world.publisher.1.limit_bitrate(400_000, 0);
        world.viewers[1].1.limit_bitrate(0, 200_000);
        let mut seq = 1u64;
        let asks_before = world.viewer_keyframe_asks.clone();
        // 1000-byte packets every 10 ms: about 810 kbit/s for 4 s.
        world.run(Duration::from_secs(4), Duration::from_millis(10), |w| {
            w.publish(seq, vec![0x42; 1000]);
            seq += 1;
        });
        let sent = seq - 1;
        let dropped_in = world.out.dropped_bitrate_in;
        let dropped_out = world.out.dropped_bitrate_out;
        let got: Vec<u64> = world
            .viewers
            .iter()
            .map(|(end, _)| rtp_payloads(&end.events).len() as u64)
            .collect();
        // In: a 25 kB burst (0.5 s at 50 kB/s) + 4 s × 50 kB/s
        // ≈ 225 kB ≈ 223 packets of 1012 bytes pass; the rest are dropped.
        assert!(
            (150..=300).contains(&(sent - dropped_in)),
            "{sent} sent, {dropped_in} dropped in"
        );
        assert!(got[0] + 1 >= sent - dropped_in, "{got:?}");
        // Out: viewer 1 gets about half of what passed in.
        assert!(dropped_out > 0 && got[1] < got[0], "{got:?} {dropped_out}");
        assert!(
            got[1] + dropped_out + 1 >= got[0],
            "every packet viewer 1 missed was counted: {got:?} {dropped_out}"
        );
        // Each viewer asks once when the publisher's first packet arrives
        // (a new source). Viewer 1's video then broke: it asked again, at
        // most once per 2 s (4 s with gaps: 2 or 3 more).
        let asks: Vec<usize> = (0..2)
            .map(|i| world.viewer_keyframe_asks[i] - asks_before[i])
            .collect();
        assert_eq!(asks[0], 1, "{asks:?}");
        assert!((3..=4).contains(&asks[1]), "{asks:?} keyframe requests");
        let remb: Vec<u64> = world
            .publisher
            .0
            .events
            .iter()
            .filter_map(|e| match e {
                Event::EgressBitrateEstimate(BweKind::Remb { estimate, .. }) => {
                    Some(estimate.as_u64())
                }
                _ => None,
            })
            .collect();
        assert!(!remb.is_empty(), "the publisher was sent a REMB");
        assert!(
            remb.iter().all(|&bps| (390_000..=410_000).contains(&bps)),
            "REMB names the limit: {remb:?}"
        );
    }
}
