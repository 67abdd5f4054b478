//! Conference helpers: a participant that joined, reads its events,
//! publishes and subscribes, each client on its own thread.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::json;
use uringcast_load::client::conference::{Participant, RoomEvent};
use uringcast_load::client::{ClientOptions, swarm};

use super::{Flags, Running, ServerProc};

/// How long media is sent.
pub const SEND_FOR: Duration = Duration::from_secs(3);

pub struct Member {
    /// Kept so the participant stays in the room (its event stream open).
    pub participant: Participant,
    pub events: Receiver<RoomEvent>,
    pub publisher: Running,
    pub subscriber: Running,
    pub tag: u32,
}

pub fn join(server: &ServerProc, room: &str, name: &str, tag: u32, flags: &Flags) -> Member {
    let participant = Participant::join(
        &server.base,
        room,
        &json!({ "id": name, "info": { "name": name } }),
        Default::default(),
    )
    .expect("join");
    let (events, offers) = participant.events().expect("the event stream opens");
    let options = ClientOptions {
        tag,
        video_bitrate: 300_000,
        ..ClientOptions::default()
    };
    let publisher = participant.publish(options.clone(), "").expect("publish");
    let subscriber = participant.subscribe(options, offers).expect("subscribe");
    let limit = Duration::from_secs(40);
    let publisher = swarm::run(publisher, format!("pub-{name}"), flags, limit).expect("thread");
    let subscriber = swarm::run(subscriber, format!("sub-{name}"), flags, limit).expect("thread");
    Member {
        participant,
        events,
        publisher: Running::from(publisher),
        subscriber: Running::from(subscriber),
        tag,
    }
}

/// Events from `events` until `until` holds for one (at most `limit`).
pub fn wait_for(
    events: &Receiver<RoomEvent>,
    limit: Duration,
    until: impl Fn(&RoomEvent) -> bool,
) -> Option<RoomEvent> {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(e) if until(&e) => return Some(e),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
