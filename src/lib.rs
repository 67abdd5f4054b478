//! uringcast: a WebRTC SFU. WHIP/WHEP signaling over HTTP, media over one UDP
//! port, one event loop per core, one sans-IO str0m state machine per peer.
//!
//! Layers (dependencies point down): `http`, `shard` → `sfu` → `wire`;
//! `shard` → `net`. `sfu` and `wire` never touch sockets, threads or the clock.

pub mod client;
pub mod config;
pub mod directory;
pub mod dtls;
pub mod http;
pub mod load;
pub mod net;
pub mod server;
pub mod sfu;
pub mod shard;
pub mod signals;
pub mod webhook;
pub mod wire;

pub use sfu::room_limits::MAX_SHARDS;
