//! Who the client is. Every request gets a [`ClientAddr`]: the TCP peer's
//! address, unless that peer is a reverse proxy named by `--trust-proxy`;
//! then the address the proxy reports (`Forwarded`, RFC 7239, else
//! `X-Forwarded-For`). The per-IP session cap, the rate limit and the
//! session logs use it. From any other peer those headers are ignored, so
//! a client cannot pick its own address.
//!
//! Every URL the server hands out is relative (`Location: /session/…`,
//! the participant's `/v1/participants/…`), and a client resolves it
//! against the URL it asked, which is the proxy's: `X-Forwarded-Proto` and
//! `X-Forwarded-Host` need no use here.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::AppState;

/// The client's address as far as the server can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: adds [`ClientAddr`] to every request that has a peer.
pub async fn client_addr(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = resolve(peer, request.headers(), &state.trusted_proxies);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

/// The client behind `peer`: `peer` itself unless it is trusted; else the
/// forwarding chain is walked from the nearest hop back, past every
/// trusted proxy, and the first other address is the client. A chain of
/// only trusted proxies gives its first address; a hop that is not an
/// address (`unknown`, an obfuscated name) gives `peer`. An IPv4-mapped
/// IPv6 address is given as IPv4.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // A dual-stack listener's IPv4 peers: counted and logged as IPv4.
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = *ip,
            Some(ip) => return *ip,
            None => return peer,
        }
    }
    client
}

/// An IPv4-mapped IPv6 address as IPv4 (a dual-stack listener's peers).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarding chain, client first: `Forwarded`'s `for=` values if the
/// header is there, else `X-Forwarded-For`'s. `None` for a hop that is not
/// an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = (headers.get_all("forwarded").iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v))
            })
            .collect();
    }
    (headers.get_all("x-forwarded-for").iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let bracketed = text.strip_prefix('[')?.split(']').next()?;
    bracketed.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|n| crate::config::parse_net(n).unwrap())
            .collect()
    }

    const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(resolve(PROXY, &h, &[]), PROXY);
        assert_eq!(resolve(PROXY, &h, &nets(&["10.0.0.0/8"])), PROXY);
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            resolve(PROXY, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A spoofed first hop is skipped: the nearest untrusted hop wins.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(
            resolve(PROXY, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Only proxies: the first of them.
        let h = headers(&[("x-forwarded-for", "10.2.2.2, 10.1.1.1")]);
        assert_eq!(
            resolve(PROXY, &h, &trusted),
            "10.2.2.2".parse::<IpAddr>().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(resolve(PROXY, &HeaderMap::new(), &trusted), PROXY);
    }

    #[test]
    fn forwarded_wins_and_its_forms_parse() {
        let trusted = nets(&["127.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=127.0.0.5",
            ),
        ]);
        assert_eq!(
            resolve(PROXY, &h, &trusted),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("forwarded", "For=192.0.2.60:8080;by=203.0.113.43")]);
        assert_eq!(
            resolve(PROXY, &h, &trusted),
            "192.0.2.60".parse::<IpAddr>().unwrap()
        );
        // An obfuscated hop: the proxy is all we know.
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(resolve(PROXY, &h, &trusted), PROXY);
    }

    #[test]
    fn a_mapped_ipv6_peer_matches_an_ipv4_network() {
        let peer: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let client = resolve(peer, &h, &nets(&["127.0.0.1"]));
        assert_eq!(client, "203.0.113.9".parse::<IpAddr>().unwrap());
        let untrusted = resolve(peer, &h, &[]);
        assert_eq!(
            untrusted, PROXY,
            "an untrusted mapped peer is given as IPv4"
        );
    }
}
