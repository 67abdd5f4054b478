//! What the directory tells a webhook (`--webhook-url`): rooms starting
//! and finishing, participants joining and leaving, tracks published and
//! unpublished. Events are queued, under the directory's lock, on a
//! bounded channel that never blocks: when it is full the event is
//! dropped and counted. The sender thread (`crate::webhook`) drains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;
use serde_json::Value;

/// Events waiting for the sender thread, at most.
pub const HOOK_QUEUE: usize = 1024;

/// One event for the webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    /// `room_started`, `room_finished`, `participant_joined`,
    /// `participant_left`, `track_published`, `track_unpublished`.
    pub event: &'static str,
    pub room: String,
    /// The event's details (the participant, the track), as the room's
    /// Server-Sent Events carry them.
    pub data: Value,
}

/// Webhook delivery counters, in `/v1/stats` (`webhooks`) and `/metrics`.
#[derive(Debug, Default, Serialize)]
pub struct HookStats {
    /// Events the endpoint took (2xx).
    pub sent: AtomicU64,
    /// Events given up after every retry failed.
    pub failed: AtomicU64,
    /// Events dropped because the queue was full (the endpoint is slow or down).
    pub dropped: AtomicU64,
}

/// The directory's end of the queue.
#[derive(Debug, Clone)]
pub struct HookSink {
    tx: Sender<HookEvent>,
    pub stats: Arc<HookStats>,
}

impl HookSink {
    /// A sink and the receiver the sender thread drains.
    pub fn new(capacity: usize) -> (Self, Receiver<HookEvent>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = Self {
            tx,
            stats: Arc::new(HookStats::default()),
        };
        (sink, rx)
    }

    /// Queues `event` without blocking; a full queue drops and counts it.
    pub fn emit(&self, event: &'static str, room: &str, data: Value) {
        let hook = HookEvent {
            event,
            room: room.to_owned(),
            data,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(hook) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The webhook event of a room event the participants are sent, if any.
pub fn hook_name(room_event: &str) -> Option<&'static str> {
    Some(match room_event {
        "participantJoined" => "participant_joined",
        "participantLeft" => "participant_left",
        "trackPublished" => "track_published",
        "trackUnpublished" => "track_unpublished",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (sink, rx) = HookSink::new(1);
        sink.emit("room_started", "a", Value::Null);
        sink.emit("room_started", "b", Value::Null);
        assert_eq!(sink.stats.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(rx.try_recv().map(|e| e.room), Ok("a".to_owned()));
    }
}
