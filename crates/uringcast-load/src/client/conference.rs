//! A conference participant for the tests and the load tool: it joins a
//! room over HTTP, reads its event stream on a thread of its own, publishes
//! with a [`Client`] offering to its publish URL, and subscribes with a
//! [`Client`] that answers the server's offers (the first from the
//! `subscribe` reply, the later ones from `offer` events) as they come.

use std::io::{BufRead, BufReader};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::SdpOffer;

use super::payload::Kind;
use super::report::TrackCounter;
use super::signaling::{self, Signaling, request};
use super::{Client, ClientError, ClientOptions, ClientRole, StartHold, client_rtc};

/// One event of a participant's stream.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    pub name: String,
    pub id: u64,
    pub data: Value,
    /// When it arrived.
    pub at: Instant,
}

/// The server's offers to a subscribe transport: (revision, SDP).
pub type Offers = Receiver<(u32, String)>;

/// Offers for a subscribing client, and where its answers go.
#[derive(Debug)]
pub(super) struct OfferInbox {
    offers: Receiver<(u32, String)>,
    answer_url: String,
}

/// A participant that joined a room.
#[derive(Debug)]
pub struct Participant {
    /// Its public id.
    pub id: String,
    /// Its URL, `{base}/v1/participants/{handle}`.
    pub url: String,
    /// The room when it joined.
    pub snapshot: Value,
    base: String,
    signaling: Signaling,
    agent: ureq::Agent,
}

fn agent(signaling: &Signaling, timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(signaling::tls_config(signaling))
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into()
}

fn status_error(url: &str, status: u16, body: String) -> ClientError {
    ClientError::Status {
        url: url.to_owned(),
        status,
        body,
    }
}

impl Participant {
    /// `POST {base}/v1/rooms/{room}/participants` with `body` (JSON: `id`,
    /// `info`). In a room with approval it may be waiting: its snapshot's
    /// `admission` says so.
    pub fn join(
        base: &str,
        room: &str,
        body: &Value,
        signaling: Signaling,
    ) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let agent = agent(&signaling, Some(Duration::from_secs(10)));
        let url = format!("{base}/v1/rooms/{room}/participants");
        let reply = request(
            &agent,
            "POST",
            &url,
            &signaling,
            &[],
            Some(("application/json", &body.to_string())),
        )?;
        // 202: it waits for an owner's approval (its events tell the end).
        if reply.status != 201 && reply.status != 202 {
            return Err(status_error(&url, reply.status, reply.body));
        }
        let joined: Value =
            serde_json::from_str(&reply.body).map_err(|e| ClientError::Sdp(e.to_string()))?;
        let field = |name: &str| joined.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(id), Some(path)) = (field("id"), field("url")) else {
            return Err(status_error(&url, reply.status, reply.body));
        };
        Ok(Self {
            id,
            url: format!("{base}{path}"),
            snapshot: joined.get("snapshot").cloned().unwrap_or(Value::Null),
            base,
            signaling,
            agent,
        })
    }

    /// Opens the event stream on a thread: every event arrives on the first
    /// receiver; `offer` events also go, as (revision, SDP), to the second
    /// (for [`Participant::subscribe`]). The thread ends when the stream does.
    pub fn events(&self) -> Result<(Receiver<RoomEvent>, Offers), ClientError> {
        let url = format!("{}/events", self.url);
        let agent = agent(&self.signaling, None);
        let mut builder = agent.get(&url);
        if let Some(token) = &self.signaling.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let response = builder.call().map_err(|e| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if response.status() != 200 {
            return Err(status_error(
                &url,
                response.status().as_u16(),
                String::new(),
            ));
        }
        let (events, offers) = (channel(), channel());
        let reader = BufReader::new(response.into_body().into_reader());
        std::thread::spawn(move || read_events(reader, &events.0, &offers.0));
        Ok((events.1, offers.1))
    }

    /// Publishes with a client offering to `{url}/publish` (query: which
    /// mid carries what, e.g. `camera=1`; empty: by order).
    pub fn publish(&self, options: ClientOptions, query: &str) -> Result<Client, ClientError> {
        let url = format!("{}/publish{query}", self.url);
        Client::connect_to(&self.base, &url, ClientRole::Publish, options)
    }

    /// Subscribes with a client answering the server's offers: the first
    /// from `POST {url}/subscribe`, later ones from `offers`.
    pub fn subscribe(
        &self,
        options: ClientOptions,
        offers: Receiver<(u32, String)>,
    ) -> Result<Client, ClientError> {
        Client::subscribe(self, options, offers)
    }

    /// POSTs `body` as JSON to `{url}/{path}`; returns the status.
    pub fn post(&self, path: &str, body: &Value) -> Result<u16, ClientError> {
        let url = format!("{}/{path}", self.url);
        let reply = request(
            &self.agent,
            "POST",
            &url,
            &self.signaling,
            &[],
            Some(("application/json", &body.to_string())),
        )?;
        Ok(reply.status)
    }

    /// Leaves the room (`DELETE`); returns the status.
    pub fn leave(&self) -> Result<u16, ClientError> {
        Ok(request(&self.agent, "DELETE", &self.url, &self.signaling, &[], None)?.status)
    }
}

/// Parses `text/event-stream` lines into events until the stream ends.
fn read_events(reader: impl BufRead, events: &Sender<RoomEvent>, offers: &Sender<(u32, String)>) {
    let (mut name, mut id, mut data) = (String::new(), 0u64, String::new());
    for line in reader.lines() {
        let Ok(line) = line else {
            return;
        };
        if line.is_empty() {
            if !data.is_empty() {
                let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if name == "offer"
                    && let (Some(rev), Some(sdp)) =
                        (value["revision"].as_u64(), value["sdp"].as_str())
                {
                    let _ = offers.send((rev as u32, sdp.to_owned()));
                }
                let event = RoomEvent {
                    name: std::mem::take(&mut name),
                    id,
                    data: value,
                    at: Instant::now(),
                };
                if events.send(event).is_err() {
                    return;
                }
            }
            data.clear();
            name.clear();
            continue;
        }
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().unwrap_or(id);
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
}

impl Client {
    fn subscribe(
        participant: &Participant,
        options: ClientOptions,
        offers: Receiver<(u32, String)>,
    ) -> Result<Self, ClientError> {
        let now = Instant::now();
        let (socket, local, rtc) = client_rtc(&options, now)?;
        let url = format!("{}/subscribe", participant.url);
        let reply = request(
            &participant.agent,
            "POST",
            &url,
            &participant.signaling,
            &[],
            Some(("application/json", "{}")),
        )?;
        if reply.status != 201 {
            return Err(status_error(&url, reply.status, reply.body));
        }
        let first: Value =
            serde_json::from_str(&reply.body).map_err(|e| ClientError::Sdp(e.to_string()))?;
        let (Some(revision), Some(sdp)) = (first["revision"].as_u64(), first["sdp"].as_str())
        else {
            return Err(status_error(&url, reply.status, reply.body));
        };
        let inbox = OfferInbox {
            offers,
            answer_url: format!("{}/answer", participant.url),
        };
        let mut client = Self {
            role: ClientRole::Watch,
            rtc,
            socket,
            local,
            agent: participant.agent.clone(),
            session_url: participant.url.clone(),
            started: now,
            connected_at: None,
            first_media_at: None,
            sender: super::Sender {
                audio: None,
                video: None,
                next_audio: now,
                next_video: now,
                last_keyframe: None,
                force_keyframe: false,
                picture_id: 0,
            },
            kinds: Vec::new(),
            audio_rx: TrackCounter::default(),
            video_rx: TrackCounter::default(),
            keyframe_requests: 0,
            keyframes_received: 0,
            server: None,
            closed_by_server: false,
            etag: None,
            remote_pwd: signaling::ice_pwd(sdp),
            remote_sdp: sdp.to_owned(),
            stun_rewritten: 0,
            start_hold: StartHold::new(Vec::new()),
            buf: vec![0; 2048],
            offers: Some(inbox),
            first_from: Vec::new(),
            options,
        };
        client.answer(revision as u32, sdp)?;
        Ok(client)
    }

    /// Answers every offer that arrived (a conference subscriber).
    pub(super) fn answer_offers(&mut self) -> Result<(), ClientError> {
        let Some(inbox) = &self.offers else {
            return Ok(());
        };
        let offers: Vec<(u32, String)> = inbox.offers.try_iter().collect();
        for (revision, sdp) in offers {
            self.answer(revision, &sdp)?;
        }
        Ok(())
    }

    fn answer(&mut self, revision: u32, sdp: &str) -> Result<(), ClientError> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| ClientError::Sdp(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        let Some(inbox) = &self.offers else {
            return Ok(());
        };
        let body = json!({ "revision": revision, "sdp": answer.to_sdp_string() });
        let reply = request(
            &self.agent,
            "POST",
            &inbox.answer_url,
            &self.options.signaling,
            &[],
            Some(("application/json", &body.to_string())),
        )?;
        if reply.status != 204 {
            return Err(status_error(&inbox.answer_url, reply.status, reply.body));
        }
        Ok(())
    }

    /// Distinct packets of `kind` received from publisher `tag`.
    pub fn received_from(&self, kind: Kind, tag: u32) -> u64 {
        self.received(kind).unique_from(tag)
    }
}
