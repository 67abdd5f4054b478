//! The offer path: SDP text from an HTTP body → `accept_offer` (our section
//! scan, str0m's parser and negotiation, our role checks) → an answer, for
//! both roles. A viewer's offer is checked against the media of a real
//! publisher, built once from the Chromium publish offer in the seed corpus.
//!
//! Must never panic. When an offer is accepted the answer must be SDP
//! (starts with `v=`), must parse back as an answer, and the peer must take a
//! first timeout without panicking.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use str0m::change::SdpAnswer;
use uringcast::sfu::{Outputs, PeerSetup, PublishedMedia, Role, accept_offer, sim};

/// A real Chromium (156) WHIP offer: sendonly Opus + VP8/H264/VP9/AV1.
const PUBLISH_OFFER: &str = include_str!("../corpus/offer/chromium-publish.sdp");

struct Fixture {
    now: Instant,
    /// `URINGCAST_FUZZ_VERBOSE=1`: print each role's result (to see why a seed is refused).
    verbose: bool,
    setup: PeerSetup,
    publisher: Arc<PublishedMedia>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let now = Instant::now();
    let setup = sim::setup();
    let (peer, _) = accept_offer(Role::Publisher, PUBLISH_OFFER, &setup, "fuzz", None, 1, now)
        .expect("the seed publish offer is accepted");
    let publisher = peer
        .published_media()
        .expect("a publisher peer has media")
        .clone();
    Fixture {
        now,
        verbose: std::env::var_os("URINGCAST_FUZZ_VERBOSE").is_some(),
        setup,
        publisher,
    }
});

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let text = String::from_utf8_lossy(data);
    for role in [Role::Publisher, Role::Viewer] {
        let publisher = match role {
            Role::Publisher => None,
            Role::Viewer => Some(&*fixture.publisher),
        };
        let accepted = accept_offer(
            role,
            &text,
            &fixture.setup,
            "fuzz",
            publisher,
            2,
            fixture.now,
        );
        if fixture.verbose {
            match &accepted {
                Ok((_, answer)) => eprintln!("{role:?}: accepted, answer {} bytes", answer.len()),
                Err(err) => eprintln!("{role:?}: {err}"),
            }
        }
        match accepted {
            Ok((mut peer, answer)) => {
                assert!(answer.starts_with("v="), "answer is not SDP: {answer:?}");
                if let Err(e) = SdpAnswer::from_sdp_string(&answer) {
                    panic!("our answer does not parse: {e}\n{answer}");
                }
                assert_eq!(peer.role(), role);
                if role == Role::Publisher {
                    let media = peer.published_media().expect("publisher media");
                    assert!(!media.tracks.is_empty());
                }
                let mut out = Outputs::default();
                peer.handle_timeout(fixture.now + Duration::from_millis(10), &mut out);
            }
            Err(err) => {
                let _ = err.to_string();
            }
        }
    }
});
