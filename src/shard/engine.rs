//! The socket-free heart of a shard: its peers (a slab with generations),
//! the routing tables, the room router, the timer heap, and what happens to
//! one datagram, one shard message, one timer. Time is always passed in;
//! nothing here touches a socket, a thread or the clock, so
//! [`ShardState`](super::ShardState) can drive it from tests and fuzzing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use slab::Slab;
use str0m::media::KeyframeRequestKind;
use tracing::{debug, info};

use super::demux::{Route, Routes};
use super::msg::{ShardControl, ShardHandle, ShardMedia};
use super::stats::ShardStats;
use crate::directory::{Claim, Directory};
use crate::net::RecvMeta;
use crate::record::RecordSink;
use crate::sfu::{
    CloseReason, Feed, FeedSource, Forwarded, IcePatch, Outputs, PatchError, PatchOutcome, Peer,
    PeerAddr, PeerEvent, SessionId, TrackId,
};
use crate::wire;

/// A peer's handle on its shard: slab index plus a generation, so a stale
/// handle never reaches a newer peer in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PeerKey {
    pub(super) index: u32,
    pub(super) generation: u32,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) peer: Box<Peer>,
    pub(super) generation: u32,
    /// Authenticated addresses routed to this peer, oldest first, at most
    /// [`MAX_PEER_ADDRS`].
    pub(super) addrs: Vec<PeerAddr>,
    /// The deadline of this peer's entry in the timer heap.
    pub(super) scheduled: Option<Instant>,
}

/// Everything of a shard but its datapath and its inbox.
pub(super) struct Core {
    pub(super) index: usize,
    pub(super) peers: Slab<Slot>,
    next_generation: u32,
    pub(super) routes: Routes<PeerKey>,
    /// Pinned addresses other shards were told to route here (a bit per
    /// shard): each is told to forget it when its last peer here ends. Per
    /// address, not per peer, since the same address can reach several
    /// shards (a client sending to two of our IPs) and outlive its peer.
    pub(super) told: HashMap<PeerAddr, u64>,
    pub(super) by_session: HashMap<SessionId, PeerKey>,
    pub(super) router: crate::sfu::Router<PeerKey>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, PeerKey)>>,
    pub(super) directory: Arc<Directory>,
    pub(super) shards: Arc<[ShardHandle]>,
    candidates: Vec<SocketAddr>,
    pub(super) out: Outputs,
    /// Subscribers of the packet being fanned out: those of its track, then
    /// (from `scratch_main` on) those of its room's main feed.
    scratch: Vec<PeerKey>,
    /// Viewers with packets written but not yet sent.
    unflushed: Vec<PeerKey>,
    /// Publisher packets fanned out since the last flush.
    unflushed_packets: usize,
    /// Shards queued to since the last flush (a bit each), to be woken.
    pub(super) to_wake: u64,
    pub(super) stats: Arc<ShardStats>,
    /// Where transmits to ICE-TCP peers go (`None`: no ICE-TCP; they are
    /// dropped and counted).
    pub(super) tcp: Option<crate::net::tcp::TcpOutbox>,
    /// The recorder's queue (`--record-dir`).
    recorder: Option<RecordSink>,
}

impl Core {
    /// Shard `index` of `shards`, advertising `candidates`.
    pub(super) fn new(
        index: usize,
        shards: Arc<[ShardHandle]>,
        directory: Arc<Directory>,
        candidates: Vec<SocketAddr>,
    ) -> Self {
        let stats = shards[index].stats.clone();
        let recorder = directory.record_sink();
        Self {
            index,
            peers: Slab::new(),
            next_generation: 0,
            routes: Routes::default(),
            told: HashMap::new(),
            by_session: HashMap::new(),
            router: crate::sfu::Router::new(index),
            timers: BinaryHeap::new(),
            directory,
            shards,
            candidates,
            out: Outputs::default(),
            scratch: Vec::new(),
            unflushed: Vec::new(),
            unflushed_packets: 0,
            to_wake: 0,
            stats,
            tcp: None,
            recorder,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub(super) fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slot_mut(key) else {
                continue;
            };
            if slot.scheduled != Some(at) {
                continue; // stale entry
            }
            slot.scheduled = None;
            self.call(key, now, |peer, out| peer.handle_timeout(now, out));
        }
    }

    pub(super) fn slot_mut(&mut self, key: PeerKey) -> Option<&mut Slot> {
        self.peers
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// Our candidate address for a datagram that reached `destination`.
    fn local_address(&self, destination: SocketAddr) -> SocketAddr {
        if self.candidates.contains(&destination) {
            return destination;
        }
        self.candidates
            .iter()
            .find(|c| c.is_ipv4() == destination.is_ipv4())
            .or(self.candidates.first())
            .copied()
            .unwrap_or(destination)
    }

    /// One datagram from the socket (`from: None`) or handed over by another shard.
    pub(super) fn on_datagram(
        &mut self,
        now: Instant,
        meta: RecvMeta,
        data: &[u8],
        from: Option<usize>,
    ) {
        match from {
            None => ShardStats::add(&self.stats.received, 1),
            Some(_) => ShardStats::add(&self.stats.handed_in, 1),
        }
        // Only binding requests pass this (a two-byte compare for media).
        let stun_ufrag = wire::binding_request_local_ufrag(data);
        let source = PeerAddr {
            proto: meta.proto,
            addr: meta.source,
        };
        match self.routes.route(&source) {
            // A binding request for another ufrag from a pinned 4-tuple is a
            // new session reusing the client's port: route it by its ufrag.
            Some(Route::Local(key)) if stun_ufrag.is_none_or(|u| self.ufrag_is(key, u)) => {
                self.feed(now, key, meta, data, from);
                return;
            }
            // Handed-in datagrams are never handed on: two shards with stale
            // routes to each other must not bounce a datagram between them.
            Some(Route::Remote(owner)) if from.is_none() => {
                self.hand_off(owner, meta, data);
                return;
            }
            _ => {}
        }
        let Some(ufrag) = stun_ufrag else {
            ShardStats::add(&self.stats.drop_unknown_source, 1);
            if let Some(from) = from {
                // The shard that routed it here holds a stale route.
                self.send_control(
                    from,
                    ShardControl::Unroute {
                        addr: source,
                        owner: self.index,
                    },
                );
            }
            return;
        };
        // Junk never reaches the directory's lock.
        if !is_ufrag(ufrag) {
            ShardStats::add(&self.stats.drop_unknown_ufrag, 1);
            return;
        }
        if let Some(key) = self.routes.by_ufrag(ufrag) {
            self.feed(now, key, meta, data, from);
            return;
        }
        match self.directory.claim(ufrag, self.index) {
            Claim::Moved(peer) => self.adopt(now, peer, meta, data, from),
            Claim::OnShard(owner) if owner != self.index && from.is_none() => {
                self.hand_off(owner, meta, data)
            }
            Claim::OnShard(_) | Claim::Unknown => {
                ShardStats::add(&self.stats.drop_unknown_ufrag, 1)
            }
        }
    }

    /// Applies a PATCH to a local peer; after an ICE restart its new ufrag
    /// routes here and through the directory, the old one nowhere.
    pub(super) fn patch(
        &mut self,
        key: PeerKey,
        now: Instant,
        id: SessionId,
        patch: IcePatch,
    ) -> Result<PatchOutcome, PatchError> {
        let Some(old) = self.slot_mut(key).map(|s| s.peer.ufrag().to_owned()) else {
            return Err(PatchError::Closed);
        };
        let mut result = Err(PatchError::Closed);
        self.call(key, now, |peer, out| {
            result = peer.apply_patch(now, patch, out);
        });
        match self.slot_mut(key).map(|s| s.peer.ufrag().to_owned()) {
            Some(ufrag) if ufrag != old => {
                self.routes.unname(&old, key);
                self.directory.reindex_ufrag(id, &ufrag);
                self.routes.name(ufrag, key);
            }
            Some(_) => {}
            // It ended meanwhile; `remove` forgot its current name, not the old.
            None => self.routes.unname(&old, key),
        }
        result
    }

    fn ufrag_is(&self, key: PeerKey, ufrag: &[u8]) -> bool {
        self.peers
            .get(key.index as usize)
            .is_some_and(|s| s.generation == key.generation && s.peer.ufrag().as_bytes() == ufrag)
    }

    /// A pending peer claimed by its first STUN: it stays here only if that
    /// STUN authenticated; otherwise it goes back to the directory, so a
    /// party that merely saw the ufrag cannot choose the peer's shard.
    fn adopt(
        &mut self,
        now: Instant,
        mut peer: Box<Peer>,
        meta: RecvMeta,
        data: &[u8],
        from: Option<usize>,
    ) {
        let destination = self.local_address(meta.destination);
        let mut out = std::mem::take(&mut self.out);
        let source = PeerAddr {
            proto: meta.proto,
            addr: meta.source,
        };
        let authenticated = peer.handle_receive(now, source, destination, data, &mut out);
        self.out = out;
        if authenticated && peer.closed().is_none() {
            ShardStats::add(&self.stats.to_peer, 1);
            let key = self.place(now, peer);
            self.pin(key, source, from);
            // Anything the first receive asked of us (rarely: nothing).
            let events = std::mem::take(&mut self.out.events);
            for event in events {
                self.on_peer_event(now, event);
            }
            return;
        }
        self.out.events.clear();
        ShardStats::add(&self.stats.drop_unknown_ufrag, 1);
        if peer.closed().is_some() {
            self.directory.end(peer.id(), now);
        } else {
            // `Some` only if the session ended meanwhile: then drop it.
            drop(self.directory.unclaim(peer, self.index));
        }
    }

    fn hand_off(&mut self, owner: usize, meta: RecvMeta, data: &[u8]) {
        let msg = ShardMedia::Datagram {
            meta,
            data: data.into(),
            from: self.index,
        };
        if self.send_media(owner, msg) {
            ShardStats::add(&self.stats.handed_off, 1);
        }
    }

    /// Queues `msg` on shard `to`'s media lane (woken at the end of the
    /// turn); when the lane is full it is dropped and counted.
    fn send_media(&mut self, to: usize, msg: ShardMedia) -> bool {
        let Some(handle) = self.shards.get(to) else {
            return false;
        };
        if handle.try_send(msg) {
            self.to_wake |= 1 << to;
            true
        } else {
            ShardStats::add(&self.stats.drop_queue_full, 1);
            false
        }
    }

    /// Queues `msg` on shard `to`'s control lane (woken at the end of the
    /// turn). It fails only if that shard has stopped (at shutdown, when
    /// ending peers unroute their addresses): counted, logged at debug.
    fn send_control(&mut self, to: usize, msg: ShardControl) {
        let Some(handle) = self.shards.get(to) else {
            return;
        };
        match handle.send_control(msg) {
            Ok(()) => self.to_wake |= 1 << to,
            Err(msg) => {
                ShardStats::add(&self.stats.control_lost, 1);
                debug!(
                    shard = self.index,
                    to,
                    ?msg,
                    "control message for a stopped shard"
                );
            }
        }
    }

    /// Makes `peer` a member of this shard.
    fn place(&mut self, now: Instant, peer: Box<Peer>) -> PeerKey {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let id = peer.id();
        let role = peer.role();
        let room = peer.room().clone();
        let ufrag = peer.ufrag().to_owned();
        let index = self.peers.insert(Slot {
            peer,
            generation,
            addrs: Vec::new(),
            scheduled: None,
        });
        let key = PeerKey {
            index: index as u32,
            generation,
        };
        self.routes.name(ufrag, key);
        self.by_session.insert(id, key);
        self.router.enter(&room);
        if let Some(slot) = self.peers.get(index) {
            for track in slot.peer.published_tracks() {
                self.router.publish(track, key);
            }
            for source in slot.peer.feeds() {
                self.router.subscribe(source, key);
            }
        }
        ShardStats::add(&self.stats.peers, 1);
        debug!(shard = self.index, session = ?id, ?role, room = %room.name, "peer placed");
        self.schedule(key, now);
        key
    }

    /// Feeds a datagram to a local peer; pins its address once authenticated.
    fn feed(
        &mut self,
        now: Instant,
        key: PeerKey,
        meta: RecvMeta,
        data: &[u8],
        from: Option<usize>,
    ) {
        ShardStats::add(&self.stats.to_peer, 1);
        let destination = self.local_address(meta.destination);
        let source = PeerAddr {
            proto: meta.proto,
            addr: meta.source,
        };
        let dropped_before = self.out.dropped;
        let mut authenticated = false;
        self.call(key, now, |peer, out| {
            authenticated = peer.handle_receive(now, source, destination, data, out);
        });
        ShardStats::add(
            &self.stats.drop_invalid,
            self.out.dropped.saturating_sub(dropped_before),
        );
        self.out.dropped = dropped_before;
        if authenticated {
            self.pin(key, source, from);
        }
    }

    /// Routes `addr` to a local peer whose STUN from it authenticated. When
    /// the address hashes to another shard (`from`), that shard is told to
    /// route straight here (on the control lane, which never drops it) —
    /// again on every consent check it hands over, so a route undone since
    /// (a racing `Unroute`) heals within seconds.
    fn pin(&mut self, key: PeerKey, addr: PeerAddr, from: Option<usize>) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        let oldest = if slot.addrs.contains(&addr) {
            None
        } else {
            slot.addrs.push(addr);
            (slot.addrs.len() > MAX_PEER_ADDRS).then(|| slot.addrs.remove(0))
        };
        if let Some(old) = oldest {
            self.forget_addr(key, old);
        }
        self.routes.pin(addr, key);
        if let Some(from) = from {
            *self.told.entry(addr).or_default() |= 1 << from;
            self.send_control(
                from,
                ShardControl::Route {
                    addr,
                    owner: self.index,
                },
            );
        }
    }

    pub(super) fn on_shard_media(&mut self, now: Instant, msg: ShardMedia) {
        match msg {
            ShardMedia::Media(packet) => {
                ShardStats::add(&self.stats.cross_shard_in, 1);
                self.fan_out_local(now, &packet);
            }
            ShardMedia::Datagram { meta, data, from } => {
                self.on_datagram(now, meta, &data, Some(from))
            }
            ShardMedia::Tcp { meta, data } => self.on_datagram(now, meta, &data, None),
        }
    }

    pub(super) fn on_shard_control(&mut self, now: Instant, msg: ShardControl) {
        match msg {
            ShardControl::Keyframe { track, kind } => {
                if let Some(key) = self.router.publisher(track) {
                    self.call(key, now, |peer, out| {
                        peer.request_keyframe(now, track, kind, out)
                    });
                }
            }
            ShardControl::Route { addr, owner } => {
                // A peer of our own keeps its address.
                self.routes.route_to_shard(addr, owner);
            }
            ShardControl::Unroute { addr, owner } => {
                self.routes.unroute(&addr, owner);
            }
        }
    }

    /// Runs `f` on a peer, then handles what it produced: events, its end, its timer.
    pub(super) fn call(
        &mut self,
        key: PeerKey,
        now: Instant,
        f: impl FnOnce(&mut Peer, &mut Outputs),
    ) {
        let mut out = std::mem::take(&mut self.out);
        let Some(slot) = self
            .peers
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
        else {
            self.out = out;
            return;
        };
        f(&mut slot.peer, &mut out);
        let events = std::mem::take(&mut out.events);
        self.out = out;
        for event in events {
            self.on_peer_event(now, event);
        }
        let closed = self.slot_mut(key).and_then(|s| s.peer.closed());
        match closed {
            Some(reason) => self.remove(key, now, reason),
            None => self.schedule(key, now),
        }
    }

    fn schedule(&mut self, key: PeerKey, now: Instant) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        // Never at or before `now`: a peer whose deadline did not move must
        // not make `run_timers` pop it again in the same pass.
        let at = slot.peer.deadline().max(now + MIN_TIMER_STEP);
        if slot.scheduled.is_some_and(|s| s <= at) {
            return; // an earlier (or equal) entry will fire and reschedule
        }
        slot.scheduled = Some(at);
        self.timers.push(Reverse((at, key)));
    }

    fn on_peer_event(&mut self, now: Instant, event: PeerEvent) {
        match event {
            PeerEvent::Media(packet) => {
                ShardStats::add(&self.stats.rtp_in, 1);
                self.fan_out(now, packet);
            }
            PeerEvent::WantKeyframe { feed, kind } => self.want_keyframe(now, feed, kind),
            PeerEvent::Connected { after } => self.stats.setup.observe(after),
            PeerEvent::FirstMedia { after } => self.stats.first_media.observe(after),
        }
    }

    /// A published packet: to this shard's subscribers of its track (and of
    /// its room's main feed, if its publisher feeds it), and one copy to each
    /// other shard with subscribers of either.
    fn fan_out(&mut self, now: Instant, packet: Arc<Forwarded>) {
        let shards = self.shards.len();
        let mut mask = packet.track.audience.shard_mask(shards);
        if packet.main
            && let Some(room) = self.router.room(packet.room_id)
        {
            mask |= room.main_audience.shard_mask(shards);
        }
        for shard in shards_in(mask & !(1 << self.index)) {
            if self.send_media(shard, ShardMedia::Media(packet.clone())) {
                ShardStats::add(&self.stats.cross_shard_out, 1);
            }
        }
        // Not recording: this one relaxed load is all it costs.
        if packet.track.recording.load(Ordering::Relaxed) {
            self.record(&packet);
        }
        self.fan_out_local(now, &packet);
    }

    /// Hands a packet of a recorded track to the recorder (never blocks).
    #[cold]
    #[inline(never)]
    fn record(&self, packet: &Arc<Forwarded>) {
        if let Some(recorder) = &self.recorder {
            recorder.offer(packet);
        }
    }

    fn fan_out_local(&mut self, now: Instant, packet: &Forwarded) {
        let mut subscribers = std::mem::take(&mut self.scratch);
        subscribers.clear();
        let by_track = Feed::Track(packet.track.id);
        subscribers.extend_from_slice(self.router.subscribers(&by_track));
        let main_from = subscribers.len();
        let main = Feed::Main {
            room: packet.room_id,
            kind: packet.track.kind,
        };
        if packet.main {
            subscribers.extend_from_slice(self.router.subscribers(&main));
        }
        let (dropped_before, forwarded_before) = (self.out.dropped, self.out.forwarded);
        for (i, &key) in subscribers.iter().enumerate() {
            let feed = if i < main_from { &by_track } else { &main };
            let mut became_unflushed = false;
            self.call(key, now, |peer, out| {
                became_unflushed = peer.forward(packet, feed, out)
            });
            if became_unflushed {
                self.unflushed.push(key);
            }
        }
        let dropped = self.out.dropped - dropped_before;
        let forwarded = self.out.forwarded - forwarded_before;
        (self.out.dropped, self.out.forwarded) = (dropped_before, forwarded_before);
        ShardStats::add(&self.stats.drop_viewer, dropped);
        ShardStats::add(&self.stats.forwarded, forwarded);
        if forwarded > 0
            && let Some(room) = self.router.room(packet.room_id)
        {
            // One shared-counter write per packet and shard, not per viewer.
            room.bytes_out.fetch_add(
                packet.payload.len() as u64 * forwarded,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        self.scratch = subscribers;
        self.unflushed_packets += 1;
        if self.unflushed_packets >= FLUSH_EVERY {
            self.flush_viewers(now);
        }
    }

    /// Sends what viewers queued since the last flush (once per loop turn, or
    /// every `FLUSH_EVERY` packets in a long burst).
    pub(super) fn flush_viewers(&mut self, now: Instant) {
        self.unflushed_packets = 0;
        let mut keys = std::mem::take(&mut self.unflushed);
        for &key in &keys {
            self.call(key, now, |peer, out| peer.flush(now, out));
        }
        keys.clear();
        if self.unflushed.is_empty() {
            self.unflushed = keys; // keep the allocation
        }
    }

    /// A subscriber here wants a keyframe on `feed`: ask the publisher of
    /// the track that feeds it now, here or on its shard.
    pub(super) fn want_keyframe(&mut self, now: Instant, feed: Feed, kind: KeyframeRequestKind) {
        let track = match self.router.source(&feed) {
            Some(FeedSource::Track(track)) => Some(track.clone()),
            Some(FeedSource::Main(room, kind)) => room.main_track(*kind),
            None => None,
        };
        let Some(track) = track else {
            return;
        };
        self.request_keyframe(now, track.id, track.audience.publisher_shard(), kind);
    }

    fn request_keyframe(
        &mut self,
        now: Instant,
        track: TrackId,
        shard: Option<usize>,
        kind: KeyframeRequestKind,
    ) {
        if let Some(key) = self.router.publisher(track) {
            self.call(key, now, |peer, out| {
                peer.request_keyframe(now, track, kind, out)
            });
        } else if let Some(shard) = shard.filter(|s| *s != self.index) {
            self.send_control(shard, ShardControl::Keyframe { track, kind });
        }
    }

    /// Stops routing `addr` to peer `key`, here and on every shard told to
    /// route it here, unless another local peer has authenticated from
    /// `addr` since (a new session reusing the client's port): then the
    /// address, and those shards' routes, are that peer's.
    fn forget_addr(&mut self, key: PeerKey, addr: PeerAddr) {
        if self.routes.route(&addr) != Some(Route::Local(key)) {
            return;
        }
        self.routes.forget(&addr);
        let told = self.told.remove(&addr).unwrap_or(0);
        for shard in shards_in(told) {
            self.send_control(
                shard,
                ShardControl::Unroute {
                    addr,
                    owner: self.index,
                },
            );
        }
    }

    /// Forgets a closed peer everywhere. In the directory it ends with a
    /// tombstone, unless a DELETE (the only source of `Deleted`) already
    /// removed it there.
    fn remove(&mut self, key: PeerKey, now: Instant, reason: CloseReason) {
        if self.slot_mut(key).is_none() {
            return;
        }
        let slot = self.peers.remove(key.index as usize);
        let peer = slot.peer;
        for addr in slot.addrs {
            self.forget_addr(key, addr);
        }
        self.routes.unname(peer.ufrag(), key);
        self.by_session.remove(&peer.id());
        for track in peer.published_tracks() {
            self.router.unpublish(track.id, key);
        }
        for source in peer.feeds() {
            self.router.unsubscribe(source.feed(), key);
        }
        self.router.exit(peer.room().id);
        self.directory.end(peer.id(), now);
        self.stats
            .peers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if reason == CloseReason::Panicked {
            ShardStats::add(&self.stats.peer_panics, 1);
        }
        info!(shard = self.index, session = ?peer.id(), role = ?peer.role(), room = %peer.room().name, ?reason, "session ended");
    }
}

/// The shard numbers whose bits are set in `mask`, lowest first.
pub(super) fn shards_in(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let shard = (mask != 0).then(|| mask.trailing_zeros() as usize)?;
        mask &= mask - 1;
        Some(shard)
    })
}

/// Addresses one peer keeps routed. A client uses one or two (a NAT
/// rebinding, an interface change); past this, its oldest route is dropped
/// (it comes back with the next consent check if the client still uses it),
/// so a peer cannot grow the routing tables without bound.
pub(super) const MAX_PEER_ADDRS: usize = 4;

/// The least a peer's timer is pushed past `now`.
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);

/// Whether `ufrag` has the shape of the ufrags we issue, so junk STUN is
/// dropped without touching the directory's lock.
fn is_ufrag(ufrag: &[u8]) -> bool {
    ufrag.len() == crate::sfu::UFRAG_LEN && ufrag.iter().all(u8::is_ascii_alphanumeric)
}

/// Publisher packets a shard fans out before it flushes viewers even inside
/// one loop turn: bounds the latency a long burst adds (a video frame at
/// 1.5 Mbit/s is ~6 packets).
const FLUSH_EVERY: usize = 8;
