//! Request rate limits (WHIP §5): POST, PATCH and DELETE are limited per
//! client IP with a token bucket (`governor`, GCRA): `--rate-limit` requests
//! per second with bursts of `--rate-burst`; over it, 429 with `Retry-After`.
//! GET, HEAD, OPTIONS and the demo pages are not limited. The session limit
//! (`--max-sessions`, 503) lives in the directory.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::problem::Problem;

/// Client IPs remembered before idle ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// A per-IP limit on requests that change state.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit").finish_non_exhaustive()
    }
}

impl RateLimit {
    /// `per_second` requests per second per IP, bursts of `burst` (at least
    /// 1); `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        })
    }

    /// `Ok` if `ip` may make a request now; else the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u32> {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            u32::try_from(wait.as_secs())
                .unwrap_or(u32::MAX)
                .saturating_add(1)
        })
    }
}

/// Middleware: 429 + `Retry-After` for a client IP over the limit.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limited = matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE
    );
    let policy = state.policy.load();
    if let (true, Some(limit)) = (limited, &policy.rate_limit) {
        let ip = request
            .extensions()
            .get::<super::proxy::ClientAddr>()
            .map(|c| c.0);
        if let Some(ip) = ip
            && let Err(wait) = limit.check(ip)
        {
            state.counters.count(&state.counters.rate_limited);
            return Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {ip}; retry in {wait} s"),
            )
            .retry_after(wait)
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_then_the_rate_holds_per_ip() {
        assert!(RateLimit::new(0, 10).is_none());
        let limit = RateLimit::new(1, 3).unwrap();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert_eq!(limit.check(a), Ok(()));
        }
        let wait = limit.check(a).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(limit.check(b), Ok(()), "another IP has its own bucket");
    }
}
