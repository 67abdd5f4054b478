//! The figures of one load step, machine-readable (`--json`) and printable.

use std::time::Duration;

use serde::Serialize;

use super::LoadConfig;
use crate::client::payload::Kind;
use crate::client::report::percentile;
use crate::client::{Client, ClientRole};

/// p50 / p99 / max of a set of values.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Self {
            p50: percentile(&values, 50.0),
            p99: percentile(&values, 99.0),
            max: values.last().copied().unwrap_or(0),
        }
    }
}

/// One second of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub t: u32,
    /// Packets publishers sent in this second.
    pub sent: u64,
    /// Packets viewers received in this second.
    pub received: u64,
    /// `1 - received / (sent × viewers per publisher)`, clamped at 0 (packets
    /// in flight across a second boundary make single seconds noisy).
    pub loss_ratio: f64,
    /// Server CPU in this second, percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// Server CPU-µs per packet received by viewers in this second.
    pub server_cpu_us_per_egress_packet: Option<f64>,
}

impl Second {
    pub fn new(
        t: u32,
        sent: u64,
        received: u64,
        subscribers: usize,
        cpu_seconds: Option<f64>,
    ) -> Self {
        let expected = sent * subscribers as u64;
        let loss_ratio = if expected == 0 {
            0.0
        } else {
            (1.0 - received as f64 / expected as f64).max(0.0)
        };
        Self {
            t,
            sent,
            received,
            loss_ratio,
            server_cpu_percent: cpu_seconds.map(|s| s * 100.0),
            server_cpu_us_per_egress_packet: cpu_seconds
                .filter(|_| received > 0)
                .map(|s| s * 1e6 / received as f64),
        }
    }
}

/// Everything one step measured.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub publishers: usize,
    pub subscribers: usize,
    pub sessions_ok: usize,
    pub sessions_failed: usize,
    /// The first few reasons sessions failed.
    pub errors: Vec<String>,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub corrupt: u64,
    pub loss_ratio: f64,
    pub latency_us: Percentiles,
    pub setup_ms: Percentiles,
    pub first_packet_ms: Percentiles,
    /// Conference: from a subscriber's POST to the first packet of each
    /// other participant, over every (subscriber, peer) pair.
    pub first_packet_per_peer_ms: Option<Percentiles>,
    /// Conference: participants per room.
    pub participants: Option<usize>,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_us_per_egress_packet: Option<f64>,
    pub egress_packets_per_second: f64,
    pub series: Vec<Second>,
    /// One-way latencies of every packet (for the report's histogram).
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
}

impl Figures {
    pub(super) fn from_run(
        config: &LoadConfig,
        clients: &[Client],
        failed: usize,
        errors: Vec<String>,
        cpu_seconds: Option<f64>,
        send_window: Duration,
        series: Vec<Second>,
    ) -> Self {
        let kinds = [Kind::Audio, Kind::Video];
        let (publishers, viewers): (Vec<&Client>, Vec<&Client>) = clients
            .iter()
            .partition(|c| c.report().role == ClientRole::Publish);
        let unconnected = clients.iter().filter(|c| !c.is_connected()).count();
        // Each publisher's packets are expected once at each of its room's viewers.
        let expected: u64 = publishers
            .iter()
            .map(|p| kinds.iter().map(|k| p.sent(*k)).sum::<u64>() * config.copies() as u64)
            .sum();
        let sum = |f: &dyn Fn(&Client, Kind) -> u64| -> u64 {
            viewers
                .iter()
                .map(|v| kinds.iter().map(|k| f(v, *k)).sum::<u64>())
                .sum()
        };
        let received = sum(&|v, k| v.received(k).unique());
        let egress = sum(&|v, k| v.received(k).packets);
        let latencies_us: Vec<u64> = viewers
            .iter()
            .flat_map(|v| {
                kinds
                    .iter()
                    .flat_map(move |k| v.received(*k).latencies_us.iter().copied())
            })
            .collect();
        let reports: Vec<_> = clients.iter().map(Client::report).collect();
        Self {
            publishers: config.publishers,
            subscribers: config.subscribers,
            sessions_ok: clients.len() - unconnected,
            sessions_failed: failed + unconnected,
            errors,
            packets_sent: publishers
                .iter()
                .map(|p| kinds.iter().map(|k| p.sent(*k)).sum::<u64>())
                .sum(),
            packets_received: received,
            duplicates: sum(&|v, k| v.received(k).duplicates),
            reordered: sum(&|v, k| v.received(k).reordered),
            corrupt: sum(&|v, k| v.received(k).corrupt),
            loss_ratio: if expected == 0 {
                0.0
            } else {
                (1.0 - received as f64 / expected as f64).max(0.0)
            },
            latency_us: Percentiles::of(latencies_us.clone()),
            setup_ms: Percentiles::of(reports.iter().filter_map(|r| r.setup_ms).collect()),
            first_packet_ms: Percentiles::of(
                reports
                    .iter()
                    .filter(|r| r.role == ClientRole::Watch)
                    .filter_map(|r| r.first_media_ms)
                    .collect(),
            ),
            first_packet_per_peer_ms: config.conference.map(|_| {
                Percentiles::of(
                    viewers
                        .iter()
                        .flat_map(|v| v.first_packet_per_peer_ms())
                        .collect(),
                )
            }),
            participants: config.conference,
            server_cpu_seconds: cpu_seconds,
            server_cpu_us_per_egress_packet: cpu_seconds
                .filter(|_| egress > 0)
                .map(|s| s * 1e6 / egress as f64),
            egress_packets_per_second: egress as f64 / send_window.as_secs_f64().max(1e-3),
            series,
            latencies_us,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, label: &str, value: String| {
            out.push_str(&format!("{label:<24}{value}\n"));
        };
        match self.participants {
            Some(p) => line(
                &mut out,
                "rooms × participants",
                format!(
                    "{} × {p} (each receives {})",
                    self.publishers,
                    p.saturating_sub(1)
                ),
            ),
            None => line(
                &mut out,
                "rooms × viewers",
                format!("{} × {}", self.publishers, self.subscribers),
            ),
        }
        line(
            &mut out,
            "sessions",
            format!("ok {}  failed {}", self.sessions_ok, self.sessions_failed),
        );
        line(
            &mut out,
            "setup (POST→connected)",
            format!("p50 {} ms  p99 {} ms", self.setup_ms.p50, self.setup_ms.p99),
        );
        line(
            &mut out,
            "first packet",
            format!(
                "p50 {} ms  p99 {} ms",
                self.first_packet_ms.p50, self.first_packet_ms.p99
            ),
        );
        if let Some(per_peer) = self.first_packet_per_peer_ms {
            line(
                &mut out,
                "first packet per peer",
                format!("p50 {} ms  p99 {} ms", per_peer.p50, per_peer.p99),
            );
        }
        line(
            &mut out,
            "packets",
            format!(
                "sent {}  received {}  loss {:.3} %",
                self.packets_sent,
                self.packets_received,
                self.loss_ratio * 100.0
            ),
        );
        line(
            &mut out,
            "",
            format!(
                "duplicates {}  reordered {}  corrupt {}",
                self.duplicates, self.reordered, self.corrupt
            ),
        );
        line(
            &mut out,
            "latency",
            format!(
                "p50 {} µs  p99 {} µs  max {} µs",
                self.latency_us.p50, self.latency_us.p99, self.latency_us.max
            ),
        );
        line(
            &mut out,
            "egress",
            format!("{:.0} packets/s", self.egress_packets_per_second),
        );
        if let (Some(cpu), Some(per)) = (
            self.server_cpu_seconds,
            self.server_cpu_us_per_egress_packet,
        ) {
            line(
                &mut out,
                "server CPU",
                format!("{cpu:.2} s  →  {per:.2} CPU-µs per egress packet"),
            );
        }
        for error in &self.errors {
            line(&mut out, "error", error.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_accounts_loss_per_viewer_and_cpu_per_packet() {
        let s = Second::new(3, 100, 950, 10, Some(0.05));
        assert!((s.loss_ratio - 0.05).abs() < 1e-9);
        assert_eq!(s.server_cpu_percent, Some(5.0));
        let per = s.server_cpu_us_per_egress_packet.unwrap();
        assert!((per - 0.05e6 / 950.0).abs() < 1e-9);
        // More received than expected (a late second): no negative loss.
        assert_eq!(Second::new(1, 10, 200, 10, None).loss_ratio, 0.0);
        assert_eq!(
            Second::new(1, 0, 0, 10, None).server_cpu_us_per_egress_packet,
            None
        );
    }
}
