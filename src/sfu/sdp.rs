//! A small, allocation-light scan of an SDP offer's media sections: kind,
//! direction, mid, whether the port is 0. str0m parses SDP fully; this scan
//! exists only to validate an offer against WHIP/WHEP rules before (and to
//! name its media after) handing it to str0m. It never panics on any input.

/// The kind named on an `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Audio,
    Video,
    Application,
    Other,
}

/// The direction attribute of a media section (`sendrecv` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionDirection {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One `m=` section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    pub direction: SectionDirection,
    pub mid: Option<String>,
    /// `m=… 0 …`: the offerer rejected or bundled-only this section.
    pub port_zero: bool,
    /// Port 0 but in use: `a=bundle-only`, or its mid is in the BUNDLE
    /// group (RFC 8843 §6; GStreamer's max-bundle offers do this), as str0m
    /// takes it.
    pub bundle_only: bool,
    /// The section offers simulcast (`a=simulcast` or `a=rid`).
    pub simulcast: bool,
}

/// Why an SDP text was refused before str0m saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("the SDP does not start with v=0")]
    NoVersion,
    #[error("the SDP contains a NUL byte")]
    Nul,
    #[error("the SDP has no media section (m=)")]
    NoMedia,
    #[error("the SDP has more than {0} media sections")]
    TooManySections(usize),
    #[error("mid {0:?} appears in more than one media section")]
    DuplicateMid(String),
}

/// The most media sections an offer may carry (a WHIP/WHEP session here has at
/// most one audio and one video, plus maybe a data channel).
pub const MAX_SECTIONS: usize = 16;

/// Scans `sdp` into its media sections.
pub fn scan(sdp: &str) -> Result<Vec<Section>, ScanError> {
    if sdp.contains('\0') {
        return Err(ScanError::Nul);
    }
    let mut lines = sdp.lines().map(str::trim_end);
    if lines.next().map(str::trim_start) != Some("v=0") {
        return Err(ScanError::NoVersion);
    }
    let mut sections: Vec<Section> = Vec::new();
    let mut bundle: Vec<&str> = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("m=") {
            if sections.len() == MAX_SECTIONS {
                return Err(ScanError::TooManySections(MAX_SECTIONS));
            }
            let mut fields = rest.split(' ');
            let kind = match fields.next() {
                Some("audio") => SectionKind::Audio,
                Some("video") => SectionKind::Video,
                Some("application") => SectionKind::Application,
                _ => SectionKind::Other,
            };
            let port_zero = fields.next() == Some("0");
            sections.push(Section {
                kind,
                direction: SectionDirection::SendRecv,
                mid: None,
                port_zero,
                bundle_only: false,
                simulcast: false,
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            if let Some(mids) = line.strip_prefix("a=group:BUNDLE") {
                bundle.extend(mids.split_whitespace());
            }
            continue;
        };
        match line {
            "a=sendrecv" => section.direction = SectionDirection::SendRecv,
            "a=sendonly" => section.direction = SectionDirection::SendOnly,
            "a=recvonly" => section.direction = SectionDirection::RecvOnly,
            "a=inactive" => section.direction = SectionDirection::Inactive,
            _ => {
                if let Some(mid) = line.strip_prefix("a=mid:") {
                    section.mid = Some(mid.trim().to_owned());
                } else if line == "a=bundle-only" {
                    section.bundle_only = section.port_zero;
                } else if line.starts_with("a=simulcast:") || line.starts_with("a=rid:") {
                    section.simulcast = true;
                }
            }
        }
    }
    if sections.is_empty() {
        return Err(ScanError::NoMedia);
    }
    for s in sections.iter_mut().filter(|s| s.port_zero) {
        s.bundle_only |= s.mid.as_deref().is_some_and(|mid| bundle.contains(&mid));
    }
    for (i, s) in sections.iter().enumerate() {
        if let Some(mid) = &s.mid
            && sections[..i].iter().any(|o| o.mid.as_ref() == Some(mid))
        {
            return Err(ScanError::DuplicateMid(mid.clone()));
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\na=rid:h send\r\n\
        m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    #[test]
    fn sections_carry_kind_direction_mid_and_port() {
        let s = scan(OFFER).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].kind, SectionKind::Audio);
        assert_eq!(s[0].direction, SectionDirection::SendOnly);
        assert_eq!(s[0].mid.as_deref(), Some("0"));
        assert_eq!(s[1].kind, SectionKind::Video);
        assert_eq!(s[1].direction, SectionDirection::RecvOnly);
        assert!(s[1].simulcast && !s[0].simulcast);
        assert_eq!(s[2].kind, SectionKind::Application);
        assert_eq!(s[2].direction, SectionDirection::SendRecv);
        assert!(s[2].port_zero);
        assert!(!s.iter().any(|s| s.bundle_only));
    }

    #[test]
    fn a_bundle_only_section_is_in_use() {
        // GStreamer's webrtcbin with bundle-policy max-bundle.
        let offer = "v=0\r\ns=-\r\na=group:BUNDLE video0 audio1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=mid:video0\r\n\
            m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\na=sendonly\r\na=mid:audio1\r\n\
            m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:rejected\r\n";
        let s = scan(offer).unwrap();
        assert!(!s[0].port_zero && !s[0].bundle_only);
        assert!(s[1].port_zero && s[1].bundle_only);
        assert!(
            s[2].port_zero && !s[2].bundle_only,
            "not in the group: rejected"
        );
        // In the group without a=bundle-only: str0m takes it as bundled too.
        let grouped = offer.replace("a=bundle-only\r\n", "");
        assert!(scan(&grouped).unwrap()[1].bundle_only);
    }

    #[test]
    fn bad_offers_are_named() {
        assert_eq!(scan(""), Err(ScanError::NoVersion));
        assert_eq!(scan("hello"), Err(ScanError::NoVersion));
        assert_eq!(scan("v=0\r\ns=-\r\n"), Err(ScanError::NoMedia));
        assert_eq!(scan("v=0\r\n\0"), Err(ScanError::Nul));
        let dup = "v=0\nm=audio 9 x 1\na=mid:a\nm=video 9 x 2\na=mid:a\n";
        assert_eq!(scan(dup), Err(ScanError::DuplicateMid("a".into())));
        let many = format!("v=0\n{}", "m=audio 9 x 1\n".repeat(MAX_SECTIONS + 1));
        assert_eq!(scan(&many), Err(ScanError::TooManySections(MAX_SECTIONS)));
    }

    #[test]
    fn every_prefix_of_an_offer_scans_without_panic() {
        for end in 0..OFFER.len() {
            let _ = scan(&OFFER[..end]);
        }
    }
}
