//! Shards driven without sockets ([`ShardWorld`]): routing, hand-off,
//! address reuse, junk, expiry, each ending in the full consistency check.

use std::net::SocketAddr;
use std::time::Duration;

use super::sim::ShardWorld;
use crate::directory::Limits;
use crate::sfu::Role;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `addr(port)` over UDP, as the shard's tables name it.
fn peer(port: u16) -> crate::sfu::PeerAddr {
    addr(port).into()
}

fn world(shards: usize) -> ShardWorld {
    ShardWorld::new(shards, Limits::default(), crate::sfu::sim::setup())
}

/// Advances in 20 ms steps until every listening client is connected (at
/// most 3 s of virtual time).
fn connect(w: &mut ShardWorld) {
    for _ in 0..150 {
        if w.clients.iter().all(|c| c.silent || c.connected) {
            return;
        }
        w.advance(Duration::from_millis(20));
    }
    panic!("clients did not connect in 3 s of virtual time");
}

fn check(w: &ShardWorld) -> Vec<super::Tables> {
    w.check().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn media_flows_to_viewers_on_both_shards_and_everything_ends_clean() {
    let mut w = world(2);
    // Even ports hash to shard 0, odd to shard 1.
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    let near = w.post("r", Role::Viewer, addr(4002)).unwrap();
    let far = w.post("r", Role::Viewer, addr(4003)).unwrap();
    connect(&mut w);
    for _ in 0..50 {
        w.publish(publisher, 300);
        w.advance(Duration::from_millis(10));
    }
    let tables = check(&w);
    assert_eq!(tables[0].sessions.len(), 2, "publisher and near viewer");
    assert_eq!(tables[1].sessions.len(), 1, "far viewer");
    for viewer in [near, far] {
        assert!(
            w.clients[viewer].rtp_received >= 45,
            "viewer {viewer} got {} of 50 packets",
            w.clients[viewer].rtp_received
        );
    }
    let s0 = w.shards[0].stats();
    assert!(s0.cross_shard_out >= 45, "{s0:?}");
    w.wind_down();
    w.check_empty().unwrap();
}

#[test]
fn a_new_session_on_a_reused_port_keeps_its_route_when_the_old_one_ends() {
    let mut w = world(1);
    let old = w.post("a", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    // The first client goes away without a DELETE; a new one gets the same
    // address from the NAT and publishes to another room.
    w.clients[old].silent = true;
    let new = w.post("b", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    let new_id = w.clients[new].session;
    assert_eq!(check(&w)[0].pinned, vec![(peer(4000), new_id)]);
    assert!(w.delete(old), "the old session still existed");
    w.run();
    assert_eq!(
        check(&w)[0].pinned,
        vec![(peer(4000), new_id)],
        "the old session's end must not take the new one's address"
    );
    let received = w.shards[0].stats().rtp_in;
    for _ in 0..10 {
        w.publish(new, 200);
        w.advance(Duration::from_millis(10));
    }
    assert!(
        w.shards[0].stats().rtp_in >= received + 9,
        "the new publisher's media still arrives"
    );
    w.wind_down();
    w.check_empty().unwrap();
}

#[test]
fn a_rebound_client_is_handed_off_and_its_route_is_withdrawn_at_the_end() {
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    // The NAT moves the client to a port that hashes to shard 1.
    w.rebind(publisher, addr(4001));
    w.advance(Duration::from_secs(3));
    let id = w.clients[publisher].session;
    let tables = check(&w);
    assert!(tables[0].pinned.contains(&(peer(4001), id)));
    assert_eq!(tables[1].routed, vec![(peer(4001), 0)]);
    let before = w.shards[0].stats().rtp_in;
    for _ in 0..10 {
        w.publish(publisher, 200);
        w.advance(Duration::from_millis(10));
    }
    assert!(w.shards[0].stats().rtp_in >= before + 9);
    assert!(w.shards[1].stats().handed_off >= 10);
    assert!(w.delete(publisher));
    w.run();
    let tables = check(&w);
    assert!(tables[0].sessions.is_empty() && tables[0].pinned.is_empty());
    assert!(tables[1].routed.is_empty(), "shard 1 was told to unroute");
}

#[test]
fn junk_replays_and_spoofed_stun_are_counted_and_never_pin() {
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    let pinned = check(&w)[0].pinned.clone();
    let spoofer = addr(5001);
    for kind in 0..super::sim::KINDS {
        // Changed anywhere before FINGERPRINT: the STUN no longer checks out.
        w.replay(publisher, kind, spoofer, None, Some((4, 0x20)));
        // DTLS, SRTP and SRTCP from an address that never authenticated.
        if kind > 0 {
            w.replay(publisher, kind, spoofer, Some(0), None);
        }
    }
    for (i, junk) in [
        &b"\x00\x01\x00\x00"[..],
        b"\x80",
        b"GET / HTTP/1.1\r\n",
        &[0x16; 40],
    ]
    .iter()
    .enumerate()
    {
        w.deliver(i % 2, addr(6000 + i as u16), junk);
    }
    w.run();
    let tables = check(&w);
    assert_eq!(tables[0].pinned, pinned, "nothing new pinned");
    assert!(tables[1].routed.is_empty());
    let s: Vec<_> = w.shards.iter().map(|s| s.stats()).collect();
    assert!(
        s[0].drop_unknown_source + s[1].drop_unknown_source >= 5,
        "{s:?}"
    );
    // A genuine STUN replayed from elsewhere does authenticate (it is what a
    // NAT rebinding looks like): that address may be pinned, and is counted
    // as a source of valid STUN.
    w.replay(publisher, 0, spoofer, None, None);
    w.run();
    check(&w);
}

#[test]
fn sessions_that_never_connect_are_gone_after_the_connect_timeout() {
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    for port in 4001..4005 {
        let viewer = w.post("r", Role::Viewer, addr(port)).unwrap();
        // Never sends anything: stays pending in the directory.
        w.clients[viewer].silent = true;
    }
    w.advance(Duration::from_secs(1));
    assert_eq!(w.directory.pending_count(), 4);
    assert!(!w.clients[publisher].silent);
    w.wind_down();
    w.check_empty().unwrap();
}

#[test]
fn a_rebound_viewer_gets_media_at_its_new_address_within_a_consent_check() {
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    let viewer = w.post("r", Role::Viewer, addr(4001)).unwrap();
    connect(&mut w);
    // The viewer's NAT moves it to a port that hashes to the other shard;
    // str0m alone would keep sending to the old address for 15 s.
    w.rebind(viewer, addr(4002));
    w.advance(Duration::from_secs(3));
    let before = w.clients[viewer].rtp_received;
    for _ in 0..20 {
        w.publish(publisher, 200);
        w.advance(Duration::from_millis(10));
    }
    let got = w.clients[viewer].rtp_received - before;
    assert!(got >= 19, "{got} of 20 packets reached the rebound viewer");
    let id = w.clients[viewer].session;
    let tables = check(&w);
    assert!(tables[1].pinned.contains(&(peer(4002), id)));
    assert_eq!(tables[0].routed, vec![(peer(4002), 1)]);
}

/// A client that nominates once (Firefox's regular nomination) sends no
/// USE-CANDIDATE after its NAT rebinds: its consent checks just come from
/// the new address. Once the old path has sent no check for `SILENT_PATH`
/// (4 s), such a check takes it over; without that, media went to the dead
/// address until str0m dropped the pair and the session with it.
#[test]
fn a_rebound_viewer_that_nominated_once_gets_media_again_and_stays() {
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    let viewer = w.post("r", Role::Viewer, addr(4001)).unwrap();
    w.clients[viewer].nominates_once = true;
    connect(&mut w);
    w.rebind(viewer, addr(4002));
    // Publish 50 packets a second for 30 s; note when the first one
    // reaches the rebound viewer.
    let start = w.now;
    let before = w.clients[viewer].rtp_received;
    let mut first_at = None;
    for _ in 0..1_500 {
        w.publish(publisher, 200);
        w.advance(Duration::from_millis(20));
        if first_at.is_none() && w.clients[viewer].rtp_received > before {
            first_at = Some(w.now - start);
        }
    }
    let first_at = first_at.expect("no packet ever reached the rebound viewer");
    // 4 s without a check from the old path, then the client's next check
    // (str0m's client checks its nominated pair every few seconds, like a
    // browser), well before str0m's 15 s pruning of the old pair.
    assert!(
        first_at <= Duration::from_secs(8),
        "media resumed only after {first_at:?}"
    );
    // From then on it gets (nearly) everything, past str0m's 15 s pruning
    // of the old pair.
    let got = w.clients[viewer].rtp_received - before;
    let expected = (Duration::from_secs(30) - first_at).as_millis() as u64 / 20;
    assert!(
        got + 2 >= expected,
        "{got} of {expected} packets after {first_at:?}"
    );
    let id = w.clients[viewer].session;
    let tables = check(&w);
    assert!(tables[1].sessions.contains(&id), "{tables:?}");
    assert!(tables[1].pinned.contains(&(peer(4002), id)));
    let takeovers: u64 = w.shards.iter().map(|s| s.stats().path_takeovers).sum();
    assert_eq!(takeovers, 1);
}

#[test]
fn an_ice_restart_renames_the_peer_on_its_shard_and_in_the_directory() {
    use crate::sfu::PatchOutcome;
    let mut w = world(2);
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    connect(&mut w);
    let viewer = w.post("r", Role::Viewer, addr(4001)).unwrap();
    w.clients[viewer].silent = true; // stays pending in the directory
    let restart = "a=ice-ufrag:fzAB\r\na=ice-pwd:0123456789abcdefghijkl\r\n";
    for client in [publisher, viewer] {
        match w.patch(client, restart) {
            Some(Ok(PatchOutcome::Restarted { .. })) => {}
            other => panic!("client {client}: {other:?}"),
        }
        check(&w);
    }
    // The publisher's client was not told: its checks name the old ufrag,
    // which no longer routes anywhere.
    let before = w.shards[0].stats().drop_unknown_ufrag;
    w.advance(Duration::from_secs(3));
    assert!(w.shards[0].stats().drop_unknown_ufrag > before);
    check(&w);
    w.wind_down();
    w.check_empty().unwrap();
}

/// Found by the `demux` fuzz target: an address authenticated on its own
/// shard and then handed over from another (a client sending to two of
/// our IPs reaches two shards) left a route behind on the other shard
/// when its session ended.
#[test]
fn an_address_that_reached_two_shards_is_unrouted_on_both_when_its_session_ends() {
    let mut w = world(2);
    // Port 4001 hashes to shard 1: the publisher is placed there.
    let publisher = w.post("r", Role::Publisher, addr(4001)).unwrap();
    connect(&mut w);
    // The same address reaches shard 0 too: its check is handed to shard 1,
    // which tells shard 0 to route the address there.
    w.replay(publisher, 0, addr(4001), Some(0), None);
    w.run();
    assert_eq!(check(&w)[0].routed, vec![(peer(4001), 1)]);
    assert!(w.delete(publisher));
    w.run();
    let tables = check(&w);
    assert!(tables[0].routed.is_empty(), "{tables:?}");
    assert!(tables[1].sessions.is_empty() && tables[1].pinned.is_empty());
}

/// Media lanes of one message (`--shard-queue 1`), full of a publisher's
/// burst in both directions: the media is dropped and counted, while a
/// route (shard 0 → 1) and a keyframe request (shard 1 → 0) queued meanwhile
/// still arrive and are acted on. On one shared lane both were dropped too.
#[test]
fn control_messages_pass_media_lanes_that_are_full() {
    let mut w = ShardWorld::with_media_lanes(2, Limits::default(), crate::sfu::sim::setup(), 1);
    // Even ports hash to shard 0, odd to shard 1.
    let publisher = w.post("r", Role::Publisher, addr(4000)).unwrap();
    let viewer = w.post("r", Role::Viewer, addr(4001)).unwrap();
    connect(&mut w);
    for _ in 0..10 {
        w.publish(publisher, 200);
        w.advance(Duration::from_millis(20));
    }
    assert!(
        w.clients[viewer].rtp_received > 0,
        "media reached the viewer"
    );
    // Past the keyframe throttle of the viewer's first request.
    w.advance(Duration::from_secs(1));
    let keyframes = w.clients[publisher].keyframe_requests;
    // The viewer asks for a keyframe; its client sends the PLI with its
    // next RTCP, some steps later. At every step the publisher's address
    // reaches shard 1 too: its check is handed to shard 0, filling the
    // 1 → 0 lane before anything else moves, so the PLI's keyframe request
    // to shard 0 always finds that lane full. In the same round the
    // publisher's burst fills the 0 → 1 lane before shard 0 handles the
    // check and routes the address to shard 1.
    w.request_keyframe(viewer);
    for _ in 0..100 {
        w.replay(publisher, 0, addr(4000), Some(1), None);
        for _ in 0..20 {
            w.publish(publisher, 200);
        }
        w.advance(Duration::from_millis(10));
        if w.clients[publisher].keyframe_requests > keyframes {
            break;
        }
    }
    let s: Vec<_> = w.shards.iter().map(|s| s.stats()).collect();
    assert!(s[0].drop_queue_full > 0, "the burst overflowed: {s:?}");
    assert_eq!(s[0].control_lost + s[1].control_lost, 0, "{s:?}");
    assert!(
        w.clients[publisher].keyframe_requests > keyframes,
        "the viewer's keyframe request reached the publisher"
    );
    assert_eq!(check(&w)[1].routed, vec![(peer(4000), 0)]);
    // The route is used: the publisher's media reaching shard 1 is handed
    // straight to shard 0 instead of being dropped as unknown.
    let handed = s[1].handed_off;
    w.replay(publisher, 2, addr(4000), Some(1), None);
    w.run();
    let s1 = w.shards[1].stats();
    assert_eq!(s1.handed_off, handed + 1, "{s1:?}");
    assert_eq!(s1.drop_unknown_source, s[1].drop_unknown_source);
    check(&w);
    w.wind_down();
    w.check_empty().unwrap();
}
