//! What a WHIP/WHEP `PATCH` asks of a peer (RFC 9725 §4.3): remote
//! candidates trickled in (RFC 8838/8840), or an ICE restart (new remote
//! ufrag and password → new local ones), guarded by the session's ETag.
//!
//! [`IcePatch::from_frag`] turns a checked sdpfrag into str0m candidates,
//! skipping silently what this server cannot use: mDNS `.local` names and
//! other host names, transports other than UDP, RTCP components (we are
//! rtcp-mux only), port 0 and unspecified or multicast addresses.
//! [`Peer::apply_patch`](super::Peer::apply_patch) applies it.
//!
//! ETags: a session's ETag is its current ICE ufrag, quoted. It is strong
//! (it changes exactly when the ICE session does, at a restart) and reveals
//! nothing the answer did not already carry.

use std::net::IpAddr;

use str0m::media::{MediaKind, Mid};
use str0m::{Candidate, IceCreds};

use crate::wire::SdpFrag;

/// Most remote candidates one peer keeps from trickling (the rest are skipped).
pub const MAX_REMOTE_CANDIDATES: usize = 32;

/// An `If-Match` condition (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*` or `"*"`: any current ICE session.
    Any,
    /// One or more entity tags, as sent (quoted or not; `W/` never matches).
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses a header value: `*`, `"*"`, or a comma-separated tag list.
    /// `None` for an empty value.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let mut tags = Vec::new();
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" || tag == "\"*\"" {
                return Some(Self::Any);
            }
            tags.push(tag.to_owned());
        }
        (!tags.is_empty()).then_some(Self::Tags(tags))
    }

    /// Whether the condition holds for a session whose ETag is `etag`
    /// (quoted). A tag sent without quotes is compared as if quoted: some
    /// clients strip them.
    pub fn matches(&self, etag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|tag| {
                tag == etag
                    || (!tag.starts_with('"')
                        && etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'))
                            == Some(tag.as_str()))
            }),
        }
    }
}

/// A PATCH's ICE content, ready for a peer.
#[derive(Debug, Clone)]
pub struct IcePatch {
    pub if_match: IfMatch,
    /// The remote ICE credentials the fragment names, if any.
    pub remote: Option<IceCreds>,
    /// Usable remote candidates.
    pub candidates: Vec<Candidate>,
    /// Candidates skipped as unusable here.
    pub skipped: usize,
}

impl IcePatch {
    /// See the module docs.
    pub fn from_frag(frag: &SdpFrag<'_>, if_match: IfMatch) -> Self {
        let mut candidates = Vec::new();
        let mut skipped = 0;
        for attr in frag.candidates() {
            let usable = attr.is_udp()
                && attr.component == 1
                && attr.port != 0
                && attr.socket_addr().is_some_and(|a| is_usable_ip(a.ip()));
            match usable.then(|| Candidate::from_sdp_string(attr.value)) {
                Some(Ok(candidate)) => candidates.push(candidate),
                _ => skipped += 1,
            }
        }
        Self {
            if_match,
            remote: frag.credentials().map(|c| IceCreds {
                ufrag: c.ufrag.to_owned(),
                pass: c.pwd.to_owned(),
            }),
            candidates,
            skipped,
        }
    }
}

fn is_usable_ip(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && ip != IpAddr::from([255, 255, 255, 255])
}

/// What a patch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// Candidates added (the ICE session is unchanged): 204.
    Trickled { added: usize, skipped: usize },
    /// ICE restarted: our new credentials and ETag (200 with a sdpfrag).
    Restarted {
        ufrag: String,
        pwd: String,
        etag: String,
        /// The session's media sections (kind, mid), in offer order: the
        /// answer fragment names the first, which carries the bundle.
        media: Vec<(MediaKind, Mid)>,
        added: usize,
        skipped: usize,
    },
}

/// Why a patch was not applied. The peer is unchanged in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// `If-Match` names another ICE session (412).
    #[error("If-Match does not match the current ICE session (ETag {current})")]
    PreconditionFailed { current: String },
    /// The session has ended (404).
    #[error("the session has ended")]
    Closed,
    /// The fragment asks for something that cannot be done (400).
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(IfMatch::parse("*"), Some(IfMatch::Any));
        assert_eq!(IfMatch::parse(" \"*\" "), Some(IfMatch::Any));
        assert_eq!(IfMatch::parse(""), None);
        assert_eq!(IfMatch::parse(" , "), None);
        let tags = IfMatch::parse("\"a\", \"abc\"").unwrap();
        assert!(tags.matches("\"abc\""));
        assert!(!tags.matches("\"ab\""));
        assert!(
            IfMatch::parse("abc").unwrap().matches("\"abc\""),
            "unquoted"
        );
        assert!(
            !IfMatch::parse("W/\"abc\"").unwrap().matches("\"abc\""),
            "weak"
        );
        assert!(IfMatch::Any.matches("\"x\""));
    }

    #[test]
    fn unusable_candidates_are_skipped() {
        let frag = SdpFrag::parse(
            "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n\
             a=candidate:2 1 UDP 1686052607 203.0.113.7 40000 typ srflx raddr 10.0.0.2 rport 50000\r\n\
             a=candidate:3 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\n\
             a=candidate:4 1 udp 2122262783 1f2e3d4c-aaaa-bbbb-cccc-0123456789ab.local 55123 typ host\r\n\
             a=candidate:5 2 udp 2122260222 192.0.2.1 61765 typ host\r\n\
             a=candidate:6 1 udp 2122260223 192.0.2.1 0 typ host\r\n\
             a=candidate:7 1 udp 2122260223 0.0.0.0 5000 typ host\r\n\
             a=candidate:8 1 udp 2122260223 224.0.0.1 5000 typ host\r\n\
             a=candidate:9 1 udp 2122260223 192.0.2.9 5000 typ weird\r\n",
        )
        .unwrap();
        let patch = IcePatch::from_frag(&frag, IfMatch::Any);
        let addrs: Vec<_> = patch.candidates.iter().map(|c| c.addr()).collect();
        assert_eq!(
            addrs,
            [
                "192.0.2.1:61764".parse().unwrap(),
                "203.0.113.7:40000".parse().unwrap()
            ]
        );
        assert_eq!(patch.skipped, 7);
        let remote = patch.remote.unwrap();
        assert_eq!(remote.ufrag, "abcd");
    }
}
