//! The trickle-ice-sdpfrag body of a PATCH (RFC 8840): `wire::SdpFrag` on
//! arbitrary bytes, then what the HTTP layer does with a fragment that
//! parsed (`sfu::IcePatch::from_frag`, which hands each usable candidate to
//! str0m's candidate parser), and the `If-Match` parser on the same text.
//!
//! Beyond "no panic": the limits hold; credentials have RFC 8839 syntax;
//! every candidate is a checked slice of the body that parses back, alone,
//! to the same candidate; `from_frag` accounts for every candidate (usable
//! or skipped) and keeps only UDP, component 1, port ≠ 0, IP (never a
//! `.local` or other name) candidates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::sfu::{IcePatch, IfMatch};
use uringcast::wire::{CandidateAddress, MAX_CANDIDATES, SdpFrag, SdpFragError};

fuzz_target!(|data: &[u8]| {
    let parsed = SdpFrag::parse_bytes(data);
    match std::str::from_utf8(data) {
        Ok(text) => assert_eq!(SdpFrag::parse(text), parsed, "bytes and str disagree"),
        Err(_) => assert!(matches!(
            parsed,
            Err(SdpFragError::NotUtf8 | SdpFragError::TooLong(_))
        )),
    }
    let text = String::from_utf8_lossy(data);
    if_match(&text);
    let Ok(frag) = parsed else {
        let _ = parsed.map_err(|e| e.to_string());
        return;
    };
    let text = std::str::from_utf8(data).expect("a parsed fragment is UTF-8");

    if let Some(creds) = frag.credentials() {
        assert!(ice_chars(creds.ufrag, 4), "ufrag {:?}", creds.ufrag);
        assert!(ice_chars(creds.pwd, 22), "pwd {:?}", creds.pwd);
    }
    assert!(frag.media_sections() <= 16);
    let candidates: Vec<_> = frag.candidates().collect();
    assert_eq!(candidates.len(), frag.candidate_count());
    assert!(candidates.len() <= MAX_CANDIDATES);
    for c in &candidates {
        assert!(c.value.starts_with("candidate:"));
        assert!(
            text.contains(c.value),
            "a candidate that is not in the body"
        );
        assert!((1..=256).contains(&c.component));
        assert!((1..=32).contains(&c.foundation.len()));
        assert_eq!(c.is_udp(), c.transport.eq_ignore_ascii_case("udp"));
        assert_eq!(
            c.socket_addr().is_some(),
            matches!(c.address, CandidateAddress::Ip(_))
        );
        if c.is_mdns() {
            assert!(matches!(c.address, CandidateAddress::Name(_)));
        }
        // The candidate alone, as its own fragment, parses to the same thing.
        let alone = format!("a={}\r\n", c.value);
        let again = SdpFrag::parse(&alone).expect("a checked candidate parses alone");
        assert_eq!(again.candidates().collect::<Vec<_>>(), [*c]);
    }

    let patch = IcePatch::from_frag(&frag, IfMatch::Any);
    assert_eq!(patch.candidates.len() + patch.skipped, candidates.len());
    assert_eq!(
        patch
            .remote
            .as_ref()
            .map(|r| (r.ufrag.as_str(), r.pass.as_str())),
        frag.credentials().map(|c| (c.ufrag, c.pwd))
    );
    let usable = candidates
        .iter()
        .filter(|c| c.is_udp() && c.component == 1 && c.port != 0 && c.socket_addr().is_some())
        .count();
    assert!(patch.candidates.len() <= usable);
    for candidate in &patch.candidates {
        assert_ne!(candidate.addr().port(), 0);
        let _ = candidate.to_sdp_string();
    }
});

/// RFC 8839 ice-char, `min..=256` of them.
fn ice_chars(value: &str, min: usize) -> bool {
    (min..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `If-Match` on arbitrary text: `*` matches anything, a tag list matches
/// the tags it lists (quoted, or unquoted against a quoted ETag), and text
/// with any non-empty tag in it is a condition, never "no If-Match".
fn if_match(text: &str) {
    let Some(condition) = IfMatch::parse(text) else {
        assert!(
            text.split(',').all(|t| t.trim().is_empty()),
            "a non-empty If-Match refused: {text:?}"
        );
        return;
    };
    match &condition {
        IfMatch::Any => assert!(condition.matches("\"anything\"")),
        IfMatch::Tags(tags) => {
            assert!(!tags.is_empty());
            for tag in tags {
                assert!(!tag.is_empty() && tag.trim() == tag);
                let quoted = if tag.starts_with('"') {
                    tag.clone()
                } else {
                    format!("\"{tag}\"")
                };
                assert!(condition.matches(&quoted), "{tag:?} does not match itself");
            }
        }
    }
}
