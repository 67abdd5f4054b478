//! The SDP section scan that validates offers before str0m sees them, on
//! arbitrary bytes: as lossy UTF-8 (what a lenient caller would pass) and,
//! when the bytes are UTF-8, as the raw `str` (what the HTTP layer passes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::sfu::sdp::{MAX_SECTIONS, ScanError, scan};

fuzz_target!(|data: &[u8]| {
    let lossy = String::from_utf8_lossy(data);
    check(&lossy);
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});

fn check(text: &str) {
    match scan(text) {
        Ok(sections) => {
            assert!(!text.contains('\0'));
            assert!((1..=MAX_SECTIONS).contains(&sections.len()));
            for (i, s) in sections.iter().enumerate() {
                if let Some(mid) = &s.mid {
                    assert_eq!(mid.trim(), mid);
                    assert!(
                        sections[..i].iter().all(|o| o.mid.as_ref() != Some(mid)),
                        "duplicate mid {mid:?} accepted"
                    );
                }
            }
        }
        Err(err) => {
            if let ScanError::TooManySections(n) = err {
                assert_eq!(n, MAX_SECTIONS);
            }
            let _ = err.to_string();
        }
    }
}
