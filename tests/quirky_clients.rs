//! The clients that bend the rules (WHIP-WHEP.md, "Real clients and their
//! quirks"), each imitated by the str0m client and each getting media
//! through the real binary: OBS (no candidates, never trickles), FFmpeg
//! (`a=setup:passive`; STUN without PRIORITY or ICE-CONTROLLING; answers ≤ 8
//! KiB starting with `v=`), `@eyevinn/whip-web-client` (an `ETag` request
//! header; `Bearer undefined`). Also the client side of a WHEP 406
//! counter-offer, against a stand-in server.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Instant;

use common::{ServerProc, header, http, media_flows};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use uringcast_load::client::{Candidates, Client, ClientOptions, ClientRole, Setup, Signaling};

/// Client options that differ from the default only in `signaling`.
fn quirks(signaling: Signaling) -> ClientOptions {
    ClientOptions {
        signaling,
        ..Default::default()
    }
}

#[test]
fn obs_offers_no_candidates_and_never_trickles() {
    let server = ServerProc::start(&["--shards", "2"]);
    let obs = Signaling {
        candidates: Candidates::Omitted,
        ..Default::default()
    };
    media_flows(&server, "obs", quirks(obs.clone()), quirks(obs));
    let signaling = &server.stats()["signaling"];
    assert_eq!(
        signaling["trickles"], 0,
        "nothing was trickled: {signaling}"
    );
}

#[test]
fn ffmpeg_offers_setup_passive_and_the_server_becomes_the_dtls_client() {
    let server = ServerProc::start(&["--shards", "1"]);
    let passive = Signaling {
        setup: Setup::Passive,
        ..Default::default()
    };
    // What the answer says: we take the active (DTLS client) role.
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let offer = change
        .apply()
        .unwrap()
        .0
        .to_sdp_string()
        .replace("a=setup:actpass", "a=setup:passive");
    let (s, _, answer) = http(
        &server.base,
        "POST",
        "/whip/passive-sdp",
        Some("application/sdp"),
        &offer,
    );
    assert_eq!(s, 201, "{answer}");
    assert!(
        answer.contains("a=setup:active") && !answer.contains("a=setup:passive"),
        "{answer}"
    );

    media_flows(&server, "passive", quirks(passive.clone()), quirks(passive));
}

#[test]
fn ffmpeg_stun_without_priority_or_ice_controlling_connects() {
    let server = ServerProc::start(&["--shards", "2"]);
    let ffmpeg = Signaling {
        stun_without_priority: true,
        setup: Setup::Passive,
        candidates: Candidates::Omitted,
        ..Default::default()
    };
    let (publisher, viewer) =
        media_flows(&server, "ffmpeg", quirks(ffmpeg.clone()), quirks(ffmpeg));
    assert!(publisher.checks_rewritten() > 0);
    assert!(viewer.checks_rewritten() > 0);
}

#[test]
fn an_etag_request_header_stands_in_for_if_match() {
    let server = ServerProc::start(&["--shards", "1"]);
    let eyevinn = Signaling {
        candidates: Candidates::Trickle,
        etag_request_header: true,
        token: Some("undefined".into()),
        ..Default::default()
    };
    media_flows(&server, "eyevinn", quirks(eyevinn.clone()), quirks(eyevinn));
    let signaling = &server.stats()["signaling"];
    assert_eq!(signaling["trickles"], 2, "both PATCHes took: {signaling}");
}

#[test]
fn bearer_undefined_without_auth_gets_media() {
    let server = ServerProc::start(&["--shards", "1"]);
    let undefined = Signaling {
        token: Some("undefined".into()),
        ..Default::default()
    };
    let (publisher, _) = media_flows(
        &server,
        "undef",
        quirks(undefined.clone()),
        quirks(undefined),
    );
    assert_eq!(publisher.delete().expect("DELETE"), 200);
}

/// A Chrome-style offer: audio (Opus, RED, G722, PCMU/PCMA, DTMF) and video
/// (VP8, VP9 profiles, H264 profiles, AV1, with RTX), header extensions,
/// SSRC groups, candidates.
fn browser_offer() -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n",
    );
    sdp.push_str(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
         a=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 network-id 1\r\n\
         a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 network-id 1\r\n\
         a=ice-ufrag:Ch1x\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
         a=setup:actpass\r\na=mid:0\r\n\
         a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
         a=sendonly\r\na=msid:stream audio-track\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
         a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
         a=ssrc:1111111111 cname:abcdefghijklmnop\r\na=ssrc:1111111111 msid:stream audio-track\r\n",
    );
    sdp.push_str(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 106 107 108 109 35 36 45 46\r\n\
         c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:Ch1x\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
         a=setup:actpass\r\na=mid:1\r\n\
         a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:13 urn:3gpp:video-orientation\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
         a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n\
         a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n\
         a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
         a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
         a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
         a=sendonly\r\na=msid:stream video-track\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
    );
    let codecs: [(u8, &str, Option<&str>); 9] = [
        (96, "VP8/90000", None),
        (98, "VP9/90000", Some("profile-id=0")),
        (100, "VP9/90000", Some("profile-id=2")),
        (
            102,
            "H264/90000",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
        ),
        (
            104,
            "H264/90000",
            Some("level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"),
        ),
        (
            106,
            "H264/90000",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
        ),
        (
            108,
            "H264/90000",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
        ),
        (35, "AV1/90000", None),
        (
            45,
            "H264/90000",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"),
        ),
    ];
    for (pt, name, fmtp) in codecs {
        sdp.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
        for fb in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
            sdp.push_str(&format!("a=rtcp-fb:{pt} {fb}\r\n"));
        }
        if let Some(fmtp) = fmtp {
            sdp.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
        }
        let rtx = pt + 1;
        sdp.push_str(&format!(
            "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n"
        ));
    }
    sdp.push_str(
        "a=ssrc-group:FID 2222222222 3333333333\r\n\
         a=ssrc:2222222222 cname:abcdefghijklmnop\r\na=ssrc:2222222222 msid:stream video-track\r\n\
         a=ssrc:3333333333 cname:abcdefghijklmnop\r\na=ssrc:3333333333 msid:stream video-track\r\n",
    );
    sdp
}

#[test]
fn answers_to_a_browser_offer_stay_under_8_kib_and_start_with_v() {
    let server = ServerProc::start(&[
        "--shards",
        "1",
        "--public-ip",
        "127.0.0.2",
        "--public-ip",
        "127.0.0.3",
    ]);
    let offer = browser_offer();
    assert!(
        offer.len() > 4000,
        "a realistic offer ({} bytes)",
        offer.len()
    );
    let (s, h, answer) = http(
        &server.base,
        "POST",
        "/whip/big",
        Some("application/sdp"),
        &offer,
    );
    assert_eq!(s, 201, "{answer}");
    assert_eq!(header(&h, "content-type"), Some("application/sdp"));
    assert!(answer.starts_with("v="), "{answer:.40}");
    assert!(answer.len() <= 8192, "{} bytes", answer.len());
    assert_eq!(answer.matches("m=").count(), 2, "the offer's sections");
    // A viewer with the same browser's offer (recvonly).
    let viewer = browser_offer().replace("a=sendonly", "a=recvonly");
    let viewer: String = viewer
        .split("\r\n")
        .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let (s, _, answer) = http(
        &server.base,
        "POST",
        "/whep/big",
        Some("application/sdp"),
        &viewer,
    );
    assert_eq!(s, 201, "{answer}");
    assert!(
        answer.starts_with("v=") && answer.len() <= 8192,
        "{} bytes",
        answer.len()
    );
}

/// Reads one HTTP/1.1 request: (request line, headers, body).
fn read_request(
    reader: &mut BufReader<std::net::TcpStream>,
) -> (String, Vec<(String, String)>, String) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (
        line.trim_end().to_owned(),
        headers,
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn a_whep_client_answers_a_406_counter_offer_with_a_patch() {
    // A stand-in WHEP server that always counter-offers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut rtc = Rtc::builder().set_ice_lite(true).build(Instant::now());
        rtc.add_local_candidate(
            Candidate::host("127.0.0.1:45000".parse().unwrap(), "udp").unwrap(),
        );
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let offer = offer.to_sdp_string();

        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let (line, headers, _) = read_request(&mut reader);
        assert!(line.starts_with("POST /whep/counter "), "{line}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/sdp")
        );
        write!(
            writer,
            "HTTP/1.1 406 Not Acceptable\r\nContent-Type: application/sdp\r\nLocation: /session/abc\r\n\
             ETag: \"e1\"\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{offer}",
            offer.len()
        )
        .unwrap();
        writer.flush().unwrap();
        drop((reader, writer));
        // `Connection: close`: the PATCH comes on a new connection.
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let (line, headers, body) = read_request(&mut reader);
        assert!(line.starts_with("PATCH /session/abc "), "{line}");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("content-type").as_deref(), Some("application/sdp"));
        assert_eq!(get("if-match").as_deref(), Some("\"e1\""));
        let answer = SdpAnswer::from_sdp_string(&body).expect("the PATCH body is an SDP answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("our offer's answer");
        assert!(body.contains("a=recvonly"), "{body}");
        write!(
            writer,
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        writer.flush().unwrap();
    });
    let client = Client::connect(
        &base,
        "counter",
        ClientRole::Watch,
        ClientOptions::default(),
    )
    .expect("the counter-offer was answered");
    assert_eq!(client.session_url(), format!("{base}/session/abc"));
    assert_eq!(client.etag(), Some("\"e1\""));
    server
        .join()
        .expect("the stand-in server saw what it expected");
    // A publisher never takes a 406 as a counter-offer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let refuse = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let _ = read_request(&mut reader);
        write!(
            writer,
            "HTTP/1.1 406 Not Acceptable\r\nLocation: /session/x\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
    });
    let refused = Client::connect(
        &base,
        "counter",
        ClientRole::Publish,
        ClientOptions::default(),
    );
    assert!(matches!(
        refused,
        Err(uringcast_load::client::ClientError::Status { status: 406, .. })
    ));
    refuse.join().unwrap();
}
