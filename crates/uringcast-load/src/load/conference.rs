//! The conference side of a load run: each room gets `P` participants that
//! join over HTTP, publish audio and video and subscribe to every other one
//! (their subscribe clients answer the server's offers as they come).

use std::time::Duration;

use serde_json::json;

use super::LoadConfig;
use crate::client::conference::{Participant, RoomEvent};
use crate::client::{Client, ClientOptions};

/// A participant kept for the run (its event stream open), left at the end.
pub(super) struct Joined {
    pub participant: Participant,
    _events: std::sync::mpsc::Receiver<RoomEvent>,
}

/// Joins every participant of every room; returns each client made (or
/// why one could not be): publish then subscribe, per participant.
pub(super) fn start(
    config: &LoadConfig,
    options: &ClientOptions,
    participants: usize,
    pause: Duration,
    joined: &mut Vec<Joined>,
) -> Vec<Result<Client, String>> {
    let mut out = Vec::new();
    for r in 0..config.publishers {
        let room = if config.publishers > 1 {
            format!("{}-{r}", config.room)
        } else {
            config.room.clone()
        };
        for i in 0..participants {
            let tag = (r * participants + i) as u32 + 1;
            let body =
                json!({ "id": format!("p{tag}"), "info": { "name": format!("load {tag}") } });
            let signaling = options.signaling.clone();
            let participant = match Participant::join(&config.url, &room, &body, signaling) {
                Ok(p) => p,
                Err(e) => {
                    out.push(Err(format!("{room} join: {e}")));
                    continue;
                }
            };
            let (events, offers) = match participant.events() {
                Ok(pair) => pair,
                Err(e) => {
                    out.push(Err(format!("{room} events: {e}")));
                    continue;
                }
            };
            let mut mine = options.clone();
            mine.tag = tag;
            out.push(
                participant
                    .publish(mine.clone(), "")
                    .map_err(|e| format!("{room} publish: {e}")),
            );
            std::thread::sleep(pause);
            out.push(
                participant
                    .subscribe(mine, offers)
                    .map_err(|e| format!("{room} subscribe: {e}")),
            );
            std::thread::sleep(pause);
            joined.push(Joined {
                participant,
                _events: events,
            });
        }
    }
    out
}
