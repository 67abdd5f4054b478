//! Whole shards without sockets, in virtual time: [`ShardState`]s wired to
//! each other and to a [`Directory`] as the server wires them, and str0m
//! clients on a simulated network where addresses can be rebound (NAT),
//! spoofed and replayed. Signaling is what the HTTP handlers do, minus HTTP.
//! The shard's unit tests and the `demux` fuzz target build on it; after any
//! step, [`ShardWorld::check`] says whether the shards still agree with each
//! other, with the directory and with what was sent to them. A harness: it
//! panics when its own setup fails, which in a test or a fuzz run is the
//! right report.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, Input, Output};

use super::{Control, PatchReply, ShardHandle, ShardSnapshot, ShardState, Tables, channel};
use crate::directory::{Directory, Limits, PatchRoute, Place};
use crate::net::{RecvMeta, Waker};
use crate::sfu::sim::{ClientEnd, client_at};
use crate::sfu::{
    ATTR_USE_CANDIDATE, IcePatch, IfMatch, PatchError, PatchOutcome, PeerSetup, Role, SessionId,
    accept_offer, rebuild_binding_request,
};
use crate::wire::{self, PacketClass, SdpFrag};

/// The shards' IPv4 candidate.
pub const SERVER_V4: &str = "127.0.0.1:5000";
/// The shards' IPv6 candidate.
pub const SERVER_V6: &str = "[::1]:5000";

/// Kinds of datagram a client's last one of is kept, for replays.
pub const KINDS: usize = 4;

/// One client of the simulated network.
pub struct SimClient {
    pub end: ClientEnd,
    pub session: SessionId,
    pub role: Role,
    /// The address the shards see it at: its own, until rebound.
    pub wire: SocketAddr,
    /// Deleted or told to stop: it neither sends nor receives.
    pub silent: bool,
    /// Its last STUN, DTLS, RTP and RTCP datagram, by [`kind_index`].
    pub last_sent: [Option<Vec<u8>>; KINDS],
    /// ICE and DTLS completed on its side.
    pub connected: bool,
    /// RTP packets it received.
    pub rtp_received: u64,
    /// Keyframe requests (PLI/FIR) it received, as a publisher.
    pub keyframe_requests: u64,
    /// Once connected, it sends its checks without USE-CANDIDATE, as a
    /// client with regular nomination (Firefox) does after nominating.
    pub nominates_once: bool,
    /// The server's ICE password, to sign what it rewrites.
    server_pwd: String,
    next_seq: u64,
}

/// Shards, their directory, and clients; see the module doc.
pub struct ShardWorld {
    pub now: Instant,
    pub setup: PeerSetup,
    pub directory: Arc<Directory>,
    pub handles: Arc<[ShardHandle]>,
    pub shards: Vec<ShardState>,
    pub clients: Vec<SimClient>,
    /// Datagrams given to shards as if their sockets received them.
    pub injected: u64,
    /// Addresses a valid binding request was sent from: the only ones a
    /// shard may ever pin.
    pub stun_sources: HashSet<SocketAddr>,
    /// Datagrams the shards sent to an address no listening client has.
    pub undeliverable: u64,
    /// The media lanes are small enough to fill: [`ShardWorld::check`]
    /// then allows drops there (and hand-offs lost to them).
    lossy_media: bool,
}

/// Rounds [`ShardWorld::run`] delivers before it gives up on quiet.
const MAX_ROUNDS: usize = 64;

/// Shard-to-shard media lane capacity: large, so a check can require that
/// no lane ever overflowed.
const QUEUE: usize = 1 << 16;

impl ShardWorld {
    /// `shards` shards sharing a directory with `limits`; peers get `setup`
    /// with the shards' two candidates.
    pub fn new(shards: usize, limits: Limits, setup: PeerSetup) -> Self {
        Self::with_media_lanes(shards, limits, setup, QUEUE)
    }

    /// As [`ShardWorld::new`], with media lanes of `capacity` messages
    /// (`--shard-queue`); below the default, [`ShardWorld::check`] allows
    /// media-lane drops.
    pub fn with_media_lanes(
        shards: usize,
        limits: Limits,
        mut setup: PeerSetup,
        capacity: usize,
    ) -> Self {
        let (handles, inboxes): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| channel(capacity, Waker::new().expect("eventfd")))
            .unzip();
        let handles: Arc<[ShardHandle]> = handles.into();
        let directory = Arc::new(Directory::with_limits(limits));
        setup.candidates = vec![
            SERVER_V4.parse().expect("address"),
            SERVER_V6.parse().expect("address"),
        ];
        let shards = inboxes
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| {
                ShardState::new(
                    i,
                    inbox,
                    handles.clone(),
                    directory.clone(),
                    setup.candidates.clone(),
                )
            })
            .collect();
        Self {
            now: Instant::now(),
            setup,
            directory,
            handles,
            shards,
            clients: Vec::new(),
            injected: 0,
            stun_sources: HashSet::new(),
            undeliverable: 0,
            lossy_media: capacity < QUEUE,
        }
    }

    /// The shard the kernel would give datagrams from `source` to (any
    /// fixed function of the address will do).
    pub fn shard_of(&self, source: SocketAddr) -> usize {
        source.port() as usize % self.shards.len()
    }

    /// What `POST /whip|whep/{room}` does, for a client at `addr`; returns
    /// the client's index, or why it was refused.
    pub fn post(&mut self, room: &str, role: Role, addr: SocketAddr) -> Result<usize, String> {
        self.directory.precheck(None).map_err(|e| e.to_string())?;
        let (direction, pt, h264) = match role {
            Role::Publisher => (Direction::SendOnly, 96, false),
            Role::Viewer => (Direction::RecvOnly, 100, true),
        };
        let media = match role {
            Role::Publisher => None,
            Role::Viewer => Some(
                self.directory
                    .publisher_media(room)
                    .ok_or("the room has no publisher")?,
            ),
        };
        let generation = match role {
            Role::Publisher => self.directory.next_generation(),
            Role::Viewer => 0,
        };
        let (mut end, offer, pending) = client_at(self.now, addr, direction, pt, h264);
        let (peer, answer) = accept_offer(
            role,
            &offer,
            &self.setup,
            room,
            media.as_deref(),
            generation,
            self.now,
        )
        .map_err(|e| e.to_string())?;
        let session = self
            .directory
            .insert(peer, self.now)
            .map_err(|e| e.to_string())?;
        let server_pwd = answer
            .lines()
            .find_map(|l| l.strip_prefix("a=ice-pwd:"))
            .expect("our answer has an ICE password")
            .trim()
            .to_owned();
        let answer = SdpAnswer::from_sdp_string(&answer).expect("our answer parses");
        end.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the client takes our answer");
        self.clients.push(SimClient {
            end,
            session,
            role,
            wire: addr,
            silent: false,
            last_sent: Default::default(),
            connected: false,
            rtp_received: 0,
            keyframe_requests: 0,
            nominates_once: false,
            server_pwd,
            next_seq: 0,
        });
        Ok(self.clients.len() - 1)
    }

    /// What `DELETE /session/{id}` does; the client goes silent. Returns
    /// whether the session still existed.
    pub fn delete(&mut self, client: usize) -> bool {
        let Some(c) = self.clients.get_mut(client) else {
            return false;
        };
        c.silent = true;
        match self.directory.remove(c.session) {
            None => false,
            Some(Place::Pending(_)) => true,
            Some(Place::Shard(shard)) => {
                self.handles[shard].command(Control::Close(c.session));
                true
            }
        }
    }

    /// What `PATCH /session/{id}` does with `fragment` (an
    /// `application/trickle-ice-sdpfrag` body, `If-Match: *`): applied by
    /// the directory to a pending peer, else by the peer's shard. `None`
    /// when the fragment does not parse or the session is gone. The client
    /// is not told: after an ICE restart its checks no longer authenticate.
    pub fn patch(
        &mut self,
        client: usize,
        fragment: &str,
    ) -> Option<Result<PatchOutcome, PatchError>> {
        let id = self.clients.get(client)?.session;
        let frag = SdpFrag::parse(fragment).ok()?;
        let patch = IcePatch::from_frag(&frag, IfMatch::parse("*")?);
        let shard = match self.directory.patch(id, self.now, patch.clone()) {
            PatchRoute::Unknown => return None,
            PatchRoute::Done(result) => return Some(result),
            PatchRoute::OnShard(shard) => shard,
        };
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let patch = Box::new(patch);
        self.handles[shard].command(Control::Patch { id, patch, reply });
        self.run();
        match answer.try_recv() {
            Ok(PatchReply::Applied(result)) => Some(result),
            Ok(PatchReply::NotHere) | Err(_) => None,
        }
    }

    /// What the signaling side's sweep does: pending sessions older than
    /// the connect timeout go.
    pub fn expire(&mut self) -> usize {
        self.directory
            .expire_pending(self.now, self.setup.connect_timeout)
    }

    /// Moves `client` to another address, as a NAT rebinding does.
    pub fn rebind(&mut self, client: usize, wire: SocketAddr) {
        if let Some(c) = self.clients.get_mut(client) {
            c.wire = wire;
        }
    }

    /// `data` from `source`, as shard `shard`'s socket would deliver it.
    pub fn deliver(&mut self, shard: usize, source: SocketAddr, data: &[u8]) {
        let destination = candidate(&self.setup, source);
        self.injected += 1;
        self.shards[shard].handle_datagram(self.now, RecvMeta::udp(source, destination), data);
    }

    /// Sends `client`'s last datagram of kind `kind` again from `source`
    /// to `shard` (default: the one `source` hashes to), with byte `flip.0`
    /// (mod its length) XORed with `flip.1`.
    pub fn replay(
        &mut self,
        client: usize,
        kind: usize,
        source: SocketAddr,
        shard: Option<usize>,
        flip: Option<(usize, u8)>,
    ) {
        let Some(mut data) = self
            .clients
            .get(client)
            .and_then(|c| c.last_sent.get(kind).cloned().flatten())
        else {
            return;
        };
        let mut intact = true;
        if let Some((at, xor)) = flip
            && !data.is_empty()
        {
            let at = at % data.len();
            data[at] ^= xor;
            // A change inside FINGERPRINT (the last 8 bytes) leaves the
            // MESSAGE-INTEGRITY before it valid.
            intact = xor == 0 || at + 8 >= data.len();
        }
        if intact && wire::binding_request_local_ufrag(&data).is_some() {
            self.stun_sources.insert(source);
        }
        let shard = shard.map_or_else(|| self.shard_of(source), |s| s % self.shards.len());
        self.deliver(shard, source, &data);
    }

    /// Has publisher `client` write one VP8 packet of `len` bytes (if it is
    /// connected); it is sent on the next [`ShardWorld::run`].
    pub fn publish(&mut self, client: usize, len: usize) {
        let now = self.now;
        let Some(c) = self.clients.get_mut(client) else {
            return;
        };
        if c.silent || !c.connected || c.role != Role::Publisher {
            return;
        }
        let Some(mid) = c.end.mid else { return };
        let Some(pt) = c
            .end
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt())
        else {
            return;
        };
        c.next_seq += 1;
        let seq = c.next_seq;
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 + seq) as u8).collect();
        let mut api = c.end.rtc.direct_api();
        if let Some(stream) = api.stream_tx_by_mid(mid, None) {
            let write = RtpWrite::new(pt, seq.into(), (seq * 3000) as u32, now, payload);
            stream.write_rtp(write.nackable(true));
        }
    }

    /// Has viewer `client` ask for a keyframe: its str0m sends a PLI with
    /// its next RTCP (within about half a second of virtual time). Nothing
    /// if it has received no video yet.
    pub fn request_keyframe(&mut self, client: usize) {
        let Some(c) = self.clients.get_mut(client) else {
            return;
        };
        let Some(mid) = c.end.mid else { return };
        let mut api = c.end.rtc.direct_api();
        if let Some(stream) = api.stream_rx_by_mid(mid, None) {
            stream.request_keyframe(KeyframeRequestKind::Pli);
        }
    }

    /// Moves time on by `step`, then [`ShardWorld::run`]s.
    pub fn advance(&mut self, step: Duration) {
        self.now += step;
        self.run();
    }

    /// Delivers until quiet (at most [`MAX_ROUNDS`] rounds): clients send
    /// what they have to the shard their address hashes to; every shard
    /// takes a turn and flushes; what they sent reaches the client at the
    /// destination, if one listens there.
    pub fn run(&mut self) {
        let now = self.now;
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;
            for i in 0..self.clients.len() {
                for data in self.client_output(i, Input::Timeout(now)) {
                    moved = true;
                    let wire = self.clients[i].wire;
                    self.deliver(self.shard_of(wire), wire, &data);
                }
            }
            let mut sent = Vec::new();
            for shard in &mut self.shards {
                shard.handle_turn(now);
                shard.flush(now, |to, data| sent.push((to, data.to_vec())));
            }
            for (to, data) in sent {
                moved = true;
                self.deliver_to_client(to, data);
            }
            if !moved && self.shards.iter().all(|s| !s.has_queued()) {
                return;
            }
        }
    }

    /// Silences every client and lets every timeout run out; afterwards no
    /// session should be left anywhere ([`ShardWorld::check_empty`]).
    pub fn wind_down(&mut self) {
        for c in &mut self.clients {
            c.silent = true;
        }
        let limit = self.setup.connect_timeout.max(self.setup.ice_timeout) + Duration::from_secs(2);
        let step = Duration::from_millis(500);
        let mut waited = Duration::ZERO;
        while waited <= limit {
            self.advance(step);
            self.expire();
            waited += step;
        }
    }

    /// Every shard's tables, checked: each shard on its own
    /// ([`ShardState::tables`]), against the directory (a session placed
    /// on shard `s` is exactly one shard `s` holds), against the network
    /// (only addresses a valid binding request came from are pinned), and
    /// the counters (every datagram counted once; no control message lost;
    /// nothing lost to a full media lane unless the world was built with
    /// small ones; every hand-off arrived).
    pub fn check(&self) -> Result<Vec<Tables>, String> {
        let tables = self
            .shards
            .iter()
            .map(|s| s.tables().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let placements = self.directory.placements();
        let names = self.directory.ufrags()?;
        for (index, t) in tables.iter().enumerate() {
            let placed: Vec<SessionId> = placements
                .iter()
                .filter(|(_, s)| *s == Some(index))
                .map(|(id, _)| *id)
                .collect();
            if placed != t.sessions {
                return Err(format!(
                    "shard {index} holds {:?}, the directory places {:?} there",
                    t.sessions, placed
                ));
            }
            if let Some((id, ufrag)) = t.ufrags.iter().find(|n| names.binary_search(n).is_err()) {
                return Err(format!(
                    "shard {index}: session {id:?} answers to {ufrag}, the directory knows it otherwise"
                ));
            }
            if let Some((addr, id)) = t
                .pinned
                .iter()
                .find(|(a, _)| !self.stun_sources.contains(&a.addr))
            {
                return Err(format!(
                    "shard {index} pinned {addr} to {id:?} without a valid binding request from it"
                ));
            }
        }
        let stats: Vec<ShardSnapshot> = self.shards.iter().map(ShardState::stats).collect();
        let sum = |f: fn(&ShardSnapshot) -> u64| stats.iter().map(f).sum::<u64>();
        let received = sum(|s| s.received);
        if received != self.injected {
            return Err(format!(
                "{received} datagrams counted received, {} delivered",
                self.injected
            ));
        }
        let counted_in = received + sum(|s| s.handed_in);
        let counted_out = sum(|s| s.to_peer)
            + sum(|s| s.handed_off)
            + sum(|s| s.drop_unknown_source)
            + sum(|s| s.drop_unknown_ufrag);
        // Hand-offs lost to a full media lane are counted in
        // `drop_queue_full` only (with the media packets lost there).
        let queue_full = sum(|s| s.drop_queue_full);
        let lost_handoffs = counted_in.checked_sub(counted_out);
        if !lost_handoffs.is_some_and(|n| n == 0 || (self.lossy_media && n <= queue_full)) {
            return Err(format!(
                "{counted_in} datagrams in, {counted_out} accounted for: {stats:?}"
            ));
        }
        if (queue_full != 0 && !self.lossy_media)
            || sum(|s| s.control_lost) != 0
            || sum(|s| s.handed_in) != sum(|s| s.handed_off)
        {
            return Err(format!("a shard message was lost: {stats:?}"));
        }
        for (index, (t, s)) in tables.iter().zip(&stats).enumerate() {
            if s.peers != t.sessions.len() as u64 {
                return Err(format!(
                    "shard {index} counts {} peers, holds {}",
                    s.peers,
                    t.sessions.len()
                ));
            }
        }
        Ok(tables)
    }

    /// After [`ShardWorld::wind_down`]: no session, route, timer or room
    /// is left in any shard or in the directory.
    pub fn check_empty(&self) -> Result<(), String> {
        let tables = self.check()?;
        for (index, t) in tables.iter().enumerate() {
            if *t != Tables::default() {
                return Err(format!("shard {index} kept {t:?}"));
            }
        }
        let left = self.directory.placements();
        if !left.is_empty() || !self.directory.rooms().is_empty() {
            return Err(format!(
                "the directory kept {left:?} and rooms {:?}",
                self.directory.rooms()
            ));
        }
        Ok(())
    }

    /// Feeds `input` to client `i` (unless silent) and returns the
    /// datagrams it wants sent; notes what it sent and saw.
    fn client_output(&mut self, i: usize, input: Input) -> Vec<Vec<u8>> {
        let c = &mut self.clients[i];
        let mut sent = Vec::new();
        if c.silent || c.end.rtc.handle_input(input).is_err() {
            return sent;
        }
        // Bounded: a client that never reaches its timeout is cut off.
        for _ in 0..1024 {
            match c.end.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(Output::Transmit(t)) => sent.push(t.contents.to_vec()),
                Ok(Output::Event(Event::Connected)) => c.connected = true,
                Ok(Output::Event(Event::RtpPacket(_))) => c.rtp_received += 1,
                Ok(Output::Event(Event::KeyframeRequest(_))) => c.keyframe_requests += 1,
                Ok(Output::Event(_)) => {}
            }
        }
        for data in &mut sent {
            if c.nominates_once
                && c.connected
                && let Ok(view) = wire::StunView::parse(data)
                && view.is_binding_request()
            {
                *data = rebuild_binding_request(
                    &view,
                    |t| t != ATTR_USE_CANDIDATE,
                    &[],
                    c.server_pwd.as_bytes(),
                );
            }
            if let Some(kind) = kind_index(data) {
                c.last_sent[kind] = Some(data.clone());
            }
            if wire::binding_request_local_ufrag(data).is_some() {
                self.stun_sources.insert(c.wire);
            }
        }
        sent
    }

    /// A shard's datagram to `to`: the newest listening client there takes
    /// it (its answers go back at once).
    fn deliver_to_client(&mut self, to: SocketAddr, data: Vec<u8>) {
        let Some(i) = self.clients.iter().rposition(|c| !c.silent && c.wire == to) else {
            self.undeliverable += 1;
            return;
        };
        let source = candidate(&self.setup, to);
        let destination = self.clients[i].end.addr;
        let Ok(contents) = data.as_slice().try_into() else {
            return;
        };
        let input = Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        for reply in self.client_output(i, input) {
            let wire = self.clients[i].wire;
            self.deliver(self.shard_of(wire), wire, &reply);
        }
    }
}

/// The shards' candidate of `peer`'s address family.
fn candidate(setup: &PeerSetup, peer: SocketAddr) -> SocketAddr {
    setup
        .candidates
        .iter()
        .copied()
        .find(|c| c.is_ipv4() == peer.is_ipv4())
        .unwrap_or(setup.candidates[0])
}

/// Which of [`SimClient::last_sent`] a datagram is kept in.
pub fn kind_index(data: &[u8]) -> Option<usize> {
    match wire::classify(data) {
        PacketClass::Stun => Some(0),
        PacketClass::Dtls => Some(1),
        PacketClass::Rtp => Some(2),
        PacketClass::Rtcp => Some(3),
        _ => None,
    }
}
