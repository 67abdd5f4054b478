//! The webhook sender (`--webhook-url`): one thread drains the directory's
//! bounded event queue ([`crate::directory::hooks`]) and POSTs each event
//! as JSON, in order, signed with HMAC-SHA256 when `--webhook-key` is set
//! (`X-Uringcast-Signature: t=<unix seconds>,v1=<hex of
//! HMAC(key, "<t>.<body>")>`, so a receiver can refuse a replay). A failed
//! POST (no answer in 5 s, or not 2xx) is retried with backoff; after the
//! last retry the event is counted as failed. Nothing here blocks a
//! shard or a signaling handler: a slow endpoint fills the queue, and the
//! directory drops (and counts) what does not fit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use hmac::{KeyInit, Mac};
use serde_json::json;

use crate::directory::hooks::{HookEvent, HookStats};

/// Waits between the attempts of one event (so at most 5 attempts).
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Uringcast-Signature";

/// Where and how events are sent.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub key: Option<String>,
}

impl Webhook {
    /// Starts the sender thread; it ends when every sender of `events` is
    /// gone (the directory dropped at shutdown).
    pub fn spawn(
        self,
        events: Receiver<HookEvent>,
        stats: Arc<HookStats>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || self.run(&events, &stats))
    }

    fn run(&self, events: &Receiver<HookEvent>, stats: &HookStats) {
        let agent = agent();
        let mut sequence = 0u64;
        for event in events {
            sequence += 1;
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let body = json!({
                "id": sequence,
                "event": event.event,
                "room": event.room,
                "data": event.data,
                "created_at": created.as_secs_f64(),
            })
            .to_string();
            if self.deliver(&agent, &body) {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.url, event = event.event, room = %event.room, "webhook: gave up after every retry");
            }
        }
    }

    /// POSTs `body`, retrying with backoff; whether a 2xx came back.
    fn deliver(&self, agent: &ureq::Agent, body: &str) -> bool {
        for attempt in 0..=BACKOFF.len() {
            let mut request = agent
                .post(&self.url)
                .header("Content-Type", "application/json");
            if let Some(key) = &self.key {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                request = request.header(SIGNATURE_HEADER, signature(key, now, body));
            }
            match request.send(body) {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => {
                    tracing::debug!(status = %response.status(), attempt, "webhook refused")
                }
                Err(e) => tracing::debug!(error = %e, attempt, "webhook failed"),
            }
            if let Some(wait) = BACKOFF.get(attempt) {
                std::thread::sleep(*wait);
            }
        }
        false
    }
}

/// `t=<at>,v1=<hex of HMAC-SHA256(key, "<at>.<body>")>`.
pub fn signature(key: &str, at: u64, body: &str) -> String {
    format!(
        "t={at},v1={}",
        hmac_sha256_hex(key.as_bytes(), format!("{at}.{body}").as_bytes())
    )
}

/// HMAC-SHA256 of `data` under `key`, in hex.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

fn agent() -> ureq::Agent {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let signed = signature("Jefe", 7, "{}");
        assert_eq!(
            signed,
            format!("t=7,v1={}", hmac_sha256_hex(b"Jefe", b"7.{}"))
        );
        assert_ne!(signature("Jefe", 1, "{}"), signature("Jefe", 2, "{}"));
    }
}
