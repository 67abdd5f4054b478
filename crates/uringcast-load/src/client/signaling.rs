//! The client's WHIP/WHEP signaling: the POST (with a token), the WHEP
//! `406` counter-offer (answer it, `PATCH` the answer as `application/sdp`,
//! expect `204`), trickle `PATCH`es of its candidates, ICE restarts, and
//! imitations of real clients that bend the rules, so tests can prove the
//! server copes: OBS (no candidates, never trickles), FFmpeg
//! (`a=setup:passive`; connectivity checks without PRIORITY or
//! ICE-CONTROLLING), `@eyevinn/whip-web-client` (an `ETag` request header
//! instead of `If-Match`; `Bearer undefined`).

use std::fmt::Write;

use str0m::Rtc;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};

use super::{Client, ClientError, ClientRole};
use uringcast_proto::stun_repair::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE,
    rebuild_binding_request,
};
use uringcast_proto::wire::{SdpFrag, StunView};

/// The media type of trickle and restart bodies.
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Where the client's ICE candidates go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Candidates {
    /// In the offer (browsers without trickle, GStreamer).
    #[default]
    InOffer,
    /// Left out of the offer and sent in one `PATCH` after the 201.
    Trickle,
    /// Left out of the offer and never sent (OBS): the server learns the
    /// address from the first STUN (peer-reflexive).
    Omitted,
}

/// The `a=setup` of the offer: who may be the DTLS client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Setup {
    /// `actpass` (browsers, GStreamer): the answerer chooses.
    #[default]
    ActPass,
    /// `active`: this client is the DTLS client.
    Active,
    /// `passive` (FFmpeg): the server must be the DTLS client.
    Passive,
}

/// How the client signals, and which real clients' quirks it imitates.
#[derive(Debug, Clone, Default)]
pub struct Signaling {
    /// Sent as `Authorization: Bearer …` on every request.
    pub token: Option<String>,
    pub candidates: Candidates,
    /// The offer's `a=setup` (FFmpeg offers `passive`).
    pub setup: Setup,
    /// Send connectivity checks without PRIORITY and ICE-CONTROLLING,
    /// re-signed with the server's password (FFmpeg).
    pub stun_without_priority: bool,
    /// Once connected, send connectivity checks without USE-CANDIDATE,
    /// re-signed with the server's password: the client nominated once
    /// (regular nomination, as Firefox does).
    pub nominate_once: bool,
    /// Send the ETag in an `ETag` request header instead of `If-Match`
    /// (`@eyevinn/whip-web-client`).
    pub etag_request_header: bool,
    /// The roots an `https://` server's certificate must chain to
    /// (default: Mozilla's WebPKI roots); a self-signed server's own.
    pub roots: Option<ureq::tls::RootCerts>,
}

/// The TLS settings of the signaling agent: rustls on aws-lc-rs (as the
/// server and str0m use), `roots` or the WebPKI roots.
pub(super) fn tls_config(signaling: &Signaling) -> ureq::tls::TlsConfig {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider)
        .root_certs(
            signaling
                .roots
                .clone()
                .unwrap_or(ureq::tls::RootCerts::WebPki),
        )
        .build()
}

/// Where a session is created.
#[derive(Debug, Clone, Copy)]
pub(super) struct Endpoint<'a> {
    pub agent: &'a ureq::Agent,
    /// The server's base URL (`Location` is relative to its origin).
    pub base: &'a str,
    /// `{base}/whip/{room}` or `{base}/whep/{room}`.
    pub url: &'a str,
}

/// What the POST (and, after a 406, the PATCH) settled.
#[derive(Debug)]
pub(super) struct Negotiated {
    pub session_url: String,
    pub etag: Option<String>,
    /// The server's SDP (its answer, or its counter-offer).
    pub remote_sdp: String,
}

/// One HTTP exchange.
pub(super) struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub body: String,
}

/// The offer as a quirky client would send it.
pub(super) fn shape_offer(offer: &str, signaling: &Signaling) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.split("\r\n").filter(|l| !l.is_empty()) {
        let candidate = line.starts_with("a=candidate:") || line == "a=end-of-candidates";
        if candidate && signaling.candidates != Candidates::InOffer {
            continue;
        }
        if line.starts_with("a=setup:") {
            match signaling.setup {
                Setup::ActPass => {}
                Setup::Active => {
                    out.push_str("a=setup:active\r\n");
                    continue;
                }
                Setup::Passive => {
                    out.push_str("a=setup:passive\r\n");
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// POSTs `offer` (shaped like the imitated client's) to `url` and settles the session: a 201's answer, or (a
/// viewer) a 406 counter-offer answered by PATCH. Trickles the client's
/// candidates after a 201 when asked to.
pub(super) fn negotiate(
    endpoint: Endpoint<'_>,
    role: ClientRole,
    signaling: &Signaling,
    rtc: &mut Rtc,
    pending: SdpPendingOffer,
    offer: &str,
) -> Result<Negotiated, ClientError> {
    let Endpoint { agent, base, url } = endpoint;
    let shaped = shape_offer(offer, signaling);
    let reply = request(
        agent,
        "POST",
        url,
        signaling,
        &[],
        Some(("application/sdp", &shaped)),
    )?;
    let location = reply.location.clone();
    match (reply.status, location) {
        (201, Some(location)) => {
            let answer = SdpAnswer::from_sdp_string(&reply.body)
                .map_err(|e| ClientError::Sdp(e.to_string()))?;
            rtc.sdp_api().accept_answer(pending, answer)?;
            let negotiated = Negotiated {
                session_url: super::resolve(base, &location),
                etag: reply.etag,
                remote_sdp: reply.body,
            };
            if signaling.candidates == Candidates::Trickle {
                let frag = fragment(offer, &rtc.direct_api().local_ice_credentials());
                let reply = patch(agent, &negotiated, signaling, SDPFRAG, &frag)?;
                expect(&negotiated.session_url, &reply, 204)?;
            }
            Ok(negotiated)
        }
        (201, None) => Err(ClientError::Sdp("201 without a Location header".into())),
        (406, Some(location)) if role == ClientRole::Watch => {
            // A WHEP counter-offer: the server's own offer. Ours is dropped.
            drop(pending);
            let counter = SdpOffer::from_sdp_string(&reply.body)
                .map_err(|e| ClientError::Sdp(format!("406 counter-offer: {e}")))?;
            let answer = rtc.sdp_api().accept_offer(counter)?;
            let negotiated = Negotiated {
                session_url: super::resolve(base, &location),
                etag: reply.etag,
                remote_sdp: reply.body,
            };
            let reply = patch(
                agent,
                &negotiated,
                signaling,
                "application/sdp",
                &answer.to_sdp_string(),
            )?;
            expect(&negotiated.session_url, &reply, 204)?;
            Ok(negotiated)
        }
        (status, _) => Err(ClientError::Status {
            url: url.to_owned(),
            status,
            body: reply.body,
        }),
    }
}

fn expect(url: &str, reply: &Reply, status: u16) -> Result<(), ClientError> {
    if reply.status == status {
        return Ok(());
    }
    Err(ClientError::Status {
        url: url.to_owned(),
        status: reply.status,
        body: reply.body.clone(),
    })
}

/// A PATCH on the session with the ETag in `If-Match` (or in an `ETag`
/// header, or `*` when there is none).
fn patch(
    agent: &ureq::Agent,
    session: &Negotiated,
    signaling: &Signaling,
    content_type: &str,
    body: &str,
) -> Result<Reply, ClientError> {
    let etag = session.etag.as_deref().unwrap_or("*");
    let name = if signaling.etag_request_header {
        "ETag"
    } else {
        "If-Match"
    };
    request(
        agent,
        "PATCH",
        &session.session_url,
        signaling,
        &[(name, etag)],
        Some((content_type, body)),
    )
}

pub(super) fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    signaling: &Signaling,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Result<Reply, ClientError> {
    let transport = |e: ureq::Error| ClientError::Transport {
        url: url.to_owned(),
        reason: e.to_string(),
    };
    let mut all: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    if let Some(token) = &signaling.token {
        all.push(("Authorization", format!("Bearer {token}")));
    }
    let result = match (method, body) {
        ("POST" | "PATCH", Some((content_type, body))) => {
            let mut builder = if method == "POST" {
                agent.post(url)
            } else {
                agent.patch(url)
            };
            builder = builder.header("Content-Type", content_type);
            for (k, v) in &all {
                builder = builder.header(*k, v);
            }
            builder.send(body)
        }
        _ => {
            let mut builder = agent.delete(url);
            for (k, v) in &all {
                builder = builder.header(*k, v);
            }
            builder.call()
        }
    };
    let mut response = result.map_err(transport)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, location) = (header("etag"), header("location"));
    Ok(Reply {
        status: response.status().as_u16(),
        etag,
        location,
        body: response.body_mut().read_to_string().map_err(transport)?,
    })
}

/// A trickle-ice-sdpfrag with the client's credentials, the first media
/// section of `sdp` (its `m=` line and mid), and the client's candidates.
fn fragment(sdp: &str, creds: &str0m::IceCreds) -> String {
    let mut out = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        creds.ufrag, creds.pass
    );
    if let Some(m) = sdp.split("\r\n").find(|l| l.starts_with("m=")) {
        let _ = write!(out, "{m}\r\n");
    }
    if let Some(mid) = sdp.split("\r\n").find(|l| l.starts_with("a=mid:")) {
        let _ = write!(out, "{mid}\r\n");
    }
    for line in sdp.split("\r\n").filter(|l| l.starts_with("a=candidate:")) {
        let _ = write!(out, "{line}\r\n");
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

/// `sdp` with other ICE credentials, and `candidates` (attribute lines)
/// in place of its own, in the first media section (the bundle).
fn with_ice(sdp: &str, ufrag: &str, pwd: &str, candidates: &[String]) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut sections = 0;
    let mut inserted = false;
    let insert = |out: &mut String| {
        for c in candidates {
            let _ = write!(out, "{c}\r\n");
        }
        out.push_str("a=end-of-candidates\r\n");
    };
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            sections += 1;
            if sections == 2 && !inserted {
                insert(&mut out);
                inserted = true;
            }
        }
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            let _ = write!(out, "a=ice-ufrag:{ufrag}\r\n");
        } else if line.starts_with("a=ice-pwd:") {
            let _ = write!(out, "a=ice-pwd:{pwd}\r\n");
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    if !inserted {
        insert(&mut out);
    }
    out
}

/// The ICE password in an SDP.
pub(super) fn ice_pwd(sdp: &str) -> String {
    sdp.split("\r\n")
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// A binding request rewritten as a quirky client sends it, signed with
/// `password` (the server's): without PRIORITY and an ICE role (FFmpeg)
/// when `ffmpeg`, without USE-CANDIDATE when `no_nomination` (a client
/// that nominated once). `None` for anything else, or nothing to change.
pub(super) fn quirky_check(
    datagram: &[u8],
    password: &str,
    ffmpeg: bool,
    no_nomination: bool,
) -> Option<Vec<u8>> {
    if !ffmpeg && !no_nomination {
        return None;
    }
    let view = StunView::parse(datagram).ok()?;
    if !view.is_binding_request() {
        return None;
    }
    let dropped = |t: u16| {
        (ffmpeg && [ATTR_PRIORITY, ATTR_ICE_CONTROLLING, ATTR_ICE_CONTROLLED].contains(&t))
            || (no_nomination && t == ATTR_USE_CANDIDATE)
    };
    Some(rebuild_binding_request(
        &view,
        |t| !dropped(t),
        &[],
        password.as_bytes(),
    ))
}

impl Client {
    /// The session's current ETag, as the server last gave it.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Binding requests rewritten (FFmpeg's missing PRIORITY, or a
    /// nomination left out after connecting).
    pub fn checks_rewritten(&self) -> u64 {
        self.stun_rewritten
    }

    /// Restarts ICE through the server (WHIP §4.3.3): new credentials,
    /// `PATCH` with the session's ETag, and the server's 200 sdpfrag applied
    /// as the new remote ICE credentials and candidates. On any error the
    /// client keeps its current ICE session, as the server does.
    pub fn restart_ice(&mut self) -> Result<(), ClientError> {
        self.restart_ice_with(None)
    }

    /// [`Client::restart_ice`] with `If-Match` forced to `if_match` (tests of
    /// refused restarts); the reply's status is in the error.
    pub fn restart_ice_with(&mut self, if_match: Option<&str>) -> Result<(), ClientError> {
        let mut change = self.rtc.sdp_api();
        change.ice_restart(true);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Sdp("no restart offer".into()))?;
        let offer = offer.to_sdp_string();
        let creds = {
            let ufrag = sdp_value(&offer, "a=ice-ufrag:");
            let pass = sdp_value(&offer, "a=ice-pwd:");
            str0m::IceCreds { ufrag, pass }
        };
        let frag = fragment(&offer, &creds);
        let session = Negotiated {
            session_url: self.session_url.clone(),
            etag: if_match.map(str::to_owned).or_else(|| self.etag.clone()),
            remote_sdp: String::new(),
        };
        let reply = patch(
            &self.agent,
            &session,
            &self.options.signaling,
            SDPFRAG,
            &frag,
        )?;
        expect(&self.session_url, &reply, 200)?;
        let parsed = SdpFrag::parse(&reply.body)
            .map_err(|e| ClientError::Sdp(format!("restart answer: {e}")))?;
        let credentials = parsed
            .credentials()
            .ok_or_else(|| ClientError::Sdp("restart answer without ICE credentials".into()))?;
        let candidates: Vec<String> = parsed
            .candidates()
            .map(|c| format!("a={}", c.value))
            .collect();
        let answer = with_ice(
            &self.remote_sdp,
            credentials.ufrag,
            credentials.pwd,
            &candidates,
        );
        let parsed_answer =
            SdpAnswer::from_sdp_string(&answer).map_err(|e| ClientError::Sdp(e.to_string()))?;
        self.rtc.sdp_api().accept_answer(pending, parsed_answer)?;
        self.remote_pwd = credentials.pwd.to_owned();
        self.remote_sdp = answer;
        self.etag = reply.etag;
        Ok(())
    }

    /// `PATCH`es a fragment of the client's choosing with the session's
    /// ETag; returns the status.
    pub fn patch_fragment(&self, fragment: &str) -> Result<u16, ClientError> {
        let session = Negotiated {
            session_url: self.session_url.clone(),
            etag: self.etag.clone(),
            remote_sdp: String::new(),
        };
        Ok(patch(
            &self.agent,
            &session,
            &self.options.signaling,
            SDPFRAG,
            fragment,
        )?
        .status)
    }

    /// `DELETE` on the session (with the token); the status.
    pub(super) fn delete_session(&self) -> Result<u16, ClientError> {
        let reply = request(
            &self.agent,
            "DELETE",
            &self.session_url,
            &self.options.signaling,
            &[],
            None,
        )?;
        Ok(reply.status)
    }
}

fn sdp_value(sdp: &str, prefix: &str) -> String {
    sdp.split("\r\n")
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=setup:actpass\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=setup:actpass\r\n";

    #[test]
    fn offers_are_shaped_like_the_imitated_client() {
        let obs = shape_offer(
            OFFER,
            &Signaling {
                candidates: Candidates::Omitted,
                ..Default::default()
            },
        );
        assert!(!obs.contains("a=candidate") && !obs.contains("end-of-candidates"));
        let ffmpeg = shape_offer(
            OFFER,
            &Signaling {
                setup: Setup::Passive,
                ..Default::default()
            },
        );
        assert_eq!(ffmpeg.matches("a=setup:passive").count(), 2);
        assert!(!ffmpeg.contains("actpass"));
        assert!(ffmpeg.contains("a=candidate"));
        assert_eq!(shape_offer(OFFER, &Signaling::default()), OFFER);
    }

    #[test]
    fn fragments_and_new_credentials() {
        let creds = str0m::IceCreds {
            ufrag: "wxyz".into(),
            pass: "0123456789012345678901".into(),
        };
        let frag = fragment(OFFER, &creds);
        let parsed = SdpFrag::parse(&frag).unwrap();
        assert_eq!(parsed.credentials().unwrap().ufrag, "wxyz");
        assert_eq!(parsed.candidate_count(), 1);
        assert_eq!(parsed.media_sections(), 1);

        let swapped = with_ice(
            OFFER,
            "newU",
            "newpassword0123456789012",
            &["a=candidate:9 1 udp 1 127.0.0.2 6000 typ host".into()],
        );
        assert!(swapped.contains("a=ice-ufrag:newU\r\n"));
        assert!(swapped.contains("a=ice-pwd:newpassword0123456789012\r\n"));
        assert!(!swapped.contains("127.0.0.1 5000"));
        let at = swapped.find("127.0.0.2 6000").unwrap();
        assert!(
            at < swapped.find("m=video").unwrap(),
            "in the first section"
        );
        assert_eq!(ice_pwd(OFFER), "abcdefghijklmnopqrstuvwx");
    }
}
