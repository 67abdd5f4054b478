//! IPv6: the media port and the HTTP endpoint on `[::1]`, and a
//! dual-stack media port on `[::]` advertising one candidate per family,
//! where an IPv4 publisher reaches an IPv6 viewer through the one port.

mod common;

use std::net::IpAddr;

use common::{ServerProc, media_flows};
use uringcast_load::client::ClientOptions;
use uringcast_load::client::payload::Kind;

fn bound(ip: &str) -> ClientOptions {
    ClientOptions {
        bind: ip.parse::<IpAddr>().expect("ip"),
        ..ClientOptions::default()
    }
}

#[test]
fn publish_and_watch_over_ipv6_loopback() {
    let server = ServerProc::start(&["--http-addr", "[::1]:0", "--udp-addr", "[::1]:0"]);
    assert!(server.base.starts_with("http://[::1]:"), "{}", server.base);
    assert!(server.udp.is_ipv6());
    let (publisher, viewer) = media_flows(&server, "six", bound("::1"), bound("::1"));
    assert!(publisher.sent(Kind::Video) > 0);
    assert!(viewer.received(Kind::Video).unique() > 0);
}

#[test]
fn a_dual_stack_port_serves_both_families() {
    let server = ServerProc::start(&[
        "--udp-addr",
        "[::]:0",
        "--public-ip",
        "127.0.0.1",
        "--public-ip",
        "::1",
    ]);
    // The answer carries a host candidate of each family on the one port.
    let (status, _, answer) = common::http(
        &server.base,
        "POST",
        "/whip/answer",
        Some("application/sdp"),
        &common::publish_offer(),
    );
    assert_eq!(status, 201, "{answer}");
    let port = server.udp.port();
    for ip in ["127.0.0.1", "::1"] {
        let candidate = format!(" {ip} {port} typ host");
        assert!(answer.contains(&candidate), "{candidate} in {answer}");
    }
    // An IPv4 publisher, an IPv6 viewer.
    media_flows(&server, "mixed", bound("127.0.0.1"), bound("::1"));
}
