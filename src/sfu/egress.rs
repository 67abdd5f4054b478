//! Where a peer's DTLS and media go after its client's address changed (a
//! NAT rebinding). str0m, as an ICE-lite agent, sends on the nominated pair
//! of highest priority, and a rebound address is a peer-reflexive candidate
//! of *lower* priority than the host candidate it replaces: str0m keeps
//! sending to the dead address until that pair times out (15 s).
//!
//! Two rules move the media, each only on an authenticated binding request
//! that is not a replay (a transaction id already seen never moves it, so a
//! copy sent again from another address cannot steer the media there):
//!
//! - **Nomination.** Chrome, towards an ICE-lite server, puts USE-CANDIDATE
//!   only on its selected connection; like mediasoup, we follow the source
//!   of the latest request carrying it.
//! - **Takeover of a silent path.** A client that nominates once (regular
//!   nomination, as Firefox does) sends no USE-CANDIDATE after a rebinding:
//!   its consent checks simply start coming from the new address. When
//!   every other address of the peer has been silent for [`SILENT_PATH`],
//!   such a check is taken as a nomination — the peer adds USE-CANDIDATE
//!   before str0m sees it (`stun_repair`), so str0m nominates the new pair
//!   too and does not drop the session when the old pair times out. Only
//!   once the client has nominated in the current ICE session (an ICE
//!   restart starts over), and never for a request that nominates anyway.
//!
//! "Heard from" counts only authenticated, non-replayed checks: a spoofed
//! datagram from a dead address cannot keep it looking alive, and nothing
//! unauthenticated counts. [`SILENT_PATH`] (4 s) is above Chrome's ping
//! interval on its selected pair (2.5 s), so a check on a backup pair does
//! not take over a live path, and at the low end of Firefox's consent
//! interval (RFC 7675: 4–6 s), so the first check from a rebound address
//! usually takes over at once.

use std::time::{Duration, Instant};

use str0m::net::Transmit;

use super::PeerAddr;
use super::stun_repair::ATTR_USE_CANDIDATE;
use crate::wire::{PacketClass, StunView, classify};

/// Transaction ids remembered against replays (a client sends a check
/// every few hundred ms at most; a replay arrives within that window).
const RECENT: usize = 16;

/// How long every other address must have been silent before a check
/// without USE-CANDIDATE takes the path over.
pub(super) const SILENT_PATH: Duration = Duration::from_secs(4);

/// The address this peer's non-STUN datagrams are sent to, when it is not
/// str0m's choice.
#[derive(Debug, Default)]
pub(super) struct Egress {
    to: Option<PeerAddr>,
    recent: [[u8; 12]; RECENT],
    next: usize,
    /// The last address heard from, and when.
    latest: Option<(PeerAddr, Instant)>,
    /// The last time an address other than `latest`'s was heard from.
    latest_other: Option<Instant>,
    /// The client nominated (USE-CANDIDATE) in the current ICE session.
    nominated: bool,
}

impl Egress {
    /// An ICE restart: the new session's checks must nominate before any
    /// takes a path over, and silence is measured afresh. Media keeps going
    /// where it went.
    pub(super) fn restart(&mut self) {
        self.nominated = false;
        self.latest = None;
        self.latest_other = None;
    }

    /// An authenticated check from `source` (see the module doc).
    fn heard(&mut self, now: Instant, source: PeerAddr) {
        match self.latest {
            Some((addr, _)) if addr == source => {}
            Some((_, at)) => self.latest_other = Some(at),
            None => {}
        }
        self.latest = Some((source, now));
    }

    /// Whether a binding request `request` from `source`, not yet checked,
    /// should be taken as a nomination though it carries no USE-CANDIDATE:
    /// the client nominated in this ICE session, the media does not already
    /// go there, it is no replay, and every other address the peer was
    /// heard from has been silent for [`SILENT_PATH`] (a peer never heard
    /// from elsewhere has no path to take over).
    pub(super) fn takes_over(
        &self,
        now: Instant,
        source: impl Into<PeerAddr>,
        request: &[u8],
    ) -> bool {
        let source = source.into();
        if !self.nominated || self.to == Some(source) {
            return false;
        }
        let Ok(stun) = StunView::parse(request) else {
            return false;
        };
        if self.recent.contains(stun.transaction_id())
            || stun.attributes().any(|(a, _)| a == ATTR_USE_CANDIDATE)
        {
            return false;
        }
        let other = match self.latest {
            Some((addr, at)) if addr != source => Some(at),
            _ => self.latest_other,
        };
        other.is_some_and(|at| now.saturating_duration_since(at) >= SILENT_PATH)
    }

    /// An authenticated binding request `request` came from `source`:
    /// follow it if it nominates (USE-CANDIDATE) and is not a replay.
    /// Returns whether the media moved there from another address (a
    /// session's first nomination is no move).
    pub(super) fn on_authenticated(
        &mut self,
        now: Instant,
        source: impl Into<PeerAddr>,
        request: &[u8],
    ) -> bool {
        let source = source.into();
        let Ok(stun) = StunView::parse(request) else {
            return false;
        };
        let id = *stun.transaction_id();
        if self.recent.contains(&id) {
            return false;
        }
        self.recent[self.next] = id;
        self.next = (self.next + 1) % RECENT;
        self.heard(now, source);
        let nominates = stun
            .attributes()
            .any(|(attr, _)| attr == ATTR_USE_CANDIDATE);
        if !nominates {
            return false;
        }
        self.nominated = true;
        match self.to.replace(source) {
            Some(from) if from != source => {
                tracing::debug!(%from, to = %source, "client nominated another address; media follows");
                true
            }
            _ => false,
        }
    }

    /// Points `t` at the followed address (over UDP or ICE-TCP), unless it
    /// is STUN (a response goes where its request came from).
    pub(super) fn redirect(&self, t: &mut Transmit) {
        if let Some(to) = self.to
            && PeerAddr::of(t) != to
            && classify(&t.contents) != PacketClass::Stun
        {
            t.destination = to.addr;
            t.proto = to.proto;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use str0m::net::Protocol;

    use super::*;

    /// A Binding request with transaction id `[id; 12]`, with or without
    /// USE-CANDIDATE (nothing else: `Egress` sees only authenticated ones).
    fn request(id: u8, use_candidate: bool) -> Vec<u8> {
        let attrs: &[u8] = if use_candidate {
            &[0x00, 0x25, 0, 0]
        } else {
            &[]
        };
        let mut m = vec![0x00, 0x01, 0, attrs.len() as u8, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[id; 12]);
        m.extend_from_slice(attrs);
        m
    }

    fn transmit(to: SocketAddr, contents: Vec<u8>) -> Transmit {
        Transmit {
            proto: Protocol::Udp,
            source: "127.0.0.1:5000".parse().unwrap(),
            destination: to,
            contents: contents.into(),
        }
    }

    fn sent_to(egress: &Egress, str0m_choice: SocketAddr) -> SocketAddr {
        // An SRTP-looking datagram (first byte 0x80).
        let mut t = transmit(str0m_choice, vec![0x80, 96, 0, 1]);
        egress.redirect(&mut t);
        t.destination
    }

    #[test]
    fn media_follows_the_latest_nomination_and_never_a_replay() {
        let old: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let new: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let spoofed: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let now = Instant::now();
        let mut egress = Egress::default();
        assert_eq!(sent_to(&egress, old), old, "str0m's choice until told");

        egress.on_authenticated(now, new, &request(1, false));
        assert_eq!(sent_to(&egress, old), old, "a check without USE-CANDIDATE");

        egress.on_authenticated(now, new, &request(2, true));
        assert_eq!(
            sent_to(&egress, old),
            new,
            "a nomination from the new address"
        );

        egress.on_authenticated(now, spoofed, &request(2, true));
        assert_eq!(
            sent_to(&egress, old),
            new,
            "the same request replayed elsewhere"
        );

        egress.on_authenticated(now, old, &request(3, true));
        assert_eq!(sent_to(&egress, new), old, "the client went back");
    }

    #[test]
    fn stun_responses_go_where_their_request_came_from() {
        let followed: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        let mut egress = Egress::default();
        egress.on_authenticated(Instant::now(), followed, &request(1, true));
        let mut success = request(9, false);
        success[..2].copy_from_slice(&[0x01, 0x01]); // Binding success response
        let mut response = transmit(other, success);
        egress.redirect(&mut response);
        assert_eq!(response.destination, other);
    }

    #[test]
    fn a_check_takes_over_only_a_path_silent_for_four_seconds() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let old: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let new: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let mut egress = Egress::default();
        // Before the client nominated, nothing takes over.
        egress.on_authenticated(t0, old, &request(1, false));
        assert!(!egress.takes_over(at(9_000), new, &request(2, false)));
        egress.on_authenticated(at(9_000), old, &request(2, true));
        egress.on_authenticated(at(9_500), old, &request(3, false)); // consent
        assert!(!egress.takes_over(at(9_500), old, &request(4, false)));
        assert!(
            !egress.takes_over(at(13_499), new, &request(4, false)),
            "the old path checked 3.999 s ago"
        );
        assert!(egress.takes_over(at(13_500), new, &request(4, false)));
        assert!(
            !egress.takes_over(at(13_500), new, &request(4, true)),
            "it nominates anyway: no takeover"
        );
        assert!(
            !egress.takes_over(at(13_500), new, &request(1, false)),
            "a replayed transaction id"
        );
        // The peer adds USE-CANDIDATE; once str0m answered, media follows.
        assert!(egress.on_authenticated(at(13_500), new, &request(4, true)));
        assert_eq!(sent_to(&egress, old), new);
        assert!(
            !egress.takes_over(at(20_000), new, &request(5, false)),
            "already there"
        );
        egress.on_authenticated(at(20_000), new, &request(5, false));
        // The old address takes the path back only after 4 s of silence
        // from the new one.
        assert!(!egress.takes_over(at(23_000), old, &request(6, false)));
        assert!(egress.takes_over(at(24_000), old, &request(6, false)));
        // An ICE restart: no takeover until the new session nominated.
        egress.restart();
        egress.on_authenticated(at(25_000), new, &request(7, false));
        assert!(!egress.takes_over(at(40_000), old, &request(8, false)));
        assert_eq!(sent_to(&egress, old), new, "media stays where it went");
    }

    #[test]
    fn a_backup_pair_check_never_takes_over_a_live_path() {
        let t0 = Instant::now();
        let selected: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let backup: SocketAddr = "[::1]:4000".parse().unwrap();
        let mut egress = Egress::default();
        assert!(
            !egress.on_authenticated(t0, selected, &request(1, true)),
            "a first nomination is no move"
        );
        // Chrome checks its selected pair every 2.5 s, one check lost here
        // and there (5 s gaps are not covered: see the module doc).
        let mut id = 2;
        for tick in 1..=20u64 {
            let now = t0 + Duration::from_millis(2_500 * tick);
            egress.on_authenticated(now, selected, &request(id, false));
            id += 1;
            let later = now + Duration::from_millis(3_900);
            assert!(!egress.takes_over(later, backup, &request(id, false)));
            egress.on_authenticated(later, backup, &request(id, false));
            id += 1;
        }
        assert_eq!(sent_to(&egress, backup), selected);
    }
}
