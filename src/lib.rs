//! uringcast: a WebRTC SFU. WHIP/WHEP signaling over HTTP, media over one UDP
//! port, one event loop per core, one sans-IO str0m state machine per peer.
//!
//! Layers (dependencies point down): `http`, `shard` → `sfu` → `wire`;
//! `shard` → `net`. `sfu` and `wire` never touch sockets, threads or the clock.

pub mod config;
pub mod directory;
pub mod http;
pub mod net;
pub mod record;
pub mod server;
pub mod sfu;
pub mod shard;
pub mod signals;
pub mod webhook;

pub use sfu::room_limits::MAX_SHARDS;
/// Shared with the load tool (crate `uringcast-proto`), re-exported so that
/// `crate::wire` and `crate::dtls` name them here as before.
pub use uringcast_proto::{dtls, wire};
