//! Checks on offer and fragment text that str0m does not make, run before
//! either is parsed: ICE credentials within RFC 8839's lengths and alphabet,
//! DTLS fingerprints naming a known hash with a value of its length, and an
//! `a=setup` role we can answer. A failure is a 400 (malformed) or 422
//! (well-formed but unanswerable) problem, never a session that cannot
//! connect.

use axum::http::StatusCode;

use super::problem::Problem;

/// Checks every line of `sdp` (an offer or a trickle fragment).
pub fn check(sdp: &str) -> Result<(), Problem> {
    for line in sdp.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(ufrag) = line.strip_prefix("a=ice-ufrag:") {
            ice_chars("a=ice-ufrag", ufrag.trim(), 4)?;
        } else if let Some(pwd) = line.strip_prefix("a=ice-pwd:") {
            ice_chars("a=ice-pwd", pwd.trim(), 22)?;
        } else if let Some(fingerprint) = line.strip_prefix("a=fingerprint:") {
            check_fingerprint(fingerprint.trim())?;
        } else if let Some(setup) = line.strip_prefix("a=setup:") {
            check_setup(setup.trim())?;
        }
    }
    Ok(())
}

fn bad(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, detail)
}

/// RFC 8839 §5.4: `ice-char` is ALPHA / DIGIT / "+" / "/"; a ufrag is 4–256
/// of them, a password 22–256.
fn ice_chars(what: &str, value: &str, min: usize) -> Result<(), Problem> {
    let ok = (min..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} must be {min} to 256 characters of A-Z, a-z, 0-9, + and / (RFC 8839), \
             not {} bytes",
            value.len()
        )))
    }
}

/// RFC 8122: `hash-func SP fingerprint`, the fingerprint being the digest's
/// bytes as two uppercase-or-lowercase hex digits each, joined by colons.
fn check_fingerprint(value: &str) -> Result<(), Problem> {
    let (hash, digest) = value
        .split_once(' ')
        .ok_or_else(|| bad("a=fingerprint needs a hash function and a value".into()))?;
    let want = match hash.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        other => {
            return Err(bad(format!(
                "a=fingerprint hash {:?} is not one of sha-1, sha-224, sha-256, sha-384, sha-512",
                truncate(other)
            )));
        }
    };
    let bytes: Vec<&str> = digest.trim().split(':').collect();
    let hex = bytes
        .iter()
        .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !hex || bytes.len() != want {
        return Err(bad(format!(
            "a=fingerprint {hash} needs {want} colon-separated hex bytes"
        )));
    }
    Ok(())
}

/// RFC 4145/5763: we answer `actpass`, `active` and `passive`; `holdconn`
/// asks for no connection at all (422).
fn check_setup(value: &str) -> Result<(), Problem> {
    match value.to_ascii_lowercase().as_str() {
        "actpass" | "active" | "passive" => Ok(()),
        "holdconn" => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a=setup:holdconn asks for no DTLS connection; WHIP and WHEP need one",
        )),
        other => Err(bad(format!(
            "a=setup:{} is not actpass, active or passive",
            truncate(other)
        ))),
    }
}

/// At most 32 characters of client text in a problem detail.
fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

pub use crate::sfu::scrub;

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";

    #[test]
    fn good_lines_pass() {
        let sdp = format!(
            "v=0\r\na=ice-ufrag:Ch1x\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:{FP}\r\na=setup:actpass\r\n"
        );
        assert!(check(&sdp).is_ok());
        assert!(check("a=ice-ufrag:a+b/\na=setup:PASSIVE\n").is_ok());
    }

    #[test]
    fn bad_lines_fail() {
        for (line, status) in [
            ("a=ice-ufrag:abc", 400),
            (&*format!("a=ice-ufrag:{}", "u".repeat(257)), 400),
            ("a=ice-ufrag:ab cd", 400),
            ("a=ice-ufrag:abc\u{e9}", 400),
            ("a=ice-pwd:abcdefghijklmnopqrstu", 400),
            (&*format!("a=ice-pwd:{}", "p".repeat(257)), 400),
            ("a=fingerprint:md7 00:11", 400),
            ("a=fingerprint:sha-256", 400),
            ("a=fingerprint:sha-256 7B:8B", 400),
            (
                "a=fingerprint:sha-1 ZZ:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64",
                400,
            ),
            ("a=setup:holdconn", 422),
            ("a=setup:sideways", 400),
        ] {
            let err = check(line).expect_err(line);
            assert_eq!(err.status.as_u16(), status, "{line}");
        }
    }

    #[test]
    fn pointer_offsets_are_scrubbed() {
        assert_eq!(
            scrub("Parse error at PointerOffset(0x7f93200121d1)\nMissing"),
            "Parse error at offset\nMissing"
        );
        assert_eq!(scrub("PointerOffset(0x1"), "offset");
        assert_eq!(scrub("fine"), "fine");
    }
}
