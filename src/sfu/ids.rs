//! Identifiers that leave the process (session URLs, ICE credentials): all
//! drawn from the OS CSPRNG, never from str0m's non-cryptographic RNG.

use std::fmt;

/// A session's id: 128 bits from the OS CSPRNG, shown as 32 hex digits in
/// its URL (`/session/{id}`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Parses the 32-hex-digit form; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Half the id is enough to tell sessions apart in logs without
        // printing a bearer capability in full.
        write!(f, "{}…", &hex::encode(&self.0[..4]))
    }
}

/// What a session does in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends media into the room (WHIP).
    Publisher,
    /// Receives the room's media (WHEP).
    Viewer,
}

/// Length of the ICE ufrags we issue (RFC 8839 asks for at least 4; 16
/// characters of 62 carry 95 bits).
pub const UFRAG_LEN: usize = 16;

/// `len` characters from `[A-Za-z0-9]`, drawn from the OS CSPRNG (used for ICE
/// ufrag and password: RFC 8839 allows these characters).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while out.len() < len {
        fill_random(&mut bytes);
        // 62 * 4 = 248: rejecting bytes ≥ 248 keeps the choice uniform.
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[usize::from(b % 62)] as char);
        }
    }
    out
}

/// A random `u64` from the OS CSPRNG (ICE tiebreakers).
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_ne_bytes(bytes)
}

fn fill_random(buf: &mut [u8]) {
    // The OS CSPRNG failing is not something a server can recover from: every
    // credential it would hand out would be guessable.
    getrandom::fill(buf).expect("the OS random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_reject_junk() {
        let id = SessionId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(SessionId::parse(&text), Some(id));
        assert_eq!(SessionId::parse("not-hex"), None);
        assert_eq!(SessionId::parse(&text[..30]), None);
        assert_ne!(SessionId::random(), id);
    }

    #[test]
    fn tokens_have_the_asked_length_and_alphabet() {
        let t = random_token(24);
        assert_eq!(t.len(), 24);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_token(24), t);
    }
}
