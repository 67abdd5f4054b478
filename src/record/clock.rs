//! A recorded track's media time: RTP timestamps unwrapped from 32 bits and
//! mapped to nanoseconds since the file's first frame. RTP time drives the
//! file (so network jitter does not leak into it); arrival time only
//! anchors it — at the first frame, when the source changes (a new SSRC)
//! and when RTP time strays more than [`MAX_STRAY`] from arrival (an
//! encoder restart, a jump in a muted stream's clock). Timestamps stay
//! strictly increasing per track.

use std::time::Duration;

/// How far RTP time may run from arrival time before it is re-anchored.
pub const MAX_STRAY: Duration = Duration::from_secs(1);

/// The least step between two frames of a track (WebM counts in ms).
const MIN_STEP_NS: u64 = 1_000_000;

/// One track's clock.
#[derive(Debug)]
pub struct Clock {
    clock_rate: u64,
    /// The source (track and SSRC) of the last timestamp.
    source: Option<u64>,
    last_ts: u32,
    /// The unwrapped `last_ts`.
    ext: i64,
    /// Unwrapped RTP time and file time (ns) that correspond.
    anchor: (i64, u64),
    /// The last time handed out.
    last_ns: Option<u64>,
}

impl Clock {
    /// A clock for a track of `clock_rate` Hz (0 is taken as 90 kHz).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: u64::from(if clock_rate == 0 { 90_000 } else { clock_rate }),
            source: None,
            last_ts: 0,
            ext: 0,
            anchor: (0, 0),
            last_ns: None,
        }
    }

    /// The file time (ns) of a frame with RTP timestamp `ts` from `source`
    /// that arrived `arrival_ns` after the file's first frame.
    pub fn time(&mut self, source: u64, ts: u32, arrival_ns: u64) -> u64 {
        if self.source != Some(source) {
            self.source = Some(source);
            self.last_ts = ts;
            self.ext = i64::from(ts);
            return self.reanchor(arrival_ns);
        }
        // The signed delta takes a 32-bit wrap and a step back alike.
        self.ext += i64::from(ts.wrapping_sub(self.last_ts) as i32);
        self.last_ts = ts;
        let (anchor_ext, anchor_ns) = self.anchor;
        let delta = i128::from(self.ext - anchor_ext) * 1_000_000_000 / i128::from(self.clock_rate);
        let t = i128::from(anchor_ns) + delta;
        let stray = (t - i128::from(arrival_ns)).unsigned_abs();
        if t < 0 || stray > MAX_STRAY.as_nanos() {
            return self.reanchor(arrival_ns);
        }
        let t = u64::try_from(t).unwrap_or(u64::MAX);
        let t = match self.last_ns {
            Some(last) if t <= last => last + MIN_STEP_NS,
            _ => t,
        };
        self.last_ns = Some(t);
        t
    }

    /// Maps the current RTP time to `arrival_ns` (kept after the last frame).
    fn reanchor(&mut self, arrival_ns: u64) -> u64 {
        let t = match self.last_ns {
            Some(last) => arrival_ns.max(last + MIN_STEP_NS),
            None => arrival_ns,
        };
        self.anchor = (self.ext, t);
        self.last_ns = Some(t);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn rtp_time_drives_the_file_not_arrival() {
        let mut clock = Clock::new(90_000);
        assert_eq!(clock.time(1, 1000, 0), 0);
        // 33 ms of RTP time that arrived 50 ms later (jitter).
        assert_eq!(
            clock.time(1, 1000 + 3000, 50 * MS),
            3000 * 1_000_000_000 / 90_000
        );
        assert_eq!(clock.time(1, 1000 + 90_000, 990 * MS), 1000 * MS);
    }

    #[test]
    fn a_32_bit_wrap_goes_on_counting() {
        let mut clock = Clock::new(48_000);
        let start = u32::MAX - 959;
        assert_eq!(clock.time(7, start, 0), 0);
        assert_eq!(clock.time(7, start.wrapping_add(960), 20 * MS), 20 * MS);
        assert_eq!(clock.time(7, start.wrapping_add(1920), 40 * MS), 40 * MS);
    }

    #[test]
    fn a_step_back_never_goes_back_in_the_file() {
        let mut clock = Clock::new(48_000);
        clock.time(1, 48_000, 0);
        assert_eq!(clock.time(1, 96_000, 1000 * MS), 1000 * MS);
        // A frame stamped earlier than the last (a reordered or repeated one).
        assert_eq!(clock.time(1, 95_040, 1001 * MS), 1001 * MS);
    }

    #[test]
    fn a_new_source_is_anchored_to_arrival() {
        let mut clock = Clock::new(90_000);
        clock.time(1, 5000, 0);
        clock.time(1, 5000 + 90_000, 1000 * MS);
        // Another SSRC with a random start, 2 s later by the wall clock.
        assert_eq!(clock.time(2, 123_456_789, 3000 * MS), 3000 * MS);
        assert_eq!(clock.time(2, 123_456_789 + 9000, 3100 * MS), 3100 * MS);
    }

    #[test]
    fn a_jump_in_rtp_time_is_anchored_again() {
        let mut clock = Clock::new(90_000);
        clock.time(1, 0, 0);
        // The encoder restarted: RTP time jumps an hour ahead.
        let jumped = 3600 * 90_000;
        assert_eq!(clock.time(1, jumped, 40 * MS), 40 * MS);
        assert_eq!(
            clock.time(1, jumped + 3000, 75 * MS),
            40 * MS + 3000 * 1_000_000_000 / 90_000
        );
    }
}
