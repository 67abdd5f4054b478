//! ICE beyond the happy path, in virtual time with no sockets: a client's
//! ICE restart through [`Peer::apply_patch`] (media carries on, consent
//! continues with the new credentials), a refused restart that leaves the
//! old session running, trickled candidates, and FFmpeg-style connectivity
//! checks without PRIORITY or ICE-CONTROLLING.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Input, Output, Rtc};

use super::stun_repair::{ATTR_ICE_CONTROLLING, ATTR_PRIORITY, rebuild_binding_request};
use super::*;
use crate::wire::{SdpFrag, StunView};

const SERVER: &str = "127.0.0.1:5000";
const CLIENT: &str = "127.0.0.1:6000";

/// One publishing str0m client and its server peer.
struct Pair {
    now: Instant,
    client: Rtc,
    mid: Mid,
    answer: String,
    server: Peer,
    out: Outputs,
    /// Rewrite the client's binding requests like FFmpeg, signed with this
    /// (the server's) password.
    ffmpeg_with: Option<String>,
    media_seen: usize,
    next_seq: u64,
}

fn server_ice_pwd(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .unwrap()
        .trim()
        .to_owned()
}

impl Pair {
    fn new(ice_timeout: Duration) -> Self {
        let now = Instant::now();
        let mut client = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true)
            .build(now);
        client.add_local_candidate(Candidate::host(CLIENT.parse().unwrap(), "udp").unwrap());
        let mut change = client.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let mut setup = sim::setup();
        setup.ice_timeout = ice_timeout;
        let (server, answer) = accept_offer(
            Role::Publisher,
            &offer.to_sdp_string(),
            &setup,
            "ice",
            None,
            1,
            now,
        )
        .unwrap();
        client
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        Self {
            now,
            client,
            mid,
            answer,
            server,
            out: Outputs::default(),
            ffmpeg_with: None,
            media_seen: 0,
            next_seq: 0,
        }
    }

    /// Runs `duration` in steps of 10 ms; the client publishes a packet per
    /// step once connected when `publish`.
    fn run(&mut self, duration: Duration, publish: bool) {
        let end = self.now + duration;
        while self.now < end {
            self.now += Duration::from_millis(10);
            if publish && self.client.is_connected() {
                self.next_seq += 1;
                let pt = *self
                    .client
                    .codec_config()
                    .find(|p| p.spec().codec == Codec::Vp8)
                    .unwrap()
                    .pt();
                let (now, seq) = (self.now, self.next_seq);
                if let Some(stream) = self.client.direct_api().stream_tx_by_mid(self.mid, None) {
                    stream.write_rtp(RtpWrite::new(
                        pt.into(),
                        seq.into(),
                        (seq * 3000) as u32,
                        now,
                        vec![0x10, 0, 0, 0, 0, 1, 2, 3],
                    ));
                }
            }
            self.pump();
        }
    }

    fn pump(&mut self) {
        let now = self.now;
        let (client_addr, server_addr): (SocketAddr, SocketAddr) =
            (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        self.client.handle_input(Input::Timeout(now)).unwrap();
        for _ in 0..50 {
            let mut to_server = Vec::new();
            loop {
                match self.client.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => to_server.push(t.contents.to_vec()),
                    Output::Event(_) => {}
                }
            }
            for datagram in &mut to_server {
                if let Some(password) = &self.ffmpeg_with
                    && let Ok(view) = StunView::parse(datagram)
                    && view.is_binding_request()
                {
                    *datagram = rebuild_binding_request(
                        &view,
                        |t| t != ATTR_PRIORITY && t != ATTR_ICE_CONTROLLING,
                        &[],
                        password.as_bytes(),
                    );
                }
                self.server
                    .handle_receive(now, client_addr, server_addr, datagram, &mut self.out);
            }
            self.server.handle_timeout(now, &mut self.out);
            for event in std::mem::take(&mut self.out.events) {
                if matches!(event, PeerEvent::Media(_)) {
                    self.media_seen += 1;
                }
            }
            let back = std::mem::take(&mut self.out.transmits);
            if back.is_empty() && to_server.is_empty() {
                return;
            }
            for t in back {
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source: server_addr,
                        destination: client_addr,
                        contents: (&*t.contents).try_into().unwrap(),
                    },
                );
                self.client.handle_input(input).unwrap();
            }
        }
    }

    /// The client restarts ICE; returns its offer (new credentials and
    /// candidates inside) and the pending change.
    fn client_restart_offer(&mut self) -> (String, SdpPendingOffer) {
        let mut change = self.client.sdp_api();
        change.ice_restart(true);
        let (offer, pending) = change.apply().unwrap();
        (offer.to_sdp_string(), pending)
    }

    /// The client takes the server's restart answer: its original answer
    /// with the new credentials (what WHIP clients do with the 200's
    /// sdpfrag); the candidates lose the old `ufrag` extension, or str0m
    /// would refuse them as belonging to the old ICE session.
    fn client_accept_restart(&mut self, pending: SdpPendingOffer, ufrag: &str, pwd: &str) {
        let answer: String = self
            .answer
            .split("\r\n")
            .map(|line| {
                if line.starts_with("a=ice-ufrag:") {
                    format!("a=ice-ufrag:{ufrag}")
                } else if line.starts_with("a=ice-pwd:") {
                    format!("a=ice-pwd:{pwd}")
                } else if line.starts_with("a=candidate:") {
                    line.split(" ufrag ").next().unwrap_or(line).to_owned()
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        self.client
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
    }
}

/// The `a=` lines of an SDP that a trickle-ice-sdpfrag would carry.
fn frag_of(sdp: &str) -> String {
    sdp.lines()
        .filter(|l| {
            l.starts_with("a=ice-ufrag:")
                || l.starts_with("a=ice-pwd:")
                || l.starts_with("a=candidate:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

fn patch(text: &str, if_match: IfMatch) -> IcePatch {
    IcePatch::from_frag(&SdpFrag::parse(text).unwrap(), if_match)
}

#[test]
fn an_ice_restart_keeps_media_flowing_and_consent_follows_the_new_credentials() {
    let mut pair = Pair::new(Duration::from_secs(4));
    pair.run(Duration::from_secs(2), true);
    assert!(pair.server.is_connected() && pair.client.is_connected());
    let before = pair.media_seen;
    assert!(before > 50, "{before} packets before the restart");
    let old_ufrag = pair.server.ufrag().to_owned();
    let old_etag = pair.server.etag();

    let (offer, pending) = pair.client_restart_offer();
    let now = pair.now;
    let outcome = pair
        .server
        .apply_patch(
            now,
            patch(&frag_of(&offer), IfMatch::parse(&old_etag).unwrap()),
            &mut pair.out,
        )
        .unwrap();
    let PatchOutcome::Restarted {
        ufrag,
        pwd,
        etag,
        media,
        added,
        ..
    } = outcome
    else {
        panic!("a restart: {outcome:?}")
    };
    assert_ne!(ufrag, old_ufrag);
    assert_eq!(ufrag.len(), UFRAG_LEN);
    assert_eq!(etag, pair.server.etag());
    assert_ne!(etag, old_etag);
    assert_eq!(media, [(MediaKind::Video, pair.mid)]);
    assert_eq!(added, 1, "the client's host candidate");
    pair.client_accept_restart(pending, &ufrag, &pwd);

    // 10 s: well past the 4 s ICE timeout, so only checks with the new
    // credentials can have kept the session alive.
    pair.run(Duration::from_secs(10), true);
    assert_eq!(
        pair.server.closed(),
        None,
        "consent continued after the restart"
    );
    assert!(pair.client.is_connected());
    let after = pair.media_seen - before;
    assert!(after > 800, "{after} packets after the restart");

    // The old ETag is stale now.
    let stale = pair.server.apply_patch(
        pair.now,
        patch("", IfMatch::parse(&old_etag).unwrap()),
        &mut pair.out,
    );
    assert!(matches!(stale, Err(PatchError::PreconditionFailed { .. })));
}

#[test]
fn a_refused_restart_leaves_the_ice_session_as_it_was() {
    let mut pair = Pair::new(Duration::from_secs(3));
    pair.run(Duration::from_secs(2), true);
    assert!(pair.server.is_connected());
    let (ufrag, etag) = (pair.server.ufrag().to_owned(), pair.server.etag());
    let (offer, _pending) = pair.client_restart_offer();
    let now = pair.now;
    // A stale ETag: refused, nothing changes.
    let refused = pair.server.apply_patch(
        now,
        patch(&frag_of(&offer), IfMatch::parse("\"stale\"").unwrap()),
        &mut pair.out,
    );
    assert!(matches!(
        refused,
        Err(PatchError::PreconditionFailed { .. })
    ));
    assert_eq!(pair.server.ufrag(), ufrag);
    assert_eq!(pair.server.etag(), etag);
    // The client never took the restart: its old credentials keep the
    // session alive well past the ICE timeout.
    pair.run(Duration::from_secs(8), true);
    assert_eq!(pair.server.closed(), None);
}

#[test]
fn a_password_change_without_a_new_ufrag_is_refused() {
    let mut pair = Pair::new(Duration::from_secs(15));
    let client_ufrag = pair.client.direct_api().local_ice_credentials().ufrag;
    let now = pair.now;
    let frag = format!("a=ice-ufrag:{client_ufrag}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n");
    let refused = pair
        .server
        .apply_patch(now, patch(&frag, IfMatch::Any), &mut pair.out);
    assert!(
        matches!(refused, Err(PatchError::Invalid(_))),
        "{refused:?}"
    );
    // The client's current credentials with candidates: a trickle.
    let pwd = pair.client.direct_api().local_ice_credentials().pass;
    let frag = format!(
        "a=ice-ufrag:{client_ufrag}\r\na=ice-pwd:{pwd}\r\n\
         a=candidate:1 1 udp 2122260223 127.0.0.1 6001 typ host\r\n\
         a=candidate:2 1 tcp 2122260223 127.0.0.1 6001 typ host\r\n"
    );
    let outcome = pair
        .server
        .apply_patch(now, patch(&frag, IfMatch::Any), &mut pair.out);
    assert_eq!(
        outcome,
        Ok(PatchOutcome::Trickled {
            added: 1,
            skipped: 1
        })
    );
    // The per-session cap.
    let many: String = (0..MAX_REMOTE_CANDIDATES + 5)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 1 10.0.{}.{} 5000 typ host\r\n",
                i / 250,
                i % 250 + 1
            )
        })
        .collect();
    let Ok(PatchOutcome::Trickled { added, skipped }) =
        pair.server
            .apply_patch(now, patch(&many, IfMatch::Any), &mut pair.out)
    else {
        panic!("trickled")
    };
    assert_eq!(added, MAX_REMOTE_CANDIDATES - 1);
    assert_eq!(skipped, 6);
    // It still connects.
    pair.run(Duration::from_secs(2), false);
    assert!(pair.server.is_connected());
}

#[test]
fn ffmpeg_style_checks_without_priority_connect_when_they_authenticate() {
    let mut pair = Pair::new(Duration::from_secs(3));
    let server_pwd = server_ice_pwd(&pair.answer);
    pair.ffmpeg_with = Some(server_pwd);
    pair.run(Duration::from_secs(2), true);
    assert!(pair.server.is_connected(), "connected without PRIORITY");
    assert!(pair.media_seen > 50);
    // Consent keeps working with such checks past the ICE timeout.
    pair.run(Duration::from_secs(6), true);
    assert_eq!(pair.server.closed(), None);
}

#[test]
fn checks_without_priority_and_a_wrong_integrity_are_dropped() {
    let mut pair = Pair::new(Duration::from_secs(15));
    pair.ffmpeg_with = Some("not the server password at all".into());
    let dropped_before = pair.out.dropped;
    pair.run(Duration::from_secs(2), false);
    assert!(!pair.server.is_connected());
    assert!(pair.out.dropped > dropped_before, "counted as dropped");
}
