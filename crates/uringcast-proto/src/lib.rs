//! What the uringcast server and its load tool (`uringcast-load`) share:
//! the no-panic packet peeks (`wire`), the DTLS provider on OpenSSL that
//! str0m is given (`dtls`), the str0m workarounds both ends of a session
//! need (`recovery`: the start hold and RTX; `stun_repair`: binding
//! requests rebuilt with what quirky clients leave out), and small parsers.
//! Nothing here opens a socket or starts a thread.

pub mod dtls;
pub mod recovery;
pub mod stun_repair;
pub mod wire;

use std::time::Duration;

/// The RFC 6464 audio level (−dBov) from which a packet counts as voice.
pub const VOICE_LEVEL: i8 = -50;

/// Parses `250ms`, `15s`, `2m`, `24h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 500ms, 15s, 2m or 24h"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}'")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("'{text}' is not a non-negative duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("5d").is_err());
    }
}
