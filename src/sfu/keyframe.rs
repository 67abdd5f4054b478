//! Aggregates and throttles keyframe requests to one publisher track: at most
//! one request per interval; requests inside the interval are merged into one
//! sent when it ends (FIR wins over PLI when both were asked for).

use std::time::{Duration, Instant};

use str0m::media::KeyframeRequestKind;

/// The throttle state of one publisher track.
#[derive(Debug)]
pub struct KeyframeThrottle {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: Option<KeyframeRequestKind>,
}

impl KeyframeThrottle {
    /// A throttle that lets one request through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            pending: None,
        }
    }

    /// Records a wish for a keyframe; returns the request to send now, if the
    /// interval allows one. Otherwise it is merged into the pending one.
    pub fn request(
        &mut self,
        now: Instant,
        kind: KeyframeRequestKind,
    ) -> Option<KeyframeRequestKind> {
        let merged = match (self.pending, kind) {
            (Some(KeyframeRequestKind::Fir), _) | (_, KeyframeRequestKind::Fir) => {
                KeyframeRequestKind::Fir
            }
            _ => KeyframeRequestKind::Pli,
        };
        match self.last_sent {
            Some(last) if now < last + self.interval => {
                self.pending = Some(merged);
                None
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = None;
                Some(merged)
            }
        }
    }

    /// The merged pending request, if its time has come.
    pub fn poll(&mut self, now: Instant) -> Option<KeyframeRequestKind> {
        let due = self.deadline()?;
        if now < due {
            return None;
        }
        self.last_sent = Some(now);
        self.pending.take()
    }

    /// When the merged pending request will be due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending?;
        // A request is only ever pending after one was sent.
        self.last_sent.map(|last| last + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_goes_out_at_once_then_requests_merge() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_millis(500));
        assert_eq!(
            k.request(t0, KeyframeRequestKind::Pli),
            Some(KeyframeRequestKind::Pli)
        );
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(k.request(t1, KeyframeRequestKind::Pli), None);
        assert_eq!(k.request(t1, KeyframeRequestKind::Fir), None);
        assert_eq!(k.request(t1, KeyframeRequestKind::Pli), None);
        assert_eq!(k.deadline(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(k.poll(t0 + Duration::from_millis(499)), None);
        assert_eq!(
            k.poll(t0 + Duration::from_millis(500)),
            Some(KeyframeRequestKind::Fir)
        );
        assert_eq!(k.deadline(), None);
        assert_eq!(k.poll(t0 + Duration::from_secs(5)), None);
    }
}
