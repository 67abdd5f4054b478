//! Bearer tokens: `http::Auth::authenticate` on arbitrary `Authorization`
//! headers and query strings, and on JWTs the target signs itself (right or
//! wrong key, HS256/HS384/`none`, any room and role, `exp`/`nbf` anywhere
//! around now, optionally one byte changed) placed in the header or the
//! query, so the fuzzer reaches the claim checks instead of stopping at the
//! signature.
//!
//! Beyond "no panic": a failure is always 401; with auth off everything is
//! allowed (`Bearer undefined` included); arbitrary bytes never authenticate
//! except as the static token, and then grant everything; a signed token is
//! accepted exactly when it is HS256 under our key, unexpired, already
//! valid and names a known role, and then grants exactly its room and role.
#![no_main]

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use libfuzzer_sys::fuzz_target;
use uringcast::http::{Access, Auth, Grant, Policy};

const KEY: &[u8; 32] = b"fuzz-key-0123456789abcdefghijklm";
const WRONG_KEY: &[u8; 32] = b"fuzz-key-0123456789abcdefghijklM";
const STATIC: &str = "s3cret-static-token";
/// Tokens longer than this are refused unread (`http::auth::MAX_TOKEN_LEN`).
const MAX_TOKEN_LEN: usize = 8192;
/// `exp`/`nbf` this close to now (leeway 5 s, plus the run's own time) are
/// not judged: whether they pass depends on the clock.
const UNSURE_SECONDS: i64 = 30;

#[derive(Debug, Arbitrary)]
enum Config {
    Jwt,
    Static,
    Both,
}

#[derive(Debug, Arbitrary)]
enum Alg {
    Hs256,
    Hs384,
    None,
}

/// The `room` claim, relative to the room the request is for.
#[derive(Debug, Arbitrary)]
enum RoomClaim {
    Asked,
    Any,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum RoleClaim {
    Publish,
    Watch,
    Any,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Place {
    /// `<scheme> <token>`, the scheme in one of three cases, with padding.
    Header { scheme: u8, pad: bool },
    /// `token=<token>` after other parameters, '.' percent-encoded or not.
    Query { before: String, encode_dots: bool },
}

#[derive(Debug, Arbitrary)]
struct Jwt {
    right_key: bool,
    alg: Alg,
    room: RoomClaim,
    role: RoleClaim,
    /// Seconds from now; `None` leaves the claim out.
    exp: Option<i32>,
    nbf: Option<i32>,
    place: Place,
    /// Change one byte: (index modulo the length, XOR).
    tamper: Option<(u16, u8)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    config: Config,
    header: Option<Vec<u8>>,
    query: Option<String>,
    jwt: Option<Jwt>,
    room: String,
    publish: bool,
}

fuzz_target!(|input: Input| {
    let access = if input.publish {
        Access::Publish
    } else {
        Access::Watch
    };
    let key = STANDARD.encode(KEY);
    let auth = match input.config {
        Config::Jwt => Auth::from_config(Some(&key), None),
        Config::Static => Auth::from_config(None, Some(STATIC)),
        Config::Both => Auth::from_config(Some(&key), Some(STATIC)),
    }
    .expect("a valid configuration")
    .expect("auth is on");
    let jwt_on = !matches!(input.config, Config::Static);
    let static_on = !matches!(input.config, Config::Jwt);

    let mut headers = HeaderMap::new();
    let mut query = input.query.clone();
    if let Some(raw) = &input.header
        && let Ok(value) = HeaderValue::from_bytes(raw)
    {
        headers.insert(header::AUTHORIZATION, value);
    }

    // With auth off, anything goes.
    assert_eq!(
        Policy::open().authenticate(&headers, query.as_deref()).ok(),
        Some(Grant::all())
    );

    let Some(jwt) = &input.jwt else {
        match auth.authenticate(&headers, query.as_deref()) {
            Ok(grant) => {
                assert!(static_on, "arbitrary bytes authenticated as a JWT");
                assert_eq!(grant, Grant::all());
            }
            Err(problem) => assert_eq!(problem.status, StatusCode::UNAUTHORIZED),
        }
        return;
    };

    let now = get_current_timestamp() as i64;
    let (token, expected) = sign(jwt, &input.room, now);
    match &jwt.place {
        Place::Header { scheme, pad } => {
            let scheme = ["Bearer", "bearer", "BEARER"][usize::from(scheme % 3)];
            let value = if *pad {
                format!("  {scheme}   {token} \t")
            } else {
                format!("{scheme} {token}")
            };
            let value = HeaderValue::from_str(&value).expect("a token is a header value");
            headers.insert(header::AUTHORIZATION, value);
        }
        Place::Query {
            before,
            encode_dots,
        } => {
            headers.remove(header::AUTHORIZATION);
            let token = if *encode_dots {
                token.replace('.', "%2E")
            } else {
                token.clone()
            };
            // `before` must not end its parameter or name one `token`.
            let before: String = before
                .chars()
                .filter(|c| !matches!(c, '&' | '=' | '%' | '+' | '#'))
                .collect();
            query = Some(format!("x{before}=1&token={token}&after=2"));
        }
    }
    let result = auth.authenticate(&headers, query.as_deref());
    let Some(expected) = expected else {
        return; // unsure: only "no panic"
    };
    match (result, expected) {
        (Ok(grant), Some((room_ok, role_ok))) => {
            assert!(jwt_on, "a JWT accepted with JWT auth off");
            let permitted = grant.permit(&input.room, access);
            let want = room_ok && role_ok(access);
            assert_eq!(permitted.is_ok(), want, "grant {grant:?} for {jwt:?}");
            if let Err(problem) = permitted {
                assert_eq!(problem.status, StatusCode::FORBIDDEN);
            }
        }
        (Err(problem), Some(_)) => {
            assert!(!jwt_on, "a valid token was refused: {}", problem.detail);
        }
        (Ok(grant), None) => panic!("an invalid token was accepted: {grant:?} for {jwt:?}"),
        (Err(problem), None) => assert_eq!(problem.status, StatusCode::UNAUTHORIZED),
    }
});

/// What a valid token grants: whether its room covers the asked room, and
/// which access its role covers.
type Verdict = (bool, fn(Access) -> bool);

/// The token, and `Some(Some(verdict))` if it must be accepted,
/// `Some(None)` if it must be refused, `None` if that depends on the clock.
fn sign(jwt: &Jwt, asked_room: &str, now: i64) -> (String, Option<Option<Verdict>>) {
    let (room, room_ok) = match &jwt.room {
        RoomClaim::Asked => (asked_room.to_owned(), true),
        RoomClaim::Any => ("*".to_owned(), true),
        RoomClaim::Other(r) => (r.clone(), r == asked_room || r == "*"),
    };
    let role = match &jwt.role {
        RoleClaim::Publish => "publish",
        RoleClaim::Watch => "watch",
        RoleClaim::Any => "*",
        RoleClaim::Other(r) => r.as_str(),
    };
    let role_ok: Option<fn(Access) -> bool> = match role {
        "publish" => Some(|a| a == Access::Publish),
        "watch" => Some(|a| a == Access::Watch),
        "*" => Some(|_| true),
        _ => None,
    };
    let mut claims = serde_json::json!({ "room": room, "role": role });
    let mut unsure = false;
    let mut time_ok = true;
    if let Some(exp) = jwt.exp {
        let exp = i64::from(exp);
        claims["exp"] = (now + exp).into();
        unsure |= exp.abs() <= UNSURE_SECONDS;
        time_ok &= exp > 0;
    } else {
        time_ok = false; // exp is required
    }
    if let Some(nbf) = jwt.nbf {
        let nbf = i64::from(nbf);
        claims["nbf"] = (now + nbf).into();
        unsure |= nbf.abs() <= UNSURE_SECONDS;
        // Valid since a while, and not before 1970 (a negative `nbf` is no date).
        time_ok &= nbf < 0 && now + nbf >= 0;
    }
    let key = if jwt.right_key { KEY } else { WRONG_KEY };
    let mut token = match jwt.alg {
        Alg::Hs256 | Alg::Hs384 => {
            let alg = if matches!(jwt.alg, Alg::Hs256) {
                Algorithm::HS256
            } else {
                Algorithm::HS384
            };
            encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key))
                .expect("HMAC signing")
        }
        Alg::None => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
    };
    let mut tampered = false;
    if let Some((at, xor)) = jwt.tamper {
        let mut bytes = token.into_bytes();
        let at = usize::from(at) % bytes.len();
        let changed = bytes[at] ^ xor;
        // Keep it a header value (visible ASCII), so the check is reached.
        if xor != 0 && changed.is_ascii_graphic() {
            bytes[at] = changed;
            tampered = true;
        }
        token = String::from_utf8(bytes).expect("ASCII");
    }
    if token.len() > MAX_TOKEN_LEN {
        // Found by this target in CI: a 2.5 KB room of control characters
        // (JSON-escaped, then base64) made a signed token over the limit,
        // which the server rightly refuses.
        return (token, Some(None));
    }
    if unsure {
        return (token, None);
    }
    let valid =
        jwt.right_key && matches!(jwt.alg, Alg::Hs256) && time_ok && role_ok.is_some() && !tampered;
    let verdict = valid.then(|| (room_ok, role_ok.expect("checked")));
    (token, Some(verdict))
}
