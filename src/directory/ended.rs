//! Tombstones: sessions that ended by themselves (DTLS close, ICE or
//! consent timeout, a failure, or `--connect-timeout` while pending),
//! remembered for a while so that a client which closes its
//! PeerConnection first and sends `DELETE` a moment later still gets 200
//! (the medooze `whip-whep` library does that). A tombstone keeps only what
//! authorizing that DELETE needs: the session's room and role.
//!
//! Bounded: each lives `ttl` (the server uses `--connect-timeout`), and at
//! most [`MAX_ENDED`] are kept; past that the oldest goes first, so a flood
//! of sessions that end quickly cannot grow this without limit (its worst
//! case is a client whose tombstone was pushed out getting 404). Expired
//! ones are dropped lazily: whenever one is added, and on the pending sweep.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::SessionInfo;
use crate::sfu::SessionId;

/// Tombstones kept at most (each: an id, a room name of ≤ 64 bytes, a role).
pub const MAX_ENDED: usize = 16_384;

/// How long a tombstone lives unless the directory is told otherwise (the
/// default `--connect-timeout`).
pub const DEFAULT_ENDED_TTL: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Tombstone {
    info: SessionInfo,
    expires: Instant,
}

/// The tombstones, by session and in the order they expire.
#[derive(Debug)]
pub(super) struct Ended {
    ttl: Duration,
    cap: usize,
    by_id: HashMap<SessionId, Tombstone>,
    /// Every tombstone's expiry, oldest first (all share one `ttl`, so this
    /// is the order they were added); may also hold ids already taken.
    order: VecDeque<(Instant, SessionId)>,
}

impl Default for Ended {
    fn default() -> Self {
        Self::new(DEFAULT_ENDED_TTL, MAX_ENDED)
    }
}

impl Ended {
    /// Tombstones that live `ttl` (zero: none are kept), at most `cap`.
    pub(super) fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl,
            cap,
            by_id: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(super) fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// Remembers that session `id` ended by itself at `now`.
    pub(super) fn record(&mut self, id: SessionId, info: SessionInfo, now: Instant) {
        if self.ttl.is_zero() || self.cap == 0 {
            return;
        }
        self.sweep(now);
        while self.order.len() >= self.cap {
            self.pop_oldest();
        }
        let expires = now + self.ttl;
        self.by_id.insert(id, Tombstone { info, expires });
        self.order.push_back((expires, id));
    }

    /// The room and role of `id`'s tombstone, if it has a live one.
    pub(super) fn get(&self, id: SessionId, now: Instant) -> Option<&SessionInfo> {
        self.by_id
            .get(&id)
            .filter(|t| now < t.expires)
            .map(|t| &t.info)
    }

    /// Takes `id`'s tombstone if it has a live one (a DELETE answered 200).
    pub(super) fn take(&mut self, id: SessionId, now: Instant) -> bool {
        match self.by_id.get(&id) {
            Some(t) if now < t.expires => self.by_id.remove(&id).is_some(),
            _ => false,
        }
    }

    /// Drops the tombstones expired at `now`.
    pub(super) fn sweep(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(at, _)| *at <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((expires, id)) = self.order.pop_front()
            && self.by_id.get(&id).is_some_and(|t| t.expires == expires)
        {
            self.by_id.remove(&id);
        }
    }

    /// Tombstones held (live or not yet swept).
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::Role;

    fn info(room: &str) -> SessionInfo {
        SessionInfo {
            room: room.into(),
            role: Role::Publisher,
        }
    }

    #[test]
    fn a_tombstone_lives_its_ttl_and_is_taken_once() {
        let mut ended = Ended::new(Duration::from_secs(2), 8);
        let t0 = Instant::now();
        let (a, b) = (SessionId::random(), SessionId::random());
        ended.record(a, info("r"), t0);
        ended.record(b, info("s"), t0 + Duration::from_secs(1));
        assert_eq!(ended.get(a, t0).map(|i| i.room.as_str()), Some("r"));
        assert!(ended.get(SessionId::random(), t0).is_none());
        assert!(ended.take(a, t0 + Duration::from_secs(1)));
        assert!(!ended.take(a, t0 + Duration::from_secs(1)), "taken once");
        // Expired: found no more, then swept.
        let late = t0 + Duration::from_secs(3);
        assert!(ended.get(b, late).is_none());
        assert!(!ended.take(b, late));
        ended.sweep(late);
        assert_eq!((ended.len(), ended.order.len()), (0, 0));
    }

    #[test]
    fn tombstones_are_capped_oldest_first_and_zero_ttl_keeps_none() {
        let mut ended = Ended::new(Duration::from_secs(60), 3);
        let now = Instant::now();
        let ids: Vec<SessionId> = (0..5).map(|_| SessionId::random()).collect();
        for id in &ids {
            ended.record(*id, info("r"), now);
        }
        assert_eq!((ended.len(), ended.order.len()), (3, 3));
        assert!(ended.get(ids[1], now).is_none(), "pushed out");
        assert!(ended.get(ids[4], now).is_some());
        // Taken ones still count in the order until they are popped.
        assert!(ended.take(ids[2], now));
        ended.record(SessionId::random(), info("r"), now);
        assert!(ended.len() <= 3 && ended.order.len() <= 3);

        let mut none = Ended::new(Duration::ZERO, 3);
        none.record(ids[0], info("r"), now);
        assert_eq!(none.len(), 0);
    }
}
