//! Identifiers that leave the process (session URLs, ICE credentials, ICE
//! tiebreakers), all drawn from an [`IdRng`] the caller hands in — never from
//! str0m's non-cryptographic RNG. The server's is [`IdRng::os`], the OS
//! CSPRNG: session ids are the only handle on a session URL and must stay
//! unguessable. Tests and simulations may use [`IdRng::insecure_seeded`], a
//! SplitMix64 stream, so that a run can be replayed with the same
//! identifiers. Nothing else in `sfu` draws randomness of its own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use str0m::media::MediaKind;

/// Where the core's identifiers come from; carried by
/// [`PeerSetup`](super::PeerSetup) into every peer. Clones share one
/// stream: a seeded source cloned into two peers still hands them
/// different identifiers.
#[derive(Clone)]
pub struct IdRng(Entropy);

#[derive(Clone)]
enum Entropy {
    Os,
    /// SplitMix64 state (advanced atomically, so clones share the stream).
    InsecureSeeded(Arc<AtomicU64>),
}

impl IdRng {
    /// The OS CSPRNG (`getrandom`): what the server uses.
    pub fn os() -> Self {
        Self(Entropy::Os)
    }

    /// A deterministic stream from `seed` (SplitMix64), for tests and
    /// simulations that replay a run. **Insecure**: every identifier it
    /// gives is predictable from the seed, so a server built on it hands
    /// out guessable session URLs and ICE credentials. No configuration or
    /// CLI option selects it; only code that names this function does.
    pub fn insecure_seeded(seed: u64) -> Self {
        Self(Entropy::InsecureSeeded(Arc::new(AtomicU64::new(seed))))
    }

    /// Whether this is a seeded (insecure) source.
    pub fn is_insecure(&self) -> bool {
        matches!(self.0, Entropy::InsecureSeeded(_))
    }

    /// A fresh session id.
    pub fn session_id(&self) -> SessionId {
        let mut bytes = [0u8; 16];
        self.fill(&mut bytes);
        SessionId(bytes)
    }

    /// `len` characters from `[A-Za-z0-9]` (ICE ufrag and password: RFC
    /// 8839 allows these characters).
    pub fn token(&self, len: usize) -> String {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        let mut bytes = [0u8; 64];
        while out.len() < len {
            self.fill(&mut bytes);
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

    /// A random `u64` (ICE tiebreakers).
    pub fn u64(&self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill(&self, buf: &mut [u8]) {
        match &self.0 {
            // The OS CSPRNG failing is not something a server can recover
            // from: every credential it would hand out would be guessable.
            Entropy::Os => getrandom::fill(buf).expect("the OS random number generator failed"),
            Entropy::InsecureSeeded(state) => {
                for chunk in buf.chunks_mut(8) {
                    let word = splitmix64(state).to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
            }
        }
    }
}

impl fmt::Debug for IdRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the state: it would predict every identifier to come.
        match self.0 {
            Entropy::Os => f.write_str("IdRng::Os"),
            Entropy::InsecureSeeded(_) => f.write_str("IdRng::InsecureSeeded"),
        }
    }
}

/// One SplitMix64 step (Steele, Lea, Flood 2014; the seeder of xoshiro).
fn splitmix64(state: &AtomicU64) -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = state
        .fetch_add(GAMMA, Ordering::Relaxed)
        .wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A session's id: 128 bits from an [`IdRng`] (the server's: the OS
/// CSPRNG), shown as 32 hex digits in its URL (`/session/{id}`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh id from the OS CSPRNG (for callers outside the core, such as
    /// tests that need an id no session has).
    pub fn random() -> Self {
        IdRng::os().session_id()
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

/// One published track, unique for the life of the process: the publisher
/// number of its session (never 0) and the track's index in that session.
/// Nothing about it is secret: it names a track in stats and events, never
/// authorizes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(u64);

impl TrackId {
    /// Track `index` of publisher number `publisher`.
    pub fn new(publisher: u64, index: u8) -> Self {
        Self(publisher << 8 | u64::from(index))
    }

    /// The number, as events and stats show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a subscriber's outgoing track is fed from: one published track, or
/// a room's *main* feed of one kind (what a WHEP viewer watches: the packets
/// of whichever publisher is the room's main one, rewritten into one
/// continuous stream when it changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    Track(TrackId),
    Main { room: u64, kind: MediaKind },
}

/// What a published track carries, as a conference names it: one of each
/// per participant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Microphone,
    Camera,
    Screen,
}

impl Source {
    /// Every source, in the order a participant's tracks are listed.
    pub const ALL: [Source; 3] = [Source::Microphone, Source::Camera, Source::Screen];

    /// The kind of media it carries.
    pub fn kind(self) -> MediaKind {
        match self {
            Source::Microphone => MediaKind::Audio,
            Source::Camera | Source::Screen => MediaKind::Video,
        }
    }

    /// Its name in URLs and events.
    pub fn name(self) -> &'static str {
        match self {
            Source::Microphone => "microphone",
            Source::Camera => "camera",
            Source::Screen => "screen",
        }
    }

    /// The source named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
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
        for rng in [IdRng::os(), IdRng::insecure_seeded(7)] {
            let t = rng.token(24);
            assert_eq!(t.len(), 24);
            assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
            assert_ne!(rng.token(24), t);
        }
    }

    #[test]
    fn a_seeded_source_replays_and_its_clones_share_the_stream() {
        let draw = |rng: &IdRng| (rng.session_id(), rng.token(16), rng.u64());
        let (a, b) = (IdRng::insecure_seeded(1), IdRng::insecure_seeded(1));
        assert_eq!(draw(&a), draw(&b));
        assert_ne!(draw(&a), draw(&IdRng::insecure_seeded(2)));
        let clone = a.clone();
        assert_ne!(draw(&a), draw(&clone), "a clone continues the stream");
        assert!(a.is_insecure() && !IdRng::os().is_insecure());
        assert_eq!(format!("{:?}", IdRng::os()), "IdRng::Os");
        // SplitMix64's published first output for seed 0.
        assert_eq!(IdRng::insecure_seeded(0).u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn track_ids_of_different_publishers_or_indices_differ() {
        assert_eq!(TrackId::new(1, 0).get(), 256);
        assert_ne!(TrackId::new(1, 1), TrackId::new(2, 1));
        assert_ne!(TrackId::new(1, 1), TrackId::new(1, 2));
    }
}

/// A client's address as one of its transports sees it: a UDP address, or
/// the far end of an ICE-TCP connection (RFC 6544). The two port spaces are
/// apart, so routes and the media's destination name both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub proto: str0m::net::Protocol,
    pub addr: std::net::SocketAddr,
}

impl PeerAddr {
    pub fn udp(addr: std::net::SocketAddr) -> Self {
        Self {
            proto: str0m::net::Protocol::Udp,
            addr,
        }
    }

    pub fn tcp(addr: std::net::SocketAddr) -> Self {
        Self {
            proto: str0m::net::Protocol::Tcp,
            addr,
        }
    }

    /// Where transmit `t` goes.
    pub fn of(t: &str0m::net::Transmit) -> Self {
        Self {
            proto: t.proto,
            addr: t.destination,
        }
    }
}

impl PeerAddr {
    fn rank(&self) -> (u8, std::net::SocketAddr) {
        let proto = match self.proto {
            str0m::net::Protocol::Udp => 0,
            str0m::net::Protocol::Tcp => 1,
            str0m::net::Protocol::SslTcp => 2,
            str0m::net::Protocol::Tls => 3,
        };
        (proto, self.addr)
    }
}

impl PartialOrd for PeerAddr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// UDP first, then by address: a stable order for listings.
impl Ord for PeerAddr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl From<std::net::SocketAddr> for PeerAddr {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self::udp(addr)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            str0m::net::Protocol::Udp => write!(f, "{}", self.addr),
            other => write!(f, "{other}:{}", self.addr),
        }
    }
}
