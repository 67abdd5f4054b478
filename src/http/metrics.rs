//! `GET /metrics`: the Prometheus text format (0.0.4), written by the
//! `prometheus-client` crate from the counters the server already keeps —
//! nothing on the packet path writes twice. At each scrape a collector
//! reads the shards' counters and latency histograms (label `shard`), the
//! signaling counters, the directory's sessions and rooms, and the sampled
//! bitrates. Labels stay bounded: `shard` (≤ 64), `reason` (a fixed set),
//! no session ids; per-room series (label `room`) only with
//! `--metrics-per-room`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::AppState;
use crate::directory::RoomSnapshot;
use crate::shard::{ShardStats, TimingSnapshot};

/// A metric of one shard's stats: name, help, how to read it.
type ShardTiming = (
    &'static str,
    &'static str,
    fn(&ShardStats) -> TimingSnapshot,
);

/// A per-room counter: name, help, how to read it.
type RoomCounter = (&'static str, &'static str, fn(&RoomSnapshot) -> u64);

/// Every metric's name starts with this.
const PREFIX: &str = "uringcast";

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(Exported { state }));
    let mut body = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// What one scrape reads.
struct Exported {
    state: AppState,
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exported")
    }
}

/// A metric family being written: its descriptor, then one sample per
/// label set.
struct Family<'a> {
    encoder: prometheus_client::encoding::MetricEncoder<'a>,
}

impl<'a> Family<'a> {
    fn new(
        out: &'a mut DescriptorEncoder,
        name: &'a str,
        help: &str,
        kind: MetricType,
    ) -> Result<Self, std::fmt::Error> {
        Ok(Self {
            encoder: out.encode_descriptor(name, help.trim(), None, kind)?,
        })
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64) -> Result<(), std::fmt::Error> {
        ConstCounter::new(value).encode(self.encoder.encode_family(&labels)?)
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) -> Result<(), std::fmt::Error> {
        ConstGauge::new(value).encode(self.encoder.encode_family(&labels)?)
    }

    fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        h: &TimingSnapshot,
    ) -> Result<(), std::fmt::Error> {
        self.encoder
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                h.sum, h.count, &h.buckets, None,
            )
    }
}

impl Collector for Exported {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_server(&mut out)?;
        self.encode_shards(&mut out)?;
        self.encode_signaling(&mut out)?;
        if self.state.metrics_per_room {
            self.encode_rooms(&mut out)?;
        }
        Ok(())
    }
}

impl Exported {
    /// Whole-server gauges: sessions, rooms, participants, bitrates,
    /// readiness.
    fn encode_server(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.state;
        let rooms = s.directory.rooms();
        let sum =
            |f: fn(&RoomSnapshot) -> usize| -> f64 { rooms.iter().map(f).sum::<usize>() as f64 };
        let (bitrate_in, bitrate_out) = rooms.iter().fold((0u64, 0u64), |(i, o), r| {
            let (ri, ro) = s.sampler.bitrates(&r.name);
            (i + ri, o + ro)
        });
        let gauges: [(&str, &str, f64); 9] = [
            (
                "uptime_seconds",
                "Seconds since the server started.",
                s.started.elapsed().as_secs_f64(),
            ),
            (
                "sessions",
                "Sessions (WHIP, WHEP, conference transports), pending or connected.",
                s.directory.session_count() as f64,
            ),
            (
                "pending_sessions",
                "Sessions answered whose first STUN has not arrived yet.",
                s.directory.pending_count() as f64,
            ),
            ("rooms", "Rooms with anyone in them.", rooms.len() as f64),
            (
                "participants",
                "Conference participants (a WHIP publisher counts as one).",
                sum(|r| r.participants),
            ),
            ("viewers", "WHEP viewers.", sum(|r| r.viewers)),
            (
                "bitrate_in_bits_per_second",
                "Media received from publishers, all rooms, sampled once a second.",
                bitrate_in as f64,
            ),
            (
                "bitrate_out_bits_per_second",
                "Media sent to viewers and subscribers, all rooms, sampled once a second.",
                bitrate_out as f64,
            ),
            (
                "draining",
                "1 while the server drains (new sessions get 503).",
                f64::from(u8::from(s.directory.is_draining())),
            ),
        ];
        for (name, help, value) in gauges {
            Family::new(out, name, help, MetricType::Gauge)?.gauge(&[], value)?;
        }
        let version = env!("CARGO_PKG_VERSION");
        Family::new(out, "build_info", "The running version.", MetricType::Gauge)?
            .gauge(&[("version", version)], 1.0)
    }

    /// Per-shard counters (drops by reason), peers, liveness, and the two
    /// latency histograms.
    fn encode_shards(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards: Vec<(String, crate::shard::ShardSnapshot)> = (self.state.shards.iter())
            .enumerate()
            .map(|(i, h)| (i.to_string(), h.stats.snapshot()))
            .collect();
        let Some((_, first)) = shards.first() else {
            return Ok(());
        };
        let fields = first.fields();
        for (index, (name, help, _)) in fields.iter().enumerate() {
            if name.starts_with("drop_") || *name == "peers" {
                continue;
            }
            let metric = format!("shard_{name}");
            let mut family = Family::new(out, &metric, help, MetricType::Counter)?;
            for (shard, snapshot) in &shards {
                family.counter(&[("shard", shard)], snapshot.fields()[index].2)?;
            }
        }
        let mut drops = Family::new(
            out,
            "dropped",
            "Datagrams or packets thrown away, by shard and reason (see /v1/stats: drop_<reason>).",
            MetricType::Counter,
        )?;
        for (shard, snapshot) in &shards {
            for (name, _, value) in snapshot.fields() {
                if let Some(reason) = name.strip_prefix("drop_") {
                    drops.counter(&[("shard", shard), ("reason", reason)], value)?;
                }
            }
        }
        let mut peers = Family::new(out, "shard_peers", "Peers on the shard.", MetricType::Gauge)?;
        for (shard, snapshot) in &shards {
            peers.gauge(&[("shard", shard)], snapshot.peers as f64)?;
        }
        let mut running = Family::new(
            out,
            "shard_running",
            "1 while the shard's thread runs its loop.",
            MetricType::Gauge,
        )?;
        for (i, handle) in self.state.shards.iter().enumerate() {
            let up = handle
                .stats
                .running
                .load(std::sync::atomic::Ordering::Relaxed);
            running.gauge(&[("shard", &i.to_string())], f64::from(u8::from(up)))?;
        }
        let timings: [ShardTiming; 2] = [
            (
                "session_setup_seconds",
                "From a session's answer to ICE and DTLS connected.",
                |s| s.setup.snapshot(),
            ),
            (
                "first_media_seconds",
                "From a session's answer to its first media packet (a publisher's received, a subscriber's sent).",
                |s| s.first_media.snapshot(),
            ),
        ];
        for (name, help, read) in timings {
            let mut family = Family::new(out, name, help, MetricType::Histogram)?;
            for (i, handle) in self.state.shards.iter().enumerate() {
                family.histogram(&[("shard", &i.to_string())], &read(&handle.stats))?;
            }
        }
        Ok(())
    }

    /// The signaling counters (requests refused by reason, trickles, ...).
    fn encode_signaling(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let value = serde_json::to_value(&*self.state.counters).unwrap_or_default();
        let Some(counters) = value.as_object() else {
            return Ok(());
        };
        for (name, value) in counters {
            let help = format!("Signaling: {name} (see /v1/stats, signaling.{name}).");
            let metric = format!("signaling_{name}");
            Family::new(out, &metric, &help, MetricType::Counter)?
                .counter(&[], value.as_u64().unwrap_or(0))?;
        }
        if let Some(tcp) = &self.state.tcp_stats {
            let value = serde_json::to_value(&**tcp).unwrap_or_default();
            for (name, value) in value.as_object().into_iter().flatten() {
                let metric = format!("ice_tcp_{name}");
                let help = format!("ICE-TCP: {name} (see /v1/stats, ice_tcp.{name}).");
                let n = value.as_u64().unwrap_or(0);
                if name == "open" {
                    Family::new(out, &metric, &help, MetricType::Gauge)?.gauge(&[], n as f64)?;
                } else {
                    Family::new(out, &metric, &help, MetricType::Counter)?.counter(&[], n)?;
                }
            }
        }
        if let Some(hooks) = self.state.directory.hook_stats() {
            let mut family = Family::new(
                out,
                "webhook_events",
                "Webhook events by outcome: sent (2xx), failed (every retry), dropped (queue full).",
                MetricType::Counter,
            )?;
            for (outcome, counter) in [
                ("sent", &hooks.sent),
                ("failed", &hooks.failed),
                ("dropped", &hooks.dropped),
            ] {
                family.counter(
                    &[("outcome", outcome)],
                    counter.load(std::sync::atomic::Ordering::Relaxed),
                )?;
            }
        }
        if let Some(record) = self.state.directory.record_stats() {
            encode_recording(out, &record)?;
        }
        Ok(())
    }

    /// `--metrics-per-room`: one series per room and metric.
    fn encode_rooms(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Read = fn(&RoomSnapshot, (u64, u64)) -> f64;
        let rooms = self.state.directory.rooms();
        let rates: Vec<(u64, u64)> = (rooms.iter())
            .map(|r| self.state.sampler.bitrates(&r.name))
            .collect();
        let gauges: [(&str, &str, Read); 5] = [
            ("room_sessions", "Sessions in the room.", |r, _| {
                r.sessions as f64
            }),
            (
                "room_participants",
                "Conference participants in the room.",
                |r, _| r.participants as f64,
            ),
            ("room_viewers", "WHEP viewers in the room.", |r, _| {
                r.viewers as f64
            }),
            (
                "room_bitrate_in_bits_per_second",
                "Media received in the room.",
                |_, b| b.0 as f64,
            ),
            (
                "room_bitrate_out_bits_per_second",
                "Media sent in the room.",
                |_, b| b.1 as f64,
            ),
        ];
        for (name, help, read) in gauges {
            let mut family = Family::new(out, name, help, MetricType::Gauge)?;
            for (room, rate) in rooms.iter().zip(&rates) {
                family.gauge(&[("room", &room.name)], read(room, *rate))?;
            }
        }
        let counters: [RoomCounter; 4] = [
            (
                "room_received_bytes",
                "Media bytes received in the room.",
                |r| r.bytes_in,
            ),
            ("room_sent_bytes", "Media bytes sent in the room.", |r| {
                r.bytes_out
            }),
            (
                "room_dropped_bitrate_in",
                "Publisher packets dropped over --max-bitrate-in.",
                |r| r.dropped_bitrate_in,
            ),
            (
                "room_dropped_bitrate_out",
                "Viewer packets dropped over --max-bitrate-out.",
                |r| r.dropped_bitrate_out,
            ),
        ];
        for (name, help, read) in counters {
            let mut family = Family::new(out, name, help, MetricType::Counter)?;
            for room in &rooms {
                family.counter(&[("room", &room.name)], read(room))?;
            }
        }
        Ok(())
    }
}

/// `record_<counter>_total` for each recorder counter, `record_files_open`.
fn encode_recording(
    out: &mut DescriptorEncoder,
    record: &crate::record::RecordStats,
) -> Result<(), std::fmt::Error> {
    let value = serde_json::to_value(record).unwrap_or_default();
    let Some(counters) = value.as_object() else {
        return Ok(());
    };
    for (name, value) in counters {
        let count = value.as_u64().unwrap_or(0);
        if name == "files_open" {
            Family::new(
                out,
                "record_files_open",
                "Recording files being written.",
                MetricType::Gauge,
            )?
            .gauge(&[], count as f64)?;
            continue;
        }
        let help = format!("Recorder: {name} (see /v1/stats, recording.{name}).");
        Family::new(out, &format!("record_{name}"), &help, MetricType::Counter)?
            .counter(&[], count)?;
    }
    Ok(())
}
