//! A checked view over an `application/trickle-ice-sdpfrag` body (RFC 8840
//! §4.1): the body of a WHIP/WHEP `PATCH` that trickles candidates or
//! restarts ICE.
//!
//! [`SdpFrag::parse`] walks the text once and checks every line it will ever
//! hand out: ICE credentials (RFC 8839 §5.4 syntax and lengths, one value
//! across the whole fragment) and every `a=candidate` (RFC 8839 §5.1 grammar).
//! After that [`SdpFrag::candidates`] yields them without errors. Unknown
//! attributes and line types are ignored, as RFC 8840 asks; anything that is
//! not an SDP line at all is an error. Nothing here allocates or panics, and
//! nothing decides what to *do* with a candidate (skipping mDNS names or TCP
//! is the caller's policy).

use std::net::{IpAddr, SocketAddr};

/// Longest fragment accepted, in bytes.
pub const MAX_FRAG_LEN: usize = 64 * 1024;
/// Most lines (empty ones included) accepted.
pub const MAX_LINES: usize = 1024;
/// Most `a=candidate` lines accepted in one fragment.
pub const MAX_CANDIDATES: usize = 64;
/// Most `m=` sections accepted in one fragment.
pub const MAX_SECTIONS: usize = 16;

/// Most whitespace-separated fields in one candidate attribute.
const MAX_CANDIDATE_FIELDS: usize = 48;

/// Why a body is not a usable sdpfrag. Always the sender's fault (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpFragError {
    #[error("the fragment is not UTF-8")]
    NotUtf8,
    #[error("the fragment is {0} bytes; at most {MAX_FRAG_LEN} are accepted")]
    TooLong(usize),
    #[error("the fragment has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("the fragment has more than {MAX_CANDIDATES} candidates")]
    TooManyCandidates,
    #[error("the fragment has more than {MAX_SECTIONS} media sections")]
    TooManySections,
    #[error("line {line} is not an SDP line (<letter>=<value>, no control characters)")]
    BadLine { line: usize },
    #[error("line {line}: malformed candidate: {reason}")]
    BadCandidate { line: usize, reason: &'static str },
    #[error("line {line}: ice-ufrag must be 4 to 256 characters of A-Z a-z 0-9 + /")]
    BadUfrag { line: usize },
    #[error("line {line}: ice-pwd must be 22 to 256 characters of A-Z a-z 0-9 + /")]
    BadPwd { line: usize },
    #[error("line {line}: a second, different ice-ufrag or ice-pwd")]
    ConflictingCredentials { line: usize },
    #[error("ice-ufrag and ice-pwd must come together")]
    IncompleteCredentials,
}

/// The ICE credentials a fragment carries (RFC 8839 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceCredentials<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a str,
}

/// A candidate's address: an IP, or a name (mDNS `.local`, or an FQDN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateAddress<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// One checked `a=candidate` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateAttr<'a> {
    /// The attribute value, `candidate:…`, without `a=` and line ending.
    pub value: &'a str,
    pub foundation: &'a str,
    pub component: u16,
    /// As written (`UDP`, `udp`, `TCP`, …).
    pub transport: &'a str,
    pub priority: u32,
    pub address: CandidateAddress<'a>,
    pub port: u16,
    /// `host`, `srflx`, `prflx`, `relay` or an extension token.
    pub kind: &'a str,
    /// The `ufrag` extension, when present.
    pub ufrag: Option<&'a str>,
}

impl CandidateAttr<'_> {
    /// Whether the transport is UDP (case-insensitive).
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// Whether the address is an mDNS name (`….local`, RFC 8828 §5.3).
    pub fn is_mdns(&self) -> bool {
        match self.address {
            CandidateAddress::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                name.len() > 6
                    && name
                        .get(name.len() - 6..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(".local"))
            }
            CandidateAddress::Ip(_) => false,
        }
    }

    /// The transport address, when the address is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.address {
            CandidateAddress::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            CandidateAddress::Name(_) => None,
        }
    }
}

/// A checked trickle-ice-sdpfrag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpFrag<'a> {
    text: &'a str,
    credentials: Option<IceCredentials<'a>>,
    candidates: usize,
    sections: usize,
    end_of_candidates: bool,
}

impl<'a> SdpFrag<'a> {
    /// [`SdpFrag::parse`] on bytes that must be UTF-8.
    pub fn parse_bytes(buf: &'a [u8]) -> Result<Self, SdpFragError> {
        if buf.len() > MAX_FRAG_LEN {
            return Err(SdpFragError::TooLong(buf.len()));
        }
        let text = std::str::from_utf8(buf).map_err(|_| SdpFragError::NotUtf8)?;
        Self::parse(text)
    }

    /// Checks `text` line by line (CRLF or LF). An empty fragment is valid
    /// and carries nothing.
    pub fn parse(text: &'a str) -> Result<Self, SdpFragError> {
        if text.len() > MAX_FRAG_LEN {
            return Err(SdpFragError::TooLong(text.len()));
        }
        let mut ufrag: Option<&str> = None;
        let mut pwd: Option<&str> = None;
        let mut candidates = 0;
        let mut sections = 0;
        let mut end_of_candidates = false;
        for (index, line) in lines(text).enumerate() {
            let number = index + 1;
            if number > MAX_LINES {
                return Err(SdpFragError::TooManyLines);
            }
            if line.is_empty() {
                continue;
            }
            let (kind, value) = split_line(line).ok_or(SdpFragError::BadLine { line: number })?;
            match kind {
                b'm' => {
                    sections += 1;
                    if sections > MAX_SECTIONS {
                        return Err(SdpFragError::TooManySections);
                    }
                }
                b'a' => {
                    let (name, attr_value) = match value.split_once(':') {
                        Some((name, v)) => (name, Some(v)),
                        None => (value, None),
                    };
                    match (name, attr_value) {
                        ("ice-ufrag", Some(v)) => {
                            let v = v.trim_end();
                            if !is_ice_chars(v, 4) {
                                return Err(SdpFragError::BadUfrag { line: number });
                            }
                            set_once(&mut ufrag, v, number)?;
                        }
                        ("ice-ufrag", None) => return Err(SdpFragError::BadUfrag { line: number }),
                        ("ice-pwd", Some(v)) => {
                            let v = v.trim_end();
                            if !is_ice_chars(v, 22) {
                                return Err(SdpFragError::BadPwd { line: number });
                            }
                            set_once(&mut pwd, v, number)?;
                        }
                        ("ice-pwd", None) => return Err(SdpFragError::BadPwd { line: number }),
                        ("candidate", _) => {
                            parse_candidate(value).map_err(|reason| {
                                SdpFragError::BadCandidate {
                                    line: number,
                                    reason,
                                }
                            })?;
                            candidates += 1;
                            if candidates > MAX_CANDIDATES {
                                return Err(SdpFragError::TooManyCandidates);
                            }
                        }
                        ("end-of-candidates", _) => end_of_candidates = true,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let credentials = match (ufrag, pwd) {
            (Some(ufrag), Some(pwd)) => Some(IceCredentials { ufrag, pwd }),
            (None, None) => None,
            _ => return Err(SdpFragError::IncompleteCredentials),
        };
        Ok(Self {
            text,
            credentials,
            candidates,
            sections,
            end_of_candidates,
        })
    }

    /// The ICE credentials, if the fragment carries them (a restart, or a
    /// client that repeats its current ones).
    pub fn credentials(&self) -> Option<IceCredentials<'a>> {
        self.credentials
    }

    /// Every candidate, in order.
    pub fn candidates(&self) -> impl Iterator<Item = CandidateAttr<'a>> + 'a {
        lines(self.text).filter_map(|line| {
            let value = line.strip_prefix("a=")?;
            if !value.starts_with("candidate:") {
                return None;
            }
            // Checked by `parse`; an error here cannot happen.
            parse_candidate(value).ok()
        })
    }

    /// How many candidates [`SdpFrag::candidates`] yields.
    pub fn candidate_count(&self) -> usize {
        self.candidates
    }

    /// How many `m=` lines the fragment has.
    pub fn media_sections(&self) -> usize {
        self.sections
    }

    /// Whether the fragment says `a=end-of-candidates`.
    pub fn end_of_candidates(&self) -> bool {
        self.end_of_candidates
    }
}

/// Lines split on LF with one trailing CR removed.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// `x=value` with `x` a lowercase letter and no control characters.
fn split_line(line: &str) -> Option<(u8, &str)> {
    let bytes = line.as_bytes();
    let (&kind, rest) = bytes.split_first()?;
    if !kind.is_ascii_lowercase() || rest.first() != Some(&b'=') {
        return None;
    }
    if bytes.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return None;
    }
    Some((kind, line.get(2..)?))
}

fn set_once<'a>(
    slot: &mut Option<&'a str>,
    value: &'a str,
    line: usize,
) -> Result<(), SdpFragError> {
    match slot {
        Some(existing) if *existing != value => Err(SdpFragError::ConflictingCredentials { line }),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// ice-char (ALPHA / DIGIT / "+" / "/"), `min..=256` of them.
fn is_ice_chars(value: &str, min: usize) -> bool {
    (min..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Parses `candidate:<foundation> <component> <transport> <priority>
/// <address> <port> typ <type> [raddr <a>] [rport <p>] *(<name> <value>)`.
fn parse_candidate(value: &str) -> Result<CandidateAttr<'_>, &'static str> {
    let rest = value
        .strip_prefix("candidate:")
        .ok_or("missing candidate: prefix")?;
    let mut fields = rest.split_ascii_whitespace();
    let mut next = |what: &'static str| fields.next().ok_or(what);
    let foundation = next("missing foundation")?;
    if foundation.len() > 32 || !is_ice_chars_any(foundation) {
        return Err("foundation must be 1 to 32 ice-chars");
    }
    let component = parse_digits::<u16>(next("missing component id")?, 3)
        .filter(|c| (1..=256).contains(c))
        .ok_or("component id must be 1 to 256")?;
    let transport = next("missing transport")?;
    if !is_token(transport) {
        return Err("transport is not a token");
    }
    let priority =
        parse_digits::<u32>(next("missing priority")?, 10).ok_or("priority must be a u32")?;
    let address = parse_address(next("missing address")?).ok_or("bad connection address")?;
    let port = parse_digits::<u16>(next("missing port")?, 5).ok_or("port must be 0 to 65535")?;
    if next("missing typ")? != "typ" {
        return Err("expected typ after the port");
    }
    let kind = next("missing candidate type")?;
    if !is_token(kind) {
        return Err("candidate type is not a token");
    }
    let mut ufrag = None;
    let mut count = 8;
    while let Some(name) = fields.next() {
        count += 2;
        if count > MAX_CANDIDATE_FIELDS {
            return Err("too many fields");
        }
        let value = fields.next().ok_or("extension without a value")?;
        match name {
            "raddr" => {
                parse_address(value).ok_or("bad raddr")?;
            }
            "rport" => {
                parse_digits::<u16>(value, 5).ok_or("bad rport")?;
            }
            "ufrag" => ufrag = Some(value),
            _ if is_token(name) => {}
            _ => return Err("extension name is not a token"),
        }
    }
    Ok(CandidateAttr {
        value,
        foundation,
        component,
        transport,
        priority,
        address,
        port,
        kind,
        ufrag,
    })
}

fn is_ice_chars_any(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 4566 token characters.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

/// 1..=`max_digits` ASCII digits that fit `T`.
fn parse_digits<T: std::str::FromStr>(text: &str, max_digits: usize) -> Option<T> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An IP address, or a host name of letters, digits, `-` and `.`.
fn parse_address(text: &str) -> Option<CandidateAddress<'_>> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(CandidateAddress::Ip(ip));
    }
    let name_ok = (1..=253).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && text.bytes().any(|b| b.is_ascii_alphabetic());
    name_ok.then_some(CandidateAddress::Name(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9725 §4.3.1's trickle example (candidates from a browser).
    const TRICKLE: &str = "a=group:BUNDLE 0 1\r\n\
        m=audio 9 RTP/AVP 0\r\n\
        a=mid:0\r\n\
        a=ice-ufrag:EsAw\r\n\
        a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
        a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
        a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
        a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n\
        a=candidate:2154773085 1 tcp 1518214911 198.51.100.2 9 typ host tcptype active generation 0 ufrag EsAw network-id 2\r\n\
        a=end-of-candidates\r\n";

    #[test]
    fn rfc9725_trickle_example() {
        let frag = SdpFrag::parse(TRICKLE).unwrap();
        assert_eq!(
            frag.credentials(),
            Some(IceCredentials {
                ufrag: "EsAw",
                pwd: "P2uYro0UCOQ4zxjKXaWCBui1"
            })
        );
        assert_eq!(frag.candidate_count(), 4);
        assert_eq!(frag.media_sections(), 1);
        assert!(frag.end_of_candidates());
        let candidates: Vec<_> = frag.candidates().collect();
        assert_eq!(candidates.len(), 4);
        let first = candidates[0];
        assert_eq!(first.foundation, "1387637174");
        assert_eq!(first.component, 1);
        assert!(first.is_udp());
        assert_eq!(first.priority, 2122260223);
        assert_eq!(
            first.socket_addr(),
            Some("192.0.2.1:61764".parse().unwrap())
        );
        assert_eq!(first.kind, "host");
        assert_eq!(first.ufrag, Some("EsAw"));
        assert!(first.value.starts_with("candidate:1387637174 1 udp"));
        assert!(first.value.ends_with("network-id 1"));
        assert!(!candidates[2].is_udp());
    }

    #[test]
    fn candidates_only_and_empty_and_bare_lf() {
        let frag = SdpFrag::parse(
            "a=candidate:1 1 UDP 2122252543 fe80::1 50000 typ host\na=candidate:2 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 10.0.0.2 rport 50000\n",
        )
        .unwrap();
        assert_eq!(frag.credentials(), None);
        assert_eq!(frag.candidate_count(), 2);
        let kinds: Vec<_> = frag.candidates().map(|c| c.kind).collect();
        assert_eq!(kinds, ["host", "srflx"]);
        assert!(frag.candidates().all(|c| c.is_udp()));
        let empty = SdpFrag::parse("").unwrap();
        assert_eq!(empty.candidate_count(), 0);
        assert_eq!(empty.credentials(), None);
        assert!(SdpFrag::parse("\r\n\r\n").is_ok());
    }

    #[test]
    fn mdns_names_are_told_apart() {
        let frag = SdpFrag::parse(
            "a=candidate:1 1 udp 2122262783 2b6f1d2e-7c1b-4d3a-9f0e-1a2b3c4d5e6f.local 55123 typ host\r\n\
             a=candidate:2 1 udp 2122262783 turn.example.com 3478 typ relay raddr 0.0.0.0 rport 0\r\n",
        )
        .unwrap();
        let c: Vec<_> = frag.candidates().collect();
        assert!(c[0].is_mdns());
        assert_eq!(c[0].socket_addr(), None);
        assert!(!c[1].is_mdns());
        assert_eq!(c[1].address, CandidateAddress::Name("turn.example.com"));
    }

    #[test]
    fn a_restart_fragment_from_whip_whep_js() {
        let frag = SdpFrag::parse(
            "a=ice-options:trickle ice2\r\na=ice-ufrag:ZZZZ\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n",
        )
        .unwrap();
        assert_eq!(frag.credentials().unwrap().ufrag, "ZZZZ");
        assert_eq!(frag.media_sections(), 2);
        assert_eq!(frag.candidate_count(), 0);
        // The same credentials repeated per section are fine.
        let repeated = "a=ice-ufrag:ZZZZ\na=ice-pwd:abcdefghijklmnopqrstuvwx\nm=audio 9 X 0\na=ice-ufrag:ZZZZ\na=ice-pwd:abcdefghijklmnopqrstuvwx\n";
        assert!(SdpFrag::parse(repeated).is_ok());
    }

    #[test]
    fn malformed_fragments_are_refused_with_the_line() {
        use SdpFragError::*;
        let cases: &[(&str, SdpFragError)] = &[
            ("hello", BadLine { line: 1 }),
            ("a=mid:0\nA=x", BadLine { line: 2 }),
            ("a=mid:0\0", BadLine { line: 1 }),
            ("=x", BadLine { line: 1 }),
            ("a", BadLine { line: 1 }),
            (
                "a=ice-ufrag:abc\na=ice-pwd:abcdefghijklmnopqrstuvwx",
                BadUfrag { line: 1 },
            ),
            ("a=ice-ufrag:ab cd", BadUfrag { line: 1 }),
            ("a=ice-ufrag", BadUfrag { line: 1 }),
            ("a=ice-ufrag:abcd\na=ice-pwd:short", BadPwd { line: 2 }),
            ("a=ice-ufrag:abcd", IncompleteCredentials),
            ("a=ice-pwd:abcdefghijklmnopqrstuvwx", IncompleteCredentials),
            (
                "a=ice-ufrag:abcd\na=ice-ufrag:abce\na=ice-pwd:abcdefghijklmnopqrstuvwx",
                ConflictingCredentials { line: 2 },
            ),
            (
                "a=candidate:1 1 udp 1 1.2.3.4 5",
                BadCandidate {
                    line: 1,
                    reason: "missing typ",
                },
            ),
            (
                "a=candidate:1 1 udp 99999999999 1.2.3.4 5 typ host",
                BadCandidate {
                    line: 1,
                    reason: "priority must be a u32",
                },
            ),
            (
                "a=candidate:1 0 udp 1 1.2.3.4 5 typ host",
                BadCandidate {
                    line: 1,
                    reason: "component id must be 1 to 256",
                },
            ),
            (
                "a=candidate:1 1 udp 1 1.2.3.4 65536 typ host",
                BadCandidate {
                    line: 1,
                    reason: "port must be 0 to 65535",
                },
            ),
            (
                "a=candidate:1 1 udp 1 not_a_host! 5 typ host",
                BadCandidate {
                    line: 1,
                    reason: "bad connection address",
                },
            ),
            (
                "a=candidate:1 1 udp 1 1.2.3.4 5 typ host raddr",
                BadCandidate {
                    line: 1,
                    reason: "extension without a value",
                },
            ),
            (
                "a=candidate:1 1 udp 1 1.2.3.4 5 typ host rport x",
                BadCandidate {
                    line: 1,
                    reason: "bad rport",
                },
            ),
            (
                "a=candidate:",
                BadCandidate {
                    line: 1,
                    reason: "missing foundation",
                },
            ),
            (
                "a=candidate:garbage",
                BadCandidate {
                    line: 1,
                    reason: "missing component id",
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(SdpFrag::parse(text), Err(*want), "{text:?}");
        }
    }

    #[test]
    fn limits_hold() {
        let line = "a=candidate:1 1 udp 1 1.2.3.4 5 typ host\n";
        assert!(SdpFrag::parse(&line.repeat(MAX_CANDIDATES)).is_ok());
        assert_eq!(
            SdpFrag::parse(&line.repeat(MAX_CANDIDATES + 1)),
            Err(SdpFragError::TooManyCandidates)
        );
        assert_eq!(
            SdpFrag::parse(&"\n".repeat(MAX_LINES + 1)),
            Err(SdpFragError::TooManyLines)
        );
        assert_eq!(
            SdpFrag::parse(&"m=audio 9 X 0\n".repeat(MAX_SECTIONS + 1)),
            Err(SdpFragError::TooManySections)
        );
        let long = "a".repeat(MAX_FRAG_LEN + 1);
        assert_eq!(
            SdpFrag::parse(&long),
            Err(SdpFragError::TooLong(MAX_FRAG_LEN + 1))
        );
        assert_eq!(
            SdpFrag::parse_bytes(&[b'a', b'=', 0xff]),
            Err(SdpFragError::NotUtf8)
        );
        let fields = format!(
            "a=candidate:1 1 udp 1 1.2.3.4 5 typ host{}",
            " x y".repeat(MAX_CANDIDATE_FIELDS)
        );
        assert!(matches!(
            SdpFrag::parse(&fields),
            Err(SdpFragError::BadCandidate {
                reason: "too many fields",
                ..
            })
        ));
    }

    #[test]
    fn every_prefix_and_byte_flip_is_handled_without_panic() {
        let bytes = TRICKLE.as_bytes();
        for len in 0..bytes.len() {
            let _ = SdpFrag::parse_bytes(&bytes[..len]).map(|f| f.candidates().count());
        }
        let mut seed = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut copy = bytes.to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let at = seed as usize % copy.len();
                copy[at] = (seed >> 8) as u8;
            }
            if let Ok(frag) = SdpFrag::parse_bytes(&copy) {
                assert_eq!(frag.candidates().count(), frag.candidate_count());
            }
        }
    }
}
