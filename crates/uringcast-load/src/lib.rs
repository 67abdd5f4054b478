//! The uringcast load tool and test client: a str0m WebRTC client over a
//! real UDP socket that publishes and watches with WHIP/WHEP and joins
//! conference rooms (`client`), and the swarm that measures a server with
//! it (`load`, the `uringcast-load` binary). It talks to any WHIP/WHEP
//! server over the network; it shares only `uringcast-proto` with the
//! server, never the server itself.

pub mod client;
pub mod load;
