//! Bearer tokens (RFC 6750, WHIP §4.7): HS256 JWTs signed with
//! `--auth-key`, and a static `--bearer-token`. With neither configured every
//! request is allowed and any `Authorization` header is ignored (clients
//! send `Bearer undefined`).
//!
//! A JWT is checked by `jsonwebtoken`: the algorithm is pinned to HS256
//! (`alg: none` and every other algorithm are refused), the signature is
//! compared in constant time, `exp` is required, `exp` and `nbf` are checked
//! with 5 s of leeway. Its claims name what it grants:
//! `{"room": "<name>" | "*", "role": "publish" | "watch" | "*"}`. The static
//! token grants everything and is compared in constant time.
//!
//! The token comes from `Authorization: Bearer …`, else from `?token=…`.
//! Missing or invalid: 401 with `WWW-Authenticate: Bearer`. Valid but for
//! another room or role: 403. DELETE and PATCH on a session need a token that
//! could have created it (same room, same role). CORS preflights never need
//! one, and GET/HEAD on the endpoints reveal nothing and need none.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::sfu::{Role, Source};

/// Longest token looked at; anything longer is invalid.
const MAX_TOKEN_LEN: usize = 8192;
/// Shortest HS256 key accepted (RFC 7518 §3.2: at least the hash size).
const MIN_KEY_LEN: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 5;

/// What a request wants to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// WHIP: publish (and end or patch a publishing session).
    Publish,
    /// WHEP: watch (and end or patch a viewing session).
    Watch,
}

impl From<Role> for Access {
    fn from(role: Role) -> Self {
        match role {
            Role::Publisher => Self::Publish,
            Role::Viewer => Self::Watch,
        }
    }
}

/// What a valid token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `None`: every room.
    room: Option<String>,
    /// `None`: both roles.
    access: Option<Access>,
    /// The `sub` claim: a conference participant's id.
    pub identity: Option<String>,
    /// The `name` claim: a participant's display name.
    pub name: Option<String>,
    /// What a conference participant may do: `publish` (a list of sources,
    /// default: all of them if the role publishes), `subscribe` (default:
    /// if the role watches), `owner` (default: no).
    pub conference: crate::directory::Grants,
    /// The admin API (`"admin": true`, or the static token).
    pub admin: bool,
    /// Starting and stopping the recording of its room (`"record": true`).
    pub record: bool,
}

impl Grant {
    /// Everything (no auth configured, or the static token).
    pub fn all() -> Self {
        Self {
            room: None,
            access: None,
            identity: None,
            name: None,
            conference: crate::directory::Grants::all(),
            admin: true,
            record: true,
        }
    }

    /// Whether this grant covers room `room` at all; 403 if not.
    pub fn permit_room(&self, room: &str) -> Result<(), Problem> {
        if self.room.as_deref().is_none_or(|r| r == room) {
            return Ok(());
        }
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("the token does not allow to join room {room:?}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"uringcast\", error=\"insufficient_scope\""),
        ))
    }

    /// Whether this grant covers `access` in `room`; 403 if not.
    pub fn permit(&self, room: &str, access: Access) -> Result<(), Problem> {
        let room_ok = self.room.as_deref().is_none_or(|r| r == room);
        let access_ok = self.access.is_none_or(|a| a == access);
        if room_ok && access_ok {
            return Ok(());
        }
        let what = match access {
            Access::Publish => "publish",
            Access::Watch => "watch",
        };
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("the token does not allow to {what} in room {room:?}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"uringcast\", error=\"insufficient_scope\""),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    room: String,
    role: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    publish: Option<Vec<String>>,
    #[serde(default)]
    subscribe: Option<bool>,
    #[serde(default)]
    owner: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
    #[serde(default)]
    record: Option<bool>,
}

/// The configured token checks.
pub struct Auth {
    jwt: Option<(DecodingKey, Validation)>,
    bearer: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("jwt", &self.jwt.is_some())
            .field("bearer", &self.bearer.is_some())
            .finish()
    }
}

impl Auth {
    /// From `--auth-key` (base64, standard or URL-safe, padded or not) and
    /// `--bearer-token`; `None` when neither is set.
    pub fn from_config(key: Option<&str>, bearer: Option<&str>) -> Result<Option<Self>, String> {
        let jwt = match key {
            None => None,
            Some(text) => {
                let key = decode_base64(text.trim())
                    .ok_or("--auth-key is not base64 (standard or URL-safe)")?;
                if key.len() < MIN_KEY_LEN {
                    return Err(format!(
                        "--auth-key is {} bytes; HS256 needs at least {MIN_KEY_LEN}",
                        key.len()
                    ));
                }
                let mut validation = Validation::new(Algorithm::HS256);
                validation.validate_nbf = true;
                validation.validate_aud = false;
                validation.leeway = LEEWAY_SECONDS;
                validation.set_required_spec_claims(&["exp"]);
                Some((DecodingKey::from_secret(&key), validation))
            }
        };
        let bearer = match bearer {
            None => None,
            Some(token) if token.is_empty() || token.len() > MAX_TOKEN_LEN => {
                return Err(format!(
                    "--bearer-token must be 1 to {MAX_TOKEN_LEN} characters"
                ));
            }
            Some(token) => Some(token.as_bytes().to_vec()),
        };
        Ok((jwt.is_some() || bearer.is_some()).then_some(Self { jwt, bearer }))
    }

    /// Checks the request's token: what it grants, or 401.
    pub fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Grant, Problem> {
        let Some(token) = token(headers, query) else {
            return Err(unauthorized("a Bearer token is required", false));
        };
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(unauthorized("the token is invalid", true));
        }
        if let Some(bearer) = &self.bearer
            && bool::from(token.as_bytes().ct_eq(bearer.as_slice()))
        {
            return Ok(Grant::all());
        }
        let Some((key, validation)) = &self.jwt else {
            return Err(unauthorized("the token is invalid", true));
        };
        let claims = jsonwebtoken::decode::<Claims>(&token, key, validation)
            .map_err(|e| unauthorized(&format!("the token is invalid: {e}"), true))?
            .claims;
        let access = match claims.role.as_str() {
            "publish" => Some(Access::Publish),
            "watch" => Some(Access::Watch),
            "*" => None,
            other => {
                return Err(unauthorized(
                    &format!("the token's role {other:?} is not publish, watch or *"),
                    true,
                ));
            }
        };
        let publish = match &claims.publish {
            None if access != Some(Access::Watch) => Source::ALL.to_vec(),
            None => Vec::new(),
            Some(names) => names
                .iter()
                .map(|n| {
                    Source::parse(n).ok_or_else(|| {
                        unauthorized(
                            &format!("the token's publish claim names {n:?}, not microphone, camera or screen"),
                            true,
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let conference = crate::directory::Grants {
            publish,
            subscribe: claims.subscribe.unwrap_or(access != Some(Access::Publish)),
            owner: claims.owner.unwrap_or(false),
        };
        let room = (claims.room != "*").then_some(claims.room);
        Ok(Grant {
            room,
            access,
            identity: claims.sub,
            name: claims.name,
            conference,
            admin: claims.admin.unwrap_or(false),
            record: claims.record.unwrap_or(false),
        })
    }
}

/// 401 for a request to the admin API without `--admin-token`.
pub fn unauthorized_admin() -> Problem {
    unauthorized("the admin API needs the admin token", false)
}

fn unauthorized(detail: &str, invalid: bool) -> Problem {
    let challenge = if invalid {
        "Bearer realm=\"uringcast\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"uringcast\""
    };
    Problem::new(StatusCode::UNAUTHORIZED, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

/// The token of a request: `Authorization: Bearer <token>` (scheme
/// case-insensitive), else the `token` query parameter.
pub fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        });
    from_header.or_else(|| {
        let query = query?;
        let params: Vec<(String, String)> = query_pairs(query);
        params
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
    })
}

/// `a=b&c=d` pairs, percent- and plus-decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                // from_str_radix would take a sign ("%+F"): two hex digits only.
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key_b64() -> String {
        base64::engine::general_purpose::STANDARD.encode(KEY)
    }

    fn jwt(claims: serde_json::Value, alg: Algorithm, key: &[u8]) -> String {
        encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key)).unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn configuration_is_checked() {
        assert!(Auth::from_config(None, None).unwrap().is_none());
        assert!(Auth::from_config(Some("!!!"), None).is_err());
        assert!(
            Auth::from_config(Some("c2hvcnQ="), None).is_err(),
            "too short"
        );
        assert!(Auth::from_config(Some(&key_b64()), None).unwrap().is_some());
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb; 40]);
        assert!(Auth::from_config(Some(&url_safe), None).unwrap().is_some());
        assert!(Auth::from_config(None, Some("")).is_err());
        assert!(Auth::from_config(None, Some("s3cret")).unwrap().is_some());
    }

    #[test]
    fn jwts_grant_their_room_and_role_and_nothing_else() {
        let auth = Auth::from_config(Some(&key_b64()), None).unwrap().unwrap();
        let now = get_current_timestamp();
        let token = jwt(
            serde_json::json!({"room": "r1", "role": "publish", "exp": now + 600}),
            Algorithm::HS256,
            KEY,
        );
        let grant = auth.authenticate(&bearer(&token), None).unwrap();
        assert!(grant.permit("r1", Access::Publish).is_ok());
        let denied = grant.permit("r2", Access::Publish).unwrap_err();
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(grant.permit("r1", Access::Watch).is_err());
        // From the query string instead, percent-encoded or not.
        let grant = auth
            .authenticate(&HeaderMap::new(), Some(&format!("x=1&token={token}")))
            .unwrap();
        assert!(grant.permit("r1", Access::Publish).is_ok());
        // Wildcards.
        let any = jwt(
            serde_json::json!({"room": "*", "role": "*", "exp": now + 600}),
            Algorithm::HS256,
            KEY,
        );
        let grant = auth.authenticate(&bearer(&any), None).unwrap();
        assert!(grant.permit("whatever", Access::Watch).is_ok());
    }

    #[test]
    fn bad_tokens_are_401_with_a_challenge() {
        let auth = Auth::from_config(Some(&key_b64()), None).unwrap().unwrap();
        let now = get_current_timestamp();
        let claims = |extra: serde_json::Value| {
            let mut c = serde_json::json!({"room": "r", "role": "watch", "exp": now + 600});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            c
        };
        let none_alg = {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD as B;
            format!(
                "{}.{}.",
                B.encode(r#"{"alg":"none","typ":"JWT"}"#),
                B.encode(claims(serde_json::json!({})).to_string())
            )
        };
        let cases = [
            jwt(
                claims(serde_json::json!({})),
                Algorithm::HS256,
                b"another key another key another!",
            ),
            jwt(
                claims(serde_json::json!({"exp": now - 3600})),
                Algorithm::HS256,
                KEY,
            ),
            jwt(
                claims(serde_json::json!({"nbf": now + 3600})),
                Algorithm::HS256,
                KEY,
            ),
            jwt(
                serde_json::json!({"room": "r", "role": "watch"}),
                Algorithm::HS256,
                KEY,
            ),
            jwt(
                claims(serde_json::json!({"role": "admin"})),
                Algorithm::HS256,
                KEY,
            ),
            jwt(claims(serde_json::json!({})), Algorithm::HS384, KEY),
            none_alg,
            "undefined".into(),
            String::new(),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ];
        for token in &cases {
            let problem = auth.authenticate(&bearer(token), None).unwrap_err();
            assert_eq!(problem.status, StatusCode::UNAUTHORIZED, "{token:.60}");
            assert_eq!(problem.headers[0].0, header::WWW_AUTHENTICATE);
            assert!(problem.headers[0].1.to_str().unwrap().starts_with("Bearer"));
        }
        let missing = auth.authenticate(&HeaderMap::new(), None).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, "Basic dTpw".parse().unwrap());
        assert!(auth.authenticate(&basic, None).is_err());
    }

    #[test]
    fn the_static_token_grants_everything() {
        let auth = Auth::from_config(None, Some("s3cret")).unwrap().unwrap();
        let grant = auth.authenticate(&bearer("s3cret"), None).unwrap();
        assert_eq!(grant, Grant::all());
        assert!(auth.authenticate(&bearer("s3cre"), None).is_err());
        assert!(
            auth.authenticate(&bearer("s3cret "), None).is_ok(),
            "trimmed"
        );
        let mut lower = HeaderMap::new();
        lower.insert(header::AUTHORIZATION, "bearer s3cret".parse().unwrap());
        assert!(auth.authenticate(&lower, None).is_ok());
        assert!(
            auth.authenticate(&HeaderMap::new(), Some("token=s3cret"))
                .is_ok()
        );
        assert!(
            auth.authenticate(&HeaderMap::new(), Some("token=s3%63ret"))
                .is_ok()
        );
    }

    #[test]
    fn percent_decoding_refuses_broken_escapes() {
        assert_eq!(percent_decode("a%2Fb+c"), Some("a/b c".into()));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }
}
