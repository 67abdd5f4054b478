//! STUN/TURN servers announced to clients (WHIP §4.6): one
//! `Link: <url>; rel="ice-server"` per `--ice-server`, on the 201 and on an
//! `OPTIONS` that is not a CORS preflight. `turn:`/`turns:` links carry
//! credentials when configured: static ones (`--ice-username`,
//! `--ice-credential`), or TURN REST ephemeral ones from `--turn-secret`,
//! the scheme coturn checks with `use-auth-secret`: username
//! `<expiry unix time>:<room>`, credential base64(HMAC-SHA1(secret,
//! username)), valid for `--turn-ttl`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use base64::Engine;

use crate::sfu::hmac_sha1;

#[derive(Debug, Clone)]
enum Credentials {
    None,
    Static {
        username: String,
        credential: String,
    },
    Rest {
        secret: Vec<u8>,
        ttl: Duration,
    },
}

/// The configured ICE servers.
#[derive(Clone)]
pub struct IceServers {
    urls: Vec<String>,
    credentials: Credentials,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("IceServers")
            .field("urls", &self.urls)
            .finish()
    }
}

impl IceServers {
    /// Checks the URLs (`stun:`, `stuns:`, `turn:`, `turns:`; nothing that
    /// could break out of a Link header) and the credential options (static
    /// or shared secret, not both).
    pub fn from_config(
        urls: &[String],
        username: Option<&str>,
        credential: Option<&str>,
        turn_secret: Option<&str>,
        turn_ttl: Duration,
    ) -> Result<Self, String> {
        for url in urls {
            let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"].iter().any(|s| {
                url.len() > s.len()
                    && url
                        .get(..s.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
            if !scheme_ok {
                return Err(format!(
                    "--ice-server {url:?} must be a stun:, stuns:, turn: or turns: URL"
                ));
            }
            if url
                .bytes()
                .any(|b| b <= b' ' || b >= 0x7f || b"<>\",;\\".contains(&b))
            {
                return Err(format!("--ice-server {url:?} has characters a URL may not"));
            }
        }
        let credentials = match (username, credential, turn_secret) {
            (None, None, None) => Credentials::None,
            (Some(u), Some(c), None) => {
                for value in [u, c] {
                    if value.bytes().any(|b| b < b' ' || b == 0x7f) {
                        return Err(
                            "--ice-username/--ice-credential have control characters".into()
                        );
                    }
                }
                Credentials::Static {
                    username: u.to_owned(),
                    credential: c.to_owned(),
                }
            }
            (None, None, Some(secret)) => {
                if secret.is_empty() {
                    return Err("--turn-secret is empty".into());
                }
                if turn_ttl.is_zero() {
                    return Err("--turn-ttl must be more than 0".into());
                }
                Credentials::Rest {
                    secret: secret.as_bytes().to_vec(),
                    ttl: turn_ttl,
                }
            }
            (_, _, Some(_)) => {
                return Err("use either --turn-secret or --ice-username/--ice-credential".into());
            }
            _ => return Err("--ice-username and --ice-credential go together".into()),
        };
        Ok(Self {
            urls: urls.to_vec(),
            credentials,
        })
    }

    /// No servers configured.
    pub fn none() -> Self {
        Self {
            urls: Vec::new(),
            credentials: Credentials::None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// One `Link` value per server, for a session in `room`, at `now`.
    pub fn links(&self, room: &str, now: SystemTime) -> Vec<HeaderValue> {
        let credentials = match &self.credentials {
            Credentials::None => None,
            Credentials::Static {
                username,
                credential,
            } => Some((username.clone(), credential.clone())),
            Credentials::Rest { secret, ttl } => {
                let expiry = now.duration_since(UNIX_EPOCH).unwrap_or_default() + *ttl;
                let username = format!("{}:{room}", expiry.as_secs());
                let credential = turn_rest_credential(secret, &username);
                Some((username, credential))
            }
        };
        self.urls
            .iter()
            .filter_map(|url| {
                let mut link = format!("<{url}>; rel=\"ice-server\"");
                let is_turn = url.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("turn"));
                if let (true, Some((username, credential))) = (is_turn, &credentials) {
                    link.push_str(&format!(
                        "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                        quote(username),
                        quote(credential)
                    ));
                }
                HeaderValue::from_str(&link).ok()
            })
            .collect()
    }
}

/// The TURN REST credential for `username`: base64(HMAC-SHA1(secret, username)).
pub fn turn_rest_credential(secret: &[u8], username: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(secret, &[username.as_bytes()]))
}

/// Escapes a value for a quoted-string (RFC 9110 §5.6.4).
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_known_vectors() {
        // Reference values from `openssl dgst -sha1 -hmac <secret> -binary | base64`.
        assert_eq!(
            turn_rest_credential(b"north-pole-secret", "1700000000:room1"),
            "VLBZ4Y/D538zKc0cdZJ7+WkByN4="
        );
        assert_eq!(
            turn_rest_credential(b"bar", "foo"),
            "hdFVxV7ShqMAvRzxJN4I2H6RTzo="
        );
    }

    #[test]
    fn rest_credentials_expire_after_the_ttl() {
        let servers = IceServers::from_config(
            &[
                "stun:stun.example.net".into(),
                "turn:turn.example.net?transport=udp".into(),
            ],
            None,
            None,
            Some("north-pole-secret"),
            Duration::from_secs(3600),
        )
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let links: Vec<String> = servers
            .links("room1", now)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(links[0], "<stun:stun.example.net>; rel=\"ice-server\"");
        assert_eq!(
            links[1],
            "<turn:turn.example.net?transport=udp>; rel=\"ice-server\"; \
             username=\"1700000000:room1\"; credential=\"VLBZ4Y/D538zKc0cdZJ7+WkByN4=\"; \
             credential-type=\"password\""
        );
    }

    #[test]
    fn static_credentials_are_quoted() {
        let servers = IceServers::from_config(
            &["turns:t.example:443?transport=tcp".into()],
            Some("us\"er"),
            Some("pa\\ss"),
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let link = servers.links("r", SystemTime::now()).remove(0);
        assert_eq!(
            link.to_str().unwrap(),
            "<turns:t.example:443?transport=tcp>; rel=\"ice-server\"; username=\"us\\\"er\"; \
             credential=\"pa\\\\ss\"; credential-type=\"password\""
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let ttl = Duration::from_secs(60);
        let url = |u: &str| vec![u.to_owned()];
        assert!(IceServers::from_config(&url("http://x"), None, None, None, ttl).is_err());
        assert!(IceServers::from_config(&url("turn:"), None, None, None, ttl).is_err());
        assert!(IceServers::from_config(&url("turn:a>b"), None, None, None, ttl).is_err());
        assert!(IceServers::from_config(&url("turn:a b"), None, None, None, ttl).is_err());
        assert!(IceServers::from_config(&url("turn:a"), Some("u"), None, None, ttl).is_err());
        assert!(
            IceServers::from_config(&url("turn:a"), Some("u"), Some("c"), Some("s"), ttl).is_err()
        );
        assert!(IceServers::from_config(&url("turn:a"), None, None, Some(""), ttl).is_err());
        assert!(
            IceServers::from_config(&url("turn:a"), None, None, Some("s"), Duration::ZERO).is_err()
        );
        assert!(IceServers::from_config(&url("STUN:a"), None, None, None, ttl).is_ok());
        assert!(IceServers::none().is_empty());
    }
}
