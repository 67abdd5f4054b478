use std::sync::Arc;

use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use super::*;
use crate::sfu::{IdRng, PeerSetup, accept_offer};

fn offer(direction: Direction) -> String {
    let mut rtc = Rtc::new(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, direction, None, None, None);
    change.add_media(MediaKind::Video, direction, None, None, None);
    change.apply().unwrap().0.to_sdp_string()
}

fn peer(directory: &Directory, role: Role, room: &str) -> Peer {
    let setup = PeerSetup {
        candidates: vec!["127.0.0.1:5004".parse().unwrap()],
        connect_timeout: Duration::from_secs(15),
        ice_timeout: Duration::from_secs(15),
        keyframe_interval: Duration::from_millis(500),
        max_bitrate_in: 0,
        max_bitrate_out: 0,
        dtls_cert: None,
        crypto: crate::dtls::crypto_provider(),
        // A fresh setup per peer: a seeded source would repeat its ids.
        rng: IdRng::os(),
        codecs: crate::sfu::CodecList::default(),
        ice_tcp: false,
    };
    let (direction, publisher) = match role {
        Role::Publisher => (Direction::SendOnly, None),
        Role::Viewer => (Direction::RecvOnly, directory.publisher_media(room)),
    };
    let generation = directory.next_generation();
    accept_offer(
        role,
        &offer(direction),
        &setup,
        room,
        publisher.as_deref(),
        generation,
        Instant::now(),
    )
    .unwrap()
    .0
}

#[test]
fn sessions_of_a_room_share_one_room_and_refusals_leave_none() {
    let d = Directory::new();
    let now = Instant::now();
    // Refused inserts create nothing.
    assert_eq!(
        d.insert(peer_without_publisher(&d), now),
        Err(InsertError::RoomHasNoPublisher("r".into()))
    );
    assert!(d.rooms().is_empty());

    let publisher = d.insert(peer(&d, Role::Publisher, "r"), now).unwrap();
    let viewer = d.insert(peer(&d, Role::Viewer, "r"), now).unwrap();
    assert_eq!(
        d.insert(peer(&d, Role::Publisher, "r"), now),
        Err(InsertError::RoomHasPublisher("r".into()))
    );
    let rooms = d.rooms();
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].sessions, rooms[0].has_publisher), (2, true));

    // Both peers were attached to the same shared room.
    let Claim::Moved(p) = d.claim(ufrag_of(&d, publisher).as_bytes(), 0) else {
        panic!("pending")
    };
    let Claim::Moved(v) = d.claim(ufrag_of(&d, viewer).as_bytes(), 1) else {
        panic!("pending")
    };
    assert!(Arc::ptr_eq(p.room(), v.room()));
    assert_ne!(p.room().id, 0, "not the detached placeholder");

    // The room goes with its last session; a new one gets a new id.
    let old_id = p.room().id;
    assert!(matches!(d.remove(publisher), Some(Place::Shard(0))));
    assert!(d.publisher_media("r").is_none());
    assert!(matches!(d.remove(viewer), Some(Place::Shard(1))));
    assert!(d.remove(viewer).is_none(), "a second remove finds nothing");
    assert!(d.rooms().is_empty());
    let again = d.insert(peer(&d, Role::Publisher, "r"), now).unwrap();
    let Claim::Moved(p2) = d.claim(ufrag_of(&d, again).as_bytes(), 0) else {
        panic!("pending")
    };
    assert_ne!(p2.room().id, old_id);
}

fn peer_without_publisher(d: &Directory) -> Peer {
    // A viewer needs a publisher's media to be built; borrow one from
    // another room so the insert into "r" is what gets refused.
    let now = Instant::now();
    let id = d
        .insert(peer(d, Role::Publisher, "elsewhere"), now)
        .unwrap();
    let mut viewer = peer(d, Role::Viewer, "elsewhere");
    d.remove(id);
    viewer.set_room(Arc::new(crate::sfu::RoomShared::new(0, "r".into())));
    viewer
}

fn ufrag_of(d: &Directory, id: SessionId) -> String {
    d.inner.lock().sessions.get(&id).unwrap().ufrag.clone()
}

#[test]
fn claims_move_a_peer_once_and_unclaim_gives_it_back() {
    let d = Directory::new();
    let now = Instant::now();
    let id = d.insert(peer(&d, Role::Publisher, "c"), now).unwrap();
    let ufrag = ufrag_of(&d, id);
    assert!(matches!(d.claim(b"unknownufrag0000", 0), Claim::Unknown));
    let Claim::Moved(claimed) = d.claim(ufrag.as_bytes(), 1) else {
        panic!("pending")
    };
    assert!(matches!(d.claim(ufrag.as_bytes(), 0), Claim::OnShard(1)));
    // Only the claiming shard can give it back.
    let claimed = d.unclaim(claimed, 0).expect("shard 0 never claimed it");
    assert!(d.unclaim(claimed, 1).is_none());
    assert!(matches!(d.claim(ufrag.as_bytes(), 0), Claim::Moved(_)));
    // A session that ended meanwhile is not resurrected.
    let Claim::OnShard(0) = d.claim(ufrag.as_bytes(), 1) else {
        panic!("placed")
    };
    d.remove(id);
    let gone = peer(&d, Role::Publisher, "c2");
    assert!(d.unclaim(Box::new(gone), 0).is_some());
}

#[test]
fn the_session_limit_refuses_inserts_until_one_ends() {
    let d = Directory::with_max_sessions(2);
    let now = Instant::now();
    let a = d.insert(peer(&d, Role::Publisher, "a"), now).unwrap();
    assert!(!d.is_full());
    d.insert(peer(&d, Role::Publisher, "b"), now).unwrap();
    assert!(d.is_full());
    assert_eq!(
        d.insert(peer(&d, Role::Publisher, "c"), now),
        Err(InsertError::Full(2))
    );
    assert!(
        d.rooms().iter().all(|r| r.name != "c"),
        "no room left behind"
    );
    d.remove(a);
    assert!(d.insert(peer(&d, Role::Publisher, "c"), now).is_ok());
    assert_eq!(d.max_sessions(), 2);
}

#[test]
fn a_pending_peer_is_patched_under_the_lock_and_its_new_ufrag_indexed() {
    use crate::sfu::{IfMatch, PatchOutcome};
    use crate::wire::SdpFrag;

    let d = Directory::new();
    let now = Instant::now();
    let id = d.insert(peer(&d, Role::Publisher, "p"), now).unwrap();
    assert_eq!(
        d.session_info(id),
        Some(SessionInfo {
            room: "p".into(),
            role: Role::Publisher
        })
    );
    let old = ufrag_of(&d, id);
    let frag = |text: &str, if_match: IfMatch| {
        IcePatch::from_frag(&SdpFrag::parse(text).unwrap(), if_match)
    };
    // Candidates only, stale ETag: refused, nothing changes.
    let trickle = "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host\r\n";
    let stale = IfMatch::parse("\"nope\"").unwrap();
    assert!(matches!(
        d.patch(id, now, frag(trickle, stale)),
        PatchRoute::Done(Err(PatchError::PreconditionFailed { .. }))
    ));
    let current = IfMatch::parse(&format!("\"{old}\"")).unwrap();
    assert!(matches!(
        d.patch(id, now, frag(trickle, current)),
        PatchRoute::Done(Ok(PatchOutcome::Trickled {
            added: 1,
            skipped: 0
        }))
    ));
    assert_eq!(ufrag_of(&d, id), old);
    // A restart: new ufrag, indexed; the old one finds nothing.
    let restart = "a=ice-ufrag:newU\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
    let PatchRoute::Done(Ok(PatchOutcome::Restarted { ufrag, etag, .. })) =
        d.patch(id, now, frag(restart, IfMatch::Any))
    else {
        panic!("restarted")
    };
    assert_ne!(ufrag, old);
    assert_eq!(etag, format!("\"{ufrag}\""));
    assert_eq!(ufrag_of(&d, id), ufrag);
    assert!(matches!(d.claim(old.as_bytes(), 0), Claim::Unknown));
    let Claim::Moved(p) = d.claim(ufrag.as_bytes(), 0) else {
        panic!("found by its new ufrag")
    };
    assert_eq!(p.ufrag(), ufrag);
    // Placed now: the shard's business.
    assert!(matches!(
        d.patch(id, now, frag(trickle, IfMatch::Any)),
        PatchRoute::OnShard(0)
    ));
    assert!(d.reindex_ufrag(id, "ShardUfrag000000"));
    assert!(matches!(d.claim(b"ShardUfrag000000", 1), Claim::OnShard(0)));
    assert!(matches!(d.claim(ufrag.as_bytes(), 1), Claim::Unknown));
    d.remove(id);
    assert!(!d.reindex_ufrag(id, "x"));
    assert!(matches!(
        d.patch(id, now, frag(trickle, IfMatch::Any)),
        PatchRoute::Unknown
    ));
}

#[test]
fn only_old_pending_sessions_expire() {
    let d = Directory::new();
    let t0 = Instant::now();
    let old = d.insert(peer(&d, Role::Publisher, "a"), t0).unwrap();
    let placed = d.insert(peer(&d, Role::Publisher, "b"), t0).unwrap();
    let young = d
        .insert(peer(&d, Role::Publisher, "c"), t0 + Duration::from_secs(10))
        .unwrap();
    let Claim::Moved(_) = d.claim(ufrag_of(&d, placed).as_bytes(), 0) else {
        panic!("pending")
    };
    assert_eq!(
        d.expire_pending(t0 + Duration::from_secs(15), Duration::from_secs(15)),
        1
    );
    assert!(d.remove(old).is_none(), "expired");
    assert!(
        d.remove(placed).is_some(),
        "placed sessions are the shard's to end"
    );
    assert!(d.remove(young).is_some(), "not old enough");
    assert!(d.rooms().is_empty());
}

#[test]
fn pending_per_ip_and_room_size_limits_hold_and_free_up() {
    let d = Directory::with_limits(Limits {
        max_sessions: 0,
        max_pending: 3,
        max_per_ip: 2,
        room_size: 1,
        ..Limits::default()
    });
    let now = Instant::now();
    let a: IpAddr = [10, 0, 0, 1].into();
    let b: IpAddr = [10, 0, 0, 2].into();
    let p1 = d
        .insert_from(peer(&d, Role::Publisher, "r"), now, Some(a))
        .unwrap();
    let _v1 = d
        .insert_from(peer(&d, Role::Viewer, "r"), now, Some(b))
        .unwrap();
    assert_eq!(
        d.insert_from(peer(&d, Role::Viewer, "r"), now, Some(b)),
        Err(InsertError::RoomFull("r".into(), 1))
    );
    let _p2 = d
        .insert_from(peer(&d, Role::Publisher, "s"), now, Some(a))
        .unwrap();
    assert_eq!(d.precheck(Some(a)), Err(InsertError::TooManyPending(3)));
    assert_eq!(d.pending_count(), 3);
    // Claiming one frees a pending slot; then the per-IP limit bites.
    let Claim::Moved(_) = d.claim(ufrag_of(&d, p1).as_bytes(), 0) else {
        panic!("pending")
    };
    assert_eq!(d.pending_count(), 2);
    assert_eq!(
        d.insert_from(peer(&d, Role::Publisher, "t"), now, Some(a)),
        Err(InsertError::TooManyFromIp(2))
    );
    assert!(d.precheck(Some([10, 0, 0, 3].into())).is_ok());
    assert!(d.precheck(None).is_ok());
    d.remove(p1);
    assert_eq!(d.pending_count(), 2, "a placed session was not pending");
    let p3 = d
        .insert_from(peer(&d, Role::Publisher, "t"), now, Some(a))
        .unwrap();
    assert_eq!(d.pending_count(), 3);
    assert_eq!(d.expire_pending(now, Duration::ZERO), 3);
    assert_eq!(d.pending_count(), 0);
    assert!(d.remove(p3).is_none());
    assert!(d.rooms().is_empty());
    assert!(
        d.inner.lock().per_ip.is_empty(),
        "per-IP counts return to 0"
    );
}

#[test]
fn a_session_that_ended_by_itself_answers_one_delete_and_a_deleted_one_none() {
    let d = Directory::new().remember_ended(Duration::from_secs(15));
    let t0 = Instant::now();
    let ended = d.insert(peer(&d, Role::Publisher, "e"), t0).unwrap();
    let deleted = d.insert(peer(&d, Role::Publisher, "d"), t0).unwrap();
    let expired = d.insert(peer(&d, Role::Publisher, "x"), t0).unwrap();
    let Claim::Moved(_) = d.claim(ufrag_of(&d, ended).as_bytes(), 0) else {
        panic!("pending")
    };
    let Claim::Moved(_) = d.claim(ufrag_of(&d, deleted).as_bytes(), 0) else {
        panic!("pending")
    };
    // Its shard saw it close: a tombstone with its room and role.
    assert!(matches!(d.end(ended, t0), Some(Place::Shard(0))));
    assert!(d.end(ended, t0).is_none(), "ends once");
    assert!(d.session_info(ended).is_none(), "PATCH finds nothing");
    let info = SessionInfo {
        room: "e".into(),
        role: Role::Publisher,
    };
    assert_eq!(d.deletable_info(ended, t0), Some(info));
    // A DELETE of a live session leaves no tombstone; then its shard's end
    // finds nothing.
    assert!(matches!(
        d.delete(deleted, t0),
        Deletion::Live(Place::Shard(0))
    ));
    assert!(d.end(deleted, t0).is_none());
    assert!(matches!(d.delete(deleted, t0), Deletion::Unknown));
    // Expired before its first STUN: a tombstone too.
    assert_eq!(d.expire_pending(t0, Duration::ZERO), 1);
    assert_eq!(d.ended_count(), 2);
    let later = t0 + Duration::from_secs(14);
    assert!(matches!(d.delete(ended, later), Deletion::Ended));
    assert!(matches!(d.delete(ended, later), Deletion::Unknown), "once");
    // Past the window: gone, and swept.
    let late = t0 + Duration::from_secs(15);
    assert!(d.deletable_info(expired, late).is_none());
    assert!(matches!(d.delete(expired, late), Deletion::Unknown));
    d.expire_pending(late, Duration::from_secs(15));
    assert_eq!(d.ended_count(), 0);
    assert!(matches!(
        d.delete(SessionId::random(), t0),
        Deletion::Unknown
    ));
    assert!(d.rooms().is_empty());

    // Zero: nothing is remembered.
    let d = Directory::new().remember_ended(Duration::ZERO);
    let id = d.insert(peer(&d, Role::Publisher, "z"), t0).unwrap();
    assert!(d.end(id, t0).is_some());
    assert!(matches!(d.delete(id, t0), Deletion::Unknown));
}
