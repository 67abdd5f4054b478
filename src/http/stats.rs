//! `GET /v1/stats` and the background tasks of the signaling thread: the
//! once-a-second bitrate sampler and the sweep of pending sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use parking_lot::Mutex;
use serde::Serialize;

use super::AppState;
use crate::directory::Directory;
use crate::shard::ShardSnapshot;

/// Room bitrates computed from byte counters once a second.
#[derive(Debug, Default)]
pub struct StatsSampler {
    /// Room name → (bytes in, bytes out at last sample, bits/s in, bits/s out).
    rooms: Mutex<HashMap<String, (u64, u64, u64, u64)>>,
}

impl StatsSampler {
    fn sample(&self, directory: &Directory, interval: Duration) {
        let seconds = interval.as_secs_f64().max(0.001);
        let mut rooms = self.rooms.lock();
        let mut next = HashMap::new();
        for room in directory.rooms() {
            let (prev_in, prev_out) = rooms
                .get(&room.name)
                .map_or((room.bytes_in, room.bytes_out), |r| (r.0, r.1));
            let rate =
                |now: u64, prev: u64| ((now.saturating_sub(prev)) as f64 * 8.0 / seconds) as u64;
            next.insert(
                room.name.clone(),
                (
                    room.bytes_in,
                    room.bytes_out,
                    rate(room.bytes_in, prev_in),
                    rate(room.bytes_out, prev_out),
                ),
            );
        }
        *rooms = next;
    }

    pub(super) fn bitrates(&self, room: &str) -> (u64, u64) {
        self.rooms.lock().get(room).map_or((0, 0), |r| (r.2, r.3))
    }
}

/// Starts the sampler and the pending-session sweep on the current runtime.
pub fn spawn_background_tasks(state: &AppState, connect_timeout: Duration) {
    let sampler = state.sampler.clone();
    let directory = state.directory.clone();
    let counters = state.counters.clone();
    let shards = state.shards.clone();
    super::rooms::spawn_resync(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = Instant::now();
        loop {
            tick.tick().await;
            let now = Instant::now();
            sampler.sample(&directory, now - last);
            last = now;
            let expired = directory.expire_pending(now, connect_timeout);
            if expired > 0 {
                counters.add(&counters.pending_expired, expired as u64);
                tracing::info!(expired, "pending sessions expired before their first STUN");
            }
            directory.pick_speakers();
            let (closing, reaped) = directory.reap_participants(now, connect_timeout);
            for (shard, id) in closing {
                if let Some(handle) = shards.get(shard) {
                    handle.command(crate::shard::Control::Close(id));
                }
            }
            if reaped > 0 {
                tracing::info!(reaped, "participants gone (no event stream, no transport)");
            }
        }
    });
}

#[derive(Serialize)]
struct RoomStats {
    name: String,
    sessions: usize,
    has_publisher: bool,
    participants: usize,
    viewers: usize,
    bytes_in: u64,
    bytes_out: u64,
    bitrate_in_bps: u64,
    bitrate_out_bps: u64,
    /// Publisher packets dropped over `--max-bitrate-in`.
    dropped_bitrate_in: u64,
    /// Viewer packets dropped over `--max-bitrate-out`.
    dropped_bitrate_out: u64,
}

#[derive(Serialize)]
struct ShardStatsOut {
    index: usize,
    io: &'static str,
    #[serde(flatten)]
    counters: ShardSnapshot,
}

#[derive(Serialize)]
pub(super) struct StatsOut {
    uptime_seconds: u64,
    sessions: usize,
    /// Sessions answered whose first STUN has not arrived yet.
    pending_sessions: usize,
    rooms: Vec<RoomStats>,
    shards: Vec<ShardStatsOut>,
    signaling: serde_json::Value,
    /// Webhook deliveries (`sent`, `failed`, `dropped`), with `--webhook-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhooks: Option<serde_json::Value>,
    /// ICE-TCP connections and frames, with `--ice-tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    ice_tcp: Option<serde_json::Value>,
    /// The recorder's counters, with `--record-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    recording: Option<serde_json::Value>,
}

pub(super) async fn stats(State(state): State<AppState>) -> Json<StatsOut> {
    let rooms = state
        .directory
        .rooms()
        .into_iter()
        .map(|r| {
            let (bitrate_in_bps, bitrate_out_bps) = state.sampler.bitrates(&r.name);
            RoomStats {
                name: r.name,
                sessions: r.sessions,
                has_publisher: r.has_publisher,
                participants: r.participants,
                viewers: r.viewers,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
                bitrate_in_bps,
                bitrate_out_bps,
                dropped_bitrate_in: r.dropped_bitrate_in,
                dropped_bitrate_out: r.dropped_bitrate_out,
            }
        })
        .collect();
    let shards = state
        .shards
        .iter()
        .enumerate()
        .map(|(index, handle)| ShardStatsOut {
            index,
            io: state.io_names.get(index).copied().unwrap_or("?"),
            counters: handle.stats.snapshot(),
        })
        .collect();
    Json(StatsOut {
        uptime_seconds: state.started.elapsed().as_secs(),
        sessions: state.directory.session_count(),
        pending_sessions: state.directory.pending_count(),
        rooms,
        shards,
        signaling: serde_json::to_value(&*state.counters).unwrap_or_default(),
        webhooks: (state.directory.hook_stats())
            .map(|h| serde_json::to_value(&*h).unwrap_or_default()),
        ice_tcp: (state.tcp_stats.as_ref()).map(|t| serde_json::to_value(&**t).unwrap_or_default()),
        recording: (state.directory.record_stats())
            .map(|r| serde_json::to_value(&*r).unwrap_or_default()),
    })
}
