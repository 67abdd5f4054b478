//! Where a peer's DTLS and media go after its client's address changed (a
//! NAT rebinding). str0m, as an ICE-lite agent, sends on the nominated pair
//! of highest priority, and a rebound address is a peer-reflexive candidate
//! of *lower* priority than the host candidate it replaces: str0m keeps
//! sending to the dead address until that pair times out (15 s). The client
//! says which path it uses — Chrome, towards an ICE-lite server, puts
//! USE-CANDIDATE only on its selected connection — so, like mediasoup, we
//! follow the source of the latest authenticated binding request carrying
//! USE-CANDIDATE. A replayed request (a transaction id already seen) never
//! moves the path, so a copy sent again from another address cannot steer
//! the media there after the genuine one arrived.

use std::net::SocketAddr;

use str0m::net::Transmit;

use crate::wire::{PacketClass, StunView, classify};

/// STUN USE-CANDIDATE (RFC 8445 §16.1).
const ATTR_USE_CANDIDATE: u16 = 0x0025;

/// Transaction ids remembered against replays (a client sends a check
/// every few hundred ms at most; a replay arrives within that window).
const RECENT: usize = 16;

/// The address this peer's non-STUN datagrams are sent to, when it is not
/// str0m's choice.
#[derive(Debug, Default)]
pub(super) struct Egress {
    to: Option<SocketAddr>,
    recent: [[u8; 12]; RECENT],
    next: usize,
}

impl Egress {
    /// An authenticated binding request `request` came from `source`:
    /// follow it if it nominates (USE-CANDIDATE) and is not a replay.
    pub(super) fn on_authenticated(&mut self, source: SocketAddr, request: &[u8]) {
        let Ok(stun) = StunView::parse(request) else {
            return;
        };
        let id = *stun.transaction_id();
        if self.recent.contains(&id) {
            return;
        }
        self.recent[self.next] = id;
        self.next = (self.next + 1) % RECENT;
        let nominates = stun
            .attributes()
            .any(|(attr, _)| attr == ATTR_USE_CANDIDATE);
        if nominates && self.to != Some(source) {
            tracing::debug!(to = %source, "client nominated another address; media follows");
            self.to = Some(source);
        }
    }

    /// Points `t` at the followed address, unless it is STUN (a response
    /// goes where its request came from).
    pub(super) fn redirect(&self, t: &mut Transmit) {
        if let Some(to) = self.to
            && t.destination != to
            && classify(&t.contents) != PacketClass::Stun
        {
            t.destination = to;
        }
    }
}

#[cfg(test)]
mod tests {
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
        let mut egress = Egress::default();
        assert_eq!(sent_to(&egress, old), old, "str0m's choice until told");

        egress.on_authenticated(new, &request(1, false));
        assert_eq!(sent_to(&egress, old), old, "a check without USE-CANDIDATE");

        egress.on_authenticated(new, &request(2, true));
        assert_eq!(
            sent_to(&egress, old),
            new,
            "a nomination from the new address"
        );

        egress.on_authenticated(spoofed, &request(2, true));
        assert_eq!(
            sent_to(&egress, old),
            new,
            "the same request replayed elsewhere"
        );

        egress.on_authenticated(old, &request(3, true));
        assert_eq!(sent_to(&egress, new), old, "the client went back");
    }

    #[test]
    fn stun_responses_go_where_their_request_came_from() {
        let followed: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        let mut egress = Egress::default();
        egress.on_authenticated(followed, &request(1, true));
        let mut success = request(9, false);
        success[..2].copy_from_slice(&[0x01, 0x01]); // Binding success response
        let mut response = transmit(other, success);
        egress.redirect(&mut response);
        assert_eq!(response.destination, other);
    }
}
