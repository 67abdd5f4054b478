//! A PATCH applied to a live session: a trickle-ice-sdpfrag body that
//! parses is turned into an `IcePatch` and applied to a fresh publisher peer
//! (built from the libdatachannel/OBS-layout offer in the seed corpus), then
//! applied again with `If-Match` naming the ETag it left. This is the path
//! from the HTTP body into str0m's ICE agent (remote candidates, ICE
//! restart) without the HTTP layer.
//!
//! Beyond "no panic" (str0m panics are caught by the peer in production but
//! abort here): the peer stays open; a trickle adds or skips every candidate
//! and leaves the ETag alone; a restart gives new local credentials whose
//! ufrag is the new ETag; the per-session candidate cap holds across both
//! patches; the old ETag no longer matches after a restart.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uringcast::sfu::{
    IcePatch, IfMatch, MAX_REMOTE_CANDIDATES, Outputs, PatchError, PatchOutcome, PeerSetup, Role,
    accept_offer, sim,
};
use uringcast::wire::SdpFrag;

/// Opus + H264, sendonly, ufrag `Zq4c`: small, so a fresh peer is cheap.
const OFFER: &str = include_str!("../corpus/offer/libdatachannel-publish.sdp");

struct Fixture {
    now: Instant,
    setup: PeerSetup,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture {
    now: Instant::now(),
    setup: sim::setup(),
});

fuzz_target!(|data: &[u8]| {
    let Ok(frag) = SdpFrag::parse_bytes(data) else {
        return;
    };
    let fixture = &*FIXTURE;
    let now = fixture.now;
    let (mut peer, _) = accept_offer(Role::Publisher, OFFER, &fixture.setup, "fuzz", None, 1, now)
        .expect("the seed offer is accepted");
    let mut out = Outputs::default();

    let first_etag = peer.etag();
    let first = peer.apply_patch(now, IcePatch::from_frag(&frag, IfMatch::Any), &mut out);
    assert_eq!(peer.closed(), None, "a patch closed the peer: {first:?}");
    let mut added_total = 0;
    match &first {
        Ok(PatchOutcome::Trickled { added, skipped }) => {
            assert_eq!(added + skipped, frag.candidate_count());
            assert_eq!(peer.etag(), first_etag, "a trickle changed the ETag");
            added_total += added;
        }
        Ok(PatchOutcome::Restarted {
            ufrag,
            pwd,
            etag,
            media,
            added,
            skipped,
        }) => {
            assert!(
                frag.credentials().is_some(),
                "a restart without credentials"
            );
            assert_eq!(added + skipped, frag.candidate_count());
            assert_eq!(*etag, format!("\"{ufrag}\""));
            assert_eq!(peer.etag(), *etag);
            assert_ne!(*etag, first_etag, "a restart kept the ETag");
            assert_eq!(peer.ufrag(), ufrag);
            assert!(pwd.len() >= 22 && ufrag.len() >= 4);
            assert!(!media.is_empty());
            let stale = IcePatch::from_frag(&frag, IfMatch::Tags(vec![first_etag.clone()]));
            assert!(matches!(
                peer.apply_patch(now, stale, &mut out),
                Err(PatchError::PreconditionFailed { .. })
            ));
            added_total += added;
        }
        Err(PatchError::Invalid(why)) => {
            assert!(
                frag.credentials().is_some(),
                "refused without credentials: {why}"
            );
        }
        Err(e) => panic!("a fresh peer refused a patch with If-Match *: {e}"),
    }
    assert!(added_total <= MAX_REMOTE_CANDIDATES);

    // The same body again, conditional on the ETag the first one left: never
    // a second restart (the credentials are now the current ones).
    let second = IcePatch::from_frag(&frag, IfMatch::Tags(vec![peer.etag()]));
    match peer.apply_patch(now, second, &mut out) {
        Ok(PatchOutcome::Trickled { added, .. }) => added_total += added,
        Err(PatchError::Invalid(_)) if first.is_err() => {}
        other => panic!("a repeated patch: {other:?} (the first: {first:?})"),
    }
    assert_eq!(peer.closed(), None);
    assert!(
        added_total <= MAX_REMOTE_CANDIDATES,
        "{added_total} remote candidates"
    );
    peer.handle_timeout(now + Duration::from_millis(10), &mut out);
});
